"""Authenticate an integration's credentials live, and classify every failure.

Both models are checked concurrently over one connection pool, each bounded by
a timeout. A remote failure is never raised: it becomes a :class:`ModelCheck`
with a stable :class:`FailureCode` and a message that names the field, says what
is wrong and what to do, and carries the vendor's request id.

Requests (sources: OpenAI API reference "Models: retrieve"; Azure OpenAI REST API
reference "Chat completions - Create" and "Embeddings - Create"):

* OpenAI: ``GET {base_url}/models/{model}`` with ``Authorization: Bearer <key>``
  (and ``OpenAI-Organization`` / ``OpenAI-Project`` when set), once for the language
  model and once for the embeddings model.
* Azure OpenAI: ``POST {endpoint}/openai/deployments/{deployment}/chat/completions``
  with one message and ``max_tokens: 1`` (``max_completion_tokens: 1`` for reasoning
  models, which reject ``max_tokens``), and ``POST …/{deployment}/embeddings`` with
  input ``"ping"``; ``api-key: <key>`` header, ``api-version`` query parameter.

Rate limits (429) are retried within :attr:`Timeouts.retry_budget`, honouring
``retry-after-ms`` and ``retry-after`` (Azure OpenAI "Quotas and limits"); a
used-up quota is never retried. A server error (5xx) is retried once.

The request loop (:func:`send`, :func:`send_async`), the request parts
(:func:`openai_headers`, :func:`azure_request_parts`) and the messages
(:func:`explain`) also serve :mod:`ai_admin_widgets.ai`, so a failed chat or
embeddings call is classified and worded as a failed check is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

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
from .normalize import LOOPBACK_HOSTS, judge_model

__all__ = [
    "Answer",
    "Failure",
    "Timeouts",
    "azure_request_parts",
    "explain",
    "make_client",
    "make_sync_client",
    "openai_headers",
    "openai_target",
    "send",
    "send_async",
    "setup_problem",
    "unexpected_answer",
    "verify",
    "verify_async",
]

#: Called with each model's check as soon as it is done.
CheckListener = Callable[[ModelCheck], None]


@dataclass(frozen=True)
class Timeouts:
    """How long a check may take.

    Attributes:
        connect: seconds allowed to open a connection (default 5).
        check: seconds allowed for one whole model check, retries included (default 20).
        retry_budget: the most seconds a check waits in total for rate limits before it
            reports ``rate_limited`` (default 10).
    """

    connect: float = 5.0
    check: float = 20.0
    retry_budget: float = 10.0


# --------------------------------------------------------------------------- #
# Reading an error answer
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _VendorError:
    """The parts of an error body: ``code``, ``message``, ``type`` and ``param``, whichever shape it came in."""

    code: str | None = None
    message: str = ""
    type: str | None = None
    param: str | None = None


def _read_error(body: Any) -> _VendorError | None:
    """Parse the OpenAI shape ``{"error": {"message", "type", "param", "code"}}``, Azure's
    ``{"error": {"code", "message", "innererror"}}`` and gateway shapes such as
    ``{"statusCode": 401, "message": …}``; None for any other body."""
    if not isinstance(body, dict):
        return None
    folded = {str(key).lower(): value for key, value in body.items()}
    error = folded.get("error")
    if isinstance(error, dict):
        inner = {str(key).lower(): value for key, value in error.items()}
        code = inner.get("code")
        innermost = inner.get("innererror")
        if isinstance(innermost, dict) and innermost.get("code") and code in (None, "", "BadRequest"):
            code = innermost["code"]
        return _VendorError(
            code=str(code) if code not in (None, "") else None,
            message=str(inner.get("message") or ""),
            type=str(inner["type"]) if inner.get("type") else None,
            param=str(inner["param"]) if inner.get("param") else None,
        )
    if isinstance(error, str):
        return _VendorError(message=error)
    if "message" in folded and ("statuscode" in folded or "code" in folded):
        code = folded.get("code")
        return _VendorError(code=str(code) if code not in (None, "") else None, message=str(folded["message"]))
    return None


# --------------------------------------------------------------------------- #
# Classification tables
# --------------------------------------------------------------------------- #

_ANY = None

#: (provider, HTTP status, vendor error code) -> our code. Looked up with the vendor's
#: code, then the message hints below, then with ``_ANY`` for the code, then for the
#: provider too. Vendor codes: OpenAI API reference "Error codes"; Azure OpenAI REST API
#: reference, error responses.
_STATUS_TABLE: dict[tuple[Provider | None, int, str | None], FailureCode] = {
    (_ANY, 401, _ANY): FailureCode.INVALID_API_KEY,
    (Provider.OPENAI, 401, "mismatched_organization"): FailureCode.WRONG_ORGANIZATION,
    (Provider.OPENAI, 401, "mismatched_project"): FailureCode.WRONG_ORGANIZATION,
    (Provider.OPENAI, 401, "invalid_organization"): FailureCode.WRONG_ORGANIZATION,
    (Provider.OPENAI, 401, "no_organization"): FailureCode.WRONG_ORGANIZATION,
    (Provider.OPENAI, 403, _ANY): FailureCode.MISSING_PERMISSIONS,
    (Provider.AZURE_OPENAI, 401, "PermissionDenied"): FailureCode.MISSING_PERMISSIONS,
    (Provider.AZURE_OPENAI, 403, _ANY): FailureCode.MISSING_PERMISSIONS,
    (Provider.AZURE_OPENAI, 403, "InsufficientQuota"): FailureCode.QUOTA_EXCEEDED,
    (Provider.OPENAI, 404, "model_not_found"): FailureCode.MODEL_NOT_AVAILABLE,
    (Provider.OPENAI, 404, _ANY): FailureCode.ENDPOINT_NOT_FOUND,
    (Provider.AZURE_OPENAI, 404, "DeploymentNotFound"): FailureCode.DEPLOYMENT_NOT_FOUND,
    (Provider.AZURE_OPENAI, 404, _ANY): FailureCode.ENDPOINT_NOT_FOUND,
    (Provider.AZURE_OPENAI, 400, "OperationNotSupported"): FailureCode.WRONG_MODEL_TYPE,
    (_ANY, 429, "insufficient_quota"): FailureCode.QUOTA_EXCEEDED,
    (_ANY, 429, "InsufficientQuota"): FailureCode.QUOTA_EXCEEDED,
    (_ANY, 429, _ANY): FailureCode.RATE_LIMITED,
    (_ANY, 500, _ANY): FailureCode.SERVER_ERROR,
    (_ANY, 502, _ANY): FailureCode.SERVER_ERROR,
    (_ANY, 503, _ANY): FailureCode.SERVER_ERROR,
    (_ANY, 504, _ANY): FailureCode.SERVER_ERROR,
}

#: Where the vendor gives no specific code, words of its message decide, always
#: together with the status (never the message alone).
_MESSAGE_HINTS: tuple[tuple[int, re.Pattern[str], FailureCode], ...] = (
    (
        401,
        re.compile(r"missing scopes|insufficient permissions|does not have access", re.I),
        FailureCode.MISSING_PERMISSIONS,
    ),
    (
        401,
        re.compile(r"openai-(organization|project) header|no such organization|member of an organization", re.I),
        FailureCode.WRONG_ORGANIZATION,
    ),
    (400, re.compile(r"api[- ]?version", re.I), FailureCode.API_VERSION_UNSUPPORTED),
    (404, re.compile(r"api[- ]?version", re.I), FailureCode.API_VERSION_UNSUPPORTED),
    (400, re.compile(r"operation does not work with the specified model", re.I), FailureCode.WRONG_MODEL_TYPE),
)

#: Transport errors found anywhere in an exception's cause chain, most specific first.
_TRANSPORT_TABLE: tuple[tuple[type[BaseException], FailureCode], ...] = (
    (httpx.TimeoutException, FailureCode.TIMEOUT),
    (socket.gaierror, FailureCode.DNS_FAILURE),
    (ssl.SSLError, FailureCode.TLS_ERROR),
    (ssl.CertificateError, FailureCode.TLS_ERROR),
    (ConnectionRefusedError, FailureCode.CONNECTION_FAILED),
)
#: The same, for errors that only say it in words (httpcore re-raises some as text).
_TRANSPORT_WORDS: tuple[tuple[re.Pattern[str], FailureCode], ...] = (
    (
        re.compile(
            r"name or service not known|nodename nor servname|getaddrinfo|temporary failure in name resolution|no address associated",
            re.I,
        ),
        FailureCode.DNS_FAILURE,
    ),
    (re.compile(r"certificate|\[ssl|tls|handshake|wrong version number", re.I), FailureCode.TLS_ERROR),
)


def _classify_status(provider: Provider, status: int, error: _VendorError | None) -> FailureCode:
    code = error.code if error else None
    if code is not None and (provider, status, code) in _STATUS_TABLE:
        return _STATUS_TABLE[(provider, status, code)]
    if code is not None and (_ANY, status, code) in _STATUS_TABLE:
        return _STATUS_TABLE[(_ANY, status, code)]
    if error is not None:
        for hint_status, words, hinted in _MESSAGE_HINTS:
            if hint_status == status and words.search(error.message):
                return hinted
    for key in ((provider, status, _ANY), (_ANY, status, _ANY)):
        if key in _STATUS_TABLE:
            return _STATUS_TABLE[key]
    if status >= 500:
        return FailureCode.SERVER_ERROR
    return FailureCode.UNEXPECTED_RESPONSE


def _classify_transport(error: BaseException) -> FailureCode:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for kind, code in _TRANSPORT_TABLE:
        if any(isinstance(link, kind) for link in chain):
            return code
    text = " ".join(str(link) for link in chain)
    for words, code in _TRANSPORT_WORDS:
        if words.search(text):
            return code
    return FailureCode.CONNECTION_FAILED


def _rejects_max_tokens(status: int, error: _VendorError | None) -> bool:
    """Reasoning models answer 400 ``unsupported_parameter`` for ``max_tokens`` (use ``max_completion_tokens``)."""
    if status != 400 or error is None:
        return False
    return error.param == "max_tokens" or ("max_tokens" in error.message and "max_completion_tokens" in error.message)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the vendor asks to wait: ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date)."""
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    seconds = response.headers.get("retry-after")
    if seconds:
        try:
            return max(float(seconds), 0.0)
        except ValueError:
            try:
                return max(parsedate_to_datetime(seconds).timestamp() - time.time(), 0.0)
            except (TypeError, ValueError):
                return None
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
    api_version: str | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def endpoint_field(self) -> str:
        return "base_url" if self.provider is Provider.OPENAI else self.field_prefix + "endpoint_url"

    @property
    def key_field(self) -> str:
        return self.field_prefix + "api_key"

    @property
    def deployment_field(self) -> str:
        return self.field_prefix + "deployment_id" if self.provider is Provider.AZURE_OPENAI else self.key_field

    @property
    def wanted(self) -> str:
        return "GPT-4 Turbo or later (such as gpt-4o)" if self.role == "language" else "text-embedding-3-small"


