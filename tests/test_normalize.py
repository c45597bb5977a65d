"""What admins paste, turned into what the APIs expect: each normalization case of issue 3, each change
said as a Notice beside its field, no notice holding a key, and hypothesis properties of the normalizer.

Pure validation: nothing here sends a request (host names below are only parsed).
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

import ai_admin_widgets as aiw
from ai_admin_widgets.models import DEFAULT_AZURE_API_VERSION, field_errors, looks_like_key, parse_integration
from ai_admin_widgets.normalize import azure_host_notices, judge_model

RESOURCE = "https://contoso.openai.azure.com"
TARGET_CHAT = f"{RESOURCE}/openai/deployments/my-gpt-4o/chat/completions?api-version=2024-08-01-preview"
TARGET_EMBEDDINGS = f"{RESOURCE}/openai/deployments/my-embeddings/embeddings?api-version=2024-08-01-preview"


@pytest.fixture
def azure_key() -> str:
    """An Azure-shaped key (32 hex digits) that no other test uses."""
    return uuid.uuid4().hex


def integration(key: str, *, api_version: str | None = None, **deployments) -> aiw.AzureOpenAIIntegration:
    """An Azure integration on RESOURCE; ``language_model={...}`` / ``embeddings_model={...}`` override fields."""
    data = {
        "language_model": {"endpoint_url": RESOURCE, "deployment_id": "my-gpt-4o", "api_key": key}
        | deployments.get("language_model", {}),
        "embeddings_model": {"endpoint_url": RESOURCE, "deployment_id": "my-embeddings", "api_key": key}
        | deployments.get("embeddings_model", {}),
    }
    if api_version is not None:
        data["api_version"] = api_version
    return aiw.AzureOpenAIIntegration(**data)


def errors_of(build) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        build()
    return field_errors(caught.value)


def openai_errors(**fields) -> dict[str, str]:
    fields.setdefault("api_key", "sk-test-0123456789abcdef")
    return errors_of(lambda: aiw.OpenAIIntegration(**fields))


def notices_at(model, path: str) -> list[aiw.Notice]:
    return [notice for notice in model.notices if notice.field == path]


def assert_no_key_in_notices(model, *keys: str) -> None:
    text = "\n".join(notice.model_dump_json() for notice in model.notices)
    for key in keys:
        assert key not in text


# --------------------------------------------------------------------------- #
# A whole target URI pasted in Endpoint URL
# --------------------------------------------------------------------------- #


def test_target_uri_gives_the_base_endpoint_fills_the_empty_deployment_id_and_the_default_api_version(azure_key):
    model = integration(azure_key, language_model={"endpoint_url": TARGET_CHAT, "deployment_id": ""})
    assert model.language_model.endpoint_url == RESOURCE
    assert model.language_model.deployment_id == "my-gpt-4o"
    assert model.api_version == "2024-08-01-preview"
    assert "whole target URI" in notices_at(model, "language_model.endpoint_url")[0].message
    assert "taken from the target URI" in notices_at(model, "language_model.deployment_id")[0].message
    assert "2024-08-01-preview" in notices_at(model, "api_version")[0].message
    assert model.embeddings_model.endpoint_url == RESOURCE
    assert notices_at(model, "embeddings_model.endpoint_url") == []


def test_target_uri_with_the_same_deployment_id_typed_is_accepted(azure_key):
    model = integration(azure_key, language_model={"endpoint_url": TARGET_CHAT, "deployment_id": "my-gpt-4o"})
    assert model.language_model.deployment_id == "my-gpt-4o"
    assert notices_at(model, "language_model.deployment_id") == []  # nothing was filled in
    assert "whole target URI" in notices_at(model, "language_model.endpoint_url")[0].message


def test_target_uri_naming_another_deployment_than_the_one_typed_is_an_error_on_the_deployment_id(azure_key):
    problems = errors_of(
        lambda: integration(azure_key, language_model={"endpoint_url": TARGET_CHAT, "deployment_id": "gpt4-prod"})
    )
    assert list(problems) == ["language_model.deployment_id"]
    assert "'gpt4-prod' differs from the deployment 'my-gpt-4o'" in problems["language_model.deployment_id"]


def test_target_uri_api_version_conflicting_with_an_explicit_one_is_an_error_on_api_version(azure_key):
    problems = errors_of(
        lambda: integration(
            azure_key, api_version="2024-06-01", language_model={"endpoint_url": TARGET_CHAT, "deployment_id": ""}
        )
    )
    assert "api_version" in problems
    assert "2024-06-01 differs from api-version 2024-08-01-preview" in problems["api_version"]


def test_target_uri_api_version_equal_to_the_explicit_one_is_accepted_without_a_version_notice(azure_key):
    model = integration(
        azure_key, api_version="2024-08-01-preview", language_model={"endpoint_url": TARGET_CHAT, "deployment_id": ""}
    )
    assert model.api_version == "2024-08-01-preview"
    assert notices_at(model, "api_version") == []


# --------------------------------------------------------------------------- #
# Microsoft Foundry's own URLs, and Azure's v1 API
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("pasted", "what"),
    [
        (
            "https://contoso.services.ai.azure.com/api/projects/sales",
            "Foundry's project endpoint (for the Foundry SDK)",
        ),
        ("contoso.services.ai.azure.com/api/projects/sales/", "Foundry's project endpoint (for the Foundry SDK)"),
        (
            "https://Contoso.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview",
            "Foundry's models endpoint (the Foundry Models inference API, /models)",
        ),
    ],
)
def test_a_foundry_project_or_models_url_says_which_url_to_copy_and_where(azure_key, pasted, what):
    problems = errors_of(lambda: integration(azure_key, language_model={"endpoint_url": pasted}))
    said = problems["language_model.endpoint_url"]
    assert what in said and "not the Azure OpenAI endpoint" in said
    assert "Overview page" in said and "Keys and Endpoint" in said
    assert "https://contoso.openai.azure.com" in said
    assert list(problems) == ["language_model.endpoint_url"]


def test_a_foundry_resource_target_uri_is_cut_to_its_endpoint(azure_key):
    pasted = (
        "https://contoso.services.ai.azure.com/openai/deployments/my-gpt-4o/chat/completions?api-version=2024-10-21"
    )
    model = integration(azure_key, language_model={"endpoint_url": pasted, "deployment_id": ""})
    assert model.language_model.endpoint_url == "https://contoso.services.ai.azure.com"
    assert model.language_model.deployment_id == "my-gpt-4o"
    assert notices_at(model, "language_model.endpoint_url")[0].level != "warning"


@pytest.mark.parametrize(
    "pasted", [f"{RESOURCE}/openai/v1", f"{RESOURCE}/openai/v1/", f"{RESOURCE}/openai/v1/chat/completions"]
)
def test_a_v1_api_url_is_cut_to_the_endpoint_and_chooses_the_v1_api(azure_key, pasted):
    model = integration(azure_key, language_model={"endpoint_url": pasted})
    assert model.language_model.endpoint_url == RESOURCE and model.api_version == "v1"
    assert "v1 API" in notices_at(model, "language_model.endpoint_url")[0].message


def test_embeddings_target_uri_under_the_language_model_is_an_error_on_its_endpoint_url(azure_key):
    problems = errors_of(
        lambda: integration(azure_key, language_model={"endpoint_url": TARGET_EMBEDDINGS, "deployment_id": ""})
    )
    assert "language_model.endpoint_url" in problems
    assert "paste it under Embeddings model" in problems["language_model.endpoint_url"]


def test_chat_target_uri_under_the_embeddings_model_is_an_error_on_its_endpoint_url(azure_key):
    problems = errors_of(
        lambda: integration(azure_key, embeddings_model={"endpoint_url": TARGET_CHAT, "deployment_id": ""})
    )
    assert "embeddings_model.endpoint_url" in problems
    assert "paste it under Language model" in problems["embeddings_model.endpoint_url"]


def test_shared_with_a_chat_target_uri_fills_the_language_deployment_and_not_the_embeddings_one(azure_key):
    model = aiw.AzureOpenAIIntegration.shared(
        endpoint_url=TARGET_CHAT, api_key=azure_key, language_deployment_id="", embeddings_deployment_id="my-embeddings"
    )
    assert model.language_model.deployment_id == "my-gpt-4o"
    assert model.embeddings_model.deployment_id == "my-embeddings"
    assert model.language_model.endpoint_url == model.embeddings_model.endpoint_url == RESOURCE
    assert model.uses_shared_endpoint
    assert model.api_version == "2024-08-01-preview"
    assert notices_at(model, "language_model.deployment_id")
    assert notices_at(model, "embeddings_model.deployment_id") == []


def test_shared_with_a_chat_target_uri_and_no_embeddings_deployment_is_an_error_on_the_embeddings_deployment_id(
    azure_key,
):
    problems = errors_of(
        lambda: aiw.AzureOpenAIIntegration.shared(
            endpoint_url=TARGET_CHAT, api_key=azure_key, language_deployment_id="", embeddings_deployment_id=""
        )
    )
    assert list(problems) == ["embeddings_model.deployment_id"]
    assert "Deployment ID is empty" in problems["embeddings_model.deployment_id"]


def test_shared_with_an_embeddings_target_uri_fills_the_embeddings_deployment(azure_key):
    model = aiw.AzureOpenAIIntegration.shared(
        endpoint_url=TARGET_EMBEDDINGS,
        api_key=azure_key,
        language_deployment_id="my-gpt-4o",
        embeddings_deployment_id="",
    )
    assert (model.language_model.deployment_id, model.embeddings_model.deployment_id) == ("my-gpt-4o", "my-embeddings")
    assert notices_at(model, "embeddings_model.deployment_id")
    assert notices_at(model, "language_model.deployment_id") == []


# --------------------------------------------------------------------------- #
# Endpoint URL: slashes, /openai, https://, host names
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("typed", "phrase"),
    [
        (f"{RESOURCE}/", "/ at the end"),
        (f"{RESOURCE}///", "/ at the end"),
        (f"{RESOURCE}/openai", "ended in /openai"),
        (f"{RESOURCE}/openai/", "ended in /openai"),
        (f"{RESOURCE}/OpenAI", "ended in /OpenAI"),
        (f"{RESOURCE}/openai/openai/", "ended in /openai/openai"),
        (f"{RESOURCE}/openai/deployments/", "ended in /openai/deployments"),
        ("contoso.openai.azure.com", "no https://"),
        ("contoso.openai.azure.com/", "no https://"),
        (f"{RESOURCE}/?api-version=2024-10-21", "?query"),
    ],
)
def test_endpoint_url_is_cleaned_and_each_change_is_a_notice(azure_key, typed, phrase):
    model = aiw.AzureDeployment(endpoint_url=typed, deployment_id="my-gpt-4o", api_key=azure_key)
    assert model.endpoint_url == RESOURCE
    messages = [notice.message for notice in notices_at(model, "endpoint_url")]
    assert any(phrase in message for message in messages), messages
    assert all(notice.level == "info" for notice in model.notices)


@pytest.mark.parametrize(
    "typed",
    [f"{RESOURCE}/", f"{RESOURCE}/openai/openai", f"{RESOURCE}/openai/deployments", "contoso.openai.azure.com/openai/"],
)
def test_cleaned_endpoint_typed_again_is_left_as_it_is(azure_key, typed):
    once = aiw.AzureDeployment(endpoint_url=typed, deployment_id="my-gpt-4o", api_key=azure_key)
    twice = aiw.AzureDeployment(endpoint_url=once.endpoint_url, deployment_id="my-gpt-4o", api_key=azure_key)
    assert twice.endpoint_url == once.endpoint_url == RESOURCE
    assert twice.notices == ()


def test_clean_endpoint_gets_no_notice(azure_key):
    model = aiw.AzureDeployment(endpoint_url=RESOURCE, deployment_id="my-gpt-4o", api_key=azure_key)
    assert model.endpoint_url == RESOURCE
    assert model.notices == ()


def test_endpoint_notices_inside_an_integration_name_the_deployment(azure_key):
    model = integration(azure_key, embeddings_model={"endpoint_url": f"{RESOURCE}/openai/"})
    assert [notice.field for notice in model.notices] == ["embeddings_model.endpoint_url"]


@pytest.mark.parametrize(
    "host",
    [
        "contoso.openai.azure.com",
        "contoso.cognitiveservices.azure.com",
        "contoso.services.ai.azure.com",
        "contoso.openai.azure.us",
        "contoso.cognitiveservices.azure.us",
        "contoso.openai.azure.cn",
        "contoso.cognitiveservices.azure.cn",
        "eastus.api.cognitive.microsoft.com",
        "CONTOSO.OpenAI.Azure.com",
        "127.0.0.1",
        "localhost",
    ],
)
def test_azure_host_names_get_no_warning(azure_key, host):
    assert azure_host_notices(host) == []
    model = aiw.AzureDeployment(endpoint_url=f"https://{host}", deployment_id="my-gpt-4o", api_key=azure_key)
    assert model.notices == ()


@pytest.mark.parametrize(
    "host",
    [
        "contoso.example.com",
        "api.openai.com",
        "contoso.openai.azure.com.evil.example",
        "openai.azure.com.example.net",
        "contoso.azure.com",
    ],
)
def test_other_host_names_get_a_warning_on_the_endpoint_url(azure_key, host):
    model = integration(azure_key, language_model={"endpoint_url": f"https://{host}"})
    (notice,) = notices_at(model, "language_model.endpoint_url")
    assert notice.level == "warning"
    assert "is not an Azure OpenAI host name" in notice.message
    assert "Keys and Endpoint" in notice.message


def test_api_management_gateway_gets_its_own_explanation(azure_key):
    model = aiw.AzureDeployment(
        endpoint_url="https://contoso-apim.azure-api.net", deployment_id="my-gpt-4o", api_key=azure_key
    )
    (notice,) = model.notices
    assert (notice.field, notice.level) == ("endpoint_url", "warning")
    assert "API Management gateway" in notice.message
    assert "api-key header" in notice.message


# --------------------------------------------------------------------------- #
# api-version
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("typed", ["api-version=2024-06-01", "?api-version=2024-06-01", "&API-Version = 2024-06-01"])
def test_api_version_prefix_typed_inside_the_api_version_is_removed_with_a_notice(azure_key, typed):
    model = integration(azure_key, api_version=typed)
    assert model.api_version == "2024-06-01"
    (notice,) = notices_at(model, "api_version")
    assert "'api-version=' in front of the API version was removed" in notice.message


@pytest.mark.parametrize(
    ("typed", "model_name"),
    [
        ("2024-05-13", "gpt-4o"),
        ("0613", "gpt-4"),
        ("1106-Preview", "gpt-4"),
        ("2024-07-18", "gpt-4o-mini"),
        ("turbo-2024-04-09", "gpt-4"),
    ],
)
def test_model_version_typed_as_api_version_is_an_error_naming_the_model(azure_key, typed, model_name):
    problems = errors_of(lambda: integration(azure_key, api_version=typed))
    assert list(problems) == ["api_version"]
    message = problems["api_version"]
    assert f"{typed} is a version of the {model_name}" in message
    assert "not an API version" in message
    assert DEFAULT_AZURE_API_VERSION in message


@pytest.mark.parametrize(
    "typed", ["2024-02-30", "2024-13-01", "2023-00-10", "2025-02-29-preview", "2024-10-21-beta", "latest", ""]
)
def test_impossible_or_malformed_api_version_is_rejected(azure_key, typed):
    problems = errors_of(lambda: integration(azure_key, api_version=typed))
    assert "API version must look like" in problems["api_version"]


@pytest.mark.parametrize("typed", ["2024-10-21", "2024-02-29", "2024-12-01-preview"])
def test_valid_api_version_is_kept_without_a_notice(azure_key, typed):
    model = integration(azure_key, api_version=typed)
    assert model.api_version == typed
    assert model.notices == ()


# --------------------------------------------------------------------------- #
# API keys: what admins paste around them
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("wrap", "phrase"),
    [
        ('"{}"', "Quotes"),
        ("'{}'", "Quotes"),
        ("“{}”", "Quotes"),
        ("${{{}}}", "'${' and '}'"),
        ("Bearer {}", "'Bearer '"),
        ("api-key: {}", "'api-key:'"),
        ("Authorization: Bearer {}", "'Authorization:'"),
        ("AZURE_OPENAI_API_KEY={}", "'AZURE_OPENAI_API_KEY='"),
        ("  {}\n", "Spaces or line breaks"),
        ('  "{}"  ', "Quotes"),
    ],
)
def test_azure_key_wrappers_are_removed_each_with_a_notice_that_never_holds_the_key(azure_key, wrap, phrase):
    model = aiw.AzureDeployment(endpoint_url=RESOURCE, deployment_id="my-gpt-4o", api_key=wrap.format(azure_key))
    assert model.api_key.get_secret_value() == azure_key
    assert model.notices, "a change to the key must be said"
    assert all(notice.field == "api_key" and notice.level == "info" for notice in model.notices)
    assert any(phrase in notice.message for notice in model.notices)
    assert_no_key_in_notices(model, azure_key)


@pytest.mark.parametrize("wrap", ['"{}"', "Bearer {}", "OPENAI_API_KEY={}", "${{{}}}", " {} "])
def test_openai_key_wrappers_are_removed_with_a_notice(marker_key, wrap):
    model = aiw.OpenAIIntegration(api_key=wrap.format(marker_key))
    assert model.api_key.get_secret_value() == marker_key
    assert model.notices and all(notice.field == "api_key" for notice in model.notices)
    assert_no_key_in_notices(model, marker_key)


@pytest.mark.parametrize("reference", ["${AZURE_OPENAI_API_KEY}", "${OPENAI_API_KEY}", "  ${ AZURE_OPENAI_KEY }  "])
def test_variable_reference_instead_of_a_key_is_an_error_on_the_api_key(azure_key, reference):
    problems = errors_of(lambda: integration(azure_key, language_model={"api_key": reference}))
    assert list(problems) == ["language_model.api_key"]
    assert "variable reference" in problems["language_model.api_key"]
    assert "paste the key's value itself" in problems["language_model.api_key"]


def test_sk_key_given_to_azure_gets_a_warning_naming_openai(marker_key):
    model = integration(marker_key)
    warnings = [notice for notice in model.notices if notice.level == "warning"]
    assert {notice.field for notice in warnings} == {"language_model.api_key", "embeddings_model.api_key"}
    assert all("like an OpenAI key" in notice.message and "OpenAI provider" in notice.message for notice in warnings)
    assert_no_key_in_notices(model, marker_key)


def test_azure_shaped_key_given_to_openai_gets_a_warning_naming_azure_openai(azure_key):
    model = aiw.OpenAIIntegration(api_key=azure_key)
    (notice,) = model.notices
    assert (notice.field, notice.level) == ("api_key", "warning")
    assert "Azure OpenAI" in notice.message
    assert_no_key_in_notices(model, azure_key)


def test_keys_of_the_right_shape_get_no_provider_warning(azure_key, marker_key):
    assert aiw.OpenAIIntegration(api_key=marker_key).notices == ()
    assert integration(azure_key).notices == ()


# --------------------------------------------------------------------------- #
# Which models are good enough
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4-turbo",
        "gpt-4-turbo-2024-04-09",
        "gpt-4o",
        "gpt-4o-2024-08-06",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "o1",
        "o3-mini",
        "o3-mini-2025-01-31",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-6",
        "GPT-4o",
    ],
)
def test_language_models_gpt_4_turbo_or_later_are_accepted(model):
    verdict = judge_model("language", model)
    assert verdict.ok and verdict.warning is None


@pytest.mark.parametrize(
    "model",
    [
        "gpt-35-turbo",
        "gpt-3.5-turbo",
        "gpt-3.5-turbo-0125",
        "gpt-4-32k",
        "gpt-4-0613",
        "gpt-4-0314",
        "text-embedding-3-small",
    ],
)
def test_language_models_older_than_gpt_4_turbo_are_rejected(model):
    assert judge_model("language", model).ok is False


def test_plain_gpt_4_is_accepted_with_a_warning_saying_what_to_check_in_the_portal():
    verdict = judge_model("language", "gpt-4")
    assert verdict.ok
    assert "model version" in verdict.warning
    assert "turbo-2024-04-09" in verdict.warning


@pytest.mark.parametrize("model", ["text-embedding-3-small", "text-embedding-3-small-2024-01-25"])
def test_embeddings_text_embedding_3_small_is_accepted(model):
    verdict = judge_model("embeddings", model)
    assert verdict.ok and verdict.warning is None


@pytest.mark.parametrize(
    "model", ["text-embedding-ada-002", "text-embedding-3-large", "gpt-4o", "text-embedding-3-smaller"]
)
def test_other_embeddings_models_are_rejected(model):
    assert judge_model("embeddings", model).ok is False


# --------------------------------------------------------------------------- #
# Properties over generated input
# --------------------------------------------------------------------------- #

_RESOURCE_NAMES = st.from_regex(r"[a-z][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
_HOST_SUFFIXES = st.sampled_from(
    [
        ".openai.azure.com",
        ".cognitiveservices.azure.com",
        ".services.ai.azure.com",
        ".openai.azure.us",
        ".openai.azure.cn",
        ".azure-api.net",
        ".example.com",
        ".openai.azure.com.",
        "",
    ]
)
_DEPLOYMENT_IDS = st.from_regex(r"[A-Za-z0-9._-]{2,64}", fullmatch=True)
_VERSIONS = st.sampled_from(
    ["2024-10-21", "2024-06-01", "2024-12-01-preview", "2024-05-13", "0613", "2024-02-30", "latest", ""]
)
_PATHS = st.one_of(
    st.sampled_from(
        [
            "",
            "/",
            "//",
            "/openai",
            "/openai/",
            "/openai/openai",
            "/proxy",
            "/proxy/openai/",
            "/openai/deployments",
            "/openai/deployments/",
        ]
    ),
    st.builds(
        lambda deployment, operation: f"/openai/deployments/{deployment}{operation}",
        _DEPLOYMENT_IDS,
        st.sampled_from(
            ["", "/", "/chat/completions", "/embeddings", "/completions", "/images/generations", "/chat/completions/"]
        ),
    ),
)
_QUERIES = st.one_of(st.just(""), st.builds(lambda version: f"?api-version={version}", _VERSIONS), st.just("?x=1#frag"))


def _url(scheme: str, name: str, suffix: str, port: str, path: str, query: str, padding: str) -> str:
    return f"{padding}{scheme}{name}{suffix}{port}{path}{query}{padding}"


_URLS = st.builds(
    _url,
    st.one_of(st.just("https://"), st.sampled_from(["https://", "http://", "", "HTTPS://", "ftp://", "https:/"])),
    st.one_of(_RESOURCE_NAMES, st.sampled_from(["127.0.0.1", "localhost", "[::1]", "[", "user:pw@host", "<resource>"])),
    _HOST_SUFFIXES,
    st.one_of(st.just(""), st.sampled_from([":443", ":8080", ":0", ":99999", ":abc"])),
    _PATHS,
    _QUERIES,
    st.one_of(st.just(""), st.sampled_from([" ", "\n", "\t "])),
)
ENDPOINTS = st.one_of(_URLS, _URLS, _URLS, st.text(max_size=60))

_RAW_KEYS = st.one_of(
    st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    st.from_regex(r"sk-[A-Za-z0-9_-]{20,48}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9]{84}", fullmatch=True),
)
_KEY_WRAPPERS = st.sampled_from(
    [
        "{}",
        '"{}"',
        "'{}'",
        " {} ",
        "Bearer {}",
        "bearer '{}'",
        "api-key: {}",
        "Authorization: Bearer {}",
        "AZURE_OPENAI_API_KEY={}",
        "${{{}}}",
        '"${{{}}}"',
        "{}\n",
        "key={}",
        "${{AZURE_OPENAI_API_KEY}}",
        "{} {}",
        "“{}”",
    ]
)
KEYS = st.one_of(
    _RAW_KEYS, st.builds(lambda wrapper, key: wrapper.format(key, key), _KEY_WRAPPERS, _RAW_KEYS), st.text(max_size=60)
)
DEPLOYMENTS = st.one_of(_DEPLOYMENT_IDS, _DEPLOYMENT_IDS, st.just(""), st.text(max_size=30), _RAW_KEYS)
API_VERSIONS = st.one_of(
    st.none(),
    _VERSIONS,
    st.builds(
        lambda prefix, version: f"{prefix}{version}",
        st.sampled_from(["api-version=", "?api-version=", " ", "API-VERSION = "]),
        _VERSIONS,
    ),
    st.text(max_size=30),
)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _deployment_data(endpoint: str, deployment: str, key: str) -> dict:
    return {"endpoint_url": endpoint, "deployment_id": deployment, "api_key": key}


def _integration_data(language: dict, embeddings: dict, api_version: str | None) -> dict:
    data = {"language_model": language, "embeddings_model": embeddings}
    if api_version is not None:
        data["api_version"] = api_version
    return data


@st.composite
def _pasted_deployment(draw) -> dict:
    """What an admin plausibly pastes from the portal: mostly valid, each part possibly dressed up."""
    deployment = draw(_DEPLOYMENT_IDS)
    host = draw(_RESOURCE_NAMES) + draw(
        st.sampled_from(
            [".openai.azure.com", ".cognitiveservices.azure.com", ".openai.azure.us", ".example.com", ".azure-api.net"]
        )
    )
    scheme = draw(st.sampled_from(["https://", "https://", ""]))
    form = draw(
        st.sampled_from(
            [
                "",
                "/",
                "//",
                "/openai",
                "/openai/",
                "/openai/openai",
                "/OpenAI/deployments/",
                "target-chat",
                "target-embeddings",
            ]
        )
    )
    if form.startswith("target-"):
        operation = "chat/completions" if form == "target-chat" else "embeddings"
        version = draw(st.one_of(st.just(""), _VERSIONS.map(lambda v: f"?api-version={v}")))
        path = f"/openai/deployments/{deployment}/{operation}{version}"
        typed = draw(st.sampled_from(["", deployment, deployment, "someone-else"]))
    else:
        path, typed = form, deployment
    padding = draw(st.sampled_from(["", "", " ", "\n"]))
    key = draw(st.builds(lambda wrapper, raw: wrapper.format(raw, raw), _KEY_WRAPPERS, _RAW_KEYS))
    return _deployment_data(f"{padding}{scheme}{host}{path}{padding}", typed, key)


DEPLOYMENT_DATA = st.one_of(
    _pasted_deployment(), _pasted_deployment(), st.builds(_deployment_data, ENDPOINTS, DEPLOYMENTS, KEYS)
)
INTEGRATION_DATA = st.builds(_integration_data, DEPLOYMENT_DATA, DEPLOYMENT_DATA, API_VERSIONS)
OPENAI_DATA = st.fixed_dictionaries(
    {"api_key": KEYS},
    optional={
        "base_url": st.one_of(
            _URLS, st.text(max_size=40), st.sampled_from(["https://api.openai.com", "https://api.openai.com/"])
        ),
        "language_model": st.one_of(st.sampled_from(["gpt-4o", "o3-mini"]), st.text(max_size=20), _RAW_KEYS),
        "organization": st.one_of(st.none(), st.text(max_size=20)),
    },
)


def same_values(one, other) -> bool:
    """Equal field values, keys included (pydantic's == also compares the private notices)."""
    return type(one) is type(other) and one.model_dump() == other.model_dump()


def _build_or_none(kind, data):
    """The model, or None when validation refused the input; anything else raised fails the property."""
    try:
        return kind(**data)
    except ValidationError:
        return None


def _assert_rebuild_changes_nothing(model) -> None:
    rebuilt = parse_integration(model.public_fields(), model.secrets())
    assert same_values(rebuilt, model)
    assert [notice for notice in rebuilt.notices if notice.level == "info"] == []
    # Warnings (a host or key to check) are not changes: they come back, and only those that were there.
    assert {n for n in rebuilt.notices} <= {n for n in model.notices if n.level == "warning"}


@PROPERTY_SETTINGS
@given(data=INTEGRATION_DATA)
def test_property_azure_integration_raises_only_validation_errors_and_is_idempotent(data):
    model = _build_or_none(aiw.AzureOpenAIIntegration, data)
    if model is None:
        return
    _assert_rebuild_changes_nothing(model)
    notices = "\n".join(notice.message for notice in model.notices)
    for key in (model.language_model.api_key, model.embeddings_model.api_key):
        assert key.get_secret_value() not in notices


@PROPERTY_SETTINGS
@given(data=DEPLOYMENT_DATA)
def test_property_azure_deployment_raises_only_validation_errors_and_is_idempotent(data):
    model = _build_or_none(aiw.AzureDeployment, data)
    if model is None:
        return
    rebuilt = aiw.AzureDeployment(**(model.model_dump(exclude={"api_key"}) | {"api_key": model.api_key}))
    assert same_values(rebuilt, model)
    assert [notice for notice in rebuilt.notices if notice.level == "info"] == []
    assert model.api_key.get_secret_value() not in "\n".join(notice.message for notice in model.notices)


@PROPERTY_SETTINGS
@given(
    endpoint=st.one_of(ENDPOINTS, _pasted_deployment().map(lambda data: data["endpoint_url"])),
    key=KEYS,
    language=DEPLOYMENTS,
    embeddings=DEPLOYMENTS,
    api_version=API_VERSIONS,
)
def test_property_shared_raises_only_validation_errors_and_is_idempotent(
    endpoint, key, language, embeddings, api_version
):
    try:
        model = aiw.AzureOpenAIIntegration.shared(
            endpoint_url=endpoint,
            api_key=key,
            language_deployment_id=language,
            embeddings_deployment_id=embeddings,
            api_version=api_version,
        )
    except ValidationError:
        return
    _assert_rebuild_changes_nothing(model)


@PROPERTY_SETTINGS
@given(data=OPENAI_DATA)
def test_property_openai_integration_raises_only_validation_errors_and_is_idempotent(data):
    model = _build_or_none(aiw.OpenAIIntegration, data)
    if model is None:
        return
    _assert_rebuild_changes_nothing(model)
    assert model.api_key.get_secret_value() not in "\n".join(notice.message for notice in model.notices)


@PROPERTY_SETTINGS
@given(
    name=_RESOURCE_NAMES,
    suffix=st.sampled_from(
        [".openai.azure.com", ".cognitiveservices.azure.com", ".openai.azure.us", ".openai.azure.cn"]
    ),
    language=_DEPLOYMENT_IDS,
    embeddings=_DEPLOYMENT_IDS,
    key=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    api_version=st.sampled_from(["2024-10-21", "2024-06-01", "2024-12-01-preview", "2025-04-01-preview"]),
)
def test_property_clean_valid_input_is_left_as_it_is_without_notices(
    name, suffix, language, embeddings, key, api_version
):
    assume(not looks_like_key(language) and not looks_like_key(embeddings))
    endpoint = f"https://{name}{suffix}"
    model = aiw.AzureOpenAIIntegration(
        language_model={"endpoint_url": endpoint, "deployment_id": language, "api_key": key},
        embeddings_model={"endpoint_url": endpoint, "deployment_id": embeddings, "api_key": SecretStr(key)},
        api_version=api_version,
    )
    assert model.notices == ()
    assert (model.language_model.endpoint_url, model.language_model.deployment_id) == (endpoint, language)
    assert (model.embeddings_model.endpoint_url, model.embeddings_model.deployment_id) == (endpoint, embeddings)
    assert model.language_model.api_key.get_secret_value() == key
    assert model.api_version == api_version


@PROPERTY_SETTINGS
@given(
    key=st.from_regex(r"sk-[A-Za-z0-9_-]{20,48}", fullmatch=True),
    model_id=st.sampled_from(["gpt-4o", "gpt-4.1", "o3-mini"]),
)
def test_property_clean_openai_input_is_left_as_it_is_without_notices(key, model_id):
    model = aiw.OpenAIIntegration(api_key=key, language_model=model_id)
    assert model.notices == ()
    assert (model.api_key.get_secret_value(), model.base_url, model.language_model) == (
        key,
        "https://api.openai.com/v1",
        model_id,
    )


# --------------------------------------------------------------------------- #
# Input that is not a URL, or a key where a name goes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("typed", ["https://[", "https://[::1", "http://[fe80::1/openai"])
def test_broken_address_is_a_validation_error_on_the_endpoint_url_even_through_shared(azure_key, typed):
    problems = errors_of(
        lambda: aiw.AzureOpenAIIntegration.shared(
            endpoint_url=typed,
            api_key=azure_key,
            language_deployment_id="my-gpt-4o",
            embeddings_deployment_id="my-embeddings",
        )
    )
    assert "is not a web address" in problems["language_model.endpoint_url"]
    assert "is not a web address" in openai_errors(base_url=typed)["base_url"]


@pytest.mark.parametrize("field", ["language_model", "embeddings_model"])
def test_a_key_typed_as_an_openai_model_id_is_an_error_that_does_not_repeat_it(marker_key, azure_key, field):
    for pasted in (marker_key, azure_key, f" {marker_key} "):
        problems = openai_errors(api_key=marker_key, **{field: pasted})
        assert "looks like an API key, not a model id" in problems[field]
        assert marker_key not in str(problems) and azure_key not in str(problems)


# --------------------------------------------------------------------------- #
# More of what admins paste (from a fresh-eyes review)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "pasted, phrase",
    [
        ("https://res.openai.azure.com/openai/v1/", "API path /openai/v1"),
        ("https://res.openai.azure.com/openai/responses?api-version=2025-03-01-preview", "API path /openai/responses"),
        ('"https://res.openai.azure.com"', "quotes or brackets"),
        ("<https://res.openai.azure.com>", "quotes or brackets"),
        ("https://res.openai.azure.com\u200b", "Invisible characters"),
        ("https://res.openai.azure.com/#keys", "#fragment"),
    ],
)
def test_more_endpoint_shapes_are_cut_to_the_endpoint_with_a_notice(pasted, phrase):
    deployment = aiw.AzureDeployment(endpoint_url=pasted, deployment_id="gpt-4o", api_key="k" * 32)
    assert deployment.endpoint_url == "https://res.openai.azure.com"
    assert any(phrase in notice.message for notice in deployment.notices)


