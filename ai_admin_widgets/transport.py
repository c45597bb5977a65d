"""One request to OpenAI or Azure OpenAI, sent, retried as the vendors ask and classified.

The layer under :mod:`~ai_admin_widgets.verify` (Save's checks) and :mod:`~ai_admin_widgets.ai`
(analysts' calls): where a request goes and with which headers (:func:`openai_headers`,
:func:`azure_request_parts`), the clients and their TLS context (:func:`make_client`,
:func:`make_sync_client`), the request loop (:func:`send`, :func:`send_async`, both driven by
one I/O-free generator) and the reading of an error answer into a
:class:`~ai_admin_widgets.models.FailureCode`. It never raises for a remote or network failure:
the answer is an :class:`Answer` or a :class:`Failure`.

Rate limits (429) are retried within the retry budget, honouring ``retry-after-ms`` and
``retry-after`` (Azure OpenAI "Quotas and limits"); a used-up quota is never retried. A server
error (5xx) is retried once.

Every request may have an overall deadline and a cap on its answer's size. httpx's own timeout
bounds each read, not their sum, so a server that sends one byte a second would never trip it:
here the answer is streamed, its bytes counted against the cap (a ``Content-Length`` over it is
refused before reading) and the deadline enforced around the whole exchange (``asyncio.wait_for``
for the async client; for the blocking one, every socket read and write of the clients made here
is given only the time left, see :class:`_DeadlineBackend`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx
from pydantic import SecretStr

from .entra import SignInFailed, TokenSource
from .models import (
    AZURE_V1_API,
    AzureDeployment,
    AzureOpenAIIntegration,
    CheckTarget,
    FailureCode,
    OpenAIIntegration,
    Outcome,
    Provider,
    Role,
    Timeouts,
)
from .normalize import LOOPBACK_HOSTS

__all__ = [
    "AIRoutes",
    "AddressRefused",
    "Answer",
    "AnswerTooLarge",
    "Failure",
    "Route",
    "azure_body",
    "azure_request_parts",
    "holds_part_of",
    "is_html",
    "make_client",
    "make_sync_client",
    "openai_headers",
    "openai_target",
    "receive",
    "routes_for",
    "scrub",
    "secret_of",
    "send",
    "send_async",
    "setup_problem",
    "sign_in_failure",
    "size_text",
    "token_source_for",
    "unexpected_answer",
]


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


_ANY = None


#: (provider, vendor error code) -> our code, whatever the HTTP status: the vendor's code
#: decides before the status does (a 403 ``insufficient_quota`` is a used-up quota, not a
#: permission). Codes that are only a status in words (Azure's ``"401"``) are no code.
#: Sources: OpenAI API reference "Error codes"; Azure OpenAI REST API reference, error
#: responses; Azure AI services "Disable local authentication".
_CODE_TABLE: dict[tuple[Provider | None, str], FailureCode] = {
    (_ANY, "invalid_api_key"): FailureCode.INVALID_API_KEY,
    (Provider.OPENAI, "mismatched_organization"): FailureCode.WRONG_ORGANIZATION,
    (Provider.OPENAI, "mismatched_project"): FailureCode.WRONG_ORGANIZATION,
    (Provider.OPENAI, "invalid_organization"): FailureCode.WRONG_ORGANIZATION,
    (Provider.OPENAI, "no_organization"): FailureCode.WRONG_ORGANIZATION,
    (Provider.OPENAI, "unsupported_country_region_territory"): FailureCode.REGION_NOT_SUPPORTED,
    (Provider.AZURE_OPENAI, "PermissionDenied"): FailureCode.MISSING_PERMISSIONS,
    (Provider.AZURE_OPENAI, "AuthenticationTypeDisabled"): FailureCode.KEY_AUTH_DISABLED,
    (_ANY, "insufficient_quota"): FailureCode.QUOTA_EXCEEDED,
    (_ANY, "InsufficientQuota"): FailureCode.QUOTA_EXCEEDED,
    (Provider.OPENAI, "model_not_found"): FailureCode.MODEL_NOT_AVAILABLE,
    (Provider.AZURE_OPENAI, "DeploymentNotFound"): FailureCode.DEPLOYMENT_NOT_FOUND,
    (Provider.AZURE_OPENAI, "OperationNotSupported"): FailureCode.WRONG_MODEL_TYPE,
    (_ANY, "content_filter"): FailureCode.CONTENT_REFUSED,
    (_ANY, "content_policy_violation"): FailureCode.CONTENT_REFUSED,
    (_ANY, "ResponsibleAIPolicyViolation"): FailureCode.CONTENT_REFUSED,
    (_ANY, "rate_limit_exceeded"): FailureCode.RATE_LIMITED,
}

#: (provider, HTTP status) -> our code, when neither the vendor's code nor its words decide.
_STATUS_TABLE: dict[tuple[Provider | None, int], FailureCode] = {
    (_ANY, 401): FailureCode.INVALID_API_KEY,
    (Provider.OPENAI, 403): FailureCode.MISSING_PERMISSIONS,
    (Provider.AZURE_OPENAI, 403): FailureCode.MISSING_PERMISSIONS,
    (Provider.OPENAI, 404): FailureCode.ENDPOINT_NOT_FOUND,
    (Provider.AZURE_OPENAI, 404): FailureCode.ENDPOINT_NOT_FOUND,
    (_ANY, 429): FailureCode.RATE_LIMITED,
    (_ANY, 500): FailureCode.SERVER_ERROR,
    (_ANY, 502): FailureCode.SERVER_ERROR,
    (_ANY, 503): FailureCode.SERVER_ERROR,
    (_ANY, 504): FailureCode.SERVER_ERROR,
}


#: Where the vendor gives no specific code, words of its message decide, always
#: together with the status (never the message alone). A cause the service names that a
#: new key would not fix (a network rule, a region) comes before the status's own meaning.
_MESSAGE_HINTS: tuple[tuple[int, re.Pattern[str], FailureCode], ...] = (
    (
        401,
        re.compile(r"\bIP not authori[sz]ed|IP allow ?list|from (this|your) IP", re.I),
        FailureCode.NETWORK_NOT_ALLOWED,
    ),
    (
        403,
        re.compile(r"virtual network|firewall rules|public access is disabled|private endpoint", re.I),
        FailureCode.NETWORK_NOT_ALLOWED,
    ),
    (403, re.compile(r"country, region,? or territory", re.I), FailureCode.REGION_NOT_SUPPORTED),
    (403, re.compile(r"key based authentication is disabled", re.I), FailureCode.KEY_AUTH_DISABLED),
    (401, re.compile(r"lacks the required data action", re.I), FailureCode.ROLE_MISSING),
    (403, re.compile(r"lacks the required data action", re.I), FailureCode.ROLE_MISSING),
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


class AddressRefused(httpcore.ConnectError):
    """A connection refused before it was made: the host's name or address is one the client may not call.

    Raised by a network backend given to :func:`make_client` (the AI gateway's
    :class:`~ai_admin_widgets.gateway.addresses.PinnedBackend`); httpx passes it on as the
    cause of an ``httpx.ConnectError``, classified ``address_refused``. The message says why.
    """


#: Transport errors found anywhere in an exception's cause chain, most specific first.
_TRANSPORT_TABLE: tuple[tuple[type[BaseException], FailureCode], ...] = (
    (AddressRefused, FailureCode.ADDRESS_REFUSED),
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


#: A vendor code whose message names a narrower cause: (provider, code, words) -> our code, before the code table.
#: Azure OpenAI answers an identity without a role on the resource 401 ``PermissionDenied`` "The principal … lacks
#: the required data action …" (Azure OpenAI "Role-based access control": Cognitive Services OpenAI User).
_CODE_WORDS: tuple[tuple[Provider, str, re.Pattern[str], FailureCode], ...] = (
    (
        Provider.AZURE_OPENAI,
        "PermissionDenied",
        re.compile(r"lacks the required data action", re.I),
        FailureCode.ROLE_MISSING,
    ),
)


def _classify_status(provider: Provider, status: int, error: _VendorError | None) -> FailureCode:
    """The vendor's error code first, then words of its message with the status, then the status alone."""
    code = error.code if error and error.code and not error.code.isdigit() else None
    if code is not None and error is not None:
        for code_provider, vendor_code, words, narrower in _CODE_WORDS:
            if code_provider is provider and code == vendor_code and words.search(error.message):
                return narrower
    if code is not None:
        for key in ((provider, code), (_ANY, code)):
            found = _CODE_TABLE.get(key)
            # A content filter refuses with 400, after authentication: said with any other status, the code is
            # not believed (a 401 or 403 "content_filter" must never pass a check as "the credentials work").
            if found is not None and not (found is FailureCode.CONTENT_REFUSED and status != 400):
                return found
    if error is not None:
        for hint_status, words, hinted in _MESSAGE_HINTS:
            if hint_status == status and words.search(error.message):
                return hinted
    for status_key in ((provider, status), (_ANY, status)):
        if status_key in _STATUS_TABLE:
            return _STATUS_TABLE[status_key]
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


