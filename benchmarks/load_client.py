"""A load generator in a process of its own: N concurrent clients POSTing one body, each on its own connection.

Usage: BENCH_AUTHORIZATION='Bearer …' python benchmarks/load_client.py URL[,URL...] BODY_JSON [--clients 64]
       [--seconds 5 --warmup 1 | --requests 10000]

One ``aiohttp.ClientSession`` (a pool of as many kept-alive connections as clients) and one
asyncio task per client, each sending its next request as soon as the last answer is read whole. With
``--seconds`` it counts the answers that end in the measured window (after ``--warmup`` seconds
of the same load); with ``--requests`` it sends that many in all. Prints one JSON line:
``{"requests", "seconds", "per_second", "failed", "statuses"}`` (``failed``: answers other than
200 and transport errors, by kind, in ``statuses``), and the counted answers' latencies
``"p50_seconds"`` and ``"p99_seconds"`` (from sending to the answer read whole). Several URLs
(comma-separated; ``BENCH_AUTHORIZATION`` then holds one header per URL, one a line) spread
the clients over them in turn, as a load balancer in front of replicas would: client *i* uses
URL *i* mod *n*; ``"per_url"`` counts the counted answers of each. aiohttp rather than httpx: under 64
concurrent requests httpx.AsyncClient's own pool is the bottleneck (against the sandbox alone it
made 69 answers a second where aiohttp makes about 2,000; encode/httpx issue 3215). The ``Authorization`` header comes from the
environment, so that no token is in the process's arguments (which any user may list).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections import Counter

import aiohttp
from common import isolate_environment


async def load(arguments: argparse.Namespace) -> dict[str, object]:
    body = arguments.body.encode()
    urls = arguments.url.split(",")
    authorizations = os.environ["BENCH_AUTHORIZATION"].splitlines()
    if len(authorizations) != len(urls):
        raise SystemExit(f"BENCH_AUTHORIZATION holds {len(authorizations)} headers for {len(urls)} URLs")
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    per_url = [0] * len(urls)
    counted = 0
    left = arguments.requests
    connector = aiohttp.TCPConnector(limit=arguments.clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as client:
        started = time.perf_counter()
        window_start = started + (arguments.warmup if arguments.requests is None else 0.0)
        window_end = window_start + (arguments.seconds or 0.0)

        async def one_client(number: int) -> None:
            nonlocal counted, left
            which = number % len(urls)
            url = urls[which]
            headers = {"authorization": authorizations[which], "content-type": "application/json"}
            while True:
                if left is not None:
                    if left <= 0:
                        return
                    left -= 1
                elif time.perf_counter() >= window_end:
                    return
                sent = time.perf_counter()
                try:
                    async with client.post(url, data=body, headers=headers) as answer:
                        await answer.read()
                        status = str(answer.status)
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    status = type(error).__name__
                ended = time.perf_counter()
                statuses[status] += 1
                if arguments.requests is not None or window_start <= ended < window_end:
                    counted += 1
                    per_url[which] += 1
                    latencies.append(ended - sent)

        await asyncio.gather(*(one_client(number) for number in range(arguments.clients)))
        elapsed = time.perf_counter() - started if arguments.requests is not None else window_end - window_start
    failed = sum(count for status, count in statuses.items() if status != "200")
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": counted,
        "seconds": elapsed,
        "per_second": counted / elapsed,
        "failed": failed,
        "statuses": dict(statuses),
        "p50_seconds": percentiles[49],
        "p99_seconds": percentiles[98],
        "per_url": per_url,
    }


def main() -> None:
    isolate_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("body")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=None)
    arguments = parser.parse_args()
    if (arguments.seconds is None) == (arguments.requests is None):
        parser.error("give --seconds or --requests")
    print(json.dumps(asyncio.run(load(arguments))), flush=True)


if __name__ == "__main__":
    main()
