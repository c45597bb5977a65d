"""Issue 3: Save tells the admin exactly what is wrong, and how to fix it.

Every failure class (``FailureCode``) is produced by the sandbox over real sockets on
127.0.0.1, for both providers where the sandbox serves it, and the check says: the code,
the field it points at, what is wrong and what to do, the request id of the answer when
there was one, and never a key. Nothing here contacts any host but 127.0.0.1: the
``.invalid`` host name fails inside the sandbox's resolver hook.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import ai_admin_widgets as aiw
from ai_admin_widgets import sandbox as sandbox_module
from ai_admin_widgets.models import ROLE_LABELS, FailureCode
from ai_admin_widgets.transport import make_client
from ai_admin_widgets.verify import Timeouts, verify, verify_async

#: Upper bound for a verify call that must end by itself; only guards against a hang.
HANG_GUARD_SECONDS = 60
#: Short limits so that scenarios that wait (scenario-slow, 60 s rate limits) end quickly.
QUICK = Timeouts(connect=5, check=20, retry_budget=1)
SLOW_CHECK = Timeouts(connect=5, check=2, retry_budget=1)
QUOTED = re.compile(r"The service said: “(.*?)”")


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


@dataclass
class Keys:
    """Keys that must never show up: marker keys made for the test, and the sandbox's own."""

    openai: str
    azure: str

    def all(self, sandbox: aiw.Sandbox) -> list[str]:
        own = [sandbox.openai_api_key, sandbox.azure_api_key]
        own += [sandbox.openai_scenario_key(name) for name in ("missing_permissions", "quota_exceeded", "rate_limited")]
        return [self.openai, self.azure, *(key.get_secret_value() for key in own)]


@pytest.fixture
def keys(marker_key) -> Keys:
    return Keys(openai=marker_key, azure=uuid.uuid4().hex)


def azure(sandbox, *, endpoint=None, key=None, language=None, embeddings=None, **options) -> aiw.AzureOpenAIIntegration:
    return aiw.AzureOpenAIIntegration.shared(
        endpoint_url=endpoint or sandbox.azure_endpoint,
        api_key=key or sandbox.azure_api_key,
        language_deployment_id=language or sandbox.azure_deployments["language"],
        embeddings_deployment_id=embeddings or sandbox.azure_deployments["embeddings"],
        **options,
    )


def openai(sandbox, **fields) -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(**({"api_key": sandbox.openai_api_key, "base_url": sandbox.openai_base_url} | fields))


@dataclass
class Outcome:
    """A report, and the request ids of every answer the client received, by URL path."""

    report: aiw.VerificationReport
    answers: list[tuple[str, set[str]]] = field(default_factory=list)

    def request_ids(self, path_suffix: str) -> set[str] | None:
        """The request ids of the last answer to a path ending in ``path_suffix``; None when none came."""
        found = [ids for path, ids in self.answers if path.endswith(path_suffix)]
        return found[-1] if found else None


def run(integration, timeouts: Timeouts = QUICK) -> Outcome:
    """verify_async over the package's own client, recording each answer's request-id headers as it arrives."""
    answers: list[tuple[str, set[str]]] = []

    async def record(response: httpx.Response) -> None:
        ids = {response.headers.get(name) for name in ("apim-request-id", "x-request-id")} - {None}
        answers.append((response.request.url.path, ids))

    async def main() -> aiw.VerificationReport:
        client = make_client(timeouts)
        client.event_hooks = {"request": [], "response": [record]}
        async with client:
            return await verify_async(integration, timeouts=timeouts, client=client)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        report = pool.submit(asyncio.run, main()).result(timeout=HANG_GUARD_SECONDS)
    return Outcome(report, answers)


