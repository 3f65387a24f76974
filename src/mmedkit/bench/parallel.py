"""Data-parallel evaluation: ``mmed bench run`` under ``torchrun`` or ``accelerate launch`` shares the items out.

Every process loads the model (hf: on its own GPU, ``cuda:LOCAL_RANK``; openai: with its part of
``--concurrency``, so the server sees the same number of requests in flight), reads the finished samples of
every earlier run, and scores its share of the items still to do: the engine's chunks of them, dealt
round-robin. Each process appends to its own resume cache (``.cache/<fingerprint>.rank-<r>.jsonl``; one writer
per file). When all are done, rank 0 folds the rank caches into the run's cache and writes samples, metrics
and report. They are those of a one-process run, to the last digit: items keep their order, and each chunk is
scored exactly as one process scores it (the hf backend batches and pads within a chunk, and padding changes
the last bits of a score).

The processes talk over a gloo process group (on GPUs too: only a few small objects travel), with a long
timeout, as one rank may finish its share hours before another.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from mmedkit.errors import MmedError

PARALLEL_BACKENDS = ("hf", "openai")
GROUP_TIMEOUT = timedelta(days=2)


def world_from_env() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` the launcher set (``(0, 0, 1)`` without one)."""
    def read(*names: str, default: int) -> int:
        for name in names:
            value = os.environ.get(name, "").strip()
            if value:
                try:
                    return int(value)
                except ValueError:
                    raise MmedError(f"environment variable {name}={value!r} is not a number") from None
        return default

    world = read("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", default=1)
    rank = read("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", default=0)
    return rank, read("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", default=0), world


def deal(todo: Sequence[Any], chunk: int, rank: int, world: int) -> list[Any]:
    """Rank ``rank``'s chunks of ``chunk`` items of ``todo`` (every ``world``-th chunk from the ``rank``-th)."""
    starts = range(rank * chunk, len(todo), world * chunk)
    return [it for start in starts for it in todo[start:start + chunk]]


