"""The one config foundation of every stage: YAML with a line map, ``extends:``, ``--set`` overrides,
typed settings (pydantic v2), one :class:`ConfigError` naming ``file:line: key``, one recipe lookup.

A stage declares its settings as :class:`Settings` models and reads a file in three steps::

    recipes = Recipes("train/recipes", kinds=("pretrain", "sft"))
    raw = load_yaml(recipes.find("tiny-cpu", "sft"), recipes=recipes, kind="sft", overrides=["train.lr=1e-4"])
    cfg = build(TrainConfig, raw)          # ConfigError("…/tiny-cpu.yaml:7: train.lr: must be > 0")

* :func:`load_yaml` reads the YAML, records the line of every key (``a.b``, ``a[0]``), resolves
  ``extends: NAME|path.yaml`` (a recipe of the same kind, or a file relative to the extending one;
  mappings merge key by key, everything else is replaced) and applies ``KEY=VALUE`` overrides (values
  read as YAML, origin ``--set``).
* :func:`build` validates a :class:`RawConfig` (or plain data) into a model; the first validation
  problem becomes one :class:`ConfigError` with the file and line the key came from.
* Validators raise ``ValueError("message")`` (the key is added), or :func:`fail_at` for another key.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError
from typing_extensions import is_typeddict

from mmedkit.errors import ConfigError

__all__ = ["ConfigError", "RawConfig", "Recipes", "Settings", "build", "fail_at", "join_key", "line_map", "load_yaml",
           "merge", "parse_override", "read_yaml"]


class Settings(BaseModel):
    """Base of every settings model: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


# ---------------------------------------------------------------------------------------------- raw YAML
@dataclasses.dataclass
class RawConfig:
    """Parsed YAML and, for every dotted key, the ``file:line`` (or ``--set``) it came from."""

    data: dict[str, Any]
    origin: dict[str, str] = dataclasses.field(default_factory=dict)
    source: str = "<config>"

    def where(self, key: str) -> str:
        """``file:line`` of ``key``, else of its nearest parent that is in the file, else the file."""
        probe = key
        while probe:
            if probe in self.origin:
                return self.origin[probe]
            probe = _parent(probe)
        return self.origin.get("", self.source)

    def error(self, key: str, message: str) -> ConfigError:
        """A :class:`ConfigError` ``file:line: key: message`` (no key part when ``key`` is empty)."""
        return ConfigError(f"{self.where(key)}: {key}: {message}" if key else f"{self.where(key)}: {message}")

    def get(self, key: str, default: Any = None) -> Any:
        """The value at dotted ``key`` (``a.b``; list items as ``a[0]``), or ``default``."""
        node: Any = self.data
        for part in _split(key):
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                node = node[part]
            elif isinstance(part, str) and isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        return node


def _parent(key: str) -> str:
    if key.endswith("]"):
        return key[: key.rindex("[")]
    return key.rpartition(".")[0]


def _split(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in key.split("."):
        name, *indexes = chunk.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i.rstrip("]")) for i in indexes)
    return parts


def join_key(loc: Iterable[str | int]) -> str:
    """``('a', 0, 'b')`` -> ``a[0].b``: the dotted form of a key path used in every message."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_map(node: yaml.Node | None, prefix: str = "", out: dict[str, int] | None = None) -> dict[str, int]:
    """Dotted key (``a.b``, ``a[0]``) -> 1-based line of that key in the YAML node tree."""
    out = {} if out is None else out
    if node is None:
        return out
    out.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{prefix}.{key.value}" if prefix else str(key.value)
            out[name] = key.start_mark.line + 1
            line_map(value, name, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            out[f"{prefix}[{i}]"] = value.start_mark.line + 1
            line_map(value, f"{prefix}[{i}]", out)
    return out


def read_yaml(path: str | Path, *, mapping: bool = True) -> tuple[Any, dict[str, int]]:
    """Parse ``path``: (data, line map). Unreadable or invalid files raise :class:`ConfigError` with the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if mapping:
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data, line_map(node)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, other values are replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.lr=1e-4`` -> (["train", "lr"], 1e-4); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: invalid value: {exc}") from exc
    return key.strip().split("."), parsed


