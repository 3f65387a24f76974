"""The one interface every model backend implements.

A backend answers two kinds of request, in batches:

* :class:`GenerationRequest` -> generated text (greedy unless told otherwise);
* :class:`LoglikelihoodRequest` -> for one context and several candidate continuations, the
  summed log-probability of each continuation. The context is shared by the candidates, so a
  backend can compute it once (the HF backend reuses its KV cache).

A prompt is either plain text or a list of chat messages; backends render messages with the
model's chat template (HF) or send them to a chat endpoint (OpenAI-compatible servers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]
Prompt = str | list[Message]
Progress = Callable[[int], None] | None
"""Called with the number of requests just finished (drives progress bars)."""


@dataclass(frozen=True)
class GenerationRequest:
    """Generate a continuation of ``prompt``."""

    prompt: Prompt
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    temperature: float = 0.0


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score each of ``continuations`` as a continuation of ``context``."""

    context: Prompt
    continuations: tuple[str, ...]
    continuation_prefix: str = ""
    """Text appended to a chat-rendered context before the continuations (e.g. ``###Answer: OPTION``)."""


@dataclass
class ModelInfo:
    """What a backend reports about itself for results files."""

    backend: str
    model: str
    details: dict[str, Any] = field(default_factory=dict)


class BackendError(RuntimeError):
    """A model backend failed in a way the user can act on."""


class LanguageModel(ABC):
    """A model that can generate and score text."""

    backend_name: str = "base"
    tokens_computed: int | None = None
    """Tokens this model has run so far (prompts and candidates, padding excluded), where the backend counts them."""

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest], *, progress: Progress = None) -> list[str]:
        """Return one generated text per request, in order."""

    @abstractmethod
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *,
                      progress: Progress = None) -> list[list[float]]:
        """Return, per request, the summed log-probability of each continuation."""

    @abstractmethod
    def info(self) -> ModelInfo:
        """Describe the model (name, dtype, device, ...)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, engines)."""


def stop_at(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]