@dataclass(frozen=True)
class _Outcome:
    """What the vendor said, for the message."""

    status: int | None = None
    model: str | None = None
    wait_seconds: float | None = None
    asked_to_wait: bool = False
    vendor_message: str = ""
    html: bool = False
    api_error: str | None = (
        None  # the vendor's error code, when the answer was an API error of a kind not in the tables
    )
    redirect: str | None = None  # where a 3xx answer pointed
    proxy: bool = False  # the failure happened at the proxy from HTTP(S)_PROXY


def _azure_or_openai(target: _Target, openai: str, azure: str) -> str:
    return openai if target.provider is Provider.OPENAI else azure


#: One message per code: (field attribute of the target, "what is wrong", "what to do").
#: Both texts are formatted with the target (t) and the outcome (o).
_MESSAGES: dict[
    FailureCode, tuple[str, Callable[[_Target, _Outcome, Timeouts], str], Callable[[_Target, _Outcome, Timeouts], str]]
] = {
    FailureCode.INVALID_API_KEY: (
        "key_field",
        lambda t, o, s: f"{t.host} rejected the API Key.",
        lambda t, o, s: _azure_or_openai(
            t,
            "Create a key on the API keys page of platform.openai.com and paste it again.",
            "Copy KEY 1 from the resource's Keys and Endpoint page in the Azure portal and paste it again; check that the Endpoint URL belongs to the same resource.",
        ),
    ),
    FailureCode.MISSING_PERMISSIONS: (
        "key_field",
        lambda t, o, s: "The API Key is valid but is not allowed to use the model.",
        lambda t, o, s: _azure_or_openai(
            t,
            "If it is a restricted key, give it the Models (read) and Model capabilities (write) permissions on platform.openai.com, or use a key with All permissions.",
            "Give the identity the 'Cognitive Services OpenAI User' role on the resource, or check that key authentication and network access are allowed on the resource.",
        ),
    ),
    FailureCode.WRONG_ORGANIZATION: (
        "organization_field",
        lambda t, o, s: "The Organization ID or Project ID does not match the API Key.",
        lambda t, o, s: (
            "Leave Organization ID and Project ID empty, or copy them from the settings of the organization and project the key was created in."
        ),
    ),
    FailureCode.MODEL_NOT_AVAILABLE: (
        "key_field",
        lambda t, o, s: f"This API Key cannot use the model '{t.model}'.",
        lambda t, o, s: (
            "Use a key from a project that has access to the model, or ask your OpenAI organization owner to allow it for the project."
        ),
    ),
    FailureCode.DEPLOYMENT_NOT_FOUND: (
        "deployment_field",
        lambda t, o, s: f"The resource at {t.host} has no deployment named '{t.deployment_id}'.",
        lambda t, o, s: (
            "Type the deployment's name as listed under Deployments in Azure AI Foundry (not the model's name); a deployment created in the last 5 minutes may not be ready yet."
        ),
    ),
    FailureCode.ENDPOINT_NOT_FOUND: (
        "endpoint_field",
        lambda t, o, s: _azure_or_openai(
            t,
            f"{t.host} has no OpenAI API at that Base URL.",
            f"{t.host} answered 'Resource not found', so the Endpoint URL or the API version is wrong.",
        ),
        lambda t, o, s: _azure_or_openai(
            t,
            "Use https://api.openai.com/v1.",
            "Use the endpoint from the Keys and Endpoint page, such as https://<resource>.openai.azure.com, with nothing after it, and an API version such as 2024-10-21.",
        ),
    ),
    FailureCode.API_VERSION_UNSUPPORTED: (
        "api_version_field",
        lambda t, o, s: (
            f"The API version {t.api_version} is unknown to this resource or too old for the deployed model."
        ),
        lambda t, o, s: (
            f"Use API version {_minimum_version(o.vendor_message)} or later, which this model needs."
            if _minimum_version(o.vendor_message)
            else "Use a current API version: 2024-10-21, or 2024-12-01-preview or later for reasoning models (o1, o3, o4-mini)."
        ),
    ),
    FailureCode.WRONG_MODEL_TYPE: (
        "deployment_field",
        lambda t, o, s: f"The deployment '{t.deployment_id}' serves another kind of model than {t.wanted}.",
        lambda t, o, s: f"Type the name of the deployment of {t.wanted}; the two Deployment IDs may have been swapped.",
    ),
    FailureCode.MODEL_NOT_SUPPORTED: (
        "deployment_field",
        lambda t, o, s: (
            f"The {_azure_or_openai(t, 'model', 'deployment')} answers as {o.model}, but AI features need {t.wanted}."
        ),
        lambda t, o, s: _azure_or_openai(
            t,
            f"Use {t.wanted}.",
            f"Deploy {t.wanted} in Azure AI Foundry and type that deployment's name.",
        ),
    ),
    FailureCode.QUOTA_EXCEEDED: (
        "key_field",
        lambda t, o, s: "The account has used up its quota or credit.",
        lambda t, o, s: _azure_or_openai(
            t,
            "Add credit or raise the limits on the Billing page of platform.openai.com, then Save again.",
            "Raise the deployment's quota in Azure AI Foundry (Quotas), or check the subscription's spending limit, then Save again.",
        ),
    ),
    FailureCode.RATE_LIMITED: (
        "deployment_field",
        lambda t, o, s: (
            "The service is limiting requests right now"
            + (f" and asks to wait {o.wait_seconds:.0f} seconds." if o.asked_to_wait and o.wait_seconds else ".")
        ),
        lambda t, o, s: (
            "Wait"
            + (f" {max(o.wait_seconds or 0, 1):.0f} seconds" if o.wait_seconds else " a minute")
            + " and Save again; if it keeps happening, "
            + _azure_or_openai(
                t,
                "raise your organization's rate limits (usage tier) on platform.openai.com.",
                "raise the deployment's tokens-per-minute limit in Azure AI Foundry.",
            )
        ),
    ),
    FailureCode.SERVER_ERROR: (
        "endpoint_field",
        lambda t, o, s: f"{t.host} answered with a server error (HTTP {o.status}).",
        lambda t, o, s: (
            "This is on the service's side: wait a few minutes and Save again, or check the status page of OpenAI or Azure."
        ),
    ),
    FailureCode.TIMEOUT: (
        "endpoint_field",
        lambda t, o, s: f"{t.host} did not answer within {s.check:g} second{'' if s.check == 1 else 's'}.",
        lambda t, o, s: (
            "Check the Endpoint URL and that this server can reach it (a firewall or proxy may be in the way), then try again."
        ),
    ),
    FailureCode.DNS_FAILURE: (
        "endpoint_field",
        lambda t, o, s: f"The host name {urlsplit(t.url).hostname} could not be found.",
        lambda t, o, s: (
            "Check the Endpoint URL for typos (the resource name is the first part of the host name); on a private network, check that this server's DNS knows the name."
        ),
    ),
    FailureCode.CONNECTION_FAILED: (
        "endpoint_field",
        lambda t, o, s: (
            f"The proxy from HTTPS_PROXY / HTTP_PROXY would not connect to {t.host}."
            if o.proxy
            else f"Could not connect to {t.host}."
        ),
        lambda t, o, s: (
            "Check the proxy's address, and whether it needs a user name and password (HTTP 407) or blocks this host; ask IT if unsure."
            if o.proxy
            else "Check the Endpoint URL and that this server may reach the internet, or your proxy (HTTPS_PROXY)."
        ),
    ),
    FailureCode.TLS_ERROR: (
        "endpoint_field",
        lambda t, o, s: f"The secure connection to {t.host} failed: its certificate is not trusted.",
        lambda t, o, s: (
            "A corporate proxy that inspects HTTPS often causes this: ask IT for the proxy's certificate authority (CA) bundle and set SSL_CERT_FILE to it before starting JupyterLab."
        ),
    ),
    FailureCode.UNEXPECTED_RESPONSE: (
        "endpoint_field",
        lambda t, o, s: (
            f"{t.host} redirected the check elsewhere (HTTP {o.status}{', to ' + o.redirect if o.redirect else ''})."
            if o.redirect is not None
            else f"{t.host} refused the check with HTTP {o.status} and error code {o.api_error}."
            if o.api_error
            else f"{t.host} sent "
            + ("a web page (HTML)" if o.html else "an answer")
            + (f" with HTTP status {o.status}" if o.status is not None else "")
            + " instead of an OpenAI API response."
        ),
        lambda t, o, s: (
            "Use the address it points to as the Endpoint URL, or check that nothing between this server and the service rewrites addresses."
            if o.redirect is not None
            else "Read the service's message below; if it does not say what to change, contact the service's support with the request id."
            if o.api_error
            else "Check that the Endpoint URL points at the OpenAI or Azure OpenAI API itself, not at a web page or a proxy's sign-in page."
        ),
    ),
}