def verify_guarded(integration, **options) -> aiw.VerificationReport:
    """verify() in a worker thread, so that a hang fails the test instead of blocking the suite."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(verify, integration, **options).result(timeout=HANG_GUARD_SECONDS)


def target_path(integration, role: str) -> str:
    """The end of the URL path the check of ``role`` asks."""
    if isinstance(integration, aiw.OpenAIIntegration):
        return "/chat/completions" if role == "language" else "/embeddings"
    operation = "chat/completions" if role == "language" else "embeddings"
    return f"/openai/deployments/{integration.deployment(role).deployment_id}/{operation}"


def renderings(report: aiw.VerificationReport) -> str:
    return "\n".join(
        [repr(report), str(report), report.summary(), report.model_dump_json(), *(c.message for c in report.checks)]
    )


def requests_to(sandbox, path_suffix: str) -> list[dict]:
    return [request for request in sandbox.requests if request["path"].endswith(path_suffix)]


def field_for(integration, role: str, name: str) -> str:
    """``api_key`` / ``base_url`` for OpenAI; ``<role>_model.<name>`` for Azure (``api_version`` stays as it is)."""
    if name == "api_version" or isinstance(integration, aiw.OpenAIIntegration):
        return name
    return f"{role}_model.{name}"


# --------------------------------------------------------------------------- #
# One case per failure class and provider
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Case:
    code: FailureCode
    build: Callable[[aiw.Sandbox, Keys], Any]
    roles: tuple[str, ...]  # the roles that fail; the others must pass
    field: str | None  # "api_key", "endpoint_url", "deployment_id", "api_version", "base_url" (made role-specific
    # for Azure); None for a cause that no field can fix (a network rule, a region), which marks no field
    phrases: tuple[str, ...]  # what is wrong, and what to do
    answered: bool = True  # the failure came in an HTTP answer, so it has a request id
    said: str | None = None  # a phrase of the vendor's message, quoted
    timeouts: Timeouts = QUICK


BOTH = ("language", "embeddings")
LANGUAGE = ("language",)
EMBEDDINGS = ("embeddings",)

CASES: dict[str, Case] = {
    # The vendor refused the credentials.
    "invalid_api_key-azure": Case(
        FailureCode.INVALID_API_KEY,
        lambda s, k: azure(s, key=k.azure),
        BOTH,
        "api_key",
        ("rejected the API Key", "Copy KEY 1 from the resource's Keys and Endpoint page"),
    ),
    "invalid_api_key-azure-sk-key": Case(
        FailureCode.INVALID_API_KEY,
        lambda s, k: azure(s, key=k.openai),
        BOTH,
        "api_key",
        ("rejected the API Key", "KEY 1"),
    ),
    "invalid_api_key-azure-gateway": Case(
        FailureCode.INVALID_API_KEY,
        lambda s, k: azure(s, language="scenario-gateway-401"),
        LANGUAGE,
        "api_key",
        ("rejected the API Key", "check that the Endpoint URL belongs to the same resource"),
    ),
    "invalid_api_key-openai": Case(
        FailureCode.INVALID_API_KEY,
        lambda s, k: openai(s, api_key=k.openai),
        BOTH,
        "api_key",
        ("rejected the API Key", "Create a key on the API keys page of platform.openai.com"),
    ),
    "missing_permissions-openai": Case(
        FailureCode.MISSING_PERMISSIONS,
        lambda s, k: openai(s, api_key=s.openai_scenario_key("missing_permissions")),
        BOTH,
        "api_key",
        ("is valid but is not allowed to use the model", "Models (read)"),
        said="Missing scopes: api.model.read",
    ),
    "missing_permissions-azure-role": Case(
        FailureCode.MISSING_PERMISSIONS,
        lambda s, k: azure(s, language="scenario-permission-denied"),
        LANGUAGE,
        "api_key",
        ("is valid but is not allowed to use the model", "'Cognitive Services OpenAI User' role"),
        said="Principal does not have access to API/Operation.",
    ),
    # A cause the service names that a new key would not fix: said, and no field marked.
    "network_not_allowed-azure-firewall": Case(
        FailureCode.NETWORK_NOT_ALLOWED,
        lambda s, k: azure(s, embeddings="scenario-firewall"),
        EMBEDDINGS,
        None,
        ("refuses calls from the network this server is on", "Networking page", "A new key would not help"),
        said="Virtual Network/Firewall rules",
    ),
    "network_not_allowed-openai-ip": Case(
        FailureCode.NETWORK_NOT_ALLOWED,
        lambda s, k: openai(s, api_key=s.openai_scenario_key("ip_not_allowed")),
        BOTH,
        None,
        ("refuses calls from the network this server is on", "IP allow-list", "A new key would not help"),
        said="IP not authorized",
    ),
    "region_not_supported-openai": Case(
        FailureCode.REGION_NOT_SUPPORTED,
        lambda s, k: openai(s, api_key=s.openai_scenario_key("region_not_supported")),
        BOTH,
        None,
        ("not offered in the country or region", "A new key would not help"),
        said="Country, region, or territory not supported",
    ),
    "key_auth_disabled-azure": Case(
        FailureCode.KEY_AUTH_DISABLED,
        lambda s, k: azure(s, language="scenario-key-auth-disabled"),
        LANGUAGE,
        None,
        ("Key authentication is turned off", "Microsoft Entra ID", "A new key would not help"),
        said="Key based authentication is disabled for this resource.",
    ),
    "wrong_organization-openai-organization": Case(
        FailureCode.WRONG_ORGANIZATION,
        lambda s, k: openai(s, organization="org-someone-else"),
        BOTH,
        "organization",
        ("Organization ID or Project ID does not match the API Key", "Leave Organization ID and Project ID empty"),
        said="OpenAI-Organization header should match",
    ),
    "wrong_organization-openai-project": Case(
        FailureCode.WRONG_ORGANIZATION,
        lambda s, k: openai(s, organization="org-sandbox", project="proj_other"),
        BOTH,
        "project",
        ("Organization ID or Project ID does not match the API Key", "copy them from the settings"),
        said="OpenAI-Project header should match",
    ),
    # The vendor could not find, or will not serve, what the settings name.
    "model_not_available-openai": Case(
        FailureCode.MODEL_NOT_AVAILABLE,
        lambda s, k: openai(s, language_model="gpt-9-imaginary"),
        LANGUAGE,
        "api_key",
        ("cannot use the model 'gpt-9-imaginary'", "Use a key from a project that has access to the model"),
        said="does not exist or you do not have access to it",
    ),
    "deployment_not_found-azure-language": Case(
        FailureCode.DEPLOYMENT_NOT_FOUND,
        lambda s, k: azure(s, language="gpt-4o"),
        LANGUAGE,
        "deployment_id",
        ("has no deployment named 'gpt-4o'", "as listed under Deployments", "not the model's name"),
        said="The API deployment for this resource does not exist.",
    ),
    "deployment_not_found-azure-embeddings": Case(
        FailureCode.DEPLOYMENT_NOT_FOUND,
        lambda s, k: azure(s, embeddings="text-embedding-3-small"),
        EMBEDDINGS,
        "deployment_id",
        ("has no deployment named 'text-embedding-3-small'", "as listed under Deployments"),
    ),
    "endpoint_not_found-azure": Case(
        FailureCode.ENDPOINT_NOT_FOUND,
        lambda s, k: azure(s, endpoint=f"{s.azure_endpoint}/language"),
        BOTH,
        "endpoint_url",
        ("answered 'Resource not found'", "with nothing after it"),
        said="Resource not found",
    ),
    "endpoint_not_found-openai": Case(
        FailureCode.ENDPOINT_NOT_FOUND,
        lambda s, k: openai(s, base_url=s.url),
        BOTH,
        "base_url",
        ("has no OpenAI API at that Base URL", "Use https://api.openai.com/v1"),
    ),
    "api_version_unsupported-azure": Case(
        FailureCode.API_VERSION_UNSUPPORTED,
        lambda s, k: azure(s, api_version="2023-01-01-preview"),
        BOTH,
        "api_version",
        ("API version 2023-01-01-preview is unknown", "Use a current API version: 2024-10-21"),
        said="API version not supported",
    ),
    "api_version_unsupported-azure-reasoning": Case(
        FailureCode.API_VERSION_UNSUPPORTED,
        lambda s, k: azure(s, language="reasoning-o3-mini"),
        LANGUAGE,
        "api_version",
        ("too old for the deployed model", "Use API version 2024-12-01-preview or later, which this model needs"),
        said="enabled only for api versions 2024-12-01-preview and later",
    ),
    "wrong_model_type-azure": Case(
        FailureCode.WRONG_MODEL_TYPE,
        lambda s, k: azure(s, language="embeddings-3-small", embeddings="chat-gpt-4o"),
        BOTH,
        "deployment_id",
        ("serves another kind of model", "the two Deployment IDs may have been swapped"),
        said="operation does not work with the specified model",
    ),
    "model_not_supported-azure-gpt-35-turbo": Case(
        FailureCode.MODEL_NOT_SUPPORTED,
        lambda s, k: azure(s, language="chat-gpt-35-turbo"),
        LANGUAGE,
        "deployment_id",
        ("answers as gpt-35-turbo, but AI features need GPT-4 Turbo or later", "Deploy GPT-4 Turbo or later"),
    ),
    "model_not_supported-azure-ada-002": Case(
        FailureCode.MODEL_NOT_SUPPORTED,
        lambda s, k: azure(s, embeddings="embeddings-ada-002"),
        EMBEDDINGS,
        "deployment_id",
        (
            "answers as text-embedding-ada-002, but AI features need text-embedding-3-small",
            "Deploy text-embedding-3-small",
        ),
    ),
    "model_not_supported-openai-gpt-3.5-turbo": Case(
        FailureCode.MODEL_NOT_SUPPORTED,
        lambda s, k: openai(s, language_model="gpt-3.5-turbo"),
        LANGUAGE,
        "api_key",
        ("answers as gpt-3.5-turbo, but AI features need GPT-4 Turbo or later", "Use GPT-4 Turbo or later"),
    ),
    # The vendor is busy, out of quota, or failing.
    "quota_exceeded-openai": Case(
        FailureCode.QUOTA_EXCEEDED,
        lambda s, k: openai(s, api_key=s.openai_scenario_key("quota_exceeded")),
        BOTH,
        "api_key",
        ("used up its quota or credit", "Billing page of platform.openai.com"),
        said="You exceeded your current quota",
    ),
    "quota_exceeded-azure": Case(
        FailureCode.QUOTA_EXCEEDED,
        lambda s, k: azure(s, language="scenario-quota"),
        LANGUAGE,
        "api_key",
        ("used up its quota or credit", "Raise the deployment's quota in Microsoft Foundry (Quotas)"),
        said="You exceeded your current quota",
    ),
    "rate_limited-azure": Case(
        FailureCode.RATE_LIMITED,
        lambda s, k: azure(s, language="scenario-rate-limited-long"),
        LANGUAGE,
        "deployment_id",
        ("limiting requests", "asks to wait 60 seconds", "Wait 60 seconds and Save again"),
        said="Please retry after 60 seconds.",
    ),
    "rate_limited-openai": Case(
        FailureCode.RATE_LIMITED,
        lambda s, k: openai(s, api_key=s.openai_scenario_key("rate_limited")),
        BOTH,
        "api_key",
        ("limiting requests", "Wait 60 seconds and Save again"),
        said="Please try again in 60s.",
    ),
    "server_error-azure": Case(
        FailureCode.SERVER_ERROR,
        lambda s, k: azure(s, language="scenario-server-error"),
        LANGUAGE,
        "endpoint_url",
        ("answered with a server error (HTTP 500)", "wait a few minutes and Save again"),
        said="The server had an error",
    ),
    "server_error-openai": Case(
        FailureCode.SERVER_ERROR,
        lambda s, k: openai(s, language_model="scenario-server-error"),
        LANGUAGE,
        "base_url",
        ("answered with a server error (HTTP 500)", "wait a few minutes and Save again"),
        said="The server had an error",
    ),
    # The network between the kernel and the vendor.
    "timeout-azure": Case(
        FailureCode.TIMEOUT,
        lambda s, k: azure(s, language="scenario-slow"),
        LANGUAGE,
        "endpoint_url",
        ("did not answer within 2 seconds", "a firewall or proxy may be in the way"),
        answered=False,
        timeouts=SLOW_CHECK,
    ),
    "timeout-openai": Case(
        FailureCode.TIMEOUT,
        lambda s, k: openai(s, embeddings_model="scenario-slow"),
        EMBEDDINGS,
        "base_url",
        ("did not answer within 2 seconds", "Check the Endpoint URL"),
        answered=False,
        timeouts=SLOW_CHECK,
    ),
    "timeout-azure-unresponsive-endpoint": Case(
        FailureCode.TIMEOUT,
        lambda s, k: azure(s, endpoint=s.unresponsive_endpoint),
        BOTH,
        "endpoint_url",
        ("did not answer within 2 seconds", "a firewall or proxy may be in the way"),
        answered=False,
        timeouts=SLOW_CHECK,
    ),
    "dns_failure-azure": Case(
        FailureCode.DNS_FAILURE,
        lambda s, k: azure(s, endpoint=s.unknown_host_endpoint),
        BOTH,
        "endpoint_url",
        ("host name no-such-resource.openai.azure.invalid could not be found", "Check the Endpoint URL for typos"),
        answered=False,
    ),
    "dns_failure-openai": Case(
        FailureCode.DNS_FAILURE,
        lambda s, k: openai(s, base_url=f"{s.unknown_host_endpoint}/v1"),
        BOTH,
        "base_url",
        ("could not be found", "check that this server's DNS knows the name"),
        answered=False,
    ),
    "connection_failed-azure": Case(
        FailureCode.CONNECTION_FAILED,
        lambda s, k: azure(s, endpoint=s.refused_endpoint),
        BOTH,
        "endpoint_url",
        ("Could not connect to 127.0.0.1:", "your proxy (HTTPS_PROXY)"),
        answered=False,
    ),
    "connection_failed-openai": Case(
        FailureCode.CONNECTION_FAILED,
        lambda s, k: openai(s, base_url=f"{s.refused_endpoint}/v1"),
        BOTH,
        "base_url",
        ("Could not connect to 127.0.0.1:", "Check the Endpoint URL"),
        answered=False,
    ),
    # The answer itself.
    "unexpected_response-azure-html": Case(
        FailureCode.UNEXPECTED_RESPONSE,
        lambda s, k: azure(s, language="scenario-proxy-html"),
        LANGUAGE,
        "endpoint_url",
        ("sent a web page (HTML)", "not at a web page or a proxy's sign-in page"),
    ),
    "unexpected_response-azure-wrong-shape": Case(
        FailureCode.UNEXPECTED_RESPONSE,
        lambda s, k: azure(s, embeddings="scenario-wrong-shape"),
        EMBEDDINGS,
        "endpoint_url",
        (
            "sent an answer with HTTP status 200 instead of an OpenAI API response",
            "points at the OpenAI or Azure OpenAI API itself",
        ),
    ),
    "unexpected_response-openai-html": Case(
        FailureCode.UNEXPECTED_RESPONSE,
        lambda s, k: openai(s, language_model="scenario-proxy-html"),
        LANGUAGE,
        "base_url",
        ("sent a web page (HTML)", "proxy's sign-in page"),
    ),
    "unexpected_response-openai-wrong-shape": Case(
        FailureCode.UNEXPECTED_RESPONSE,
        lambda s, k: openai(s, language_model="scenario-wrong-shape"),
        LANGUAGE,
        "base_url",
        ("instead of an OpenAI API response",),
    ),
}
#: Classes that need a sandbox of their own (https from a private certificate authority): see the TLS tests here,
#: and, for address_refused (the AI gateway's pinned connections), test_gateway's rebinding test.
OWN_SANDBOX = {FailureCode.TLS_ERROR, FailureCode.ADDRESS_REFUSED}
#: Not a failed check: the request got past authentication (see the content filter's tests here and in test_ai).
NOT_A_CHECK_FAILURE = {FailureCode.CONTENT_REFUSED}
#: Microsoft Entra ID's sign-in (keyless Azure OpenAI) needs the sandbox over TLS: each class in tests/test_entra.py.
IN_TEST_ENTRA = {
    FailureCode.ENTRA_TENANT_NOT_FOUND,
    FailureCode.ENTRA_CLIENT_NOT_FOUND,
    FailureCode.ENTRA_SECRET_INVALID,
    FailureCode.ENTRA_SECRET_EXPIRED,
    FailureCode.ENTRA_IDENTITY_UNAVAILABLE,
    FailureCode.ENTRA_UNREACHABLE,
    FailureCode.ENTRA_SIGN_IN_REFUSED,
    FailureCode.ENTRA_TOKEN_REFUSED,
    FailureCode.ROLE_MISSING,
}


def test_every_failure_class_has_a_sandbox_scenario_here():
    covered = {case.code for case in CASES.values()} | OWN_SANDBOX | NOT_A_CHECK_FAILURE | IN_TEST_ENTRA
    assert covered == set(FailureCode) - {FailureCode.OK}


@pytest.mark.parametrize("name", list(CASES))
def test_failure_is_classified_pointed_at_its_field_and_explained(sandbox, keys, name):
    case = CASES[name]
    integration = case.build(sandbox, keys)
    outcome = run(integration, case.timeouts)
    report = outcome.report

    assert not report.ok
    assert [check.role for check in report.checks] == ["language", "embeddings"]
    for check in report.checks:
        if check.role not in case.roles:  # a failing check does not stop the other model's check
            assert check.ok and check.code is FailureCode.OK, check.message
            continue
        assert check.code is case.code, check.message
        assert check.field == (None if case.field is None else field_for(integration, check.role, case.field))
        assert check.message.startswith(f"{ROLE_LABELS[check.role]}: ")
        for phrase in case.phrases:
            assert phrase in check.message

        ids = outcome.request_ids(target_path(integration, check.role))
        if case.answered:
            assert ids, "the sandbox answered with a request id"
            assert check.request_id in ids
            assert f"Request id {check.request_id}" in check.message
        else:
            assert ids is None and check.request_id is None
            assert "Request id" not in check.message

        quoted = QUOTED.findall(check.message)
        if case.said is not None:
            assert len(quoted) == 1 and case.said in quoted[0]
        if case.code is FailureCode.INVALID_API_KEY:
            assert quoted == []  # the vendor's text about a key may repeat part of it

    shown = renderings(report)
    for key in keys.all(sandbox):
        assert key not in shown


def test_openai_invalid_key_message_does_not_quote_the_vendor(sandbox, keys):
    report = run(openai(sandbox, api_key=keys.openai)).report
    message = report.check("language").message
    assert "Incorrect API key provided" not in message  # what OpenAI says, sometimes with the key's start and end
    assert "The service said" not in message


# --------------------------------------------------------------------------- #
# Retries: rate limits, quotas, server errors
# --------------------------------------------------------------------------- #


def test_short_rate_limit_is_retried_once_per_operation_and_passes(sandbox):
    report = run(azure(sandbox, language="scenario-rate-limited", embeddings="scenario-rate-limited")).report
    assert report.ok, report.summary()
    assert [check.code for check in report.checks] == [FailureCode.OK, FailureCode.OK]
    assert len(requests_to(sandbox, "/scenario-rate-limited/chat/completions")) == 2
    assert len(requests_to(sandbox, "/scenario-rate-limited/embeddings")) == 2


@pytest.mark.parametrize("provider", ["azure", "openai"])
def test_long_rate_limit_is_reported_at_once_saying_to_wait_60_seconds(sandbox, provider):
    if provider == "azure":
        integration, path = (
            azure(sandbox, language="scenario-rate-limited-long"),
            "/scenario-rate-limited-long/chat/completions",
        )
    else:
        integration, path = openai(sandbox, api_key=sandbox.openai_scenario_key("rate_limited")), "/v1/chat/completions"
    report = verify_guarded(integration, timeouts=Timeouts(retry_budget=2))
    language = report.check("language")
    assert language.code is FailureCode.RATE_LIMITED
    assert "Wait 60 seconds" in language.message
    assert len(requests_to(sandbox, path)) == 1  # no retry: 60 s is more than the budget allows


@pytest.mark.parametrize("provider", ["azure", "openai"])
def test_used_up_quota_is_never_retried(sandbox, provider):
    if provider == "azure":
        report = run(azure(sandbox, language="scenario-quota")).report
        paths = ["/scenario-quota/chat/completions"]
    else:
        report = run(openai(sandbox, api_key=sandbox.openai_scenario_key("quota_exceeded"))).report
        paths = ["/v1/chat/completions", "/v1/embeddings"]
    assert report.check("language").code is FailureCode.QUOTA_EXCEEDED
    for path in paths:
        assert len(requests_to(sandbox, path)) == 1


@pytest.mark.parametrize("provider", ["azure", "openai"])
def test_server_error_is_retried_exactly_once_then_reported(sandbox, provider):
    if provider == "azure":
        report = run(azure(sandbox, language="scenario-server-error")).report
        path = "/scenario-server-error/chat/completions"
    else:
        report = run(openai(sandbox, language_model="scenario-server-error")).report
        path = "/v1/chat/completions"
    assert report.check("language").code is FailureCode.SERVER_ERROR
    assert len(requests_to(sandbox, path)) == 2
    assert report.check("embeddings").ok


# --------------------------------------------------------------------------- #
# Reasoning models and api-versions
# --------------------------------------------------------------------------- #


def test_reasoning_model_passes_with_max_completion_tokens_on_a_recent_api_version(sandbox):
    report = run(azure(sandbox, language="reasoning-o3-mini", api_version="2024-12-01-preview")).report
    assert report.ok, report.summary()
    assert report.check("language").model.startswith("o3-mini")
    first, second = requests_to(sandbox, "/reasoning-o3-mini/chat/completions")
    assert first["body"]["max_tokens"] == 1 and "max_completion_tokens" not in first["body"]
    assert second["body"]["max_completion_tokens"] == 1 and "max_tokens" not in second["body"]
    assert first["query"]["api-version"] == second["query"]["api-version"] == ["2024-12-01-preview"]


def test_reasoning_model_on_the_default_api_version_is_api_version_unsupported(sandbox):
    report = run(azure(sandbox, language="reasoning-o3-mini")).report
    language = report.check("language")
    assert language.code is FailureCode.API_VERSION_UNSUPPORTED
    assert language.field == "api_version"
    assert "2024-12-01-preview or later" in language.message
    assert report.check("embeddings").ok


# --------------------------------------------------------------------------- #
# Models that answer but are not good enough, or cannot be told apart
# --------------------------------------------------------------------------- #


def test_plain_gpt_4_passes_with_a_warning_that_save_keeps_in_the_status(sandbox, settings, tmp_path, file_keyring):
    integration = azure(sandbox, language="chat-gpt-4")
    report = run(integration).report
    language = report.check("language")
    assert report.ok and language.model == "gpt-4"
    assert "check that its model version is turbo-2024-04-09" in language.warning
    assert "In Microsoft Foundry, open the deployment" in language.warning

    status = settings.save(integration)
    assert status.configured
    assert language.warning in status.warnings
    assert language.warning in settings.status().warnings
    reopened = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring)
    assert reopened.status().warnings == (language.warning,)


def test_a_failed_save_says_why_and_stores_nothing(sandbox, settings, keys):
    with pytest.raises(aiw.VerificationFailed) as refused:
        settings.save(azure(sandbox, key=keys.azure))
    report = refused.value.report
    assert [check.code for check in report.checks] == [FailureCode.INVALID_API_KEY, FailureCode.INVALID_API_KEY]
    assert "rejected the API Key" in str(refused.value)
    assert not settings.status().configured
    assert keys.azure not in str(refused.value) + renderings(report)


# --------------------------------------------------------------------------- #
# The network: TLS through an inspecting proxy, unknown host names
# --------------------------------------------------------------------------- #


@pytest.fixture
def tls_sandbox(monkeypatch):
    """A sandbox serving https with a certificate from its own certificate authority, trusted by nothing by default."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with aiw.Sandbox(tls=True) as running:
        yield running


