"""Rewriting throughput: offline rewriter, templates mode, per-episode requests (concurrency 1 vs N), cached rerun.

The OpenAI-compatible endpoint is the local test server with an added per-request latency (default 50 ms, about
a fast gpt-4o-mini reply), so the figures measure this code and its concurrency, not the network.

    python bench/rewrite_throughput.py --episodes 2000 --requests 64 --latency-ms 50 --concurrency 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataengine.rewrite import OfflineRewriter
from dataengine.rewrite.openai_rewriter import OpenAIRewriter
from tests.fake_openai_server import FakeOpenAI
from tests.fixtures.rewrite_scenes import random_scene


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    scenes = [random_scene(i) for i in range(args.episodes)]
    rows = []

    seconds = timed(lambda: OfflineRewriter(seed=0).rewrite(scenes))
    offline_rate = args.episodes / seconds
    rows.append(("offline rewriter (baseline)", offline_rate, 1.0))

    os.environ["OPENAI_API_KEY"] = "sk-bench-not-a-real-key"
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as tmp:
        latency = args.latency_ms / 1000

        def rewriter(name: str, **options) -> OpenAIRewriter:
            return OpenAIRewriter(base_url=server.base_url, cache_dir=Path(tmp) / name, **options)

        server.push(*[("sleep", latency)] * 10_000)
        templates = rewriter("templates", mode="templates", concurrency=args.concurrency)
        seconds = timed(lambda: templates.rewrite(scenes))
        rows.append((f"templates mode, {server.chat_requests} pool requests, cold", args.episodes / seconds,
                     args.episodes / seconds / offline_rate))  # fmt: skip

        few = scenes[: args.requests]
        serial = rewriter("serial", mode="per-episode", concurrency=1)
        serial_rate = args.requests / timed(lambda: serial.rewrite(few))
        rows.append(("per-episode, concurrency 1", serial_rate, serial_rate / offline_rate))
        parallel = rewriter("parallel", mode="per-episode", concurrency=args.concurrency)
        parallel_rate = args.requests / timed(lambda: parallel.rewrite(few))
        rows.append((f"per-episode, concurrency {args.concurrency}", parallel_rate, parallel_rate / offline_rate))
        before = server.chat_requests
        rerun = rewriter("parallel", mode="per-episode", concurrency=args.concurrency)
        rerun_rate = args.requests / timed(lambda: rerun.rewrite(few))
        assert server.chat_requests == before, "a cached rerun must not send requests"
        rows.append(("per-episode rerun, all cached (0 requests)", rerun_rate, rerun_rate / offline_rate))

    print(f"episodes={args.episodes} requests={args.requests} latency={args.latency_ms} ms")
    print(f"{'what':<48} {'episodes/s':>12} {'x offline':>10}")
    for name, rate, ratio in rows:
        print(f"{name:<48} {rate:>12,.1f} {ratio:>10.3f}")
    print(f"concurrency {args.concurrency} / concurrency 1: {parallel_rate / serial_rate:.2f}x")


if __name__ == "__main__":
    main()