def explain(code: FailureCode, target: _Target, outcome: _Outcome, timeouts: Timeouts) -> tuple[str, str, str | None]:
    """What went wrong and what an admin should do, from the one table of messages (``_MESSAGES``).

    Args:
        code: the failure's code (not ``FailureCode.OK``).
        target: what the request talked to (role, provider, URL, deployment, model).
        outcome: what the service said (status, wait, its own message, ...).
        timeouts: the limits in force, for the timeout message (seconds).
    Returns:
        ``(what is wrong, what to do, field path)``: two sentences without the model's
        label, and the dotted path of the field to correct (None when no field is to blame).
        Neither sentence holds the key: everything from the service is scrubbed first.
    """
    field_attribute, wrong, todo = _MESSAGES[code]
    if field_attribute == "api_version_field":
        field = "api_version"
    elif field_attribute == "organization_field":
        field = "project" if "project" in outcome.vendor_message.lower() else "organization"
    else:
        field = getattr(target, field_attribute)
    return wrong(target, outcome, timeouts), todo(target, outcome, timeouts), field


def _describe(code: FailureCode, target: _Target, outcome: _Outcome, timeouts: Timeouts) -> tuple[str, str | None]:
    """The message (label, what is wrong, what to do) and the field path for a failed check."""
    wrong, todo, field = explain(code, target, outcome, timeouts)
    message = f"{target.label}: {wrong} {todo}"
    if outcome.vendor_message and code is not FailureCode.INVALID_API_KEY:
        message += f" The service said: “{outcome.vendor_message}”"
    return message, field


