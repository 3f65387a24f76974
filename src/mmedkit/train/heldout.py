"""Held-out loss and perplexity per language, scored by any model on the documents a pretraining run held out.

The held-out documents are those of :func:`~mmedkit.train.data.build_pretrain_set` for the same data
settings and seed (the training run's own evaluation set), or every document of a separate set given as
``documents``. Each language is laid out and scored on its own, token-weighted, in the run's layout.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from mmedkit.train.batches import Collate, target_count, token_nll
from mmedkit.train.config import TrainConfig


def language_docs(pset: Any, docs: np.ndarray, max_tokens: int | None = None) -> dict[str, np.ndarray]:
    """``docs`` of ``pset`` per language (whole documents in corpus order, up to ``max_tokens`` each)."""
    corpus, out = pset.corpus, {}
    for code, name in enumerate(corpus.lang_names):
        docs_of = docs[corpus.langs[docs] == code]
        if max_tokens is not None and len(docs_of):
            keep = np.cumsum(corpus.lengths[docs_of]) <= max_tokens
            docs_of = docs_of[: max(int(keep.sum()), 1)]
        if len(docs_of):
            out[name or "unknown"] = docs_of
    return out


@torch.no_grad()
def score(model: Any, dataset: Any, collate: Collate, batch_size: int, device: torch.device) -> dict[str, float]:
    """Token-weighted loss and perplexity of ``model`` over ``dataset`` (rows of input_ids/labels)."""
    nll, targets = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        nll += float(token_nll(logits, batch["labels"]))
        targets += target_count(batch)
    loss = nll / max(targets, 1)
    return {"loss": round(loss, 5), "perplexity": round(math.exp(loss), 3), "tokens": targets}


def held_out_by_language(cfg: TrainConfig, model: str, *, documents: str | None = None, max_tokens: int | None = None,
                         batch_size: int = 4, device: str | None = None, log: Any = None) -> dict[str, dict[str, Any]]:
    """Loss and perplexity of ``model`` per language on the held-out documents of the pretraining ``cfg``, or on
    every document of ``documents`` (shards with a text and a language field, read as ``cfg`` reads its data)."""
    from mmedkit.models.hf import load_model_and_tokenizer
    from mmedkit.train.loop import build_data

    lm, tokenizer, dev, _ = load_model_and_tokenizer(model, dtype="float32", device=device,
                                                     trust_remote_code=cfg.trust_remote_code)
    if documents is not None:
        cfg = cfg.updated({"data": {"sources": [{"path": documents}], "eval_fraction": 0.0}})
    pset = build_data(cfg, tokenizer, log or (lambda _: None))
    collate = Collate(tokenizer.pad_token_id, pset.pad_to, None)
    out = {}
    for lang, docs in language_docs(pset, pset.train_docs if documents else pset.eval_docs, max_tokens).items():
        dataset = dataclasses.replace(pset, eval_docs=docs).eval_set()
        out[lang] = {"documents": len(docs), **score(lm, dataset, collate, batch_size, dev)}
    return out
