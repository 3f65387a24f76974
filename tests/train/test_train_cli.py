"""`mmed train`: pretrain with stop and resume, clear errors, merge, recipes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mmedkit.bench.loader import load_benchmark
from mmedkit.train.cli import app

runner = CliRunner()


def test_pretrain_stops_resumes_and_reports_held_out_loss(tmp_path: Path, tiny_model_dir: Path) -> None:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": it.question + "\n" + (it.rationale or ""), "lang": it.language},
                                         ensure_ascii=False) + "\n" for it in load_benchmark("demo", split="train")),
                      encoding="utf-8")
    args = ["pretrain", "tiny-cpu", "--model", str(tiny_model_dir), "--data", str(corpus), "--out", str(tmp_path / "o"),
            "--set", "data.seq_len=64", "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", "train.max_steps=4",
            "--set", "data.eval_fraction=0.2", "--no-progress"]
    res = runner.invoke(app, [*args, "--stop-after", "2"])
    assert res.exit_code == 0, res.output
    assert "stopped at step 2 of 4" in res.output
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "resumed from" in res.output and "held-out loss" in res.output and "perplexity" in res.output
    summary = json.loads((tmp_path / "o" / "train_summary.json").read_text())
    assert summary["held_out_after"]["loss"] < summary["held_out_before"]["loss"]
    assert summary["steps"] == 4 and summary["steps_this_session"] == 2
    try:
        import tensorboard  # noqa: F401  (the `train` extra)
    except ImportError:
        assert "TensorBoard logging is off: pip install tensorboard" in res.output
    else:
        assert list((tmp_path / "o" / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "o" / "model.safetensors").is_file() and (tmp_path / "o" / "tokenizer.json").is_file()


def test_errors_are_short_and_name_the_setting(tmp_path: Path) -> None:
    res = runner.invoke(app, ["pretrain", "tiny-cpu", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "model: not set; pass --model" in res.output
    res = runner.invoke(app, ["sft", "tiny-cpu", "--model", "m", "--set", "train.lr=-1"])
    assert res.exit_code == 2 and "train.lr: must be > 0" in res.output
    res = runner.invoke(app, ["sft", "tiny-cpu", "--method", "qlora", "--model", "m"])
    assert res.exit_code == 2 and "method: expected one of full, lora" in res.output
    res = runner.invoke(app, ["sft", "tiny-cpu", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "could not load model" in res.output


def test_merge_command(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from mmedkit.train.config import LoraSettings
    from mmedkit.train.lora import apply_lora

    apply_lora(AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoraSettings()).save_pretrained(tmp_path / "a")
    res = runner.invoke(app, ["merge", "--adapter", str(tmp_path / "a"), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "model.safetensors").is_file() and "mmed bench run --model" in res.output


def test_recipes_and_config_paths() -> None:
    res = runner.invoke(app, ["recipes"])
    assert res.exit_code == 0 and "llama3-8b-lora" in res.output and "deepspeed-zero3" in res.output
    res = runner.invoke(app, ["config-path", "fsdp"])
    assert res.exit_code == 0 and res.output.strip().endswith("accelerate/fsdp.yaml")
    assert runner.invoke(app, ["config-path", "sft/tiny-cpu"]).output.strip().endswith("sft/tiny-cpu.yaml")
    assert runner.invoke(app, ["config-path", "zero9"]).exit_code == 2
