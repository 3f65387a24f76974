"""Data shipped inside the package, found wherever mmedkit is installed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def demo_root() -> Path:
    """The embedded demo sample, an MMedBench-layout folder (written for mmedkit; not MMedBench data)."""
    return Path(str(resources.files("mmedkit").joinpath("bench", "data", "demo")))
