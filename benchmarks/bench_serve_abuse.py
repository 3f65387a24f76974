"""Abuse test of `mmed serve` on loopback: what an attacker or a careless client can do to the service.

Phases, each bounded in count and time, against a server started here on 127.0.0.1 (tiny random model):
a burst at idle, a burst under load, slow bodies (connections that send headers and one byte), oversize and
malformed requests (too large, not JSON, lone surrogates, thousands of stop strings, a foreign Host), and
streams dropped by their clients. ``/healthz`` is polled all along. Printed: per phase the requests sent,
served, refused by code (429/413/408/400), 5xx (must be 0) and other failures; the p95 latency of
``/healthz`` during the attack; the server's peak memory; and whether it is back to its normal latency after.

    python benchmarks/bench_serve_abuse.py [--slow-connections 260] [--burst 25] [--out runs/bench_serve_abuse.json]

Exit status 1 when any request got a 5xx or the server did not recover.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))  # the test harness that runs a server process
from bench_serve import percentile  # noqa: E402

CHAT = "/v1/chat/completions"
JSON_HEADERS = {"Content-Type": "application/json"}


def chat(text: str = "Sore throat since yesterday, is it a cold?", **extra: object) -> dict:
    return {"messages": [{"role": "user", "content": text}], "temperature": 0, **extra}


class HealthProbe:
    """Polls ``/healthz`` every ``every`` seconds in the background; latencies (s) or failures."""

    def __init__(self, base: str, every: float = 0.25) -> None:
        self.base, self.every = base, every
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                start = time.perf_counter()
                try:
                    resp = await client.get(f"{self.base}/healthz")
                    if resp.status_code == 200:
                        self.latencies.append(time.perf_counter() - start)
                    else:
                        self.failures[str(resp.status_code)] += 1
                except httpx.HTTPError as exc:
                    self.failures[type(exc).__name__] += 1
                await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def send(client: httpx.AsyncClient, body: dict | bytes, headers: dict | None = None,
               stream: bool = False) -> str:
    """One chat request; its status as text (or the exception's name)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        if not stream:
            resp = await client.post(CHAT, content=content, headers={**JSON_HEADERS, **(headers or {})})
            return str(resp.status_code)
        async with client.stream("POST", CHAT, content=content, headers=JSON_HEADERS) as resp:
            text = (await resp.aread()).decode()
            return "stream-error" if '"error"' in text else str(resp.status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


async def burst(base: str, n: int, max_tokens: int, background: int = 0) -> list[str]:
    """``n`` requests at once, after ``background`` long streamed ones have started."""
    limits = httpx.Limits(max_connections=n + background + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120.0, limits=limits) as client:
        running = [asyncio.ensure_future(send(client, chat(max_tokens=256, stream=True), stream=True))
                   for _ in range(background)]
        await asyncio.sleep(0.5 if background else 0)
        out = await asyncio.gather(*(send(client, chat(max_tokens=max_tokens)) for _ in range(n)))
        return list(out) + list(await asyncio.gather(*running))


async def slow_bodies(port: int, n: int, hold_s: float) -> list[str]:
    """``n`` connections that send headers and one byte of a 1000-byte body, then nothing for ``hold_s``."""
    head = (f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{").encode()

    async def one() -> str:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            return type(exc).__name__
        try:
            writer.write(head)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), hold_s)
            return line.split()[1].decode() if len(line.split()) > 1 else "closed"
        except asyncio.TimeoutError:
            return "held"  # the server never answered within hold_s
        except OSError as exc:
            return type(exc).__name__
        finally:
            writer.close()

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def bad_requests(base: str) -> list[str]:
    """Oversize, malformed and hostile requests, one of each kind."""
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
        cases = [
            send(client, chat("x" * 100_000)),  # over the body limit: 413
            send(client, b'{"messages": [{"role": "user", "content": "unterminated'),  # not JSON: 400
            send(client, b'{"messages": [{"role": "user", "content": "cough \\ud800"}]}'),  # lone surrogate: 200
            send(client, b'{"messages": [{"role": "user", "content": "cough \\ud800"}], "stream": true}', stream=True),
            send(client, chat(stop=[f"s{i}" for i in range(4000)])),  # thousands of stop strings: 400
            send(client, chat(messages=[{"role": "user", "content": "a"}] * 500)),  # too many messages: 400
            send(client, chat(max_tokens=10**9)),  # over the token limit: 400
            send(client, chat(), headers={"Host": "evil.com"}),  # DNS rebinding: 400
            send(client, b"[" * 30_000 + b"]" * 30_000),  # nested too deeply: 400
        ]
        return list(await asyncio.gather(*cases))


async def dropped_streams(base: str, n: int) -> list[str]:
    """``n`` streamed answers whose clients hang up after the first event; then the queue must be empty."""
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
        async def drop() -> str:
            try:
                async with client.stream("POST", CHAT, json=chat(max_tokens=256, stream=True)) as resp:
                    async for _ in resp.aiter_lines():
                        break
                    return str(resp.status_code)
            except httpx.HTTPError as exc:
                return type(exc).__name__

        out = await asyncio.gather(*(drop() for _ in range(n)))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            queue = (await client.get("/healthz")).json()["queue"]
            if queue["running"] == 0 and queue["waiting"] == 0:
                return list(out)
            await asyncio.sleep(0.2)
        return [*out, "slot-leaked"]


async def health_latency(base: str, n: int = 20) -> list[float]:
    """``n`` sequential ``/healthz`` latencies (s)."""
    out = []
    async with httpx.AsyncClient(timeout=10.0) as client:
        for _ in range(n):
            start = time.perf_counter()
            (await client.get(f"{base}/healthz")).raise_for_status()
            out.append(time.perf_counter() - start)
    return out


def row(name: str, statuses: list[str]) -> dict:
    counts = Counter(statuses)
    served = sum(v for k, v in counts.items() if k.startswith("2"))
    refused = {k: v for k, v in counts.items() if k in ("429", "413", "408", "400")}
    server_errors = sum(v for k, v in counts.items() if k.startswith("5") or k == "stream-error")
    other = len(statuses) - served - sum(refused.values()) - server_errors
    return {"phase": name, "sent": len(statuses), "served": served, "refused": refused, "5xx": server_errors,
            "other": other, "statuses": dict(counts)}


async def attack(server: object, args: argparse.Namespace) -> dict:
    base, port = server.base, server.port  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:  # warm-up
        await send(client, chat(max_tokens=4))
    before = await health_latency(base)
    probe = HealthProbe(base)
    probe.start()
    rows = [row(f"burst of {args.burst} at idle", await burst(base, args.burst, 32)),
            row(f"burst of {args.burst} under load (4 streams)", await burst(base, args.burst, 32, background=4)),
            row(f"{args.slow_connections} slow bodies", await slow_bodies(port, args.slow_connections, args.hold)),
            row("oversize and malformed", await bad_requests(base)),
            row(f"{args.dropped} dropped streams", await dropped_streams(base, args.dropped))]
    await probe.stop()
    await asyncio.sleep(1.0)
    after = await health_latency(base)
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
        still_answers = await send(client, chat(max_tokens=8)) == "200"
    p95 = percentile(probe.latencies, 95)
    normal = percentile(before, 95) or 0.0
    recovered = still_answers and (percentile(after, 95) or 0.0) <= max(3 * normal, 0.05)
    return {"rows": rows, "healthz_before_p95_ms": round(normal * 1000, 1),
            "healthz_attack_p95_ms": None if p95 is None else round(p95 * 1000, 1),
            "healthz_attack_failures": dict(probe.failures),
            "healthz_after_p95_ms": round((percentile(after, 95) or 0.0) * 1000, 1), "recovered": recovered}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=25, help="simultaneous requests per burst")
    parser.add_argument("--queue-size", type=int, default=8)
    parser.add_argument("--slow-connections", type=int, default=260)
    parser.add_argument("--hold", type=float, default=15.0, help="seconds slow connections wait for an answer")
    parser.add_argument("--dropped", type=int, default=10, help="streams dropped by their clients")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_serve_abuse.json")
    args = parser.parse_args()

    from server_process import ServerProcess

    from mmedkit.models.tiny import build_tiny_model
    from mmedkit.utils import atomic_write_json

    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model(Path(tmp) / "tiny"))
        server_args = ["--model", model, "--device", "cpu", "--queue-size", str(args.queue_size), "--threads", "1",
                       "--timeout", "60"]
        with ServerProcess(server_args, Path(tmp) / "server.log") as server:
            report = asyncio.run(attack(server, args))
            peak = server.peak_rss_mb()
            report["server_peak_rss_mib"] = None if peak is None else round(peak)
    cols = ("sent", "served", "refused", "5xx", "other")
    print(f"{'phase':42} {'sent':>5} {'served':>6} {'refused by code':>28} {'5xx':>4} {'other':>6}")
    for r in report["rows"]:
        refused = ", ".join(f"{k}: {v}" for k, v in sorted(r["refused"].items())) or "-"
        print(f"{r['phase']:42} {r['sent']:>5} {r['served']:>6} {refused:>28} {r['5xx']:>4} {r['other']:>6}")
        if r["other"]:
            print(f"{'':42} other: {r['statuses']}")
    total = {c: sum(r[c] for r in report["rows"]) for c in cols if c != "refused"}
    print(f"served {total['served']} of {total['sent']}; 5xx {total['5xx']} (must be 0); /healthz p95 "
          f"{report['healthz_before_p95_ms']} ms before, {report['healthz_attack_p95_ms']} ms during the attack "
          f"(failures: {report['healthz_attack_failures'] or 'none'}), {report['healthz_after_p95_ms']} ms after; "
          f"server peak memory {report['server_peak_rss_mib']} MiB; recovered: {report['recovered']}")
    atomic_write_json(args.out, report)
    print(f"report: {args.out}")
    return 1 if total["5xx"] or not report["recovered"] else 0


if __name__ == "__main__":
    sys.exit(main())