#: Anything in a vendor's message that could be part of a key is cut out before it is shown.
_KEY_LIKE = re.compile(r"(sk-[A-Za-z0-9*_.-]+|[A-Za-z0-9*_-]*\*{3,}[A-Za-z0-9*_-]*|\b[A-Za-z0-9_-]{32,}\b)")


def _vendor_text(error: _VendorError | None, key: str | SecretStr) -> str:
    """The vendor's own message, without anything key-shaped, at most 240 characters."""
    if error is None or not error.message:
        return ""
    return _scrub(error.message, key)


def _plain(key: str | SecretStr) -> str:
    """The key's text, taken out of its ``SecretStr`` only in the short-lived frame that compares with it."""
    return key.get_secret_value() if isinstance(key, SecretStr) else key


def _scrub(said: str, key: str | SecretStr) -> str:
    """Any text from the service (a message, an error code, a Location, a model name), made safe to show and store:
    the key, anything that also stands in it, and anything key-shaped are hidden; at most 240 characters."""
    key = _plain(key)
    text = " ".join(str(said).split())
    if key:
        text = text.replace(key, "[key]")
        # A run that also stands in the key is hidden too: 12 characters or more, or 8 or more
        # with a digit in them (so that ordinary words the key happens to contain stay readable).
        text = re.sub(r"[A-Za-z0-9_\-]{8,}", lambda match: _hide_if_in_key(match.group(0), key), text)
    text = _KEY_LIKE.sub("[hidden]", text)
    return text if len(text) <= 240 else text[:239] + "…"


