"""Fine-tuning samples from an MMedBench-layout folder, formatted by the benchmark's own prompt code.

Each item gives, by default, two samples as in the study: the rationale variant (the rationale
instruction, then ``###Rationale: ...`` and the answer; only for items that have a rationale) and
the answer-only variant. Prompts come from :func:`mmedkit.bench.prompts.build_prompt` and responses
from :func:`mmedkit.bench.prompts.target`, the functions the benchmark's ``generate`` mode uses, so a
fine-tuned model sees at evaluation exactly the prompt it was trained on.

The prompt is tokenised as the evaluation backend tokenises it (with the tokenizer's special
tokens for the ``study`` text format; rendered by the chat template for ``chat``), the response
after it (no special tokens) followed by EOS. Labels are -100 over the prompt, so the loss covers
only the response.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmedkit.bench.items import Item
from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import PromptConfig, build_prompt, target
from mmedkit.errors import DataError
from mmedkit.models.base import Prompt

IGNORE = -100
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTSample:
    """One tokenised training sample: prompt tokens then response tokens."""

    item_id: str
    variant: str
    input_ids: np.ndarray
    n_prompt: int

    @property
    def labels(self) -> np.ndarray:
        """Input ids with the prompt replaced by -100."""
        labels = self.input_ids.copy()
        labels[:self.n_prompt] = IGNORE
        return labels


def sample_texts(item: Item, variants: Sequence[str], fmt: str = "study") -> list[tuple[str, Prompt, str]]:
    """``(variant, prompt, response)`` for each variant that applies to ``item``."""
    out = []
    for variant in variants:
        rationale = variant == "rationale"
        if rationale and not item.rationale:
            continue
        out.append((variant, build_prompt(item, PromptConfig(format=fmt, rationale=rationale), training=True),
                    target(item, rationale)))
    return out


def prompt_text(tokenizer: Any, prompt: Prompt) -> tuple[str, bool]:
    """The prompt as the model reads it, and whether the tokenizer's special tokens are added."""
    if isinstance(prompt, str):
        return prompt, True
    if not getattr(tokenizer, "chat_template", None):
        raise DataError("data.format is chat but the tokenizer has no chat template; use format: study")
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True), False


def tokenize_sample(tokenizer: Any, item_id: str, variant: str, prompt: Prompt, response: str) -> SFTSample:
    """Prompt ids + response ids + EOS, with the prompt length."""
    text, special = prompt_text(tokenizer, prompt)
    p = list(tokenizer(text, add_special_tokens=special)["input_ids"])
    r = list(tokenizer(response, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is None:
        raise DataError("the tokenizer has no EOS token to end responses with")
    return SFTSample(item_id, variant, np.array([*p, *r, tokenizer.eos_token_id], dtype=np.int64), len(p))


def pack_samples(samples: Sequence[SFTSample], max_len: int) -> list[list[SFTSample]]:
    """Group consecutive samples into rows of at most ``max_len`` tokens (each sample whole, in order)."""
    rows: list[list[SFTSample]] = []
    used = max_len
    for s in samples:
        if used + len(s.input_ids) > max_len:
            rows.append([])
            used = 0
        rows[-1].append(s)
        used += len(s.input_ids)
    return rows


def row(samples: Sequence[SFTSample]) -> dict[str, np.ndarray]:
    """One training row: the samples' ids and labels, concatenated."""
    return {"input_ids": np.concatenate([s.input_ids for s in samples]),
            "labels": np.concatenate([s.labels for s in samples])}


class _Permuted:
    def __init__(self, rows: Sequence[dict[str, np.ndarray]], perm: np.ndarray) -> None:
        self.rows, self.perm = rows, perm

    def __len__(self) -> int:
        return len(self.perm)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.rows[int(self.perm[i])]


@dataclass
class SFTSet:
    """Training rows for fine-tuning, reshuffled each epoch (seeded)."""

    rows: list[dict[str, np.ndarray]]
    epochs: int
    seed: int
    fingerprint: str
    stats: dict[str, Any] = field(default_factory=dict)
    pad_to: int | None = None

    def epoch(self, e: int) -> _Permuted:
        """Rows of epoch ``e`` in training order."""
        return _Permuted(self.rows, np.random.default_rng([self.seed, e, 3]).permutation(len(self.rows)))

    def eval_set(self) -> None:
        """Fine-tuning keeps no held-out split (the benchmark's test split is the evaluation)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Counts of items, samples and tokens."""
        return self.stats


def build_sft_set(data: Any, tokenizer: Any, *, epochs: int, seed: int) -> SFTSet:
    """Load the benchmark split named by a :class:`~mmedkit.train.config.SFTData` and tokenise its samples."""
    items = load_benchmark(data.path, split=data.split, langs=data.langs, skip_invalid=data.skip_invalid,
                           limit=data.limit)
    samples, too_long = [], 0
    no_rationale = sum(not it.rationale for it in items) if "rationale" in data.samples else 0
    if no_rationale:
        log.warning("%d of %d items have no rationale: no rationale sample for them", no_rationale, len(items))
    for it in items:
        for variant, prompt, response in sample_texts(it, data.samples, data.format):
            s = tokenize_sample(tokenizer, it.id, variant, prompt, response)
            if len(s.input_ids) > data.max_len:
                too_long += 1
                continue
            samples.append(s)
    if not samples:
        raise DataError(f"no training samples from {data.path} ({too_long} longer than data.max_len={data.max_len})")
    groups = pack_samples(samples, data.max_len) if data.packing else [[s] for s in samples]
    rows = [row(g) for g in groups]
    h = hashlib.sha256(repr((data.path, data.split, data.format, data.samples, data.packing)).encode())
    for r in rows:
        h.update(r["input_ids"].tobytes())
        h.update(r["labels"].tobytes())
    per_variant = {v: sum(s.variant == v for s in samples) for v in data.samples}
    stats = {"items": len(items), "samples": len(samples), "rows": len(rows), "per_variant": per_variant,
             "dropped_too_long": too_long,
             "no_rationale": no_rationale, "tokens": int(sum(len(s.input_ids) for s in samples)),
             "response_tokens": int(sum(len(s.input_ids) - s.n_prompt for s in samples))}
    return SFTSet(rows, epochs, seed, h.hexdigest()[:16], stats)
