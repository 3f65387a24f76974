"""Shared fixtures: offline mode, a tiny model built once per session, the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama model with a BPE tokenizer trained on the demo sample."""
    from mmedkit.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    """The tiny model loaded through the hf backend."""
    from mmedkit.models.hf import HFModel

    return HFModel(str(tiny_model_dir), batch_size=4)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when a fresh clone has no shared folder."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it is present in CI)")
    return SHARED_DATA