class Ranks:
    """This process's place among the evaluation's processes, and what they exchange."""

    def __init__(self, rank: int = 0, local_rank: int = 0, world: int = 1, *, formed: bool = False) -> None:
        self.rank, self.local_rank, self.world = rank, local_rank, world
        self.formed = formed  # this object formed the process group (and closes it)

    @classmethod
    def from_env(cls) -> Ranks:
        """The launcher's group, formed (a clear error when it cannot be), or one process."""
        rank, local, world = world_from_env()
        if world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                try:
                    dist.init_process_group("gloo", timeout=GROUP_TIMEOUT)
                except (RuntimeError, ValueError) as exc:
                    raise MmedError(f"WORLD_SIZE={world} but the process group could not form ({exc}); check "
                                    f"MASTER_ADDR, MASTER_PORT and that every rank was started") from exc
                return cls(rank, local, world, formed=True)
        return cls(rank, local, world)

    def close(self) -> None:
        """Take down the process group this object formed (a group left to interpreter exit can abort it)."""
        if self.formed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.formed = False

    @property
    def main(self) -> bool:
        """True on rank 0 (the one that writes results and prints)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (on every rank)."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def share(self, todo: Sequence[Any], chunk: int) -> list[Any]:
        """This rank's items of ``todo``: its chunks of ``chunk`` items (every ``world``-th, from ``rank``), one
        after the other. Waits first until every rank has read the caches, so that all share out the same list."""
        self.barrier()
        return deal(todo, chunk, self.rank, self.world)

    def model_options(self, backend: str, options: dict[str, Any]) -> dict[str, Any]:
        """The backend options of this rank: its GPU (hf), its part of the concurrency (openai)."""
        if self.world == 1:
            return options
        if backend not in PARALLEL_BACKENDS:
            raise MmedError(f"backend {backend!r} does not run data-parallel (it uses the GPUs itself, e.g. vllm "
                            f"with --tensor-parallel-size): start one process; data-parallel backends: "
                            f"{', '.join(PARALLEL_BACKENDS)}")
        opts = dict(options)
        if backend == "hf" and not opts.get("device"):
            import torch

            count = torch.cuda.device_count()
            opts["device"] = f"cuda:{self.local_rank % count}" if count else "cpu"
        if backend == "openai":
            total = int(opts.get("concurrency") or 8)
            if total < self.world:
                raise MmedError(f"--concurrency {total} is less than the {self.world} processes: each needs at "
                                f"least one request in flight")
            opts["concurrency"] = total // self.world + (self.rank < total % self.world)
        return opts

    def cache(self, out: Path, fingerprint: str) -> RankCache:
        """The resume cache this rank appends to (and reads every rank's)."""
        return RankCache(out, fingerprint, self)


class RankCache:
    """The run's resume cache (``.cache/<fingerprint>.jsonl``) and one append-only file per rank beside it.

    ``load`` reads them all (a run resumed at another number of processes loses nothing); ``append`` writes
    this rank's file (the run's own file with one process); ``merge`` (rank 0, after every rank finished) folds
    the rank files into the run's file.
    """

    def __init__(self, out: Path, fingerprint: str, ranks: Ranks) -> None:
        from mmedkit.bench.engine import SampleCache

        self.main = SampleCache(out, fingerprint)
        self.path = self.main.path
        self.ranks = ranks
        self.mine = self.main if ranks.world == 1 else SampleCache(out, f"{fingerprint}.rank-{ranks.rank}")

    def _rank_files(self) -> list[Path]:
        return sorted(self.path.parent.glob(f"{self.path.stem}.rank-*.jsonl"))

    def load(self) -> dict[str, dict[str, Any]]:
        """Finished samples by item id, from the run's file and every rank file."""
        from mmedkit.records import read_records

        done = self.main.load()
        for path in self._rank_files():
            done.update((rec.data["id"], rec.data) for rec in read_records(path, skip_invalid=True))
        return done

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append this rank's records durably."""
        self.mine.append(records)

    def merge(self) -> dict[str, dict[str, Any]]:
        """After every rank finished: rank 0 folds the rank files into the run's file; every rank gets all samples.

        The rank files are removed only once their samples are in the run's file (fsynced).
        """
        self.ranks.barrier()
        done = self.load()
        if self.ranks.main and (files := self._rank_files()):
            have = set(self.main.load())
            self.main.append([rec for key, rec in done.items() if key not in have])
            for path in files:
                path.unlink()
        return done


def _where(backend: str, options: dict[str, Any]) -> str:
    use = f"{options.get('concurrency')} requests in flight" if backend == "openai" else options.get("device") or "auto"
    return f"{socket.gethostname()} {use}"


def announce(ranks: Ranks, backend: str, options: dict[str, Any], items: int) -> str:
    """One line (gathered on every rank): the world size and each rank's place and share of the items."""
    shares = ranks.gather(f"rank {ranks.rank} {_where(backend, options)}, {items} items")
    return f"{ranks.world} processes: " + "; ".join(shares)


def rank_summary(ranks: Ranks, backend: str, options: dict[str, Any], items: int,
                 seconds: float) -> list[dict[str, Any]]:
    """Per rank: where it ran, the items it scored this run and its speed (gathered on every rank)."""
    mine = {"rank": ranks.rank, "where": _where(backend, options), "items": items, "eval_s": round(seconds, 3),
            "items_per_s": round(items / seconds, 3) if seconds > 0 else None}
    return ranks.gather(mine)


def describe(per_rank: list[dict[str, Any]]) -> str:
    """One line: each rank's items and speed."""
    return "per rank: " + "; ".join(
        f"rank {r['rank']} {r['items']} items" + (f" at {r['items_per_s']:.2f} items/s" if r["items_per_s"] else "")
        for r in per_rank)


__all__ = ["RankCache", "Ranks", "announce", "deal", "describe", "rank_summary", "world_from_env"]