@pytest.mark.parametrize("provider", ["azure", "openai"])
def test_untrusted_certificate_is_tls_error_mentioning_the_proxy_certificate_authority(tls_sandbox, provider):
    assert tls_sandbox.url.startswith("https://127.0.0.1:")
    integration = azure(tls_sandbox) if provider == "azure" else openai(tls_sandbox)
    report = verify_guarded(integration)
    for check in report.checks:
        assert check.code is FailureCode.TLS_ERROR, check.message
        assert check.field == field_for(integration, check.role, "endpoint_url" if provider == "azure" else "base_url")
        assert "certificate is not trusted" in check.message
        assert "proxy's certificate authority (CA) bundle" in check.message
        assert "SSL_CERT_FILE" in check.message
        assert check.request_id is None
    shown = renderings(report)
    assert tls_sandbox.azure_api_key.get_secret_value() not in shown
    assert tls_sandbox.openai_api_key.get_secret_value() not in shown


@pytest.mark.parametrize("provider", ["azure", "openai"])
def test_ssl_cert_file_naming_the_proxy_certificate_authority_makes_the_same_check_pass(
    tls_sandbox, monkeypatch, provider
):
    integration = azure(tls_sandbox) if provider == "azure" else openai(tls_sandbox)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_sandbox.ca_bundle))
    report = verify_guarded(integration)
    assert report.ok, report.summary()


