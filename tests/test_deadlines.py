"""Every AI call and every check has an overall deadline and a cap on its answer's size.

Against the sandbox's misbehaving endpoints (real sockets on 127.0.0.1): one that sends its
answer one byte a second (its body, or its headers too), one that sends 1 GiB, one that
declares 1 GiB in ``Content-Length``. A trickle ends at the deadline with ``timeout``
(httpx's timeout, per read, would never trip); a huge answer is refused, never buffered.
Each blocking call runs in a daemon thread with a guard, so a hang fails the test instead of
blocking the suite. Bounds are generous: "within twice the deadline", "under 100 MB".
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

import ai_admin_widgets as aiw
from ai_admin_widgets import ai
from ai_admin_widgets.models import Timeouts
from ai_admin_widgets.verify import verify

GUARD_SECONDS = 20.0
MB = 1024 * 1024


def guarded(call: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    """Run ``call`` in a daemon thread: (its result, what it raised, seconds it took); fails the test on a hang."""
    done: queue.Queue = queue.Queue()
    started = time.monotonic()

    def run() -> None:
        try:
            done.put((call(), None))
        except BaseException as error:  # handed to the test
            done.put((None, error))

    threading.Thread(target=run, daemon=True).start()
    try:
        result, error = done.get(timeout=GUARD_SECONDS)
    except queue.Empty:
        pytest.fail(f"still waiting after {GUARD_SECONDS:g} seconds: no overall deadline")
    return result, error, time.monotonic() - started


def store_unchecked(settings: aiw.AISettings, integration) -> None:
    """Store credentials without authenticating them (the endpoint misbehaves only later, say)."""
    settings.store.save(integration, actor=settings.user, models={"language": None, "embeddings": None})


def openai_at(sandbox, endpoint: str, **fields) -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=f"{endpoint}/v1", **fields)


def azure_at(sandbox, endpoint: str) -> aiw.AzureOpenAIIntegration:
    return aiw.AzureOpenAIIntegration.shared(
        endpoint_url=endpoint,
        api_key=sandbox.azure_api_key,
        language_deployment_id=sandbox.azure_deployments["language"],
        embeddings_deployment_id=sandbox.azure_deployments["embeddings"],
    )


def trickling(sandbox, kind: str) -> str:
    return sandbox.trickling_endpoint if kind == "body" else sandbox.trickling_headers_endpoint


# --------------------------------------------------------------------------- #
# ai.chat / ai.embed
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", ["body", "headers"])
def test_a_chat_answer_trickled_one_byte_a_second_ends_at_the_deadline(settings, sandbox, kind):
    store_unchecked(settings, openai_at(sandbox, trickling(sandbox, kind)))
    with ai.AIClient(settings, timeout=2) as client:
        _, error, took = guarded(lambda: client.chat("hi"))
    assert isinstance(error, ai.AIRequestFailed), error
    assert error.code is aiw.FailureCode.TIMEOUT
    assert "did not answer within 2 seconds" in str(error)
    assert took < 4  # twice the deadline


@pytest.mark.parametrize("kind", ["body", "headers"])
def test_an_async_chat_answer_trickled_ends_at_the_deadline(settings, sandbox, kind):
    store_unchecked(settings, azure_at(sandbox, trickling(sandbox, kind)))

    async def call() -> None:
        client = ai.AIClient(settings, timeout=2)
        try:
            await client.chat_async("hi")
        finally:
            await client.aclose()

    _, error, took = guarded(lambda: asyncio.run(call()))
    assert isinstance(error, ai.AIRequestFailed) and error.code is aiw.FailureCode.TIMEOUT, error
    assert took < 4


def test_the_deadline_is_the_settings_request_limit_by_default(tmp_path, file_keyring, sandbox):
    settings = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring, timeouts=Timeouts(request=1.5))
    store_unchecked(settings, openai_at(sandbox, sandbox.trickling_endpoint))
    _, error, took = guarded(lambda: ai.chat("hi", settings=settings))
    assert isinstance(error, ai.AIRequestFailed) and error.code is aiw.FailureCode.TIMEOUT, error
    assert "1.5 seconds" in str(error) and took < 3


def test_a_rate_limit_whose_wait_outlasts_the_deadline_is_reported_at_once(settings, sandbox):
    integration = aiw.AzureOpenAIIntegration.shared(
        endpoint_url=sandbox.azure_endpoint,
        api_key=sandbox.azure_api_key,
        language_deployment_id="scenario-rate-limited",  # 429, retry after 200 ms, then an answer
        embeddings_deployment_id=sandbox.azure_deployments["embeddings"],
    )
    store_unchecked(settings, integration)
    with ai.AIClient(settings, timeout=0.15) as client, pytest.raises(ai.AIRequestFailed) as caught:
        client.chat("hi")
    assert caught.value.code is aiw.FailureCode.RATE_LIMITED  # not a wait past the deadline
    with ai.AIClient(settings, timeout=5) as client:
        assert client.chat("hi")  # time enough: the wait is honoured, then the answer


def test_a_huge_chat_answer_is_refused_not_buffered(settings, sandbox):
    endpoint = sandbox.huge_answer_endpoint
    store_unchecked(settings, openai_at(sandbox, endpoint))
    tracemalloc.start()
    try:
        _, error, _ = guarded(lambda: ai.chat("hi", settings=settings))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(error, ai.AIRequestFailed) and error.code is aiw.FailureCode.UNEXPECTED_RESPONSE, error
    assert "larger than 16 MiB" in str(error) and "[unexpected_response]" in str(error)
    assert peak < 100 * MB
    assert sandbox.misbehaving_bytes_sent(endpoint) < 200 * MB  # the client stopped reading long before 1 GiB


@pytest.mark.parametrize("call", ["chat", "embed"])
def test_a_huge_content_length_is_refused_before_reading(settings, sandbox, call):
    store_unchecked(settings, azure_at(sandbox, sandbox.huge_length_endpoint))
    with ai.AIClient(settings, timeout=10) as client:
        _, error, took = guarded(lambda: client.chat("hi") if call == "chat" else client.embed(["a", "b"]))
    assert isinstance(error, ai.AIRequestFailed) and error.code is aiw.FailureCode.UNEXPECTED_RESPONSE, error
    assert "larger than" in str(error)
    assert took < 5  # refused on the header, not after waiting for the body
    assert sandbox.azure_api_key.get_secret_value() not in str(error)


def test_the_embeddings_cap_grows_with_the_batch(tmp_path, file_keyring, sandbox):
    """Each text sent adds its allowance to the cap, so a batch's vectors fit however small the envelope's cap is."""
    integration = aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
    texts = [f"text {number}" for number in range(32)]
    for name, limits, fits in (
        ("default allowance", Timeouts(max_ai_answer_bytes=64 * 1024), True),  # 32 vectors: ~1 MB, far above 64 KiB
        ("1 KiB a text", Timeouts(max_ai_answer_bytes=64 * 1024, max_embedding_bytes=1024), False),
    ):
        settings = aiw.AISettings(home=tmp_path / name, keyring=file_keyring, timeouts=limits)
        store_unchecked(settings, integration)
        if fits:
            vectors = ai.embed(texts, settings=settings)
            assert len(vectors) == 32 and all(len(vector) == 1536 for vector in vectors)
        else:
            with pytest.raises(ai.AIRequestFailed, match="larger than 96 KiB"):
                ai.embed(texts, settings=settings)


# --------------------------------------------------------------------------- #
# Save's checks
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", ["body", "headers"])
def test_a_check_against_a_trickling_endpoint_ends_at_the_check_deadline(sandbox, kind):
    integration = openai_at(sandbox, trickling(sandbox, kind))
    report, error, took = guarded(lambda: verify(integration, timeouts=Timeouts(check=2)))
    assert error is None
    assert [check.code for check in report.checks] == [aiw.FailureCode.TIMEOUT] * 2
    assert took < 4


def test_a_check_against_a_huge_answer_is_refused_not_buffered(sandbox):
    integration = azure_at(sandbox, sandbox.huge_answer_endpoint)
    tracemalloc.start()
    try:
        report, error, _ = guarded(lambda: verify(integration))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error is None
    assert [check.code for check in report.checks] == [aiw.FailureCode.UNEXPECTED_RESPONSE] * 2
    assert all("larger than 1 MiB" in check.message for check in report.checks)
    assert peak < 100 * MB


def test_a_check_against_a_huge_content_length_is_refused_at_once(sandbox):
    integration = openai_at(sandbox, sandbox.huge_length_endpoint)
    report, error, took = guarded(lambda: verify(integration, timeouts=Timeouts(check=10)))
    assert error is None
    assert [check.code for check in report.checks] == [aiw.FailureCode.UNEXPECTED_RESPONSE] * 2
    assert "larger than 1 MiB" in report.checks[0].message and took < 5
