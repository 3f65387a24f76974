"""The corpus build configuration: a YAML file, checked field by field with file:line in every error.

Layout (see ``corpus/recipes/demo.yaml`` and ``mmedc.yaml``)::

    name: demo
    inputs:                       # JSONL or Parquet with a text column; local or fsspec paths (s3://, hf://)
      - path: ../shared/data/corpus_dev
        glob: "*.jsonl"           # optional; a file path reads that file
        format: jsonl             # jsonl | parquet | pdf | html | warc (default: from the file names)
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
as ``"*.pdf"`` that names the kind).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mmedkit.languages import CODES, get_language

STEP_ORDER = ("language_id", "medical_keywords", "quality", "exact_dedup", "near_dedup")
EXECUTORS = ("local", "ray", "slurm")


class ConfigError(ValueError):
    """A configuration problem, naming the file, line and field."""


@dataclass
class InputSpec:
    """One input: a file or a folder of JSONL/Parquet files."""

    path: str
    format: str = "jsonl"
    glob: str | None = None
    text_key: str = "text"
    id_key: str = "id"
    source: str = ""
    language: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Reader options for pdf/html/warc inputs, names in ``INPUT_OPTIONS``."""


INPUT_FORMATS = ("jsonl", "parquet", "pdf", "html", "warc")
INPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "pdf": ("dpi", "min_chars", "pages_per_document", "matter", "page_range", "ocr", "lid_backend"),
    "html": ("include", "exclude", "sites"),
    "warc": ("include", "exclude", "sites"),
}


@dataclass
class LanguageIdSpec:
    backend: str = "fasttext"
    max_chars: int = 1000
    floors: dict[str, float] = field(default_factory=dict)


@dataclass
class KeywordSpec:
    thresholds: str | dict[str, tuple[int, float]] = "default"
    """``default`` (our calibrated thresholds), ``study`` (the study's), or ``{code: [count, ratio]}``."""


@dataclass
class QualitySpec:
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ExactDedupSpec:
    finder_tasks: int = 1


@dataclass
class NearDedupSpec:
    n_grams: int = 5
    cjk_n_grams: int = 5
    num_buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1


@dataclass
class OutputSpec:
    path: str
    format: str = "jsonl"
    compression: str = "gzip"
    write_removed: bool = True
    """Also write every dropped document to ``removed/<step>/`` (with its reason)."""
    work_dir: str | None = None
    """Intermediate files, logs and completion markers (default: ``<path>/_work``)."""


@dataclass
class ExecutorSpec:
    type: str = "local"
    tasks: int = 1
    workers: int = 1
    ray_address: str | None = None
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    partition: str | None = None
    time: str = "24:00:00"
    qos: str = "normal"
    venv_path: str | None = None
    sbatch_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class CorpusConfig:
    """A whole corpus build."""

    name: str
    inputs: list[InputSpec]
    output: OutputSpec
    languages: list[str] = field(default_factory=lambda: list(CODES))
    steps: dict[str, Any] = field(default_factory=dict)
    """Step name -> its spec (only the steps that run), in :data:`STEP_ORDER`."""
    tokenizer: str | None = None
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    source_file: str = "<config>"

    @property
    def work_dir(self) -> str:
        return self.output.work_dir or f"{self.output.path.rstrip('/')}/_work"

    def fingerprint(self) -> dict[str, Any]:
        """What decides the output: everything but how the work is scheduled."""
        data = dataclasses.asdict(self)
        data.pop("source_file")
        execution = data.pop("executor")
        data["tasks"] = execution["tasks"]
        return json.loads(json.dumps(data, sort_keys=True, default=str))