def apply_overrides(raw: RawConfig, overrides: Iterable[str]) -> RawConfig:
    """Apply ``KEY=VALUE`` overrides in place (origin ``--set``) and return ``raw``."""
    for text in overrides:
        keys, value = parse_override(text)
        node = raw.data
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(keys)}: {'.'.join(keys[:i + 1])} is not a mapping")
            node = child
        node[keys[-1]] = value
        raw.origin[".".join(keys)] = "--set"
    return raw


def load_yaml(path: str | Path, *, recipes: Recipes | None = None, kind: str | None = None,
              overrides: Iterable[str] = (), extends_key: str = "extends") -> RawConfig:
    """Read ``path`` with its ``extends`` chain resolved and ``overrides`` applied."""
    raw = _resolve(Path(path), recipes, kind, extends_key, ())
    return apply_overrides(raw, overrides)


def _resolve(path: Path, recipes: Recipes | None, kind: str | None, extends_key: str,
             seen: tuple[Path, ...]) -> RawConfig:
    data, lines = read_yaml(path)
    origin = {key: f"{path}:{n}" for key, n in lines.items()}
    origin[""] = str(path)
    parent = data.pop(extends_key, None)
    if parent is None:
        return RawConfig(data, origin, str(path))
    if not isinstance(parent, str):
        raise ConfigError(f"{path}:{lines.get(extends_key, 1)}: {extends_key}: expected a recipe name or a path")
    if parent.endswith((".yaml", ".yml")) or recipes is None:
        target = path.parent / parent
    else:
        target = recipes.find(parent, kind)
    if target.resolve() in seen or target.resolve() == path.resolve():
        raise ConfigError(f"{path}: {extends_key}: cycle through {target}")
    base = _resolve(target, recipes, kind, extends_key, (*seen, path.resolve()))
    return RawConfig(merge(base.data, data), {**base.origin, **origin}, str(path))


# ---------------------------------------------------------------------------------------------- recipes
class Recipes:
    """Shipped recipes: ``mmedkit/<folder>/[<kind>/]<name>.yaml``, found by name or taken as a path."""

    def __init__(self, folder: str, *, kinds: Sequence[str] = (), label: str = "recipe") -> None:
        self.folder, self.kinds, self.label = folder, tuple(kinds), label

    @property
    def root(self) -> Path:
        return Path(str(resources.files("mmedkit").joinpath(*self.folder.split("/"))))

    def names(self, kind: str | None = None) -> list[str]:
        """Recipe names (of ``kind`` when recipes are grouped by kind)."""
        folder = self.root / kind if kind else self.root
        return sorted(p.stem for p in folder.glob("*.yaml"))

    def path(self, name: str, kind: str | None = None) -> Path | None:
        """The shipped recipe ``name``, or None."""
        candidate = (self.root / kind if kind else self.root) / f"{name}.yaml"
        return candidate if candidate.is_file() else None

    def find(self, name: str | Path, kind: str | None = None) -> Path:
        """A YAML path, or the shipped recipe ``name``; else a :class:`ConfigError` listing the recipes."""
        path = Path(name).expanduser()
        if path.is_file():
            return path
        found = self.path(str(name), kind)
        if found is not None:
            return found
        what = f"a {kind} {self.label}" if kind else f"a {self.label}"
        raise ConfigError(f"{name}: no such file, and not {what} ({self.label}s: {', '.join(self.names(kind))})")


# ---------------------------------------------------------------------------------------------- validation
M = typing.TypeVar("M", bound=BaseModel)