#: Anything in a vendor's message that could be part of a key is cut out before it is shown.
_KEY_LIKE = re.compile(r"(sk-[A-Za-z0-9*_.-]+|[A-Za-z0-9*_-]*\*{3,}[A-Za-z0-9*_-]*|\b[A-Za-z0-9_-]{32,}\b)")


def _vendor_text(error: _VendorError | None, key: str | SecretStr) -> str:
    """The vendor's own message, without anything key-shaped, at most 240 characters."""
    if error is None or not error.message:
        return ""
    return scrub(error.message, key)


def _plain(key: str | SecretStr) -> str:
    """The key's text, taken out of its ``SecretStr`` only in the short-lived frame that compares with it."""
    return key.get_secret_value() if isinstance(key, SecretStr) else key


def scrub(said: str, key: str | SecretStr) -> str:
    """Any text from the service (a message, an error code, a Location, a model name), made safe to show and store:
    the key, every run of :data:`KEY_PIECE` or more characters that also stands in it, and anything key-shaped are
    hidden; at most 240 characters (only the first :data:`SCRUB_MAX_CHARS` of ``said`` are read)."""
    key = _plain(key)
    text = " ".join(str(said)[:SCRUB_MAX_CHARS].split())
    if key:
        text = _hide_key_pieces(text.replace(key, "[key]"), key)
    text = _KEY_LIKE.sub("[hidden]", text)
    return text if len(text) <= 240 else text[:239] + "…"


