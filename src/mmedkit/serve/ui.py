"""The chat page's files and strings, shipped in the package (``serve/static``, ``serve/data/ui.yaml``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mmedkit.languages import LANGUAGES

STATIC = Path(str(resources.files("mmedkit.serve").joinpath("static")))
"""The page's HTML, script and style sheet."""


def load_ui_strings(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The page's strings per language (``serve/data/ui.yaml``), checked for missing keys."""
    path = path or Path(str(resources.files("mmedkit.serve").joinpath("data", "ui.yaml")))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "en" not in data:
        raise ValueError(f"{path}: expected a mapping with an 'en' block")
    for code in LANGUAGES:
        if code not in data:
            raise ValueError(f"{path}: language {code!r} is missing")
        missing = sorted(set(data["en"]) - set(data[code]))
        if missing:
            raise ValueError(f"{path}: {code}: missing keys {', '.join(missing)}")
    return data
