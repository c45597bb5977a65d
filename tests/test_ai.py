"""AI for analysts (ai.chat, ai.embed) through the saved integration, against the sandbox over real sockets.

Both providers, batching and its order, the allow-list, AI switched off, remote failures and
their messages (never a key), and the cache of settings and keys, which must follow every
change: from the same settings object, another one, and another process.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback

import pytest
from keyrings.alt.file import PlaintextKeyring

import ai_admin_widgets as aiw
from ai_admin_widgets import ai
from ai_admin_widgets.sandbox import EMBEDDING_DIMENSIONS


class CountingKeyring(PlaintextKeyring):
    """A file keyring that counts the keys read from it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        return super().get_password(service, username)


@pytest.fixture
def keyring(tmp_path) -> CountingKeyring:
    backend = CountingKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    return backend


@pytest.fixture
def settings(tmp_path, keyring) -> aiw.AISettings:
    return aiw.AISettings(home=tmp_path / "store", keyring=keyring)


def openai(sandbox, **fields) -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(**({"api_key": sandbox.openai_api_key, "base_url": sandbox.openai_base_url} | fields))


def azure(sandbox, *, key=None, language=None, api_version=None) -> aiw.AzureOpenAIIntegration:
    return aiw.AzureOpenAIIntegration.shared(
        endpoint_url=sandbox.azure_endpoint,
        api_key=key or sandbox.azure_api_key,
        language_deployment_id=language or sandbox.azure_deployments["language"],
        embeddings_deployment_id=sandbox.azure_deployments["embeddings"],
        api_version=api_version,
    )


def store_unchecked(settings: aiw.AISettings, integration) -> None:
    """Store credentials without authenticating them: a key revoked, or a model broken, after Save."""
    settings.store.save(integration, actor=settings.user, models={"language": None, "embeddings": None})


def paths(sandbox) -> list[str]:
    return [request["path"] for request in sandbox.requests]


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(value * value for value in vector))


# --------------------------------------------------------------------------- #
# Chat and embeddings through both providers
# --------------------------------------------------------------------------- #


def test_chat_through_openai_sends_the_saved_model_and_returns_the_text(settings, sandbox):
    settings.save(openai(sandbox))
    answer = ai.chat("What is a p-value?", settings=settings)
    assert answer == "Sandbox reply to: What is a p-value?"
    request = sandbox.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"] == {"messages": [{"role": "user", "content": "What is a p-value?"}], "model": "gpt-4o"}
    assert request["headers"]["authorization"] == "<redacted>"


def test_chat_sends_the_organization_and_project_headers_when_saved(settings, sandbox):
    settings.save(openai(sandbox, organization=sandbox.openai_organization, project=sandbox.openai_project))
    assert ai.chat("hi", settings=settings) == "Sandbox reply to: hi"
    headers = sandbox.requests[-1]["headers"]
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-sandbox", "proj_sandbox")


def test_chat_through_azure_uses_the_language_deployment_and_api_version(settings, sandbox):
    settings.save(azure(sandbox))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert ai.chat(messages, settings=settings, temperature=0) == "Sandbox reply to: Hello"
    request = sandbox.requests[-1]
    assert request["path"] == "/openai/deployments/chat-gpt-4o/chat/completions"
    assert request["query"] == {"api-version": ["2024-10-21"]}
    assert request["body"] == {"messages": messages, "temperature": 0}  # no model: the deployment decides
    assert request["headers"]["api-key"] == "<redacted>"


def test_chat_and_embed_through_the_azure_v1_api_name_the_deployment_as_the_model(settings, sandbox):
    settings.save(azure(sandbox, api_version="v1"))
    assert ai.chat("Hello", settings=settings) == "Sandbox reply to: Hello"
    chat = sandbox.requests[-1]
    assert chat["path"] == "/openai/v1/chat/completions" and chat["query"] == {}
    assert chat["body"]["model"] == "chat-gpt-4o"
    (vector,) = ai.embed(["hello"], settings=settings)
    embeddings = sandbox.requests[-1]
    assert embeddings["path"] == "/openai/v1/embeddings" and embeddings["body"]["model"] == "embeddings-3-small"
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)


