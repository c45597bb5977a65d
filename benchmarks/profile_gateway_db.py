"""Where a forwarded call's time goes, usage recording and budget checks on against off: cProfile of the gateway.

Usage: .venv/bin/python benchmarks/profile_gateway_db.py [--postgres] [--requests 2000] [--top 25]

Not a figure of RESULTS.md (a profiler slows what it measures): a tool for finding the cause of an
overhead that ``make bench BENCH=gateway-db`` shows. For each of two gateways (gateway_server.py,
``--record-usage on --budgets`` and ``--record-usage off``), on a SQLite file of its own or with
``--postgres`` on a database of a temporary PostgreSQL cluster (tests/postgres.py), it sends 200
untimed chat completions, then ``--requests`` more, one after another, with the gateway's event loop
and pool threads under cProfile, and prints per request: the wall time (profiled), then the
functions of the gateway, SQLAlchemy and the database drivers with the most cumulative time.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from common import OPENAI_PRACTICE_KEY, ROOT, isolate_environment, sandbox_process

HERE = Path(__file__).resolve().parent
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "ping"}]}
WARMUP = 200
#: Whose functions are listed: the gateway's, and its database's.
OURS = ("ai_admin_widgets", "sqlalchemy", "psycopg", "sqlite3")


def profile_one(
    sandbox: str, db_url: str, crypt_key: str, record: str, requests: int, folder: Path
) -> tuple[float, Path, str]:
    """Profile ``requests`` calls through a gateway on ``db_url``; the seconds per call, the stats file, what was on."""
    stats_file = folder / f"{record}.prof"
    log = open(folder / f"{record}.log", "w", encoding="utf-8")  # noqa: SIM115 (the gateway's request lines)
    options = ["--record-usage", record, "--profile", str(stats_file)] + (["--budgets"] if record == "on" else [])
    server = subprocess.Popen(
        [sys.executable, str(HERE / "gateway_server.py"), sandbox, *options],
        cwd=HERE,
        env=os.environ
        | {"BENCH_OPENAI_KEY": OPENAI_PRACTICE_KEY, "BENCH_DB_URL": db_url, "AI_ADMIN_CRYPT_KEY": crypt_key},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        line = json.loads(server.stdout.readline())
        with httpx.Client(trust_env=False, timeout=30, headers={"authorization": f"Bearer {line['token']}"}) as client:
            url = f"{line['url']}/v1/chat/completions"
            for _ in range(WARMUP):
                client.post(url, json=CHAT).raise_for_status()
            server.stdin.write("profile\n")
            server.stdin.flush()
            if server.stdout.readline().strip() != "profiling":
                raise RuntimeError("the gateway did not start its profiler")
            started = time.perf_counter()
            for _ in range(requests):
                client.post(url, json=CHAT).raise_for_status()
            elapsed = (time.perf_counter() - started) / requests
    finally:
        server.stdin.close()
        server.wait(timeout=60)
        log.close()
    return elapsed, stats_file, f"record_usage {line['record_usage']}; budgets {line['budgets']}"


def report(name: str, per_call: float, stats_file: Path, state: str, requests: int, top: int) -> None:
    stats = pstats.Stats(str(stats_file))
    rows = []
    for (path, number, function), (_, calls, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if any(part in path for part in OURS):
            short = path.split("site-packages/")[-1].removeprefix(f"{ROOT}/")
            rows.append((cumulative / requests, calls / requests, f"{short}:{number}({function})"))
    rows.sort(reverse=True)
    print(f"\n== record_usage {name} ({state}): {per_call * 1e3:.2f} ms per call, profiled, over {requests} calls")
    print(f"{'cumulative µs/call':>19} {'calls/call':>10}  function")
    for cumulative, calls, where in rows[:top]:
        print(f"{cumulative * 1e6:19.0f} {calls:10.1f}  {where}")


def main() -> None:
    isolate_environment()
    sys.path.insert(0, str(ROOT / "tests"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL (a temporary cluster) instead of SQLite")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    arguments = parser.parse_args()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ai-admin-profile-")))
        sandbox = stack.enter_context(sandbox_process(latency_ms=0))
        crypt_key = secrets.token_hex(32)
        urls = {record: f"sqlite:///{folder}/{record}.sqlite" for record in ("on", "off")}
        if arguments.postgres:
            from postgres import running_cluster

            cluster = stack.enter_context(running_cluster())
            for record in ("on", "off"):
                cluster.admin(f"CREATE DATABASE profile_{record}")
                urls[record] = cluster.url(f"profile_{record}")
        for record in ("off", "on"):
            per_call, stats_file, state = profile_one(
                sandbox, urls[record], crypt_key, record, arguments.requests, folder
            )
            report(record, per_call, stats_file, state, arguments.requests, arguments.top)


if __name__ == "__main__":
    main()
