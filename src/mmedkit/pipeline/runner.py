"""Run a plan: skip finished stages, resume interrupted ones, rerun changed ones, show the whole plan.

Each stage keeps ``DIR/<stage>/stage.json``: its fingerprint, status (``running``, ``done``,
``interrupted``, ``failed``, ``submitted``), wall time over all sessions and a summary. On a rerun a
stage is

* ``done`` — finished with the same fingerprint: skipped;
* ``resume`` — started with the same fingerprint but not finished (killed, interrupted): run again in
  its folder, where it resumes on its own (corpus tasks, training checkpoints, the benchmark cache);
* ``changed`` — its fingerprint differs: its folder is cleared and it runs from scratch;
* ``pending`` — never started.

``--from``/``--only`` force stages to run again from scratch. A lock file keeps two runs out of one
folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from rich.live import Live
from rich.table import Table

from mmedkit.errors import MmedError
from mmedkit.pipeline.plan import build_plan, select
from mmedkit.pipeline.stages import Context, Interrupted, Stage, Submitted
from mmedkit.utils import atomic_write_json, atomic_write_text

STATE_FILE = "stage.json"
PLAN_FILE = "plan.json"
EXPERIMENT_FILE = "experiment.yaml"
LOCK_FILE = ".lock"
TRAINING = ("pretrain", "sft")


class Locked(MmedError):
    """Another run holds the output folder."""


# ---------------------------------------------------------------------------------------------- state
def read_state(root: Path, name: str) -> dict[str, Any] | None:
    path = root / name / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def write_state(root: Path, name: str, state: dict[str, Any]) -> None:
    atomic_write_json(root / name / STATE_FILE, state)


def status(stage: Stage, state: dict[str, Any] | None, forced: bool) -> str:
    """What a run does with ``stage``: done (skip), resume, changed, rerun (forced) or pending."""
    if state is None:
        return "pending"
    if forced:
        return "rerun"
    if state.get("fingerprint") != stage.fingerprint:
        return "changed"
    return "done" if state.get("status") == "done" else "resume"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------- lock
@contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """Hold ``root/.lock`` (pid, host, start) for the run; a lock left by a dead process is taken over."""
    path = root / LOCK_FILE
    root.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None:
                raise Locked(f"{root} is in use by another run (pid {holder.get('pid')} on {holder.get('host')}, "
                             f"since {holder.get('started')}); wait for it to end, or use another --out. If that "
                             f"process is gone, delete {path}") from None
            path.unlink(missing_ok=True)  # stale: its process has died
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        break
    else:
        raise Locked(f"{path}: could not take the lock")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _holder(path: Path) -> dict[str, Any] | None:
    """The lock's holder while it is alive (same host: its pid still runs), else None."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"pid": "?", "host": "?", "started": "?"}  # being written right now
    if holder.get("host") != socket.gethostname():
        return holder
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return None
    except (PermissionError, ValueError, KeyError):
        pass
    return holder


def lock_holder(root: Path) -> dict[str, Any] | None:
    """Who runs in ``root`` now, or None."""
    path = root / LOCK_FILE
    return _holder(path) if path.is_file() else None


# ---------------------------------------------------------------------------------------------- display
_STYLE = {"done": "green", "finished": "bold green", "skipped": "green", "running": "bold yellow", "resume": "yellow",
          "changed": "cyan", "rerun": "cyan", "pending": "white", "failed": "bold red", "interrupted": "bold red",
          "submitted": "magenta", "waiting": "dim"}


class PlanView:
    """The plan as a table (stage, status, wall time, note), refreshed as stages run."""

    def __init__(self, plan: list[Stage], statuses: dict[str, str], title: str) -> None:
        self.plan, self.title = plan, title
        self.rows = {s.name: {"status": statuses[s.name], "time": None, "note": "", "start": None} for s in plan}

    def set(self, name: str, status: str, note: str = "", seconds: float | None = None) -> None:
        row = self.rows[name]
        row.update(status=status, note=note or row["note"])
        row["start"] = time.monotonic() if status == "running" else None
        if seconds is not None:
            row["time"] = seconds

    def __rich__(self) -> Table:
        table = Table(title=self.title, title_justify="left", expand=False)
        for col in ("stage", "kind", "status", "time", "note"):
            table.add_column(col, justify="right" if col == "time" else "left")
        for stage in self.plan:
            row = self.rows[stage.name]
            seconds = time.monotonic() - row["start"] if row["start"] else row["time"]
            shown = "" if seconds is None else f"{seconds:,.0f} s"
            style = _STYLE.get(row["status"], "")
            table.add_row(stage.name, stage.kind, f"[{style}]{row['status']}[/]", shown, row["note"])
        return table