def test_full_chat_result_has_the_model_usage_and_whole_response(settings, sandbox):
    settings.save(azure(sandbox))
    result = ai.chat("one two three four", settings=settings, full=True, max_tokens=3)
    assert isinstance(result, ai.ChatResult)
    assert result.text == str(result) == "Sandbox reply to:"
    assert result.model == "gpt-4o-2024-08-06"
    assert result.finish_reason == "length"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (4, 3, 7)
    assert result.request_id and result.response["choices"][0]["message"]["content"] == result.text


def test_reasoning_models_get_max_completion_tokens_for_max_tokens(settings, sandbox):
    settings.save(azure(sandbox, language="reasoning-o3-mini", api_version="2024-12-01-preview"))
    assert ai.chat("one two three", settings=settings, max_tokens=2) == "Sandbox reply"
    assert (
        sandbox.requests[-1]["body"]["max_completion_tokens"] == 2 and "max_tokens" not in sandbox.requests[-1]["body"]
    )


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_embed_returns_one_deterministic_unit_vector_per_text(settings, sandbox, provider):
    settings.save(openai(sandbox) if provider == "openai" else azure(sandbox))
    vectors = ai.embed(["a cat sat", "a dog ran", "a cat sat"], settings=settings)
    assert [len(vector) for vector in vectors] == [EMBEDDING_DIMENSIONS] * 3 == [1536] * 3
    assert vectors[0] == vectors[2] != vectors[1]
    assert all(abs(norm(vector) - 1) < 1e-9 for vector in vectors)
    request = sandbox.requests[-1]
    if provider == "openai":
        assert request["path"] == "/v1/embeddings" and request["body"]["model"] == "text-embedding-3-small"
    else:
        assert request["path"] == "/openai/deployments/embeddings-3-small/embeddings"
    assert ai.embed("a cat sat", settings=settings) == [vectors[0]]  # one text: a list of one vector


def test_embed_with_fewer_dimensions(settings, sandbox):
    settings.save(openai(sandbox))
    (vector,) = ai.embed(["short vectors"], settings=settings, dimensions=256)
    assert len(vector) == 256 and abs(norm(vector) - 1) < 1e-9
    assert sandbox.requests[-1]["body"]["dimensions"] == 256


# --------------------------------------------------------------------------- #
# Batches: order and concurrency
# --------------------------------------------------------------------------- #


def first_batch_slowest(request) -> float:
    """Milliseconds to wait: the batch holding "text 0" answers last of all."""
    body = request["body"] or {}
    return 400 if "text 0" in (body.get("input") or []) else 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_embed_keeps_input_order_when_batches_finish_out_of_order(tmp_path, keyring, mode):
    texts = [f"text {number}" for number in range(9)]
    with aiw.Sandbox(latency_ms=first_batch_slowest) as sandbox:
        settings = aiw.AISettings(home=tmp_path / "store", keyring=keyring)
        settings.save(openai(sandbox))
        one_by_one = [ai.embed([text], settings=settings)[0] for text in texts]
        sandbox.requests.clear()
        with ai.AIClient(settings, batch_size=2, concurrency=4) as client:
            vectors = client.embed(texts) if mode == "sync" else asyncio.run(client.embed_async(texts))
        batches = [request["body"]["input"] for request in sandbox.requests]
    assert sorted(batches) == [texts[0:2], texts[2:4], texts[4:6], texts[6:8], texts[8:9]]
    assert vectors == one_by_one  # though the batch of texts 0 and 1 was answered last


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_embed_never_has_more_batches_in_flight_than_its_concurrency(tmp_path, keyring, mode):
    lock = threading.Lock()
    in_flight = [0]
    peak = [0]

    def count(request) -> float:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.1)  # the answer waits here, so overlapping requests overlap here
        with lock:
            in_flight[0] -= 1
        return 0

    with aiw.Sandbox(latency_ms=count) as sandbox:
        settings = aiw.AISettings(home=tmp_path / "store", keyring=keyring)
        settings.save(openai(sandbox))
        peak[0] = 0
        texts = [f"text {number}" for number in range(12)]
        if mode == "sync":
            vectors = ai.embed(texts, settings=settings, batch_size=2, concurrency=2)
        else:
            vectors = asyncio.run(ai.embed_async(texts, settings=settings, batch_size=2, concurrency=2))
    assert len(vectors) == 12
    assert peak[0] == 2


