"""A bounded admission queue for generation requests.

``slots`` requests generate at once (1 for a local model, more for an upstream server); up to
``max_waiting`` more wait their turn in arrival order. A request that finds the waiting room full
is refused at once (:class:`QueueFull`, answered 429), and one that waits past its deadline gives
up (:class:`QueueTimeout`, answered 503); both carry a ``retry_after`` estimate in seconds from
the recent service times, so the server answers at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass


class QueueRefused(Exception):
    """The request was not admitted; ``retry_after`` seconds is a fair wait before retrying."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueueFull(QueueRefused):
    """All slots are busy and the waiting room is full."""


class QueueTimeout(QueueRefused):
    """The request's deadline passed while it waited."""


@dataclass
class Ticket:
    """An admitted request; :meth:`release` frees its slot (safe to call twice)."""

    queue: AdmissionQueue
    started: float
    released: bool = False

    def release(self) -> None:
        """Free the slot and record how long it was held."""
        if not self.released:
            self.released = True
            self.queue._release(time.monotonic() - self.started)


class AdmissionQueue:
    """At most ``slots`` requests running and ``max_waiting`` waiting; everything else is refused."""

    def __init__(self, slots: int = 1, max_waiting: int = 8, initial_service_s: float = 5.0) -> None:
        if slots < 1 or max_waiting < 0:
            raise ValueError("slots must be >= 1 and max_waiting >= 0")
        self.slots = slots
        self.max_waiting = max_waiting
        self._sem = asyncio.Semaphore(slots)
        self._active = 0
        self._waiting = 0
        self._service_s = initial_service_s
        self.admitted = 0
        self.refused = 0
        self.timed_out = 0

    def retry_after(self) -> int:
        """Seconds until a slot is likely free for a newcomer (at least 1)."""
        ahead = self._waiting + 1
        return max(1, math.ceil(self._service_s * ahead / self.slots))

    async def acquire(self, timeout: float | None) -> Ticket:
        """Wait for a slot at most ``timeout`` seconds (None: no limit)."""
        if self._active + self._waiting >= self.slots + self.max_waiting:  # counted on arrival, not after the wait
            self.refused += 1
            raise QueueFull(f"server busy: {self._active} request(s) running and {self._waiting} waiting "
                            f"(limit {self.max_waiting})", self.retry_after())
        self._waiting += 1
        try:
            if timeout is not None and timeout <= 0:
                raise asyncio.TimeoutError
            await asyncio.wait_for(self._sem.acquire(), timeout)
        except asyncio.TimeoutError:
            self.timed_out += 1
            raise QueueTimeout(f"no free slot within the request timeout ({timeout or 0:.0f} s)",
                               self.retry_after()) from None
        finally:
            self._waiting -= 1
        self._active += 1
        self.admitted += 1
        return Ticket(self, time.monotonic())

    def _release(self, held_s: float) -> None:
        self._active -= 1
        self._service_s = 0.8 * self._service_s + 0.2 * held_s
        self._sem.release()

    def stats(self) -> dict[str, int | float]:
        """Running, waiting and lifetime counts, for ``/healthz``."""
        return {"slots": self.slots, "max_waiting": self.max_waiting, "running": self._active,
                "waiting": self._waiting, "admitted": self.admitted, "refused": self.refused,
                "timed_out": self.timed_out, "mean_service_s": round(self._service_s, 3)}
