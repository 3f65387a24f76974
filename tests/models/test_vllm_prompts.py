"""The vLLM backend's prompt tokens, built without vLLM: one BOS, the same split as the hf backend."""

from __future__ import annotations

from pathlib import Path

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import PromptConfig, build_prompt, loglikelihood_request
from mmedkit.models.hf import HFModel
from mmedkit.models.vllm_backend import lora_rank, prompt_token_ids, scoring_token_ids


def test_chat_and_text_prompts_have_one_bos(tiny_model: HFModel) -> None:
    tok, bos = tiny_model.tokenizer, tiny_model.tokenizer.bos_token_id
    item = load_benchmark("demo", langs="en", limit=1)[0]
    for fmt in ("study", "chat"):
        prompt = build_prompt(item, PromptConfig(format=fmt))
        ids = prompt_token_ids(tok, "tiny", prompt)
        assert ids[0] == bos and ids.count(bos) == 1, fmt
        req = loglikelihood_request(item, PromptConfig(format=fmt))[0]
        for whole, n in scoring_token_ids(tok, "tiny", [req]):
            assert whole[0] == bos and whole.count(bos) == 1 and 0 < n < len(whole), fmt


def test_scoring_tokens_match_the_hf_backend(tiny_model: HFModel) -> None:
    items = load_benchmark("demo", langs="en,fr", limit=2)
    for fmt in ("study", "chat"):
        reqs = [loglikelihood_request(it, PromptConfig(format=fmt))[0] for it in items]
        spans = scoring_token_ids(tiny_model.tokenizer, "tiny", reqs)
        expected = []
        for req in reqs:
            text, special = tiny_model.render(req.context, req.continuation_prefix)
            ctx, conts = tiny_model.encode_request(text, req.continuations, special)
            expected += [(ctx + c, len(ctx)) for c in conts]
        assert spans == expected, fmt


def test_lora_rank_rounds_up_to_an_accepted_value(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"r": 24}', encoding="utf-8")
    assert lora_rank(str(tmp_path)) == 32
    (tmp_path / "adapter_config.json").write_text('{"r": 8}', encoding="utf-8")
    assert lora_rank(str(tmp_path)) == 16
