"""Authenticate an integration's credentials live, and classify every failure.

Both models are checked concurrently over one connection pool, each bounded by
a timeout. A remote failure is never raised: it becomes a :class:`ModelCheck`
with a stable :class:`FailureCode` and a message that names the field and says
what to do.

Requests (sources: OpenAI API reference "Retrieve model"; Azure OpenAI REST API
reference "Chat completions - Create" and "Embeddings - Create"):

* OpenAI: ``GET {base_url}/models/{model}`` with ``Authorization: Bearer <key>``,
  once for the language model and once for the embeddings model.
* Azure OpenAI: ``POST {endpoint}/openai/deployments/{deployment}/chat/completions``
  with one message and ``max_tokens: 1``, and ``POST …/{deployment}/embeddings``
  with input ``"ping"``; ``api-key: <key>`` header, ``api-version`` query parameter.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from .models import (
    ROLE_LABELS,
    AzureOpenAIIntegration,
    FailureCode,
    ModelCheck,
    OpenAIIntegration,
    Provider,
    Role,
    VerificationReport,
)

__all__ = ["Timeouts", "verify", "verify_async"]


@dataclass(frozen=True)
class Timeouts:
    """How long a check may take.

    Attributes:
        connect: seconds allowed to open a connection (default 5).
        check: seconds allowed for one whole model check, connection included (default 20).
    """

    connect: float = 5.0
    check: float = 20.0


# --------------------------------------------------------------------------- #
# Classification: one table from (provider, HTTP status, vendor error code) to our code
# --------------------------------------------------------------------------- #

_ANY = None
#: Looked up with the vendor's error code first, then with ``_ANY`` in its place,
#: then with ``_ANY`` as the provider too. Vendor codes: OpenAI API reference
#: "Error codes"; Azure OpenAI REST API reference, error responses.
_STATUS_TABLE: dict[tuple[Provider | None, int, str | None], FailureCode] = {
    (_ANY, 401, _ANY): FailureCode.INVALID_API_KEY,
    (Provider.OPENAI, 404, "model_not_found"): FailureCode.MODEL_NOT_AVAILABLE,
    (Provider.OPENAI, 404, _ANY): FailureCode.ENDPOINT_NOT_FOUND,
    (Provider.AZURE_OPENAI, 404, "DeploymentNotFound"): FailureCode.DEPLOYMENT_NOT_FOUND,
    (Provider.AZURE_OPENAI, 404, _ANY): FailureCode.ENDPOINT_NOT_FOUND,
    (Provider.AZURE_OPENAI, 400, "OperationNotSupported"): FailureCode.WRONG_MODEL_TYPE,
}

#: Transport errors, most specific first (httpx's exception hierarchy).
_TRANSPORT_TABLE: tuple[tuple[type[Exception], FailureCode], ...] = (
    (httpx.TimeoutException, FailureCode.TIMEOUT),
    (httpx.TransportError, FailureCode.CONNECTION_FAILED),
)


def _classify_status(provider: Provider, status: int, vendor_code: str | None) -> FailureCode:
    for key in ((provider, status, vendor_code), (provider, status, _ANY), (_ANY, status, _ANY)):
        if key in _STATUS_TABLE:
            return _STATUS_TABLE[key]
    return FailureCode.UNEXPECTED_RESPONSE


def _classify_transport(error: Exception) -> FailureCode:
    for kind, code in _TRANSPORT_TABLE:
        if isinstance(error, kind):
            return code
    return FailureCode.CONNECTION_FAILED


def _vendor_error_code(body: Any) -> str | None:
    """The vendor's error code from ``{"error": {"code": ...}}``, or None."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code is not None else None
    return None


# --------------------------------------------------------------------------- #
# Messages: what is wrong, then what to do
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Target:
    """What one check talks to, for messages and field paths."""

    role: Role
    provider: Provider
    url: str
    field_prefix: str  # "" for OpenAI, "language_model." / "embeddings_model." for Azure
    deployment_id: str | None
    model: str | None

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def label(self) -> str:
        return ROLE_LABELS[self.role]


