"""The importer interface shared by every benchmark source."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.errors import DataError
from mmedkit.records import read_records


@dataclass
class SourceResult:
    """What an importer produced: items, and what it left out and why (reason -> count)."""

    items: list[Item]
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records left out for ``reason``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + n


@dataclass(frozen=True)
class Source:
    """A benchmark source: its language, license, accepted input and the function that reads it."""

    name: str
    language: str
    title: str
    license: str
    expects: str
    """The input this importer accepts (a file or folder), for error messages and ``mmed bench list``."""
    reader: Callable[..., SourceResult]
    homepage: str = ""

    def run(self, path: Path, **options: Any) -> SourceResult:
        """Read ``path`` into MMedBench items."""
        return self.reader(path, **options)


SOURCES: dict[str, Source] = {}


def register(name: str, *, language: str, title: str, license: str, expects: str,
             homepage: str = "") -> Callable[[Callable[..., SourceResult]], Callable[..., SourceResult]]:
    """Decorator registering a reader function as source ``name``."""

    def wrap(fn: Callable[..., SourceResult]) -> Callable[..., SourceResult]:
        SOURCES[name] = Source(name, language, title, license, expects, fn, homepage)
        return fn

    return wrap


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for each non-blank line; a bad line raises DataError naming it."""
    for rec in read_records(path, objects=True):
        yield rec.line, rec.data


def require(rec: dict[str, Any], key: str, kind: type | tuple[type, ...], *, path: Path, line: int | str) -> Any:
    """``rec[key]`` checked to be of ``kind`` (non-empty for strings), else a DataError naming the record."""
    if key not in rec:
        raise DataError(f"missing field (expected {_kind(kind)})", path=str(path), line=line, field=key)
    value = rec[key]
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise DataError(f"expected {_kind(kind)}, got {value!r:.80}", path=str(path), line=line, field=key)
    return value


def _kind(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({"str": "a non-empty string", "dict": "an object", "list": "a list", "int": "an integer"}
                       .get(k.__name__, k.__name__) for k in kinds)


LETTERS = "ABCDEFGHIJ"
DEV_CHOICES = ("skip", "train", "test")


def split_files(source: str, folder: Path, files: dict[str, str], dev: str,
                result: SourceResult) -> list[tuple[Path, str, str]]:
    """``[(file, part, split)]`` for a folder of train/dev/test files, where the dev file goes to
    ``dev`` (skip, train or test). Checks the folder and every needed file exist; notes a skipped dev."""
    if dev not in DEV_CHOICES:
        raise DataError(f"{source}: dev must be one of {', '.join(DEV_CHOICES)}, got {dev!r}")
    if not Path(folder).is_dir():
        raise DataError(f"expected the folder with {', '.join(files.values())}", path=str(folder))
    plan = [("train", "train"), *([("dev", dev)] if dev != "skip" else []), ("test", "test")]
    if dev == "skip":
        result.notes.append(f"{files['dev']} not imported (MMedBench uses {files['train']} and {files['test']}); "
                            "use dev=train|test")
    out = []
    for part, split in plan:
        file = Path(folder) / files[part]
        if not file.is_file():
            raise DataError(f"missing {files[part]} (expected {', '.join(files.values())})", path=str(file))
        out.append((file, part, split))
    return out
