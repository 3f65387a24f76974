"""Log-likelihood scoring of a batch of items in one forward pass.

Each row of the pass holds one item: its context (left-padded, after the shared prefix taken from
the KV-cache memo), then its candidates as a prefix tree. Candidates ``" A,B"`` and ``" A,C"``
share the nodes ``" A"`` and ``","``, so the 31 answer sets of a five-option multi-answer item
feed about 30 tree tokens instead of 150 candidate tokens, and a single-letter item feeds none
(its candidates are all scored from the context's last position). A 4-D attention mask keeps
each tree node to the context and its own ancestors; explicit position ids place every node
right after the context at its depth. The cost therefore follows the tokens that must be
computed: the context once, each distinct candidate prefix once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

ROOT = -1
"""Parent of a candidate's first token: the context's last position."""


@dataclass
class CandidateTree:
    """The prefix tree of one item's candidates (token ids)."""

    tokens: list[int] = field(default_factory=list)
    """Tokens to feed: every candidate prefix that some longer candidate token follows (parents first)."""
    parents: list[int] = field(default_factory=list)
    """Index of each fed token's parent in ``tokens``, or :data:`ROOT`."""
    depths: list[int] = field(default_factory=list)
    """Position of each fed token within its candidate (0 = first continuation token)."""
    ancestors: list[list[int]] = field(default_factory=list)
    """Each fed token's ancestors and itself (the tree tokens it may attend to)."""
    terms: list[tuple[int, int, int]] = field(default_factory=list)
    """(candidate, predicting node or :data:`ROOT`, target token): a candidate's score sums its terms."""
    n_candidates: int = 0


def build_tree(candidates: Sequence[Sequence[int]]) -> CandidateTree:
    """Prefix tree of ``candidates`` (each a non-empty token list)."""
    tree = CandidateTree(n_candidates=len(candidates))
    node_of: dict[tuple[int, int], int] = {}
    for c, ids in enumerate(candidates):
        parent = ROOT
        for d, tok in enumerate(ids):
            tree.terms.append((c, parent, tok))
            if d == len(ids) - 1:
                break
            node = node_of.get((parent, tok))
            if node is None:
                node = node_of[(parent, tok)] = len(tree.tokens)
                tree.tokens.append(tok)
                tree.parents.append(parent)
                tree.depths.append(d)
                tree.ancestors.append([*(tree.ancestors[parent] if parent != ROOT else []), node])
            parent = node
    return tree


@dataclass
class ScoringBatch:
    """Model inputs for one scoring pass, built by :func:`pack`."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    keep: int
    """Logits to keep: the context's last position and every tree slot."""
    fed_tokens: int
    """Non-padding tokens fed (context after the shared prefix, plus tree tokens)."""


def pack(rest: Sequence[Sequence[int]], trees: Sequence[CandidateTree], shared: int, pad_id: int,
         dtype: torch.dtype, device: torch.device) -> ScoringBatch:
    """One row per item: the context after its ``shared`` leading tokens (left-padded to a common
    width), then the item's tree tokens, with the 4-D mask and positions described in the module doc."""
    n, width = len(rest), max(len(r) for r in rest)
    slots = max(len(t.tokens) for t in trees)
    length = width + slots
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    valid = torch.zeros((n, length), dtype=torch.bool)
    pos = torch.zeros((n, length), dtype=torch.long)
    anc_rows: list[int] = []
    anc_q: list[int] = []
    anc_k: list[int] = []
    for b, (r, tree) in enumerate(zip(rest, trees, strict=True)):
        ids[b, width - len(r):width] = torch.tensor(r, dtype=torch.long)
        valid[b, width - len(r):width] = True
        pos[b, width - len(r):width] = torch.arange(shared, shared + len(r))
        k = len(tree.tokens)
        if k:
            ids[b, width:width + k] = torch.tensor(tree.tokens, dtype=torch.long)
            valid[b, width:width + k] = True
            pos[b, width:width + k] = shared + len(r) + torch.tensor(tree.depths, dtype=torch.long)
            for q, ancestors in enumerate(tree.ancestors):
                anc_rows += [b] * len(ancestors)
                anc_q += [width + q] * len(ancestors)
                anc_k += [width + a for a in ancestors]
    causal = torch.ones((length, length), dtype=torch.bool).tril_()
    allowed = causal[None] & valid[:, None, :]  # every token: the valid tokens up to itself
    allowed[:, width:, width:] = False  # tree tokens: their own ancestors only ...
    allowed[anc_rows, anc_q, anc_k] = True
    allowed |= torch.eye(length, dtype=torch.bool)[None]  # ... and padding itself (no empty rows)
    mask = torch.zeros((n, 1, length, shared + length), dtype=dtype)
    mask[:, 0, :, shared:].masked_fill_(~allowed, torch.finfo(dtype).min)
    return ScoringBatch(ids.to(device), mask.to(device), pos.to(device), slots + 1, int(valid.sum()))


def candidate_scores(logits: torch.Tensor, trees: Sequence[CandidateTree]) -> list[list[float]]:
    """Summed log-probability of every candidate, from the kept logits of :func:`pack`'s rows
    (slot 0: the context's last position; slot ``i + 1``: tree token ``i``)."""
    rows: list[int] = []
    slots: list[int] = []
    targets: list[int] = []
    owner: list[int] = []
    base = 0
    for b, tree in enumerate(trees):
        for c, node, tok in tree.terms:
            rows.append(b)
            slots.append(node + 1)
            targets.append(tok)
            owner.append(base + c)
        base += tree.n_candidates
    dev = logits.device
    r, s, t = (torch.tensor(x, device=dev) for x in (rows, slots, targets))
    lp = logits[r, s, t].float() - torch.logsumexp(logits.float(), dim=-1)[r, s]
    totals = torch.zeros(base, dtype=lp.dtype, device=dev).index_add_(0, torch.tensor(owner, device=dev), lp)
    flat = totals.tolist()
    out, k = [], 0
    for tree in trees:
        out.append(flat[k:k + tree.n_candidates])
        k += tree.n_candidates
    return out


def score_items(model: Any, cache_kw: str, memo: Any, contexts: Sequence[Sequence[int]],
                candidates: Sequence[Sequence[Sequence[int]]], pad_id: int, dtype: torch.dtype,
                device: torch.device) -> tuple[list[list[float]], int]:
    """Scores of every candidate of every item in one forward pass, and the tokens it fed.

    ``memo`` is the :class:`~mmedkit.models.hf_cache.PrefixMemo` supplying the shared leading tokens.
    """
    shared = memo.shared_len(contexts)
    trees = [build_tree(c) for c in candidates]
    batch = pack([c[shared:] for c in contexts], trees, shared, pad_id, dtype, device)
    kwargs: dict[str, Any] = {}
    if shared:
        kwargs[cache_kw] = memo.cache_for(tuple(contexts[0][:shared]), len(contexts))
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                use_cache=bool(shared), logits_to_keep=batch.keep, **kwargs)
    return candidate_scores(out.logits, trees), batch.fed_tokens
