"""The hf backend scores candidates over the context KV cache without copying it per candidate."""

from __future__ import annotations

from typing import Any

import pytest

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import PromptConfig, loglikelihood_request, select_exemplars
from mmedkit.models import hf


def test_candidates_reuse_the_context_cache_without_copies(tiny_model_dir: Any, monkeypatch: Any) -> None:
    model = hf.HFModel(str(tiny_model_dir), batch_size=2)
    pool = load_benchmark("demo", split="train")
    items = load_benchmark("demo", langs="fr", limit=2)  # 31 candidates each, long few-shot context
    reqs = [loglikelihood_request(it, PromptConfig(fewshot=2), select_exemplars(pool, it, 2, 0))[0] for it in items]
    contexts: list[list[tuple[Any, Any]]] = []
    caches: list[tuple[int, list[int]]] = []
    layer_kv, make_cache = hf._layer_kv, hf._make_cache

    def record_kv(cache: Any) -> Any:
        kv = layer_kv(cache)
        contexts.append(kv)
        return kv

    def record_cache(kv: Any, config: Any) -> Any:
        caches.append((kv[0][0].shape[0], [k.data_ptr() for k, _ in kv]))
        return make_cache(kv, config)

    monkeypatch.setattr(hf, "_layer_kv", record_kv)
    monkeypatch.setattr(hf, "_make_cache", record_cache)
    scores = model.loglikelihood(reqs)
    candidate_caches = [c for c in caches if c[1] == [k.data_ptr() for k, _ in contexts[-1]]]
    assert candidate_caches and all(rows == len(reqs) for rows, _ in candidate_caches)  # 2 rows, not 62
    assert max(rows for rows, _ in caches) == len(reqs)
    for req, got in zip(reqs, scores, strict=True):
        assert len(got) == 31
        assert got == pytest.approx([model.loglikelihood_naive(req.context, c) for c in req.continuations], abs=1e-4)
