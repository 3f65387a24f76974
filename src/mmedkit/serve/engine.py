"""Local generation for the serving apps: a transformers model (:class:`HFModel`), token by token.

Chat answers are streamed as the model produces them: a ``transformers`` streamer hands every
new token to :class:`TextStream`, which turns token ids into text incrementally (holding back an
incomplete UTF-8 character and any tail that could be the start of a stop string) and cuts the
answer at the first stop string. Generation stops early when the caller sets the ``cancel``
event (client gone, timeout). The streamed text equals what :meth:`HFModel.generate` returns
for the same request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers.generation.streamers import BaseStreamer

from mmedkit.models.base import BackendError, GenerationRequest, Message
from mmedkit.models.hf import HFModel, generation_kwargs
from mmedkit.serve.schemas import CompletionLogprobs


@dataclass(frozen=True)
class GenParams:
    """How to generate one answer."""

    max_tokens: int
    temperature: float = 1.0
    stop: tuple[str, ...] = ()


@dataclass
class GenerationStats:
    """What a finished generation reports (token counts are None when a backend does not say)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"


class TextStream:
    """Incremental detokenization with stop strings.

    Each call to :meth:`add` decodes the new tokens together with a few before them (so
    tokenizers that treat a word's first piece specially decode it right) and returns the text
    that is now certain: not a partial UTF-8 character and not a possible start of a stop string.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.ids: list[int] = []
        self.text = ""
        self.stopped = False
        self._prefix = 0
        self._read = 0
        self._emitted = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def add(self, ids: list[int]) -> str:
        """Take new token ids; return the text that can be shown now."""
        self.ids.extend(ids)
        before = self._decode(self.ids[self._prefix:self._read])
        now = self._decode(self.ids[self._prefix:])
        if len(now) > len(before) and not now.endswith("\ufffd"):
            self.text += now[len(before):]
            self._prefix, self._read = self._read, len(self.ids)
        return self._release(final=False)

    def finish(self) -> str:
        """The rest of the text once generation has ended."""
        before = self._decode(self.ids[self._prefix:self._read])
        now = self._decode(self.ids[self._prefix:])
        if len(now) > len(before):
            self.text += now[len(before):]
        self._prefix = self._read = len(self.ids)
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        if self.stopped:
            return ""
        start = max(0, self._emitted - max((len(s) for s in self.stop), default=0))
        hits = [i for i in (self.text.find(s, start) for s in self.stop) if i != -1]
        if hits:
            self.stopped = True
            end = min(hits)
        elif final:
            end = len(self.text)
        else:
            hold = max((k for s in self.stop for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)
            end = len(self.text) - hold
        out = self.text[self._emitted:end] if end > self._emitted else ""
        self._emitted = max(self._emitted, end)
        return out


class _Streamer(BaseStreamer):
    """A ``transformers`` streamer feeding :class:`TextStream` (the first ``put`` is the prompt)."""

    def __init__(self, stream: TextStream, emit: Callable[[str], None], eos: set[int]) -> None:
        self.stream, self.emit, self.eos = stream, emit, eos
        self.prompt_seen = False
        self.generated = 0
        self.hit_eos = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        ids = [int(i) for i in value.reshape(-1).tolist()]
        self.hit_eos = self.hit_eos or any(i in self.eos for i in ids)
        self.generated += sum(i not in self.eos for i in ids)
        piece = self.stream.add(ids)
        if piece:
            self.emit(piece)

    def end(self) -> None:
        """Called by ``generate`` when it is done (the caller flushes the stream)."""


class _StopWhen:
    """A stopping criterion that ends generation once ``flag()`` is true."""

    def __init__(self, flag: Callable[[], bool]) -> None:
        self.flag = flag

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.flag(), dtype=torch.bool, device=input_ids.device)


def _bos_prefix(tokenizer: Any) -> str:
    """The BOS token's text if the tokenizer adds BOS by itself, else ``""``."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or tokenizer.bos_token_id is None:
        return ""
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == tokenizer.bos_token_id else ""


class LocalEngine:
    """Synchronous calls on a local model, one at a time (``lock``)."""

    def __init__(self, model: HFModel) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.bos = _bos_prefix(model.tokenizer)
        eos = model.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos = {i for i in [*eos, model.tokenizer.eos_token_id] if i is not None}

    def count(self, text: str, special: bool) -> int:
        """Number of tokens of ``text``."""
        return len(self.model.encode(text, special)) if text or special else 0

    def stream_chat(self, messages: list[Message], params: GenParams, emit: Callable[[str], None],
                    cancel: threading.Event) -> GenerationStats:
        """Generate an answer to ``messages``, calling ``emit`` with each new piece of text."""
        text, special = self.model.render(messages)
        return self._stream(text, special, params, emit, cancel)

    def _stream(self, text: str, special: bool, params: GenParams, emit: Callable[[str], None],
                cancel: threading.Event) -> GenerationStats:
        from transformers import StoppingCriteriaList

        tok = self.model.tokenizer
        enc = tok([text], return_tensors="pt", add_special_tokens=special).to(self.model.device)
        n_prompt = int(enc["input_ids"].shape[1])
        room = (self.model.max_length or n_prompt + params.max_tokens) - n_prompt
        if room <= 0:
            raise BackendError(f"the conversation is {n_prompt} tokens long, more than the model's context "
                               f"({self.model.max_length} tokens): start a new conversation")
        max_new = min(params.max_tokens, room)
        stats = GenerationStats(prompt_tokens=n_prompt, completion_tokens=0)
        if max_new <= 0:
            stats.finish_reason = "length"
            return stats
        stream = TextStream(tok, params.stop)
        streamer = _Streamer(stream, emit, self.eos)
        kwargs = generation_kwargs(tok, max_new, params.temperature, stream.stop)
        kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList(
            [_StopWhen(lambda: cancel.is_set() or stream.stopped)]))
        with self.lock, torch.inference_mode():
            self.model.model.generate(**enc, **kwargs)
        tail = stream.finish()
        if tail:
            emit(tail)
        stats.completion_tokens = streamer.generated
        limited = not (stream.stopped or streamer.hit_eos) and streamer.generated >= max_new
        stats.finish_reason = "length" if limited else "stop"
        return stats

    def complete(self, prompt: str, max_tokens: int, stop: tuple[str, ...], temperature: float,
                 logprobs: bool, echo: bool) -> tuple[str, CompletionLogprobs | None, int, int]:
        """A legacy text completion: returned text, log-probabilities, prompt and completion tokens."""
        shift = len(self.bos) if self.bos and prompt.startswith(self.bos) else 0
        body = prompt[shift:]  # the tokenizer adds BOS again
        gen = ""
        with self.lock:
            if max_tokens > 0:
                req = GenerationRequest(body, max_new_tokens=max_tokens, stop=stop, temperature=temperature)
                gen = self.model.generate([req])[0]
            lp = None
            if logprobs:
                entries = [(tok, off + shift, val) for tok, off, val in self.model.prompt_logprobs(body + gen)]
                if shift:
                    entries.insert(0, (self.bos, 0, None))
                if not echo:
                    entries = [e for e in entries if e[1] >= len(prompt)]
                lp = CompletionLogprobs(tokens=[e[0] for e in entries], token_logprobs=[e[2] for e in entries],
                                        text_offset=[e[1] for e in entries])
        text = prompt + gen if echo else gen
        return text, lp, self.count(body, True), self.count(gen, False)