def fail_at(key: str, message: str) -> PydanticCustomError:
    """An error for a validator to raise about another key than its own.

    ``key`` is relative to the model whose validator raises it (a model validator's model, or the model
    holding a field validator's field; a validator of a field that holds a model counts as that model's).
    """
    return PydanticCustomError("mmed_at", "{message}", {"message": message, "key": key})


_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
          "dict": "a mapping", "list": "a list", "model": "a mapping", "model_attributes": "a mapping"}


def _message(err: dict[str, Any], model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return "required setting is missing"
    if kind == "extra_forbidden":
        fields = _fields_at(model, loc[:-1])
        where = join_key(loc[:-1]) or "the top level"
        return f"unknown setting (known in {where}: {', '.join(sorted(fields))})" if fields else "unknown setting"
    if kind in ("value_error", "assertion_error"):
        return str(err["ctx"].get("error", err["msg"])) if err.get("ctx") else err["msg"]
    if kind == "mmed_at":
        return err["ctx"]["message"]
    base = kind.removesuffix("_type").removesuffix("_parsing").removesuffix("_from_float")  # int_from_float: 2.5
    if base in _NAMES:
        return f"expected {_NAMES[base]}, got {value!r}"
    if kind == "literal_error":
        return f"expected one of {err['ctx']['expected']}, got {value!r}"
    if kind.startswith(("greater_than", "less_than")):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(err["ctx"].values()))
        return f"must be {op} {bound}, got {value!r}"
    return err["msg"]


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the (nested) model or TypedDict reached by ``loc``, or [] when it is neither."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # a list item: _inner_model already looked through list[X]
        fields = _field_types(current)
        if fields is None or part not in fields:
            return []
        current = _inner_model(fields[part])
    return list(_field_types(current) or [])


def _field_types(tp: Any) -> dict[str, Any] | None:
    """Field name -> annotation of a model or a TypedDict, else None."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {name: field.annotation for name, field in tp.model_fields.items()}
    if is_typeddict(tp):
        return typing.get_type_hints(tp)
    return None


def _inner_model(tp: Any) -> Any:
    """The model (or TypedDict) inside ``X | None``, ``list[X]`` or ``dict[str, X]``, else ``tp``."""
    if _field_types(tp) is not None:
        return tp
    for arg in typing.get_args(tp):
        found = _inner_model(arg)
        if _field_types(found) is not None:
            return found
    return tp


def build(model: type[M], raw: RawConfig | dict[str, Any], *, prefix: str = "",
          context: dict[str, Any] | None = None) -> M:
    """Validate ``raw`` (at ``prefix``, a dotted key) into ``model``; the first problem is a ConfigError."""
    if not isinstance(raw, RawConfig):
        raw = RawConfig(raw)
    data = raw.get(prefix, {}) if prefix else raw.data
    try:
        return model.model_validate(data, context={"raw": raw, **(context or {})})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        err = min(errors, key=lambda e: _order(raw, e["loc"]))
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _is_tag(p)))
        key = join_key(loc)
        if err["type"] == "mmed_at":  # relative to the model whose validator raised it
            base = loc if _fields_at(model, loc) else loc[:-1]
            key = join_key((*base, *_split(err["ctx"]["key"]))) if err["ctx"]["key"] else join_key(base)
        full = f"{prefix}.{key}" if prefix and key else (prefix or key)
        raise raw.error(full, _message(err, model, loc)) from None


def _is_tag(part: str) -> bool:
    """Pydantic's union / function tags in an error location (``function-after[...]``, ``int``)."""
    return "[" in part or part in ("int", "float", "str", "bool", "list", "dict", "none", "constrained-str")


def _order(raw: RawConfig, loc: tuple[Any, ...]) -> tuple[int, int]:
    """Report errors in file order (line of the key), so the message matches what a reader sees first."""
    where = raw.where(join_key(p for p in loc if not (isinstance(p, str) and _is_tag(p))))
    line = where.rpartition(":")[2]
    return (0, int(line)) if line.isdigit() else (1, 0)
