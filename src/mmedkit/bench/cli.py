"""``mmed bench``: evaluate models on MMedBench-style QA, build suites from their sources, score rationales.

Commands: ``run``, ``import``, ``build``, ``list``, ``overlap``, ``validate`` (multiple-choice accuracy and the
benchmark data), ``export`` (leaderboard files) and ``rationale``, ``judge``, ``report`` (rationale metrics,
LLM-as-judge ranking, reports).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmedkit.clikit import console, handle_errors, say

app = typer.Typer(help="MMedBench evaluation.", no_args_is_help=True)


@app.command("run")
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
    max_new_tokens: Annotated[int | None, typer.Option(help="generate mode: tokens to generate (default 64; "
                                                            "--protocol study: 1000).")] = None,
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
    timeout: Annotated[float, typer.Option(help="openai: seconds per request (a timed-out one is not retried).")]
    = 120.0,
    deadline: Annotated[float | None, typer.Option(help="openai: seconds for the whole run (default: none).")]
    = None,
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
    protocol: Annotated[str, typer.Option(help="mmedkit | study (the study's evaluation: its prompt, greedy "
                                               "generation up to 1,000 new tokens, strict scoring as the headline, "
                                               "lenient and log-likelihood scores beside it).")] = "mmedkit",
    study_token_cap: Annotated[int | None, typer.Option(help="--protocol study on a machine too slow for it: "
                                                             "generate at most this many new tokens (a deviation "
                                                             "recorded in results.json; each sample says whether its "
                                                             "strict outcome is decided anyway).")] = None,
) -> None:
    """Evaluate a model on MMedBench-style multiple-choice QA."""
    from mmedkit.bench.engine import STUDY_MAX_NEW_TOKENS, RunConfig, run_benchmark
    from mmedkit.bench.report import SCORING_NAMES, console_table

    with handle_errors(KeyError, interrupted="finished items are cached; rerun the same command to resume."):
        mode = mode or ("generate" if rationale or protocol == "study" else "loglikelihood")
        if rationale and mode != "generate":
            raise ValueError("--rationale scores generated explanations: use it with --mode generate")
        if protocol == "study" and max_new_tokens not in (None, STUDY_MAX_NEW_TOKENS):
            raise ValueError(f"--protocol study generates up to {STUDY_MAX_NEW_TOKENS} new tokens, as the study did: "
                             "drop --max-new-tokens")
        cfg = RunConfig(model=model, data=data, backend=backend, mode=mode, format=format, rationale=rationale,
                        fewshot=fewshot, seed=seed, langs=langs, split=split, limit=limit,
                        max_new_tokens=max_new_tokens or 64, skip_invalid=skip_invalid, protocol=protocol,
                        token_cap=study_token_cap,
                        model_options={
                            "dtype": dtype, "device": device, "adapter": adapter, "batch_size": batch_size,
                            "base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency,
                            "timeout": timeout, "run_timeout": deadline,
                            "tokenizer": tokenizer, "tensor_parallel_size": tensor_parallel_size,
                            "trust_remote_code": trust_remote_code or None})
        if suite is not None:
            _run_suite(suite, cfg, out, progress)
            return
        results = run_benchmark(cfg, out, console=console, show_progress=progress)
        if "rank" in results:  # another process of a data-parallel run: rank 0 prints
            return
    console.print(console_table(results))
    for key, name in SCORING_NAMES.items():
        if key != "metrics" and key in results:
            o = results[key]["overall"]
            say(name, "cyan", f"macro accuracy {o['macro_accuracy']}%, invalid {o['invalid_rate']}% (beside the "
                              "strict headline, not part of it)", stream=console)
    for line in results["data"]["skipped"]:
        say("skipped", "yellow", line)
    console.print(f"results: {out / 'results.json'}  summary: {out / 'summary.md'}")


def _run_suite(suite: str, cfg: object, out: Path, progress: bool) -> None:
    from mmedkit.bench.parallel import world_from_env
    from mmedkit.bench.suite_run import run_suite
    from mmedkit.bench.suites import get_suite

    if world_from_env()[2] > 1:
        raise ValueError("--suite runs on one process; launch each task folder as its own data-parallel run")
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


@app.command("import")
def bench_import(
    source: Annotated[str, typer.Argument(help="Source name (see `mmed bench list`).")],
    path: Annotated[Path, typer.Argument(help="The source's file or folder, as its authors publish it.")],
    out: Annotated[Path, typer.Option(help="Output folder in the MMedBench layout.")],
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Importer option KEY=VALUE, "
                                                     "e.g. keep_images=true.")] = None,
) -> None:
    """Convert one benchmark source to the MMedBench layout."""
    from mmedkit.bench.sources import counts, import_source

    with handle_errors(TypeError):
        result = import_source(source, path, out, **_options(option))
    for key, n in counts(result.items).items():
        console.print(f"{key}: {n}")
    for reason, n in result.dropped.items():
        say("dropped", "yellow", f"{n} ({reason})")
    for note in result.notes:
        say("note", "cyan", note, stream=console)
    console.print(f"wrote {out}")


@app.command("build")
def bench_build(
    suite: Annotated[str, typer.Argument(help="mmedbench-open | english-medical")],
    sources: Annotated[Path, typer.Option(help="Folder holding the sources as their authors publish them.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    source: Annotated[list[str] | None, typer.Option("--source", help="NAME=PATH for a source stored elsewhere.")]
    = None,
    seed: Annotated[int, typer.Option(help="Seed of the IgakuQA split.")] = 20240924,
) -> None:
    """Assemble a suite from the original sources and say how it differs from MMedBench."""
    from rich.table import Table

    from mmedkit.bench.suites import MMEDBENCH_COUNTS, build_suite

    with handle_errors():
        overrides = {k: Path(str(v)) for k, v in _options(source).items()}
        report = build_suite(suite, sources, out, overrides=overrides, seed=seed)

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
        say("differs from MMedBench", "yellow", line, stream=console)
    for line in report.missing:
        say("missing", "yellow", line)
    for line in report.notes:
        say("note", "cyan", line, stream=console)
    for part, dropped in report.dropped.items():
        say("dropped", "cyan", f"{part}: " + ", ".join(f"{n} {r}" for r, n in dropped.items()), stream=console)


@app.command("list")
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


@app.command("overlap")
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
    from mmedkit.utils import atomic_write_json

    with handle_errors():
        root = Path(suite)
        folders = (list(suite_tasks(root).values()) if (root / MANIFEST).is_file() and not (root / "Test").is_dir()
                   else [suite])
        items = [it for f in folders for it in load_benchmark(f, split=split, skip_invalid=True)]
        docs = itertools.chain.from_iterable(iter_corpus(c, text_field) for c in corpus)
        with console.status("scanning corpus ..."):
            report = find_overlap(items, docs)
    summary = report.summary()
    for lang, row in summary["per_language"].items():
        console.print(f"{lang}: {row['flagged']} of {row['items']} test items overlap ({row['rate']}%)")
    console.print(f"{summary['documents_scanned']} corpus documents scanned ({summary['criterion']})")
    if out:
        atomic_write_json(out, summary)
        console.print(f"report: {out}")


@app.command("validate")
def bench_validate(
    data: Annotated[str, typer.Argument(help="MMedBench-layout folder, 'demo' or a hub id.")],
    langs: Annotated[str | None, typer.Option(help="Comma-separated language codes.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Report every bad record instead of stopping at the first.")]
    = True,
) -> None:
    """Check a benchmark folder and print item counts per split and language.

    Exits 1 when a split is missing or empty, a language file has no items, or a record is invalid (ids repeated).
    """
    from mmedkit.bench.loader import LoadReport, load_benchmark
    from mmedkit.errors import DataError

    bad = 0
    for split in ("train", "test"):
        report = LoadReport()
        try:
            items = load_benchmark(data, split=split, langs=langs, skip_invalid=skip_invalid, report=report)
        except DataError as exc:
            say(split, "red", exc)
            bad += 1
            items = []  # every record may have been skipped: still list why
        if items:
            multi = sum(len(it.answer) > 1 for it in items)
            console.print(f"{split}: {len(items)} items {report.loaded} ({multi} multi-answer)")
        for code in [c for c, n in report.loaded.items() if not n]:
            say(f"  {code}", "red", "no items")
            bad += 1
        for line in report.skipped:
            bad += "not found" not in line
            say("  skipped", "yellow", line)
    if bad:
        raise typer.Exit(code=1)


@app.command("export")
def bench_export(
    run_dirs: Annotated[list[Path], typer.Argument(help="A multiple-choice run, a rationale run (scored by `mmed "
                                                        "bench rationale`), or one of each.")],
    format: Annotated[str, typer.Option("--format", help="mmedbench-leaderboard (the files of the study's "
                                                         "SubmissionTutorial.md)")] = "mmedbench-leaderboard",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: RUN_DIR/leaderboard of the first run).")]
    = None,
) -> None:
    """Write a run's results in a submission format."""
    from mmedkit.bench.export import FORMATS, export_leaderboard

    with handle_errors(KeyError):
        if format not in FORMATS:
            raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")
        written, notes = export_leaderboard(run_dirs, out or run_dirs[0] / "leaderboard")
    for path in written:
        console.print(f"wrote {path}")
    for note in notes:
        say("note", "cyan", note, stream=console)


