"""Validation rules of the integration models, and that no rendering of a model or its errors holds a key."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

import ai_admin_widgets as aiw
from ai_admin_widgets.models import field_errors, key_hint, parse_integration

AZURE = "https://my-resource.openai.azure.com"


def openai_errors(**fields) -> dict[str, str]:
    fields.setdefault("api_key", "sk-test-0123456789")
    with pytest.raises(ValidationError) as caught:
        aiw.OpenAIIntegration(**fields)
    return field_errors(caught.value)


def deployment_errors(**fields) -> dict[str, str]:
    data = {"endpoint_url": AZURE, "deployment_id": "gpt-4o", "api_key": "0123456789abcdef"} | fields
    with pytest.raises(ValidationError) as caught:
        aiw.AzureDeployment(**data)
    return field_errors(caught.value)


# --------------------------------------------------------------------------- #
# Endpoint URLs: https only, except loopback hosts
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com/v1",
        "http://my-resource.openai.azure.com",
        "http://localhost.example.com/v1",
        "http://10.0.0.1/v1",
    ],
)
def test_http_to_a_non_loopback_host_is_rejected(url):
    assert "use https://" in openai_errors(base_url=url)["base_url"]


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8080/v1", "http://127.0.0.1:8080/v1", "http://[::1]:8080/v1"],
)
def test_http_to_a_loopback_host_is_accepted(url):
    assert aiw.OpenAIIntegration(api_key="sk-test-0123456789", base_url=url).base_url == url


def test_endpoint_is_stripped_of_spaces_and_trailing_slash():
    deployment = aiw.AzureDeployment(endpoint_url=f"  {AZURE}/ \n", deployment_id="gpt-4o", api_key="k" * 32)
    assert deployment.endpoint_url == AZURE


@pytest.mark.parametrize("url", ["ftp://my-resource.openai.azure.com", "https://", "not a url"])
def test_endpoint_without_scheme_or_host_is_rejected(url):
    assert "must start with https://" in deployment_errors(endpoint_url=url)["endpoint_url"]


def test_endpoint_with_credentials_in_it_is_rejected():
    message = deployment_errors(endpoint_url="https://admin:hunter2@my-resource.openai.azure.com")["endpoint_url"]
    assert "user name or password" in message
    assert "hunter2" not in message


def test_empty_endpoint_is_rejected():
    assert "is empty" in deployment_errors(endpoint_url="   ")["endpoint_url"]


# --------------------------------------------------------------------------- #
# Deployment IDs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("deployment_id", ["ab", "gpt-4o", "my.deployment_v2-1", "x" * 64])
def test_valid_deployment_id_is_kept(deployment_id):
    deployment = aiw.AzureDeployment(endpoint_url=AZURE, deployment_id=f" {deployment_id} ", api_key="k" * 32)
    assert deployment.deployment_id == deployment_id


@pytest.mark.parametrize("deployment_id", ["a", "x" * 65, "gpt 4o", "gpt/4o", "gpt-4o?x=1", "déploiement"])
def test_invalid_deployment_id_is_rejected(deployment_id):
    message = deployment_errors(deployment_id=deployment_id)["deployment_id"]
    assert message.startswith("Deployment ID must be 2 to 64 characters")


def test_empty_deployment_id_says_where_to_find_it():
    assert "Deployments page" in deployment_errors(deployment_id="  ")["deployment_id"]


def test_deployment_error_is_reported_at_its_dotted_path():
    with pytest.raises(ValidationError) as caught:
        aiw.AzureOpenAIIntegration.shared(
            endpoint_url=AZURE, api_key="k" * 32, language_deployment_id="gpt 4o", embeddings_deployment_id="emb-3"
        )
    assert list(field_errors(caught.value)) == ["language_model.deployment_id"]


# --------------------------------------------------------------------------- #
# API keys
# --------------------------------------------------------------------------- #


def test_api_key_is_stripped_of_surrounding_whitespace():
    integration = aiw.OpenAIIntegration(api_key="  sk-test-0123456789\n")
    assert integration.api_key.get_secret_value() == "sk-test-0123456789"


def test_api_key_given_as_secretstr_is_accepted():
    assert (
        aiw.OpenAIIntegration(api_key=SecretStr(" sk-test-0123456789 ")).api_key.get_secret_value()
        == "sk-test-0123456789"
    )


@pytest.mark.parametrize("key", ["", "   ", "\n\t"])
def test_empty_api_key_is_rejected(key):
    assert openai_errors(api_key=key)["api_key"] == "API Key is empty: paste the key."


@pytest.mark.parametrize("key", ["sk-abc def", "sk-abc\ndef", "sk-abc\tdef", "sk-abc\u00a0def"])
def test_api_key_with_whitespace_inside_is_rejected(key):
    assert "space or line break inside it" in openai_errors(api_key=key)["api_key"]


@pytest.mark.parametrize("character", ["\u200b", "\u2026", "\u00e9", "\x07"])
def test_api_key_with_an_invisible_or_non_ascii_character_is_rejected(marker_key, character):
    """A key pasted from a web page or chat can carry a zero-width space or an ellipsis; no vendor key does."""
    message = openai_errors(api_key=marker_key + character)["api_key"]
    assert message.startswith("API Key has a character")
    assert marker_key not in message


def test_api_key_that_is_not_text_is_rejected():
    assert openai_errors(api_key=12345)["api_key"] == "API Key must be text."


# --------------------------------------------------------------------------- #
# api-version, missing and unknown fields
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("version", ["2024-10-21", "2024-10-01-preview"])
def test_valid_api_version_is_kept(version):
    integration = aiw.AzureOpenAIIntegration.shared(
        endpoint_url=AZURE,
        api_key="k" * 32,
        language_deployment_id="gpt-4o",
        embeddings_deployment_id="emb-3",
        api_version=version,
    )
    assert integration.api_version == version


@pytest.mark.parametrize("version", ["2024-10", "v1", "2024-10-21-beta", "latest", "24-10-21"])
def test_invalid_api_version_is_rejected_with_an_example(version):
    with pytest.raises(ValidationError) as caught:
        aiw.AzureOpenAIIntegration.shared(
            endpoint_url=AZURE,
            api_key="k" * 32,
            language_deployment_id="gpt-4o",
            embeddings_deployment_id="emb-3",
            api_version=version,
        )
    errors = field_errors(caught.value)
    assert list(errors) == ["api_version"]
    assert errors["api_version"].startswith("API version must look like 2024-10-21")


def test_missing_field_says_it_is_required():
    with pytest.raises(ValidationError) as caught:
        aiw.AzureDeployment(endpoint_url=AZURE, api_key="k" * 32)
    assert field_errors(caught.value) == {"deployment_id": "This field is required."}


def test_misspelled_field_is_rejected_not_ignored():
    assert "apikey" in openai_errors(apikey="sk-typo-0123456789")


# --------------------------------------------------------------------------- #
# Keys never appear in renderings of models or errors
# --------------------------------------------------------------------------- #


def test_valid_integration_renderings_hold_no_key(marker_key):
    integration = aiw.AzureOpenAIIntegration.shared(
        endpoint_url=AZURE, api_key=marker_key, language_deployment_id="gpt-4o", embeddings_deployment_id="emb-3"
    )
    renderings = [
        repr(integration),
        str(integration),
        repr(integration.language_model),
        integration.model_dump_json(),
        json.dumps(integration.public_fields()),
        repr(integration.secrets()),
    ]
    assert not [text for text in renderings if marker_key in text]


@pytest.mark.parametrize(
    "fields",
    [
        {"api_key": "{key} trailing-part"},  # whitespace inside the key
        {"api_key": "{key}", "base_url": "http://api.example.com"},  # another field is wrong
        {"api_key": "{key}", "organisation": "org-1"},  # unknown field next to the key
    ],
)
def test_validation_error_texts_hold_no_key(marker_key, fields):
    data = {name: value.format(key=marker_key) for name, value in fields.items()}
    with pytest.raises(ValidationError) as caught:
        aiw.OpenAIIntegration(**data)
    texts = [str(caught.value), repr(caught.value), json.dumps(field_errors(caught.value))]
    assert not [text for text in texts if marker_key in text]


def test_missing_deployment_error_holds_no_key(marker_key):
    """pydantic's 'missing' error carries the whole object (the key included) as its input."""
    with pytest.raises(ValidationError) as caught:
        aiw.AzureOpenAIIntegration(
            language_model={"endpoint_url": AZURE, "api_key": marker_key},
            embeddings_model={"endpoint_url": AZURE, "deployment_id": "emb-3", "api_key": marker_key},
        )
    assert marker_key not in str(caught.value)
    assert marker_key not in repr(caught.value)
    assert field_errors(caught.value) == {"language_model.deployment_id": "This field is required."}


