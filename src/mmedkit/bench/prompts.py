"""Prompt formats for multiple-choice items.

``study`` is the format the MMedLM study trained and evaluated with: an Alpaca-style
``### Instruction`` / ``### Input`` / ``### Response:`` prompt, an instruction naming the
language ("You're a French doctor ..."), and the answer written as
``###Answer: OPTION B IS CORRECT.`` (after ``###Rationale: ...`` in the rationale variant).
The text is byte for byte that of the study's released code (MMedLM ``inference/inference.py`` and
``finetune/train.py``): each option is written ``f"{key}. {content} "``, so the options end with a space
before ``\n\n### Response:``; the rationale instruction has two spaces after "step-by-step." in the
inference script and one in the training script (``training=True``).
``chat`` sends the same instruction and question as chat messages, rendered with the model's
chat template. The fine-tuning stage formats its training samples with these same functions.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from mmedkit.alpaca import PREAMBLE_INPUT
from mmedkit.answer_format import ANSWER_PREFIX, ANSWER_SUFFIX
from mmedkit.bench.items import Item, format_answer
from mmedkit.languages import get_language
from mmedkit.models.base import LoglikelihoodRequest, Message, Prompt

FORMATS = ("study", "chat")

_QUESTION_TAIL = "Which of the following is the best treatment for this patient?"


@dataclass(frozen=True)
class PromptConfig:
    """How items are turned into prompts."""

    format: str = "study"
    rationale: bool = False
    fewshot: int = 0
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown prompt format {self.format!r}; expected one of {', '.join(FORMATS)}")
        if self.fewshot < 0:
            raise ValueError("fewshot must be >= 0")


def instruction(language: str, rationale: bool, training: bool = False) -> str:
    """The study's instruction for ``language`` (ISO code or English name); ``training`` selects the
    fine-tuning script's rationale wording (one space after "step-by-step." instead of two)."""
    name = get_language(language).name
    if rationale:
        gap = " " if training else "  "
        return (f"You're a {name} doctor, kindly address the medical queries according to the patient's "
                f"account in {name}. Let’s solve this step-by-step.{gap}You should first give the reason in "
                f"{name} for your choice. Then you should give the right answer index of the question.")
    return (f"You're a {name} doctor, kindly address the medical queries according to the patient's "
            f"account. Answer with the best option directly.")


def question_block(item: Item) -> str:
    """Question and options on one line, as the study writes them (a space after every option)."""
    options = "".join(f"{k}. {v} " for k, v in item.options.items())
    return f"###Question: {item.question} {_QUESTION_TAIL} ###Options: {options}"


def answer_text(letters: frozenset[str] | set[str]) -> str:
    """``###Answer: OPTION A,C IS CORRECT.``"""
    return f"{ANSWER_PREFIX} {format_answer(letters)}{ANSWER_SUFFIX}"


def target(item: Item, rationale: bool) -> str:
    """The response a model should write for ``item`` (training target / few-shot exemplar)."""
    if rationale and item.rationale:
        return f"###Rationale: {item.rationale.strip()}\n{answer_text(item.answer)}"
    return answer_text(item.answer)


def _study_prompt(item: Item, rationale: bool, training: bool = False) -> str:
    return (f"{PREAMBLE_INPUT}\n\n### Instruction:\n{instruction(item.language, rationale, training)}\n\n"
            f"### Input:\n{question_block(item)}\n\n### Response:")


class ExemplarPool:
    """Few-shot candidates grouped by language and sorted by id, built once per run."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.by_language: dict[str, list[Item]] = {}
        for x in sorted(items, key=lambda x: x.id):
            self.by_language.setdefault(x.language, []).append(x)
        self.position = {lang: {x.id: i for i, x in enumerate(xs)} for lang, xs in self.by_language.items()}


def select_exemplars(pool: Sequence[Item] | ExemplarPool, item: Item, k: int, seed: int) -> list[Item]:
    """``k`` exemplars of ``item``'s language from ``pool``, seeded by ``seed`` and the item id.

    The choice for an item never depends on which other items are evaluated, so resumed and
    partial runs see the same prompts. Pass an :class:`ExemplarPool` when selecting for many items.
    """
    if k <= 0:
        return []
    if not isinstance(pool, ExemplarPool):
        pool = ExemplarPool(pool)
    same = pool.by_language.get(item.language, [])
    own = pool.position.get(item.language, {}).get(item.id)
    if own is not None:
        same = same[:own] + same[own + 1:]
    digest = hashlib.sha256(f"{seed}:{item.language}:{item.id}".encode()).hexdigest()
    rng = random.Random(int(digest[:16], 16))
    return rng.sample(same, min(k, len(same)))


def build_prompt(item: Item, cfg: PromptConfig, exemplars: Sequence[Item] = (), training: bool = False) -> Prompt:
    """The prompt for ``item`` (text for ``study``, messages for ``chat``), with exemplars first;
    ``training``: the study's fine-tuning wording (see :func:`instruction`)."""
    if cfg.format == "study":
        shots = [_study_prompt(x, cfg.rationale, training) + target(x, cfg.rationale) for x in exemplars]
        return "\n\n".join([*shots, _study_prompt(item, cfg.rationale, training)])
    system = instruction(item.language, cfg.rationale, training)
    messages: list[Message] = [{"role": "system", "content": system}]
    for x in exemplars:
        messages.append({"role": "user", "content": question_block(x)})
        messages.append({"role": "assistant", "content": target(x, cfg.rationale)})
    messages.append({"role": "user", "content": question_block(item)})
    return messages


def candidates(item: Item) -> list[frozenset[str]]:
    """Answer sets a model may choose: each letter; for multi-answer tasks every non-empty subset, or
    every subset of the size the question asks for ("2つ選べ")."""
    letters = item.letters
    if not item.multi_answer:
        return [frozenset([x]) for x in letters]
    k = item.n_answers or get_language(item.language).answer_count(item.question)
    sizes = [k] if k and k <= len(letters) else range(1, len(letters) + 1)
    return [frozenset(c) for size in sizes for c in combinations(letters, size)]


def loglikelihood_request(item: Item, cfg: PromptConfig,
                          exemplars: Sequence[Item] = ()) -> tuple[LoglikelihoodRequest, list[frozenset[str]]]:
    """The scoring request for ``item``: context ends with ``###Answer: OPTION``, continuations are
    `` B`` or `` A,C`` (a leading space, so no BPE merge crosses the boundary)."""
    cands = candidates(item)
    conts = tuple(f" {format_answer(c)}" for c in cands)
    prompt = build_prompt(item, PromptConfig(cfg.format, False, cfg.fewshot, cfg.seed), exemplars)
    if isinstance(prompt, str):
        return LoglikelihoodRequest(context=prompt + ANSWER_PREFIX, continuations=conts), cands
    return LoglikelihoodRequest(context=prompt, continuations=conts, continuation_prefix=ANSWER_PREFIX), cands
