"""The hf backend scores every candidate of a batch in one forward pass, as a prefix tree after each
context, and matches the naive one-forward-per-candidate scorer."""

from __future__ import annotations

from typing import Any

import pytest

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import PromptConfig, candidates, loglikelihood_request, select_exemplars
from mmedkit.models import hf
from mmedkit.models.base import LoglikelihoodRequest
from mmedkit.models.hf_scoring import ROOT, build_tree


def test_prefix_tree_feeds_each_distinct_candidate_prefix_once() -> None:
    a, b, c, comma = 10, 11, 12, 5
    tree = build_tree([[a], [b], [a, comma, b], [a, comma, c], [a, comma, b, comma, c]])
    assert tree.tokens == [a, comma, b, comma]  # " A", ",", "B", "," (shared by the last three)
    assert tree.parents == [ROOT, 0, 1, 2]
    assert tree.depths == [0, 1, 2, 3]
    assert tree.ancestors == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert [t for t in tree.terms if t[0] == 4] == [(4, ROOT, a), (4, 0, comma), (4, 1, b), (4, 2, comma),
                                                    (4, 3, c)]
    assert build_tree([[a], [b]]).tokens == []  # single-token candidates: scored from the context alone


def _requests(fewshot: int) -> list[LoglikelihoodRequest]:
    pool = load_benchmark("demo", split="train")
    items = load_benchmark("demo", langs="fr,en,ja", limit=1)  # French: 31 answer sets
    reqs = [loglikelihood_request(it, PromptConfig(fewshot=fewshot), select_exemplars(pool, it, fewshot, 0))[0]
            for it in items]
    options = [LoglikelihoodRequest(r.context, tuple(f" {v}" for v in it.options.values()))
               for r, it in zip(reqs, items, strict=True)]  # option text: several tokens each
    return reqs + options


@pytest.mark.parametrize("fewshot", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_one_forward_per_batch_matches_the_naive_scorer(tiny_model_dir: Any, fewshot: int,
                                                        monkeypatch: Any) -> None:
    model = hf.HFModel(str(tiny_model_dir), batch_size=4)
    reqs = _requests(fewshot)
    calls: list[tuple[int, int]] = []
    forward = model.model.forward

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.model, "forward", counting)
    scores = model.loglikelihood(reqs)
    monkeypatch.undo()
    prefix_passes = sum(1 for rows, _ in calls if rows == 1)  # the memoized shared preamble
    assert len(calls) - prefix_passes == -(-len(reqs) // 4)  # one pass per batch, not one per candidate
    assert model.tokens_computed > 0
    for req, got in zip(reqs, scores, strict=True):
        want = [model.loglikelihood_naive(req.context, c) for c in req.continuations]
        assert got == pytest.approx(want, abs=1e-4)
        assert max(range(len(got)), key=got.__getitem__) == max(range(len(want)), key=want.__getitem__)
    assert any(len(s) == 31 for s in scores)


def test_scores_do_not_depend_on_batching(tiny_model_dir: Any) -> None:
    reqs = _requests(0)
    one = hf.HFModel(str(tiny_model_dir), batch_size=1).loglikelihood(reqs)
    many = hf.HFModel(str(tiny_model_dir), batch_size=8, min_shared_prefix=10_000).loglikelihood(reqs)
    for a, b in zip(one, many, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


@pytest.mark.slow
def test_smollm2_matches_the_naive_scorer(smollm2_dir: Any) -> None:
    model = hf.HFModel(str(smollm2_dir), dtype="float32", device="cpu", batch_size=4)
    items = load_benchmark("demo", langs="fr,en", limit=1)
    reqs = [loglikelihood_request(it, PromptConfig())[0] for it in items]
    scores = model.loglikelihood(reqs)
    for req, got, it in zip(reqs, scores, items, strict=True):
        assert len(got) == len(candidates(it))
        picked = [0, 1, 5, len(got) - 1] if len(got) > 5 else range(len(got))  # naive forwards are slow
        want = [model.loglikelihood_naive(req.context, req.continuations[k]) for k in picked]
        assert [got[k] for k in picked] == pytest.approx(want, abs=1e-4)