@app.command("rationale")
def bench_rationale(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folder(s) made by `mmed bench run --mode generate "
                                                        "--rationale`.")],
    human_checked_only: Annotated[bool | None, typer.Option(help="Only items whose reference rationale passed human "
                                                                 "checking, as the study reports (default: on when "
                                                                 "the data marks them).")] = None,
    bertscore_model: Annotated[str | None, typer.Option(help="BERTScore encoder: local folder or hub id (the "
                                                             "study: bert-base-multilingual-cased). Default: none.")]
    = None,
    bertscore_layer: Annotated[int | None, typer.Option(help="Hidden layer (default: 9 for mBERT, else last).")]
    = None,
    rescale: Annotated[str | None, typer.Option(help="BERTScore baseline rescaling: 'auto' (estimated from "
                                                     "unrelated reference pairs) or a bert-score baseline folder.")]
    = None,
    batch_size: Annotated[int, typer.Option(help="BERTScore batch size.")] = 64,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, mps (default: best available).")] = None,
    smoothing: Annotated[str, typer.Option(help="BLEU smoothing: exp | floor | add-k | none.")] = "exp",
    case_sensitive: Annotated[bool, typer.Option(help="Do not fold case before counting n-grams.")] = False,
    study: Annotated[bool, typer.Option(help="Also compute the study's variants (needs nltk, rouge).")] = True,
) -> None:
    """BLEU-1..4, ROUGE-1/2/L and BERTScore of the rationales of finished runs."""
    from mmedkit.bench.rationale import RationaleConfig, score_run
    from mmedkit.bench.rationale.bertscore import BERTScorer
    from mmedkit.bench.rationale.doc import to_markdown
    from mmedkit.bench.rationale.scoring import rationale_blocks

    with handle_errors(KeyError):
        cfg = RationaleConfig(human_checked_only=human_checked_only, casefold=not case_sensitive, smoothing=smoothing,
                              study=study, bertscore_model=bertscore_model, bertscore_layer=bertscore_layer,
                              bertscore_batch_size=batch_size, rescale=rescale, device=device)
        scorer = (BERTScorer(bertscore_model, layer=bertscore_layer, device=device, batch_size=batch_size)
                  if bertscore_model else None)
        for run_dir in run_dirs:
            summary = score_run(run_dir, cfg, scorer=scorer)
            console.print(to_markdown(rationale_blocks(summary, title=str(run_dir))[:3]), markup=False)
            console.print(f"wrote {run_dir / 'rationale.json'}, rationale.md, rationale_samples.jsonl")


