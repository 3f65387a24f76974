"""``mmed train``: continued pretraining, fine-tuning (full or LoRA), merging adapters.

Mounted by the main CLI as ``mmed train``; also runnable as ``python -m mmedkit.train.cli`` (which is
what ``accelerate launch -m mmedkit.train.cli ...`` starts on every GPU).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mmedkit.clikit import fail, handle_errors

app = typer.Typer(help="Training: continued pretraining on a corpus, fine-tuning on a benchmark (full or LoRA).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
console = Console()
err = Console(stderr=True)

ConfigArg = Annotated[str, typer.Argument(help="YAML config file, or a shipped recipe name (see `mmed train "
                                               "recipes`).")]
ModelOpt = Annotated[str | None, typer.Option(help="Base model: local folder or hub id (overrides the config).")]
OutOpt = Annotated[Path | None, typer.Option(help="Output folder (overrides the config).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a setting: KEY=VALUE, e.g. train.lr=1e-4 "
                                                                "(value read as YAML).")]
StopOpt = Annotated[int | None, typer.Option(help="Save a checkpoint and exit after this global step (resume by "
                                                  "running the command again).")]
ResumeOpt = Annotated[bool, typer.Option(help="Resume from the newest checkpoint in the output folder.")]
ProgressOpt = Annotated[bool, typer.Option(help="Show a progress bar.")]


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


_RESUME = "rerun the same command to resume from the newest checkpoint."


def _load(config: str, stage: str, sets: list[str] | None, progress: bool, options: dict[str, Any]) -> Any:
    """The config with ``--set`` overrides, then the command-line ``options`` (nested like the YAML; None: unset)."""
    from mmedkit.train.config import load_config

    cfg = load_config(config, stage, sets)
    changes = {key: value for key, value in options.items() if value}
    changes["logging"] = {"progress": cfg.logging.progress and progress}
    return cfg.updated(changes)


def _run(cfg: Any, stop_after: int | None, resume: bool) -> dict[str, Any]:
    from mmedkit.train.loop import train

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return train(cfg, stop_after=stop_after, resume=resume, console=err)


def _main_process() -> bool:
    """True on the process that prints (every rank of a distributed run returns the summary)."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def _report(summary: dict[str, Any]) -> None:
    if not _main_process():
        return
    if not summary.get("finished"):
        _say(f"stopped at step {summary['step']} of {summary['total_steps']}; checkpoint in {summary['out']}")
        return
    before, after = summary.get("held_out_before"), summary.get("held_out_after")
    if before and after:
        change = after["loss"] - before["loss"]
        _say(f"held-out loss {before['loss']:.4f} -> {after['loss']:.4f} ({change:+.4f}, "
             f"{100 * change / before['loss']:+.1f}%), perplexity {before['perplexity']:.2f} -> "
             f"{after['perplexity']:.2f}, over {after['tokens']:,} held-out tokens")
    if summary.get("first_step_loss") is not None and summary.get("last_logged_loss") is not None:
        _say(f"training loss {summary['first_step_loss']:.4f} (first step) -> "
             f"{summary['last_logged_loss']:.4f} (last logged)")
    _say(f"{summary['steps']} steps, {summary['useful_tokens']:,} tokens, "
         f"{summary['useful_tokens_per_s_this_session'] or 0:,.0f} tokens/s; model: {summary['out']}")
    if summary.get("processes", 1) > 1:
        _say(f"{summary['rank_layout']}; tokens/s per rank: "
             + ", ".join(f"{v:,.0f}" for v in summary["tokens_per_s_per_rank_this_session"]))


@app.command("pretrain")
def pretrain(
    config: ConfigArg,
    model: ModelOpt = None,
    data: Annotated[list[str] | None, typer.Option(help="Corpus shards: file, folder, glob or fsspec URL of "
                                                        "JSONL/Parquet with a text field (replaces data.sources; "
                                                        "repeatable).")] = None,
    out: OutOpt = None,
    set_: SetOpt = None,
    stop_after: StopOpt = None,
    resume: ResumeOpt = True,
    progress: ProgressOpt = True,
) -> None:
    """Continued pretraining on a corpus (tokenised once into a cache, packed into full sequences)."""
    with handle_errors(RuntimeError, interrupted=_RESUME):
        sources = [{"path": path} for path in data or []]
        cfg = _load(config, "pretrain", set_, progress,
                    {"model": model, "out": out and str(out), "data": sources and {"sources": sources}})
        _report(_run(cfg, stop_after, resume))


