"""The shared-prefix log-likelihood path equals a naive one-forward-per-candidate computation."""

from __future__ import annotations

import pytest

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import PromptConfig, loglikelihood_request, select_exemplars


@pytest.mark.parametrize("fewshot", [0, 2])
def test_shared_prefix_equals_naive(tiny_model, fewshot: int) -> None:
    items = load_benchmark("demo", limit=3)  # 3 per language, incl. French items with 31 candidates
    pool = load_benchmark("demo", split="train")
    cfg = PromptConfig(fewshot=fewshot)
    reqs = [loglikelihood_request(it, cfg, select_exemplars(pool, it, fewshot, cfg.seed))[0] for it in items]
    fast = tiny_model.loglikelihood(reqs)
    checked = 0
    for req, scores in zip(reqs, fast, strict=True):
        assert len(scores) == len(req.continuations)
        for cont, score in zip(req.continuations, scores, strict=True):
            assert score == pytest.approx(tiny_model.loglikelihood_naive(req.context, cont), abs=1e-4)
            checked += 1
    assert checked == sum(len(r.continuations) for r in reqs) >= 150  # 3 French items x 31 subsets


def test_batching_and_chunking_do_not_change_scores(tiny_model_dir) -> None:
    from mmedkit.models.hf import HFModel

    items = load_benchmark("demo", langs="fr,ru,zh", limit=4)
    reqs = [loglikelihood_request(it, PromptConfig())[0] for it in items]
    one = HFModel(str(tiny_model_dir), batch_size=1).loglikelihood(reqs)
    many = HFModel(str(tiny_model_dir), batch_size=16, max_candidate_rows=7).loglikelihood(reqs)
    for a, b in zip(one, many, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


def test_chat_format_scoring_uses_template(tiny_model) -> None:
    item = load_benchmark("demo", langs="en", limit=1)[0]
    req, _ = loglikelihood_request(item, PromptConfig(format="chat"))
    text, special = tiny_model.render(req.context, req.continuation_prefix)
    assert "<|system|>" in text and text.endswith("<|assistant|>\n###Answer: OPTION") and not special
    fast = tiny_model.loglikelihood([req])[0]
    naive = [tiny_model.loglikelihood_naive(text, c, special=False) for c in req.continuations]
    assert fast == pytest.approx(naive, abs=1e-4)


@pytest.mark.parametrize("fmt", ["study", "chat"])
def test_tail_tokenization_shortcut_matches_full_retokenization(tiny_model, fmt: str) -> None:
    items = load_benchmark("demo")
    used = 0
    for it in items:
        req, _ = loglikelihood_request(it, PromptConfig(format=fmt))
        text, special = tiny_model.render(req.context, req.continuation_prefix)
        ctx, conts = tiny_model.encode_request(text, req.continuations, special)
        for cont, ids in zip(req.continuations, conts, strict=True):
            full_ctx, full_cont = tiny_model.split_continuation(text, cont, special)
            assert (ctx, ids) == (full_ctx, full_cont)
        used += len(tiny_model._tail_memo) > 0
    assert used == len(items)  # the shortcut was available for every prompt


def test_shared_preamble_is_computed_once_and_reused(tiny_model_dir) -> None:
    from mmedkit.models.hf import HFModel

    model = HFModel(str(tiny_model_dir), batch_size=4)
    items = load_benchmark("demo", langs="es", limit=9)
    reqs = [loglikelihood_request(it, PromptConfig())[0] for it in items]
    scores = model.loglikelihood(reqs)
    memo = model._prefixes._memo
    assert len(memo) == 1  # one Spanish preamble, shared by three batches
    (prefix,) = memo
    assert len(prefix) >= 40
    assert model.tokenizer.decode(prefix, skip_special_tokens=True).startswith("Below is an instruction")
    for req, got in zip(reqs, scores, strict=True):
        assert got == pytest.approx([model.loglikelihood_naive(req.context, c) for c in req.continuations], abs=1e-4)
