"""Bad input to the public API raises only its documented errors.

Every public constructor and every method that takes an admin's or an analyst's text gets what
a paste can hold: control characters, NUL and DEL inside URLs, lone surrogates, right-to-left
marks, huge strings, and values of the wrong type. The documented errors are pydantic's
``ValidationError`` (a ``ValueError``), ``ValueError``, ``TypeError`` and the product's own
``AIAdminError`` family; anything else (``AttributeError``, ``KeyError``, ``UnicodeError`` outside
a ``ValueError``, ``RecursionError``, ...) is a bug. Nothing here makes a network request: the
inputs that would validate are never saved or tested, and the settings live in a temporary folder.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ai_admin_widgets as aiw
from ai_admin_widgets import ai

DOCUMENTED = (ValueError, TypeError, aiw.AIAdminError)

#: Characters a paste from a web page, a chat or a terminal can hold.
_NASTY = st.sampled_from(
    ["\x00", "\x7f", "\x1b", "\r", "\n", "\t", "\u200b", "\u202e", "\ufeff", "\ud800", "\udfff", "é", "😀"]
)
_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=20),
    st.lists(st.one_of(_NASTY, st.text(max_size=5)), max_size=8).map("".join),
)
_URLISH = st.one_of(
    _TEXT,
    st.tuples(
        st.sampled_from(["https://", "http://", "http://127.0.0.1:1/", "https://x.openai.azure.com/", ""]), _TEXT
    ).map("".join),
    st.just("https://" + "a" * 70_000 + ".com"),
    st.just("http://[::1"),
    st.just("https://res.openai.azure.com/openai/deployments/\x00/chat/completions?api-version=\ud800"),
)
_WRONG = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_ANY = st.one_of(_TEXT, _URLISH, _WRONG, st.just("x" * 200_000))

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _only_documented(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except DOCUMENTED:
        pass


@FUZZ
@given(api_key=_ANY, base_url=_URLISH, model=_ANY, organization=_ANY)
def test_openai_integration(api_key, base_url, model, organization):
    _only_documented(
        aiw.OpenAIIntegration, api_key=api_key, base_url=base_url, language_model=model, organization=organization
    )


@FUZZ
@given(endpoint_url=_URLISH, deployment_id=_ANY, api_key=_ANY, api_version=_ANY)
def test_azure_integration(endpoint_url, deployment_id, api_key, api_version):
    _only_documented(
        aiw.AzureOpenAIIntegration.shared,
        endpoint_url=endpoint_url,
        api_key=api_key,
        language_deployment_id=deployment_id,
        embeddings_deployment_id="embeddings",
        api_version=api_version,
    )
    _only_documented(aiw.AzureDeployment, endpoint_url=endpoint_url, deployment_id=deployment_id, api_key=api_key)
    _only_documented(
        aiw.AzureOpenAIIntegration,
        language_model={"endpoint_url": endpoint_url, "deployment_id": deployment_id, "api_key": api_key},
        embeddings_model=deployment_id,
    )


@FUZZ
@given(home=_ANY, user=_ANY, stale_after=st.one_of(_WRONG, st.just(timedelta(seconds=-1))), base_url=_ANY)
def test_settings_constructor(tmp_path_factory, home, user, stale_after, base_url):
    folder = tmp_path_factory.mktemp("fuzz")
    if isinstance(home, str):
        home = folder / home.replace("\x00", "").replace("/", "_")[:100] if home else folder
    _only_documented(aiw.AISettings, home=home, user=user, stale_after=stale_after, openai_base_url=base_url)


@FUZZ
@given(value=_ANY, other=_ANY)
def test_settings_methods(settings, value, other):
    for call in (
        lambda: settings.test(value),
        lambda: settings.save(value),
        # A refused loopback port: a save that gets as far as the checks contacts nothing outside 127.0.0.1.
        lambda: settings.save(
            aiw.OpenAIIntegration(api_key="sk-" + "a" * 40, base_url="http://127.0.0.1:9/v1"), expected_revision=value
        ),
        lambda: settings.set_allowed(users=value, groups=other),
        lambda: settings.add_admin(value),
        lambda: settings.remove_admin(value),
        lambda: settings.can_use_ai(value),
        lambda: settings.history(value),
        lambda: settings.saved_key(value, other),
        lambda: aiw.field_errors(value),
    ):
        _only_documented(call)


@FUZZ
@given(messages=_ANY, option=_ANY, texts=st.one_of(_ANY, st.lists(_ANY, max_size=4)))
def test_ai_calls_before_any_request(settings, messages, option, texts):
    # Nothing is configured, so a well-formed call ends in AIDisabled before any request is made.
    _only_documented(ai.chat, messages, settings=settings, temperature=option)
    _only_documented(ai.embed, texts, settings=settings)
    _only_documented(ai.AIClient, settings, timeout=option)
    _only_documented(ai.AIClient, settings, batch_size=option, concurrency=option)
    _only_documented(ai.chat, "hello", settings=option)


def test_a_host_name_too_long_to_be_one_is_said_to_be_invalid():
    for url in ("https://" + "a" * 64 + ".openai.azure.com", "https://" + ".".join(["abcdefgh"] * 40)):
        try:
            aiw.AzureDeployment(endpoint_url=url, deployment_id="chat", api_key="0123456789abcdef" * 2)
        except aiw.ValidationError as error:
            assert "too long to be one" in aiw.field_errors(error)["endpoint_url"]
        else:
            raise AssertionError(f"{url[:30]}… was accepted")


def test_an_endpoint_longer_than_any_real_one_is_refused_before_it_is_parsed():
    try:
        aiw.OpenAIIntegration(api_key="sk-" + "a" * 40, base_url="https://api.example.com/" + "v" * 5000)
    except aiw.ValidationError as error:
        assert "longer than 2,048 characters" in aiw.field_errors(error)["base_url"]
    else:
        raise AssertionError("a 5,000-character Base URL was accepted")


def test_a_control_character_in_an_endpoint_is_named_as_such():
    for pasted in (
        "https://res.openai.azure.com/\x00",
        "https://res.openai.azure.com\x1b[31m",
        "https://res\u202e.openai.azure.com",
    ):
        try:
            aiw.AzureDeployment(endpoint_url=pasted, deployment_id="chat", api_key="0123456789abcdef" * 2)
        except aiw.ValidationError as error:
            assert "invisible or control character" in aiw.field_errors(error)["endpoint_url"]
        else:
            raise AssertionError(f"{pasted!r} was accepted")