@app.command("sft")
def sft(
    config: ConfigArg,
    method: Annotated[str | None, typer.Option(help="full | lora (overrides the config).")] = None,
    model: ModelOpt = None,
    data: Annotated[str | None, typer.Option(help="MMedBench-layout folder, 'demo' or a hub id (overrides "
                                                  "data.path).")] = None,
    out: OutOpt = None,
    set_: SetOpt = None,
    stop_after: StopOpt = None,
    resume: ResumeOpt = True,
    progress: ProgressOpt = True,
) -> None:
    """Fine-tune on a benchmark's train split in the study's prompt format (full or LoRA)."""
    with handle_errors(RuntimeError, interrupted=_RESUME):
        cfg = _load(config, "sft", set_, progress,
                    {"model": model, "out": out and str(out), "method": method, "data": data and {"path": data}})
        summary = _run(cfg, stop_after, resume)
        _report(summary)
        if summary.get("finished") and _main_process():
            adapter = f" --adapter {summary['out']}" if cfg.method == "lora" else ""
            base = cfg.model if cfg.method == "lora" else summary["out"]
            _say(f"evaluate: mmed bench run --model {base}{adapter} --out {summary['out']}/bench")


@app.command("merge")
def merge(
    adapter: Annotated[Path, typer.Option(help="LoRA adapter folder (the output of `mmed train sft --method lora`).")],
    out: Annotated[Path, typer.Option(help="Folder for the merged model.")],
    base: Annotated[str | None, typer.Option(help="Base model (default: the one recorded in the adapter).")] = None,
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16")] = "float32",
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    trust_remote_code: Annotated[bool, typer.Option(help="Run model code from the hub (off by default).")] = False,
) -> None:
    """Merge a LoRA adapter into its base model and write a full model (safetensors + tokenizer)."""
    from mmedkit.train.lora import merge_lora

    with handle_errors(RuntimeError):
        path = merge_lora(adapter, out, base=base, dtype=dtype, trust_remote_code=trust_remote_code,
                          overwrite=overwrite)
    _say(f"wrote {path}; evaluate: mmed bench run --model {path} --out {path}/bench")


@app.command("recipes")
def recipes() -> None:
    """Shipped recipes and accelerate launch configs."""
    from rich.table import Table

    from mmedkit.train.config import list_recipes, recipes_root

    table = Table(title="Recipes (`mmed train STAGE NAME`)")
    for col in ("stage", "name", "about"):
        table.add_column(col)
    for stage, names in list_recipes().items():
        for name in names:
            text = (recipes_root() / stage / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
            table.add_row(stage, name, text[0].lstrip("# ") if text else "")
    console.print(table)
    launch = sorted(p.stem for p in (recipes_root() / "accelerate").glob("*.yaml"))
    _say(f"accelerate configs (`mmed train config-path NAME`): {', '.join(launch)}")


@app.command("config-path")
def config_path(name: Annotated[str, typer.Argument(help="Accelerate config or recipe name, e.g. fsdp, llama3-8b, "
                                                         "sft/tiny-cpu.")]) -> None:
    """Print the path of a shipped file (for `accelerate launch --config_file` or to copy and edit)."""
    from mmedkit.train.config import recipes_root

    candidates = [recipes_root() / f"{name}.yaml"] if "/" in name else [
        recipes_root() / folder / f"{name}.yaml" for folder in ("accelerate", "pretrain", "sft")]
    for path in candidates:
        if path.is_file():
            _say(str(path))
            return
    raise fail(FileNotFoundError(f"no shipped config named {name!r} (see `mmed train recipes`)"))


if __name__ == "__main__":
    app()