@app.command("judge")
def bench_judge(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more generate runs on the same items.")],
    judge_model: Annotated[str, typer.Option(help="Judge model: served model name (openai) or path/hub id (hf).")],
    out: Annotated[Path, typer.Option(help="Output folder (judge.json, judge.md, judgements.jsonl, cache).")],
    judge_backend: Annotated[str, typer.Option(help="openai | hf")] = "openai",
    verdict: Annotated[str, typer.Option(help="generate ([[1]]/[[2]]/[[tie]] in the reply) | loglikelihood "
                                              "(compare log-probabilities of ' 1' and ' 2').")] = "generate",
    base_url: Annotated[str | None, typer.Option(help="openai: server URL, e.g. http://127.0.0.1:8000/v1")] = None,
    api_key_env: Annotated[str, typer.Option(help="openai: environment variable holding the API key.")]
    = "OPENAI_API_KEY",
    tokenizer: Annotated[str | None, typer.Option(help="openai + loglikelihood: tokenizer rendering chat prompts.")]
    = None,
    concurrency: Annotated[int, typer.Option(help="openai: parallel requests.")] = 8,
    device: Annotated[str | None, typer.Option(help="hf: cpu, cuda, mps.")] = None,
    dtype: Annotated[str, typer.Option(help="hf: auto | float32 | bfloat16 | float16")] = "auto",
    batch_size: Annotated[int, typer.Option(help="hf: prompts per batch.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="generate verdicts: tokens the judge may write.")] = 64,
    langs: Annotated[str | None, typer.Option(help="Comma-separated language codes (default: all).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many items per language.")] = None,
    human_checked_only: Annotated[bool, typer.Option(help="Only items with a human-checked reference.")] = False,
    reference: Annotated[bool, typer.Option(help="Show the judge the reference rationale.")] = True,
    cache: Annotated[Path | None, typer.Option(help="Judgement cache folder shared across outputs (default: "
                                                    "--out).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for the 95% intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Rank runs by pairwise LLM-as-judge comparisons of their rationales (both orders, Bradley–Terry)."""
    from mmedkit.bench.rationale.judge import JudgeConfig, judge_runs

    with handle_errors(KeyError, interrupted="finished judgements are cached; rerun the same command to resume."):
        cfg = JudgeConfig(judge_model=judge_model, backend=judge_backend, verdict=verdict,
                          include_reference=reference, max_new_tokens=max_new_tokens,
                          human_checked_only=human_checked_only, langs=langs, limit=limit, bootstrap=bootstrap,
                          seed=seed, model_options={"base_url": base_url, "api_key_env": api_key_env,
                                                    "tokenizer": tokenizer, "concurrency": concurrency,
                                                    "device": device, "dtype": dtype, "batch_size": batch_size})
        judge_runs(run_dirs, out, cfg, cache_dir=cache)
    console.print((out / "judge.md").read_text(encoding="utf-8"), markup=False)


@app.command("report")
def bench_report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders to compare.")],
    out: Annotated[Path, typer.Option(help="Output folder (report.html, report.md, charts).")],
    judge_dir: Annotated[list[Path] | None, typer.Option("--judge", help="Output folder of `mmed bench judge` "
                                                                         "(repeatable).")] = None,
    title: Annotated[str, typer.Option(help="Report title.")] = "MMedBench comparison",
) -> None:
    """One HTML + Markdown page comparing runs: accuracy, rationale metrics, judge ranking, fields."""
    from mmedkit.bench.rationale.report import build_report

    with handle_errors(KeyError):
        path = build_report(run_dirs, out, judge_dirs=judge_dir or [], title=title)
    console.print(f"wrote {path} and {path.with_suffix('.md')}")