# --------------------------------------------------------------------------- #
# shared(), round trip, key hints, failure codes
# --------------------------------------------------------------------------- #


def test_shared_uses_one_endpoint_and_key_for_both_deployments(marker_key):
    integration = aiw.AzureOpenAIIntegration.shared(
        endpoint_url=AZURE + "/", api_key=marker_key, language_deployment_id="gpt-4o", embeddings_deployment_id="emb-3"
    )
    assert integration.provider is aiw.Provider.AZURE_OPENAI
    assert integration.language_model.deployment_id == "gpt-4o"
    assert integration.embeddings_model.deployment_id == "emb-3"
    assert integration.language_model.endpoint_url == integration.embeddings_model.endpoint_url == AZURE
    assert integration.uses_shared_endpoint
    assert {slot: key.get_secret_value() for slot, key in integration.secrets().items()} == {
        "language_model.api_key": marker_key,
        "embeddings_model.api_key": marker_key,
    }
    assert integration.api_version == "2024-10-21"


def test_separate_deployments_do_not_count_as_shared():
    integration = aiw.AzureOpenAIIntegration(
        language_model=aiw.AzureDeployment(endpoint_url=AZURE, deployment_id="gpt-4o", api_key="a" * 32),
        embeddings_model=aiw.AzureDeployment(
            endpoint_url="https://other.openai.azure.com", deployment_id="emb-3", api_key="b" * 32
        ),
    )
    assert not integration.uses_shared_endpoint


