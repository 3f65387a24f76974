"""Load test of `mmed serve` on loopback: N concurrent streaming clients for a fixed number of requests.

Phase 1 (below the queue bound: clients <= 1 running + --queue-size waiting) must finish with
0 errors; phase 2 sends a burst of --overload-clients requests at once (above the bound), where
the excess must get 429 with Retry-After, and nothing else may fail. Printed per phase: requests/s,
p50/p95 latency, p50/p95 time to first token, status counts; then the server's peak memory.

    python benchmarks/bench_serve.py [--model DIR|default] [--clients 4] [--requests 40]
        [--max-tokens 64] [--queue-size 8] [--overload-clients 24] [--out runs/bench_serve.json]

Without --model a tiny random model is built in a temp folder (fast; its answers mean nothing);
``--model default`` serves the embedded SmolLM2-135M-Instruct (real answers, slow on CPU).
The server and all traffic stay on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [  # ordinary questions in the six languages: none raises a red flag, all reach the model
    "Sore throat and sneezing since yesterday — is it a cold?",
    "从昨天开始喉咙痛、打喷嚏，是感冒吗？",
    "昨日から喉が痛くてくしゃみが出ます。風邪でしょうか？",
    "Mal de gorge et éternuements depuis hier — est-ce un rhume ?",
    "Со вчерашнего дня болит горло и чихаю — это простуда?",
    "Dolor de garganta y estornudos desde ayer, ¿es un resfriado?",
]


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def one_request(client: httpx.AsyncClient, url: str, prompt: str, max_tokens: int) -> dict:
    """One streamed chat request: status, latency, time to first token, Retry-After."""
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0,
            "stream": True}
    start = time.perf_counter()
    first: float | None = None
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code != 200:
                await resp.aread()
                return {"status": resp.status_code, "latency": time.perf_counter() - start, "ttft": None,
                        "retry_after": resp.headers.get("retry-after")}
            async for line in resp.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    return {"status": "stream-error", "latency": time.perf_counter() - start, "ttft": first}
                delta = event["choices"][0]["delta"] if event.get("choices") else {}
                if first is None and delta.get("content") and "part" not in event:
                    first = time.perf_counter() - start
    except httpx.HTTPError as exc:
        return {"status": type(exc).__name__, "latency": time.perf_counter() - start, "ttft": None}
    return {"status": 200, "latency": time.perf_counter() - start, "ttft": first}


async def closed_loop(url: str, clients: int, total: int, max_tokens: int) -> tuple[list[dict], float]:
    """``clients`` workers share ``total`` requests, each sending its next one when the last ends."""
    todo = iter(range(total))
    results: list[dict] = []

    async def worker(client: httpx.AsyncClient) -> None:
        for i in todo:
            results.append(await one_request(client, url, PROMPTS[i % len(PROMPTS)], max_tokens))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return results, time.perf_counter() - start


async def burst(url: str, clients: int, max_tokens: int) -> tuple[list[dict], float]:
    """``clients`` requests at the same moment."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        start = time.perf_counter()
        results = await asyncio.gather(*(one_request(client, url, PROMPTS[i % len(PROMPTS)], max_tokens)
                                          for i in range(clients)))
        return list(results), time.perf_counter() - start


