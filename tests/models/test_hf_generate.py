"""Batched greedy generation gives exactly the text of transformers' generate, one prompt at a time,
with per-sequence stop strings and token limits, and finished sequences leave the batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import PromptConfig, build_prompt
from mmedkit.models.base import GenerationRequest, stop_at
from mmedkit.models.hf import HFModel, generation_kwargs
from mmedkit.models.hf_generate import GreedyJob, greedy_generate


def _plain_generate(model: HFModel, req: GenerationRequest) -> str:
    """transformers' greedy generate with its ``stop_strings`` on the prompt alone (no padding), cut at
    the stop strings."""
    text, special = model.render(req.prompt)
    enc = model.tokenizer([text], return_tensors="pt", add_special_tokens=special)
    out = model.model.generate(**enc, **generation_kwargs(model.tokenizer, req.max_new_tokens, 0.0, req.stop))
    new = model.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return stop_at(new, req.stop)


def _requests(model: HFModel) -> tuple[list[GenerationRequest], list[str]]:
    """Requests with varied limits and stop strings, and each prompt's greedy output without stops."""
    items = load_benchmark("demo", langs="en,fr,ja,zh", limit=2)
    prompts: list[Any] = [build_prompt(it, PromptConfig()) for it in items]
    prompts.append(build_prompt(items[0], PromptConfig(format="chat")))
    reqs, fulls = [], []
    for i, p in enumerate(prompts):
        limit = 6 + 3 * (i % 4)
        full = _plain_generate(model, GenerationRequest(p, max_new_tokens=limit))
        # Every other prompt stops at a string its own greedy output contains (at different steps).
        stop = (full[len(full) // 3:len(full) // 3 + 2],) if i % 2 == 0 and len(full) > 6 else ()
        reqs.append(GenerationRequest(p, max_new_tokens=limit, stop=stop))
        fulls.append(full)
    return reqs, fulls


def test_greedy_generation_equals_plain_generate(tiny_model_dir: Path) -> None:
    model = HFModel(str(tiny_model_dir), batch_size=8)
    reqs, fulls = _requests(model)
    want = [_plain_generate(model, r) for r in reqs]
    before = model.tokens_computed
    got = model.generate(reqs)
    assert got == want
    assert sum(len(g) < len(full) for g, full in zip(got, fulls, strict=True)) >= 2  # stop strings did cut
    prompt_tokens = sum(len(model.encode(*model.render(r.prompt))) for r in reqs)
    decode_steps = max(r.max_new_tokens for r in reqs) - 1
    # Finished sequences leave the batch: fewer tokens than every row running to the longest limit.
    assert model.tokens_computed - before < prompt_tokens + len(reqs) * decode_steps
    assert HFModel(str(tiny_model_dir), batch_size=1).generate(reqs) == got


@pytest.mark.slow
def test_smollm2_batched_greedy_equals_plain_generate(smollm2_dir: Path) -> None:
    model = HFModel(str(smollm2_dir), dtype="float32", device="cpu", batch_size=4)
    items = load_benchmark("demo", langs="en,fr,es", limit=1)
    stop = ("\n\n### Instruction", "### Input:", "\n\n\n", " IS")
    reqs = [GenerationRequest(build_prompt(it, PromptConfig()), max_new_tokens=n, stop=stop)
            for it, n in zip(items, (12, 6, 9), strict=True)]
    assert model.generate(reqs) == [_plain_generate(model, r) for r in reqs]


def test_prompts_joining_a_running_batch(tiny_model_dir: Path) -> None:
    model = HFModel(str(tiny_model_dir), batch_size=8)
    reqs, fulls = _requests(model)
    prompts = [model.encode(*model.render(r.prompt)) for r in reqs]
    # Shortest first, three places: later (longer) prompts join a batch whose cache they outgrow.
    order = sorted(range(len(reqs)), key=lambda i: len(prompts[i]))
    jobs = [GreedyJob(prompts[i], reqs[i].max_new_tokens, reqs[i].stop) for i in order]
    texts, _ = greedy_generate(model.model, model.tokenizer, model._cache_kw, model._prefixes, jobs, model.device, 3)
    assert texts == [_plain_generate(model, reqs[i]) for i in order]
