"""``mmed model``: build a tiny random model, prepare the embedded default model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmedkit.clikit import console, handle_errors

app = typer.Typer(help="Build and prepare models.", no_args_is_help=True)


@app.command("tiny")
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

    with handle_errors():
        path = build_tiny_model(out, text=text, vocab_size=vocab_size, hidden_size=hidden_size, layers=layers,
                                seed=seed)
    console.print(f"wrote {path} ({TINY_NOTICE})")


@app.command("default")
def model_default(
    out: Annotated[Path | None, typer.Option(help="Where to write it (default: the mmedkit cache).")] = None,
    force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False,
) -> None:
    """Prepare the embedded default model (SmolLM2-135M-Instruct from PyPI) and print its path."""
    from mmedkit.models.embedded import default_model_dir

    with handle_errors():
        path = default_model_dir(out, force=force)
    console.print(str(path))