#: The shortest run of a key's characters that is hidden wherever it appears in a text from a service.
KEY_PIECE = 5
#: The most characters of a service's text that :func:`scrub` reads (its answer is at most 240).
SCRUB_MAX_CHARS = 4096


def _key_pieces(key: str) -> set[str]:
    return {key[start : start + KEY_PIECE] for start in range(len(key) - KEY_PIECE + 1)}


def _hide_key_pieces(text: str, key: str) -> str:
    """``text`` with every character covered by a :data:`KEY_PIECE`-character run of ``key`` hidden, each stretch
    of hidden characters as one ``[hidden]`` (so no :data:`KEY_PIECE` characters of the key in a row are left)."""
    pieces = _key_pieces(key)
    hidden = [False] * len(text)
    for start in range(len(text) - KEY_PIECE + 1):
        if text[start : start + KEY_PIECE] in pieces:
            hidden[start : start + KEY_PIECE] = [True] * KEY_PIECE
    if not any(hidden):
        return text
    out: list[str] = []
    for position, character in enumerate(text):
        if not hidden[position]:
            out.append(character)
        elif position == 0 or not hidden[position - 1]:
            out.append("[hidden]")
    return "".join(out)


def _never_called(location: str) -> bool:
    """Whether a redirect's ``location`` points at a host the AI gateway never calls (metadata, link-local, ...)."""
    from urllib.parse import urljoin, urlsplit

    from .gateway.addresses import AddressPolicy

    try:
        host = urlsplit(urljoin("https://x/", location)).hostname
    except ValueError:
        return False
    return bool(host) and AddressPolicy().never_called(host or "")


def is_html(response: httpx.Response) -> bool:
    return "html" in response.headers.get("content-type", "").lower()


_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def _request_id(response: httpx.Response, key: str | SecretStr = "") -> str | None:
    """The service's request id, if it has the shape of one and nothing of the key in it."""
    found = response.headers.get("apim-request-id") or response.headers.get("x-request-id")
    if not found or not _REQUEST_ID.fullmatch(found) or holds_part_of(found, key):
        return None
    return found


def holds_part_of(text: str, key: str | SecretStr) -> bool:
    """True when ``text`` holds :data:`KEY_PIECE` or more characters of the key in a row (what :func:`scrub` hides)."""
    key = _plain(key)
    if not key:
        return False
    if len(key) < KEY_PIECE:
        return key in text
    pieces = _key_pieces(key)
    return any(text[start : start + KEY_PIECE] in pieces for start in range(len(text) - KEY_PIECE + 1))


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


def openai_target(integration: OpenAIIntegration, role: Role, url: str) -> CheckTarget:
    """What a request for ``role``'s model to ``url`` talks to, for classifying and describing its failures."""
    model = integration.language_model if role == "language" else integration.embeddings_model
    return CheckTarget(role=role, provider=Provider.OPENAI, url=url, field_prefix="", deployment_id=None, model=model)


def azure_request_parts(
    integration: AzureOpenAIIntegration, role: Role, operation: str
) -> tuple[CheckTarget, str, dict[str, str], dict[str, str]]:
    """Where an Azure OpenAI request for ``role`` goes: ``POST {endpoint}/openai/deployments/{deployment}/{operation}``
    with the ``api-version`` query parameter and the ``api-key`` header (Azure OpenAI REST API reference, "Inference");
    with the API version ``v1``, ``POST {endpoint}/openai/v1/{operation}`` without ``api-version``, the deployment
    named as the body's ``model`` (see :func:`azure_body`; Azure OpenAI "API version lifecycle", the v1 API).
    A deployment that signs in with Microsoft Entra ID gets no ``api-key``: its requests carry
    ``Authorization: Bearer <token>`` from a :class:`~ai_admin_widgets.entra.TokenSource`, added per request.

    Args:
        integration: the Azure OpenAI integration.
        role: ``"language"`` (its language-model deployment) or ``"embeddings"``.
        operation: ``"chat/completions"`` or ``"embeddings"``.
    Returns:
        ``(target, url, query parameters, headers)``; the headers hold the key.
    """
    deployment = integration.deployment(role)
    v1 = integration.api_version == AZURE_V1_API
    url = (
        f"{deployment.endpoint_url}/openai/v1/{operation}"
        if v1
        else f"{deployment.endpoint_url}/openai/deployments/{deployment.deployment_id}/{operation}"
    )
    target = CheckTarget(
        role=role,
        provider=Provider.AZURE_OPENAI,
        url=url,
        field_prefix=f"{role}_model.",
        deployment_id=deployment.deployment_id,
        model=None,
        api_version=integration.api_version,
        signs_in=deployment.entra_id is not None,
    )
    headers = {"api-key": deployment.api_key.get_secret_value()} if deployment.api_key is not None else {}
    params = {} if v1 else {"api-version": integration.api_version}
    return target, url, params, headers


