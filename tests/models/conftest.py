"""Fixtures for the model backend tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct checkpoint when already converted (``mmed model default``)."""
    from mmedkit.models.embedded import MODEL_NAME, cache_root

    path = cache_root() / "models" / MODEL_NAME
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"{path} is absent: run `mmed model default` once to convert the embedded model")
    return path
