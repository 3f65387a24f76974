"""The study's Alpaca prompt (MMedLM ``PROMPT_DICT``), and chat messages rendered with it.

The benchmark's ``study`` format is built on :data:`PROMPT_INPUT`. A model saved without a chat template
(MMed-Llama 3 is one: the study's demo prompts it this way) reads chat messages through
:func:`render_messages`: the system message is the instruction and the user's message the input; without
a system message the user's message is the instruction (:data:`PROMPT_NO_INPUT`). Earlier turns repeat
the block, each answer written right after ``### Response:`` as in the study's training samples.
"""

from __future__ import annotations

from collections.abc import Sequence

PREAMBLE_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                  "Write a response that appropriately completes the request.")
PREAMBLE_NO_INPUT = ("Below is an instruction that describes a task. "
                     "Write a response that appropriately completes the request.")
PROMPT_INPUT = PREAMBLE_INPUT + "\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
PROMPT_NO_INPUT = PREAMBLE_NO_INPUT + "\n\n### Instruction:\n{instruction}\n\n### Response:"
FORMAT_NAME = "alpaca (the study's prompt; the model has no chat template)"


def render_messages(messages: Sequence[dict[str, str]]) -> str:
    """Chat ``messages`` as the study's Alpaca prompt, ending with ``### Response:``."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    parts = [PREAMBLE_INPUT if system else PREAMBLE_NO_INPUT]
    if system:
        parts.append(f"### Instruction:\n{system}")
    label = "### Input:" if system else "### Instruction:"
    for m in messages:
        if m["role"] == "user":
            parts.append(f"{label}\n{m['content']}")
            parts.append("### Response:")
        elif m["role"] == "assistant":
            if parts[-1] != "### Response:":
                parts.append("### Response:")
            parts[-1] += m["content"]
    if parts[-1] != "### Response:":
        parts.append("### Response:")
    return "\n\n".join(parts)