@pytest.mark.parametrize(
    "integration",
    [
        aiw.OpenAIIntegration(
            api_key="sk-roundtrip-0123456789", language_model="gpt-4.1", organization="org-1", project="proj_1"
        ),
        aiw.AzureOpenAIIntegration(
            language_model=aiw.AzureDeployment(endpoint_url=AZURE, deployment_id="gpt-4o", api_key="a" * 32),
            embeddings_model=aiw.AzureDeployment(
                endpoint_url="https://other.openai.azure.com", deployment_id="emb-3", api_key="b" * 32
            ),
            api_version="2024-10-01-preview",
        ),
    ],
    ids=["openai", "azure"],
)
def test_parse_integration_round_trips_public_fields_and_secrets(integration):
    public = json.loads(json.dumps(integration.public_fields()))  # as the settings record stores it
    rebuilt = parse_integration(public, integration.secrets())
    assert rebuilt == integration
    assert type(rebuilt) is type(integration)


def test_public_fields_hold_no_key(marker_key):
    integration = aiw.OpenAIIntegration(api_key=marker_key)
    assert marker_key not in json.dumps(integration.public_fields())
    assert "api_key" not in integration.public_fields()


def test_key_hint_shows_only_the_last_four_characters(marker_key):
    assert key_hint(SecretStr(marker_key)) == "…" + marker_key[-4:]
    assert key_hint(SecretStr("short-key")) == "…"


def test_every_failure_code_has_a_one_line_summary():
    for code in aiw.FailureCode:
        assert code.summary.strip(), code
        assert "\n" not in code.summary, code
        assert code.summary.endswith("."), code
    assert len({code.summary for code in aiw.FailureCode}) == len(aiw.FailureCode)


def test_failure_codes_are_looked_up_by_their_stable_value():
    assert aiw.FailureCode("deployment_not_found") is aiw.FailureCode.DEPLOYMENT_NOT_FOUND
    check = aiw.ModelCheck(role="language", ok=False, code="timeout", message="Language model: no answer.")
    assert check.code is aiw.FailureCode.TIMEOUT


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #

_KEY_CHARACTERS = string.ascii_letters + string.digits + "-_."
_WHITESPACE = st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000", "\u2028"])


@given(
    core=st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=8, max_size=200),
    before=st.text(alphabet=_WHITESPACE, max_size=5),
    after=st.text(alphabet=_WHITESPACE, max_size=5),
)
def test_property_surrounding_whitespace_is_stripped_to_the_same_key(core, before, after):
    integration = aiw.OpenAIIntegration(api_key=before + core + after)
    assert integration.api_key.get_secret_value() == core


@given(
    left=st.text(alphabet=_KEY_CHARACTERS, min_size=6, max_size=60),
    gap=st.text(alphabet=_WHITESPACE, min_size=1, max_size=3),
    right=st.text(alphabet=_KEY_CHARACTERS, min_size=1, max_size=60),
)
def test_property_inner_whitespace_is_rejected_without_echoing_the_input(left, gap, right):
    key = "sk-" + left + gap + right
    with pytest.raises(ValidationError) as caught:
        aiw.AzureDeployment(endpoint_url=AZURE, deployment_id="gpt-4o", api_key=key)
    errors = field_errors(caught.value)
    assert list(errors) == ["api_key"]
    for text in (str(caught.value), repr(caught.value), errors["api_key"]):
        assert key not in text
        assert "sk-" + left not in text


@given(deployment_id=st.from_regex(r"[A-Za-z0-9._-]{2,64}", fullmatch=True))
def test_property_valid_deployment_ids_round_trip_unchanged(deployment_id):
    deployment = aiw.AzureDeployment(endpoint_url=AZURE, deployment_id=deployment_id, api_key="k" * 32)
    assert deployment.deployment_id == deployment_id
    integration = aiw.AzureOpenAIIntegration(language_model=deployment, embeddings_model=deployment)
    assert (
        parse_integration(integration.public_fields(), integration.secrets()).language_model.deployment_id
        == deployment_id
    )


@pytest.mark.parametrize(
    "host", ["my..resource.openai.azure.com", "-myresource.openai.azure.com", "myresource-.openai.azure.com"]
)
def test_a_host_name_that_cannot_be_one_is_refused_by_name_not_looked_up(host):
    """No DNS server could find it, so Save and ai-admin say what is wrong instead of "could not be found"."""
    with pytest.raises(ValidationError) as raised:
        aiw.AzureDeployment(endpoint_url=f"https://{host}", deployment_id="chat-gpt-4o", api_key="0" * 32)
    assert "host name that cannot be one" in aiw.field_errors(raised.value)["endpoint_url"]
    with pytest.raises(ValidationError) as raised:
        aiw.OpenAIIntegration(api_key="sk-" + "a" * 40, base_url=f"https://{host}/v1")
    assert "host name that cannot be one" in aiw.field_errors(raised.value)["base_url"]
    assert aiw.OpenAIIntegration(api_key="sk-" + "a" * 40, base_url="https://my-resource.example.com./v1")
