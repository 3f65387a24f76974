"""Training configuration: typed settings read from YAML recipes, with errors that name the file, line and key.

A config file (or a shipped recipe, found by name) describes one stage, ``pretrain`` or ``sft``::

    stage: pretrain
    model: meta-llama/Meta-Llama-3-8B
    out: runs/mmed-llama3-pretrain
    data: {sources: [{path: "corpus/*.jsonl"}], seq_len: 2048}
    train: {lr: 2.0e-5, epochs: 3, global_batch_size: 512, micro_batch_size: 4}

``extends: NAME`` starts from another recipe of the same stage (or a YAML path) and overrides it
key by key. Relative paths in a config are relative to the working directory. Reading, ``extends``,
``--set`` overrides and error locations come from :mod:`mmedkit.config`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, ValidationInfo, field_validator

from mmedkit.config import RawConfig, Recipes, Settings, build, fail_at, load_yaml, merge
from mmedkit.errors import ConfigError

__all__ = ["ConfigError", "LoggingSettings", "LoraSettings", "PretrainConfig", "PretrainData", "SFTConfig", "SFTData",
           "Source", "TrainConfig", "TrainSettings", "config_from_dict", "find_config", "list_recipes", "load_config",
           "recipes_root", "require"]

STAGES = ("pretrain", "sft")
METHODS = ("full", "lora")
LAYOUTS = ("packed", "study")
SAMPLE_VARIANTS = ("rationale", "answer")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
MODEL_DTYPES = ("float32", "bfloat16", "float16")
RECIPES = Recipes("train/recipes", kinds=STAGES)


def _rule(test: Callable[[Any], bool], message: str) -> AfterValidator:
    """A check on one value (None passes), failing with ``message``."""

    def check(value: Any) -> Any:
        if value is not None and not test(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _one_of(choices: tuple[str, ...], message: str | None = None) -> AfterValidator:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(message or f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return AfterValidator(check)


Positive = Annotated[float, _rule(lambda v: v > 0, "must be > 0")]
NonNegative = Annotated[float, _rule(lambda v: v >= 0, "must be >= 0")]
AtLeastOne = Annotated[int, _rule(lambda v: v >= 1, "must be >= 1")]
AtLeastEight = Annotated[int, _rule(lambda v: v >= 8, "must be >= 8")]
UnitInterval = Annotated[float, _rule(lambda v: 0 <= v <= 1, "must be in [0, 1]")]
UnitIntervalOpen = Annotated[float, _rule(lambda v: 0 <= v < 1, "must be in [0, 1)")]


class Source(Settings):
    """One input of the pretraining corpus: a file, folder, glob or fsspec URL of JSONL/Parquet shards."""

    path: str
    weight: NonNegative | None = None
    """Times each document is seen per epoch (fractions sample a seeded subset); overrides the language weight."""
    lang: str | None = None
    """Language of every document of this source (default: the record's ``lang_field``)."""


class PretrainData(Settings):
    """Corpus, tokenisation cache and sequence layout for continued pretraining."""

    sources: list[Source] = Field(default_factory=list)
    text_field: str = "text"
    lang_field: str | None = "auto"
    """Record field holding the language (dotted for nested fields); ``auto``: lang, language or metadata.language."""
    where: dict[str, Any] = Field(default_factory=dict)
    """Keep only records whose fields equal these values, e.g. ``{label: medical}`` (dotted keys for nested fields)."""
    language_weights: dict[str, NonNegative] = Field(default_factory=dict)
    """Sampling weight per language code (default 1.0): documents seen per epoch."""
    seq_len: AtLeastEight = 2048
    layout: Annotated[str, _one_of(LAYOUTS)] = "packed"
    """``packed``: documents joined with EOS, cut into full sequences. ``study``: one document per window."""
    stride: int = 1536
    """study layout: distance between window starts (windows overlap by seq_len - stride)."""
    eval_fraction: UnitIntervalOpen = 0.0
    """Documents held out (seeded, per document) to measure held-out loss and perplexity."""
    cache_dir: str | None = None
    """Token cache (default ``$MMEDKIT_CACHE/tokens``); reused across runs, resumable."""
    num_proc: int = 1
    chunk_docs: int = 1000

    @field_validator("stride")
    @classmethod
    def _stride_within_a_window(cls, stride: int, info: ValidationInfo) -> int:
        seq_len = info.data.get("seq_len", stride)
        if info.data.get("layout") == "study" and not 0 < stride <= seq_len:
            raise ValueError("must be in (0, seq_len]")
        return stride

    @field_validator("num_proc", "chunk_docs")
    @classmethod
    def _positive_counts(cls, value: int) -> int:
        if value < 1:
            raise fail_at("num_proc", "num_proc and chunk_docs must be >= 1")
        return value


class SFTData(Settings):
    """Fine-tuning samples from an MMedBench-layout folder, formatted as the benchmark formats prompts."""

    path: str = "demo"
    split: str = "train"
    langs: str | None = None
    limit: int | None = None
    """At most this many items per language."""
    format: Annotated[str, _one_of(("study", "chat"), "expected study or chat")] = "study"
    samples: list[str] = Field(default_factory=lambda: list(SAMPLE_VARIANTS))
    """Samples per item: ``rationale`` (when the item has one) and ``answer`` (answer only)."""
    max_len: AtLeastEight = 2048
    packing: bool = False
    skip_invalid: bool = False

    @field_validator("samples")
    @classmethod
    def _known_variants(cls, samples: list[str]) -> list[str]:
        if not samples or set(samples) - set(SAMPLE_VARIANTS):
            raise ValueError(f"expected a non-empty list of {', '.join(SAMPLE_VARIANTS)}, got {samples!r}")
        return samples


class TrainSettings(Settings):
    """Optimisation, schedule, checkpointing."""

    epochs: AtLeastOne = 1
    max_steps: AtLeastOne | None = None
    global_batch_size: int = 8
    """Sequences per optimizer step, over all processes and accumulation steps."""
    micro_batch_size: AtLeastOne = 8
    """Sequences per forward pass on one device."""
    lr: Positive = 2e-5
    min_lr_ratio: UnitInterval = 0.0
    warmup_ratio: UnitIntervalOpen = 0.0
    warmup_steps: int | None = None
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: Positive = 1.0
    mixed_precision: Annotated[str, _one_of(MIXED_PRECISION, f"expected one of {', '.join(MIXED_PRECISION)}")] = "auto"
    """``auto``: bf16 on GPUs that support it, fp32 elsewhere."""
    model_dtype: Annotated[str, _one_of(MODEL_DTYPES, "expected float32, bfloat16 or float16")] = "float32"
    """dtype of the trained weights (float32 master weights; bfloat16 for pure-bf16 training)."""
    gradient_checkpointing: bool = False
    seed: int = 42
    save_every: AtLeastOne = 500
    keep_checkpoints: AtLeastOne = 2
    eval_every: int | None = None
    log_every: AtLeastOne = 10
    num_workers: int = 0
    pad_to_multiple_of: int | None = None

    @field_validator("micro_batch_size")
    @classmethod
    def _divides_the_global_batch(cls, micro: int, info: ValidationInfo) -> int:
        if info.data.get("global_batch_size", micro) % micro:
            raise fail_at("global_batch_size", f"must be a multiple of train.micro_batch_size ({micro})")
        return micro


class LoraSettings(Settings):
    """LoRA adapter settings (``method: lora``)."""

    r: AtLeastOne = 16
    alpha: int = 32
    dropout: UnitIntervalOpen = 0.05
    target_modules: list[str] | str = "auto"
    """``auto`` (found from the architecture: q/v projections for Llama-like models), ``all-linear`` or names."""
    bias: str = "none"
    lr: Positive | None = None
    """Learning rate of LoRA runs (default: train.lr); LoRA needs a far larger step than full fine-tuning."""


class LoggingSettings(Settings):
    """Where metrics go."""

    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "mmedkit"
    run_name: str | None = None
    progress: bool = True


DATA_OF_STAGE: dict[str, type[PretrainData] | type[SFTData]] = {"pretrain": PretrainData, "sft": SFTData}


class TrainConfig(Settings):
    """One training run."""

    stage: Annotated[str, _one_of(STAGES)]
    model: str | None = None
    out: str | None = None
    method: Annotated[str, _one_of(METHODS)] = "full"
    trust_remote_code: bool = False
    data: PretrainData | SFTData = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]
    """The stage's data settings: :class:`PretrainData` or :class:`SFTData`."""
    train: TrainSettings = Field(default_factory=TrainSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    _source: str = PrivateAttr(default="<dict>")

    @field_validator("data", mode="wrap")
    @classmethod
    def _data_of_the_stage(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        """``data`` is read as the data settings of the config's stage."""
        kind = DATA_OF_STAGE.get(info.data.get("stage", ""))
        return kind.model_validate(value) if kind else value

    @property
    def source(self) -> str:
        """Where the config was read from (for messages)."""
        return self._source

    @property
    def lr(self) -> float:
        """The peak learning rate of this run (``lora.lr`` for LoRA runs when set)."""
        return self.lora.lr if self.method == "lora" and self.lora.lr is not None else self.train.lr

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (YAML/JSON-ready)."""
        return self.model_dump()

    def updated(self, changes: dict[str, Any]) -> TrainConfig:
        """A copy with ``changes`` (nested like the YAML, e.g. ``{"data": {"path": ...}}``) merged in and checked;
        errors name :attr:`source` (used for command-line options such as ``--model``)."""
        return config_from_dict(merge(self.to_dict(), changes), source=self.source)


class PretrainConfig(TrainConfig):
    """A continued-pretraining run."""

    data: PretrainData = Field(default_factory=PretrainData)


class SFTConfig(TrainConfig):
    """A fine-tuning run."""

    data: SFTData = Field(default_factory=SFTData)


CONFIG_OF_STAGE: dict[str, type[TrainConfig]] = {"pretrain": PretrainConfig, "sft": SFTConfig}


# ---------------------------------------------------------------------------------------------- loading


def recipes_root() -> Path:
    """The folder of shipped recipes (``recipes/<stage>/<name>.yaml``, ``recipes/accelerate/*.yaml``)."""
    return RECIPES.root


def list_recipes(stage: str | None = None) -> dict[str, list[str]]:
    """Recipe names per stage."""
    return {s: RECIPES.names(s) for s in ([stage] if stage else STAGES)}


def find_config(name: str | Path, stage: str) -> Path:
    """A YAML path, or the shipped recipe ``name`` of ``stage``."""
    return RECIPES.find(name, stage)


def load_config(path: str | Path, stage: str, overrides: Iterable[str] | None = None) -> TrainConfig:
    """Read a config file or recipe for ``stage``, apply ``KEY=VALUE`` overrides, validate."""
    file = find_config(path, stage)
    raw = load_yaml(file, recipes=RECIPES, kind=stage, overrides=overrides or ())
    found = raw.data.setdefault("stage", stage)
    if found != stage and found in STAGES:
        raise raw.error("stage", f"this is a {found!r} config; run it with `mmed train {found}`")
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any] | RawConfig, *, origin: dict[str, str] | None = None,
                     source: str = "<dict>") -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from plain data (or a :class:`~mmedkit.config.RawConfig`)."""
    if not isinstance(raw, RawConfig):
        raw = RawConfig(dict(raw), dict(origin or {}), source)
    stage = raw.data.get("stage")
    if stage not in CONFIG_OF_STAGE:
        raise raw.error("stage", f"expected one of {', '.join(STAGES)}, got {stage!r}")
    cfg = build(CONFIG_OF_STAGE[stage], raw)
    cfg._source = raw.source
    return cfg


def require(cfg: TrainConfig, key: str, hint: str) -> None:
    """Fail with a clear message when a setting the run needs (``model``, ``out``) is not set."""
    if getattr(cfg, key) in (None, ""):
        raise ConfigError(f"{cfg.source}: {key}: not set; {hint}")
