"""Training metrics: the JSONL log (``train_log.jsonl``), accelerate's trackers (TensorBoard, W&B), a progress bar.

Only the main process writes anything. TensorBoard events go to ``OUT/tensorboard``; a resumed run
drops the events and log lines written after the checkpoint it resumes from, and logs to the same
W&B run (its id is derived from the run's identity).
"""

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


def make_trackers(logging: Any, out: Path, *, config: dict[str, Any], run_id: str,
                  start_step: int) -> tuple[list[Any], list[str]]:
    """accelerate trackers for the sinks ``logging`` enables, and a note for each one that is not installed."""
    from accelerate.tracking import TensorBoardTracker, WandBTracker
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    trackers: list[Any] = []
    notes: list[str] = []
    if logging.tensorboard and is_tensorboard_available():
        trackers.append(TensorBoardTracker("tensorboard", out, purge_step=start_step or None))
    elif logging.tensorboard:
        notes.append("TensorBoard logging is off: pip install tensorboard")
    if logging.wandb and is_wandb_available():
        trackers.append(WandBTracker(logging.wandb_project, name=logging.run_name or out.name, id=run_id,
                                     resume="allow", dir=str(out), config=flatten(config)))
    elif logging.wandb:
        notes.append("W&B logging is off: wandb is not installed (pip install wandb)")
    return trackers, notes


class Tracker:
    """Sends metrics to the JSONL log and the accelerator's trackers, and shows progress (main process only)."""

    def __init__(self, out: Path, logging: Any, accelerator: Any, *, config: dict[str, Any], run_id: str,
                 total_steps: int, start_step: int, console: Console | None = None) -> None:
        self.out, self.accelerator, self.main = out, accelerator, accelerator.is_main_process
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.notes: list[str] = []
        if not self.main:
            return
        self._truncate_log(start_step)
        trackers, self.notes = make_trackers(logging, out, config=config, run_id=run_id, start_step=start_step)
        accelerator.log_with = trackers  # GeneralTracker instances: init_trackers starts them
        accelerator.init_trackers(logging.wandb_project)
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
        self.accelerator.log(scalars, step=step)

    def advance(self, step: int, stats: str, eta: float | None) -> None:
        """Move the progress bar to ``step``."""
        if self.progress is not None:
            self.progress.update(self.task, completed=step, stats=stats, eta=format_eta(eta))

    def print(self, message: str) -> None:
        """A line above the progress bar (main process only)."""
        if self.main:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        """Stop the progress bar and finish every tracker (the process group stays up for the final save)."""
        if self.progress is not None:
            self.progress.stop()
        for tracker in self.accelerator.trackers:
            tracker.finish()
        self.accelerator.trackers.clear()
