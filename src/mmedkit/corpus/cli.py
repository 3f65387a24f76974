"""``mmed corpus``: build, filter, calibrate and report (a Typer sub-app mounted by ``mmedkit.cli``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Build the medical corpus: language ID, keyword filter, quality, dedup (datatrove).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)


def _run(cfg: object) -> None:
    from mmedkit.clikit import console, handle_errors
    from mmedkit.corpus.pipeline import run_pipeline
    from mmedkit.corpus.stats import REPORT_DIR, render_markdown

    with handle_errors(RuntimeError, ImportError,
                       interrupted="completed tasks are kept; run the same command again to resume."):
        report = run_pipeline(cfg)  # type: ignore[arg-type]
    out = cfg.output.path  # type: ignore[attr-defined]
    if report is None:
        console.print(f"submitted to Slurm; when the jobs finish, run: mmed corpus stats {out}")
        return
    console.print(render_markdown(report), markup=False, highlight=False, soft_wrap=True)
    console.print(f"corpus: {out}/<language>/  report: {out}/{REPORT_DIR}/corpus_report.md (.json, .png)")


@app.command("build")
def build(
    config: Annotated[str, typer.Argument(help="YAML config, or a shipped recipe: mmedc | demo.")],
    output: Annotated[str | None, typer.Option(help="Override output.path.")] = None,
    executor: Annotated[str | None, typer.Option(help="Override executor.type: local | ray | slurm.")] = None,
    tasks: Annotated[int | None, typer.Option(min=1, help="Override executor.tasks.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Override executor.workers.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a setting: KEY=VALUE, e.g. "
                                                        "executor.tasks=8 (value read as YAML).")] = None,
) -> None:
    """Run (or resume) the whole pipeline a config describes, then write the report."""
    from mmedkit.clikit import handle_errors
    from mmedkit.corpus.config import EXECUTORS, ConfigError, load_config

    with handle_errors():
        cfg = load_config(config, overrides or ())
        if executor is not None and executor not in EXECUTORS:
            raise ConfigError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
        if output:
            cfg.output.path = output
        cfg.executor.type = executor or cfg.executor.type
        cfg.executor.tasks = tasks or cfg.executor.tasks
        cfg.executor.workers = workers or cfg.executor.workers
        if cfg.executor.type == "slurm" and not cfg.executor.partition:
            raise ConfigError(f"{cfg.source_file}: executor.partition is required for the slurm executor")
    _run(cfg)


@app.command("filter")
def filter_cmd(
    inp: Annotated[str, typer.Argument(metavar="IN", help="Input file or folder (JSONL or Parquet, fsspec paths).")],
    out: Annotated[str, typer.Argument(metavar="OUT", help="Output folder.")],
    langs: Annotated[str, typer.Option(help="Comma-separated language codes to keep.")] = "en,zh,ja,fr,ru,es",
    keywords: Annotated[bool, typer.Option(help="Medical keyword filter.")] = True,
    thresholds: Annotated[str, typer.Option(help="Keyword thresholds: default | study.")] = "default",
    quality: Annotated[bool, typer.Option(help="Quality heuristics.")] = True,
    dedup: Annotated[bool, typer.Option(help="Exact deduplication.")] = True,
    near_dedup: Annotated[bool, typer.Option(help="Near-duplicate (MinHash) deduplication.")] = False,
    text_key: Annotated[str, typer.Option(help="Name of the text field.")] = "text",
    tasks: Annotated[int, typer.Option(min=1, help="Tasks (input shards).")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="Parallel worker processes.")] = 1,
    write_removed: Annotated[bool, typer.Option(help="Write dropped documents to OUT/removed/<step>/.")] = True,
) -> None:
    """Short form of `build`: filter IN into OUT with the default steps."""
    from mmedkit.clikit import handle_errors
    from mmedkit.corpus.config import parse_config

    steps: dict[str, object] = {"language_id": {}}
    if keywords:
        steps["medical_keywords"] = {"thresholds": thresholds}
    if quality:
        steps["quality"] = {}
    if dedup:
        steps["exact_dedup"] = {}
    if near_dedup:
        steps["near_dedup"] = {}
    data = {"name": Path(out.rstrip("/")).name or "corpus", "languages": langs,
            "inputs": [{"path": inp, "text_key": text_key}], "steps": steps,
            "output": {"path": out, "write_removed": write_removed},
            "executor": {"type": "local", "tasks": tasks, "workers": workers}}
    with handle_errors():
        cfg = parse_config(data, source="mmed corpus filter")
    _run(cfg)


@app.command("stats")
def stats(
    output: Annotated[str, typer.Argument(help="Output folder of `mmed corpus build`.")],
    work_dir: Annotated[str | None, typer.Option(help="Its work folder, when not OUTPUT/_work.")] = None,
) -> None:
    """Rebuild the report (JSON, Markdown, PNG) of a finished or partly finished build and print it."""
    from mmedkit.clikit import console, handle_errors
    from mmedkit.corpus.stats import REPORT_DIR, render_markdown, write_report

    with handle_errors(KeyError):
        report = write_report(output, work_dir)
    console.print(render_markdown(report), markup=False, highlight=False, soft_wrap=True)
    console.print(f"report: {output.rstrip('/')}/{REPORT_DIR}/corpus_report.md (.json, .png)")


@app.command("calibrate")
def calibrate_cmd(
    labelled: Annotated[list[Path], typer.Argument(help="Labelled JSONL files (text, lang, label, source).")],
    langs: Annotated[str | None, typer.Option(help="Comma-separated language codes (default: all found).")] = None,
    folds: Annotated[int, typer.Option(min=2, help="Folds of the cross-validated F1.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 13,
    out: Annotated[Path | None, typer.Option(help="Write the full report (whole grid) as JSON here.")] = None,
) -> None:
    """Precision/recall/F1 of the medical keyword filter over a threshold grid, per language and source."""
    from mmedkit.clikit import console, handle_errors
    from mmedkit.corpus.calibrate import calibrate, report_markdown
    from mmedkit.utils import atomic_write_json

    with handle_errors(KeyError):
        codes = [c.strip() for c in langs.split(",") if c.strip()] if langs else None
        report = calibrate(labelled, language=codes, folds=folds, seed=seed)
    console.print(report_markdown(report), markup=False, highlight=False)
    if out:
        atomic_write_json(out, report)
        console.print(f"report: {out}")