def test_a_capitalised_target_uri_is_split_too():
    deployment = aiw.AzureDeployment(
        endpoint_url="https://res.openai.azure.com/OpenAI/Deployments/my-gpt/chat/completions",
        deployment_id="",
        api_key="k" * 32,
    )
    assert deployment.deployment_id == "my-gpt"


@pytest.mark.parametrize(
    "url", ["https://res .openai.azure.com", "https://res\u2011x.openai.azure.com", "https://res.openai.azure.com:0"]
)
def test_hosts_and_ports_that_cannot_work_are_refused(url):
    with pytest.raises(ValidationError) as caught:
        aiw.AzureDeployment(endpoint_url=url, deployment_id="gpt-4o", api_key="k" * 32)
    assert "endpoint_url" in aiw.field_errors(caught.value)


def test_a_model_version_in_a_target_uri_is_not_used_and_says_so():
    integration = aiw.AzureOpenAIIntegration.shared(
        endpoint_url="https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-05-13",
        api_key="k" * 32,
        language_deployment_id="",
        embeddings_deployment_id="emb",
    )
    assert integration.api_version == "2024-10-21"
    warning = next(notice for notice in integration.notices if notice.field == "api_version")
    assert warning.level == "warning" and "2024-10-21 is used instead" in warning.message
    assert not any("2024-05-13" in notice.message and "were used" in notice.message for notice in integration.notices)