def _hide_if_in_key(run: str, key: str) -> str:
    if run in key and (len(run) >= 12 or any(character.isdigit() for character in run)):
        return "[hidden]"
    return run


def _minimum_version(vendor_message: str) -> str | None:
    """The api-version a model needs, from Azure's "enabled only for api versions X and later"."""
    match = re.search(r"api versions? (\d{4}-\d{2}-\d{2}(?:-preview)?) and later", vendor_message, re.I)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- #
# The checks
# --------------------------------------------------------------------------- #


def _is_html(response: httpx.Response) -> bool:
    return "html" in response.headers.get("content-type", "").lower()


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def _request_id(response: httpx.Response, key: str | SecretStr = "") -> str | None:
    """The service's request id, if it has the shape of one and nothing of the key in it."""
    found = response.headers.get("apim-request-id") or response.headers.get("x-request-id")
    if not found or not _REQUEST_ID.fullmatch(found) or _holds_part_of(found, key):
        return None
    return found


def _holds_part_of(text: str, key: str | SecretStr) -> bool:
    """True when ``text`` holds the key, or a run of it that :func:`_scrub` would hide."""
    key = _plain(key)
    if not key:
        return False
    return key in text or any(
        _hide_if_in_key(run, key) == "[hidden]" for run in re.findall(r"[A-Za-z0-9_\-]{8,}", text)
    )


class _Check:
    """One model's check: send, retry within the budget, classify, describe."""

    def __init__(
        self, client: httpx.AsyncClient, target: _Target, request: httpx.Request, timeouts: Timeouts, key: str
    ) -> None:
        self.key = key
        self.client = client
        self.target = target
        self.request = request
        self.timeouts = timeouts
        self.started = time.perf_counter()

    def finish(
        self,
        code: FailureCode,
        outcome: _Outcome = _Outcome(),
        request_id: str | None = None,
        warning: str | None = None,
    ) -> ModelCheck:
        latency_ms = (time.perf_counter() - self.started) * 1000
        target = self.target
        if code is FailureCode.OK:
            return ModelCheck(
                role=target.role,
                ok=True,
                code=code,
                model=outcome.model,
                latency_ms=latency_ms,
                message=f"{target.label}: authenticated ({outcome.model}).",
                request_id=request_id,
                warning=warning,
            )
        message, field = _describe(code, target, outcome, self.timeouts)
        if request_id:
            message += f" (Request id {request_id}.)"
        return ModelCheck(
            role=target.role,
            ok=False,
            code=code,
            model=outcome.model,
            latency_ms=latency_ms,
            message=message,
            field=field,
            request_id=request_id,
        )

    async def run(self) -> ModelCheck:
        try:
            return await asyncio.wait_for(self._attempts(), timeout=self.timeouts.check)
        except asyncio.TimeoutError:
            return self.finish(FailureCode.TIMEOUT)

    async def _attempts(self) -> ModelCheck:
        result = await send_async(
            self.client,
            self.request,
            provider=self.target.provider,
            key=self.key,
            retry_budget=self.timeouts.retry_budget,
        )
        if isinstance(result, Failure):
            return self.finish(result.code, result.outcome, result.request_id)
        return self._judge(result.body, result.request_id, result.response)

    def _judge(self, body: Any, request_id: str | None, response: httpx.Response) -> ModelCheck:
        if not self.expected_shape(body):
            return self.finish(
                FailureCode.UNEXPECTED_RESPONSE, _Outcome(status=200, html=_is_html(response)), request_id
            )
        model = body.get("model") or body.get("id")
        if not _MODEL_NAME.fullmatch(model) or _holds_part_of(
            model, self.key
        ):  # shown and stored: must be a model name
            return self.finish(FailureCode.UNEXPECTED_RESPONSE, _Outcome(status=200), request_id)
        verdict = judge_model(self.target.role, model)
        if not verdict.ok:
            return self.finish(FailureCode.MODEL_NOT_SUPPORTED, _Outcome(status=200, model=model), request_id)
        return self.finish(FailureCode.OK, _Outcome(status=200, model=model), request_id, warning=verdict.warning)

    def expected_shape(self, body: Any) -> bool:
        """True when a 200 answer has the shape of the operation's answer (and names its model)."""
        if not isinstance(body, dict) or "error" in body:
            return False
        if self.target.provider is Provider.OPENAI:
            return isinstance(body.get("id"), str) and bool(body["id"]) and body.get("object", "model") == "model"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return False
        if self.target.role == "language":
            return isinstance(body.get("choices"), list)
        return isinstance(body.get("data"), list) and all(
            isinstance(item, dict) and "embedding" in item for item in body["data"]
        )