def test_a_certificate_bundle_rewritten_in_place_is_read_again(tls_sandbox, monkeypatch, tmp_path):
    """The checks keep their certificate authorities between Saves, but not once SSL_CERT_FILE's file changes."""
    bundle = tmp_path / "proxy-ca.pem"
    with aiw.Sandbox(tls=True) as other:  # another authority: the sandbox's certificate is not trusted
        bundle.write_bytes(other.ca_bundle.read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert {check.code for check in verify_guarded(azure(tls_sandbox)).checks} == {FailureCode.TLS_ERROR}
    bundle.write_bytes(tls_sandbox.ca_bundle.read_bytes())  # the admin puts the right authority in the same file
    report = verify_guarded(azure(tls_sandbox))
    assert report.ok, report.summary()


def test_unknown_host_name_fails_without_asking_a_real_dns_server(sandbox):
    asked: list[str] = []
    real = sandbox_module._real_getaddrinfo

    def spy(host, *args, **kwargs):
        asked.append(host.decode() if isinstance(host, bytes) else str(host))
        return real(host, *args, **kwargs)

    sandbox_module._real_getaddrinfo = spy  # restored before the sandbox stops and hands the resolver back
    try:
        report = verify_guarded(azure(sandbox, endpoint=sandbox.unknown_host_endpoint))
    finally:
        sandbox_module._real_getaddrinfo = real
    assert [check.code for check in report.checks] == [FailureCode.DNS_FAILURE, FailureCode.DNS_FAILURE]
    assert not [host for host in asked if host.rstrip(".").endswith(".invalid")]
    assert sandbox.requests == []


def test_timeout_names_the_limit_and_the_other_model_still_answers(sandbox):
    seen: list[aiw.ModelCheck] = []
    integration = azure(sandbox, language="scenario-slow")

    async def main():
        return await verify_async(integration, timeouts=SLOW_CHECK, on_check=seen.append)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        report = pool.submit(asyncio.run, main()).result(timeout=HANG_GUARD_SECONDS)
    assert report.check("language").code is FailureCode.TIMEOUT
    assert report.check("embeddings").ok
    assert {check.role for check in seen} == {"language", "embeddings"}
    assert seen[0].role == "embeddings"  # reported as soon as it was done, not after the slow one


# --------------------------------------------------------------------------- #
# What the vendor said: quoted, with anything key-shaped hidden
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("model_id", ["my-fine-tuned-model-0123456789abcdefghij"])
def test_vendor_message_is_quoted_with_key_shaped_text_hidden(sandbox, model_id):
    report = run(openai(sandbox, language_model=model_id)).report
    language = report.check("language")
    assert language.code is FailureCode.MODEL_NOT_AVAILABLE
    (quoted,) = QUOTED.findall(language.message)
    assert quoted == "The model `[hidden]` does not exist or you do not have access to it."
    assert model_id not in quoted


# --------------------------------------------------------------------------- #
# This server's own network settings, redirects, and errors of no other class
# --------------------------------------------------------------------------- #


def test_an_unreadable_ssl_cert_file_is_a_message_not_an_exception(sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing-bundle.pem"))
    report = verify(openai(sandbox))
    assert {check.code for check in report.checks} == {FailureCode.TLS_ERROR}
    assert "SSL_CERT_FILE" in report.checks[0].message and "missing-bundle.pem" in report.checks[0].message
    assert sandbox.requests == []


def test_a_redirect_says_where_it_points(sandbox):
    report = verify(azure(sandbox, language="scenario-redirect"))
    check = report.check("language")
    assert check.code is FailureCode.UNEXPECTED_RESPONSE
    assert "redirected the check elsewhere (HTTP 307, to https://elsewhere.example.invalid/openai)" in check.message


def test_an_api_error_of_no_other_class_quotes_the_service_not_a_proxy_page(sandbox):
    check = verify(azure(sandbox, language="scenario-unknown-error")).check("language")
    assert check.code is FailureCode.UNEXPECTED_RESPONSE
    assert "refused the check with HTTP 400 and error code InvalidPayload" in check.message
    assert "upstream policy" in check.message
    assert "web page" not in check.message


def test_a_content_filter_refusing_the_check_is_not_a_credential_failure(sandbox, settings):
    """Past authentication, on a deployment that exists: Save passes, says why, and marks no field."""
    integration = azure(sandbox, language="scenario-content-filter")
    report = verify(integration)
    language = report.check("language")
    assert report.ok and language.ok and language.code is FailureCode.OK and language.field is None
    assert "content filter refused the check's one-word message" in language.warning
    assert "content management policy" in language.warning  # the service's own words
    status = settings.save(integration)
    assert status.configured and language.warning in status.warnings


def test_the_vendor_code_decides_before_the_status(sandbox):
    """A 403 with ``insufficient_quota`` is a used-up quota (not a permission); a 401 ``invalid_api_key`` a key."""
    from ai_admin_widgets.transport import _classify_status, _VendorError

    quota = _VendorError(code="insufficient_quota", message="You exceeded your current quota")
    assert _classify_status(aiw.Provider.OPENAI, 403, quota) is FailureCode.QUOTA_EXCEEDED
    assert _classify_status(aiw.Provider.AZURE_OPENAI, 400, _VendorError(code="DeploymentNotFound")) is (
        FailureCode.DEPLOYMENT_NOT_FOUND
    )
    assert _classify_status(aiw.Provider.AZURE_OPENAI, 403, _VendorError(code="403", message="Forbidden")) is (
        FailureCode.MISSING_PERMISSIONS  # a code that only repeats the status is no code
    )
    # a content filter refuses with 400, past authentication; the same code with another status is not believed
    content = _VendorError(code="content_filter", message="filtered")
    assert _classify_status(aiw.Provider.AZURE_OPENAI, 400, content) is FailureCode.CONTENT_REFUSED
    assert _classify_status(aiw.Provider.AZURE_OPENAI, 401, content) is FailureCode.INVALID_API_KEY
    assert _classify_status(aiw.Provider.OPENAI, 403, content) is FailureCode.MISSING_PERMISSIONS
    assert _classify_status(aiw.Provider.AZURE_OPENAI, 500, content) is FailureCode.SERVER_ERROR


def test_a_proxy_that_refuses_is_named(monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NeedsLogin(BaseHTTPRequestHandler):
        def do_CONNECT(self):
            self.send_response(407)
            self.send_header("proxy-authenticate", 'Basic realm="corp"')
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            return

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), NeedsLogin)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        integration = aiw.AzureOpenAIIntegration.shared(
            endpoint_url="https://my-resource.openai.azure.com",
            api_key="sandbox-azure-proxy-test-0000",
            language_deployment_id="chat-gpt-4o",
            embeddings_deployment_id="embeddings-3-small",
        )
        check = verify(integration).check("language")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert check.code is FailureCode.CONNECTION_FAILED
    assert "The proxy from HTTPS_PROXY" in check.message and "407" in check.message


def test_part_of_a_key_echoed_by_the_service_is_hidden():
    from ai_admin_widgets.transport import _vendor_text, _VendorError

    key = "sandbox-azure-LEAKMARKa1b2c3d4e5f6"
    said = _vendor_text(
        _VendorError(message="The key LEAKMARKa1b2c3d4e5 is not allowed; you exceeded your quota."), key
    )
    assert "LEAKMARK" not in said and "[hidden]" in said
    assert "exceeded your quota" in said


@pytest.mark.parametrize("masked", ["sk-abc***wxyz", "sk-proj-********************wxyz", "abcd****wxyz"])
def test_a_masked_key_in_the_service_message_is_hidden(masked):
    from ai_admin_widgets.transport import _vendor_text, _VendorError

    said = _vendor_text(_VendorError(message=f"Incorrect API key provided: {masked}. Check it."), "unrelated")
    assert masked not in said and "[hidden]" in said


@pytest.mark.parametrize("echo", ["model", "location", "request-id", "error-code"])
def test_a_service_that_echoes_the_key_never_gets_it_shown_or_stored(echo, tmp_path, file_keyring):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):
            key = self.headers.get("api-key", "")
            self.rfile.read(int(self.headers.get("content-length") or 0))
            status, body, headers = (
                200,
                {"model": "text-embedding-3-small", "data": [{"embedding": [0.1]}], "choices": []},
                {},
            )
            if echo == "model":
                body["model"] = f"gpt-4o-{key}"
            elif echo == "location":
                status, body, headers = 302, {}, {"location": f"https://elsewhere.invalid/?k={key}"}
            elif echo == "request-id":
                headers = {"x-request-id": key}
                status, body = 401, {"error": {"code": "401", "message": "denied"}}
            else:
                status, body = 400, {"error": {"code": f"bad_{key}", "message": "no"}}
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = "sandbox-azure-ECHO" + uuid.uuid4().hex
    try:
        settings = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring)
        integration = aiw.AzureOpenAIIntegration.shared(
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            api_key=key,
            language_deployment_id="chat",
            embeddings_deployment_id="emb",
        )
        try:
            settings.save(integration)
        except aiw.VerificationFailed as failure:
            shown = str(failure) + failure.report.model_dump_json()
        else:
            shown = settings.status().model_dump_json() + (settings.home / "settings.json").read_text()
    finally:
        server.shutdown()
        server.server_close()
    assert "connection" not in shown.lower(), "the echoing server did not answer: this test proves nothing"
    assert key[-20:] not in shown and key not in shown


