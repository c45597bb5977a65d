"""The AI gateway against calling the sandbox directly and against LiteLLM's proxy, side by side in one run.

Four processes besides this one, all on the machine's cores (none is pinned): the sandbox
(``sandbox_server.py``, 0 ms latency), the gateway (``gateway_server.py``: the gateway's tornado
application with its hub stand-in, the hub's answer about the token cached as in production,
one log line per request), LiteLLM's proxy (``litellm_server.py``, one uvicorn worker, from
``.venv/bench-litellm``), both configured with the same OpenAI integration on the same sandbox,
and for the loads a load generator (``load_client.py``). A second gateway process runs the
experiment of ``gateway_server.py --aiohttp-upstream`` (the call to the provider made by aiohttp),
measured beside the others to show what that change would save.

Figures:

* overhead: sequential ``POST /v1/chat/completions`` from one ``httpx.Client`` (kept-alive
  connection), the sandbox direct, through the gateway, through LiteLLM, in turns; per round the
  median of each, and the overhead is a side's median minus the direct one of the same round;
* throughput: 64 concurrent clients (the load generator), the gateway against LiteLLM (and the
  sandbox direct, for scale), in turns, answers per second over a measured window;
* first chunk: ``"stream": true``, the time until the first bytes of the answer's body, the
  gateway's and LiteLLM's extra time over direct of the same round;
* memory: the gateway's resident memory (``VmRSS``) after a warm-up and after 10,000 more requests.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
from common import OPENAI_PRACTICE_KEY, ROOT, emit, figure, isolate_environment, milliseconds, sandbox_process

HERE = Path(__file__).resolve().parent
#: LiteLLM's proxy runs from a venv of its own (see pyproject's ``bench`` extra and the Makefile).
LITELLM_PYTHON = Path(os.environ.get("BENCH_LITELLM_PYTHON") or ROOT / ".venv" / "bench-litellm" / "bin" / "python")
LITELLM_MASTER_KEY = f"sk-litellm-bench-{secrets.token_hex(12)}"

MESSAGES = [{"role": "user", "content": "ping"}]
CHAT = {"model": "gpt-4o", "messages": MESSAGES}
STREAMED = {**CHAT, "stream": True}

ROUNDS = 9  # of the sequential figures
PER_ROUND = 50  # requests of each side per round
LOAD_ROUNDS = 3
LOAD_SECONDS = 5.0
LOAD_WARMUP = 1.0
CLIENTS = 64
MEMORY_REQUESTS = 10_000
MEMORY_WARMUP = 2_000
MEMORY_CLIENTS = 8

OVERHEAD_TARGET = 0.001  # seconds, median
OVERHEAD_OF_LITELLM = 0.5
THROUGHPUT_TARGET = 2.0
FIRST_CHUNK_TARGET = 0.002
GROWTH_TARGET_MB = 20.0


# -- the processes ---------------------------------------------------------------- #


@contextmanager
def process(command: list[str], environment: dict[str, str], log: IO[str], *, first_line: bool) -> Iterator[Any]:
    """A server process; yields its first line of output (JSON) or the Popen; stopped when its input closes."""
    server = subprocess.Popen(
        command,
        cwd=HERE,
        env=os.environ | environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE if first_line else log,
        stderr=log,
        text=True,
    )
    try:
        if first_line:
            assert server.stdout is not None
            line = server.stdout.readline().strip()
            if not line.startswith("{"):
                server.kill()
                log.seek(0)
                raise RuntimeError(f"{Path(command[1]).name} did not start: {line!r}\n{log.read()[-3000:]}")
            yield json.loads(line) | {"process": server}
        else:
            yield server
    finally:
        if server.stdin:
            server.stdin.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(url: str, server: subprocess.Popen[str], log: IO[str], deadline: float = 180.0) -> None:
    """Poll ``url`` until it answers 200 (LiteLLM takes seconds to import); RuntimeError past ``deadline``."""
    ends = time.monotonic() + deadline
    while time.monotonic() < ends:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"LiteLLM's proxy exited ({server.returncode}):\n{log.read()[-3000:]}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"LiteLLM's proxy did not answer {url} within {deadline:g} s")


def rss_megabytes(pid: int) -> float:
    """The resident memory of process ``pid``, in MB (``VmRSS`` of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run_load(
    url: str, authorization: str, body: dict[str, Any], *options: str, clients: int = CLIENTS
) -> dict[str, Any]:
    """One run of the load generator in its own process; its JSON answer."""
    finished = subprocess.run(
        [sys.executable, str(HERE / "load_client.py"), url, json.dumps(body), "--clients", str(clients), *options],
        cwd=HERE,
        env=os.environ | {"BENCH_AUTHORIZATION": authorization},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"the load generator failed: {finished.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    if result["failed"] > result["requests"] // 10:
        raise RuntimeError(f"{result['failed']} requests to {url} failed under load: {result['statuses']}")
    return result


# -- one request ------------------------------------------------------------------ #


class Side:
    """One way to the sandbox's chat completions: its URL, its Authorization header, a kept-alive client."""

    def __init__(self, name: str, url: str, authorization: str) -> None:
        self.name, self.url, self.authorization = name, url, authorization
        self.client = httpx.Client(trust_env=False, timeout=30, headers={"authorization": authorization})

    def chat(self) -> float:
        """One chat completion, read and decoded; its wall time in seconds."""
        started = time.perf_counter()
        answer = self.client.post(self.url, json=CHAT)
        answer.raise_for_status()
        answer.json()["choices"]
        return time.perf_counter() - started

    def first_chunk(self) -> float:
        """One streamed chat completion: the seconds until the first bytes of its body (then read to the end)."""
        started = time.perf_counter()
        with self.client.stream("POST", self.url, json=STREAMED) as answer:
            answer.raise_for_status()
            chunks = answer.iter_raw()
            first = next(chunks)
            elapsed = time.perf_counter() - started
            if not first.startswith(b"data:"):
                raise RuntimeError(f"{self.name}'s stream began with {first[:40]!r}, not a server-sent event")
            for _ in chunks:
                pass
        return elapsed


def rounds(sides: list[Side], measure: Callable[[Side], float]) -> dict[str, list[float]]:
    """ROUNDS rounds, the sides in turns (the order reversed every other round): each side's median per round."""
    for side in sides:  # warm-up: connections, caches, imports
        for _ in range(PER_ROUND // 2):
            measure(side)
    medians: dict[str, list[float]] = {side.name: [] for side in sides}
    for number in range(ROUNDS):
        for side in sides if number % 2 == 0 else list(reversed(sides)):
            medians[side.name].append(statistics.median(measure(side) for _ in range(PER_ROUND)))
    return medians


def minus(these: list[float], those: list[float]) -> list[float]:
    return [this - that for this, that in zip(these, those)]


# -- the figures ------------------------------------------------------------------ #


def overhead_figure(times: dict[str, list[float]], core_count: str) -> dict[str, Any]:
    ours, theirs = minus(times["gateway"], times["direct"]), minus(times["litellm"], times["direct"])
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    sketch_median = statistics.median(minus(times["sketch"], times["direct"]))
    ratio = ours_median / theirs_median if theirs_median > 0 else None
    met = ours_median <= OVERHEAD_TARGET and ratio is not None and ratio <= OVERHEAD_OF_LITELLM
    return figure(
        "gateway: overhead per request",
        ours="the gateway's time per POST /v1/chat/completions minus the sandbox's direct time (same round)",
        measured=ours,
        baseline="LiteLLM's proxy, the same request, minus the same direct time",
        baseline_measured=theirs,
        ratio=ratio,
        met=met,
        target=f"≤ {milliseconds(OVERHEAD_TARGET)} median, and ratio ≤ {OVERHEAD_OF_LITELLM}",
        how=(
            f"Sequential, one httpx.Client per side with a kept-alive connection, sandbox at 0 ms latency; {ROUNDS} "
            f"rounds of {PER_ROUND} requests per side, the sides in turns, after {PER_ROUND // 2} untimed requests "
            f"each; a run is one round's median. Medians of the rounds: direct {milliseconds(statistics.median(times['direct']))}, "
            f"gateway {milliseconds(statistics.median(times['gateway']))}, LiteLLM "
            f"{milliseconds(statistics.median(times['litellm']))}. The machine: {core_count}. {CALIBRATION}"
        ),
        miss=(
            f"The gateway adds {milliseconds(ours_median)} (LiteLLM {milliseconds(theirs_median)}), nearly all of it "
            "CPU time in the gateway's process on one core. Profiled (py-spy, sequential requests): no cheap cause "
            "(the hub's answer is cached, the provider's client is made once, the settings are read again only "
            "when settings.json changes, one stat per request); httpx's async client calling the provider takes "
            "about 40% of the gateway's time holding the interpreter, tornado's request and response handling "
            "most of the rest, the usage record about 3%, the hub lookup from the cache 3%, the log line 1%. "
            "Measured in this run, the same gateway "
            f"with its provider call made by aiohttp (the sketch of gateway_server.py --aiohttp-upstream) adds "
            f"{milliseconds(sketch_median)}. What would close it: that change (an aiohttp transport under the "
            "httpx API the gateway uses, so that its error mapping, deadline and cap stay), on a faster or less "
            "loaded core than this one (see the calibration); below 1 ms here needs less Python per request than "
            "tornado and an HTTP client take together."
        ),
    )


def first_chunk_figure(times: dict[str, list[float]]) -> dict[str, Any]:
    ours, theirs = minus(times["gateway"], times["direct"]), minus(times["litellm"], times["direct"])
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    sketch_median = statistics.median(minus(times["sketch"], times["direct"]))
    return figure(
        "gateway: first streamed chunk",
        ours='the gateway\'s time to the first bytes of a "stream": true answer, minus direct (same round)',
        measured=ours,
        baseline="LiteLLM's proxy, the same, minus the same direct time",
        baseline_measured=theirs,
        ratio=ours_median / theirs_median if theirs_median > 0 else None,
        met=ours_median <= FIRST_CHUNK_TARGET,
        target=f"≤ {milliseconds(FIRST_CHUNK_TARGET)} later than direct (median)",
        how=(
            f"Sequential, as the overhead; {ROUNDS} rounds of {PER_ROUND} streamed requests per side, each read to "
            f"its end before the next. Medians of the rounds, to the first chunk: direct "
            f"{milliseconds(statistics.median(times['direct']))}, gateway {milliseconds(statistics.median(times['gateway']))}, "
            f"LiteLLM {milliseconds(statistics.median(times['litellm']))}."
        ),
        miss=(
            f"The gateway's first chunk comes {milliseconds(ours_median)} after direct's: the same per-request CPU "
            "as the overhead (the first chunk is the answer's headers and first event, through both hops). With its "
            f"provider call made by aiohttp (the sketch) {milliseconds(sketch_median)}. What would close it: as "
            "for the overhead."
        ),
    )


def throughput_figure(rates: dict[str, list[float]], failed: dict[str, int], core_count: str) -> dict[str, Any]:
    ratio = statistics.median(rates["gateway"]) / statistics.median(rates["litellm"])
    return figure(
        "gateway: throughput, 64 clients",
        ours=f"answers per second through the gateway, {CLIENTS} concurrent clients",
        measured=rates["gateway"],
        baseline="the same through LiteLLM's proxy",
        baseline_measured=rates["litellm"],
        ratio=ratio,
        met=ratio >= THROUGHPUT_TARGET,
        unit="req/s",
        target=f"ratio ≥ {THROUGHPUT_TARGET:g}",
        how=(
            f"The load generator (load_client.py) is a process of its own: one aiohttp.ClientSession, {CLIENTS} asyncio "
            f"tasks, each on a kept-alive connection, sending its next request when the last answer is read; "
            f"{LOAD_WARMUP:g} s of load, then {LOAD_SECONDS:g} s counted; {LOAD_ROUNDS} rounds, the sides in turns. "
            f"Each server is one process (LiteLLM: one uvicorn worker); the sandbox, the server measured and the "
            f"load generator share the cores ({core_count}). The sandbox direct with the same load: "
            f"{statistics.median(rates['direct']):.0f} req/s (median), which bounds both sides; the gateway with its "
            f"provider call made by aiohttp (the sketch): {statistics.median(rates['sketch']):.0f} req/s. Answers other than "
            f"200 or broken connections (not counted): gateway {failed['gateway']}, LiteLLM {failed['litellm']}, "
            f"direct {failed['direct']}."
        ),
        miss=(
            f"Through the gateway {statistics.median(rates['gateway']):.0f} req/s, through LiteLLM "
            f"{statistics.median(rates['litellm']):.0f} req/s. Under 64 concurrent requests the gateway is "
            "CPU-bound, and httpx's async client, which it calls the provider with, takes half of that time "
            "(py-spy: 52%, of which 34% in its connection pool choosing a connection and checking each one "
            "for expiry; encode/httpx issue 3215); the sketch with aiohttp in its place made "
            f"{statistics.median(rates['sketch']):.0f} req/s in the same rounds. What would close it: that change "
            "(an aiohttp transport under the httpx API the gateway uses)."
        ),
    )


def memory_figure(samples: list[tuple[int, float]]) -> dict[str, Any]:
    growth = samples[-1][1] - samples[0][1]
    curve = ", ".join(f"{count:,}: {rss:.2f} MB" for count, rss in samples)
    return figure(
        "gateway: memory growth, 10,000 requests",
        ours=f"the gateway's resident memory after {MEMORY_REQUESTS:,} more requests, minus before",
        measured=[growth],
        ratio=growth / GROWTH_TARGET_MB,
        met=growth <= GROWTH_TARGET_MB,
        unit="MB",
        target=f"≤ {GROWTH_TARGET_MB:g} MB (ratio to it ≤ 1)",
        how=(
            f"VmRSS of the gateway's process after {MEMORY_WARMUP:,} requests of warm-up, then after each "
            f"{MEMORY_REQUESTS // 10:,} of {MEMORY_REQUESTS:,} more ({MEMORY_CLIENTS} concurrent clients, the load "
            f"generator's; chat completions, every other thousand streamed): requests so far: {curve}."
        ),
        miss=f"The gateway grew by {growth:.1f} MB.",
    )


def memory_growth(pid: int, url: str, authorization: str) -> list[tuple[int, float]]:
    """VmRSS of ``pid`` after the warm-up and after each tenth of MEMORY_REQUESTS (chat, then streamed, in turns)."""
    run_load(url, authorization, CHAT, "--requests", str(MEMORY_WARMUP // 2), clients=MEMORY_CLIENTS)
    run_load(url, authorization, STREAMED, "--requests", str(MEMORY_WARMUP // 2), clients=MEMORY_CLIENTS)
    samples = [(0, rss_megabytes(pid))]
    step = MEMORY_REQUESTS // 10
    for tenth in range(10):
        run_load(
            url, authorization, CHAT if tenth % 2 == 0 else STREAMED, "--requests", str(step), clients=MEMORY_CLIENTS
        )
        samples.append(((tenth + 1) * step, rss_megabytes(pid)))
    return samples


def calibration() -> str:
    """How fast this machine runs Python now: a loop timed here, for readers who compare with their own."""
    import timeit

    best = min(timeit.repeat("sum(range(10))", number=100_000, repeat=5)) / 100_000
    return (
        f"Calibration: `sum(range(10))` took {best * 1e9:.0f} ns in this process at the start "
        "(`python -m timeit 'sum(range(10))'` on another machine says how its core compares)."
    )


CALIBRATION = ""


def main() -> None:
    global CALIBRATION
    isolate_environment()
    CALIBRATION = calibration()
    if not LITELLM_PYTHON.exists():
        raise SystemExit(f"LiteLLM's proxy is not installed at {LITELLM_PYTHON}: run `make bench`, which makes it.")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    core_count = f"{usable} cores, shared by every process, none pinned"
    with ExitStack() as stack:
        logs = stack.enter_context(tempfile.TemporaryDirectory(prefix="ai-admin-bench-gateway-"))
        gateway_log = stack.enter_context(open(Path(logs) / "gateway.log", "w+", encoding="utf-8"))
        litellm_log = stack.enter_context(open(Path(logs) / "litellm.log", "w+", encoding="utf-8"))
        sandbox = stack.enter_context(sandbox_process(latency_ms=0))
        gateway = stack.enter_context(
            process(
                [sys.executable, str(HERE / "gateway_server.py"), sandbox],
                {"BENCH_OPENAI_KEY": OPENAI_PRACTICE_KEY},
                gateway_log,
                first_line=True,
            )
        )
        sketch = stack.enter_context(
            process(
                [sys.executable, str(HERE / "gateway_server.py"), sandbox, "--aiohttp-upstream"],
                {"BENCH_OPENAI_KEY": OPENAI_PRACTICE_KEY},
                gateway_log,
                first_line=True,
            )
        )
        port = free_port()
        litellm = stack.enter_context(
            process(
                [str(LITELLM_PYTHON), str(HERE / "litellm_server.py"), sandbox, str(port)],
                {"BENCH_OPENAI_KEY": OPENAI_PRACTICE_KEY, "BENCH_LITELLM_MASTER_KEY": LITELLM_MASTER_KEY},
                litellm_log,
                first_line=False,
            )
        )
        litellm_url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{litellm_url}/health/liveliness", litellm, litellm_log)
        sides = [
            Side("direct", f"{sandbox}/v1/chat/completions", f"Bearer {OPENAI_PRACTICE_KEY}"),
            Side("gateway", f"{gateway['url']}/v1/chat/completions", f"Bearer {gateway['token']}"),
            Side("litellm", f"{litellm_url}/v1/chat/completions", f"Bearer {LITELLM_MASTER_KEY}"),
            Side("sketch", f"{sketch['url']}/v1/chat/completions", f"Bearer {sketch['token']}"),
        ]
        figures = [overhead_figure(rounds(sides, Side.chat), core_count)]
        figures.append(first_chunk_figure(rounds(sides, Side.first_chunk)))
        for side in sides:
            side.client.close()

        rates: dict[str, list[float]] = {side.name: [] for side in sides}
        failed: dict[str, int] = dict.fromkeys(rates, 0)
        for number in range(LOAD_ROUNDS):
            for side in sides if number % 2 == 0 else list(reversed(sides)):
                options = ("--seconds", str(LOAD_SECONDS), "--warmup", str(LOAD_WARMUP))
                result = run_load(side.url, side.authorization, CHAT, *options)
                rates[side.name].append(result["per_second"])
                failed[side.name] += result["failed"]
        figures.append(throughput_figure(rates, failed, core_count))

        figures.append(memory_figure(memory_growth(gateway["pid"], sides[1].url, sides[1].authorization)))
    emit(figures)


if __name__ == "__main__":
    main()