def _lines(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _lines(value, f"{path}.{key.value}" if path else str(key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _lines(value, f"{path}[{i}]", out)


class _Reader:
    """Typed access to the parsed YAML with errors that say where."""

    def __init__(self, source: str, lines: dict[str, int]) -> None:
        self.source = source
        self.lines = lines

    def error(self, path: str, message: str) -> ConfigError:
        key = path
        while key and key not in self.lines:
            key = key.rpartition(".")[0]
        line = self.lines.get(key or "", 1)
        return ConfigError(f"{self.source}:{line}: {path}: {message}")

    def mapping(self, value: Any, path: str, known: tuple[str, ...] | list[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in known:
                raise self.error(f"{path}.{key}" if path else str(key),
                                 f"unknown field; known: {', '.join(known)}")
        return value

    def typed(self, data: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any,
              minimum: float | None = None) -> Any:
        value = data.get(key, default)
        where = f"{path}.{key}" if path else key
        if value is None and default is None:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(where, f"expected {names}, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(where, f"must be >= {minimum}, got {value!r}")
        return value


_AT_LEAST_ONE = {"tasks", "workers", "finder_tasks", "n_grams", "cjk_n_grams", "num_buckets", "hashes_per_bucket",
                 "cpus_per_task"}


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _spec(r: _Reader, cls: type, value: Any, where: str, **fixed: Any) -> Any:
    """Build the dataclass ``cls`` from a mapping, checking names and scalar types against the defaults."""
    data = r.mapping(value, where, [n for n in _fields(cls) if n not in fixed])
    defaults = cls(**fixed)
    kwargs: dict[str, Any] = dict(fixed)
    for f in dataclasses.fields(cls):
        if f.name in fixed or f.name not in data:
            continue
        current = getattr(defaults, f.name)
        if isinstance(current, bool):
            kwargs[f.name] = r.typed(data, f.name, where, bool, current)
        elif isinstance(current, int):
            kwargs[f.name] = r.typed(data, f.name, where, int, current, minimum=1 if f.name in _AT_LEAST_ONE else 0)
        elif isinstance(current, float):
            kwargs[f.name] = float(r.typed(data, f.name, where, (int, float), current, minimum=0))
        elif isinstance(current, dict):
            kwargs[f.name] = r.mapping(data[f.name], f"{where}.{f.name}", list(data[f.name] or {}))
        else:
            value = data[f.name]
            if value is not None and not isinstance(value, (str, dict)):
                raise r.error(f"{where}.{f.name}", f"expected a string, got {value!r}")
            kwargs[f.name] = value
    return cls(**kwargs)


def _input(r: _Reader, value: Any, path: str) -> InputSpec:
    if isinstance(value, str):
        value = {"path": value}
    data = r.mapping(value, path, _fields(InputSpec))
    if not isinstance(data.get("path"), str) or not data["path"]:
        raise r.error(f"{path}.path", "required: a file or folder (local path or fsspec URL)")
    spec = _spec(r, InputSpec, {k: v for k, v in data.items() if k != "path"}, path, path=data["path"])
    if "format" not in data:
        name = (spec.glob or spec.path).lower()
        kinds = {".parquet": "parquet", ".pdf": "pdf", ".warc": "warc", ".htm": "html"}
        spec.format = next((kind for suffix, kind in kinds.items() if suffix in name), "jsonl")
    if spec.format not in INPUT_FORMATS:
        raise r.error(f"{path}.format", f"expected one of {', '.join(INPUT_FORMATS)}, got {spec.format!r}")
    unknown = sorted(set(spec.options) - set(INPUT_OPTIONS.get(spec.format, ())))
    if unknown:
        known = ", ".join(INPUT_OPTIONS.get(spec.format, ())) or "none"
        raise r.error(f"{path}.options", f"unknown option(s) {unknown} for {spec.format} input; known: {known}")
    if spec.language is not None:
        try:
            spec.language = get_language(spec.language).code
        except KeyError as exc:
            raise r.error(f"{path}.language", str(exc)) from None
    if not spec.source:
        spec.source = Path(spec.path.rstrip("/")).name or spec.path
    return spec


def _steps(r: _Reader, value: Any) -> dict[str, Any]:
    data = r.mapping(value, "steps", STEP_ORDER)
    classes = {"language_id": LanguageIdSpec, "medical_keywords": KeywordSpec, "quality": QualitySpec,
               "exact_dedup": ExactDedupSpec, "near_dedup": NearDedupSpec}
    steps: dict[str, Any] = {}
    for name in STEP_ORDER:
        if name not in data or data[name] is False:
            continue
        raw = {} if data[name] is True else data[name]
        spec = _spec(r, classes[name], raw, f"steps.{name}")
        if name == "language_id":
            from mmedkit.corpus.lid import BACKENDS, check_floors

            if spec.backend not in BACKENDS:
                raise r.error("steps.language_id.backend", f"unknown backend {spec.backend!r}; known: "
                              f"{', '.join(BACKENDS)}")
            try:
                spec.floors = check_floors(spec.floors)
            except (KeyError, ValueError) as exc:
                raise r.error("steps.language_id.floors", str(exc)) from None
        elif name == "medical_keywords":
            spec.thresholds = _keyword_thresholds(r, spec.thresholds)
        elif name == "quality":
            from mmedkit.corpus.quality import thresholds_for

            try:
                thresholds_for(spec.thresholds)
            except (KeyError, ValueError) as exc:
                raise r.error("steps.quality.thresholds", str(exc)) from None
        steps[name] = spec
    return steps


def _keyword_thresholds(r: _Reader, value: Any) -> str | dict[str, tuple[int, float]]:
    where = "steps.medical_keywords.thresholds"
    if value in ("default", "study"):
        return value
    if not isinstance(value, dict):
        raise r.error(where, f"expected default, study or a mapping {{code: [count, ratio]}}, got {value!r}")
    out: dict[str, tuple[int, float]] = {}
    for key, pair in value.items():
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or isinstance(pair[0], bool)
                or not isinstance(pair[0], int) or not isinstance(pair[1], (int, float))):
            raise r.error(f"{where}.{key}", f"expected [count, ratio], got {pair!r}")
        try:
            out[get_language(str(key)).code] = (pair[0], float(pair[1]))
        except KeyError as exc:
            raise r.error(f"{where}.{key}", str(exc)) from None
    return out


def parse_config(data: Any, source: str = "<config>", lines: dict[str, int] | None = None) -> CorpusConfig:
    """Check parsed YAML/JSON ``data`` and build a :class:`CorpusConfig`."""
    r = _Reader(source, lines or {})
    top = r.mapping(data, "", ("name", "inputs", "languages", "steps", "output", "stats", "executor"))
    if not top:
        raise r.error("", "empty configuration")
    raw_inputs = top.get("inputs")
    if isinstance(raw_inputs, (str, dict)):
        raw_inputs = [raw_inputs]
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise r.error("inputs", "required: a list of inputs (paths or mappings with a path)")
    inputs = [_input(r, item, f"inputs[{i}]") for i, item in enumerate(raw_inputs)]
    names = [i.source for i in inputs]
    languages = top.get("languages", list(CODES))
    if isinstance(languages, str):
        languages = [s.strip() for s in languages.split(",") if s.strip()]
    if not isinstance(languages, list) or not languages:
        raise r.error("languages", "expected a non-empty list of language codes")
    try:
        codes = list(dict.fromkeys(get_language(str(code)).code for code in languages))
    except KeyError as exc:
        raise r.error("languages", str(exc)) from None
    out = top.get("output")
    if isinstance(out, str):
        out = {"path": out}
    out_map = r.mapping(out, "output", _fields(OutputSpec))
    if not isinstance(out_map.get("path"), str) or not out_map["path"]:
        raise r.error("output.path", "required: the output folder (local path or fsspec URL)")
    output = _spec(r, OutputSpec, {k: v for k, v in out_map.items() if k != "path"}, "output",
                   path=out_map["path"])
    if output.format not in ("jsonl", "parquet"):
        raise r.error("output.format", f"expected jsonl or parquet, got {output.format!r}")
    if output.compression not in ("gzip", "zstd", "none"):
        raise r.error("output.compression", f"expected gzip, zstd or none, got {output.compression!r}")
    stats = r.mapping(top.get("stats"), "stats", ("tokenizer",))
    tokenizer = r.typed(stats, "tokenizer", "stats", str, None)
    executor = _spec(r, ExecutorSpec, top.get("executor"), "executor")
    if executor.type not in EXECUTORS:
        raise r.error("executor.type", f"expected one of {', '.join(EXECUTORS)}, got {executor.type!r}")
    if executor.type == "slurm" and not executor.partition:
        raise r.error("executor.partition", "required for the slurm executor")
    steps = _steps(r, top.get("steps", {name: {} for name in STEP_ORDER}))
    if "language_id" not in steps and any(i.language is None for i in inputs):
        raise r.error("steps", "language_id is required unless every input sets its `language`")
    name = top.get("name") or Path(source).stem
    if len(set(names)) != len(names):
        raise r.error("inputs", f"two inputs share a source name ({names}); set `source:` on each")
    return CorpusConfig(name=str(name), inputs=inputs, output=output, languages=codes, steps=steps,
                        tokenizer=tokenizer, executor=executor, source_file=source)


RECIPES = ("mmedc", "demo")


def recipe_path(name: str) -> Path:
    """The shipped recipe ``name`` (``mmedc``: the study's recipe; ``demo``: a small run)."""
    return Path(str(resources.files("mmedkit").joinpath("corpus", "recipes", f"{name}.yaml")))


def load_config(path: str | Path) -> CorpusConfig:
    """Read a YAML config (or the name of a shipped recipe) and check it."""
    p = Path(path)
    if not p.is_file() and str(path) in RECIPES:
        p = recipe_path(str(path))
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from exc
    lines: dict[str, int] = {}
    if node is not None:
        _lines(node, "", lines)
    return parse_config(data, str(p), lines)