# --------------------------------------------------------------------------- #
# OpenAI: Save's check generates, so a key without credit fails at Save
# --------------------------------------------------------------------------- #


def test_an_openai_key_without_credit_fails_save_though_it_may_read_models(sandbox, settings):
    key = sandbox.openai_scenario_key("quota_exceeded")
    read = httpx.get(
        f"{sandbox.openai_base_url}/models/gpt-4o", headers={"authorization": f"Bearer {key.get_secret_value()}"}
    )
    assert read.status_code == 200  # what the check before this one asked: it would have passed
    with pytest.raises(aiw.VerificationFailed) as refused:
        settings.save(openai(sandbox, api_key=key))
    assert [check.code for check in refused.value.report.checks] == [FailureCode.QUOTA_EXCEEDED] * 2
    assert "Billing page of platform.openai.com" in str(refused.value)
    assert not settings.status().configured


def test_the_openai_check_is_the_smallest_generation_per_model(sandbox):
    report = run(openai(sandbox)).report
    assert report.ok, report.summary()
    chat, embeddings = requests_to(sandbox, "/v1/chat/completions"), requests_to(sandbox, "/v1/embeddings")
    assert [request["method"] for request in chat + embeddings] == ["POST", "POST"]
    assert chat[0]["body"]["max_tokens"] == 1 and chat[0]["body"]["model"] == "gpt-4o"
    assert len(json.dumps(chat[0]["body"]["messages"])) < 50  # a few tokens in
    assert embeddings[0]["body"] == {"model": "text-embedding-3-small", "input": "ping"}
    assert requests_to(sandbox, "/v1/models/gpt-4o") == []