# ---------------------------------------------------------------------------------------------- running
def prepare(exp: Any, raw: Any, root: Path, start: str | None = None,
            only: str | None = None) -> tuple[list[Stage], set[str], dict[str, str]]:
    """The plan, the stages forced to rerun, and what a run would do with each stage."""
    plan = build_plan(exp, raw, root)
    forced = select(plan, start, only)
    statuses = {s.name: status(s, read_state(root, s.name), s.name in forced) for s in plan}
    if only:
        done = {s.name for s in plan if statuses[s.name] == "done"}
        for stage in plan:
            if stage.name in forced and (missing := [n for n in stage.needs if n not in done and n not in forced]):
                raise MmedError(f"--only {only}: {stage.name} needs {', '.join(missing)}, which has not finished; "
                                "run the experiment without --only first")
        statuses = {n: (s if n in forced else "skipped") for n, s in statuses.items()}
    return plan, forced, statuses


def run_plan(exp: Any, raw: Any, root: Path, *, start: str | None = None, only: str | None = None,
             console: Any = None, progress: bool = True) -> dict[str, list[str]]:
    """Run the experiment in ``root``; returns the stage names that ran and those skipped."""
    root = root.resolve()
    plan, forced, statuses = prepare(exp, raw, root, start, only)
    ctx = Context(exp, root, console=console, progress=progress)
    view = PlanView(plan, statuses, f"experiment {exp.name} -> {root}")
    ran, skipped = [], []
    with folder_lock(root), _live(view, console, progress):
        for name in forced:  # cleared now: if this run stops early, the next one still runs them again
            shutil.rmtree(root / name, ignore_errors=True)
        atomic_write_text(root / EXPERIMENT_FILE, yaml.safe_dump(raw.data, sort_keys=False, allow_unicode=True))
        atomic_write_json(root / PLAN_FILE, {"name": exp.name, "stages": [
            {"name": s.name, "kind": s.kind, "needs": list(s.needs), "fingerprint": s.fingerprint,
             "command": s.command} for s in plan]})
        for stage in plan:
            if statuses[stage.name] in ("done", "skipped"):
                skipped.append(stage.name)
                view.set(stage.name, "skipped" if statuses[stage.name] == "skipped" else "done",
                         seconds=(read_state(root, stage.name) or {}).get("wall_s"))
                continue
            _run_stage(stage, statuses[stage.name], ctx, view, progress)
            ran.append(stage.name)
    return {"ran": ran, "skipped": skipped}


@contextmanager
def _live(view: PlanView, console: Any, enabled: bool) -> Iterator[None]:
    if not enabled or console is None:
        yield
        return
    with Live(view, console=console, refresh_per_second=2, transient=False):
        yield


def _run_stage(stage: Stage, how: str, ctx: Context, view: PlanView, progress: bool) -> None:
    folder = ctx.root / stage.name
    previous = read_state(ctx.root, stage.name) if how == "resume" else None
    if how in ("changed", "rerun"):
        shutil.rmtree(folder, ignore_errors=True)
    state = {"stage": stage.name, "kind": stage.kind, "fingerprint": stage.fingerprint, "needs": list(stage.needs),
             "status": "running", "started": _now(), "wall_s": (previous or {}).get("wall_s", 0.0),
             "sessions": (previous or {}).get("sessions", 0) + 1}
    write_state(ctx.root, stage.name, state)
    view.set(stage.name, "running", "resuming" if how == "resume" else "")
    if not progress:
        ctx.say(f"> {stage.name}: {'resuming' if how == 'resume' else 'running'}")
    t0 = time.perf_counter()

    def end(status: str, **extra: Any) -> float:
        state.update(status=status, wall_s=round(state["wall_s"] + time.perf_counter() - t0, 2), **extra)
        write_state(ctx.root, stage.name, state)
        view.set(stage.name, status, seconds=state["wall_s"])
        return state["wall_s"]

    try:
        summary = stage.run(ctx)
    except Submitted as exc:
        end("submitted", note=str(exc))
        raise
    except (KeyboardInterrupt, Interrupted):
        end("interrupted")
        raise
    except BaseException as exc:
        end("failed", error=str(exc)[:2000])
        raise
    if stage.kind in TRAINING:  # finished: its checkpoints are no longer needed to resume
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    seconds = end("done", finished=_now(), summary=summary)
    if not progress:
        ctx.say(f"  {stage.name}: done in {seconds:,.1f} s")
