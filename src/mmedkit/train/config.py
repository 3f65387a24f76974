"""Training configuration: dataclasses loaded from YAML, with errors that name the file, line and key.

A config file (or a shipped recipe, found by name) describes one stage, ``pretrain`` or ``sft``::

    stage: pretrain
    model: meta-llama/Meta-Llama-3-8B
    out: runs/mmed-llama3-pretrain
    data: {sources: [{path: "corpus/*.jsonl"}], seq_len: 2048}
    train: {lr: 2.0e-5, epochs: 3, global_batch_size: 512, micro_batch_size: 4}

``extends: NAME`` starts from another recipe of the same stage (or a YAML path) and overrides it
key by key. Relative paths in a config are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

STAGES = ("pretrain", "sft")
METHODS = ("full", "lora")
LAYOUTS = ("packed", "study")
SAMPLE_VARIANTS = ("rationale", "answer")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


class ConfigError(ValueError):
    """A bad configuration value, with where it came from (file:line: key)."""


@dataclass
class Source:
    """One input of the pretraining corpus: a file, folder, glob or fsspec URL of JSONL/Parquet shards."""

    path: str
    weight: float | None = None
    """Times each document is seen per epoch (fractions sample a seeded subset); overrides the language weight."""
    lang: str | None = None
    """Language of every document of this source (default: the record's ``lang_field``)."""


@dataclass
class PretrainData:
    """Corpus, tokenisation cache and sequence layout for continued pretraining."""

    sources: list[Source] = field(default_factory=list)
    text_field: str = "text"
    lang_field: str | None = "auto"
    """Record field holding the language (dotted for nested fields); ``auto``: lang, language or metadata.language."""
    where: dict[str, Any] = field(default_factory=dict)
    """Keep only records whose fields equal these values, e.g. ``{label: medical}`` (dotted keys for nested fields)."""
    language_weights: dict[str, float] = field(default_factory=dict)
    """Sampling weight per language code (default 1.0): documents seen per epoch."""
    seq_len: int = 2048
    layout: str = "packed"
    """``packed``: documents joined with EOS, cut into full sequences. ``study``: one document per window."""
    stride: int = 1536
    """study layout: distance between window starts (windows overlap by seq_len - stride)."""
    eval_fraction: float = 0.0
    """Documents held out (seeded, per document) to measure held-out loss and perplexity."""
    cache_dir: str | None = None
    """Token cache (default ``$MMEDKIT_CACHE/tokens``); reused across runs, resumable."""
    num_proc: int = 1
    chunk_docs: int = 1000


@dataclass
class SFTData:
    """Fine-tuning samples from an MMedBench-layout folder, formatted as the benchmark formats prompts."""

    path: str = "demo"
    split: str = "train"
    langs: str | None = None
    limit: int | None = None
    """At most this many items per language."""
    format: str = "study"
    samples: list[str] = field(default_factory=lambda: list(SAMPLE_VARIANTS))
    """Samples per item: ``rationale`` (when the item has one) and ``answer`` (answer only)."""
    max_len: int = 2048
    packing: bool = False
    skip_invalid: bool = False


@dataclass
class TrainSettings:
    """Optimisation, schedule, checkpointing."""

    epochs: int = 1
    max_steps: int | None = None
    global_batch_size: int = 8
    """Sequences per optimizer step, over all processes and accumulation steps."""
    micro_batch_size: int = 8
    """Sequences per forward pass on one device."""
    lr: float = 2e-5
    min_lr_ratio: float = 0.0
    warmup_ratio: float = 0.0
    warmup_steps: int | None = None
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    mixed_precision: str = "auto"
    """``auto``: bf16 on GPUs that support it, fp32 elsewhere."""
    model_dtype: str = "float32"
    """dtype of the trained weights (float32 master weights; bfloat16 for pure-bf16 training)."""
    gradient_checkpointing: bool = False
    seed: int = 42
    save_every: int = 500
    keep_checkpoints: int = 2
    eval_every: int | None = None
    log_every: int = 10
    num_workers: int = 0
    pad_to_multiple_of: int | None = None


@dataclass
class LoraSettings:
    """LoRA adapter settings (``method: lora``)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "auto"
    """``auto`` (found from the architecture: q/v projections for Llama-like models), ``all-linear`` or names."""
    bias: str = "none"
    lr: float | None = None
    """Learning rate of LoRA runs (default: train.lr); LoRA needs a far larger step than full fine-tuning."""


@dataclass
class LoggingSettings:
    """Where metrics go."""

    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "mmedkit"
    run_name: str | None = None
    progress: bool = True


@dataclass
class TrainConfig:
    """One training run."""

    stage: str
    model: str | None = None
    out: str | None = None
    method: str = "full"
    trust_remote_code: bool = False
    data: PretrainData | SFTData = field(default_factory=PretrainData)
    train: TrainSettings = field(default_factory=TrainSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    source: str = field(default="<dict>", compare=False)
    """Where the config was read from (for messages)."""

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (YAML/JSON-ready)."""
        d = dataclasses.asdict(self)
        d.pop("source")
        return d

    @property
    def lr(self) -> float:
        """The peak learning rate of this run (``lora.lr`` for LoRA runs when set)."""
        return self.lora.lr if self.method == "lora" and self.lora.lr is not None else self.train.lr


# ---------------------------------------------------------------------------------------------- loading


def recipes_root() -> Path:
    """The folder of shipped recipes (``recipes/<stage>/<name>.yaml``, ``recipes/accelerate/*.yaml``)."""
    return Path(str(resources.files("mmedkit").joinpath("train", "recipes")))


def list_recipes(stage: str | None = None) -> dict[str, list[str]]:
    """Recipe names per stage."""
    stages = [stage] if stage else list(STAGES)
    return {s: sorted(p.stem for p in (recipes_root() / s).glob("*.yaml")) for s in stages}


def find_config(name: str | Path, stage: str) -> Path:
    """A YAML path, or the shipped recipe ``name`` of ``stage``."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    recipe = recipes_root() / stage / f"{name}.yaml"
    if recipe.is_file():
        return recipe
    known = ", ".join(list_recipes(stage)[stage])
    raise ConfigError(f"{name}: no such file, and not a {stage} recipe (recipes: {known})")


def _line_map(text: str) -> dict[str, int]:
    """Dotted key path -> 1-based line, from the YAML node tree."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = f"{prefix}.{k.value}" if prefix else str(k.value)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                key = f"{prefix}[{i}]"
                lines[key] = v.start_mark.line + 1
                walk(v, key)

    root = yaml.compose(text)
    if root is not None:
        walk(root, "")
    return lines


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
        lines = _line_map(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    return raw, lines


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_extends(path: Path, stage: str, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """Raw settings of ``path`` after ``extends``, and for each key the ``file:line`` it came from."""
    raw, lines = _read_yaml(path)
    origin = {k: f"{path}:{n}" for k, n in lines.items()}
    parent = raw.pop("extends", None)
    if parent is None:
        return raw, origin
    if not isinstance(parent, str):
        raise ConfigError(f"{path}:{lines.get('extends', '?')}: extends: expected a recipe name or a path")
    target = (path.parent / parent) if parent.endswith((".yaml", ".yml")) else find_config(parent, stage)
    if target.resolve() in seen:
        raise ConfigError(f"{path}: extends: cycle through {target}")
    base, base_origin = _resolve_extends(target, stage, (*seen, path.resolve()))
    return _merge(base, raw), {**base_origin, **origin}


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.lr=1e-4`` -> (["train", "lr"], 1e-4); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: invalid value: {exc}") from exc
    return [k for k in key.strip().split(".")], parsed


def _apply_override(raw: dict[str, Any], keys: list[str], value: Any, origin: dict[str, str]) -> None:
    node = raw
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {'.'.join(keys)}: {k} is not a mapping")
        node = child
    node[keys[-1]] = value
    origin[".".join(keys)] = "--set"


def load_config(path: str | Path, stage: str, overrides: list[str] | None = None) -> TrainConfig:
    """Read a config file or recipe for ``stage``, apply ``KEY=VALUE`` overrides, validate."""
    file = find_config(path, stage)
    raw, origin = _resolve_extends(file, stage)
    for text in overrides or []:
        keys, value = parse_override(text)
        _apply_override(raw, keys, value, origin)
    raw.setdefault("stage", stage)
    if raw["stage"] != stage and raw["stage"] in STAGES:
        raise ConfigError(f"{_where(origin, 'stage', str(file))}stage: this is a {raw['stage']!r} config; "
                          f"run it with `mmed train {raw['stage']}`")
    return config_from_dict(raw, origin=origin, source=str(file))


def _where(origin: dict[str, str], key: str, source: str) -> str:
    at = origin.get(key)
    if at is None:  # a key missing from the file: name the nearest parent that is there
        parent = key
        while "." in parent and at is None:
            parent = parent.rsplit(".", 1)[0]
            at = origin.get(parent)
    return f"{at or source}: "


def config_from_dict(raw: dict[str, Any], *, origin: dict[str, str] | None = None,
                     source: str = "<dict>") -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from plain data."""
    origin = origin or {}
    raw = dict(raw)
    stage = raw.get("stage")
    if stage not in STAGES:
        raise ConfigError(f"{_where(origin, 'stage', source)}stage: expected one of {', '.join(STAGES)}, "
                          f"got {stage!r}")
    data_cls = PretrainData if stage == "pretrain" else SFTData
    data = _build(data_cls, raw.pop("data", None) or {}, "data", origin, source)
    cfg = _build(TrainConfig, {**raw, "data": data}, "", origin, source, ready={"data"})
    cfg.source = source
    validate(cfg, origin)
    return cfg


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str, origin: dict[str, str], source: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (recursively), converting nested dataclasses."""
    where = _where(origin, key, source)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key, origin, source)
    parts = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if value is None and type(None) in parts:
            return None
        errors = []
        for part in (p for p in parts if p is not type(None)):
            try:
                return _convert(value, part, key, origin, source)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[-1]
    if typing.get_origin(tp) is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}{key}: expected a list, got {value!r}")
        return [_convert(v, parts[0], f"{key}[{i}]", origin, source) for i, v in enumerate(value)]
    if typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}{key}: expected a mapping, got {value!r}")
        return {str(k): _convert(v, parts[1], f"{key}.{k}", origin, source) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 2e-5 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}{key}: expected {_type_name(tp)}, got {value!r}")
    return value


