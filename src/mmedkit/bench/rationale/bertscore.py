"""BERTScore (Zhang et al., 2020): one encoder loaded once, texts embedded in length-sorted batches.

For each candidate/reference pair, the token embeddings of one hidden layer are L2-normalised and
greedily matched by cosine similarity: precision averages, over candidate tokens, the best match
among the reference's tokens; recall the reverse; F1 is their harmonic mean. As in the ``bert-score``
package without idf weighting, special tokens ([CLS], [SEP]) are not averaged over but can be
matched. Each distinct text is embedded once, however many pairs it is in.

Implemented on transformers directly rather than with the ``bert-score`` package: that package's
last release (0.3.13, 2023) predates transformers 5 and downloads models by name; this module loads
any local path or hub id with safetensors only and ``trust_remote_code`` off, and is checked
against ``bert-score`` in the tests. Baseline rescaling maps a score ``x`` to ``(x - b) / (1 - b)``
with ``b`` from a baseline file in bert-score's format (``<dir>/<lang>/<model>.tsv``, columns
LAYER,P,R,F) or estimated here from random pairs of unrelated references of the same language.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmedkit.models.base import BackendError

DEFAULT_MODEL = "bert-base-multilingual-cased"
# Layers bert-score recommends (best correlation with human judgements in its authors' study).
KNOWN_LAYERS = {"bert-base-multilingual-cased": 9, "xlm-roberta-base": 9, "xlm-roberta-large": 17,
                "bert-base-uncased": 9, "roberta-large": 17}


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 of one pair (raw cosine scale, or rescaled)."""

    p: float
    r: float
    f: float


@dataclass(frozen=True)
class Baseline:
    """The expected P/R/F of unrelated text pairs, and where it comes from."""

    p: float
    r: float
    f: float
    source: str

    def rescale(self, s: PRF) -> PRF:
        """``(x - b) / (1 - b)`` for each of P, R, F."""
        return PRF((s.p - self.p) / (1 - self.p), (s.r - self.r) / (1 - self.r), (s.f - self.f) / (1 - self.f))

    def as_dict(self) -> dict[str, Any]:
        """For results files."""
        return asdict(self)


def model_basename(model: str) -> str:
    """``bert-base-multilingual-cased`` for a hub id or a local folder of that name."""
    return model.rstrip("/").split("/")[-1]


