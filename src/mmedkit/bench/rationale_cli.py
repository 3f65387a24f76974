"""``mmed bench rationale | judge | report``: rationale metrics, LLM-as-judge ranking, multi-run reports.

Mounted under ``mmed bench`` by ``bench_app.add_typer(rationale_cli.app)`` (no name: the commands
join the ``bench`` group).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmedkit.clikit import console, err, fail

app = typer.Typer(help="Rationale metrics, judge ranking and reports.", no_args_is_help=True)
_fail = fail


def _errors() -> tuple[type[Exception], ...]:
    from mmedkit.errors import DataError
    from mmedkit.models.base import BackendError

    return (DataError, BackendError, ValueError, KeyError, OSError)


@app.command("rationale")
def rationale(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folder(s) made by `mmed bench run --mode generate "
                                                        "--rationale`.")],
    human_checked_only: Annotated[bool, typer.Option(help="Only items whose reference rationale passed human "
                                                          "checking (as the study reports).")] = False,
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

    try:
        cfg = RationaleConfig(human_checked_only=human_checked_only, casefold=not case_sensitive, smoothing=smoothing,
                              study=study, bertscore_model=bertscore_model, bertscore_layer=bertscore_layer,
                              bertscore_batch_size=batch_size, rescale=rescale, device=device)
        scorer = (BERTScorer(bertscore_model, layer=bertscore_layer, device=device, batch_size=batch_size)
                  if bertscore_model else None)
        for run_dir in run_dirs:
            summary = score_run(run_dir, cfg, scorer=scorer)
            console.print(to_markdown(rationale_blocks(summary, title=str(run_dir))[:3]), markup=False)
            console.print(f"wrote {run_dir / 'rationale.json'}, rationale.md, rationale_samples.jsonl")
    except _errors() as exc:
        raise _fail(exc) from exc


@app.command("judge")
def judge(
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

    try:
        cfg = JudgeConfig(judge_model=judge_model, backend=judge_backend, verdict=verdict,
                          include_reference=reference, max_new_tokens=max_new_tokens,
                          human_checked_only=human_checked_only, langs=langs, limit=limit, bootstrap=bootstrap,
                          seed=seed, model_options={"base_url": base_url, "api_key_env": api_key_env,
                                                    "tokenizer": tokenizer, "concurrency": concurrency,
                                                    "device": device, "dtype": dtype, "batch_size": batch_size})
        judge_runs(run_dirs, out, cfg, cache_dir=cache)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished judgements are cached; rerun the same command to resume.")
        raise typer.Exit(code=130) from None
    except _errors() as exc:
        raise _fail(exc) from exc
    console.print((out / "judge.md").read_text(encoding="utf-8"), markup=False)


@app.command("report")
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders to compare.")],
    out: Annotated[Path, typer.Option(help="Output folder (report.html, report.md, charts).")],
    judge_dir: Annotated[list[Path] | None, typer.Option("--judge", help="Output folder of `mmed bench judge` "
                                                                         "(repeatable).")] = None,
    title: Annotated[str, typer.Option(help="Report title.")] = "MMedBench comparison",
) -> None:
    """One HTML + Markdown page comparing runs: accuracy, rationale metrics, judge ranking, fields."""
    from mmedkit.bench.rationale.report import build_report

    try:
        path = build_report(run_dirs, out, judge_dirs=judge_dir or [], title=title)
    except _errors() as exc:
        raise _fail(exc) from exc
    console.print(f"wrote {path} and {path.with_suffix('.md')}")