def openai_headers(integration: OpenAIIntegration) -> dict[str, str]:
    """The headers of every OpenAI request: ``Authorization: Bearer <key>``, and ``OpenAI-Organization`` /
    ``OpenAI-Project`` when the integration has them (OpenAI API reference, "Authentication").

    Returns:
        The headers, names in lower case. They hold the key: never show or log them.
    """
    headers = {"authorization": f"Bearer {integration.api_key.get_secret_value()}"}
    if integration.organization:
        headers["openai-organization"] = integration.organization
    if integration.project:
        headers["openai-project"] = integration.project
    return headers


def openai_target(integration: OpenAIIntegration, role: Role, url: str) -> _Target:
    """What a request for ``role``'s model to ``url`` talks to, for classifying and describing its failures."""
    model = integration.language_model if role == "language" else integration.embeddings_model
    return _Target(role=role, provider=Provider.OPENAI, url=url, field_prefix="", deployment_id=None, model=model)


def azure_request_parts(
    integration: AzureOpenAIIntegration, role: Role, operation: str
) -> tuple[_Target, str, dict[str, str], dict[str, str]]:
    """Where an Azure OpenAI request for ``role`` goes: ``POST {endpoint}/openai/deployments/{deployment}/{operation}``
    with the ``api-version`` query parameter and the ``api-key`` header (Azure OpenAI REST API reference, "Inference").

    Args:
        integration: the Azure OpenAI integration.
        role: ``"language"`` (its language-model deployment) or ``"embeddings"``.
        operation: ``"chat/completions"`` or ``"embeddings"``.
    Returns:
        ``(target, url, query parameters, headers)``; the headers hold the key.
    """
    deployment = integration.deployment(role)
    url = f"{deployment.endpoint_url}/openai/deployments/{deployment.deployment_id}/{operation}"
    target = _Target(
        role=role,
        provider=Provider.AZURE_OPENAI,
        url=url,
        field_prefix=f"{role}_model.",
        deployment_id=deployment.deployment_id,
        model=None,
        api_version=integration.api_version,
    )
    return target, url, {"api-version": integration.api_version}, {"api-key": deployment.api_key.get_secret_value()}


def _openai_checks(client: httpx.AsyncClient, integration: OpenAIIntegration, timeouts: Timeouts) -> list[_Check]:
    headers = openai_headers(integration)
    checks = []
    for role, model in (("language", integration.language_model), ("embeddings", integration.embeddings_model)):
        url = f"{integration.base_url}/models/{model}"
        target = openai_target(integration, role, url)
        request = client.build_request("GET", url, headers=headers)
        checks.append(_Check(client, target, request, timeouts, integration.api_key.get_secret_value()))
    return checks


def _azure_checks(client: httpx.AsyncClient, integration: AzureOpenAIIntegration, timeouts: Timeouts) -> list[_Check]:
    checks = []
    for role in ("language", "embeddings"):
        operation, payload = (
            ("chat/completions", {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})
            if role == "language"
            else ("embeddings", {"input": "ping"})
        )
        target, url, params, headers = azure_request_parts(integration, role, operation)
        request = client.build_request("POST", url, params=params, json=payload, headers=headers)
        checks.append(_Check(client, target, request, timeouts, headers["api-key"]))
    return checks


#: Loopback hosts are reached directly, never through a proxy from HTTP(S)_PROXY.
_DIRECT = tuple(
    f"all://[{host}]" if ":" in host else f"all://{host}" for host in (*LOOPBACK_HOSTS, "0:0:0:0:0:0:0:1")
)  # the hosts where plain http is allowed (normalize.LOOPBACK_HOSTS), ::1 in both spellings


#: The TLS context of the checks and what it was made from; see :func:`_tls_context`.
_tls_lock = threading.Lock()
_tls_cache: tuple[tuple[Any, ...], ssl.SSLContext] | None = None


def _file_signature(path: str) -> tuple[str, int, int] | tuple[str]:
    """``(path, modification time in ns, size in bytes)``, or ``(path,)`` when it cannot be read."""
    try:
        found = os.stat(path)
    except OSError:
        return (path,)
    return (path, found.st_mtime_ns, found.st_size)


def _tls_context() -> ssl.SSLContext:
    """The certificate authorities the checks trust, as one ``ssl.SSLContext`` kept for the process.

    Built by httpx's own rule (``httpx.create_ssl_context(trust_env=True)``: the bundle in
    ``SSL_CERT_FILE``, else the folder in ``SSL_CERT_DIR``, else certifi's bundle), so the
    checks trust exactly what a plain httpx client would. Loading a bundle costs tens of
    milliseconds, which every Save and every test would otherwise pay once per transport;
    the context is made again when either variable changes or the file or folder it names
    is modified.

    Returns:
        The shared context (httpx and httpcore only read it; it is safe across threads).
    Raises:
        OSError, ssl.SSLError: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` cannot be read or parsed
            (:func:`verify_async` turns this into a report).
    """
    global _tls_cache
    certificate_file = os.environ.get("SSL_CERT_FILE") or ""
    certificate_folder = os.environ.get("SSL_CERT_DIR") or ""
    if certificate_file:
        source: tuple[Any, ...] = ("file", *_file_signature(certificate_file))
    elif certificate_folder:
        source = ("folder", *_file_signature(certificate_folder))
    else:
        import certifi

        source = ("certifi", *_file_signature(certifi.where()))
    with _tls_lock:
        if _tls_cache is not None and _tls_cache[0] == source:
            return _tls_cache[1]
        context = httpx.create_ssl_context(trust_env=True)
        _tls_cache = (source, context)
        return context


