"""A tiny experiment: the project's tiny model, a two-language corpus of demo texts, a few training steps."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mmedkit.bench.loader import load_benchmark

LANGS = ("en", "fr")


@pytest.fixture(scope="session")
def tiny_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One JSONL per language: the demo items' questions and rationales as documents."""
    root = tmp_path_factory.mktemp("docs")
    for lang in LANGS:
        recs = [{"id": it.id, "text": f"{it.question}\n{it.rationale or ''}"}
                for split in ("train", "test") for it in load_benchmark("demo", split=split, langs=lang)]
        (root / f"{lang}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs),
                                            encoding="utf-8")
    return root


def tiny_experiment(model: Path, docs: Path, **changes: object) -> dict:
    """The experiment as data; ``changes`` replace top-level sections."""
    exp = {
        "name": "tiny",
        "model": str(model),
        "languages": list(LANGS),
        "data": "demo",
        "corpus": {
            "recipe": "demo",
            "inputs": [{"path": str(docs / f"{lang}.jsonl"), "language": lang, "source": f"docs-{lang}"}
                       for lang in LANGS],
            "set": {"steps": {"language_id": False, "medical_keywords": False, "quality": False, "near_dedup": False},
                    "executor": {"tasks": 1, "workers": 1}, "output.write_removed": False},
        },
        "pretrain": {"recipe": "tiny-cpu", "set": {
            "train": {"max_steps": 6, "global_batch_size": 4, "micro_batch_size": 2, "save_every": 1,
                      "eval_every": None},
            "data": {"seq_len": 64, "eval_fraction": 0.2, "num_proc": 1},
            "logging.tensorboard": False}},
        "perplexity": {"max_tokens": 2000},
        "sft": {"recipe": "tiny-cpu", "methods": ["lora"], "set": {
            "train": {"max_steps": 2, "global_batch_size": 4, "micro_batch_size": 2},
            "data.max_len": 512, "logging.tensorboard": False}},
        "evaluate": {"limit": 3, "batch_size": 4},
    }
    exp.update(changes)
    return exp


@pytest.fixture
def write_experiment(tmp_path: Path, tiny_model_dir: Path, tiny_docs: Path) -> Callable[..., Path]:
    """Write the tiny experiment (with changes) to a YAML file and return its path."""
    def write(name: str = "exp.yaml", **changes: object) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(tiny_experiment(tiny_model_dir, tiny_docs, **changes), sort_keys=False),
                        encoding="utf-8")
        return path
    return write