def test_embed_of_nothing_sends_nothing(settings, sandbox):
    settings.save(openai(sandbox))
    sent = len(sandbox.requests)
    assert ai.embed([], settings=settings) == []
    assert len(sandbox.requests) == sent


# --------------------------------------------------------------------------- #
# AI switched off, and who may use it
# --------------------------------------------------------------------------- #


def test_ai_is_disabled_before_an_integration_is_configured_and_after_remove(settings, sandbox):
    for call in (lambda: ai.chat("hi", settings=settings), lambda: ai.embed(["hi"], settings=settings)):
        with pytest.raises(aiw.AIDisabled) as caught:
            call()
        assert str(caught.value).startswith(
            "AI functionality is disabled: no OpenAI integration is configured; ask an admin"
        )
    assert sandbox.requests == []

    settings.save(openai(sandbox))
    assert ai.chat("hi", settings=settings)
    settings.remove()
    sent = len(sandbox.requests)
    with pytest.raises(aiw.AIDisabled, match="no OpenAI integration is configured"):
        ai.chat("hi", settings=settings)
    with pytest.raises(aiw.AIDisabled):
        ai.embed(["hi"], settings=settings)
    assert len(sandbox.requests) == sent


def test_remove_from_another_settings_object_disables_ai_at_the_next_call(settings, tmp_path, keyring, sandbox):
    settings.save(openai(sandbox))
    client = ai.AIClient(settings)
    assert client.chat("hi")
    aiw.AISettings(home=tmp_path / "store", keyring=keyring).remove()
    with pytest.raises(aiw.AIDisabled):
        client.chat("hi")


def test_a_user_left_out_of_who_may_use_ai_is_told_to_ask_an_admin(settings, tmp_path, keyring, sandbox):
    settings.save(openai(sandbox))
    settings.set_allowed(users="alice")
    bob = aiw.AISettings(home=tmp_path / "store", keyring=keyring, user="bob")
    reads, sent = keyring.reads, len(sandbox.requests)
    with pytest.raises(ai.AINotAllowed) as caught:
        ai.chat("hi", settings=bob)
    assert isinstance(caught.value, aiw.AIDisabled)
    assert str(caught.value) == (
        "AI functionality is not enabled for 'bob': ask an admin to add you to \"Who may use AI\" in AI Settings."
    )
    with pytest.raises(aiw.AINotAllowed):
        ai.embed(["hi"], settings=bob)
    assert keyring.reads == reads  # a user who may not use the key never reads it
    assert len(sandbox.requests) == sent

    settings.set_allowed(users="alice, bob")  # another settings object: the next call sees it
    assert ai.chat("hi", settings=bob) == "Sandbox reply to: hi"


# --------------------------------------------------------------------------- #
# Remote failures: a clear message, never the key
# --------------------------------------------------------------------------- #


def test_a_rejected_key_fails_clearly_without_the_key(settings, sandbox, marker_key):
    store_unchecked(settings, openai(sandbox, api_key=marker_key))
    client = ai.AIClient(settings)
    with pytest.raises(ai.AIRequestFailed) as caught:
        client.chat("hi")
    failure = caught.value
    assert failure.code is aiw.FailureCode.INVALID_API_KEY
    assert (failure.role, failure.status) == ("language", 401)
    message = str(failure)
    assert message.startswith(f"The language model request failed: 127.0.0.1:{sandbox.port} rejected the API Key.")
    assert "Ask an admin to open AI Settings and press Test" in message and "[invalid_api_key]" in message
    inside = traceback.StackSummary.extract(traceback.walk_tb(failure.__traceback__.tb_next), capture_locals=True)
    with_locals = "".join(inside.format())  # the package's frames, as a verbose traceback in a kernel shows them
    assert "in chat" in with_locals and "route = " in with_locals
    for text in (message, repr(failure), repr(failure.args), repr(client), repr(settings), with_locals):
        assert marker_key not in text and marker_key[-12:] not in text


