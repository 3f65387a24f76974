"""Batched greedy decoding that stops each sequence as soon as it is done.

A batch of prompts (the caller sorts them by length, so little padding) is prefilled in one pass
after the leading tokens they share, which come from the KV-cache memo (the instruction preamble
is computed once per run, not once per prompt). Each step then feeds one token per unfinished
sequence; a sequence leaves the batch (its cache rows dropped) at its end-of-sequence token, its
own token limit or its own stop string, so finished sequences cost nothing. The tokens chosen
are those of transformers' ``generate`` in greedy mode on the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmedkit.models.base import stop_at
from mmedkit.models.hf_cache import output_cache, preallocate


@dataclass(frozen=True)
class GreedyJob:
    """One prompt to continue greedily."""

    prompt: list[int]
    max_new_tokens: int
    stop: tuple[str, ...] = ()


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-sequence ids as ``generate`` uses them: the generation config's, else the tokenizer's."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) - {None}


def _finished(tokens: list[int], job: GreedyJob, eos: set[int], tokenizer: Any) -> bool:
    if tokens[-1] in eos or len(tokens) >= job.max_new_tokens:
        return True
    if not job.stop:
        return False
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    return any(s and s in text for s in job.stop)


def greedy_batch(model: Any, tokenizer: Any, cache_kw: str, memo: Any, jobs: Sequence[GreedyJob],
                 device: torch.device) -> tuple[list[str], int]:
    """Greedy continuations of ``jobs`` (cut at their stop strings) and the tokens fed to the model.

    ``memo`` is the :class:`~mmedkit.models.hf_cache.PrefixMemo` supplying the shared leading tokens.
    """
    eos = eos_ids(model, tokenizer)
    prompts = [j.prompt for j in jobs]
    shared = memo.shared_len(prompts)
    rest = [p[shared:] for p in prompts]
    n, width = len(rest), max(len(r) for r in rest)
    ids = torch.full((n, width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((n, shared + width), dtype=torch.long)
    mask[:, :shared] = 1
    for b, r in enumerate(rest):
        ids[b, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[b, shared + width - len(r):] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    kwargs: dict[str, Any] = {}
    if shared:
        kwargs[cache_kw] = memo.cache_for(tuple(prompts[0][:shared]), n)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1, **kwargs)
    fed = sum(len(r) for r in rest)
    cache, last_pos = preallocate(output_cache(out), max(j.max_new_tokens for j in jobs)), pos[:, -1]
    active = list(range(n))
    generated: list[list[int]] = [[] for _ in jobs]
    while True:
        nxt = out.logits[:, -1].argmax(-1)
        for b, tok in zip(active, nxt.tolist(), strict=True):
            generated[b].append(tok)
        keep = [k for k, b in enumerate(active) if not _finished(generated[b], jobs[b], eos, tokenizer)]
        if not keep:
            break
        if len(keep) < len(active):  # finished sequences leave the batch
            idx = torch.tensor(keep, device=device)
            cache.batch_select_indices(idx)
            mask, last_pos, nxt = mask[idx], last_pos[idx], nxt[idx]
            active = [active[k] for k in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        last_pos = last_pos + 1
        # A ready 4-D mask: transformers would otherwise rebuild one from ``mask`` at every step.
        bias = torch.zeros((len(active), 1, 1, mask.shape[1]), dtype=out.logits.dtype, device=device)
        bias.masked_fill_(mask[:, None, None, :] == 0, torch.finfo(bias.dtype).min)
        out = model(input_ids=nxt[:, None], attention_mask=bias, position_ids=last_pos[:, None], use_cache=True,
                    **{cache_kw: cache})
        cache = output_cache(out)
        fed += len(active)
    texts = [stop_at(tokenizer.decode([t for t in g if t not in eos], skip_special_tokens=True), j.stop)
             for g, j in zip(generated, jobs, strict=True)]
    return texts, fed
