"""A stand-in chat model for in-process API tests: deterministic answers computed from the conversation.

:class:`EchoDoctor` implements the :class:`~mmedkit.models.base.LanguageModel` interface with words as tokens;
:class:`ModelBackend` serves any such model to the chat service, streamed word by word, and records what the
model was asked (so tests can check that red flags never reach it and what prompt it saw).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

from starlette.testclient import TestClient

from mmedkit.models.base import (
    BackendError,
    GenerationRequest,
    LanguageModel,
    LoglikelihoodRequest,
    Message,
    ModelInfo,
    Progress,
    Prompt,
    stop_at,
)
from mmedkit.serve.backends import ChatBackend
from mmedkit.serve.engine import GenerationStats, GenParams

Serve = Callable[..., TestClient]
"""The ``serve`` fixture: ``serve(backend=None, safety=True, **config)`` -> a started TestClient."""


def words(prompt: Prompt) -> list[str]:
    """The prompt's tokens: its words (all messages of a chat)."""
    text = prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)
    return text.split()


class EchoDoctor(LanguageModel):
    """Answers a chat by restating the last user message and giving the same advice; tokens are words.

    An answer ends at ``max_new_tokens`` words or at a stop string. ``ramble`` makes it repeat its advice
    until ``max_new_tokens`` (a model that never ends on its own); prompts longer than ``context`` words
    are refused, as a real model's context limit would.
    """

    backend_name = "echo"
    ADVICE = "Rest, drink plenty of water and see your doctor if it gets worse."

    def __init__(self, name: str = "echo-doctor", *, ramble: bool = False, context: int = 4096) -> None:
        self.name, self.ramble, self.context = name, ramble, context

    def answer(self, prompt: Prompt, max_words: int) -> str:
        """The whole answer to ``prompt``, at most ``max_words`` words."""
        if isinstance(prompt, str):
            said = prompt
        else:
            said = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
        out = f"You said: {said.strip()}".split() + self.ADVICE.split()
        while self.ramble and len(out) < max_words:
            out += self.ADVICE.split()
        return " ".join(out[:max_words])

    def generate(self, requests: Sequence[GenerationRequest], *, progress: Progress = None) -> list[str]:
        out = []
        for req in requests:
            if len(words(req.prompt)) > self.context:
                raise BackendError(f"the conversation is {len(words(req.prompt))} tokens long, more than the "
                                   f"model's context ({self.context} tokens): start a new conversation")
            out.append(stop_at(self.answer(req.prompt, req.max_new_tokens), req.stop))
            if progress:
                progress(1)
        return out

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *,
                      progress: Progress = None) -> list[list[float]]:
        """Words already in the context are likely (-1 each), new words are not (-5 each)."""
        out = []
        for req in requests:
            seen = set(words(req.context))
            out.append([float(sum(-1 if w in seen else -5 for w in c.split())) for c in req.continuations])
        return out

    def info(self) -> ModelInfo:
        return ModelInfo(self.backend_name, self.name, {"ramble": self.ramble, "context": self.context})


class ModelBackend(ChatBackend):
    """A :class:`LanguageModel`'s answers streamed word by word, ``delay`` seconds apart."""

    def __init__(self, model: LanguageModel, *, delay: float = 0.0, slots: int = 1, notice: str | None = None,
                 model_id: str | None = None) -> None:
        self.model = model
        self.model_id = model_id or model.info().model
        self.delay, self.slots, self.notice = delay, slots, notice
        self.prompts: list[list[Message]] = []
        """What the model was asked, in order."""

    async def stream(self, messages: list[Message], params: GenParams, stats: GenerationStats) -> AsyncIterator[str]:
        self.prompts.append(messages)
        request = GenerationRequest(messages, max_new_tokens=params.max_tokens, stop=params.stop,
                                    temperature=params.temperature)
        text = (await asyncio.to_thread(self.model.generate, [request]))[0]
        pieces = text.split(" ") if text else []
        for i, piece in enumerate(pieces):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield piece if i == 0 else f" {piece}"
        stats.prompt_tokens = len(words(messages))
        stats.completion_tokens = len(pieces)
        stats.finish_reason = "length" if len(pieces) >= params.max_tokens else "stop"
