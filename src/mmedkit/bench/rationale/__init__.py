"""Rationale evaluation: BLEU/ROUGE on segmented text in six languages, BERTScore, LLM-as-judge ranking
and multi-run reports."""

from __future__ import annotations

from mmedkit.bench.rationale.scoring import RationaleConfig, score_run

__all__ = ["RationaleConfig", "score_run"]