def test_a_rejected_azure_key_fails_for_embeddings_too(settings, sandbox, marker_key):
    azure_key = "0123456789abcdef" + marker_key[-16:]
    store_unchecked(settings, azure(sandbox, key=azure_key))
    with pytest.raises(ai.AIRequestFailed) as caught:
        ai.embed(["a", "b", "c"], settings=settings, batch_size=1)
    assert caught.value.code is aiw.FailureCode.INVALID_API_KEY and caught.value.role == "embeddings"
    assert str(caught.value).startswith("The embeddings model request failed:")
    assert azure_key not in str(caught.value) and marker_key[-16:] not in repr(caught.value)


@pytest.mark.parametrize(
    ("integration", "code", "advice"),
    [
        (
            lambda s: openai(s, api_key=s.openai_scenario_key("rate_limited")),
            aiw.FailureCode.RATE_LIMITED,
            "Wait 60 seconds and try again",
        ),
        (
            lambda s: openai(s, api_key=s.openai_scenario_key("quota_exceeded")),
            aiw.FailureCode.QUOTA_EXCEEDED,
            "add credit or raise the quota",
        ),
        (
            lambda s: openai(s, language_model="scenario-server-error"),
            aiw.FailureCode.SERVER_ERROR,
            "on the service's side",
        ),
        (lambda s: azure(s, language="no-such-deployment"), aiw.FailureCode.DEPLOYMENT_NOT_FOUND, "Ask an admin"),
        (
            lambda s: openai(s, language_model="scenario-proxy-html"),
            aiw.FailureCode.UNEXPECTED_RESPONSE,
            "Ask an admin",
        ),
        (
            lambda s: azure(s, language="scenario-content-filter"),
            aiw.FailureCode.CONTENT_REFUSED,
            "content filter refused the text: rephrase it",
        ),
        (
            lambda s: azure(s, language="scenario-firewall"),
            aiw.FailureCode.NETWORK_NOT_ALLOWED,
            "a new key would not help",
        ),
    ],
    ids=[
        "rate_limited",
        "quota_exceeded",
        "server_error",
        "deployment_not_found",
        "html_page",
        "content_refused",
        "network_not_allowed",
    ],
)
def test_remote_failures_are_classified_like_the_checks_and_say_what_to_do(
    settings, sandbox, integration, code, advice
):
    saved = integration(sandbox)
    store_unchecked(settings, saved)
    with pytest.raises(ai.AIRequestFailed) as caught:
        ai.chat("hi", settings=settings)
    assert caught.value.code is code
    assert advice in str(caught.value) and f"[{code.value}]" in str(caught.value)
    for key in saved.secrets().values():
        assert key.get_secret_value() not in str(caught.value)


def test_a_server_error_is_retried_once(settings, sandbox):
    store_unchecked(settings, openai(sandbox, language_model="scenario-server-error"))
    with pytest.raises(ai.AIRequestFailed):
        ai.chat("hi", settings=settings)
    assert paths(sandbox).count("/v1/chat/completions") == 2


def test_an_answer_that_never_comes_is_a_timeout_after_the_clients_limit(settings, sandbox):
    store_unchecked(settings, openai(sandbox, language_model="scenario-slow"))
    with ai.AIClient(settings, timeout=0.3) as client, pytest.raises(ai.AIRequestFailed) as caught:
        client.chat("hi")
    assert caught.value.code is aiw.FailureCode.TIMEOUT
    assert "did not answer within 0.3 seconds" in str(caught.value) and "longer timeout" in str(caught.value)


def test_a_refused_request_quotes_the_service(settings, sandbox):
    settings.save(openai(sandbox))
    with pytest.raises(ai.AIRequestFailed) as caught:
        ai.embed(["hello"], settings=settings, dimensions=5000)
    message = str(caught.value)
    assert caught.value.status == 400
    assert "refused the request (HTTP 400)" in message and "dimensions must be a whole number from 1 to 1536" in message


# --------------------------------------------------------------------------- #
# The cache: settings and keys read once, and read again after any change
# --------------------------------------------------------------------------- #


