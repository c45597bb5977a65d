"""Microsoft Entra ID tokens for keyless Azure OpenAI, through ``azure-identity``.

A :class:`TokenSource` holds one credential (``ClientSecretCredential``,
``ManagedIdentityCredential`` or ``WorkloadIdentityCredential``) for one deployment's
:class:`~ai_admin_widgets.models.EntraID`, and the token it last got for the scope
:data:`SCOPE`. Requests carry ``Authorization: Bearer <token>`` instead of ``api-key``
(Azure OpenAI "Authentication": Microsoft Entra ID).

Tokens are kept until less than :func:`refresh_margin` of their life is left, then renewed
before they expire (azure-identity's own cache hands back a token until it has expired, so a
token it returns unchanged is asked for again on a fresh credential). A token is never logged,
never put in an exception, a report or an answer: only the request header holds it.

Sign-in failures are classified by the service's AADSTS code (Microsoft identity platform,
"Microsoft Entra authentication and authorization error codes", and the token endpoint's
OAuth 2.0 error response ``{"error", "error_description", "error_codes"}`` of the client
credentials flow, RFC 6749 section 5.2):

* ``AADSTS90002`` tenant not found (also ``invalid_tenant``) -> ``entra_tenant_not_found``
* ``AADSTS700016`` application not found in the directory -> ``entra_client_not_found``
* ``AADSTS7000215`` invalid client secret -> ``entra_secret_invalid``
* ``AADSTS7000222`` the client secret has expired -> ``entra_secret_expired``
* no managed identity endpoint (``CredentialUnavailableError``) -> ``entra_identity_unavailable``
* the sign-in service not reached -> ``entra_unreachable``; any other refusal -> ``entra_sign_in_refused``.

The certificate authorities trusted for the sign-in are those of the checks (``SSL_CERT_FILE``,
else ``SSL_CERT_DIR``, else certifi's), given to the credential's own transport only
(azure-core's ``connection_verify``), never set for the process.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
import threading
import time
from typing import Any

from pydantic import SecretStr

from .models import DEFAULT_AUTHORITY_HOST, KNOWN_AUTHORITY_HOSTS, EntraID, FailureCode, Timeouts, entra_words

__all__ = ["SCOPE", "SignInFailed", "TokenSource", "refresh_margin"]

#: The scope of every Azure OpenAI token (Azure OpenAI "Authentication": Microsoft Entra ID).
SCOPE = "https://cognitiveservices.azure.com/.default"
#: The most seconds before a token's expiry at which it is renewed (azure-identity's own offset, 5 minutes).
MAX_REFRESH_MARGIN = 300.0

#: AADSTS codes -> our code (Microsoft Entra authentication and authorization error codes).
_AADSTS: dict[str, FailureCode] = {
    "90002": FailureCode.ENTRA_TENANT_NOT_FOUND,
    "700016": FailureCode.ENTRA_CLIENT_NOT_FOUND,
    "7000215": FailureCode.ENTRA_SECRET_INVALID,
    "7000222": FailureCode.ENTRA_SECRET_EXPIRED,
}
_AADSTS_CODE = re.compile(r"AADSTS(\d{5,7})")


class SignInFailed(Exception):
    """No token could be had. ``code`` is the :class:`FailureCode`; ``said`` the service's words, scrubbed;
    ``failure`` for ``entra_unreachable``, what failed in words. The message holds no secret and no token."""

    def __init__(self, code: FailureCode, said: str = "", failure: str | None = None) -> None:
        super().__init__(code.summary)
        self.code = code
        self.said = said
        self.failure = failure


def refresh_margin(lifetime: float) -> float:
    """Seconds before expiry at which a token of ``lifetime`` seconds is renewed: half its life, at most 5 minutes."""
    return min(MAX_REFRESH_MARGIN, max(lifetime, 0.0) / 2)


def _verify() -> str | bool:
    """What the credential's transport trusts: the checks' bundle (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``) or the default."""
    return os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR") or True


def _workload_identity() -> bool:
    """True where AKS workload identity is set up (azure-identity's variables for ``WorkloadIdentityCredential``)."""
    return all(os.environ.get(name) for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID"))


#: Set while a :class:`TokenSource` signs in: azure-identity's own "<credential>.get_token failed: …" warning is
#: then dropped, because the failure is classified and said in this package's words (with the service's quoted,
#: scrubbed), and the library's line would otherwise land in the notebook's output as well.
_SIGNING_IN: contextvars.ContextVar[bool] = contextvars.ContextVar("ai_admin_widgets_signing_in", default=False)


class _QuietSignIn(logging.Filter):
    """Drops azure-identity's failure warnings for the sign-ins made here, and nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_SIGNING_IN.get() and record.levelno >= logging.WARNING and "failed" in str(record.msg))


#: The azure-identity modules that log a credential's failure as a warning (azure-identity 1.19 to 1.27).
_LOUD_ON_FAILURE = (
    "azure.identity._internal.decorators",
    "azure.identity._internal.get_token_mixin",
    "azure.identity._internal.msal_managed_identity_client",
    "azure.identity.aio._internal.decorators",
    "azure.identity.aio._internal.get_token_mixin",
)
for _name in _LOUD_ON_FAILURE:
    logging.getLogger(_name).addFilter(_QuietSignIn())


class TokenSource:
    """Tokens for one :class:`EntraID` sign-in, kept and renewed before they expire; thread-safe.

    Args:
        entra_id: who signs in.
        timeouts: ``connect`` and ``check`` bound each request of the sign-in (seconds).
    """

    def __init__(self, entra_id: EntraID, timeouts: Timeouts = Timeouts()) -> None:
        self.entra_id = entra_id
        self.timeouts = timeouts
        self._lock = threading.Lock()
        self._credential: Any = None
        self._token: tuple[str, float, float] | None = None  # (token, expires_on, refresh_at), time.time() seconds
        #: Tokens got from the sign-in service (not from this source's cache), for tests and benchmarks.
        self.acquired = 0

    def __repr__(self) -> str:
        return f"TokenSource({self.described})"

    @property
    def described(self) -> str:
        """Who signs in, in words (never a secret)."""
        return entra_words(self.entra_id.method, self.entra_id.tenant_id, self.entra_id.client_id)

    @property
    def sign_in_host(self) -> str:
        """The host the sign-in goes to: the authority host, or the machine's managed identity endpoint."""
        if self.entra_id.method == "service_principal" or _workload_identity():
            host = self.entra_id.authority_host if self.entra_id.method == "service_principal" else None
            return (host or os.environ.get("AZURE_AUTHORITY_HOST") or "login.microsoftonline.com").split("://")[-1]
        endpoint = os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT") or "169.254.169.254"
        return endpoint.split("://")[-1].split("/")[0]

    @property
    def secret(self) -> SecretStr | None:
        """The client secret (to keep it out of any text shown), or None for a managed identity."""
        return self.entra_id.client_secret

    def _make_credential(self) -> Any:
        from azure.identity import ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential

        options: dict[str, Any] = {
            "connection_verify": _verify(),
            "connection_timeout": self.timeouts.connect,
            "read_timeout": self.timeouts.check,
            "retry_total": 0,  # Save's deadline and ai.py's retries decide, not azure-core's backoff
        }
        entra = self.entra_id
        if entra.method == "service_principal":
            secret = entra.client_secret
            assert secret is not None and entra.tenant_id and entra.client_id  # EntraID's own rule
            host = entra.authority_host.split("://", 1)[-1]
            return ClientSecretCredential(
                entra.tenant_id,
                entra.client_id,
                secret.get_secret_value(),
                authority=entra.authority_host,
                disable_instance_discovery=host not in KNOWN_AUTHORITY_HOSTS,
                **options,
            )
        if _workload_identity():  # AKS: a federated token file, exchanged at AZURE_AUTHORITY_HOST
            authority = os.environ.get("AZURE_AUTHORITY_HOST") or DEFAULT_AUTHORITY_HOST
            return WorkloadIdentityCredential(
                client_id=entra.client_id or os.environ["AZURE_CLIENT_ID"],
                authority=authority,
                disable_instance_discovery=authority.split("://", 1)[-1].rstrip("/") not in KNOWN_AUTHORITY_HOSTS,
                **options,
            )
        return ManagedIdentityCredential(client_id=entra.client_id, **options)

    def token(self) -> str:
        """A token that is not about to expire, from the cache or the sign-in service; blocks while it signs in.

        Raises:
            SignInFailed: no token could be had (classified; no secret in it).
        """
        with self._lock:
            now = time.time()
            if self._token is not None and now < self._token[2]:
                return self._token[0]
            found = self._fetch()
            if found.expires_on - time.time() <= refresh_margin(found.expires_on - now):  # azure-identity's cached one
                self._close_credential()
                found = self._fetch()
            lifetime = max(found.expires_on - now, 0.0)
            self._token = (found.token, float(found.expires_on), now + lifetime - refresh_margin(lifetime))
            return found.token

    async def token_async(self) -> str:
        """:meth:`token` without blocking the event loop (the sign-in runs on a worker thread when it is needed)."""
        cached = self._token
        if cached is not None and time.time() < cached[2]:
            return cached[0]
        return await asyncio.to_thread(self.token)

    def _fetch(self) -> Any:
        signing_in = _SIGNING_IN.set(True)
        try:
            return self._fetch_quietly()
        finally:
            _SIGNING_IN.reset(signing_in)

    def _fetch_quietly(self) -> Any:
        if self._credential is None:
            try:
                self._credential = self._make_credential()
            except Exception as error:  # an unusable setting of azure-identity's
                raise self._classified(error) from None
        try:
            found = self._credential.get_token_info(SCOPE)
        except Exception as error:
            raise self._classified(error) from None
        self.acquired += 1
        return found

    def _classified(self, error: BaseException) -> SignInFailed:
        """The sign-in's failure as a :class:`SignInFailed`, by its AADSTS code, then by what kind of error it is."""
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
        from azure.identity import CredentialUnavailableError

        from .transport import scrub

        text = str(error)
        said = scrub(_aad_words(text), self.secret or "")
        found = _AADSTS_CODE.search(text)
        if found and found.group(1) in _AADSTS:
            return SignInFailed(_AADSTS[found.group(1)], said)
        if "invalid_tenant" in text or "Unable to get authority configuration" in text:  # MSAL: OIDC discovery got 4xx
            return SignInFailed(FailureCode.ENTRA_TENANT_NOT_FOUND, said)
        if isinstance(error, CredentialUnavailableError):
            return SignInFailed(FailureCode.ENTRA_IDENTITY_UNAVAILABLE, said)
        chain = _chain(error)
        token_file = os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
        if token_file and any(
            isinstance(link, (FileNotFoundError, PermissionError, IsADirectoryError)) for link in chain
        ):
            # workload identity: its federated token is a file of the machine's, not the sign-in service's answer
            return SignInFailed(
                FailureCode.ENTRA_IDENTITY_UNAVAILABLE,
                f"The workload identity's federated token file (AZURE_FEDERATED_TOKEN_FILE, {token_file}) cannot be read.",
            )
        if not found and (
            any(isinstance(link, (ServiceRequestError, ServiceResponseError, OSError)) for link in chain)
            or _UNREACHED.search(" ".join(str(link) for link in chain))
        ):
            return SignInFailed(FailureCode.ENTRA_UNREACHABLE, failure=_network_words(error))
        if isinstance(error, ClientAuthenticationError) or found:
            return SignInFailed(FailureCode.ENTRA_SIGN_IN_REFUSED, said)
        return SignInFailed(FailureCode.ENTRA_SIGN_IN_REFUSED, said)

    def _close_credential(self) -> None:
        credential, self._credential = self._credential, None
        if credential is not None:
            try:
                credential.close()
            except Exception:  # noqa: S110 (closing a pool that is already gone)
                pass

    def close(self) -> None:
        """Close the credential's connections and forget the token (a call still under way signs in afresh)."""
        with self._lock:
            self._token = None
            self._close_credential()


def _aad_words(text: str) -> str:
    """The service's own sentence from an azure-identity / MSAL error: from ``AADSTS…`` up to its trace ids."""
    found = _AADSTS_CODE.search(text)
    if found is None:
        return ""
    sentence = text[found.start() :]
    return re.split(r"\s*(Trace ID|Correlation ID|Timestamp)\b|\"|\\r|\\n", sentence, maxsplit=1)[0]


#: Words of a sign-in that never reached the service (requests' and urllib3's, wrapped by azure-identity or MSAL).
_UNREACHED = re.compile(
    r"connection refused|max retries exceeded|failed to establish|timed out|name or service not known|"
    r"certificate verify failed|ssl",
    re.I,
)


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _network_words(error: BaseException) -> str:
    """What kind of network failure ``error`` is, in words."""
    chain = _chain(error)
    text = " ".join(f"{type(link).__name__} {link}" for link in chain).lower()
    if "certificate" in text or "ssl" in text:
        return "its certificate is not trusted here"
    if "timed out" in text or "timeout" in text:
        return "it did not answer in time"
    if "name or service not known" in text or "getaddrinfo" in text or "name resolution" in text:
        return "its host name could not be found"
    return "no connection could be made"
