"""What every route of one app shares: the backend, the limits, the safety policy, the queue and the counters."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from mmedkit.models.base import Message
from mmedkit.serve.backends import ChatBackend
from mmedkit.serve.queue import AdmissionQueue
from mmedkit.serve.safety import SafetyPolicy
from mmedkit.serve.schemas import SafetyInfo, clean_text
from mmedkit.serve.settings import ServeConfig
from mmedkit.serve.ui import load_ui_strings


@dataclasses.dataclass
class Counters:
    """Lifetime counts shown by ``/healthz``."""

    generations: int = 0
    red_flags: int = 0
    timeouts: int = 0
    errors: int = 0


class ConversationLog:
    """Appends one JSON line per exchange to a file readable by its owner only (off unless configured)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = (clean_text(json.dumps(record, ensure_ascii=False)) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


class Service:
    """One app's state, created once by :func:`mmedkit.serve.app.create_app` and handed to routes as a dependency."""

    def __init__(self, backend: ChatBackend, config: ServeConfig, policy: SafetyPolicy | None = None) -> None:
        self.backend, self.config, self.policy = backend, config, policy
        self.model = config.served_name or backend.model_id
        """The name the model is served under."""
        self.started = int(time.time())
        self.queue = AdmissionQueue(slots=backend.slots, max_waiting=config.queue_size)
        self.counters = Counters()
        self.conversations = ConversationLog(config.conversation_log) if config.conversation_log else None
        self.ui = load_ui_strings() if config.page else {}
        """The page's strings per language (loaded only when the page is served)."""

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` answers."""
        return {"status": "ok", "model": self.model, "queue": self.queue.stats(),
                **dataclasses.asdict(self.counters), "safety": self.policy is not None,
                "backend": self.backend.describe()}

    def record(self, rid: str, turns: list[Message], answer: str, info: SafetyInfo | None) -> None:
        """Write one exchange to the conversation log, when there is one (system messages left out)."""
        if self.conversations is not None:
            self.conversations.write({"id": rid, "time": round(time.time(), 3), "model": self.model,
                                      "safety": info.model_dump() if info else None,
                                      "messages": [t for t in turns if t["role"] != "system"], "answer": answer})
