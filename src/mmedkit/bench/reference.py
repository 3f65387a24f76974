"""Published MMedBench accuracies (%) of reference models, for context in reports.

Figures from Qiu et al., "Towards building multilingual language model for medicine",
Nature Communications 15, 8384 (2024), and the MMedBench leaderboard. ``None`` marks a
per-language figure not transcribed here; ``avg`` is the mean over the six languages.
"""

from __future__ import annotations

REFERENCE_ACCURACY: dict[str, dict[str, float | None]] = {
    "GPT-4": {"en": 78.00, "zh": 75.07, "ja": 72.91, "fr": 56.59, "ru": 83.62, "es": 85.67, "avg": 74.27},
    "MMed-Llama 3 (8B)": {"en": 66.06, "zh": 79.25, "ja": 61.81, "fr": 55.63, "ru": 75.39, "es": 68.38,
                          "avg": 67.75},
    "MMedLM 2 (7B)": {"en": 61.74, "zh": 80.01, "ja": 61.81, "fr": 52.09, "ru": 80.47, "es": 67.65,
                      "avg": 67.30},
    "Llama 3 (8B)": {"en": None, "zh": None, "ja": None, "fr": None, "ru": None, "es": None, "avg": 62.79},
}