def test_an_openai_reasoning_model_is_asked_with_max_completion_tokens_at_once(sandbox):
    report = run(openai(sandbox, language_model="o3-mini")).report
    assert report.ok, report.summary()
    (chat,) = requests_to(sandbox, "/v1/chat/completions")  # one request: no refusal to retry
    assert chat["body"]["max_completion_tokens"] == 1 and "max_tokens" not in chat["body"]


# --------------------------------------------------------------------------- #
# Azure OpenAI's v1 API: {endpoint}/openai/v1/, no api-version, the deployment as the model
# --------------------------------------------------------------------------- #


def test_the_azure_v1_api_is_checked_without_an_api_version(sandbox):
    report = run(azure(sandbox, api_version="v1")).report
    assert report.ok, report.summary()
    chat, embeddings = (
        requests_to(sandbox, "/openai/v1/chat/completions"),
        requests_to(sandbox, "/openai/v1/embeddings"),
    )
    assert chat[0]["query"] == {} and embeddings[0]["query"] == {}
    assert chat[0]["body"]["model"] == sandbox.azure_deployments["language"]
    assert embeddings[0]["body"]["model"] == sandbox.azure_deployments["embeddings"]
    assert report.check("language").model.startswith("gpt-4o")


def test_a_pasted_v1_url_chooses_the_v1_api_and_says_so(sandbox):
    integration = aiw.AzureOpenAIIntegration.shared(
        endpoint_url=f"{sandbox.azure_endpoint}/openai/v1/",
        api_key=sandbox.azure_api_key,
        language_deployment_id=sandbox.azure_deployments["language"],
        embeddings_deployment_id=sandbox.azure_deployments["embeddings"],
    )
    assert integration.api_version == "v1"
    assert integration.language_model.endpoint_url == sandbox.azure_endpoint
    said = " ".join(notice.message for notice in integration.notices)
    assert "v1 API" in said
    assert run(integration).report.ok


def test_a_v1_deployment_that_does_not_exist_is_deployment_not_found(sandbox):
    check = run(azure(sandbox, language="no-such-deployment", api_version="v1")).report.check("language")
    assert check.code is FailureCode.DEPLOYMENT_NOT_FOUND and check.field == "language_model.deployment_id"