def _describe(code: FailureCode, target: _Target, timeouts: Timeouts, status: int | None) -> tuple[str, str | None]:
    """The message and the field path for a failed check."""
    label, host = target.label, target.host
    endpoint_field = "base_url" if target.provider is Provider.OPENAI else target.field_prefix + "endpoint_url"
    key_field = target.field_prefix + "api_key"
    if code is FailureCode.INVALID_API_KEY:
        where = (
            "Create a key on the API keys page of platform.openai.com and paste it again."
            if target.provider is Provider.OPENAI
            else "Copy KEY 1 from the resource's Keys and Endpoint page in the Azure portal and paste it again."
        )
        return f"{label}: {host} rejected the API Key. {where}", key_field
    if code is FailureCode.DEPLOYMENT_NOT_FOUND:
        return (
            f"{label}: the resource at {host} has no deployment named '{target.deployment_id}'. "
            "Type the deployment's name as listed under Deployments in Azure AI Foundry (not the model's name); "
            "a deployment created in the last 5 minutes may not be ready yet.",
            target.field_prefix + "deployment_id",
        )
    if code is FailureCode.MODEL_NOT_AVAILABLE:
        return (
            f"{label}: this API Key cannot use the model '{target.model}'. "
            "Use a key from a project that has access to the model, or ask your OpenAI organization owner to grant it.",
            key_field,
        )
    if code is FailureCode.ENDPOINT_NOT_FOUND:
        if target.provider is Provider.OPENAI:
            return (
                f"{label}: {host} has no OpenAI API at that Base URL. Use https://api.openai.com/v1.",
                endpoint_field,
            )
        return (
            f"{label}: {host} answered 'Resource not found', so the Endpoint URL or the api-version is wrong. "
            "Use the endpoint from the Keys and Endpoint page, such as https://<resource>.openai.azure.com, with nothing after it.",
            endpoint_field,
        )
    if code is FailureCode.WRONG_MODEL_TYPE:
        wanted = "a chat model such as gpt-4o" if target.role == "language" else "text-embedding-3-small"
        return (
            f"{label}: the deployment '{target.deployment_id}' serves another kind of model than {wanted}. "
            f"Type the name of the deployment of {wanted}; the two Deployment IDs may have been swapped.",
            target.field_prefix + "deployment_id",
        )
    if code is FailureCode.TIMEOUT:
        return (
            f"{label}: {host} did not answer within {timeouts.check:g} seconds. "
            "Check the Endpoint URL and that this server can reach it (a firewall or proxy may be in the way), then try again.",
            endpoint_field,
        )
    if code is FailureCode.CONNECTION_FAILED:
        return (
            f"{label}: could not connect to {host}. "
            "Check the Endpoint URL for typos and that this server can reach the internet (or your proxy).",
            endpoint_field,
        )
    shown = f"HTTP {status}" if status is not None else "an answer"
    return (
        f"{label}: {host} sent {shown} that is not an OpenAI API response. "
        "Check that the Endpoint URL points at the OpenAI or Azure OpenAI API itself, not at a web page or a proxy's sign-in page.",
        endpoint_field,
    )


# --------------------------------------------------------------------------- #
# The checks
# --------------------------------------------------------------------------- #


def _request_id(response: httpx.Response) -> str | None:
    return response.headers.get("apim-request-id") or response.headers.get("x-request-id")


