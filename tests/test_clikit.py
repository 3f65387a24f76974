"""One way to fail: every error kind a command can meet, its exit status and what it prints; a fast start."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from mmedkit.clikit import handle_errors
from mmedkit.errors import ConfigError, DataError
from mmedkit.models.base import BackendError


def _app(exc: BaseException, *extra: type[BaseException], hint: str | None = None) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def main() -> None:
        with handle_errors(*extra, interrupted=hint):
            raise exc

    return app


@pytest.mark.parametrize(("exc", "extra", "code", "printed"), [
    (DataError("answer E is not among the options A,B", path="Test/English.jsonl", line=12, field="answer_idx"), (),
     2, "error: Test/English.jsonl:12: answer E is not among the options A,B (field 'answer_idx')"),
    (ConfigError("run.yaml:3: train.lr: must be > 0"), (), 2, "error: run.yaml:3: train.lr: must be > 0"),
    (BackendError("could not load model [x]"), (), 2, "error: could not load model [x]"),
    (ValueError("unknown mode 'guess'"), (), 2, "error: unknown mode 'guess'"),
    (FileNotFoundError("no such file: a.jsonl"), (), 2, "error: no such file: a.jsonl"),
    (KeyError("text"), (KeyError,), 2, "error: 'text'"),
    (typer.Exit(code=1), (RuntimeError,), 1, ""),
])
def test_errors_print_one_line_and_exit_2(exc: BaseException, extra: tuple[type[BaseException], ...], code: int,
                                          printed: str) -> None:
    res = CliRunner().invoke(_app(exc, *extra))
    assert res.exit_code == code
    assert res.output.strip() == printed


def test_unexpected_errors_are_not_hidden() -> None:
    res = CliRunner().invoke(_app(KeyError("text")))
    assert res.exit_code == 1 and isinstance(res.exception, KeyError)


@pytest.mark.parametrize(("hint", "printed"), [
    ("finished items are cached; rerun the same command to resume.",
     "interrupted: finished items are cached; rerun the same command to resume."),
    (None, "interrupted"),
])
def test_interrupt_exits_130_with_the_resume_hint(hint: str | None, printed: str) -> None:
    res = CliRunner().invoke(_app(KeyboardInterrupt(), hint=hint))
    assert res.exit_code == 130 and res.output.strip() == printed


def test_mmed_starts_without_the_heavy_stack() -> None:
    code = ("import sys; from mmedkit.cli import app; "
            "print(sorted(m for m in ('torch', 'transformers', 'fastapi', 'datatrove') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
