"""The gateway on its database: usage recording and budget checks on against off, on SQLite and on PostgreSQL,
and two replicas against one on PostgreSQL; every side measured in turns in one run.

Processes besides this one, all on the machine's cores (none pinned): the sandbox (``sandbox_server.py``,
0 ms latency); a PostgreSQL 15 cluster (tests/postgres.py's ``running_cluster``: Debian's binaries, run
as an unprivileged OS user in a temporary folder, ``fsync=off`` as for the tests); gateways
(``gateway_server.py``, each on the database it is given, its keys there too, as ``serve --db-url``):

* ``sqlite-on`` / ``sqlite-off``: each on a SQLite file of its own; ``-on`` with
  ``GatewayConfig.record_usage=True`` and generous budgets set (every call recorded and checked,
  none refused), ``-off`` with ``record_usage=False``;
* ``postgres-on`` / ``postgres-off``: the same, each on a PostgreSQL database of its own;
* two replicas, ``record_usage`` on and budgets set, on one more PostgreSQL database.

Where this version has no ``GatewayConfig.record_usage`` (or no ``set_budget``), the figures say
"not yet available" ("not available") and only the gateway as it is is measured.

Figures (``make bench BENCH=gateway-db``):

* overhead, per database: sequential ``POST /v1/chat/completions`` (bench_gateway's way: kept-alive
  httpx clients, rounds in turns, a side's round median minus direct's of the same round); the ratio
  is on over off;
* throughput, per database: 64 concurrent clients (load_client.py), on against off, in turns;
* replicas: 64 clients on one replica, then spread over two (client *i* to replica *i* mod 2, as a
  load balancer would), in turns: answers per second and the p50 / p99 latency.

Where an overhead goes: profile_gateway_db.py (cProfile of the same gateways, on against off).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import bench_gateway
from bench_gateway import HERE, Side, minus, process, rounds, run_load
from common import OPENAI_PRACTICE_KEY, ROOT, emit, figure, isolate_environment, milliseconds, sandbox_process

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "ping"}]}
CLIENTS = 64
LOAD_ROUNDS = 5
LOAD_SECONDS = 5.0
LOAD_WARMUP = 1.0
REPLICA_ROUNDS = 5

OVERHEAD_RATIO_TARGET = 1.2  # issue 13: at most 1.2x the overhead without usage recording and budget checks
DATABASES = ("sqlite", "postgres")
LABEL = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def record_usage_available() -> bool:
    """Whether this version's GatewayConfig has ``record_usage`` (the switch the benchmark measures)."""
    from ai_admin_widgets.gateway.app import GatewayConfig

    return "record_usage" in {field.name for field in dataclasses.fields(GatewayConfig)}


def postgres_available() -> bool:
    """Whether Debian's PostgreSQL binaries are installed (tests/postgres.py looks in the same place)."""
    from postgres import _postgres_bin

    return _postgres_bin() is not None


class Gateways:
    """The gateway processes of one run, started on demand: name -> their first line (url, token, pid, ...)."""

    def __init__(self, stack: ExitStack, sandbox: str, log: Any, crypt_key: str) -> None:
        self.stack, self.sandbox, self.log, self.crypt_key = stack, sandbox, log, crypt_key
        self.started: dict[str, dict[str, Any]] = {}

    def start(self, name: str, db_url: str, *, record: bool) -> dict[str, Any]:
        """A gateway on ``db_url``: usage recorded and budgets set (``record``) or not (``--record-usage off``)."""
        options = ["--record-usage", "on" if record else "off"]
        if record:
            options.append("--budgets")
        environment = {
            "BENCH_OPENAI_KEY": OPENAI_PRACTICE_KEY,
            "BENCH_DB_URL": db_url,
            "AI_ADMIN_CRYPT_KEY": self.crypt_key,
        }
        line = self.stack.enter_context(
            process(
                [sys.executable, str(HERE / "gateway_server.py"), self.sandbox, *options],
                environment,
                self.log,
                first_line=True,
            )
        )
        self.started[name] = line
        return line

    def side(self, name: str) -> Side:
        line = self.started[name]
        return Side(name, f"{line['url']}/v1/chat/completions", f"Bearer {line['token']}")