def make_client(timeouts: Timeouts = Timeouts()) -> httpx.AsyncClient:
    """An httpx client for the checks: the proxy settings of the environment, except for loopback hosts.

    Args:
        timeouts: connect and overall limits, in seconds.
    Returns:
        An ``httpx.AsyncClient``; the caller closes it.
    Raises:
        OSError, ssl.SSLError, ImportError: this server's HTTPS or proxy settings cannot be
            used (see :func:`setup_problem`).
    """
    options = _client_options(timeouts)
    direct = httpx.AsyncHTTPTransport(verify=options["verify"])  # one pool for every loopback spelling
    return httpx.AsyncClient(**options, mounts={pattern: direct for pattern in _DIRECT})


def make_sync_client(timeouts: Timeouts = Timeouts()) -> httpx.Client:
    """:func:`make_client` for blocking calls: the same settings, as an ``httpx.Client`` (the caller closes it)."""
    options = _client_options(timeouts)
    direct = httpx.HTTPTransport(verify=options["verify"])  # one pool for every loopback spelling
    return httpx.Client(**options, mounts={pattern: direct for pattern in _DIRECT})


def _client_options(timeouts: Timeouts) -> dict[str, Any]:
    """What both clients share, the process's TLS context included (:func:`_tls_context`)."""
    return {
        "timeout": httpx.Timeout(timeouts.check, connect=timeouts.connect),
        "follow_redirects": False,
        "trust_env": True,
        "verify": _tls_context(),
    }


# --------------------------------------------------------------------------- #
# One request, retried as the vendors ask: shared by the checks and by ai.py
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Answer:
    """A 200 answer: the response, its parsed JSON body (None when not JSON) and the service's request id."""

    response: httpx.Response
    body: Any
    request_id: str | None


@dataclass(frozen=True)
class Failure:
    """A request that got no usable answer: its stable code, what the service said, and its request id."""

    code: FailureCode
    outcome: _Outcome
    request_id: str | None = None


def unexpected_answer(answer: Answer) -> Failure:
    """A 200 answer that is not the operation's answer (a proxy's HTML page, JSON of another shape), as a failure."""
    return Failure(
        FailureCode.UNEXPECTED_RESPONSE, _Outcome(status=200, html=_is_html(answer.response)), answer.request_id
    )


#: What the exchange asks its driver for: a request to send (the driver answers with the
#: response or the ``httpx.HTTPError``), or seconds to wait (the driver answers None).
_Step = Generator["httpx.Request | float", "httpx.Response | httpx.HTTPError | None", "Answer | Failure"]


def _exchange(
    build: Callable[..., httpx.Request],
    request: httpx.Request,
    provider: Provider,
    key: str | SecretStr,
    retry_budget: float,
) -> _Step:
    """Send ``request`` until it has an answer or a failure, without doing any I/O itself.

    Retries: a 429 within ``retry_budget`` seconds (honouring ``retry-after-ms`` / ``retry-after``),
    a used-up quota never; a 5xx once after half a second; a 400 that rejects ``max_tokens``
    (reasoning models) once with ``max_completion_tokens`` instead.
    """
    waited = 0.0
    attempts = 0
    server_retries = 1
    switched_token_limit = False
    while True:
        attempts += 1
        response = yield request
        if isinstance(response, httpx.HTTPError):
            return Failure(_classify_transport(response), _Outcome(proxy=isinstance(response, httpx.ProxyError)))
        request_id = _request_id(response, key)
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 200:
            return Answer(response, body, request_id)
        if 300 <= status < 400:
            redirect = _scrub(response.headers.get("location", ""), key)
            return Failure(FailureCode.UNEXPECTED_RESPONSE, _Outcome(status=status, redirect=redirect), request_id)
        error = _read_error(body)
        if not switched_token_limit and _rejects_max_tokens(status, error):
            switched_token_limit = True
            request = _with_max_completion_tokens(build, request)
            continue
        if error is None and status < 500:  # not JSON, or JSON of another shape: a proxy's page
            return Failure(
                FailureCode.UNEXPECTED_RESPONSE, _Outcome(status=status, html=_is_html(response)), request_id
            )
        code = _classify_status(provider, status, error)
        said = _vendor_text(error, key)
        if code is FailureCode.RATE_LIMITED:
            asked = _retry_after(response)
            wait = asked if asked is not None else min(0.5 * 2 ** (attempts - 1), 8.0)
            if waited + wait > retry_budget:
                return Failure(
                    code,
                    _Outcome(status=status, wait_seconds=wait, asked_to_wait=asked is not None, vendor_message=said),
                    request_id,
                )
            yield wait
            waited += wait
            request = _fresh(build, request)
            continue
        if code is FailureCode.SERVER_ERROR and server_retries > 0:
            server_retries -= 1
            yield 0.5
            request = _fresh(build, request)
            continue
        unknown = _scrub(error.code, key) if code is FailureCode.UNEXPECTED_RESPONSE and error and error.code else None
        return Failure(code, _Outcome(status=status, vendor_message=said, api_error=unknown or None), request_id)


def _fresh(build: Callable[..., httpx.Request], request: httpx.Request) -> httpx.Request:
    return build(request.method, request.url, headers=request.headers, content=request.content)


def _with_max_completion_tokens(build: Callable[..., httpx.Request], request: httpx.Request) -> httpx.Request:
    payload = json.loads(request.content)
    payload["max_completion_tokens"] = payload.pop("max_tokens", 1)
    headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
    return build(request.method, request.url, headers=headers, json=payload)