def secret_of(deployment: AzureDeployment) -> SecretStr:
    """What must never be repeated from a deployment's requests: its key, or its client secret; for a managed
    identity, which holds none, a random stand-in (so that scrubbing always has a key to compare with)."""
    if deployment.api_key is not None:
        return deployment.api_key
    if deployment.entra_id is not None and deployment.entra_id.client_secret is not None:
        return deployment.entra_id.client_secret
    return SecretStr(secrets.token_hex(24))


def token_source_for(deployment: AzureDeployment, sources: list[TokenSource], timeouts: Timeouts) -> TokenSource | None:
    """The :class:`TokenSource` of a deployment that signs in with Microsoft Entra ID (None for a key): the one in
    ``sources`` with the same sign-in, or a new one appended to it, so that both models share one token."""
    if deployment.entra_id is None:
        return None
    for source in sources:
        if source.entra_id == deployment.entra_id:
            return source
    source = TokenSource(deployment.entra_id, timeouts)
    sources.append(source)
    return source


def sign_in_failure(error: SignInFailed, tokens: TokenSource) -> Failure:
    """A failed Microsoft Entra ID sign-in as the request's :class:`Failure` (who signed in, where, what it said)."""
    outcome = Outcome(
        vendor_message=error.said,
        sign_in=tokens.described,
        sign_in_host=tokens.sign_in_host,
        sign_in_failure=error.failure,
    )
    return Failure(error.code, outcome)


def azure_body(integration: AzureOpenAIIntegration, role: Role) -> dict[str, Any]:
    """What every Azure OpenAI request body of ``role`` holds: ``{"model": <deployment>}`` on the v1 API, else nothing."""
    if integration.api_version == AZURE_V1_API:
        return {"model": integration.deployment(role).deployment_id}
    return {}


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


def make_client(
    timeouts: Timeouts = Timeouts(), *, network_backend: httpcore.AsyncNetworkBackend | None = None
) -> httpx.AsyncClient:
    """An httpx client for the checks: the proxy settings of the environment, except for loopback hosts.

    Args:
        timeouts: connect and overall limits, in seconds.
        network_backend: opens the TCP connections that go straight to a host (not those to a
            proxy from the environment); default httpcore's. The AI gateway's pins each
            connection to an address it checked (:mod:`ai_admin_widgets.gateway.addresses`).
    Returns:
        An ``httpx.AsyncClient``; the caller closes it.
    Raises:
        OSError, ssl.SSLError, ImportError: this server's HTTPS or proxy settings cannot be
            used (see :func:`setup_problem`).
    """
    options = _client_options(timeouts)
    direct = httpx.AsyncHTTPTransport(verify=options["verify"])  # one pool for every loopback spelling
    client = httpx.AsyncClient(**options, mounts={pattern: direct for pattern in _DIRECT})
    if network_backend is not None:
        for transport in (client._transport, *client._mounts.values()):
            _use_backend(transport, network_backend)
    return client


def _use_backend(transport: httpx.AsyncBaseTransport | None, backend: httpcore.AsyncNetworkBackend) -> None:
    """Give an ``httpx.AsyncHTTPTransport`` that connects straight to hosts (not through a proxy) ``backend``.

    httpx 0.28 offers no argument for it, so it is set on the pool httpx made, as :func:`_bound_reads` does
    (the gateway's rebinding tests fail if a new httpx moves it).
    """
    pool = getattr(transport, "_pool", None)
    if type(pool) is httpcore.AsyncConnectionPool:  # a proxy's pool is a subclass: the proxy resolves
        pool._network_backend = backend


def make_sync_client(timeouts: Timeouts = Timeouts()) -> httpx.Client:
    """:func:`make_client` for blocking calls: the same settings, as an ``httpx.Client`` (the caller closes it).

    Its sockets honour the overall deadline of :func:`send` and :func:`receive` (see :class:`_DeadlineBackend`).
    """
    options = _client_options(timeouts)
    direct = httpx.HTTPTransport(verify=options["verify"])  # one pool for every loopback spelling
    client = httpx.Client(**options, mounts={pattern: direct for pattern in _DIRECT})
    for transport in (client._transport, *client._mounts.values()):  # the proxies from the environment too
        _bound_reads(transport)
    return client


