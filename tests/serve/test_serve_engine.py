"""Token streaming on the tiny model: the streamed text is exactly what HFModel.generate returns."""

from __future__ import annotations

import threading

import pytest

from mmedkit.models.base import BackendError, GenerationRequest
from mmedkit.models.hf import HFModel
from mmedkit.serve.engine import GenParams, LocalEngine, TextStream

CHAT = [{"role": "system", "content": "You are a careful family-doctor assistant."},
        {"role": "user", "content": "Sore throat and sneezing since yesterday. Is it a cold? 喉咙痛，打喷嚏。"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> LocalEngine:
    return LocalEngine(HFModel(str(tiny_model_dir), device="cpu", dtype="float32"))


def _stream(engine: LocalEngine, params: GenParams, cancel_after: int | None = None) -> tuple[list[str], object]:
    pieces: list[str] = []
    cancel = threading.Event()

    def emit(piece: str) -> None:
        pieces.append(piece)
        if cancel_after is not None and len(pieces) >= cancel_after:
            cancel.set()

    return pieces, engine.stream_chat(CHAT, params, emit, cancel)


@pytest.mark.parametrize("params", [GenParams(max_tokens=40, temperature=0.0),
                                    GenParams(max_tokens=40, temperature=0.0, stop=("\n\n",)),
                                    GenParams(max_tokens=60, temperature=0.0, stop=("the", "of"))])
def test_streamed_text_equals_generate(engine: LocalEngine, params: GenParams) -> None:
    pieces, stats = _stream(engine, params)
    want = engine.model.generate([GenerationRequest(CHAT, max_new_tokens=params.max_tokens, stop=params.stop)])[0]
    assert "".join(pieces) == want
    assert stats.prompt_tokens > 10 and 0 < stats.completion_tokens <= params.max_tokens
    assert stats.finish_reason in ("stop", "length")


def test_sampled_stream_is_many_pieces(engine: LocalEngine) -> None:
    pieces, stats = _stream(engine, GenParams(max_tokens=64, temperature=1.0))
    assert len(pieces) > 5  # token by token, not one block at the end
    assert stats.completion_tokens <= 64


def test_cancel_stops_generation_early(engine: LocalEngine) -> None:
    pieces, stats = _stream(engine, GenParams(max_tokens=2000, temperature=1.0), cancel_after=3)
    assert stats.completion_tokens < 50


def test_context_overflow_is_a_clear_error(engine: LocalEngine) -> None:
    long_chat = [{"role": "user", "content": "fever " * 5000}]
    with pytest.raises(BackendError, match="longer|more than the model's context"):
        engine.stream_chat(long_chat, GenParams(max_tokens=10), lambda s: None, threading.Event())


def test_text_stream_holds_back_partial_stops_and_utf8(tiny_model) -> None:
    tok = tiny_model.tokenizer
    text = "Rest, drink water. 多喝水，休息。 See a doctor if it lasts ###END and more"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    stream = TextStream(tok, ("###END",))
    out = [stream.add([i]) for i in ids]
    out.append(stream.finish())
    assert "".join(out) == text[:text.index("###END")]
    assert stream.stopped
    assert all("\ufffd" not in piece for piece in out)
    assert not any(piece.endswith("#") for piece in out)  # '#' could begin the stop string: held back