async def _run_check(
    client: httpx.AsyncClient,
    target: _Target,
    request: httpx.Request,
    timeouts: Timeouts,
) -> ModelCheck:
    started = time.perf_counter()

    def finish(code: FailureCode, *, model: str | None = None, status: int | None = None, request_id: str | None = None) -> ModelCheck:
        latency_ms = (time.perf_counter() - started) * 1000
        if code is FailureCode.OK:
            return ModelCheck(
                role=target.role, ok=True, code=code, model=model, latency_ms=latency_ms,
                message=f"{target.label}: authenticated ({model}).", request_id=request_id,
            )
        message, field = _describe(code, target, timeouts, status)
        if request_id:
            message += f" (request id {request_id})"
        return ModelCheck(
            role=target.role, ok=False, code=code, model=model, latency_ms=latency_ms,
            message=message, field=field, request_id=request_id,
        )

    try:
        response = await asyncio.wait_for(client.send(request), timeout=timeouts.check)
    except asyncio.TimeoutError:
        return finish(FailureCode.TIMEOUT)
    except httpx.HTTPError as error:
        return finish(_classify_transport(error))
    request_id = _request_id(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200:
        model = body.get("model") or body.get("id") if isinstance(body, dict) else None
        if isinstance(model, str) and model:
            return finish(FailureCode.OK, model=model, request_id=request_id)
        return finish(FailureCode.UNEXPECTED_RESPONSE, status=200, request_id=request_id)
    if body is None:
        return finish(FailureCode.UNEXPECTED_RESPONSE, status=response.status_code, request_id=request_id)
    code = _classify_status(target.provider, response.status_code, _vendor_error_code(body))
    return finish(code, status=response.status_code, request_id=request_id)


def _openai_requests(client: httpx.AsyncClient, integration: OpenAIIntegration) -> list[tuple[_Target, httpx.Request]]:
    headers = {"authorization": f"Bearer {integration.api_key.get_secret_value()}"}
    if integration.organization:
        headers["openai-organization"] = integration.organization
    if integration.project:
        headers["openai-project"] = integration.project
    pairs = []
    for role, model in (("language", integration.language_model), ("embeddings", integration.embeddings_model)):
        url = f"{integration.base_url}/models/{model}"
        target = _Target(role=role, provider=Provider.OPENAI, url=url, field_prefix="", deployment_id=None, model=model)
        pairs.append((target, client.build_request("GET", url, headers=headers)))
    return pairs


def _azure_requests(client: httpx.AsyncClient, integration: AzureOpenAIIntegration) -> list[tuple[_Target, httpx.Request]]:
    pairs = []
    for role in ("language", "embeddings"):
        deployment = integration.deployment(role)
        operation, payload = (
            ("chat/completions", {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})
            if role == "language"
            else ("embeddings", {"input": "ping"})
        )
        url = f"{deployment.endpoint_url}/openai/deployments/{deployment.deployment_id}/{operation}"
        target = _Target(
            role=role, provider=Provider.AZURE_OPENAI, url=url, field_prefix=f"{role}_model.",
            deployment_id=deployment.deployment_id, model=None,
        )
        request = client.build_request(
            "POST", url, params={"api-version": integration.api_version}, json=payload,
            headers={"api-key": deployment.api_key.get_secret_value()},
        )
        pairs.append((target, request))
    return pairs


#: Loopback hosts are reached directly, never through a proxy from HTTP(S)_PROXY.
_DIRECT = ("all://127.0.0.1", "all://localhost", "all://[::1]")


def make_client(timeouts: Timeouts = Timeouts()) -> httpx.AsyncClient:
    """An httpx client for the checks: the proxy settings of the environment, except for loopback hosts.

    Args:
        timeouts: connect and overall limits, in seconds.
    Returns:
        An ``httpx.AsyncClient``; the caller closes it.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeouts.check, connect=timeouts.connect),
        follow_redirects=False,
        trust_env=True,
        mounts={pattern: httpx.AsyncHTTPTransport() for pattern in _DIRECT},
    )


async def verify_async(
    integration: OpenAIIntegration | AzureOpenAIIntegration,
    *,
    timeouts: Timeouts = Timeouts(),
    client: httpx.AsyncClient | None = None,
) -> VerificationReport:
    """Authenticate both models of ``integration`` concurrently.

    Args:
        integration: the credentials to check.
        timeouts: connect and per-check limits, in seconds.
        client: an httpx client to reuse (its pool and settings); by default one is
            made for this call and closed after it.
    Returns:
        A :class:`VerificationReport` with the language check, then the embeddings check.
        Remote failures (refused key, unknown deployment, timeout, ...) are in the report,
        never raised. Cancelling the task cancels both checks.
    """
    owned = client is None
    if client is None:
        client = make_client(timeouts)
    try:
        pairs = (
            _openai_requests(client, integration)
            if isinstance(integration, OpenAIIntegration)
            else _azure_requests(client, integration)
        )
        checks = await asyncio.gather(*(_run_check(client, target, request, timeouts) for target, request in pairs))
    finally:
        if owned:
            await client.aclose()
    return VerificationReport(provider=integration.provider, checks=tuple(checks))


def verify(
    integration: OpenAIIntegration | AzureOpenAIIntegration, *, timeouts: Timeouts = Timeouts()
) -> VerificationReport:
    """Authenticate both models of ``integration``; blocks until the report is ready.

    Works in a plain script and inside a running Jupyter kernel: when the calling
    thread already runs an event loop, the checks run on a fresh loop in a worker thread.

    Args:
        integration: the credentials to check.
        timeouts: connect and per-check limits, in seconds.
    Returns:
        The :class:`VerificationReport`; remote failures are in it, never raised.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(verify_async(integration, timeouts=timeouts))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ai-admin-verify") as pool:
        return pool.submit(asyncio.run, verify_async(integration, timeouts=timeouts)).result()

