"""``mmed demo``: the benchmark on embedded defaults (the demo sample, a tiny model and SmolLM2-135M)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mmedkit.clikit import console, handle_errors, say

SMOLLM2_NOTICE = "SmolLM2-135M-Instruct, a real but very small general model: expect near-chance medical accuracy"


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

    with handle_errors(interrupted="finished items are cached; rerun the same command to resume."):
        tiny = out / "tiny-model"
        if not (tiny / "model.safetensors").exists():
            build_tiny_model(tiny)
        runs = [("tiny", str(tiny), TINY_NOTICE)]
        if real_model:
            from mmedkit.models.embedded import default_model_dir

            try:
                runs.append(("smollm2-135m", str(default_model_dir()), SMOLLM2_NOTICE))
            except BackendError as exc:
                say("skipping the embedded model", "yellow", exc)
        for name, path, note in runs:
            results = run_benchmark(RunConfig(model=path, data="demo", mode="loglikelihood"), out / name,
                                    console=console)
            console.print(console_table(results))
            console.print(f"[dim]{note}. Report: {out / name / 'summary.md'}[/]")