def state(line: dict[str, Any]) -> str:
    """What was in force in a gateway: its usage recording and its budgets, in words."""
    return f"record_usage {line['record_usage']}; budgets {line['budgets']}"


def overhead_figure(
    database: str, times: dict[str, list[float]], switch: bool, lines: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    on = minus(times[f"{database}-on"], times["direct"])
    off = minus(times[f"{database}-off"], times["direct"]) if switch else None
    medians = ", ".join(f"{name} {milliseconds(statistics.median(values))}" for name, values in times.items())
    how = (
        f"Sequential, one kept-alive httpx.Client per side, the sandbox at 0 ms latency; {bench_gateway.ROUNDS} rounds "
        f"of {bench_gateway.PER_ROUND} requests per side, the sides in turns (the order reversed every other round), "
        f"after {bench_gateway.PER_ROUND // 2} untimed requests each; a run is one round's median minus direct's of the same round. Medians of the rounds: "
        f"{medians}. With: {state(lines[f'{database}-on'])}."
    )
    if not switch:
        how += (
            " GatewayConfig.record_usage is not yet available in this version, so only the gateway as it is "
            "(its usage appended to usage.jsonl) was measured, and there is no ratio."
        )
    # A ratio only over a positive overhead without them (a median at or below direct's is noise, not a figure).
    ratio = statistics.median(on) / statistics.median(off) if off and statistics.median(off) > 0 else None
    return figure(
        f"gateway on {LABEL[database]}: overhead with usage and budgets",
        ours=f"the gateway's time per chat completion minus direct, on {LABEL[database]}, usage recorded and budgets checked",
        measured=on,
        baseline=f"the same gateway on {LABEL[database]} with record_usage=False (no usage row, no budget check)"
        if switch
        else None,
        baseline_measured=off,
        ratio=ratio,
        met=None if ratio is None else ratio <= OVERHEAD_RATIO_TARGET,
        target=f"ratio ≤ {OVERHEAD_RATIO_TARGET:g}" + ("" if switch else " (record_usage not yet available)"),
        how=how,
        miss=(
            f"Usage recording and budget checks make the overhead {ratio or 0:.2f}x "
            f"(on {milliseconds(statistics.median(on))}, off {milliseconds(statistics.median(off or [0]))}). Where the "
            f"extra time goes: `.venv/bin/python benchmarks/profile_gateway_db.py{' --postgres' if database == 'postgres' else ''}` "
            "(cProfile of the gateway's threads, on against off); what would close it is in what that shows, "
            "typically fewer database round trips per call (the budget check and the usage row in one transaction, "
            "or the rows written in batches off the call's path)."
        )
        if off
        else "",
        extra={"record_usage": lines[f"{database}-on"]["record_usage"], "budgets": lines[f"{database}-on"]["budgets"]},
    )


def throughput_figure(
    database: str, rates: dict[str, list[float]], failed: dict[str, int], switch: bool, lines: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    on, off = rates[f"{database}-on"], rates.get(f"{database}-off") if switch else None
    failures = ", ".join(f"{name} {count}" for name, count in failed.items() if name.startswith(database))
    return figure(
        f"gateway on {LABEL[database]}: throughput with usage and budgets, 64 clients",
        ours=f"answers per second, {CLIENTS} concurrent clients, on {LABEL[database]}, usage recorded and budgets checked",
        measured=on,
        baseline=f"the same gateway on {LABEL[database]} with record_usage=False" if switch else None,
        baseline_measured=off,
        unit="req/s",
        at_most=None,
        met=(statistics.median(on) / statistics.median(off) >= 1 / OVERHEAD_RATIO_TARGET) if off else None,
        target=f"ratio ≥ {1 / OVERHEAD_RATIO_TARGET:.2f} (1 / {OVERHEAD_RATIO_TARGET:g})"
        + ("" if switch else " (record_usage not yet available)"),
        how=(
            f"The load generator (load_client.py, a process of its own: one aiohttp session, {CLIENTS} tasks on "
            f"kept-alive connections); {LOAD_WARMUP:g} s of load, then {LOAD_SECONDS:g} s counted; {LOAD_ROUNDS} "
            f"rounds, the sides in turns. The sandbox, the gateways, PostgreSQL and the load generator share the "
            f"cores. Answers other than 200 (not counted): {failures}. With: {state(lines[f'{database}-on'])}."
        ),
        miss=(
            f"On {statistics.median(on):.0f} req/s against off {statistics.median(off):.0f} req/s. Where the time "
            f"goes: `.venv/bin/python benchmarks/profile_gateway_db.py{' --postgres' if database == 'postgres' else ''}` "
            "(cProfile, on against off)."
        )
        if off
        else "",
        extra={"record_usage": lines[f"{database}-on"]["record_usage"], "budgets": lines[f"{database}-on"]["budgets"]},
    )


def replica_figures(results: dict[str, list[dict[str, Any]]], line: dict[str, Any], cores: str) -> list[dict[str, Any]]:
    one, two = results["one"], results["two"]
    split = [result["per_url"] for result in two]

    def median_of(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(result.get(key, 0.0) for result in runs)

    cpu = (
        f"The machine's CPU was busy {median_of(one, 'machine_busy'):.0%} of the time with one replica, "
        f"{median_of(two, 'machine_busy'):.0%} with two (medians of the runs; every process on it, other developers' "
        f"included); the replicas' own CPU time per answer: {median_of(one, 'cpu_ms_per_answer'):.1f} ms with one, "
        f"{median_of(two, 'cpu_ms_per_answer'):.1f} ms with two."
    )
    how = (
        f"Two gateway processes on one PostgreSQL database (each its own port), {state(line)}. {CLIENTS} concurrent "
        f"clients (load_client.py) on one replica, then the same {CLIENTS} spread over both (client i to replica "
        f"i mod 2, as a load balancer would); {LOAD_WARMUP:g} s of load, then {LOAD_SECONDS:g} s counted; "
        f"{REPLICA_ROUNDS} rounds, in turns. Answers per replica with two, per round: {split}. The machine: {cores}, "
        "shared by both replicas, PostgreSQL, the sandbox and the load generator (and other developers' work), so "
        "two replicas cannot show more than about 2x here, and may show less; on separate machines each replica "
        f"would have its cores to itself. {cpu}"
    )
    figures = [
        figure(
            "gateway on PostgreSQL: 2 replicas vs 1, throughput, 64 clients",
            ours=f"answers per second, {CLIENTS} clients spread over 2 replicas on one PostgreSQL",
            measured=[result["per_second"] for result in two],
            baseline=f"the same {CLIENTS} clients on 1 replica",
            baseline_measured=[result["per_second"] for result in one],
            unit="req/s",
            target="reported (at most about 2x on 2 cores)",
            how=how,
        )
    ]
    for key, label in (("p50_seconds", "p50"), ("p99_seconds", "p99")):
        figures.append(
            figure(
                f"gateway on PostgreSQL: 2 replicas vs 1, {label} latency, 64 clients",
                ours=f"the {label} of the answers' latencies, {CLIENTS} clients over 2 replicas",
                measured=[result[key] for result in two],
                baseline="the same on 1 replica",
                baseline_measured=[result[key] for result in one],
                target="reported",
                how=f"Each answer's time from sending to read whole, in the counted window of the same runs; {label} of each run.",
            )
        )
    return figures


def machine_ticks() -> tuple[int, int]:
    """The machine's CPU time so far, in clock ticks: (busy, all), from /proc/stat's first line."""
    fields = [int(number) for number in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return sum(fields) - idle, sum(fields)


def process_seconds(pids: list[int]) -> float:
    """The CPU seconds (user and system) the processes ``pids`` have used so far, from /proc/<pid>/stat."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return ticks / os.sysconf("SC_CLK_TCK")


def load_round(
    sides: list[tuple[str, str, str]], rounds_: int, pids: list[int] | None = None
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """``rounds_`` rounds of load on each (name, url(s), authorization(s)), in turns; their load_client answers.

    With ``pids`` (the servers measured), each answer also has ``machine_busy`` (the fraction of the machine's
    CPU time that was not idle during the run) and ``cpu_ms_per_answer`` (those processes' CPU time over every
    answer of the run, the warm-up's included).
    """
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in sides}
    failed = dict.fromkeys(results, 0)
    for number in range(rounds_):
        for name, url, authorization in sides if number % 2 == 0 else list(reversed(sides)):
            busy, total = machine_ticks()
            used = process_seconds(pids or [])
            result = run_load(
                url, authorization, CHAT, "--seconds", str(LOAD_SECONDS), "--warmup", str(LOAD_WARMUP), clients=CLIENTS
            )
            if pids:
                busy_after, total_after = machine_ticks()
                answers = max(1, sum(result["statuses"].values()))
                result["machine_busy"] = (busy_after - busy) / max(1, total_after - total)
                result["cpu_ms_per_answer"] = (process_seconds(pids) - used) * 1000 / answers
            results[name].append(result)
            failed[name] += result["failed"]
    return results, failed


def main() -> None:
    isolate_environment()
    sys.path.insert(0, str(ROOT / "tests"))  # tests/postgres.py: the tests' temporary PostgreSQL cluster
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = f"{usable} cores, shared by every process, none pinned"
    switch = record_usage_available()
    with_postgres = postgres_available()
    databases = DATABASES if with_postgres else ("sqlite",)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ai-admin-bench-gateway-db-")))
        log = stack.enter_context(open(folder / "gateways.log", "w+", encoding="utf-8"))
        sandbox = stack.enter_context(sandbox_process(latency_ms=0))
        urls = {"sqlite-on": f"sqlite:///{folder}/on.sqlite", "sqlite-off": f"sqlite:///{folder}/off.sqlite"}
        if with_postgres:
            from postgres import running_cluster

            cluster = stack.enter_context(running_cluster())
            for name in ("on", "off", "replicas"):
                cluster.admin(f"CREATE DATABASE bench_{name}")
            urls |= {"postgres-on": cluster.url("bench_on"), "postgres-off": cluster.url("bench_off")}
        gateways = Gateways(stack, sandbox, log, secrets.token_hex(32))
        for database in databases:
            gateways.start(f"{database}-on", urls[f"{database}-on"], record=True)
            if switch:
                gateways.start(f"{database}-off", urls[f"{database}-off"], record=False)
        sides = [Side("direct", f"{sandbox}/v1/chat/completions", f"Bearer {OPENAI_PRACTICE_KEY}")]
        sides += [gateways.side(name) for name in gateways.started]
        times = rounds(sides, Side.chat)
        for side in sides:
            side.client.close()
        figures = [overhead_figure(database, times, switch, gateways.started) for database in databases]

        loads, failed = load_round([(side.name, side.url, side.authorization) for side in sides[1:]], LOAD_ROUNDS)
        rates = {name: [result["per_second"] for result in results] for name, results in loads.items()}
        figures += [throughput_figure(database, rates, failed, switch, gateways.started) for database in databases]

        if with_postgres:
            first = gateways.start("replica-1", cluster.url("bench_replicas"), record=True)
            second = gateways.start("replica-2", cluster.url("bench_replicas"), record=True)
            one, two = gateways.side("replica-1"), gateways.side("replica-2")
            replicas, _ = load_round(
                [
                    ("one", one.url, one.authorization),
                    ("two", f"{one.url},{two.url}", f"{one.authorization}\n{two.authorization}"),
                ],
                REPLICA_ROUNDS,
                pids=[first["pid"], second["pid"]],
            )
            one.client.close()
            two.client.close()
            figures += replica_figures(
                replicas, first | {"budgets": f"{first['budgets']} / {second['budgets']}"}, cores
            )
        else:
            figures.append(
                figure(
                    "gateway on PostgreSQL: not measured",
                    ours="PostgreSQL's binaries (/usr/lib/postgresql/*/bin) are not installed: apt-get install postgresql",
                    measured=None,
                    target="—",
                )
            )
    emit(figures)


if __name__ == "__main__":
    main()
