"""``mmed pipeline``: run the study as one experiment, see where it stands, rebuild its report; ``mmed demo``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mmedkit.clikit import console, err, handle_errors, say

app = typer.Typer(help="The study as one experiment: corpus -> pretraining -> fine-tuning -> evaluation -> report.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)

RESUME_HINT = "finished stages are kept and the running one resumes: run the same command again."


@app.command("run")
def run(
    experiment: Annotated[str, typer.Argument(help="Experiment YAML, or a shipped recipe (see `mmed pipeline "
                                                   "recipes`).")],
    out: Annotated[Path, typer.Option(help="Output folder: one subfolder per stage, and the report.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a setting of the experiment: KEY=VALUE, "
                                                                 "e.g. evaluate.limit=20 (value read as YAML).")]
    = None,
    from_: Annotated[str | None, typer.Option("--from", help="Run this stage (or kind: sft, eval...) and every "
                                                             "stage downstream of it again.")] = None,
    only: Annotated[str | None, typer.Option(help="Run only this stage (or kind) again; its inputs must be "
                                                  "finished.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan, what a run would do and each stage's command; "
                                               "run nothing.")] = False,
    progress: Annotated[bool, typer.Option(help="Show the live plan and progress bars.")] = True,
) -> None:
    """Run (or resume) an experiment: stages already finished with the same settings are skipped."""
    from mmedkit.pipeline.experiment import load_experiment
    from mmedkit.pipeline.runner import prepare, run_plan
    from mmedkit.pipeline.stages import Interrupted, Submitted

    with handle_errors(interrupted=RESUME_HINT):
        exp, raw = load_experiment(experiment, set_ or ())
        if dry_run:
            plan, _, statuses = prepare(exp, raw, out, from_, only)
            _print_plan(exp.name, out, plan, statuses)
            return
        _quiet_libraries()
        try:
            result = run_plan(exp, raw, out, start=from_, only=only, console=err, progress=progress)
        except Submitted as exc:
            say("submitted", "magenta", exc, stream=console)
            return
        except Interrupted:  # a training stage saved a checkpoint and stopped (Ctrl-C, SIGTERM)
            raise KeyboardInterrupt from None
    if not progress:
        say("done", "green", f"ran {', '.join(result['ran']) or 'nothing'}; "
                             f"skipped (finished) {', '.join(result['skipped']) or 'nothing'}", stream=console)
    _print_results(out)


def _quiet_libraries() -> None:
    """Keep the libraries' own progress bars and notices out of the plan display (stage logs stay)."""
    import logging

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _print_plan(name: str, out: Path, plan: list, statuses: dict[str, str]) -> None:
    from rich.table import Table

    table = Table(title=f"Plan of {name} in {out} (dry run: nothing runs)", title_justify="left")
    for col in ("stage", "needs", "would", "fingerprint"):
        table.add_column(col)
    for stage in plan:
        table.add_row(stage.name, ", ".join(stage.needs) or "–", statuses[stage.name], stage.fingerprint)
    console.print(table)
    for stage in plan:
        if stage.command:
            console.print(f"[bold]{stage.name}[/]:", stage.command, markup=True, highlight=False, soft_wrap=True)


def _print_results(out: Path) -> None:
    from mmedkit.pipeline.report import REPORT_DIR, console_tables, serve_command

    for table in console_tables(out):
        console.print(table)
    report = out / REPORT_DIR / "report.html"
    if report.is_file():
        console.print(f"report: {report} (and report.md, PNG charts)", highlight=False, soft_wrap=True)
    if command := serve_command(out):
        console.print(f"chat with the fine-tuned model: {command}", highlight=False, soft_wrap=True)


@app.command("status")
def status(out: Annotated[Path, typer.Argument(help="Output folder of `mmed pipeline run`.")]) -> None:
    """Where an experiment stands: each stage's status, wall time and work, and who is running it."""
    from datetime import datetime, timezone

    from rich.table import Table

    from mmedkit.errors import MmedError
    from mmedkit.pipeline.runner import PLAN_FILE, lock_holder, read_state

    with handle_errors():
        if not (out / PLAN_FILE).is_file():
            raise MmedError(f"{out}: not an experiment folder (no {PLAN_FILE}; make one with `mmed pipeline run`)")
        import json

        plan = json.loads((out / PLAN_FILE).read_text(encoding="utf-8"))
    holder = lock_holder(out)
    table = Table(title=f"Experiment {plan['name']} in {out}", title_justify="left")
    for col in ("stage", "status", "wall time", "finished (UTC)"):
        table.add_column(col, justify="right" if col == "wall time" else "left", no_wrap=True)
    for stage in plan["stages"]:
        state = read_state(out, stage["name"]) or {}
        current, wall = state.get("status", "pending"), state.get("wall_s")
        if current == "running" and holder:
            wall = (wall or 0) + (datetime.now(timezone.utc) - datetime.fromisoformat(state["started"])).total_seconds()
        elif current == "running":
            current = "stopped (resumes on the next run)"
        if state.get("fingerprint") not in (None, stage["fingerprint"]):
            current += " (older settings)"
        table.add_row(stage["name"], current, "" if wall is None else f"{wall:,.0f} s",
                      state.get("finished", "")[:19].replace("T", " "))
    console.print(table)
    console.print(f"running now: pid {holder['pid']} on {holder['host']} since {holder['started']}" if holder
                  else "not running", highlight=False)


@app.command("report")
def report(out: Annotated[Path, typer.Argument(help="Output folder of `mmed pipeline run`.")]) -> None:
    """Rebuild the report (Markdown, HTML, PNG) from what the stages wrote, and print the comparison."""
    from mmedkit.pipeline.report import write_report

    with handle_errors():
        write_report(out)
    _print_results(out)


@app.command("recipes")
def recipes() -> None:
    """The shipped experiment recipes."""
    from mmedkit.pipeline.experiment import RECIPES

    for name in RECIPES.names():
        first = (RECIPES.root / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        console.print(f"[bold]{name}[/]: {first}", highlight=False)


def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/demo"),
    real_model: Annotated[bool, typer.Option(help="Use the embedded SmolLM2-135M-Instruct; --no-real-model runs the "
                                                  "same experiment with a tiny random model (a minute).")] = True,
) -> None:
    """The study in miniature on embedded data: corpus, continued pretraining, fine-tuning, evaluation, report."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sets = []
    if not real_model:
        from mmedkit.models.tiny import build_tiny_model

        tiny = out / "tiny-model"
        if not (tiny / "model.safetensors").exists():
            build_tiny_model(tiny)
        sets = [f"model={tiny.resolve()}"]
    run("demo-cpu", out, set_=sets)
