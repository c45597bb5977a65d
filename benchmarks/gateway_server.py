"""Run one AI gateway in this process, against a sandbox of another, until standard input closes.

Usage: BENCH_OPENAI_KEY=sk-sandbox-… python benchmarks/gateway_server.py SANDBOX_URL [--aiohttp-upstream]

The gateway is :class:`~ai_admin_widgets.gateway.practice.Practice`'s: the gateway's own tornado
application (``make_app``) and a stand-in for the hub's token API, whose answer about a token
the gateway caches for 30 seconds as in production (so a benchmark's requests do not ask the
hub). It logs one line per request at INFO to standard error, as ``ai-admin gateway serve``
does. Once the OpenAI integration (base URL ``SANDBOX_URL/v1``, key ``$BENCH_OPENAI_KEY``, a sandbox key) is saved
through the admin API, it prints one JSON line, ``{"url", "token", "pid"}``: the gateway's
address, the practice analyst's token, and this process's id (to read its memory).

``--aiohttp-upstream`` is an experiment, not the gateway: the call to the provider is made by
aiohttp instead of httpx (the answer passed on chunk by chunk as the gateway does, the happy path
only: no error mapping, deadline or cap), to measure what that change alone would save.
"""

from __future__ import annotations

import json
import logging
import os
import sys
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


def main() -> None:
    isolate_environment()
    sandbox_url, key = sys.argv[1], os.environ["BENCH_OPENAI_KEY"]
    if "--aiohttp-upstream" in sys.argv[2:]:
        use_aiohttp_upstream()
    # What serve() sets up: warnings for everything, one INFO line per request for the gateway.
    logging.basicConfig(level=logging.WARNING, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    logging.getLogger("ai_admin_widgets.gateway").setLevel(logging.INFO)
    with Practice(sandbox=SimpleNamespace(openai_base_url=f"{sandbox_url}/v1")) as practice:
        integration = OpenAIIntegration(api_key=key, base_url=f"{sandbox_url}/v1")
        answer = httpx.post(
            f"{practice.gateway_url}/api/save",
            headers={"authorization": f"token {practice.tokens['admin']}"},
            json={"integration": integration_to_json(integration)},
            timeout=30,
            trust_env=False,
        )
        if answer.status_code != 200:
            raise SystemExit(f"the gateway did not save the integration: HTTP {answer.status_code}")
        line = {"url": practice.gateway_url, "token": practice.tokens["analyst"], "pid": os.getpid()}
        print(json.dumps(line), flush=True)
        sys.stdin.read()  # until the benchmark closes our input


if __name__ == "__main__":
    main()
