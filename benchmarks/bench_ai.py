"""AI calls through the integration: 200 sequential ``ai.chat`` and ``ai.embed`` calls against plain httpx.

Our side: a saved integration (Azure OpenAI, then OpenAI), and 200 ``ai.chat(messages)``
calls followed by 200 ``ai.embed([text])`` calls, one after the other, as an analyst's
loop would make them. The baseline: the same 200 + 200 requests (same routes, headers
and bodies) made with one ``httpx.Client`` that stays open, each answer decoded with
``.json()`` (what the caller needs, and what ``ai.chat`` and ``ai.embed`` do). The sandbox
runs in its own process at 0 ms latency, so the figure shows what the integration adds
to each call (settings and keys read once and cached, the connection pool reused).

Without ``ai_admin_widgets.ai`` (an older checkout) the figure is reported as not measured.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any

import httpx
from common import (
    AZURE_DEPLOYMENTS,
    AZURE_PRACTICE_KEY,
    OPENAI_PRACTICE_KEY,
    emit,
    figure,
    fresh_settings,
    interleaved,
    isolate_environment,
    milliseconds,
    sandbox_process,
)

CALLS = 200
RUNS = 7
TARGET = 1.05
MESSAGES = [{"role": "user", "content": "ping"}]
TEXTS = ["ping"]
NOT_PRESENT = (
    "not measured: ai module not present (ai_admin_widgets.ai comes with issue 6; rerun `make bench` once it is merged)"
)


def load_ai_module() -> Any | None:
    """``ai_admin_widgets.ai``, or None when the package has no such module."""
    try:
        return importlib.import_module("ai_admin_widgets.ai")
    except ModuleNotFoundError as missing:
        if missing.name == "ai_admin_widgets.ai":
            return None
        raise


def bind_to(ai: Any, settings: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """How to point ``ai.chat`` / ``ai.embed`` at ``settings``.

    If they take a ``settings`` argument, it is passed; otherwise they read the
    organization's settings as ``AISettings()`` does, so ``AI_ADMIN_HOME`` is set to the
    benchmark's store and keyring's backend to the benchmark's file keyring.
    """
    if "settings" in inspect.signature(ai.chat).parameters:
        return lambda function: lambda *arguments: function(*arguments, settings=settings)
    import keyring

    os.environ["AI_ADMIN_HOME"] = str(settings.home)
    os.environ["AI_ADMIN_ALLOW_PLAINTEXT_KEYRING"] = "1"  # the benchmark's file keyring, in a temporary folder
    keyring.set_keyring(settings.store.keyring)
    return lambda function: function


def main() -> None:
    isolate_environment()
    ai = load_ai_module()
    names = ("ai-calls-azure", "ai-calls-openai")
    if ai is None:
        emit(
            [
                figure(
                    name,
                    ours=f"{CALLS} ai.chat + {CALLS} ai.embed calls",
                    measured=None,
                    target=f"ratio ≤ {TARGET}",
                    met=None,
                    how=NOT_PRESENT,
                )
                for name in names
            ]
        )
        return

    import ai_admin_widgets as aiw
    from ai_admin_widgets.models import DEFAULT_AZURE_API_VERSION

    figures = []
    with sandbox_process(latency_ms=0) as url, httpx.Client(trust_env=False, timeout=30) as plain:
        for name, provider in zip(names, ("azure", "openai")):
            settings = fresh_settings()
            if provider == "azure":
                settings.save(
                    aiw.AzureOpenAIIntegration.shared(
                        endpoint_url=url,
                        api_key=AZURE_PRACTICE_KEY,
                        language_deployment_id=AZURE_DEPLOYMENTS["language"],
                        embeddings_deployment_id=AZURE_DEPLOYMENTS["embeddings"],
                    )
                )
                base = f"{url}/openai/deployments"
                headers = {"api-key": AZURE_PRACTICE_KEY}
                params: dict[str, str] = {"api-version": DEFAULT_AZURE_API_VERSION}
                chat_request = (f"{base}/{AZURE_DEPLOYMENTS['language']}/chat/completions", {"messages": MESSAGES})
                embed_request = (f"{base}/{AZURE_DEPLOYMENTS['embeddings']}/embeddings", {"input": TEXTS})
            else:
                settings.save(aiw.OpenAIIntegration(api_key=OPENAI_PRACTICE_KEY, base_url=f"{url}/v1"))
                headers = {"authorization": f"Bearer {OPENAI_PRACTICE_KEY}"}
                params = {}
                chat_request = (f"{url}/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES})
                embed_request = (f"{url}/v1/embeddings", {"model": "text-embedding-3-small", "input": TEXTS})
            bound = bind_to(ai, settings)
            chat, embed = bound(ai.chat), bound(ai.embed)

            def through_the_integration() -> None:
                for _ in range(CALLS):
                    chat(MESSAGES)
                for _ in range(CALLS):
                    embed(TEXTS)

            def plain_httpx() -> None:
                for address, body in (chat_request, embed_request):
                    for _ in range(CALLS):
                        answer = plain.post(address, params=params, headers=headers, json=body)
                        answer.raise_for_status()
                        answer.json()  # what a caller needs: the answer decoded, as ai.chat and ai.embed return it

            times = interleaved({"ai": through_the_integration, "httpx": plain_httpx}, runs=RUNS)
            per_call = (sorted(times["ai"])[RUNS // 2] - sorted(times["httpx"])[RUNS // 2]) / (2 * CALLS)
            spread = max(times["httpx"]) - min(times["httpx"])
            figures.append(
                figure(
                    name,
                    ours=f"{CALLS} ai.chat + {CALLS} ai.embed calls through the saved {provider.replace('azure', 'Azure OpenAI').replace('openai', 'OpenAI')} integration",
                    measured=times["ai"],
                    baseline=f"the same {2 * CALLS} requests on one open httpx.Client, each answer decoded (.json())",
                    baseline_measured=times["httpx"],
                    target=f"ratio ≤ {TARGET}",
                    at_most=TARGET,
                    how=(
                        f"Sandbox in its own process at 0 ms latency; {RUNS} runs of each, interleaved, after one "
                        f"untimed run each. What the integration adds per call: {milliseconds(per_call)}."
                    ),
                    miss=(
                        f"Each call cost {milliseconds(per_call)} more than a plain request, while the plain requests' "
                        f"own runs spread over {milliseconds(spread / (2 * CALLS))} per call on this machine: the "
                        "difference is within the noise when the spread is larger. ai.py already reads settings and "
                        "keys only after a change (one stat of settings.json per call) and reuses one connection "
                        "pool; rerun `make bench` on a quiet machine (load below 1) to separate the two."
                    ),
                )
            )
    emit(figures)


if __name__ == "__main__":
    main()