def summarize(name: str, results: list[dict], wall: float) -> dict:
    ok = [r for r in results if r["status"] == 200]
    lat = [r["latency"] for r in ok]
    ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
    statuses = Counter(str(r["status"]) for r in results)
    retry = sorted({r.get("retry_after") for r in results if r["status"] == 429})

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)

    return {"phase": name, "requests": len(results), "ok": len(ok), "wall_s": round(wall, 2),
            "requests_per_s": round(len(ok) / wall, 2) if wall else None,
            "latency_p50_ms": ms(percentile(lat, 50)), "latency_p95_ms": ms(percentile(lat, 95)),
            "ttft_p50_ms": ms(percentile(ttft, 50)), "ttft_p95_ms": ms(percentile(ttft, 95)),
            "statuses": dict(statuses), "errors": len(results) - len(ok) - statuses.get("429", 0),
            "rejected_429": statuses.get("429", 0), "retry_after_s": retry}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model folder, 'default' (embedded SmolLM2) or none: tiny")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients below the bound")
    parser.add_argument("--requests", type=int, default=40, help="requests in the below-bound phase")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--queue-size", type=int, default=8)
    parser.add_argument("--overload-clients", type=int, default=None,
                        help="simultaneous requests above the bound (default: 3 x (1 + queue size))")
    parser.add_argument("--burst-max-tokens", type=int, default=None,
                        help="answer length in the burst, long enough to keep the queue full while the burst "
                             "arrives (default: 1024 for the tiny model, else --max-tokens)")
    parser.add_argument("--threads", type=int, default=0, help="server's CPU threads for the model (0: default)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_serve.json")
    args = parser.parse_args()
    bound = 1 + args.queue_size
    if args.clients > bound:
        parser.error(f"--clients {args.clients} is above the queue bound ({bound}); phase 1 is the below-bound one")
    overload = args.overload_clients or 3 * bound

    sys.path.insert(0, str(ROOT / "tests"))  # the test harness that runs a server process
    from server_process import ServerProcess

    from mmedkit.utils import atomic_write_json

    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            from mmedkit.models.tiny import build_tiny_model

            model, label = str(build_tiny_model(Path(tmp) / "tiny")), "tiny random Llama (answers not meaningful)"
        elif args.model == "default":
            from mmedkit.models.embedded import default_model_dir

            model, label = str(default_model_dir()), "SmolLM2-135M-Instruct (embedded)"
        else:
            model, label = args.model, args.model
        burst_tokens = args.burst_max_tokens or (1024 if args.model is None else args.max_tokens)
        server_args = ["--model", model, "--device", "cpu", "--queue-size", str(args.queue_size),
                       "--max-tokens", str(max(args.max_tokens, burst_tokens)), "--timeout", "600",
                       "--threads", str(args.threads)]
        with ServerProcess(server_args, Path(tmp) / "server.log") as server:
            url = f"{server.url}/chat/completions"
            asyncio.run(closed_loop(url, 1, 2, args.max_tokens))  # warm-up
            phases = [summarize(f"{args.clients} clients, {args.requests} requests (below the bound)",
                                *asyncio.run(closed_loop(url, args.clients, args.requests, args.max_tokens))),
                      summarize(f"burst of {overload} at once (bound {bound})",
                                *asyncio.run(burst(url, overload, burst_tokens)))]
            health = httpx.get(f"{server.base}/healthz").json()
            peak_server = server.peak_rss_mb()
    report = {"model": label, "threads": args.threads, "max_tokens": args.max_tokens, "burst_max_tokens": burst_tokens,
              "queue_size": args.queue_size, "slots": 1,
              "cpu_count": os.cpu_count(), "phases": phases,
              "server_peak_rss_mib": None if peak_server is None else round(peak_server, 1),
              "client_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "server_queue": health["queue"]}
    cols = ["requests_per_s", "latency_p50_ms", "latency_p95_ms", "ttft_p50_ms", "ttft_p95_ms", "ok", "errors",
            "rejected_429"]
    print(f"model: {label}; max_tokens {args.max_tokens} (burst: {burst_tokens}); "
          f"queue: 1 running + {args.queue_size} waiting; {os.cpu_count()} CPUs")
    print(f"{'phase':52} " + " ".join(f"{c:>14}" for c in cols))
    for p in phases:
        print(f"{p['phase']:52} " + " ".join(f"{str(p[c]):>14}" for c in cols))
    print(f"server peak memory (VmHWM): {report['server_peak_rss_mib']} MiB; "
          f"client peak: {report['client_peak_rss_mib']} MiB; Retry-After seen: {phases[1]['retry_after_s']}")
    atomic_write_json(args.out, report)
    print(f"report: {args.out}")
    below, above = phases
    failed = below["errors"] or below["rejected_429"] or above["errors"] or (overload > bound and not
                                                                            above["rejected_429"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