def _client_options(timeouts: Timeouts) -> dict[str, Any]:
    """What both clients share, the process's TLS context included (:func:`_tls_context`)."""
    return {
        "timeout": httpx.Timeout(timeouts.check, connect=timeouts.connect),
        "follow_redirects": False,
        "trust_env": True,
        "verify": _tls_context(),
    }


# --------------------------------------------------------------------------- #
# Overall deadline and answer cap
# --------------------------------------------------------------------------- #

#: When the request being sent on this thread (or task) must be done, as a ``time.monotonic()``
#: value; None for no overall deadline. Set by :func:`send` and :func:`receive`.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("ai_admin_widgets_deadline", default=None)


def _time_left(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """The socket timeout for one read or write: ``timeout``, cut to the time left before the deadline.

    Raises:
        httpcore.TimeoutException: ``error``, when the deadline has passed (httpx turns it into its own).
    """
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("The request's overall deadline has passed.")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until the current request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        wrapped = self._stream.start_tls(ssl_context, server_hostname, _time_left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(wrapped)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking network backend, with every connection a :class:`_DeadlineStream`.

    A blocking ``httpx.Client`` cannot be interrupted from outside, and httpx gives each read
    the whole read timeout again, so a server that sends its status line one byte a second
    holds it for hours. Cutting every socket wait to the time left makes the deadline hold
    in every phase (connect, TLS, headers, body), on fresh and on pooled connections alike.
    """

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _time_left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, _time_left(timeout, httpcore.ConnectTimeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _bound_reads(transport: httpx.BaseTransport | None) -> None:
    """Give an ``httpx.HTTPTransport``'s connection pool the :class:`_DeadlineBackend`.

    httpcore's pools take a network backend, but httpx 0.28 offers no argument to pass one, so
    it is set on the pool httpx made (the header-trickle tests of ``tests/test_deadlines.py`` fail if a new httpx moves it).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _DeadlineBackend):
        pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]


class AnswerTooLarge(Exception):
    """An answer longer than the cap: refused on its ``Content-Length``, or when the count passed it; never buffered."""

    def __init__(self, limit: int, response: httpx.Response) -> None:
        super().__init__(f"The answer was larger than {size_text(limit)}.")
        self.limit = limit
        self.response = response


def size_text(count: int) -> str:
    """A byte count for people: ``"16 MiB"``, ``"512 KiB"``, ``"900 bytes"``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.4g} {unit}"
    return f"{count} bytes"


def _earlier(first: float | None, second: float | None) -> float | None:
    return second if first is None else first if second is None else min(first, second)


def _declared_too_large(response: httpx.Response, max_bytes: int | None) -> bool:
    if max_bytes is None:
        return False
    declared = response.headers.get("content-length", "")
    return declared.strip().isdigit() and int(declared) > max_bytes


def _whole(response: httpx.Response, content: bytes) -> httpx.Response:
    """The response with its body read (and decoded): what ``response.read()`` would give, made only from public parts."""
    skipped = ("content-encoding", "content-length", "transfer-encoding")
    headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in skipped]
    return httpx.Response(response.status_code, headers=headers, content=content, request=response.request)


def receive(
    client: httpx.Client, request: httpx.Request, *, max_bytes: int | None = None, timeout: float | None = None
) -> httpx.Response:
    """Send ``request`` and read its whole answer, within ``timeout`` seconds in all and ``max_bytes`` bytes.

    Args:
        client: a blocking client; one from :func:`make_sync_client` enforces the deadline in
            every read, any other one only between the chunks of the body.
        request: the request to send.
        max_bytes: the most bytes of the (decoded) body to read; None for no cap.
        timeout: seconds for connecting, sending and reading all of the answer; None for only
            the client's per-read timeout.
    Returns:
        The response, its body read.
    Raises:
        httpx.TimeoutException: the deadline passed. httpx.HTTPError: any other network failure.
        AnswerTooLarge: the answer is longer than ``max_bytes`` (nothing more of it is read).
    """
    stop = None if timeout is None else time.monotonic() + timeout
    token = _deadline.set(_earlier(_deadline.get(), stop))
    try:
        deadline = _deadline.get()
        response = client.send(request, stream=True)
        try:
            if _declared_too_large(response, max_bytes):
                raise AnswerTooLarge(max_bytes or 0, response)
            chunks: list[bytes] = []
            count = 0
            for chunk in response.iter_bytes():
                count += len(chunk)
                if max_bytes is not None and count > max_bytes:
                    raise AnswerTooLarge(max_bytes, response)
                chunks.append(chunk)
                if deadline is not None and time.monotonic() >= deadline:
                    raise httpx.ReadTimeout("The request's overall deadline has passed.", request=request)
        finally:
            response.close()
        return _whole(response, b"".join(chunks))
    finally:
        _deadline.reset(token)


async def _read_async(client: httpx.AsyncClient, request: httpx.Request, max_bytes: int | None) -> httpx.Response:
    response = await client.send(request, stream=True)
    try:
        if _declared_too_large(response, max_bytes):
            raise AnswerTooLarge(max_bytes or 0, response)
        chunks: list[bytes] = []
        count = 0
        async for chunk in response.aiter_bytes():
            count += len(chunk)
            if max_bytes is not None and count > max_bytes:
                raise AnswerTooLarge(max_bytes, response)
            chunks.append(chunk)
    finally:
        await response.aclose()
    return _whole(response, b"".join(chunks))


@dataclass(frozen=True)
class Answer:
    """A 200 answer: the response, its parsed JSON body (None when not JSON) and the service's request id."""

    response: httpx.Response
    body: Any
    request_id: str | None


