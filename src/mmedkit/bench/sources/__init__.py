"""Importers: benchmark sources in the form their authors publish them -> MMedBench items.

Each importer is a :class:`Source` registered under a name (``medqa-usmle``, ``igakuqa`` ...).
``import_source`` runs one and writes the MMedBench layout; suites are assembled from several.
The modules are imported lazily by :func:`get_source`, so adding a source is one new module
plus one line in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.sources.base import SOURCES, Source, SourceResult
from mmedkit.errors import DataError

# source name -> module that registers it
_MODULES: dict[str, str] = {
    "medqa-usmle": "medqa",
    "medqa-mcmle": "medqa",
    "igakuqa": "igakuqa",
    "frenchmedmcqa": "frenchmedmcqa",
    "rumeddanet": "rumeddanet",
    "headqa": "headqa",
    "pubmedqa": "pubmedqa",
    "mmlu": "mmlu",
    "medmcqa": "medmcqa",
}

__all__ = ["SOURCES", "Source", "SourceResult", "get_source", "import_source", "list_sources"]


def get_source(name: str) -> Source:
    """The registered importer called ``name``."""
    if name not in _MODULES:
        raise DataError(f"unknown source {name!r}; known: {', '.join(_MODULES)}")
    importlib.import_module(f"mmedkit.bench.sources.{_MODULES[name]}")
    return SOURCES[name]


def list_sources() -> list[Source]:
    """Every importer, in a stable order."""
    return [get_source(n) for n in _MODULES]


def import_source(name: str, path: str | Path, out: str | Path | None = None, **options: Any) -> SourceResult:
    """Run importer ``name`` on ``path``; write the MMedBench layout to ``out`` when given."""
    from mmedkit.bench.loader import write_benchmark

    src = get_source(name)
    path = Path(path)
    if not path.exists():
        raise DataError(f"{name}: input not found: {path}")
    result = src.run(path, **options)
    if not result.items:
        raise DataError(f"{name}: no items found in {path} (expected {src.expects})")
    if out is not None:
        write_benchmark(result.items, out)
    return result


def counts(items: list[Item]) -> dict[str, int]:
    """Items per ``split/language``."""
    return dict(sorted(Counter(f"{it.split}/{it.language}" for it in items).items()))
