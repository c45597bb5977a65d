"""Run one AI gateway in this process, against a sandbox of another, until standard input closes.

Usage: BENCH_OPENAI_KEY=sk-sandbox-… [BENCH_DB_URL=…] python benchmarks/gateway_server.py SANDBOX_URL
       [--aiohttp-upstream] [--record-usage on|off] [--budgets] [--profile FILE]

The gateway is :class:`~ai_admin_widgets.gateway.practice.Practice`'s: the gateway's own tornado
application (``make_app``) and a stand-in for the hub's token API, whose answer about a token
the gateway caches for 30 seconds as in production (so a benchmark's requests do not ask the
hub). It logs one line per request at INFO to standard error, as ``ai-admin gateway serve``
does. Once the OpenAI integration (base URL ``SANDBOX_URL/v1``, key ``$BENCH_OPENAI_KEY``, a sandbox key) is saved
through the admin API, it prints one JSON line, ``{"url", "token", "pid"}``: the gateway's
address, the practice analyst's token, and this process's id (to read its memory).

On a given database: ``$BENCH_DB_URL`` (a SQLAlchemy URL, from the environment so that its password
is not in the process's arguments) is opened with :func:`~ai_admin_widgets.gateway.db.open_database`
and given as ``GatewayConfig.engine``, and the keys are kept there (DatabaseKeyring, encrypted with
``$AI_ADMIN_CRYPT_KEY``), as ``ai-admin gateway serve --db-url`` does; without it the gateway uses its default, the SQLite file in
its folder. When the database already holds an integration (a second replica on the same
PostgreSQL), the integration is not saved again. ``--record-usage on|off`` sets
``GatewayConfig.record_usage`` where this version has that field (else the line says
``"not yet available"``); ``--budgets`` sets generous budgets (never reached) through the Settings
interface's ``set_budget``, so that every call is checked against them (the line says
``"not available"`` where the interface has no ``set_budget``). The JSON line also has
``"record_usage"`` and ``"budgets"``: what was in force.

``--profile FILE``: after the line ``profile`` on standard input, the gateway's event-loop thread and
its pool's threads run under cProfile; the statistics go to FILE when the input closes
(profile_gateway_db.py drives it).

``--aiohttp-upstream`` is an experiment, not the gateway: the call to the provider is made by
aiohttp instead of httpx (the answer passed on chunk by chunk as the gateway does, the happy path
only: no error mapping, deadline or cap), to measure what that change alone would save.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import inspect
import json
import logging
import os
import pstats
import sys
import threading
from types import SimpleNamespace
from typing import Any

import httpx
from common import isolate_environment

from ai_admin_widgets import OpenAIIntegration
from ai_admin_widgets.gateway.practice import Practice
from ai_admin_widgets.gateway.wire import integration_to_json


def use_aiohttp_upstream() -> None:
    """The experiment: the gateway's forwarding (``_ForwardHandler._forward``) with aiohttp, happy path only."""
    import aiohttp

    from ai_admin_widgets.gateway import v1

    sessions: dict[str, aiohttp.ClientSession] = {}

    async def forward(self: Any, route: Any, content: bytes, stream: bool, event: dict[str, Any]) -> None:
        if "session" not in sessions:
            sessions["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), trust_env=False)
        async with sessions["session"].post(str(route.url), data=content, headers=route.headers) as response:
            self.set_status(response.status)
            self.set_header("content-type", response.headers.get("content-type", "application/json"))
            async for chunk in response.content.iter_any():
                self.write(chunk)
                await self.flush()
        event.update(outcome="ok", code="ok", status=response.status)
        self._record()
        self.finish()

    v1._ForwardHandler._forward = forward  # type: ignore[method-assign]


#: Budgets far beyond what a benchmark spends, so that each call is checked and none refused.
GENEROUS_TOKENS = 10**12
GENEROUS_REQUESTS_PER_MINUTE = 10**9


def record_usage_config(wanted: str | None) -> tuple[dict[str, Any], str]:
    """The GatewayConfig fields for ``--record-usage``, and what to report: "on", "off" or "not yet available"."""
    from ai_admin_widgets.gateway.app import GatewayConfig

    if wanted is None:
        return {}, "default"
    if "record_usage" not in {field.name for field in dataclasses.fields(GatewayConfig)}:
        return {}, "not yet available"
    return {"record_usage": wanted == "on"}, wanted


#: The budgets set with ``--budgets``, as ``set_budget(scope, name, period, limit)`` takes them (the Settings
#: interface): every kind the gateway checks on a call of the practice analyst (group ``analysts``).
BUDGETS = (
    ("organization", "", "day", GENEROUS_TOKENS),
    ("organization", "", "month", GENEROUS_TOKENS),
    ("group", "analysts", "month", GENEROUS_TOKENS),
    ("user", "practice-analyst", "day", GENEROUS_TOKENS),
    ("user", "*", "minute", GENEROUS_REQUESTS_PER_MINUTE),
)


def set_budgets(url: str, admin_token: str) -> str:
    """Set BUDGETS through GatewaySettings' ``set_budget``; what to report ("set: …", "not available", "not set: …")."""
    from ai_admin_widgets.client import GatewaySettings

    settings = GatewaySettings(url, token=admin_token)
    set_budget = getattr(settings, "set_budget", None)
    if set_budget is None:
        return "not available"
    try:
        for budget in BUDGETS:
            set_budget(*budget)
    except Exception as error:  # reported in the figures, never a benchmark that stops
        return f"not set: set_budget{inspect.signature(set_budget)} refused {budget!r}: {error}"
    return "set: " + ", ".join(f"{scope} {name or '-'} per {period}" for scope, name, period, _ in BUDGETS)


def use_database(config: dict[str, Any], url: str, crypt_key: str) -> None:
    """The gateway on the database at ``url``, its keys there too (encrypted with ``crypt_key``), as ``serve --db-url``.

    Replicas given the same URL and key share the integration and its key, as two ``serve`` processes would.
    """
    from ai_admin_widgets.gateway import practice
    from ai_admin_widgets.gateway.crypt import multi_fernet, parse_crypt_keys
    from ai_admin_widgets.gateway.db import open_database
    from ai_admin_widgets.gateway.dbkeyring import DatabaseKeyring

    engine = open_database(url)
    config["engine"] = engine
    backend = DatabaseKeyring(engine, multi_fernet(parse_crypt_keys(crypt_key)))
    practice._practice_keyring = lambda path: backend  # type: ignore[attr-defined]


def main() -> None:
    isolate_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sandbox_url")
    parser.add_argument("--aiohttp-upstream", action="store_true")
    parser.add_argument("--record-usage", choices=("on", "off"), default=None)
    parser.add_argument("--budgets", action="store_true")
    parser.add_argument("--profile", metavar="FILE", default=None, help="cProfile statistics to FILE (see above)")
    arguments = parser.parse_args()
    sandbox_url, key = arguments.sandbox_url, os.environ["BENCH_OPENAI_KEY"]
    if arguments.aiohttp_upstream:
        use_aiohttp_upstream()
    # What serve() sets up: warnings for everything, one INFO line per request for the gateway.
    logging.basicConfig(level=logging.WARNING, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    logging.getLogger("ai_admin_widgets.gateway").setLevel(logging.INFO)
    config, record_usage = record_usage_config(arguments.record_usage)
    if os.environ.get("BENCH_DB_URL"):
        use_database(config, os.environ["BENCH_DB_URL"], os.environ["AI_ADMIN_CRYPT_KEY"])
    with Practice(sandbox=SimpleNamespace(openai_base_url=f"{sandbox_url}/v1"), **config) as practice:
        admin = {"authorization": f"token {practice.tokens['admin']}"}
        saved = httpx.get(f"{practice.gateway_url}/api/saved-fields", headers=admin, timeout=30, trust_env=False)
        if saved.status_code != 200 or saved.json() is None:
            integration = OpenAIIntegration(api_key=key, base_url=f"{sandbox_url}/v1")
            answer = httpx.post(
                f"{practice.gateway_url}/api/save",
                headers=admin,
                json={"integration": integration_to_json(integration)},
                timeout=30,
                trust_env=False,
            )
            if answer.status_code != 200:
                raise SystemExit(f"the gateway did not save the integration: HTTP {answer.status_code}")
        budgets = set_budgets(practice.gateway_url, practice.tokens["admin"]) if arguments.budgets else "none"
        line = {
            "url": practice.gateway_url,
            "token": practice.tokens["analyst"],
            "pid": os.getpid(),
            "record_usage": record_usage,
            "budgets": budgets,
        }
        print(json.dumps(line), flush=True)
        wait_for_the_end(practice, arguments.profile)


def wait_for_the_end(practice: Practice, profile: str | None) -> None:
    """Until the benchmark closes our input; with ``--profile``, the line ``profile`` starts cProfile.

    cProfile profiles the thread that enables it: one profiler runs in the gateway's event-loop thread
    and one in each thread of its pool (where its blocking work, database statements included, runs);
    their statistics, added up, are written to the ``--profile`` file when the input closes.
    """
    loop, pool = practice._loop, practice.gateway.pool
    profilers: list[cProfile.Profile] = []
    for command in sys.stdin:
        if profile and loop is not None and command.strip() == "profile" and not profilers:
            workers = pool._max_workers
            barrier = threading.Barrier(workers + 1)

            def enable() -> None:
                profiler = cProfile.Profile()
                profilers.append(profiler)
                profiler.enable()

            def enable_in_worker() -> None:
                enable()
                barrier.wait(10)  # every worker holds one task at once: one profiler per thread

            started = threading.Event()
            loop.call_soon_threadsafe(lambda: (enable(), started.set()))
            for _ in range(workers):
                pool.submit(enable_in_worker)
            barrier.wait(10)
            started.wait(10)
            print("profiling", flush=True)
    if profilers and loop is not None and profile:
        barrier = threading.Barrier(len(profilers))

        def disable_in_worker() -> None:
            sys.setprofile(None)
            barrier.wait(10)

        for _ in range(len(profilers) - 1):
            pool.submit(disable_in_worker)
        stopped = threading.Event()
        loop.call_soon_threadsafe(lambda: (sys.setprofile(None), stopped.set()))
        barrier.wait(10)
        stopped.wait(10)
        stats = pstats.Stats(profilers[0])
        for profiler in profilers[1:]:
            stats.add(profiler)
        stats.dump_stats(profile)


if __name__ == "__main__":
    main()
