"""The OpenAI-compatible API: ``GET /v1/models`` and ``POST /v1/chat/completions`` (streamed or not).

With a safety policy, every chat request's conversation (all user turns) is screened for red flags in a
worker thread, within a time budget, before any model call, and answered at once with the emergency
message when one is raised (even when the conversation log cannot be written); otherwise the service's
system prompt (in the user's language) replaces any client one, and the disclaimer (plus a dose note when
the answer names amounts) is appended to the model's answer.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from mmedkit.models.base import Message
from mmedkit.serve.chat import Reply, chat_events, conversation, fixed_answer, gen_params, safety_tail, usage_of
from mmedkit.serve.deps import AdmissionDep, ServiceDep, require_api_key
from mmedkit.serve.engine import GenerationStats
from mmedkit.serve.safety import SafetyPolicy, Verdict, last_user_text
from mmedkit.serve.schemas import ChatCompletionRequest, ChatCompletionResponse, ModelCard, ModelList, SafetyInfo
from mmedkit.serve.streaming import SlotStream, with_deadline

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
log = logging.getLogger(__name__)


async def screen(policy: SafetyPolicy, turns: list[Message], hint: str | None,
                 budget: float) -> tuple[str, Verdict | None]:
    """The answer's language and the red-flag verdict on the whole conversation, computed in a worker
    thread (the event loop keeps serving) within ``budget`` seconds; past it, 503: nothing unscreened."""
    def work() -> tuple[str, Verdict | None]:
        return policy.detect_language(last_user_text(turns), hint), policy.screen_conversation(turns, hint)

    try:
        return await asyncio.wait_for(run_in_threadpool(work), budget)
    except TimeoutError:
        log.error("the red-flag screen took longer than %g s", budget)
        raise HTTPException(503, f"the safety screen took longer than {budget:g} s; try a shorter message",
                            headers={"Retry-After": "5"}) from None


@router.get("/models")
async def models(service: ServiceDep) -> ModelList:
    return ModelList(data=[ModelCard(id=service.model, created=service.started,
                                     prompt_format=service.backend.prompt_format)])


@router.post("/chat/completions", response_model=None)
async def chat_completions(req: ChatCompletionRequest, service: ServiceDep,
                           admission: AdmissionDep) -> ChatCompletionResponse | StreamingResponse:
    config, policy = service.config, service.policy
    turns = conversation(req, config, policy)
    params = gen_params(req, config)
    reply = Reply(service.model)

    # The safety layer: red flags are answered here, before the queue and the model.
    prompt, language = turns, None
    if policy is not None:
        language, verdict = await screen(policy, turns, req.language, config.safety_timeout)
        if verdict is not None:
            service.counters.red_flags += 1
            reply.safety = SafetyInfo(language=language, red_flag=verdict.category, evidence=verdict.evidence,
                                      turn=verdict.turn)
            text = policy.emergency_message(verdict, language)
            try:
                service.record(reply.id, turns, text, reply.safety)
            except Exception:  # the emergency answer goes out whatever happens to the log
                log.exception("could not log an emergency answer")
            return fixed_answer(reply, text, req.stream)
        prompt = policy.prepare(turns, language)
        reply.safety = SafetyInfo(language=language, notes=["disclaimer"])

    def tail_for(answer: str) -> list[tuple[str, str]]:
        return safety_tail(policy, language, answer)

    # The model, within one deadline for waiting and answering.
    ticket = await admission.ticket()
    service.counters.generations += 1
    stats = GenerationStats()
    pieces = with_deadline(service.backend.stream(prompt, params, stats), admission.deadline)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        events = chat_events(reply, pieces, stats, tail_for, include_usage,
                             lambda text: service.record(reply.id, turns, text, reply.safety), service.counters)
        return SlotStream(events, ticket)
    try:
        answer = "".join([p async for p in pieces])
    except TimeoutError:
        service.counters.timeouts += 1
        raise HTTPException(503, f"the answer took longer than the request timeout ({config.request_timeout:g} s)",
                            headers={"Retry-After": str(service.queue.retry_after())}) from None
    finally:
        ticket.release()
    tail = tail_for(answer)
    if reply.safety is not None and any(part == "note" for part, _ in tail):
        reply.safety.notes.insert(0, "dose")
    text = answer + "".join(f"\n\n{t}" for _, t in tail)
    service.record(reply.id, turns, text, reply.safety)
    return reply.response(text, stats.finish_reason, usage_of(stats))
