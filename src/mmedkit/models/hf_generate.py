"""Batched greedy decoding that stops each sequence as soon as it is done.

Prompts (the caller sorts them by length, so little padding) are prefilled in batches after the
leading tokens they share, which come from the KV-cache memo (the instruction preamble is computed
once per run, not once per prompt). Each step feeds one token per unfinished sequence; a sequence
leaves the batch (its cache rows dropped) at its end-of-sequence token, its own token limit or its
own stop string, and the next prompts take the free places, so a step (whose cost on a CPU is
mostly reading the weights) serves as many sequences as the batch holds. The tokens chosen
are those of transformers' ``generate`` in greedy mode on the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmedkit.models.base import stop_at
from mmedkit.models.hf_cache import can_join, join_rows, layer_kv, make_cache, output_cache, preallocate


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
    """End of sequence, token limit, or a stop string in the generated text; as with transformers'
    ``stop_strings``, a stop string may begin in the prompt's last characters (the text then keeps
    what was generated)."""
    if tokens[-1] in eos or len(tokens) >= job.max_new_tokens:
        return True
    if not job.stop:
        return False
    longest = max(len(s) for s in job.stop)
    head = tokenizer.decode(job.prompt[-longest:], skip_special_tokens=True)[-(longest - 1):] if longest > 1 else ""
    text = head + tokenizer.decode(tokens, skip_special_tokens=True)
    return any(s and s in text for s in job.stop)


def _prefill(model: Any, tokenizer: Any, cache_kw: str, memo: Any, prompts: list[list[int]],
             device: torch.device) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, torch.Tensor,
                                            torch.Tensor, int]:
    """Run ``prompts`` (left-padded after their shared prefix): per-layer KV, 2-D mask, last positions,
    first greedy tokens, tokens fed."""
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
    return layer_kv(output_cache(out)), mask, pos[:, -1], out.logits[:, -1].argmax(-1), sum(len(r) for r in rest)


def greedy_generate(model: Any, tokenizer: Any, cache_kw: str, memo: Any, jobs: Sequence[GreedyJob],
                    device: torch.device, slots: int) -> tuple[list[str], int]:
    """Greedy continuations of ``jobs`` (cut at their stop strings) and the tokens fed to the model.

    At most ``slots`` sequences decode together; when some finish, the next jobs (in the given order)
    are prefilled and join the running batch, so every step serves as many sequences as it can.
    ``memo`` is the :class:`~mmedkit.models.hf_cache.PrefixMemo` supplying the shared leading tokens.
    """
    eos = eos_ids(model, tokenizer)
    queue = list(range(len(jobs)))
    generated: list[list[int]] = [[] for _ in jobs]
    rows: list[int] = []
    cache: Any = None
    mask = last_pos = nxt = torch.empty(0)
    fed, dtype = 0, next(model.parameters()).dtype
    while queue or rows:
        while queue and len(rows) < slots and (cache is None or can_join(cache)):  # fill the free slots
            new, queue = queue[:slots - len(rows)], queue[slots - len(rows):]
            kv, new_mask, new_pos, first, n_fed = _prefill(model, tokenizer, cache_kw, memo,
                                                           [jobs[j].prompt for j in new], device)
            fed += n_fed
            room = max(jobs[j].max_new_tokens for j in new)
            if cache is None:
                cache, mask = preallocate(make_cache(kv, model.config), room), new_mask
                last_pos, nxt = new_pos, first
            else:
                mask = join_rows(cache, kv, mask, new_mask, room)
                last_pos, nxt = torch.cat([last_pos, new_pos]), torch.cat([nxt, first])
            rows += new
            for b, tok in zip(new, first.tolist(), strict=True):
                generated[b].append(tok)
            cache, mask, last_pos, nxt, rows = _drop_finished(cache, mask, last_pos, nxt, rows, jobs, generated,
                                                              eos, tokenizer, device)
        if not rows:
            continue
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
        last_pos = last_pos + 1
        # A ready 4-D mask: transformers would otherwise rebuild one from ``mask`` at every step.
        bias = torch.zeros((len(rows), 1, 1, mask.shape[1]), dtype=dtype, device=device)
        bias.masked_fill_(mask[:, None, None, :] == 0, torch.finfo(dtype).min)
        out = model(input_ids=nxt[:, None], attention_mask=bias, position_ids=last_pos[:, None], use_cache=True,
                    **{cache_kw: cache})
        cache, nxt = output_cache(out), out.logits[:, -1].argmax(-1)
        fed += len(rows)
        for b, tok in zip(rows, nxt.tolist(), strict=True):
            generated[b].append(tok)
        cache, mask, last_pos, nxt, rows = _drop_finished(cache, mask, last_pos, nxt, rows, jobs, generated, eos,
                                                          tokenizer, device)
    texts = [stop_at(tokenizer.decode([t for t in g if t not in eos], skip_special_tokens=True), j.stop)
             for g, j in zip(generated, jobs, strict=True)]
    return texts, fed


def _drop_finished(cache: Any, mask: torch.Tensor, last_pos: torch.Tensor, nxt: torch.Tensor, rows: list[int],
                   jobs: Sequence[GreedyJob], generated: list[list[int]], eos: set[int], tokenizer: Any,
                   device: torch.device) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Finished sequences leave the batch (their cache rows dropped); the cache is None when none is left."""
    keep = [k for k, b in enumerate(rows) if not _finished(generated[b], jobs[b], eos, tokenizer)]
    if len(keep) == len(rows):
        return cache, mask, last_pos, nxt, rows
    if not keep:
        return None, mask[:0], last_pos[:0], nxt[:0], []
    idx = torch.tensor(keep, device=device)
    cache.batch_select_indices(idx)
    return cache, mask[idx], last_pos[idx], nxt[idx], [rows[k] for k in keep]
