"""Training configs: shipped recipes, the study's settings, errors that name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmedkit.train.config import ConfigError, PretrainData, SFTData, list_recipes, load_config, recipes_root


def test_every_shipped_recipe_loads() -> None:
    names = list_recipes()
    assert names == {"pretrain": ["llama3-8b", "tiny-cpu"], "sft": ["llama3-8b-full", "llama3-8b-lora", "tiny-cpu"]}
    for stage, recipes in names.items():
        for name in recipes:
            cfg = load_config(name, stage)
            assert cfg.stage == stage
            assert isinstance(cfg.data, PretrainData if stage == "pretrain" else SFTData)


def test_recipes_carry_the_study_settings() -> None:
    pre = load_config("llama3-8b", "pretrain")
    assert pre.model == "meta-llama/Meta-Llama-3-8B"
    assert pre.train.global_batch_size * pre.data.seq_len == 1_048_576  # ~1M tokens per step
    t = pre.train
    assert (t.lr, t.warmup_ratio, t.weight_decay, t.epochs, t.min_lr_ratio) == (2e-5, 0.01, 0.01, 3, 0.0)
    assert pre.data.layout == "packed" and pre.data.stride == 1536
    full = load_config("llama3-8b-full", "sft")
    assert (full.method, full.train.global_batch_size, full.train.lr, full.train.epochs) == ("full", 128, 1e-6, 5)
    assert full.data.samples == ["rationale", "answer"] and full.data.format == "study"
    lora = load_config("llama3-8b-lora", "sft")  # extends llama3-8b-full
    assert (lora.method, lora.lora.r, lora.train.global_batch_size, lora.train.epochs) == ("lora", 16, 128, 3)
    assert lora.lora.target_modules == "auto" and lora.lr == 1e-4 and lora.data.path == full.data.path


def test_accelerate_launch_configs_parse() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {}
    for path in sorted((recipes_root() / "accelerate").glob("*.yaml")):
        cfg = load_config_from_file(str(path))
        kinds[path.stem] = (str(cfg.distributed_type).split(".")[-1], cfg.mixed_precision, cfg.num_processes)
    assert kinds == {"ddp": ("MULTI_GPU", "bf16", 8), "deepspeed-zero2": ("DEEPSPEED", "bf16", 8),
                     "deepspeed-zero3": ("DEEPSPEED", "bf16", 8), "fsdp": ("FSDP", "bf16", 8)}


def test_errors_name_the_file_line_and_key(tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text("stage: pretrain\nmodel: m\ntrain:\n  lr: fast\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run\.yaml:4: train\.lr: expected a number, got 'fast'"):
        load_config(f, "pretrain")
    f.write_text("stage: pretrain\ntrain:\n  epochs: 1\n  warmup: 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run\.yaml:4: train\.warmup: unknown setting .*warmup_ratio"):
        load_config(f, "pretrain")
    f.write_text("stage: pretrain\ndata:\n  sources:\n    - {path: a.jsonl, weight: lots}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run\.yaml:4: data\.sources\[0\]\.weight: expected a number"):
        load_config(f, "pretrain")
    f.write_text("stage: pretrain\ndata:\n  layout: padded\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run\.yaml:3: data\.layout: expected one of packed, study"):
        load_config(f, "pretrain")
    f.write_text("stage: sft\ntrain:\n  global_batch_size: 10\n  micro_batch_size: 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run\.yaml:3: train\.global_batch_size: must be a multiple"):
        load_config(f, "sft")
    with pytest.raises(ConfigError, match=r"run\.yaml:1: stage: this is a 'sft' config; run it with `mmed train sft`"):
        load_config(f, "pretrain")
    f.write_text("stage: sft\ntrain: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run\.yaml:\d+: invalid YAML"):
        load_config(f, "sft")
    with pytest.raises(ConfigError, match=r"nope: no such file, and not a sft recipe \(recipes: llama3-8b-full"):
        load_config("nope", "sft")


def test_overrides_and_extends(tmp_path: Path) -> None:
    cfg = load_config("tiny-cpu", "pretrain", ["train.lr=1e-4", "data.where={label: medical}",
                                               "data.language_weights.ja=2"])
    assert cfg.train.lr == 1e-4 and cfg.data.where == {"label": "medical"} and cfg.data.language_weights == {"ja": 2.0}
    with pytest.raises(ConfigError, match=r"--set: train\.epochs: expected an integer, got 'two'"):
        load_config("tiny-cpu", "pretrain", ["train.epochs=two"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config("tiny-cpu", "pretrain", ["train.lr"])
    child = tmp_path / "mine.yaml"
    child.write_text("extends: llama3-8b-lora\nlora:\n  r: 64\n", encoding="utf-8")
    cfg = load_config(child, "sft")
    assert (cfg.lora.r, cfg.lora.alpha, cfg.train.epochs, cfg.train.lr) == (64, 32, 3, 1e-6)
    child.write_text("extends: llama3-8b-lora\nlora:\n  r: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mine\.yaml:3: lora\.r: must be >= 1"):
        load_config(child, "sft")
