"""The study's answer format, ``###Answer: OPTION B IS CORRECT.``.

Shared by the benchmark prompts that ask for it and score it, and by the tiny models, whose tokenizer
is trained with it so that answers tokenize as they do for real models.
"""

from __future__ import annotations

ANSWER_PREFIX = "###Answer: OPTION"
ANSWER_SUFFIX = " IS CORRECT."