def _build(cls: type, raw: dict[str, Any], prefix: str, origin: dict[str, str], source: str,
           ready: set[str] | None = None) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init and f.name != "source"}
    unknown = sorted(set(raw) - fields)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"{_where(origin, key, source)}{key}: unknown setting (known in "
                          f"{prefix or 'the top level'}: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = value if ready and name in ready else _convert(value, hints[name], key, origin, source)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in kwargs
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        name = f"{prefix}.{missing[0]}" if missing and prefix else (missing[0] if missing else prefix)
        raise ConfigError(f"{_where(origin, prefix, source)}{name}: required setting is missing") from exc


def _check(ok: bool, key: str, message: str, origin: dict[str, str], source: str) -> None:
    if not ok:
        raise ConfigError(f"{_where(origin, key, source)}{key}: {message}")


def validate(cfg: TrainConfig, origin: dict[str, str] | None = None) -> None:
    """Check values and their combinations; raise :class:`ConfigError` naming the key."""
    o, src = origin or {}, cfg.source
    t, d = cfg.train, cfg.data
    _check(cfg.method in METHODS, "method", f"expected one of {', '.join(METHODS)}, got {cfg.method!r}", o, src)
    _check(t.lr > 0, "train.lr", "must be > 0", o, src)
    _check(0 <= t.min_lr_ratio <= 1, "train.min_lr_ratio", "must be in [0, 1]", o, src)
    _check(0 <= t.warmup_ratio < 1, "train.warmup_ratio", "must be in [0, 1)", o, src)
    _check(t.epochs >= 1, "train.epochs", "must be >= 1", o, src)
    _check(t.max_steps is None or t.max_steps >= 1, "train.max_steps", "must be >= 1", o, src)
    _check(t.micro_batch_size >= 1, "train.micro_batch_size", "must be >= 1", o, src)
    _check(t.global_batch_size % t.micro_batch_size == 0, "train.global_batch_size",
           f"must be a multiple of train.micro_batch_size ({t.micro_batch_size})", o, src)
    _check(t.mixed_precision in MIXED_PRECISION, "train.mixed_precision",
           f"expected one of {', '.join(MIXED_PRECISION)}", o, src)
    _check(t.model_dtype in ("float32", "bfloat16", "float16"), "train.model_dtype",
           "expected float32, bfloat16 or float16", o, src)
    _check(t.max_grad_norm > 0, "train.max_grad_norm", "must be > 0", o, src)
    _check(t.save_every >= 1, "train.save_every", "must be >= 1", o, src)
    _check(t.keep_checkpoints >= 1, "train.keep_checkpoints", "must be >= 1", o, src)
    _check(t.log_every >= 1, "train.log_every", "must be >= 1", o, src)
    _check(cfg.lora.r >= 1, "lora.r", "must be >= 1", o, src)
    _check(0 <= cfg.lora.dropout < 1, "lora.dropout", "must be in [0, 1)", o, src)
    _check(cfg.lora.lr is None or cfg.lora.lr > 0, "lora.lr", "must be > 0", o, src)
    if isinstance(d, PretrainData):
        _check(d.layout in LAYOUTS, "data.layout", f"expected one of {', '.join(LAYOUTS)}, got {d.layout!r}", o, src)
        _check(d.seq_len >= 8, "data.seq_len", "must be >= 8", o, src)
        _check(0 < d.stride <= d.seq_len or d.layout != "study", "data.stride", "must be in (0, seq_len]", o, src)
        _check(0 <= d.eval_fraction < 1, "data.eval_fraction", "must be in [0, 1)", o, src)
        _check(d.num_proc >= 1 and d.chunk_docs >= 1, "data.num_proc", "num_proc and chunk_docs must be >= 1", o, src)
        for i, s in enumerate(d.sources):
            _check(s.weight is None or s.weight >= 0, f"data.sources[{i}].weight", "must be >= 0", o, src)
        for lang, w in d.language_weights.items():
            _check(w >= 0, f"data.language_weights.{lang}", "must be >= 0", o, src)
    else:
        bad = sorted(set(d.samples) - set(SAMPLE_VARIANTS))
        _check(not bad and bool(d.samples), "data.samples", f"expected a non-empty list of "
               f"{', '.join(SAMPLE_VARIANTS)}, got {d.samples!r}", o, src)
        _check(d.format in ("study", "chat"), "data.format", "expected study or chat", o, src)
        _check(d.max_len >= 8, "data.max_len", "must be >= 8", o, src)


def require(cfg: TrainConfig, key: str, hint: str) -> None:
    """Fail with a clear message when a setting the run needs (``model``, ``out``) is not set."""
    if getattr(cfg, key) in (None, ""):
        raise ConfigError(f"{cfg.source}: {key}: not set; {hint}")
