"""The corpus build configuration: a YAML file, checked field by field with file:line in every error.

Layout (see ``corpus/recipes/demo.yaml`` and ``mmedc.yaml``)::

    name: demo
    inputs:                       # JSONL or Parquet with a text column; local or fsspec paths (s3://, hf://)
      - path: ../shared/data/corpus_dev
        glob: "*.jsonl"           # optional; a file path reads that file
        format: jsonl             # jsonl | parquet | pdf | html | warc | text (default: from the file names)
        options: {}               # reader options of pdf/html/warc inputs (INPUT_OPTIONS; see corpus/pdf.py, web.py)
        text_key: text
        id_key: id
        source: corpus_dev        # recorded as metadata "source" when a record has none
        language: null            # set when the input is known to be one language (lets you skip language_id)
    languages: [en, zh, ja, fr, ru, es]
    steps:                        # the steps to run, in this order; leave one out (or set it to false) to skip it
      language_id: {backend: fasttext, max_chars: 1000, floors: {en: 0.65}}
      medical_keywords: {thresholds: default}        # default | study | {en: [5, 0.04], ...}
      quality: {thresholds: {zh: {min_words: 100}}}
      exact_dedup: {finder_tasks: 1}
      near_dedup: {n_grams: 5, cjk_n_grams: 5, num_buckets: 14, hashes_per_bucket: 8}
    output: {path: runs/corpus/demo, format: jsonl, compression: gzip, write_removed: true}
    stats: {tokenizer: null}      # a tokenizer.json (or a folder holding one); null: estimate
    executor: {type: local, tasks: 4, workers: 2}    # local | ray | slurm

Relative local paths are resolved against the working directory. An input path ending in ``.jsonl``,
``.json``, ``.parquet`` or a compression suffix is read as one file; any other path as a folder.
A folder of PDFs, saved HTML pages or WARC files needs ``format: pdf | html | warc`` (or a glob such
as ``"*.pdf"`` that names the kind); ``format: text`` reads plain-text files, one document per file.
A setting left empty (``null``) takes its default. A config may
start from a shipped recipe or another file (``extends: demo``), and ``KEY=VALUE`` overrides apply last
(see :mod:`mmedkit.config`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator, with_config
from typing_extensions import TypedDict

from mmedkit.config import RawConfig, Recipes, Settings, build, fail_at, load_yaml
from mmedkit.errors import ConfigError
from mmedkit.languages import CODES, LanguageCodes, language_code

__all__ = ["EXECUTORS", "INPUT_FORMATS", "INPUT_OPTIONS", "RECIPES", "STEP_ORDER", "ConfigError", "CorpusConfig",
           "ExactDedupSpec", "ExecutorSpec", "InputSpec", "KeywordSpec", "LanguageIdSpec", "NearDedupSpec",
           "OutputSpec", "QualitySpec", "StatsSpec", "Steps", "load_config", "parse_config", "recipe_path"]

STEP_ORDER = ("language_id", "medical_keywords", "quality", "exact_dedup", "near_dedup")
EXECUTORS = ("local", "ray", "slurm")
INPUT_FORMATS = ("jsonl", "parquet", "pdf", "html", "warc", "text")
INPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "pdf": ("dpi", "min_chars", "pages_per_document", "matter", "page_range", "ocr", "lid_backend"),
    "html": ("include", "exclude", "sites"),
    "warc": ("include", "exclude", "sites"),
}
_FORMAT_SUFFIXES = {".parquet": "parquet", ".pdf": "pdf", ".warc": "warc", ".htm": "html", ".txt": "text"}


def _one_of(*choices: str, say: str = "") -> AfterValidator:
    """A string setting limited to ``choices`` (``say``: how the error lists them)."""

    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected {say or 'one of ' + ', '.join(choices)}, got {value!r}")
        return value

    return AfterValidator(check)


def _required(what: str) -> AfterValidator:
    """A setting that must not be empty."""

    def check(value: Any) -> Any:
        if not value:
            raise ValueError(f"required: {what}")
        return value

    return AfterValidator(check)


Count = Annotated[int, Field(ge=1)]
Size = Annotated[int, Field(ge=0)]


class Section(Settings):
    """A part of the config file; a setting left empty (``null``) takes its default."""

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {key: fields[key].get_default(call_default_factory=True)
                if value is None and key in fields and not fields[key].is_required() else value
                for key, value in data.items()}


# ---------------------------------------------------------------------------------------------- inputs
class InputSpec(Section):
    """One input: a file or a folder of JSONL, Parquet, PDF, HTML or WARC files (a bare string is its path)."""

    path: Annotated[str, _required("a file or folder (local path or fsspec URL)")]
    format: Annotated[str, _one_of(*INPUT_FORMATS)] = "jsonl"
    """Default: from the glob or path (``.parquet``, ``.pdf``, ``.warc``, ``.htm(l)``), else jsonl."""
    glob: str | None = None
    text_key: str = "text"
    id_key: str = "id"
    source: str = ""
    """Default: the file or folder name."""
    language: str | None = None
    options: dict[str, Any] = {}
    """Reader options for pdf/html/warc inputs, names in ``INPUT_OPTIONS``."""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"path": data}
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            return data
        path, data = data["path"], dict(data)
        if data.get("format") is None:
            name = (data.get("glob") or path).lower()
            data["format"] = next((kind for suffix, kind in _FORMAT_SUFFIXES.items() if suffix in name), "jsonl")
        if not data.get("source"):
            data["source"] = Path(path.rstrip("/")).name or path
        return data

    @field_validator("language")
    @classmethod
    def _language(cls, code: str | None) -> str | None:
        return None if code is None else language_code(code)

    @model_validator(mode="after")
    def _known_options(self) -> InputSpec:
        known = INPUT_OPTIONS.get(self.format, ())
        if unknown := sorted(set(self.options) - set(known)):
            raise fail_at("options", f"unknown option(s) {unknown} for {self.format} input; "
                                     f"known: {', '.join(known) or 'none'}")
        return self


# ---------------------------------------------------------------------------------------------- steps
class LanguageIdSpec(Section):
    backend: str = "fasttext"
    max_chars: Size = 1000
    floors: dict[str, float] = {}

    @field_validator("backend")
    @classmethod
    def _backend(cls, name: str) -> str:
        from mmedkit.corpus.lid import BACKENDS

        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
        return name

    @field_validator("floors", mode="before")
    @classmethod
    def _floors(cls, floors: Any) -> Any:
        from mmedkit.corpus.lid import check_floors

        try:
            return check_floors(floors) if isinstance(floors, dict) else floors
        except KeyError as exc:
            raise ValueError(str(exc)) from None


class KeywordSpec(Section):
    thresholds: str | dict[str, tuple[int, float]] = "default"
    """``default`` (our calibrated thresholds), ``study`` (the study's), or ``{code: [count, ratio]}``."""

    @field_validator("thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> Any:
        if value in ("default", "study"):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected default, study or a mapping {{code: [count, ratio]}}, got {value!r}")
        out: dict[str, tuple[int, float]] = {}
        for key, pair in value.items():
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or isinstance(pair[0], bool)
                    or not isinstance(pair[0], int) or not isinstance(pair[1], (int, float))):
                raise fail_at(f"thresholds.{key}", f"expected [count, ratio], got {pair!r}")
            try:
                out[language_code(key)] = (pair[0], float(pair[1]))
            except ValueError as exc:
                raise fail_at(f"thresholds.{key}", str(exc)) from None
        return out


class QualitySpec(Section):
    thresholds: dict[str, dict[str, Any]] = {}
    """Per-language overrides of :data:`mmedkit.corpus.quality.DEFAULT_THRESHOLDS`."""

    @field_validator("thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> Any:
        from mmedkit.corpus.quality import thresholds_for

        if isinstance(value, dict):
            try:
                thresholds_for(value)
            except KeyError as exc:
                raise ValueError(str(exc)) from None
        return value


class ExactDedupSpec(Section):
    finder_tasks: Count = 1


class NearDedupSpec(Section):
    n_grams: Count = 5
    cjk_n_grams: Count = 5
    num_buckets: Count = 14
    hashes_per_bucket: Count = 8
    seed: Size = 1


@with_config(extra="forbid")
class Steps(TypedDict, total=False):
    """The steps that run, in :data:`STEP_ORDER` (a plain dict holding only those)."""

    language_id: LanguageIdSpec
    medical_keywords: KeywordSpec
    quality: QualitySpec
    exact_dedup: ExactDedupSpec
    near_dedup: NearDedupSpec


def _every_step() -> Steps:
    return Steps(language_id=LanguageIdSpec(), medical_keywords=KeywordSpec(), quality=QualitySpec(),
                 exact_dedup=ExactDedupSpec(), near_dedup=NearDedupSpec())


# ---------------------------------------------------------------------------------------------- output, run
class OutputSpec(Section):
    """Where the corpus goes (a bare string is its path)."""

    path: Annotated[str, _required("the output folder (local path or fsspec URL)")]
    format: Annotated[str, _one_of("jsonl", "parquet", say="jsonl or parquet")] = "jsonl"
    compression: Annotated[str, _one_of("gzip", "zstd", "none", say="gzip, zstd or none")] = "gzip"
    write_removed: bool = True
    """Also write every dropped document to ``removed/<step>/`` (with its reason)."""
    work_dir: str | None = None
    """Intermediate files, logs and completion markers (default: ``<path>/_work``)."""

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class StatsSpec(Section):
    tokenizer: str | None = None
    """A tokenizer.json (or a folder holding one) for exact token counts; None: estimated."""


class ExecutorSpec(Section):
    type: Annotated[str, _one_of(*EXECUTORS)] = "local"
    tasks: Count = 1
    workers: Count = 1
    ray_address: str | None = None
    cpus_per_task: Count = 1
    mem_per_cpu_gb: Annotated[float, Field(ge=0)] = 2.0
    partition: str | None = None
    time: str = "24:00:00"
    qos: str = "normal"
    venv_path: str | None = None
    sbatch_args: dict[str, Any] = {}


# ---------------------------------------------------------------------------------------------- the build
class CorpusConfig(Section):
    """A whole corpus build."""

    name: str = ""
    """Default: the config file's name."""
    inputs: list[InputSpec]
    output: OutputSpec
    languages: LanguageCodes = Field(default_factory=lambda: list(CODES))
    steps: Steps = Field(default_factory=_every_step)
    """Step name -> its spec (only the steps that run), in :data:`STEP_ORDER`."""
    stats: StatsSpec = StatsSpec()
    executor: ExecutorSpec = ExecutorSpec()
    _source_file: str = PrivateAttr("<config>")

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_input(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value

    @field_validator("inputs")
    @classmethod
    def _some_inputs(cls, inputs: list[InputSpec]) -> list[InputSpec]:
        if not inputs:
            raise ValueError("required: a list of inputs (paths or mappings with a path)")
        return inputs

    @field_validator("steps", mode="before")
    @classmethod
    def _switches(cls, steps: Any) -> Any:
        """``true`` or an empty value runs a step with its defaults, ``false`` leaves it out."""
        if not isinstance(steps, dict):
            return steps
        return {name: {} if spec is None or spec is True else spec for name, spec in steps.items()
                if spec is not False}

    @model_validator(mode="after")
    def _consistent(self) -> CorpusConfig:
        if self.executor.type == "slurm" and not self.executor.partition:
            raise fail_at("executor.partition", "required for the slurm executor")
        if "language_id" not in self.steps and any(i.language is None for i in self.inputs):
            raise fail_at("steps", "language_id is required unless every input sets its `language`")
        names = [i.source for i in self.inputs]
        if len(set(names)) != len(names):
            raise fail_at("inputs", f"two inputs share a source name ({names}); set `source:` on each")
        return self

    @property
    def source_file(self) -> str:
        """The file (or label) the config was read from."""
        return self._source_file

    @property
    def tokenizer(self) -> str | None:
        return self.stats.tokenizer

    @property
    def work_dir(self) -> str:
        return self.output.work_dir or f"{self.output.path.rstrip('/')}/_work"

    def fingerprint(self) -> dict[str, Any]:
        """What decides the output: everything but how the work is scheduled."""
        data = self.model_dump(exclude={"stats", "executor"})
        data.update(tokenizer=self.tokenizer, tasks=self.executor.tasks)
        return json.loads(json.dumps(data, sort_keys=True, default=str))


# ---------------------------------------------------------------------------------------------- reading
recipes = Recipes("corpus/recipes")
RECIPES = tuple(recipes.names())
"""The shipped recipes: ``mmedc`` (the study's recipe) and ``demo`` (a small run)."""


def recipe_path(name: str) -> Path:
    """The shipped recipe ``name``."""
    return recipes.root / f"{name}.yaml"


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> CorpusConfig:
    """Read a YAML config (or the name of a shipped recipe), apply ``KEY=VALUE`` overrides and check it."""
    return _build(load_yaml(recipes.find(path), recipes=recipes, overrides=overrides))


def parse_config(data: Any, source: str = "<config>", lines: dict[str, int] | None = None) -> CorpusConfig:
    """Check parsed YAML/JSON ``data`` (``lines``: dotted key -> line in ``source``) and build the config."""
    return _build(RawConfig(data, {key: f"{source}:{n}" for key, n in (lines or {}).items()}, source))


def _build(raw: RawConfig) -> CorpusConfig:
    if not raw.data:
        raise raw.error("", "empty configuration")
    cfg = build(CorpusConfig, raw)
    cfg.name = cfg.name or Path(raw.source).stem
    cfg._source_file = raw.source
    return cfg
