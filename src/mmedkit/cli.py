"""The ``mmed`` command: mounts the command group of every stage, each defined next to its code.

Stage modules import only Typer at the top (the library loads inside each command), so ``mmed --help``
starts without torch, transformers or FastAPI.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mmedkit import __version__
from mmedkit.bench.cli import app as bench_app
from mmedkit.clikit import console
from mmedkit.corpus.cli import app as corpus_app
from mmedkit.models.cli import app as model_app
from mmedkit.pipeline.cli import app as pipeline_app
from mmedkit.pipeline.cli import demo
from mmedkit.serve.cli import app as serve_app
from mmedkit.train.cli import app as train_app

app = typer.Typer(help="mmedkit: multilingual medical language models — corpus, training, benchmark, serving.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)

#: ``mmed NAME ...``: a command group per stage.
GROUPS: dict[str, typer.Typer] = {
    "bench": bench_app,
    "model": model_app,
    "corpus": corpus_app,
    "serve": serve_app,
    "train": train_app,
    "pipeline": pipeline_app,
}
#: ``mmed NAME``: single commands.
COMMANDS = {
    "demo": demo,
}

for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


@app.callback(invoke_without_command=True)
def _main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        console.print(f"mmedkit {__version__}")
        raise typer.Exit()