@pytest.mark.parametrize(
    "key, phrase",
    [
        ("$AZURE_OPENAI_API_KEY", "environment variable"),
        ("%OPENAI_API_KEY%", "environment variable"),
        ("os.environ['OPENAI_API_KEY']", "environment variable"),
        ("<your-api-key>", "placeholder"),
        ("YOUR_API_KEY", "placeholder"),
        ("…cbdb", "hidden hint"),
        ("••••••••", "hidden hint"),
    ],
)
def test_keys_that_are_plainly_not_keys_are_refused(key, phrase):
    with pytest.raises(ValidationError) as caught:
        aiw.OpenAIIntegration(api_key=key)
    message = aiw.field_errors(caught.value)["api_key"]
    assert phrase in message


@pytest.mark.parametrize("wrapped", ["api-key=KEY", "Ocp-Apim-Subscription-Key: KEY", "api_key=KEY"])
def test_more_key_prefixes_are_removed(wrapped):
    key = "sk-" + "q" * 40
    integration = aiw.OpenAIIntegration(api_key=wrapped.replace("KEY", key))
    assert integration.api_key.get_secret_value() == key
    assert integration.notices


@pytest.mark.parametrize(
    "fields, field, phrase",
    [
        ({"organization": "sk-" + "z" * 48}, "organization", "looks like an API key"),
        ({"organization": "proj_abc123"}, "organization", "holds a Project ID"),
        ({"project": "org-abc123"}, "project", "holds an Organization ID"),
        ({"language_model": "gpt-4o?x=1"}, "language_model", "A model id has only"),
        ({"language_model": "../../v1/models/gpt-4o"}, "language_model", "A model id has only"),
    ],
)
def test_openai_ids_that_cannot_be_right_are_refused(fields, field, phrase):
    with pytest.raises(ValidationError) as caught:
        aiw.OpenAIIntegration(api_key="sk-" + "q" * 40, **fields)
    assert phrase in aiw.field_errors(caught.value)[field]