def test_the_key_is_read_once_and_one_connection_is_reused(settings, keyring, sandbox):
    settings.save(openai(sandbox))
    client = ai.AIClient(settings)
    reads = keyring.reads
    sent = len(sandbox.requests)
    for number in range(5):
        client.chat(f"question {number}")
    client.embed(["a", "b"])
    assert keyring.reads == reads + 1  # OpenAI's one key, once
    ports = {request["client_port"] for request in sandbox.requests[sent:]}
    assert len(ports) == 1


def test_a_new_save_through_the_same_settings_switches_the_next_call(settings, keyring, sandbox):
    settings.save(openai(sandbox))
    client = ai.AIClient(settings)
    client.chat("first")
    settings.save(azure(sandbox))
    client.chat("second")
    assert sandbox.requests[-1]["path"] == "/openai/deployments/chat-gpt-4o/chat/completions"


def test_a_save_through_another_settings_object_switches_the_next_call(settings, tmp_path, keyring, sandbox):
    settings.save(azure(sandbox))
    client = ai.AIClient(settings)
    client.embed(["first"])
    other = aiw.AISettings(home=tmp_path / "store", keyring=keyring)
    other.save(openai(sandbox))
    client.embed(["second"])
    assert sandbox.requests[-1]["path"] == "/v1/embeddings"


CHILD_SAVE = textwrap.dedent(
    """
    import os
    from keyrings.alt.file import PlaintextKeyring
    import ai_admin_widgets as aiw

    keyring = PlaintextKeyring()
    keyring.file_path = os.environ["TEST_KEYRING_FILE"]
    settings = aiw.AISettings(home=os.environ["TEST_HOME"], keyring=keyring)
    settings.save(aiw.AzureOpenAIIntegration.shared(
        endpoint_url=os.environ["TEST_ENDPOINT"], api_key=os.environ["TEST_AZURE_KEY"],
        language_deployment_id="chat-gpt-4o", embeddings_deployment_id="embeddings-3-small",
    ))
    """
)