@dataclass(frozen=True)
class Failure:
    """A request that got no usable answer: its stable code, what the service said, and its request id.

    ``detail`` is a sentence of ours added to the code's message, when the code alone does not say
    it (an answer larger than the cap); empty otherwise.
    """

    code: FailureCode
    outcome: Outcome
    request_id: str | None = None
    detail: str = ""


def unexpected_answer(answer: Answer) -> Failure:
    """A 200 answer that is not the operation's answer (a proxy's HTML page, JSON of another shape), as a failure."""
    return Failure(
        FailureCode.UNEXPECTED_RESPONSE, Outcome(status=200, html=is_html(answer.response)), answer.request_id
    )


#: What the exchange asks its driver for: a request to send (the driver answers with the
#: response, its body read, or the ``httpx.HTTPError`` or :class:`AnswerTooLarge`), or seconds
#: to wait (the driver answers None).
_Step = Generator[
    "httpx.Request | float", "httpx.Response | httpx.HTTPError | AnswerTooLarge | None", "Answer | Failure"
]


def _exchange(
    build: Callable[..., httpx.Request],
    request: httpx.Request,
    provider: Provider,
    key: str | SecretStr,
    retry_budget: float,
    time_left: Callable[[], float] | None = None,
) -> _Step:
    """Send ``request`` until it has an answer or a failure, without doing any I/O itself.

    Retries: a 429 within ``retry_budget`` seconds (honouring ``retry-after-ms`` / ``retry-after``)
    and only when the wait ends before the deadline (``time_left()`` seconds away), a used-up
    quota never; a 5xx once after half a second; a 400 that rejects ``max_tokens`` (reasoning
    models) once with ``max_completion_tokens`` instead.
    """
    token = _bearer_of(request)  # a Microsoft Entra ID token is as secret as a key: hidden from what is said too
    waited = 0.0
    attempts = 0
    server_retries = 1
    switched_token_limit = False
    while True:
        attempts += 1
        response = yield request
        if isinstance(response, httpx.HTTPError):
            return Failure(_classify_transport(response), Outcome(proxy=isinstance(response, httpx.ProxyError)))
        if isinstance(response, AnswerTooLarge):  # not the API's answer: no OpenAI answer is that long
            return Failure(
                FailureCode.UNEXPECTED_RESPONSE,
                Outcome(status=response.response.status_code, html=is_html(response.response)),
                _hidden(_request_id(response.response, key), token),
                detail=f"The answer was larger than {size_text(response.limit)}, the most accepted here, so it was refused (not read to its end).",
            )
        if response is None:
            raise TypeError(
                "The exchange's driver answered a request with None; it must send the response or the error."
            )
        request_id = _hidden(_request_id(response, key), token)
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 200:
            return Answer(response, body, request_id)
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            redirect = _hidden(scrub(location, key), token)
            outcome = Outcome(status=status, redirect=redirect, redirect_never_called=_never_called(location))
            return Failure(FailureCode.UNEXPECTED_RESPONSE, outcome, request_id)
        error = _read_error(body)
        if not switched_token_limit and _rejects_max_tokens(status, error):
            switched_token_limit = True
            request = _with_max_completion_tokens(build, request)
            continue
        if error is None and status < 500:  # not JSON, or JSON of another shape: a proxy's page
            return Failure(FailureCode.UNEXPECTED_RESPONSE, Outcome(status=status, html=is_html(response)), request_id)
        code = _classify_status(provider, status, error)
        said = _hidden(_vendor_text(error, key), token)
        if code is FailureCode.RATE_LIMITED:
            asked = _retry_after(response)
            wait = asked if asked is not None else min(0.5 * 2 ** (attempts - 1), 8.0)
            if waited + wait > retry_budget or (time_left is not None and wait >= time_left()):
                return Failure(
                    code,
                    Outcome(status=status, wait_seconds=wait, asked_to_wait=asked is not None, vendor_message=said),
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
        unknown = (
            _hidden(scrub(error.code, key), token)
            if code is FailureCode.UNEXPECTED_RESPONSE and error and error.code
            else None
        )
        return Failure(code, Outcome(status=status, vendor_message=said, api_error=unknown or None), request_id)


def _bearer_of(request: httpx.Request) -> str:
    """The token of a request's ``Authorization: Bearer …`` header, or "" (an API key is hidden by ``key`` already)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _hidden(text: str | None, token: str) -> Any:
    """``text`` with every run of :data:`KEY_PIECE` characters of ``token`` hidden (``text`` itself when no token)."""
    if not text or not token:
        return text
    return _hide_key_pieces(text.replace(token, "[key]"), token)


def _fresh(build: Callable[..., httpx.Request], request: httpx.Request) -> httpx.Request:
    return build(request.method, request.url, headers=request.headers, content=request.content)


def _with_max_completion_tokens(build: Callable[..., httpx.Request], request: httpx.Request) -> httpx.Request:
    payload = json.loads(request.content)
    payload["max_completion_tokens"] = payload.pop("max_tokens", 1)
    headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
    return build(request.method, request.url, headers=headers, json=payload)


def send(
    client: httpx.Client,
    request: httpx.Request,
    *,
    provider: Provider,
    key: str | SecretStr,
    retry_budget: float,
    timeout: float | None = None,
    max_bytes: int | None = None,
) -> Answer | Failure:
    """Send ``request`` with ``client``, retrying rate limits, a server error and ``max_tokens`` as the vendors ask.

    Args:
        client: a blocking client (:func:`make_sync_client`); its pool is reused.
        request: built by ``client.build_request``, so it carries the client's timeouts.
        provider: whose error codes to read.
        key: the API key the request carries (best a ``SecretStr``, so no frame of a traceback shows it),
            so that nothing of it is ever repeated.
        retry_budget: the most seconds to wait in total for rate limits.
        timeout: the overall deadline in seconds, retries and every read included (``timeout``
            when it passes); None for only the client's per-read timeout.
        max_bytes: the most bytes an answer may have; a longer one is an ``unexpected_response``
            failure, not read further. None for no cap.
    Returns:
        The :class:`Answer` (HTTP 200) or the classified :class:`Failure`; never raises for a
        remote or network failure.
    """
    stop = None if timeout is None else time.monotonic() + timeout
    token = _deadline.set(_earlier(_deadline.get(), stop))
    try:
        steps = _exchange(
            client.build_request,
            request,
            provider,
            key,
            retry_budget,
            None if stop is None else lambda: stop - time.monotonic(),
        )
        step = next(steps)
        while True:
            if isinstance(step, httpx.Request):
                try:
                    reply: httpx.Response | httpx.HTTPError | AnswerTooLarge | None = receive(
                        client, step, max_bytes=max_bytes
                    )
                except (httpx.HTTPError, AnswerTooLarge) as error:
                    reply = error
            else:
                if stop is not None and time.monotonic() + step >= stop:
                    return Failure(FailureCode.TIMEOUT, Outcome())
                time.sleep(step)
                reply = None
            try:
                step = steps.send(reply)
            except StopIteration as done:
                return done.value
    finally:
        _deadline.reset(token)


async def send_async(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: Provider,
    key: str | SecretStr,
    retry_budget: float,
    timeout: float | None = None,
    max_bytes: int | None = None,
) -> Answer | Failure:
    """:func:`send` for an ``httpx.AsyncClient`` (:func:`make_client`): waits without blocking the event loop.

    The deadline is an ``asyncio.wait_for`` around the whole exchange, so it cuts any read short.
    """
    if timeout is None:
        return await _drive_async(client, request, provider, key, retry_budget, None, max_bytes)
    stop = time.monotonic() + timeout
    try:
        return await asyncio.wait_for(
            _drive_async(client, request, provider, key, retry_budget, stop, max_bytes), timeout
        )
    except asyncio.TimeoutError:
        return Failure(FailureCode.TIMEOUT, Outcome())


async def _drive_async(
    client: httpx.AsyncClient,
    request: httpx.Request,
    provider: Provider,
    key: str | SecretStr,
    retry_budget: float,
    stop: float | None,
    max_bytes: int | None,
) -> Answer | Failure:
    steps = _exchange(
        client.build_request,
        request,
        provider,
        key,
        retry_budget,
        None if stop is None else lambda: stop - time.monotonic(),
    )
    step = next(steps)
    while True:
        if isinstance(step, httpx.Request):
            try:
                reply: httpx.Response | httpx.HTTPError | AnswerTooLarge | None = await _read_async(
                    client, step, max_bytes
                )
            except (httpx.HTTPError, AnswerTooLarge) as error:
                reply = error
        else:
            await asyncio.sleep(step)
            reply = None
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value


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


# --------------------------------------------------------------------------- #
# Routes of AI calls (chat and embeddings), for ai.py
# --------------------------------------------------------------------------- #


class _Headers(dict[str, str]):
    """Request headers that hold a key: shown by name only, so a traceback listing local variables
    (IPython's ``%xmode Verbose``, ``traceback`` with ``capture_locals``) never shows the key."""

    def __repr__(self) -> str:
        return f"<headers {', '.join(self)}: values hidden>"


def _encoded(payload: dict[str, Any]) -> bytes:
    """``payload`` as the JSON body of a request.

    Raises:
        TypeError: a value cannot be sent as JSON; the message names the option (e.g. a
            ``datetime`` given as ``temperature``) and what to give instead.
    """
    try:
        return json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        for name, value in payload.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise TypeError(
                    f"The option {name!r} cannot be sent to the service ({type(value).__name__}); "
                    "give text, numbers (not NaN or infinity), True/False, None, or lists and dicts of them."
                ) from None
        raise


@dataclass(frozen=True, repr=False)
class Route:
    """Where one role's requests go and how they authenticate (the headers hold the key, so the repr shows neither)."""

    provider: Provider
    url: httpx.URL  # parsed once, the query (Azure's api-version) included
    headers: _Headers
    body: dict[str, Any]  # what every request's body holds: OpenAI's model id, or nothing
    key: SecretStr
    target: CheckTarget  # for describing failures
    tokens: TokenSource | None = None  # Microsoft Entra ID: a Bearer token per request instead of api-key

    def __repr__(self) -> str:  # shown in tracebacks that list local variables
        return f"Route({self.provider.value}, {str(self.url)!r})"

    def request(self, client: httpx.Client | httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Request:
        """The POST of ``payload`` on this route, built by ``client`` (so it carries its timeouts).

        Raises:
            TypeError: a value in ``payload`` cannot be sent as JSON (see :func:`_encoded`).
            SignInFailed: the route signs in with Microsoft Entra ID and no token could be had.
        """
        content = _encoded(
            payload | self.body
        )  # a value JSON cannot hold fails here, before any frame holds the headers
        headers = self.headers if self.tokens is None else self.bearer(self.tokens.token())
        return client.build_request("POST", self.url, headers=headers, content=content)

    async def request_async(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Request:
        """:meth:`request`, signing in (when a token must be had) without blocking the event loop."""
        content = _encoded(payload | self.body)
        headers = self.headers if self.tokens is None else self.bearer(await self.tokens.token_async())
        return client.build_request("POST", self.url, headers=headers, content=content)

    def bearer(self, token: str) -> _Headers:
        """This route's headers with ``Authorization: Bearer <token>`` (they hold the token: never show them)."""
        return _Headers(self.headers, authorization=f"Bearer {token}")

    def close(self) -> None:
        """Close the route's Microsoft Entra ID credential, if it has one (its integration changed)."""
        if self.tokens is not None:
            self.tokens.close()


def routes_for(
    integration: OpenAIIntegration | AzureOpenAIIntegration, timeouts: Timeouts = Timeouts()
) -> dict[Role, Route]:
    """Where each role's AI calls go: ``{base_url}/chat/completions`` and ``/embeddings`` with the saved model
    ids (OpenAI), or each deployment's ``chat/completions`` / ``embeddings`` with the api-version (Azure OpenAI).

    Deployments that sign in with the same Microsoft Entra ID share one :class:`~ai_admin_widgets.entra.TokenSource`
    (``timeouts`` bound its sign-in); close the routes (:meth:`Route.close`) when the integration changes."""
    routes: dict[Role, Route] = {}
    sources: list[TokenSource] = []
    operations: tuple[tuple[Role, str], ...] = (("language", "chat/completions"), ("embeddings", "embeddings"))
    for role, operation in operations:
        if isinstance(integration, OpenAIIntegration):
            url = f"{integration.base_url}/{operation}"
            target = openai_target(integration, role, url)
            routes[role] = Route(
                Provider.OPENAI,
                httpx.URL(url),
                _Headers(openai_headers(integration), **{"content-type": "application/json"}),
                {"model": target.model},
                integration.api_key,
                target,
            )
        else:
            target, url, params, headers = azure_request_parts(integration, role, operation)
            deployment = integration.deployment(role)
            tokens = token_source_for(deployment, sources, timeouts)
            routes[role] = Route(
                Provider.AZURE_OPENAI,
                httpx.URL(url, params=params),
                _Headers(headers, **{"content-type": "application/json"}),
                azure_body(integration, role),
                secret_of(deployment),
                target,
                tokens,
            )
    return routes


@dataclass(frozen=True, repr=False)
class AIRoutes:
    """What the settings say of the current user's AI calls.

    Attributes:
        configured: an integration is saved (AI functionality enabled).
        allowed: the current user may use AI (always False when not configured).
        routes: one :class:`Route` per role; empty unless configured and allowed (no key is
            read for a user who may not use it).
        recheck_after: seconds after which "may use AI" should be asked again
            (a hub group membership may change without the settings changing).
    """

    configured: bool
    allowed: bool
    routes: Mapping[Role, Route] = field(default_factory=dict)
    recheck_after: float = 30.0

    def __repr__(self) -> str:  # never the routes' headers
        return f"AIRoutes(configured={self.configured}, allowed={self.allowed})"
