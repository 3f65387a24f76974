"""Training metrics: a JSONL log, TensorBoard, Weights & Biases (when installed and enabled), a progress bar."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mmedkit.utils import atomic_write_text

LOG_FILE = "train_log.jsonl"


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


def format_eta(seconds: float | None) -> str:
    """``1h02m`` / ``4m05s`` / ``–``."""
    if seconds is None or seconds != seconds:
        return "–"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Tracker:
    """Sends metrics to every enabled sink; only the main process writes anything."""

    def __init__(self, out: Path, logging: Any, config: dict[str, Any], *, main: bool, total_steps: int,
                 start_step: int, run_id: str, console: Console | None = None) -> None:
        self.out, self.main, self.total = out, main, total_steps
        self.console = console or Console(stderr=True)
        self.tb: Any = None
        self.wandb: Any = None
        self.progress: Progress | None = None
        self.notes: list[str] = []
        if not main:
            return
        self._truncate_log(start_step)
        if logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=start_step or None)
            except ImportError:
                self.notes.append("TensorBoard logging is off: pip install tensorboard")
        if logging.wandb:
            try:
                import wandb
            except ImportError:
                self.notes.append("W&B logging is off: wandb is not installed (pip install wandb)")
            else:
                self.wandb = wandb.init(project=logging.wandb_project, name=logging.run_name or out.name, id=run_id,
                                        resume="allow", dir=str(out), config=flatten(config))
        if logging.progress:
            self.progress = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                     TextColumn("ETA {task.fields[eta]}"), console=self.console)
            self.task = self.progress.add_task("train", total=total_steps, completed=start_step, stats="", eta="–")
            self.progress.start()

    def _truncate_log(self, step: int) -> None:
        """Drop log lines past ``step`` (written after the checkpoint a run resumes from)."""
        path = self.out / LOG_FILE
        if not path.is_file():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue
        atomic_write_text(path, "".join(x + "\n" for x in keep))

    def log(self, step: int, metrics: dict[str, float | int | None], kind: str = "train") -> None:
        """Record ``metrics`` at ``step`` (``kind``: train or eval)."""
        if not self.main:
            return
        rec = {"step": step, "kind": kind, "time": round(time.time(), 3), **metrics}
        with (self.out / LOG_FILE).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        scalars = {f"{kind}/{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def advance(self, step: int, stats: str, eta: float | None) -> None:
        """Move the progress bar to ``step``."""
        if self.progress is not None:
            self.progress.update(self.task, completed=step, stats=stats, eta=format_eta(eta))

    def print(self, message: str) -> None:
        """A line above the progress bar (main process only)."""
        if self.main:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        """Flush and close every sink."""
        if self.progress is not None:
            self.progress.stop()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
