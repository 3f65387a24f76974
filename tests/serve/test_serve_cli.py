"""`mmed serve` option errors are caught before anything binds a port."""

from __future__ import annotations

import shutil
from pathlib import Path

from server_process import free_port
from typer.testing import CliRunner

from mmedkit.serve import openai_api
from mmedkit.serve.cli import app
from mmedkit.serve.safety import default_data_dir

runner = CliRunner()


def test_model_and_upstream_are_exclusive(tiny_model_dir: Path) -> None:
    res = runner.invoke(app, ["--model", str(tiny_model_dir), "--upstream", "http://127.0.0.1:9/v1"])
    assert res.exit_code == 2 and "either --model" in res.output


def test_unreachable_upstream_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    res = runner.invoke(app, ["--upstream", url])
    assert res.exit_code == 2 and f"upstream {url}/models is unreachable" in res.output


def test_missing_key_variable() -> None:
    res = runner.invoke(app, ["--api-key-env", "MMED_SURELY_UNSET_VARIABLE"])
    assert res.exit_code == 2 and "MMED_SURELY_UNSET_VARIABLE is not set" in res.output


def test_bad_safety_data_is_refused_with_file_and_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = tmp_path / "safety"
    shutil.copytree(default_data_dir(), data)
    ru = data / "ru.yaml"
    ru.write_text(ru.read_text(encoding="utf-8").replace("  window: 3\n", "  window: [3]\n"), encoding="utf-8")
    res = runner.invoke(app, ["--model", str(tiny_model_dir), "--safety-data", str(data)])
    assert res.exit_code == 2 and "ru.yaml:" in res.output and "negation.window: expected int" in res.output


def test_missing_local_model(tmp_path: Path) -> None:
    res = runner.invoke(app, ["--model", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "could not load model" in res.output


# ---------------------------------------------------------------- python -m mmedkit.serve.openai_api
def test_plain_server_needs_a_model() -> None:
    res = runner.invoke(openai_api.cli, [])
    assert res.exit_code == 2 and "--model" in res.output


def test_plain_server_missing_key_variable(tmp_path: Path) -> None:
    res = runner.invoke(openai_api.cli, ["--model", str(tmp_path), "--api-key-env", "MMED_SURELY_UNSET_VARIABLE"])
    assert res.exit_code == 2 and "MMED_SURELY_UNSET_VARIABLE is not set" in res.output


def test_plain_server_missing_model(tmp_path: Path) -> None:
    res = runner.invoke(openai_api.cli, ["--model", str(tmp_path / "nowhere"), "--trust-remote-code"])
    assert res.exit_code == 2 and "could not load model" in res.output


def test_plain_server_options() -> None:
    res = runner.invoke(openai_api.cli, ["--help"])
    for option in ("--model", "--model-id", "--host", "--port", "--api-key-env", "--dtype", "--device", "--adapter",
                   "--queue-size", "--trust-remote-code", "--log-level"):
        assert option in res.output
    assert "--no-trust-remote-code" not in res.output