def test_a_save_by_another_process_switches_the_next_call(settings, keyring, sandbox):
    settings.save(openai(sandbox))
    client = ai.AIClient(settings)
    client.chat("first")
    env = os.environ | {
        "TEST_KEYRING_FILE": keyring.file_path,
        "TEST_HOME": str(settings.home),
        "TEST_ENDPOINT": sandbox.azure_endpoint,
        "TEST_AZURE_KEY": sandbox.azure_api_key.get_secret_value(),
    }
    done = subprocess.run([sys.executable, "-c", CHILD_SAVE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    client.chat("second")
    assert sandbox.requests[-1]["path"] == "/openai/deployments/chat-gpt-4o/chat/completions"


# --------------------------------------------------------------------------- #
# Event loops, module functions, input mistakes
# --------------------------------------------------------------------------- #


def test_blocking_calls_work_inside_a_running_event_loop_as_in_a_kernel(settings, sandbox):
    settings.save(openai(sandbox))

    async def cell():
        return ai.chat("from a kernel", settings=settings), ai.embed(["a", "b", "c"], settings=settings, batch_size=1)

    text, vectors = asyncio.run(cell())
    assert text == "Sandbox reply to: from a kernel" and len(vectors) == 3


def test_async_calls(settings, sandbox):
    settings.save(azure(sandbox))

    async def cell():
        async with ai.AIClient(settings) as client:
            return await client.chat_async("async", full=True), await client.embed_async(["a"])

    result, vectors = asyncio.run(cell())
    assert result.text == "Sandbox reply to: async" and len(vectors[0]) == 1536


def test_module_functions_use_the_organizations_settings_and_import_nothing_heavy(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import ai_admin_widgets as aiw
        from ai_admin_widgets import ai
        aiw.AIDisabled
        assert not [name for name in ("httpx", "keyring", "ipywidgets") if name in sys.modules], sorted(sys.modules)
        try:
            ai.chat("hi")
        except aiw.AIDisabled as error:
            print(error)
        with aiw.Sandbox() as sandbox:
            aiw.AISettings().save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
            print(ai.chat("hello"))
            print(len(ai.embed(["a", "b"])))
        """
    )
    env = os.environ | {
        "AI_ADMIN_HOME": str(tmp_path / "store"),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "AI_ADMIN_ALLOW_PLAINTEXT_KEYRING": "1",
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "AI functionality is disabled: no OpenAI integration is configured; ask an admin to add one in AI Settings.",
        "Sandbox reply to: hello",
        "2",
    ]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda s: ai.chat("  ", settings=s), ValueError, "The message is empty"),
        (lambda s: ai.chat([], settings=s), ValueError, "messages is empty"),
        (lambda s: ai.chat({"role": "user", "content": "hi"}, settings=s), TypeError, "even for one message"),
        (
            lambda s: ai.chat([{"role": "user", "content": "a"}, {"content": "b"}], settings=s),
            TypeError,
            "messages[1] must be a dict",
        ),
        (lambda s: ai.chat("hi", settings=s, model="gpt-4"), TypeError, "the admin chose the language model"),
        (lambda s: ai.chat("hi", settings=s, stream=True), TypeError, "streaming is not offered"),
        (lambda s: ai.embed(["a", 2], settings=s), TypeError, "texts[1] is not a string but int"),
        (lambda s: ai.embed(["a", ""], settings=s), ValueError, "texts[1] is empty"),
        (
            lambda s: ai.embed(["a"], settings=s, batch_size=4096),
            ValueError,
            "batch_size must be a whole number from 1 to 2048",
        ),
        (
            lambda s: ai.embed(["a"], settings=s, concurrency=0),
            ValueError,
            "concurrency must be a whole number above 0",
        ),
        (lambda s: ai.embed(["a"], settings=s, dimensions=0), ValueError, "dimensions must be a whole number above 0"),
        (lambda s: ai.AIClient(s, timeout=0), ValueError, "timeout must be a number of seconds above 0"),
    ],
)
def test_input_mistakes_are_named_before_anything_is_sent(settings, sandbox, call, error, words):
    settings.save(openai(sandbox))
    sent = len(sandbox.requests)
    with pytest.raises(error) as caught:
        call(settings)
    assert words in str(caught.value)
    assert len(sandbox.requests) == sent


def _every_frame_with_its_locals(error: BaseException) -> str:
    """The whole traceback as IPython's ``%xmode Verbose`` shows it: every frame, with its local variables."""
    return "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_an_option_json_cannot_hold_is_named_and_no_frame_shows_the_key(settings, sandbox, provider):
    from datetime import datetime

    integration = openai(sandbox) if provider == "openai" else azure(sandbox)
    settings.save(integration)
    key = sandbox.openai_api_key if provider == "openai" else sandbox.azure_api_key
    with pytest.raises(TypeError, match="The option 'temperature' cannot be sent to the service") as caught:
        ai.chat("hi", settings=settings, temperature=datetime.now())
    shown = _every_frame_with_its_locals(caught.value)
    assert "route = " in shown  # the frames were captured, locals included
    assert key.get_secret_value() not in shown and key.get_secret_value()[-12:] not in shown


class _Interrupted(BaseException):
    """What Ctrl-C (or the kernel's stop button) raises in the middle of a request."""


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_a_call_interrupted_while_waiting_shows_no_key_in_any_frame(settings, provider):
    import signal

    with aiw.Sandbox(latency_ms=lambda request: 3000 if request["path"].endswith("completions") else 0) as slow:
        integration = openai(slow) if provider == "openai" else azure(slow)
        store_unchecked(settings, integration)
        key = slow.openai_api_key if provider == "openai" else slow.azure_api_key

        def interrupt(*_):
            raise _Interrupted

        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        try:
            with pytest.raises(_Interrupted) as caught:
                ai.chat("hi", settings=settings)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    shown = _every_frame_with_its_locals(caught.value)
    assert "in send" in shown and "route = " in shown  # interrupted inside the request, locals captured
    assert key.get_secret_value() not in shown and key.get_secret_value()[-12:] not in shown


def test_no_texts_still_says_ai_is_disabled_and_settings_must_be_settings(settings):
    with pytest.raises(ai.AIDisabled):
        ai.embed([], settings=settings)
    with pytest.raises(TypeError, match="settings must be an ai_admin_widgets.AISettings, not str"):
        ai.chat("hi", settings="/tmp")