@pytest.mark.parametrize(
    "base_url, expected, phrase",
    [
        ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1", "ended in /chat/completions"),
        ("https://api.openai.com/v1?x=1", "https://api.openai.com/v1", "?query or #fragment"),
        ("https://res.openai.azure.com", "https://res.openai.azure.com", "choose the Azure OpenAI provider"),
    ],
)
def test_openai_base_url_shapes(base_url, expected, phrase):
    integration = aiw.OpenAIIntegration(api_key="sk-" + "q" * 40, base_url=base_url)
    assert integration.base_url == expected
    assert any(phrase in notice.message for notice in integration.notices)


@pytest.mark.parametrize("url", ["http://127.0.0.2:8080/v1", "http://api.localhost:8080/v1"])
def test_plain_http_only_for_the_loopback_hosts_reached_without_a_proxy(url):
    with pytest.raises(ValidationError) as caught:
        aiw.OpenAIIntegration(api_key="sk-" + "q" * 40, base_url=url)
    assert "use https://" in aiw.field_errors(caught.value)["base_url"]


def test_a_v1_url_with_another_dated_api_version_says_to_choose_v1(azure_key):
    problems = errors_of(
        lambda: integration(
            azure_key, api_version="2025-01-01-preview", language_model={"endpoint_url": f"{RESOURCE}/openai/v1/"}
        )
    )
    assert "v1 API path" in problems["api_version"] and "choose v1" in problems["api_version"]


@pytest.mark.parametrize(
    "pasted", ["https://ai.azure.com/build/overview?wsid=/subscriptions/x", "oai.azure.com/portal"]
)
def test_a_portals_own_address_is_refused_naming_the_endpoint_to_copy(azure_key, pasted):
    said = errors_of(lambda: integration(azure_key, language_model={"endpoint_url": pasted}))[
        "language_model.endpoint_url"
    ]
    assert "portal's web page" in said and "Keys and Endpoint" in said


def test_a_shared_v1_chat_url_serves_both_models(azure_key):
    model = aiw.AzureOpenAIIntegration.shared(
        endpoint_url=f"{RESOURCE}/openai/v1/chat/completions",
        api_key=azure_key,
        language_deployment_id="my-gpt-4o",
        embeddings_deployment_id="my-embeddings",
    )
    assert model.api_version == "v1" and model.embeddings_model.endpoint_url == RESOURCE