def send(
    client: httpx.Client, request: httpx.Request, *, provider: Provider, key: str | SecretStr, retry_budget: float
) -> Answer | Failure:
    """Send ``request`` with ``client``, retrying rate limits, a server error and ``max_tokens`` as the vendors ask.

    Args:
        client: a blocking client (:func:`make_sync_client`); its pool is reused.
        request: built by ``client.build_request``, so it carries the client's timeouts.
        provider: whose error codes to read.
        key: the API key the request carries (best a ``SecretStr``, so no frame of a traceback shows it),
            so that nothing of it is ever repeated.
        retry_budget: the most seconds to wait in total for rate limits.
    Returns:
        The :class:`Answer` (HTTP 200) or the classified :class:`Failure`; never raises for a
        remote or network failure.
    """
    steps = _exchange(client.build_request, request, provider, key, retry_budget)
    step = next(steps)
    while True:
        if isinstance(step, httpx.Request):
            try:
                reply: httpx.Response | httpx.HTTPError | None = client.send(step)
            except httpx.HTTPError as error:
                reply = error
        else:
            time.sleep(step)
            reply = None
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value


async def send_async(
    client: httpx.AsyncClient, request: httpx.Request, *, provider: Provider, key: str | SecretStr, retry_budget: float
) -> Answer | Failure:
    """:func:`send` for an ``httpx.AsyncClient`` (:func:`make_client`): waits without blocking the event loop."""
    steps = _exchange(client.build_request, request, provider, key, retry_budget)
    step = next(steps)
    while True:
        if isinstance(step, httpx.Request):
            try:
                reply: httpx.Response | httpx.HTTPError | None = await client.send(step)
            except httpx.HTTPError as error:
                reply = error
        else:
            await asyncio.sleep(step)
            reply = None
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value


async def verify_async(
    integration: OpenAIIntegration | AzureOpenAIIntegration,
    *,
    timeouts: Timeouts = Timeouts(),
    client: httpx.AsyncClient | None = None,
    on_check: CheckListener | None = None,
) -> VerificationReport:
    """Authenticate both models of ``integration`` concurrently.

    Args:
        integration: the credentials to check.
        timeouts: connect, per-check and retry limits, in seconds.
        client: an httpx client to reuse (its pool and settings); by default one is
            made for this call and closed after it.
        on_check: called with each :class:`ModelCheck` as soon as that model is done
            (the panel uses it to show progress).
    Returns:
        A :class:`VerificationReport` with the language check, then the embeddings check.
        Remote failures (refused key, unknown deployment, timeout, ...) are in the report,
        never raised. Cancelling the task cancels both checks.
    """
    owned = client is None
    if client is None:
        try:
            client = make_client(timeouts)
        except Exception as error:  # SSL_CERT_FILE unreadable, a proxy scheme without its package, ...
            return _setup_failure(integration, error)

    async def run(check: _Check) -> ModelCheck:
        result = await check.run()
        if on_check is not None:
            on_check(result)
        return result

    try:
        checks = (
            _openai_checks(client, integration, timeouts)
            if isinstance(integration, OpenAIIntegration)
            else _azure_checks(client, integration, timeouts)
        )
        results = await asyncio.gather(*(run(check) for check in checks))
    finally:
        if owned:
            await client.aclose()
    return VerificationReport(provider=integration.provider, checks=tuple(results))


def _setup_failure(integration: OpenAIIntegration | AzureOpenAIIntegration, error: Exception) -> VerificationReport:
    """A report for checks that could not even start, because this server's HTTPS or proxy settings are broken."""
    code, message = setup_problem(error)
    checks = tuple(
        ModelCheck(role=role, ok=False, code=code, message=f"{ROLE_LABELS[role]}: {message}", field=None)
        for role in ("language", "embeddings")
    )
    return VerificationReport(provider=integration.provider, checks=checks)


def setup_problem(error: Exception) -> tuple[FailureCode, str]:
    """Why no client could be made (:func:`make_client` raised ``error``), and what to do.

    Returns:
        ``(code, message)``: ``connection_failed`` for a proxy that needs a missing package
        or unusable network settings, ``tls_error`` for an unusable ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``.
    """
    certificate_file = os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")
    if isinstance(error, ImportError):
        code = FailureCode.CONNECTION_FAILED
        message = (
            "The proxy in HTTPS_PROXY / ALL_PROXY needs a package that is not installed (a socks5:// proxy needs "
            "httpx[socks]). Install it, or use an http:// proxy address, then try again."
        )
    elif certificate_file:
        code = FailureCode.TLS_ERROR
        message = (
            f"The certificate file in SSL_CERT_FILE / SSL_CERT_DIR ({certificate_file}) cannot be used ({type(error).__name__}). "
            "Point it at the PEM bundle of your proxy's certificate authority, or unset it, and restart the kernel."
        )
    else:
        code = FailureCode.CONNECTION_FAILED
        message = f"This server's network settings could not be used ({type(error).__name__}: {error}). Check HTTPS_PROXY and SSL_CERT_FILE."
    return code, message


def verify(
    integration: OpenAIIntegration | AzureOpenAIIntegration, *, timeouts: Timeouts = Timeouts()
) -> VerificationReport:
    """Authenticate both models of ``integration``; blocks until the report is ready.

    Works in a plain script and inside a running Jupyter kernel: when the calling
    thread already runs an event loop, the checks run on a fresh loop in a worker thread.

    Args:
        integration: the credentials to check.
        timeouts: connect, per-check and retry limits, in seconds.
    Returns:
        The :class:`VerificationReport`; remote failures are in it, never raised.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(verify_async(integration, timeouts=timeouts))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ai-admin-verify") as pool:
        return pool.submit(asyncio.run, verify_async(integration, timeouts=timeouts)).result()
