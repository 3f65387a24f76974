"""Batches: which sequences each process reads at each step, padded into tensors with masked labels.

The data of optimizer step ``s`` is a pure function of ``s``: the global batch is a slice of the epoch's
sequence order (itself fixed by the seed), dealt round-robin to the processes and cut into micro-batches.
That is what lets a checkpoint resume exactly at a step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmedkit.train.sft_data import IGNORE


def collate(rows: Sequence[dict[str, np.ndarray] | None], pad_id: int, pad_to: int | None = None,
            multiple_of: int | None = None) -> dict[str, torch.Tensor]:
    """Right-pad rows into tensors; padding gets attention 0 and label -100.

    ``None`` rows (fillers that keep every process in step at the end of an epoch) become one
    masked token.
    """
    real = [r if r is not None else {"input_ids": np.array([pad_id]), "labels": np.array([IGNORE])} for r in rows]
    fill = [r is None for r in rows]
    width = max(len(r["input_ids"]) for r in real)
    if pad_to:
        width = max(width, pad_to)
    if multiple_of:
        width = math.ceil(width / multiple_of) * multiple_of
    ids = torch.full((len(real), width), pad_id, dtype=torch.long)
    labels = torch.full((len(real), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(real), width), dtype=torch.long)
    for i, (r, f) in enumerate(zip(real, fill, strict=True)):
        n = len(r["input_ids"])
        ids[i, :n] = torch.as_tensor(r["input_ids"])
        labels[i, :n] = torch.as_tensor(r["labels"])
        mask[i, :n] = 0 if f else 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def target_count(batch: dict[str, torch.Tensor]) -> int:
    """Tokens the loss covers (labels are shifted: position 0 is never a target)."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token negative log-likelihood over the labelled positions (fp32)."""
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE, reduction="sum")


@dataclass
class StepPlan:
    """Which sequences every process reads at every optimizer step."""

    epoch_sizes: list[int]
    global_batch: int
    micro_batch: int
    world: int
    max_steps: int | None = None

    def __post_init__(self) -> None:
        self.per_epoch = [math.ceil(n / self.global_batch) for n in self.epoch_sizes]
        self.starts = np.cumsum([0, *self.per_epoch])
        self.accum = self.global_batch // (self.micro_batch * self.world)

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the run."""
        full = int(self.starts[-1])
        return min(full, self.max_steps) if self.max_steps else full

    def locate(self, step: int) -> tuple[int, int]:
        """``(epoch, step within the epoch)`` of global step ``step`` (0-based)."""
        e = int(np.searchsorted(self.starts, step, side="right")) - 1
        return e, step - int(self.starts[e])

    def micro_batches(self, epoch: int, k: int, rank: int) -> list[list[int | None]]:
        """This process's ``accum`` micro-batches (sequence positions in the epoch) for step ``k`` of ``epoch``.

        The global batch is dealt round-robin to processes; at the end of an epoch a process with
        fewer sequences gets smaller micro-batches and, where it has none left, a ``None`` filler.
        """
        lo = k * self.global_batch
        mine = list(range(lo + rank, min(lo + self.global_batch, self.epoch_sizes[epoch]), self.world))
        out: list[list[int | None]] = [mine[i:i + self.micro_batch] for i in range(0, len(mine), self.micro_batch)]
        return out + [[None]] * (self.accum - len(out))


class Rows:
    """Map-style dataset over an epoch that accepts the ``None`` filler."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int | None) -> dict[str, np.ndarray] | None:
        return None if i is None else self.data[i]


def step_batches(data: Any, plan: StepPlan, start: int, rank: int, collate_fn: Any,
                 num_workers: int) -> Iterator[tuple[int, list[dict[str, torch.Tensor]]]]:
    """``(step, micro-batches)`` from global step ``start`` on, loading ahead with ``num_workers``."""
    from torch.utils.data import DataLoader

    step = start
    while step < plan.total_steps:
        epoch, k = plan.locate(step)
        last = min(plan.per_epoch[epoch], k + plan.total_steps - step)
        sampler = [mb for kk in range(k, last) for mb in plan.micro_batches(epoch, kk, rank)]
        # Its own generator: creating a loader must not draw from the global RNG (dropout masks after a resume).
        loader = DataLoader(Rows(data.epoch(epoch)), batch_sampler=sampler, collate_fn=collate_fn,
                            num_workers=num_workers, generator=torch.Generator().manual_seed(epoch))
        it = iter(loader)
        for _ in range(k, last):
            yield step, [next(it) for _ in range(plan.accum)]
            step += 1


class Collate:
    """Picklable collate function (data workers)."""

    def __init__(self, pad_id: int, pad_to: int | None, multiple_of: int | None) -> None:
        self.pad_id, self.pad_to, self.multiple_of = pad_id, pad_to, multiple_of

    def __call__(self, rows: Sequence[dict[str, np.ndarray] | None]) -> dict[str, torch.Tensor]:
        return collate(rows, self.pad_id, self.pad_to, self.multiple_of)