class BERTScorer:
    """A BERTScore scorer: load once, then :meth:`score` any number of pairs in batches."""

    def __init__(self, model: str = DEFAULT_MODEL, *, layer: int | None = None, device: str | None = None,
                 dtype: str = "float32", batch_size: int = 64, revision: str | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from mmedkit.models.hf import pick_device, pick_dtype

        self.model_name = model
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.batch_size = max(1, batch_size)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, revision=revision, trust_remote_code=False)
            self.model = AutoModel.from_pretrained(model, revision=revision, trust_remote_code=False,
                                                   use_safetensors=True, dtype=self.dtype)
        except OSError as exc:
            raise BackendError(f"could not load BERTScore model {model!r} (a local folder or hub id with "
                               f"safetensors weights): {exc}") from exc
        self.model.to(self.device).eval()
        n_layers = int(self.model.config.num_hidden_layers)
        self.layer = KNOWN_LAYERS.get(model_basename(model), n_layers) if layer is None else layer
        if not 0 <= self.layer <= n_layers:
            raise ValueError(f"layer {self.layer} is out of range for {model!r} (0..{n_layers})")
        self.max_length = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512),
                              int(getattr(self.model.config, "max_position_embeddings", 512) or 512))
        self._torch = torch

    def info(self) -> dict[str, Any]:
        """Model, layer, device and dtype, for results files."""
        return {"model": self.model_name, "layer": self.layer, "device": str(self.device),
                "dtype": str(self.dtype).replace("torch.", ""), "batch_size": self.batch_size}

    def embed(self, texts: Sequence[str]) -> list[tuple[Any, Any]]:
        """Per text, in input order: its L2-normalised token embeddings (special tokens included) and
        the boolean mask of its content (non-special) tokens."""
        torch = self._torch
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: list[Any] = [None] * len(texts)
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt", return_special_tokens_mask=True)
            special = enc.pop("special_tokens_mask").bool()
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.inference_mode():
                hidden = self.model(**enc, output_hidden_states=True).hidden_states[self.layer].float()
            hidden = torch.nn.functional.normalize(hidden, dim=-1)
            real = enc["attention_mask"].bool()
            special = special.to(self.device)
            for row, i in enumerate(idx):
                out[i] = (hidden[row][real[row]], ~special[row][real[row]])
        return out

    def score(self, candidates: Sequence[str], references: Sequence[str],
              baseline: Baseline | None = None) -> list[PRF]:
        """BERTScore of each candidate against its reference (raw, or rescaled with ``baseline``)."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
        unique = list(dict.fromkeys([*candidates, *references]))
        emb = dict(zip(unique, self.embed(unique), strict=True))
        out = []
        for c, r in zip(candidates, references, strict=True):
            s = _greedy_match(emb[c], emb[r])
            out.append(baseline.rescale(s) if baseline else s)
        return out


def _greedy_match(cand: tuple[Any, Any], ref: tuple[Any, Any]) -> PRF:
    (c, c_content), (r, r_content) = cand, ref
    if not bool(c_content.any()) or not bool(r_content.any()):
        return PRF(0.0, 0.0, 0.0)
    sim = c @ r.T
    p = float(sim.max(dim=1).values[c_content].mean())
    r_ = float(sim.max(dim=0).values[r_content].mean())
    return PRF(p, r_, 2 * p * r_ / (p + r_) if p + r_ > 0 else 0.0)


def read_baseline(path: str | Path, layer: int) -> Baseline:
    """The row for ``layer`` of a bert-score baseline file (CSV with header LAYER,P,R,F)."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for line_no, row in enumerate(csv.DictReader(fh), start=2):
            try:
                if int(row["LAYER"]) == layer:
                    return Baseline(float(row["P"]), float(row["R"]), float(row["F"]), f"{path} layer {layer}")
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{line_no}: expected columns LAYER,P,R,F with numbers ({exc})") from exc
    raise ValueError(f"{path}: no row for layer {layer}")


def find_baseline(baseline_dir: str | Path, language: str, model: str, layer: int) -> Baseline:
    """The baseline of ``model`` for ``language`` from a folder laid out as bert-score's
    ``rescale_baseline`` (``<dir>/<lang>/<model>.tsv``)."""
    path = Path(baseline_dir) / language / f"{model_basename(model)}.tsv"
    if not path.is_file():
        raise ValueError(f"no BERTScore baseline for language {language!r} and model {model_basename(model)!r}: "
                         f"{path} does not exist (use --rescale auto to estimate one from the references)")
    return read_baseline(path, layer)


def estimate_baseline(scorer: BERTScorer, texts: Sequence[str], *, pairs: int = 1000, seed: int = 0) -> Baseline:
    """Mean P/R/F of random pairs of *different* texts, bert-score's recipe on the texts at hand."""
    distinct = list(dict.fromkeys(t for t in texts if t.strip()))
    if len(distinct) < 2:
        raise ValueError("estimating a BERTScore baseline needs at least two different reference texts")
    n = len(distinct)
    if n * (n - 1) <= pairs:  # few texts: every ordered pair once
        chosen = [(i, j) for i in range(n) for j in range(n) if i != j]
    else:
        rng = random.Random(seed)
        chosen = [tuple(rng.sample(range(n), 2)) for _ in range(pairs)]
    scores = scorer.score([distinct[i] for i, _ in chosen], [distinct[j] for _, j in chosen])
    k = len(scores)
    return Baseline(sum(s.p for s in scores) / k, sum(s.r for s in scores) / k, sum(s.f for s in scores) / k,
                    f"estimated from {k} random pairs of {n} distinct references (seed {seed})")
