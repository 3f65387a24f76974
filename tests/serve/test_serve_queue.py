"""The admission queue: slots, a bounded waiting room, deadlines and Retry-After estimates."""

from __future__ import annotations

import asyncio

import pytest

from mmedkit.serve.queue import AdmissionQueue, QueueFull, QueueTimeout


def test_slots_then_waiting_room_then_refusal() -> None:
    async def scenario() -> None:
        q = AdmissionQueue(slots=2, max_waiting=1, initial_service_s=4.0)
        a, b = await q.acquire(1.0), await q.acquire(1.0)
        waiter = asyncio.ensure_future(q.acquire(5.0))
        await asyncio.sleep(0.01)
        assert q.stats()["waiting"] == 1 and not waiter.done()
        with pytest.raises(QueueFull) as full:
            await q.acquire(5.0)
        assert full.value.retry_after == 4  # 4 s per answer, 2 slots, 1 ahead + this one
        a.release()
        c = await asyncio.wait_for(waiter, 1.0)
        assert q.stats()["running"] == 2 and q.stats()["waiting"] == 0
        b.release()
        c.release()
        c.release()  # a second release is a no-op
        stats = q.stats()
        assert (stats["running"], stats["admitted"], stats["refused"]) == (0, 3, 1)

    asyncio.run(scenario())


def test_waiting_past_the_deadline_gives_up_and_frees_its_place() -> None:
    async def scenario() -> None:
        q = AdmissionQueue(slots=1, max_waiting=1)
        held = await q.acquire(None)
        with pytest.raises(QueueTimeout) as late:
            await q.acquire(0.05)
        assert late.value.retry_after >= 1
        assert q.stats()["waiting"] == 0
        with pytest.raises(QueueTimeout):
            await q.acquire(0)
        held.release()
        (await q.acquire(0.05)).release()
        assert q.stats()["timed_out"] == 2

    asyncio.run(scenario())


def test_service_time_estimate_follows_real_durations() -> None:
    async def scenario() -> float:
        q = AdmissionQueue(slots=1, max_waiting=4, initial_service_s=10.0)
        for _ in range(20):
            t = await q.acquire(1.0)
            await asyncio.sleep(0.01)
            t.release()
        return float(q.stats()["mean_service_s"])

    assert asyncio.run(scenario()) < 0.5


def test_bad_sizes() -> None:
    with pytest.raises(ValueError):
        AdmissionQueue(slots=0)


def test_a_burst_on_an_idle_queue_is_bounded_on_arrival() -> None:
    async def scenario() -> tuple[int, int]:
        q = AdmissionQueue(slots=1, max_waiting=8)
        results = await asyncio.gather(*(q.acquire(1.0) for _ in range(25)), return_exceptions=True)
        admitted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, QueueFull)]
        for ticket in admitted:
            ticket.release()
        return len(admitted) + sum(isinstance(r, QueueTimeout) for r in results), len(refused)

    assert asyncio.run(scenario()) == (9, 16)  # 1 running + 8 waiting; the other 16 refused at once
