"""Training configs: shipped recipes, the study's settings, errors that name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmedkit.train.config import (
    ConfigError,
    PretrainData,
    SFTData,
    TrainConfig,
    config_from_dict,
    list_recipes,
    load_config,
    recipes_root,
)

SHIPPED = [(stage, name) for stage, names in list_recipes().items() for name in names]


def test_the_shipped_recipes() -> None:
    assert list_recipes() == {"pretrain": ["llama3-8b", "tiny-cpu"],
                              "sft": ["llama3-8b-full", "llama3-8b-lora", "tiny-cpu"]}


@pytest.mark.parametrize("stage,name", SHIPPED, ids=[f"{s}/{n}" for s, n in SHIPPED])
def test_every_shipped_recipe_loads(stage: str, name: str) -> None:
    cfg = load_config(name, stage)
    assert cfg.stage == stage and cfg.source.endswith(f"{stage}/{name}.yaml")
    assert isinstance(cfg.data, PretrainData if stage == "pretrain" else SFTData)
    assert config_from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()  # plain data round-trips


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
    assert lora.lora.target_modules == "auto" and lora.lr == 2e-5 and lora.data.path == full.data.path


def test_accelerate_launch_configs_parse() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {}
    for path in sorted((recipes_root() / "accelerate").glob("*.yaml")):
        cfg = load_config_from_file(str(path))
        kinds[path.stem] = (str(cfg.distributed_type).split(".")[-1], cfg.mixed_precision, cfg.num_processes)
    assert kinds == {"ddp": ("MULTI_GPU", "bf16", 8), "deepspeed-zero2": ("DEEPSPEED", "bf16", 8),
                     "deepspeed-zero3": ("DEEPSPEED", "bf16", 8), "fsdp": ("FSDP", "bf16", 8)}


# One row per bad input: (stage, file text, the error it gives).
BAD_CONFIGS = [
    ("pretrain", "stage: pretrain\nmodel: m\ntrain:\n  lr: fast\n",
     r"run\.yaml:4: train\.lr: expected a number, got 'fast'"),
    ("pretrain", "stage: pretrain\ntrain:\n  epochs: 1\n  warmup: 0.1\n",
     r"run\.yaml:4: train\.warmup: unknown setting \(known in train: .*warmup_ratio"),
    ("pretrain", "stage: pretrain\ndata:\n  sources:\n    - {path: a.jsonl, weight: lots}\n",
     r"run\.yaml:4: data\.sources\[0\]\.weight: expected a number, got 'lots'"),
    ("pretrain", "stage: pretrain\ndata:\n  sources:\n    - {path: a.jsonl, weight: -1}\n",
     r"run\.yaml:4: data\.sources\[0\]\.weight: must be >= 0$"),
    ("pretrain", "stage: pretrain\ndata:\n  sources:\n    - {weight: 1}\n",
     r"run\.yaml:4: data\.sources\[0\]\.path: required setting is missing"),
    ("pretrain", "stage: pretrain\ndata:\n  layout: padded\n",
     r"run\.yaml:3: data\.layout: expected one of packed, study, got 'padded'"),
    ("pretrain", "stage: pretrain\ndata:\n  layout: study\n  seq_len: 64\n  stride: 100\n",
     r"run\.yaml:5: data\.stride: must be in \(0, seq_len\]"),
    ("pretrain", "stage: pretrain\ndata:\n  seq_len: 4\n", r"run\.yaml:3: data\.seq_len: must be >= 8$"),
    ("pretrain", "stage: pretrain\ndata:\n  eval_fraction: 1\n",
     r"run\.yaml:3: data\.eval_fraction: must be in \[0, 1\)"),
    ("pretrain", "stage: pretrain\ndata:\n  chunk_docs: 0\n",
     r"run\.yaml:2: data\.num_proc: num_proc and chunk_docs must be >= 1"),
    ("pretrain", "stage: pretrain\ndata:\n  language_weights: {en: -2}\n",
     r"run\.yaml:3: data\.language_weights\.en: must be >= 0"),
    ("pretrain", "stage: pretrain\ndata:\n  where: 5\n", r"run\.yaml:3: data\.where: expected a mapping, got 5"),
    ("pretrain", "stage: pretrain\ndata:\n  path: x\n",
     r"run\.yaml:3: data\.path: unknown setting \(known in data: cache_dir, chunk_docs, .*where\)"),
    ("sft", "stage: sft\ntrain:\n  global_batch_size: 10\n  micro_batch_size: 4\n",
     r"run\.yaml:3: train\.global_batch_size: must be a multiple of train\.micro_batch_size \(4\)"),
    ("sft", "stage: sft\ntrain:\n  epochs: 0\n", r"run\.yaml:3: train\.epochs: must be >= 1$"),
    ("sft", "stage: sft\ntrain:\n  epochs: 2.5\n", r"run\.yaml:3: train\.epochs: expected an integer, got 2\.5"),
    ("sft", "stage: sft\ntrain:\n  lr: 0\n", r"run\.yaml:3: train\.lr: must be > 0$"),
    ("sft", "stage: sft\ntrain:\n  min_lr_ratio: 2\n", r"run\.yaml:3: train\.min_lr_ratio: must be in \[0, 1\]"),
    ("sft", "stage: sft\ntrain:\n  mixed_precision: fp8\n",
     r"run\.yaml:3: train\.mixed_precision: expected one of auto, no, bf16, fp16$"),
    ("sft", "stage: sft\ntrain:\n  model_dtype: int8\n",
     r"run\.yaml:3: train\.model_dtype: expected float32, bfloat16 or float16"),
    ("sft", "stage: sft\ntrain:\n  save_every: 0\n", r"run\.yaml:3: train\.save_every: must be >= 1"),
    ("sft", "stage: sft\ntrain:\n  gradient_checkpointing: maybe\n",
     r"run\.yaml:3: train\.gradient_checkpointing: expected true or false, got 'maybe'"),
    ("sft", "stage: sft\nmethod: qlora\n", r"run\.yaml:2: method: expected one of full, lora, got 'qlora'"),
    ("sft", "stage: sft\nlora:\n  dropout: 1\n", r"run\.yaml:3: lora\.dropout: must be in \[0, 1\)"),
    ("sft", "stage: sft\nlora:\n  target_modules: 5\n", r"run\.yaml:3: lora\.target_modules: expected a list, got 5"),
    ("sft", "stage: sft\ndata:\n  samples: [rationale, cot]\n",
     r"run\.yaml:3: data\.samples: expected a non-empty list of rationale, answer, got \['rationale', 'cot'\]"),
    ("sft", "stage: sft\ndata:\n  format: chatml\n", r"run\.yaml:3: data\.format: expected study or chat"),
    ("sft", "stage: sft\ndata:\n  seq_len: 512\n",
     r"run\.yaml:3: data\.seq_len: unknown setting \(known in data: format, langs, limit, max_len, packing, path, "),
    ("sft", "stage: sft\nsource: x\n", r"run\.yaml:2: source: unknown setting \(known in the top level: data, "),
    ("sft", "stage: what\n", r"run\.yaml:1: stage: expected one of pretrain, sft, got 'what'"),
    ("pretrain", "stage: sft\n", r"run\.yaml:1: stage: this is a 'sft' config; run it with `mmed train sft`"),
    ("sft", "stage: sft\ntrain: [1, 2\n", r"run\.yaml:\d+: invalid YAML"),
    ("sft", "- stage\n", r"run\.yaml:1: expected a mapping of settings at the top level, got list"),
    ("sft", "extends: llama3-8b-lora\nlora:\n  r: 0\n", r"run\.yaml:3: lora\.r: must be >= 1$"),
    ("sft", "extends: nope\n", r"nope: no such file, and not a sft recipe \(recipes: llama3-8b-full, llama3-8b-lora"),
]


@pytest.mark.parametrize("stage,text,error", BAD_CONFIGS, ids=[f"{i}" for i in range(len(BAD_CONFIGS))])
def test_errors_name_the_file_line_and_key(tmp_path: Path, stage: str, text: str, error: str) -> None:
    f = tmp_path / "run.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=error):
        load_config(f, stage)


def test_an_unknown_recipe_lists_the_recipes() -> None:
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


def test_command_line_options_are_checked_and_name_the_config() -> None:
    cfg = load_config("tiny-cpu", "sft")
    lora = cfg.updated({"method": "lora", "model": "m", "data": {"path": "other"}})
    assert (lora.method, lora.model, lora.data.path, lora.data.max_len, lora.source) == \
        ("lora", "m", "other", 1024, cfg.source)
    with pytest.raises(ConfigError, match=r"sft/tiny-cpu\.yaml: method: expected one of full, lora, got 'qlora'"):
        cfg.updated({"method": "qlora"})


def test_data_settings_follow_the_stage() -> None:
    assert isinstance(TrainConfig(stage="sft").data, SFTData)
    assert isinstance(TrainConfig(stage="pretrain", data={"seq_len": 64}).data, PretrainData)
    with pytest.raises(ConfigError, match=r"<dict>: stage: expected one of pretrain, sft, got None"):
        config_from_dict({})
