"""Save: the whole Save against one plain httpx request, with 200 ms of latency on each request.

The sandbox runs in a process of its own with ``latency_ms=200``. Our side is what
``settings.save(...)`` costs a Python cell: validating the fields (building the
integration model from the strings an admin types), authenticating both models, and
storing (keyring, record, audit log). The baseline is one request of the same kind
(Azure: the chat completions POST; OpenAI: the GET of the model) made with a plain
``httpx.Client`` that is kept open, i.e. what the network alone costs. A save that
checked the two models one after the other would be about 2; at once, about 1.
"""

from __future__ import annotations

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

LATENCY_MS = 200
RUNS = 11
TARGET = 1.25


def main() -> None:
    isolate_environment()
    import ai_admin_widgets as aiw
    from ai_admin_widgets.models import DEFAULT_AZURE_API_VERSION

    figures = []
    with sandbox_process(latency_ms=LATENCY_MS) as url, httpx.Client(trust_env=False, timeout=30) as plain:
        settings = fresh_settings()

        def save_azure() -> None:
            settings.save(
                aiw.AzureOpenAIIntegration.shared(
                    endpoint_url=url,
                    api_key=AZURE_PRACTICE_KEY,
                    language_deployment_id=AZURE_DEPLOYMENTS["language"],
                    embeddings_deployment_id=AZURE_DEPLOYMENTS["embeddings"],
                )
            )

        def request_azure() -> None:
            plain.post(
                f"{url}/openai/deployments/{AZURE_DEPLOYMENTS['language']}/chat/completions",
                params={"api-version": DEFAULT_AZURE_API_VERSION},
                headers={"api-key": AZURE_PRACTICE_KEY},
                json={"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1},
            ).raise_for_status()

        def save_openai() -> None:
            settings.save(aiw.OpenAIIntegration(api_key=OPENAI_PRACTICE_KEY, base_url=f"{url}/v1"))

        def request_openai() -> None:
            plain.get(f"{url}/v1/models/gpt-4o", headers={"authorization": f"Bearer {OPENAI_PRACTICE_KEY}"}).raise_for_status()

        for name, provider, save, request, what in (
            ("save-azure", "Azure OpenAI", save_azure, request_azure, "the chat completions POST"),
            ("save-openai", "OpenAI", save_openai, request_openai, "GET /v1/models/gpt-4o"),
        ):
            times = interleaved({"save": save, "request": request}, runs=RUNS)
            status = settings.status()
            assert status.configured and status.provider.label == provider, status
            overhead = sorted(times["save"])[RUNS // 2] - sorted(times["request"])[RUNS // 2]
            figures.append(
                figure(
                    name,
                    ours=f"settings.save({provider} integration): validate, authenticate both models, store",
                    measured=times["save"],
                    baseline=f"one plain httpx request ({what}) on an open httpx.Client",
                    baseline_measured=times["request"],
                    target=f"ratio ≤ {TARGET}",
                    at_most=TARGET,
                    how=(
                        f"Sandbox in its own process, {LATENCY_MS} ms of latency on every request; {RUNS} runs "
                        "of each, interleaved, after one untimed run each; every run is a whole save into a "
                        "file keyring in a temporary folder (a new revision each time). "
                        f"What Save adds beyond one request: {milliseconds(overhead)} (difference of the medians)."
                    ),
                    miss=(
                        f"Save costs {milliseconds(overhead)} more than one request. If that is close to "
                        f"{LATENCY_MS} ms, the checks ran one after the other: check `verify_async` (both checks "
                        "in one `asyncio.gather` on one client). Otherwise profile a save with the sandbox at "
                        "0 ms latency (`python -m cProfile`): the client's TLS context, the store's keyring and "
                        "file writes, and the status read afterwards are the usual costs."
                    ),
                )
            )
    emit(figures)


if __name__ == "__main__":
    main()
