"""The data of the OpenAI integration, its validation rules and the error vocabulary.

Pure: nothing here does I/O. The models are the documentation of the data: each
field's ``title`` is the label the form shows and its ``description`` is the
admin-facing help text, so the panel and the error messages reuse them.

Keys are :class:`pydantic.SecretStr` from the moment they are read. Every model
is built with ``hide_input_in_errors=True``, so a :class:`pydantic.ValidationError`
never repeats what was typed (a mistyped key included).
"""

from __future__ import annotations

import enum
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    TypeAdapter,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from .health import DEFAULT_STALE_AFTER, Health, duration_text, time_ago
from .normalize import (
    AZURE_HOST_SUFFIXES,
    AZURE_V1_API,
    FieldProblem,
    Notice,
    azure_host_notices,
    is_loopback,
    normalize_api_key,
    normalize_api_version,
    provider_hint,
    split_azure_endpoint,
)

__all__ = [
    "ADMIN_REQUIRED",
    "AZURE_V1_API",
    "KEEP_SAVED_KEY",
    "AIAdminError",
    "AccessLists",
    "AdminCheck",
    "AdminsDecidedByHub",
    "AuditAction",
    "AuditEvent",
    "AzureDeployment",
    "AzureDeploymentFields",
    "AzureOpenAIFields",
    "AzureOpenAIIntegration",
    "Budget",
    "BudgetsView",
    "CheckTarget",
    "ConcurrentChange",
    "EntraID",
    "EntraIDFields",
    "Explanation",
    "FailureCode",
    "FieldProblem",
    "HistoryRow",
    "Integration",
    "IntegrationStatus",
    "KeyNotInThisKeyring",
    "KeyringState",
    "KeyringUnavailable",
    "ModelCheck",
    "ModelSummary",
    "NotConfigured",
    "NotOnGateway",
    "Notice",
    "OpenAIFields",
    "OpenAIIntegration",
    "Outcome",
    "PermissionDenied",
    "Provider",
    "Role",
    "SavedFields",
    "SavedKey",
    "SavedKeyUnavailable",
    "SettingsSnapshot",
    "StoreError",
    "Timeouts",
    "UsageDay",
    "UsageReport",
    "UsageTotal",
    "VerificationFailed",
    "VerificationReport",
    "budget_limit_number",
    "check_usage_since",
    "checked_budget",
    "explain",
    "field_errors",
    "field_title",
    "holds_key",
    "key_hint",
    "looks_like_key",
    "parse_integration",
    "parse_usage_by",
    "parse_usage_since",
    "refusal_words",
    "resource_of",
    "saved_fields",
]

#: The two models an integration provides: ``"language"`` (GPT-4 Turbo or later)
#: and ``"embeddings"`` (text-embedding-3-small).
Role = Literal["language", "embeddings"]
ROLES: tuple[Role, Role] = ("language", "embeddings")
ROLE_LABELS: dict[str, str] = {"language": "Language model", "embeddings": "Embeddings model"}

#: The api-version the Azure OpenAI checks use unless the admin picks another.
#: Source: Azure OpenAI REST API reference, "API specs" (GA version 2024-10-21).
DEFAULT_AZURE_API_VERSION = "2024-10-21"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
#: What anyone who may not configure the integration is told (the seed product's wording).
ADMIN_REQUIRED = "You must be assigned the Admin account type to configure the OpenAI integration."
#: The longest Endpoint URL or Base URL accepted, in characters (an endpoint is far shorter; this bounds what is stored).
MAX_URL_LENGTH = 2048
DEFAULT_LANGUAGE_MODEL = "gpt-4o"
DEFAULT_EMBEDDINGS_MODEL = "text-embedding-3-small"


class Provider(str, enum.Enum):
    """Who serves the models: OpenAI directly, or an Azure OpenAI resource."""

    OPENAI = "openai"
    AZURE_OPENAI = "azure_openai"

    @property
    def label(self) -> str:
        """The provider's name as the UI shows it: ``"OpenAI"`` or ``"Azure OpenAI"``."""
        return {"openai": "OpenAI", "azure_openai": "Azure OpenAI"}[self.value]


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


class AIAdminError(Exception):
    """Base class of every error this package raises on purpose."""


class VerificationFailed(AIAdminError):
    """Save was refused because authentication failed; ``.report`` says why, per model."""

    def __init__(self, report: VerificationReport) -> None:
        self.report = report
        super().__init__(report.summary())


class NotConfigured(AIAdminError):
    """The operation needs a saved OpenAI integration and there is none."""


class PermissionDenied(AIAdminError):
    """The current user is not allowed to change the OpenAI integration."""


class AdminsDecidedByHub(AIAdminError):
    """The AI gateway keeps no admins list: on a hub, hub admins and holders of ``custom:ai-admin:configure`` configure."""


class NotOnGateway(AIAdminError):
    """Usage and budgets are kept by the AI gateway on JupyterHub; this machine has none."""


class StoreError(AIAdminError):
    """The settings store could not be read or written; nothing was half-saved."""


class ConcurrentChange(StoreError):
    """Someone else saved or removed the integration after this change began; nothing was saved."""


class KeyringUnavailable(StoreError):
    """No usable keyring backend holds the keys; the message says how to get one."""


class KeyNotInThisKeyring(StoreError):
    """The keyring used here holds no key of this store: another admin saved it, from their own keyring."""


class SavedKeyUnavailable(AIAdminError):
    """An Edit asked to keep a saved key (:data:`KEEP_SAVED_KEY`) that cannot be kept; the key must be typed again.

    Attributes:
        field: the dotted path of the API Key field to fill (``"api_key"``, ``"language_model.api_key"``, ...).
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- #
# Failure codes: one per thing that can go wrong when credentials are checked
# --------------------------------------------------------------------------- #


class FailureCode(str, enum.Enum):
    """The stable outcome code of one model check. ``code.summary`` says it in one line."""

    summary: str

    def __new__(cls, value: str, summary: str) -> FailureCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.summary = summary
        return member

    OK = "ok", "The model answered with these credentials."
    # The vendor refused the credentials.
    INVALID_API_KEY = "invalid_api_key", "The API key is wrong, revoked or for another resource."
    MISSING_PERMISSIONS = (
        "missing_permissions",
        "The key or identity is valid but lacks the permission (scope or role) to call the model.",
    )
    NETWORK_NOT_ALLOWED = (
        "network_not_allowed",
        "The service refuses calls from this network (an IP allow-list, virtual network or firewall rules).",
    )
    REGION_NOT_SUPPORTED = (
        "region_not_supported",
        "The service is not offered in the country or region the calls come from.",
    )
    ENTRA_TOKEN_REFUSED = (
        "entra_token_refused",
        "The resource refused the Microsoft Entra ID token: an identity of another tenant, or expired or for another resource.",
    )
    KEY_AUTH_DISABLED = (
        "key_auth_disabled",
        "The resource has key authentication turned off: it accepts Microsoft Entra ID sign-in only.",
    )
    WRONG_ORGANIZATION = "wrong_organization", "The organization or project sent with the key does not match it."
    # Microsoft Entra ID (keyless Azure OpenAI) refused or could not sign in.
    ENTRA_TENANT_NOT_FOUND = "entra_tenant_not_found", "Microsoft Entra ID has no tenant with that Tenant ID."
    ENTRA_CLIENT_NOT_FOUND = (
        "entra_client_not_found",
        "The tenant has no application (service principal) with that Client ID.",
    )
    ENTRA_SECRET_INVALID = "entra_secret_invalid", "Microsoft Entra ID rejected the client secret."
    ENTRA_SECRET_EXPIRED = "entra_secret_expired", "The client secret has expired."
    ENTRA_IDENTITY_UNAVAILABLE = (
        "entra_identity_unavailable",
        "This machine has no managed identity (or workload identity) to sign in with.",
    )
    ENTRA_UNREACHABLE = "entra_unreachable", "Microsoft Entra ID's sign-in service could not be reached."
    ENTRA_SIGN_IN_REFUSED = "entra_sign_in_refused", "Microsoft Entra ID refused the sign-in for another reason."
    ROLE_MISSING = (
        "role_missing",
        "The identity signed in, but has no role on the resource that lets it call the model "
        "(Cognitive Services OpenAI User).",
    )
    # The vendor could not find, or will not serve, what the settings name.
    MODEL_NOT_AVAILABLE = "model_not_available", "The OpenAI key or project cannot use that model."
    DEPLOYMENT_NOT_FOUND = "deployment_not_found", "No deployment with that Deployment ID exists on the resource."
    ENDPOINT_NOT_FOUND = (
        "endpoint_not_found",
        "The endpoint URL or api-version does not lead to the OpenAI or Azure OpenAI API.",
    )
    API_VERSION_UNSUPPORTED = (
        "api_version_unsupported",
        "The api-version is unknown, or too old for the deployed model.",
    )
    WRONG_MODEL_TYPE = "wrong_model_type", "A chat deployment is in the embeddings slot, or the reverse."
    MODEL_NOT_SUPPORTED = (
        "model_not_supported",
        "The deployment answers with a model older than GPT-4 Turbo, or not text-embedding-3-small.",
    )
    # The vendor is busy, out of quota, or failing.
    QUOTA_EXCEEDED = "quota_exceeded", "The account or resource has used up its quota or credit."
    RATE_LIMITED = "rate_limited", "The service asked to wait longer than the authentication may take."
    SERVER_ERROR = "server_error", "The service answered with a server error (5xx)."
    # The network between the kernel and the vendor.
    TIMEOUT = "timeout", "The endpoint did not answer within the time allowed."
    DNS_FAILURE = "dns_failure", "The endpoint's host name could not be found."
    CONNECTION_FAILED = "connection_failed", "No connection could be made to the endpoint's host."
    TLS_ERROR = "tls_error", "The secure (TLS) connection failed, often because a proxy replaces certificates."
    ADDRESS_REFUSED = (
        "address_refused",
        "The endpoint's host resolved to an address the AI gateway may not call (metadata, link-local, or private).",
    )
    # The request got past authentication, but its content was refused.
    CONTENT_REFUSED = (
        "content_refused",
        "The service's content filter refused the request's text (the credentials and the model work).",
    )
    # The answer itself.
    UNEXPECTED_RESPONSE = (
        "unexpected_response",
        "The answer was not an OpenAI API response (not JSON, an HTML page, or the wrong shape).",
    )


# --------------------------------------------------------------------------- #
# Validation rules
# --------------------------------------------------------------------------- #

_DEPLOYMENT_ID = re.compile(r"[A-Za-z0-9._-]{2,64}")
_HOST = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")  # a DNS name, or an IP address (IPv6 without its brackets)
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
#: OpenAI keys (sk-…), Azure keys (32 hex digits, or 84 letters and digits), and the sandbox's practice
#: Azure keys (sandbox-azure-<hex>), which must never be echoed either.
_KEY_SHAPES = re.compile(r"^(sk-[A-Za-z0-9_-]{16,}|[0-9a-fA-F]{32}|[A-Za-z0-9]{84}|sandbox-azure-[0-9a-fA-F]{16,})$")


#: A Microsoft Entra ID client secret's Value: 3 characters, a digit, ``Q~``, then 31 to 34 (the shape secret
#: scanners such as GitHub's look for, "Azure Active Directory application secret").
_ENTRA_SECRET = re.compile(r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])")


def looks_like_key(text: str) -> bool:
    """True for text shaped like an OpenAI key (sk-…), an Azure key (32 hex or 84 letters and digits) or a
    Microsoft Entra ID client secret (``…8Q~…``)."""
    return bool(_KEY_SHAPES.match(text) or _ENTRA_SECRET.fullmatch(text))


def holds_key(text: str) -> bool:
    """True when any word of ``text`` looks like a key (:func:`looks_like_key`): a key in quotes,
    after ``Bearer``, or in a URL's ``?api-key=`` counts too. Words are runs of letters, digits, ``_`` and ``-``
    (a client secret's ``~`` and ``.`` included for its shape)."""
    return any(looks_like_key(word) for word in re.findall(r"[A-Za-z0-9_\-]+", text)) or bool(
        _ENTRA_SECRET.search(text)
    )


def _refuse_key_in_url(data: dict[str, Any], name: str, label: str, path: str | None = None) -> None:
    """Refuse a URL field that holds something shaped like a key, without ever repeating it.

    A key pasted into a URL (in its path, as a host name, after ``?api-key=``) would otherwise be
    stored in ``settings.json`` and shown in messages, notices and the audit log.

    Raises:
        FieldProblem: on ``path`` (default ``name``), saying what to do.
    """
    value = data.get(name)
    if isinstance(value, str) and holds_key(value):
        raise FieldProblem(
            path or name,
            f"{label} holds something shaped like an API key: paste the key under API Key, and here only the "
            f"{label} (such as https://<resource>.openai.azure.com, or https://api.openai.com/v1).",
        )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_endpoint(value: Any, field_label: str) -> str:
    """Check an endpoint URL: https, or http for a loopback host; returns it without a trailing slash."""
    if not isinstance(value, str):
        raise ValueError(f"{field_label} must be text, such as https://<resource>.openai.azure.com.")
    text = value.strip()
    if not text:
        raise ValueError(f"{field_label} is empty: paste the URL shown in the portal.")
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(
            f"{field_label} is longer than {MAX_URL_LENGTH:,} characters, so it cannot be an endpoint: "
            "paste only the endpoint, such as https://<resource>.openai.azure.com."
        )
    if any(unicodedata.category(character) in ("Cc", "Cf", "Cs", "Zl", "Zp") for character in text):
        raise ValueError(
            f"{field_label} has an invisible or control character (often picked up when copying from a web page, "
            "a chat or a terminal): type it or paste it again from the portal."
        )
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed "[" of an IPv6 address
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field_label} is not a web address: it must start with https:// and name a host.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"{field_label} uses http, which would send the API key unencrypted: use https://.")
    if parts.username or parts.password:
        raise ValueError(f"{field_label} must not contain a user name or password.")
    if "<" in text or ">" in text:
        raise ValueError(
            f"{field_label} still holds a placeholder in <angle brackets>: put your resource's name there."
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{field_label} has a port that is not a number from 1 to 65535 after the ':'.")
    labels = parts.hostname.rstrip(".").split(".")
    if ":" not in parts.hostname and (len(parts.hostname) > 253 or max(map(len, labels)) > 63):
        raise ValueError(
            f"{field_label} has a host name too long to be one (at most 253 characters, 63 between dots): "
            "copy the endpoint again from the portal."
        )
    if not _HOST.fullmatch(parts.hostname):
        raise ValueError(
            f"{field_label} has a character that cannot be in a host name (a space, or a dash or dot copied from a "
            "document): type the host name again."
        )
    if (
        ":" not in parts.hostname
        and not _is_ip(parts.hostname)
        and any(not label or label.startswith("-") or label.endswith("-") for label in labels)
    ):
        # No DNS server could find it: say so now rather than "could not be found" after a lookup.
        raise ValueError(
            f"{field_label} has a host name that cannot be one (an empty part between two dots, or a part that "
            "starts or ends with '-'): copy the endpoint again from the portal."
        )
    return text.rstrip("/")


class SavedKey(SecretStr):
    """Stands for "keep the saved key" in an Edit (:data:`KEEP_SAVED_KEY`).

    Only the service holds keys: :meth:`~ai_admin_widgets.AISettings.save` and ``test`` put
    the saved key of the same slot in its place, and only when it may go to the same host
    (and port) it was entered for; otherwise they raise :class:`SavedKeyUnavailable`.
    """


#: Pass as ``api_key`` to keep the key saved for that slot (the panel does, for an empty API Key on Edit).
KEEP_SAVED_KEY = SavedKey("")


def _check_api_key(value: Any, field_label: str) -> SecretStr:
    """Strip whitespace around a key; reject an empty key, one with whitespace inside, or one with a non-ASCII or invisible character."""
    if isinstance(value, SavedKey):
        return value
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise ValueError(f"{field_label} must be text.")
    text = value.strip()
    if not text:
        raise ValueError(f"{field_label} is empty: paste the key.")
    if len(text) < 8:
        raise ValueError(
            f"{field_label} is too short to be a key (keys are dozens of characters): paste the whole key."
        )
    if any(character.isspace() for character in text):
        raise ValueError(f"{field_label} has a space or line break inside it: paste the key again as one piece.")
    if not (text.isascii() and text.isprintable()):
        # An HTTP header cannot carry it: httpx would raise an error whose repr holds the key.
        raise ValueError(
            f"{field_label} has a character that API keys never contain (an invisible or non-English "
            "character, often picked up when copying from a web page or a chat): paste the key again from the portal."
        )
    return SecretStr(text)


def key_hint(key: SecretStr) -> str:
    """The last 4 characters of a key, as ``"…abcd"``; ``"…"`` for a key shorter than 12 characters.

    Args:
        key: the API key.
    Returns:
        A hint safe to store and show; it never holds more than 4 characters of the key.
    """
    text = key.get_secret_value()
    return "…" + text[-4:] if len(text) >= 12 else "…"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)
    _notices: tuple[Notice, ...] = PrivateAttr(default=())

    @property
    def notices(self) -> tuple[Notice, ...]:
        """What was changed in the input to make it valid, and what to check (never a key)."""
        return self._notices


def _normalize_key_in(data: dict[str, Any], provider: str) -> list[Notice]:
    """Tidy ``data["api_key"]`` in place; the notices say what changed and whether it looks like the other provider's."""
    if data.get("api_key") is None or isinstance(data["api_key"], SavedKey):
        return []
    data["api_key"], notices = normalize_api_key(data["api_key"])
    if isinstance(data["api_key"], SecretStr):
        notices += provider_hint(data["api_key"].get_secret_value(), provider)
    return notices


def _built(handler: Any, data: Any, notices: list[Notice]) -> Any:
    """Run pydantic's validation of ``data`` and attach ``notices`` to the model it makes."""
    model = handler(data)
    if notices:
        model._notices = tuple(notices)
    return model


class OpenAIIntegration(_Model):
    """Credentials for OpenAI directly (api.openai.com, or an OpenAI-compatible base URL).

    Args:
        api_key: the secret key from platform.openai.com (``str`` or ``SecretStr``).
        base_url: the API's base URL; https, or http for a loopback host.
        language_model: the model id the language-model check asks for (default ``gpt-4o``).
        embeddings_model: the model id the embeddings check asks for.
        organization: optional organization id, sent as ``OpenAI-Organization``.
        project: optional project id, sent as ``OpenAI-Project``.
    Raises:
        pydantic.ValidationError: a field breaks its rule; the message names the field
            and never repeats the input.
    """

    provider: Literal[Provider.OPENAI] = Provider.OPENAI
    api_key: SecretStr = Field(title="API Key", description="The secret key from platform.openai.com (API keys page).")
    base_url: str = Field(
        default=DEFAULT_OPENAI_BASE_URL,
        title="Base URL",
        description="OpenAI's API address; change it only for an OpenAI-compatible proxy.",
    )
    language_model: str = Field(
        default=DEFAULT_LANGUAGE_MODEL,
        title="Language model",
        description="The model id used for chat (GPT-4 Turbo or later).",
        min_length=1,
    )
    embeddings_model: str = Field(
        default=DEFAULT_EMBEDDINGS_MODEL,
        title="Embeddings model",
        description="The model id used for embeddings.",
        min_length=1,
    )
    organization: str | None = Field(
        default=None,
        title="Organization ID",
        description="The org-… id from OpenAI's settings.",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
    )
    project: str | None = Field(
        default=None,
        title="Project ID",
        description="The proj_… id from OpenAI's settings.",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _normalize(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        data = dict(data)
        _refuse_key_in_url(data, "base_url", "Base URL")
        notices: list[Notice] = []
        notices += _normalize_key_in(data, "openai")
        base_url = data.get("base_url")
        if isinstance(base_url, str):
            try:
                parts = urlsplit(base_url.strip())
            except ValueError:  # the field validator says it is not a web address
                parts = urlsplit("")
            host = (parts.hostname or "").lower()
            path = parts.path.rstrip("/")
            operation = re.search(r"/(chat/completions|completions|embeddings|responses|models(/[^/]*)?)$", path)
            if parts.scheme and host and operation:
                path = path[: operation.start()]
                notices.append(
                    Notice(
                        field="base_url",
                        message=f"Base URL ended in /{operation.group(1)}, which the tool adds itself; it was removed.",
                    )
                )
            if parts.scheme and host and (parts.query or parts.fragment):
                notices.append(
                    Notice(field="base_url", message="Base URL had a ?query or #fragment after it, which was removed.")
                )
            if host == "api.openai.com" and path in ("", "/"):
                path = "/v1"
                notices.append(Notice(field="base_url", message="Base URL had no /v1 at its end; it was added."))
            if parts.scheme and host:
                data["base_url"] = f"{parts.scheme}://{parts.netloc}{path}"
            if host.endswith(AZURE_HOST_SUFFIXES):
                notices.append(
                    Notice(
                        field="base_url",
                        level="warning",
                        message="Base URL is an Azure OpenAI endpoint: choose the Azure OpenAI provider, and enter it as the Endpoint URL.",
                    )
                )
        return _built(handler, data, notices)

    @field_validator("api_key", mode="before")
    @classmethod
    def _api_key(cls, value: Any) -> SecretStr:
        return _check_api_key(value, "API Key")

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url(cls, value: Any) -> str:
        return _check_endpoint(value, "Base URL")

    @field_validator("language_model", "embeddings_model", mode="before")
    @classmethod
    def _model_id(cls, value: Any) -> Any:
        # A key pasted here would be sent in the request's URL and repeated in the check's message.
        if isinstance(value, str) and looks_like_key(value.strip()):
            raise ValueError(
                "This looks like an API key, not a model id: paste the key under API Key, and type a model id such as gpt-4o here."
            )
        if isinstance(value, str) and not _MODEL_ID.fullmatch(value.strip()):
            raise ValueError(
                "A model id has only letters, digits, '.', '_', '-' and ':' (such as gpt-4o or text-embedding-3-small)."
            )
        return value

    @field_validator("organization", "project", mode="before")
    @classmethod
    def _organization_or_project(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            return None if isinstance(value, str) else value
        text = value.strip()
        label = "Organization ID" if info.field_name == "organization" else "Project ID"
        if looks_like_key(text):
            raise ValueError(
                f"{label} looks like an API key: paste the key under API Key, and leave {label} empty or type its id."
            )
        if info.field_name == "organization" and text.startswith("proj_"):
            raise ValueError(
                "Organization ID holds a Project ID (proj_…): move it to Project ID; organization ids start with org-."
            )
        if info.field_name == "project" and text.startswith("org-"):
            raise ValueError(
                "Project ID holds an Organization ID (org-…): move it to Organization ID; project ids start with proj_."
            )
        return text

    def secrets(self) -> dict[str, SecretStr]:
        """The keys by slot name, ``{"api_key": SecretStr}``, for the keyring."""
        return {"api_key": self.api_key}

    def public_fields(self) -> dict[str, Any]:
        """Every field but the key, as JSON-ready values, for the settings record."""
        return self.model_dump(mode="json", exclude={"api_key"})


#: Microsoft Entra ID's sign-in address in Azure's public cloud (national clouds have their own).
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
#: The sign-in addresses of Azure's clouds (Azure "National clouds": public, US Government, operated by 21Vianet).
KNOWN_AUTHORITY_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TENANT_DOMAIN = re.compile(r"(?=.{4,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
#: How each way of signing in with Microsoft Entra ID is called in the form.
ENTRA_METHOD_LABELS = {
    "service_principal": "Service principal (app registration with a client secret)",
    "managed_identity": "Managed identity of the machine the calls are made from",
}
#: How each authentication of an Azure deployment is called in the form and the status.
AUTHENTICATION_LABELS = {"api_key": "API key", "entra_id": "Microsoft Entra ID (keyless)"}


class EntraID(_Model):
    """Keyless sign-in to Azure OpenAI with Microsoft Entra ID, for one deployment (``AzureDeployment(entra_id=...)``).

    Two ways to sign in (source: azure-identity, "Credential types"; Azure OpenAI "Configure
    keyless access with Microsoft Entra ID"):

    * ``service_principal``: an app registration's Tenant ID, Client ID and a client secret
      (``ClientSecretCredential``). The secret is kept like an API key: in keyring only, a hint
      of its last 4 characters shown, never logged.
    * ``managed_identity``: the identity of the machine the calls are made from (on a hub, the
      AI gateway's): a system-assigned managed identity, or a user-assigned one given by its
      Client ID (``ManagedIdentityCredential``); where ``AZURE_FEDERATED_TOKEN_FILE``,
      ``AZURE_TENANT_ID`` and ``AZURE_CLIENT_ID`` are set (AKS workload identity), that
      federated identity (``WorkloadIdentityCredential``).

    Either way the identity needs the "Cognitive Services OpenAI User" role on the resource.
    Build one with ``EntraID(tenant_id=..., client_id=..., client_secret=...)`` or
    :meth:`machine_identity`.

    Raises:
        pydantic.ValidationError: a field breaks its rule; the message names it, never repeating the input.
    """

    method: Literal["service_principal", "managed_identity"] = Field(
        default="service_principal",
        title="Sign in as",
        description="A service principal (an app registration with a client secret), or the managed identity "
        "of the machine the calls are made from (on a hub, the AI gateway's machine).",
    )
    tenant_id: str | None = Field(
        default=None,
        title="Tenant ID",
        description="The Directory (tenant) ID from the app registration's Overview page (Microsoft Entra ID > "
        "App registrations): a GUID, or the tenant's domain such as contoso.onmicrosoft.com.",
    )
    client_id: str | None = Field(
        default=None,
        title="Client ID",
        description="The Application (client) ID from the app registration's Overview page (a GUID). For a "
        "managed identity: the Client ID of a user-assigned identity, or empty for the system-assigned one.",
    )
    client_secret: SecretStr | None = Field(
        default=None,
        title="Client secret",
        description="The Value (not the Secret ID) of a client secret from the app registration's "
        "Certificates & secrets page.",
    )
    authority_host: str = Field(
        default=DEFAULT_AUTHORITY_HOST,
        title="Authority host",
        description="Microsoft Entra ID's sign-in address; change it only for a national cloud "
        "(https://login.microsoftonline.us for Azure Government, https://login.chinacloudapi.cn for Azure "
        "operated by 21Vianet).",
    )

    @classmethod
    def machine_identity(cls, client_id: str | None = None) -> EntraID:
        """Sign in as the machine the calls are made from: its system-assigned managed identity, or the
        user-assigned one whose Client ID is ``client_id`` (workload identity where its variables are set)."""
        return cls(method="managed_identity", client_id=client_id)

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _tenant_id(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("Tenant ID must be text.")
        text = value.strip()
        if looks_like_key(text):
            raise ValueError(
                "Tenant ID looks like a key or secret: paste the client secret under Client secret, and here the "
                "Directory (tenant) ID."
            )
        if not (_GUID.fullmatch(text) or _TENANT_DOMAIN.fullmatch(text)):
            raise ValueError(
                "Tenant ID must be the Directory (tenant) ID, a GUID such as 00000000-1111-2222-3333-444444444444, or "
                "the tenant's domain such as contoso.onmicrosoft.com (the app registration's Overview page shows both)."
            )
        return text.lower()

    @field_validator("client_id", mode="before")
    @classmethod
    def _client_id(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("Client ID must be text.")
        text = value.strip()
        if not _GUID.fullmatch(text):
            what = "a client secret" if looks_like_key(text) or len(text) > 36 else "not a client ID"
            raise ValueError(
                f"Client ID must be the Application (client) ID, a GUID such as 00000000-1111-2222-3333-444444444444 "
                f"(the app registration's Overview page); this is {what}, so it was not kept."
            )
        return text.lower()

    @field_validator("client_secret", mode="before")
    @classmethod
    def _client_secret(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return _check_api_key(value, "Client secret")

    @field_validator("authority_host", mode="before")
    @classmethod
    def _authority_host(cls, value: Any) -> str:
        if value is None:
            return DEFAULT_AUTHORITY_HOST
        text = _check_endpoint(value, "Authority host")
        parts = urlsplit(text)
        if parts.path.strip("/") or parts.query:
            raise ValueError(
                "Authority host is only the sign-in address, such as https://login.microsoftonline.com, "
                "without a tenant or a path after it."
            )
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not (host in KNOWN_AUTHORITY_HOSTS or is_loopback(host)):
            # the client secret is sent there: only Microsoft's sign-in services (and a sandbox on this machine)
            raise ValueError(
                "Authority host must be Microsoft Entra ID's sign-in address: https://login.microsoftonline.com, or "
                "for a national cloud https://login.microsoftonline.us or https://login.chinacloudapi.cn."
            )
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _complete(self) -> EntraID:
        if self.method == "service_principal":
            for name, title, where in (
                ("tenant_id", "Tenant ID", "copy the Directory (tenant) ID from the app registration's Overview page"),
                (
                    "client_id",
                    "Client ID",
                    "copy the Application (client) ID from the app registration's Overview page",
                ),
                (
                    "client_secret",
                    "Client secret",
                    "paste the Value of a client secret from the app registration's Certificates & secrets page",
                ),
            ):
                if getattr(self, name) is None:
                    raise FieldProblem(name, f"{title} is empty: {where}.")
        else:
            if self.client_secret is not None:
                raise FieldProblem(
                    "client_secret",
                    "A managed identity signs in without a client secret: leave Client secret empty, or choose a "
                    "service principal.",
                )
            if self.tenant_id is not None:
                raise FieldProblem(
                    "tenant_id",
                    "A managed identity belongs to the machine's own tenant: leave Tenant ID empty, or choose a "
                    "service principal.",
                )
        return self

    def described(self) -> str:
        """The sign-in in words (:func:`entra_words`)."""
        return entra_words(self.method, self.tenant_id, self.client_id)


def entra_words(method: str, tenant_id: str | None, client_id: str | None) -> str:
    """A Microsoft Entra ID sign-in in words, e.g. ``"Microsoft Entra ID, service principal <client ID> in tenant
    contoso.onmicrosoft.com"`` or ``"Microsoft Entra ID, managed identity (system-assigned)"``; never a secret."""
    if method == "managed_identity":
        which = f"user-assigned, client ID {client_id}" if client_id else "system-assigned"
        return f"Microsoft Entra ID, managed identity ({which})"
    return f"Microsoft Entra ID, service principal {client_id} in tenant {tenant_id}"


class AzureDeployment(_Model):
    """One Azure OpenAI model deployment: where it is, its name, and how the calls authenticate.

    Args:
        endpoint_url: the resource's endpoint, e.g. ``https://<resource>.openai.azure.com``
            (Azure portal: the resource's "Keys and Endpoint" page).
        deployment_id: the deployment's name (2 to 64 letters, digits, ``.``, ``_``, ``-``),
            as listed under Deployments in Microsoft Foundry; not the model's name.
        api_key: KEY 1 or KEY 2 from "Keys and Endpoint" (``str`` or ``SecretStr``), sent as ``api-key``.
        entra_id: instead of a key, sign in with Microsoft Entra ID (:class:`EntraID`); the calls then carry
            ``Authorization: Bearer <token>``. Exactly one of ``api_key`` and ``entra_id`` is given.
    Raises:
        pydantic.ValidationError: a field breaks its rule, or neither or both ways to authenticate are given.
    """

    endpoint_url: str = Field(
        title="Endpoint URL",
        description="The resource's endpoint, e.g. https://<resource>.openai.azure.com (Keys and Endpoint page).",
    )
    deployment_id: str = Field(
        title="Deployment ID",
        description="The deployment's name as listed under Deployments, not the model's name.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        title="API Key",
        description="KEY 1 or KEY 2 from the resource's Keys and Endpoint page (Authentication: API key).",
    )
    entra_id: EntraID | None = Field(
        default=None,
        title="Microsoft Entra ID",
        description="Keyless sign-in (Authentication: Microsoft Entra ID), for resources whose key authentication "
        "is turned off: a service principal, or the managed identity of the machine the calls are made from. "
        "The identity needs the Cognitive Services OpenAI User role on the resource.",
    )

    @property
    def authentication(self) -> Literal["api_key", "entra_id"]:
        """``"entra_id"`` when the deployment signs in with Microsoft Entra ID, else ``"api_key"``."""
        return "entra_id" if self.entra_id is not None else "api_key"

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> AzureDeployment:
        if self.api_key is None and self.entra_id is None:
            raise FieldProblem(
                "api_key",
                "API Key is empty: paste the key, or choose Microsoft Entra ID (keyless) under Authentication.",
            )
        if self.api_key is not None and self.entra_id is not None:
            raise FieldProblem(
                "api_key",
                "Both an API Key and Microsoft Entra ID are given: choose one under Authentication (leave API Key "
                "empty for Microsoft Entra ID).",
            )
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _normalize(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        data = dict(data)
        _refuse_key_in_url(data, "endpoint_url", "Endpoint URL")
        notices: list[Notice] = []
        endpoint = data.get("endpoint_url")
        if isinstance(endpoint, str):
            target = split_azure_endpoint(endpoint)
            if target.problem:
                raise FieldProblem("endpoint_url", target.problem)
            data["endpoint_url"] = target.endpoint
            notices += target.notices
            typed = data.get("deployment_id")
            typed = typed.strip() if isinstance(typed, str) else typed
            if target.deployment_id:
                if not typed:
                    data["deployment_id"] = target.deployment_id
                    notices.append(
                        Notice(
                            field="deployment_id",
                            message=f"Deployment ID was taken from the target URI: {target.deployment_id}.",
                        )
                    )
                elif typed != target.deployment_id:
                    shown = "the one typed" if looks_like_key(str(typed)) else f"'{typed}'"
                    raise FieldProblem(
                        "deployment_id",
                        f"Deployment ID {shown} differs from the deployment '{target.deployment_id}' named in the Endpoint URL: "
                        "keep the one listed under Deployments, and paste only the endpoint.",
                    )
            try:
                host = urlsplit(target.endpoint).hostname
            except ValueError:  # the field validator says it is not a web address
                host = None
            if host:
                notices += azure_host_notices(host)
        if data.get("entra_id") is not None and isinstance(data.get("api_key"), str) and not data["api_key"].strip():
            del data["api_key"]  # the form's empty API Key beside Microsoft Entra ID
        notices += _normalize_key_in(data, "azure_openai")
        return _built(handler, data, notices)

    @field_validator("endpoint_url", mode="before")
    @classmethod
    def _endpoint_url(cls, value: Any) -> str:
        return _check_endpoint(value, "Endpoint URL")

    @field_validator("deployment_id", mode="before")
    @classmethod
    def _deployment_id(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("Deployment ID must be text.")
        text = value.strip()
        if not text:
            raise ValueError("Deployment ID is empty: type the deployment's name from the Deployments page.")
        if looks_like_key(text):
            raise ValueError(
                "Deployment ID looks like an API key, not a deployment name: paste the key under API Key, "
                "and type the deployment's name from the Deployments page here."
            )
        if not _DEPLOYMENT_ID.fullmatch(text):
            raise ValueError(
                "Deployment ID must be 2 to 64 characters of letters, digits, '.', '_' or '-': "
                "copy the deployment's name from the Deployments page."
            )
        return text

    @field_validator("api_key", mode="before")
    @classmethod
    def _api_key(cls, value: Any) -> SecretStr | None:
        return None if value is None else _check_api_key(value, "API Key")


class AzureOpenAIIntegration(_Model):
    """Credentials for Azure OpenAI: a language-model and an embeddings-model deployment.

    Args:
        language_model: the deployment of GPT-4 Turbo or later.
        embeddings_model: the deployment of text-embedding-3-small.
        api_version: the ``api-version`` query parameter of every request
            (default ``2024-10-21``; source: Azure OpenAI REST API reference).
    Raises:
        pydantic.ValidationError: a field breaks its rule.
    """

    provider: Literal[Provider.AZURE_OPENAI] = Provider.AZURE_OPENAI
    language_model: AzureDeployment = Field(title="Language model", description="A deployment of GPT-4 Turbo or later.")
    embeddings_model: AzureDeployment = Field(
        title="Embeddings model", description="A deployment of text-embedding-3-small."
    )
    api_version: str = Field(
        default=DEFAULT_AZURE_API_VERSION,
        title="API version",
        description="The Azure OpenAI api-version, such as 2024-10-21 (2024-12-01-preview or later for reasoning "
        "models), or v1 for Azure's v1 API: calls go to {endpoint}/openai/v1/ with no dated api-version, the base "
        "path Microsoft now recommends.",
        pattern=r"^(\d{4}-\d{2}-\d{2}(-preview)?|v1)$",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _normalize(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        data = dict(data)
        notices: list[Notice] = []
        typed_version = data.get("api_version")
        if "api_version" in data:
            try:
                data["api_version"], changes = normalize_api_version(typed_version, default=DEFAULT_AZURE_API_VERSION)
                notices += changes
            except FieldProblem:
                pass  # the field validator reports it, beside the other fields' errors
        for role in ROLES:
            deployment = data.get(f"{role}_model")
            if isinstance(deployment, dict):
                _refuse_key_in_url(deployment, "endpoint_url", "Endpoint URL", f"{role}_model.endpoint_url")
            endpoint = deployment.get("endpoint_url") if isinstance(deployment, dict) else None
            if not isinstance(endpoint, str):
                continue
            target = split_azure_endpoint(endpoint)
            if target.role and target.role != role:
                other = ROLE_LABELS[target.role]
                raise FieldProblem(
                    f"{role}_model.endpoint_url",
                    f"Endpoint URL is the target URI of the {other.lower()}'s deployment: paste it under {other}, "
                    f"or paste the {ROLE_LABELS[role].lower()}'s own endpoint here.",
                )
            if target.api_version:
                try:
                    found, _ = normalize_api_version(target.api_version, default=DEFAULT_AZURE_API_VERSION)
                except FieldProblem as problem:
                    notices.append(
                        Notice(
                            field="api_version",
                            level="warning",
                            message=f"The target URI's api-version could not be used ({problem}); "
                            f"the API version {data.get('api_version', DEFAULT_AZURE_API_VERSION)} is used instead.",
                        )
                    )
                    continue
                current = data.get("api_version", DEFAULT_AZURE_API_VERSION)
                if current == found:
                    continue
                if current == DEFAULT_AZURE_API_VERSION:
                    data["api_version"] = found
                    taken = (
                        "API version v1 (Azure's v1 API) was taken from the Endpoint URL."
                        if found == AZURE_V1_API
                        else f"API version {found} was taken from the target URI."
                    )
                    notices.append(Notice(field="api_version", message=taken))
                elif found == AZURE_V1_API:
                    raise FieldProblem(
                        "api_version",
                        f"API version {current} is a dated api-version, but the {ROLE_LABELS[role].lower()}'s Endpoint URL "
                        "holds Azure's v1 API path (/openai/v1): choose v1 as the API version, or paste only the endpoint.",
                    )
                else:
                    raise FieldProblem(
                        "api_version",
                        f"API version {current} differs from api-version {found} in the {ROLE_LABELS[role].lower()}'s target URI: keep one.",
                    )
        model = handler(data)
        for role in ROLES:
            notices += [notice.under(f"{role}_model.") for notice in model.deployment(role).notices]
        if notices:
            model._notices = tuple(notices)
        return model

    @field_validator("api_version", mode="before")
    @classmethod
    def _api_version(cls, value: Any) -> Any:
        try:
            return normalize_api_version(value, default=DEFAULT_AZURE_API_VERSION)[0]
        except FieldProblem as problem:
            raise ValueError(str(problem)) from None

    @classmethod
    def shared(
        cls,
        *,
        endpoint_url: str,
        api_key: str | SecretStr | None = None,
        language_deployment_id: str,
        embeddings_deployment_id: str,
        api_version: str | None = None,
        entra_id: EntraID | None = None,
    ) -> AzureOpenAIIntegration:
        """Both deployments on one resource: "Use the same endpoint URL and API key for both models".

        Keyless: give ``entra_id=aiw.EntraID(tenant_id=..., client_id=..., client_secret=...)`` or
        ``entra_id=aiw.EntraID.machine_identity()`` instead of ``api_key``; both models sign in with it.

        A whole target URI pasted as ``endpoint_url`` is taken apart: its deployment goes to
        the model its operation names (chat/completions: language; embeddings: embeddings)
        and its api-version is used unless another is given.

        Args:
            endpoint_url: the resource's endpoint URL.
            api_key: the resource's key (``str`` or ``SecretStr``); None with ``entra_id``.
            language_deployment_id: the language model's deployment name.
            embeddings_deployment_id: the embeddings model's deployment name.
            api_version: the Azure OpenAI api-version; default ``2024-10-21``.
            entra_id: sign in with Microsoft Entra ID instead of a key (:class:`EntraID`).
        Returns:
            An :class:`AzureOpenAIIntegration` whose two deployments share endpoint and key (or sign-in).
        Raises:
            pydantic.ValidationError: a field breaks its rule.
        """
        endpoints = {"language": endpoint_url, "embeddings": endpoint_url}
        if isinstance(endpoint_url, str):
            target = split_azure_endpoint(endpoint_url)
            # Only the model the target URI names sees the whole URI; the other gets the endpoint.
            named = target.role or "language"
            for role in ROLES:
                if role != named or not target.deployment_id:
                    endpoints[role] = target.endpoint if target.deployment_id else endpoint_url
        sign_in: dict[str, Any] = {"api_key": api_key} if api_key is not None or entra_id is None else {}
        if entra_id is not None:
            sign_in["entra_id"] = entra_id
        data: dict[str, Any] = {
            "language_model": {
                "endpoint_url": endpoints["language"],
                "deployment_id": language_deployment_id,
                **sign_in,
            },
            "embeddings_model": {
                "endpoint_url": endpoints["embeddings"],
                "deployment_id": embeddings_deployment_id,
                **sign_in,
            },
        }
        if api_version is not None:
            data["api_version"] = api_version
        return cls(**data)

    @property
    def uses_shared_endpoint(self) -> bool:
        """True when both deployments use the same endpoint URL and the same key (or the same Entra ID sign-in)."""
        return (
            self.language_model.endpoint_url == self.embeddings_model.endpoint_url
            and self.language_model.api_key == self.embeddings_model.api_key
            and self.language_model.entra_id == self.embeddings_model.entra_id
        )

    def deployment(self, role: Role) -> AzureDeployment:
        """The deployment that serves ``role`` (``"language"`` or ``"embeddings"``)."""
        return self.language_model if role == "language" else self.embeddings_model

    def secrets(self) -> dict[str, SecretStr]:
        """The keys and client secrets by slot name (``"language_model.api_key"``,
        ``"embeddings_model.entra_id.client_secret"``, ...); a managed identity has none."""
        found: dict[str, SecretStr] = {}
        for role in ROLES:
            deployment = self.deployment(role)
            if deployment.api_key is not None:
                found[f"{role}_model.api_key"] = deployment.api_key
            if deployment.entra_id is not None and deployment.entra_id.client_secret is not None:
                found[f"{role}_model.entra_id.client_secret"] = deployment.entra_id.client_secret
        return found

    def public_fields(self) -> dict[str, Any]:
        """Every field but the keys and client secrets, as JSON-ready values, for the settings record."""
        hidden: dict[str, Any] = {"api_key": True, "entra_id": {"client_secret"}}
        fields = self.model_dump(mode="json", exclude={"language_model": hidden, "embeddings_model": hidden})
        for role in ROLES:
            if fields[f"{role}_model"].get("entra_id") is None:
                fields[f"{role}_model"].pop("entra_id", None)
            fields[f"{role}_model"].pop("api_key", None)
        return fields


#: Either kind of integration; ``provider`` tells them apart.
Integration = Annotated[OpenAIIntegration | AzureOpenAIIntegration, Field(discriminator="provider")]
_INTEGRATION = TypeAdapter(Integration)


def parse_integration(
    public_fields: dict[str, Any], secrets: dict[str, SecretStr]
) -> OpenAIIntegration | AzureOpenAIIntegration:
    """Rebuild an integration from its record fields and its keys.

    Args:
        public_fields: what ``public_fields()`` returned, including ``provider``.
        secrets: the keys by slot name, as ``secrets()`` returned them.
    Returns:
        The validated integration.
    Raises:
        pydantic.ValidationError: the parts do not make a valid integration.
    """
    data: dict[str, Any] = {
        key: dict(value) if isinstance(value, dict) else value for key, value in public_fields.items()
    }
    for slot, key in secrets.items():
        target = data
        *path, leaf = slot.split(".")
        for part in path:
            target = target.setdefault(part, {})
        target[leaf] = key
    return _INTEGRATION.validate_python(data)


#: What to say when a field does not match its pattern, by field name.
_PATTERN_MESSAGES = {
    "api_version": "API version must look like 2024-10-21 or 2024-10-01-preview.",
    "organization": "Organization ID may hold only letters, digits, '_' and '-', such as org-AbC123.",
    "project": "Project ID may hold only letters, digits, '_' and '-', such as proj_AbC123.",
}


def field_errors(error: ValidationError) -> dict[str, str]:
    """The messages of a validation error by dotted field path, in the admin's words.

    Args:
        error: a pydantic validation error from one of this module's models.
    Returns:
        ``{"language_model.endpoint_url": "Endpoint URL uses http, ...", ...}``; the input
        is never included (``include_input=False``).
    Raises:
        TypeError: ``error`` is not a pydantic ``ValidationError``.
    """
    if not isinstance(error, ValidationError):
        raise TypeError(f"field_errors() takes a pydantic ValidationError, not {type(error).__name__}.")
    messages: dict[str, str] = {}
    for item in error.errors(include_input=False, include_url=False, include_context=True):
        parts = [str(part) for part in item["loc"] if not str(part).startswith("function-")]
        problem = (item.get("ctx") or {}).get("error")
        if isinstance(problem, FieldProblem):
            parts.append(problem.field)
        path = ".".join(parts)
        text = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            text = "This field is required."
        elif item["type"] == "string_pattern_mismatch":
            text = _PATTERN_MESSAGES.get(path.rsplit(".", 1)[-1], text)
        messages.setdefault(path, text)
    return messages


# --------------------------------------------------------------------------- #
# Results
# --------------------------------------------------------------------------- #


class ModelCheck(_Model):
    """The outcome of authenticating one model.

    Attributes:
        role: ``"language"`` or ``"embeddings"``.
        ok: True when the model answered with these credentials.
        code: the stable outcome code.
        message: what is wrong and what to do (two sentences), or what answered; never a key.
        model: the model name the vendor answered with (e.g. ``"gpt-4o-2024-08-06"``), if any.
        latency_ms: the check's wall time in milliseconds.
        field: the dotted path of the field the failure points at (e.g.
            ``"language_model.deployment_id"``), or None.
        request_id: the vendor's request id (``x-request-id`` / ``apim-request-id``), if any.
        warning: something to check even though the check passed (e.g. which GPT-4 version
            a deployment answering "gpt-4" runs), or None.
    """

    role: Role
    ok: bool
    code: FailureCode
    message: str
    model: str | None = None
    latency_ms: float = 0.0
    field: str | None = None
    request_id: str | None = None
    warning: str | None = None


class VerificationReport(_Model):
    """What authenticating an integration found: one :class:`ModelCheck` per role.

    Attributes:
        provider: which provider was checked.
        checks: the language-model check, then the embeddings-model check.
    """

    provider: Provider
    checks: tuple[ModelCheck, ...]

    @property
    def ok(self) -> bool:
        """True when every model check passed."""
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[ModelCheck, ...]:
        """The checks that did not pass."""
        return tuple(check for check in self.checks if not check.ok)

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings of the checks that passed with something to check."""
        return tuple(check.warning for check in self.checks if check.warning)

    def check(self, role: Role) -> ModelCheck:
        """The check of ``role``. Raises ``KeyError`` when the report has none."""
        for check in self.checks:
            if check.role == role:
                return check
        raise KeyError(role)

    def summary(self) -> str:
        """One line per model: ``"Language model: ok (gpt-4o)"`` or its failure message."""
        lines = []
        for check in self.checks:
            if check.ok:
                lines.append(f"{ROLE_LABELS[check.role]}: ok ({check.model or 'model answered'})")
                if check.warning:
                    lines.append(f"  Warning: {check.warning}")
            else:
                lines.append(f"{check.message} [{check.code.value}]")
        return "\n".join(lines)

    def __str__(self) -> str:
        verdict = "authenticated" if self.ok else "authentication failed"
        return f"{self.provider.label} {verdict}\n{self.summary()}"


class ModelSummary(_Model):
    """What the status shows of one saved model; no secret.

    Attributes:
        role: ``"language"`` or ``"embeddings"``.
        endpoint_url: the Azure endpoint, or OpenAI's base URL.
        deployment_id: the Azure deployment name; None for OpenAI.
        model: the model that answered when the credentials were last authenticated.
        key_hint: the key's (or client secret's) last 4 characters, as ``"…abcd"``; empty for a managed identity.
        authentication: how the calls authenticate, in words: ``"API key …abcd"``, or the Microsoft Entra ID
            sign-in (``"Microsoft Entra ID, service principal <client ID> in tenant <tenant>, client secret …abcd"``,
            ``"Microsoft Entra ID, managed identity (system-assigned)"``).
    """

    role: Role
    endpoint_url: str
    deployment_id: str | None = None
    model: str | None = None
    key_hint: str
    authentication: str = ""


def resource_of(endpoint_url: str) -> str:
    """The resource an endpoint names: ``myresource`` of ``https://myresource.openai.azure.com``, else its host[:port]."""
    try:
        parts = urlsplit(endpoint_url)
        host = (parts.hostname or "").lower()
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return ""
    for suffix in AZURE_HOST_SUFFIXES:
        if host.endswith(suffix) and host != suffix.lstrip("."):
            return host[: -len(suffix)]
    return netloc


class IntegrationStatus(_Model):
    """The state of the organization's OpenAI integration, safe to show anyone.

    Attributes:
        configured: True when an integration is saved (AI functionality enabled).
        provider: the saved integration's provider, or None.
        models: one summary per role; empty when not configured.
        revision: the settings record's revision number (0 before the first save).
        updated_by / updated_at: who saved or removed last, and when (UTC).
        last_authenticated_at / last_authentication_ok: the most recent authentication of
            the saved credentials (at Save, or by ``test()``), in UTC.
        last_authentication_codes: the failure codes (:class:`FailureCode` values) of that
            authentication when it failed, e.g. ``("invalid_api_key",)``; empty when it passed
            or when the saved keys could not be read.
        warnings: what to check, from the last save's authentication (e.g. which GPT-4
            version a deployment answering "gpt-4" runs).
        keyring_backend: the name of the keyring backend that holds the keys.
        checked_at: when this status was read (UTC); ``last_authentication_summary`` and
            ``stale`` are relative to it. None means "now, whenever asked".
        stale_after_seconds: how old, in seconds, the last authentication may be before the
            integration is stale (``AISettings(stale_after=...)``; default 7 days).

    Computed (also in ``model_dump()`` and the JSON of ``ai-admin status --json``):
        stale: True when configured and the last authentication is older than
            ``stale_after_seconds``, or there is none on record.
        health: a :class:`~ai_admin_widgets.health.Health`: ``not_configured``,
            ``failing`` (the last authentication failed), ``stale``, or ``ok``.
        last_authentication_summary: e.g. ``"Last authenticated 3 hours ago: succeeded"``,
            ``"Last authenticated 2 days ago: failed (invalid_api_key)"``; None when not configured.
    """

    configured: bool
    provider: Provider | None = None
    models: tuple[ModelSummary, ...] = ()
    revision: int = 0
    updated_by: str | None = None
    updated_at: datetime | None = None
    last_authenticated_at: datetime | None = None
    last_authentication_ok: bool | None = None
    last_authentication_codes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    keyring_backend: str = ""
    checked_at: datetime | None = None
    stale_after_seconds: float = Field(default=DEFAULT_STALE_AFTER.total_seconds(), gt=0)

    @field_validator("updated_at", "last_authenticated_at", "checked_at")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        """Every time shown is labelled UTC, so it is converted to UTC (a hand-edited record may hold another offset)."""
        return None if moment is None else _as_utc(moment)

    def _now(self) -> datetime:
        return self.checked_at or datetime.now(timezone.utc)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stale(self) -> bool:
        """True when configured and the last authentication is older than ``stale_after_seconds`` (or missing)."""
        if not self.configured:
            return False
        if self.last_authenticated_at is None:
            return True
        age = self._now() - _as_utc(self.last_authenticated_at)
        return age > timedelta(seconds=self.stale_after_seconds) or age < -CLOCK_TOLERANCE

    @computed_field  # type: ignore[prop-decorator]
    @property
    def health(self) -> Health:
        """``not_configured``, ``failing`` (last authentication failed), ``stale``, or ``ok``; the first that applies."""
        if not self.configured:
            return Health.NOT_CONFIGURED
        if self.last_authentication_ok is False:
            return Health.FAILING
        return Health.STALE if self.stale else Health.OK

    @computed_field  # type: ignore[prop-decorator]
    @property
    def last_authentication_summary(self) -> str | None:
        """``"Last authenticated 3 hours ago: succeeded"`` or ``"…: failed (invalid_api_key)"``; None when not configured."""
        if not self.configured:
            return None
        if self.last_authenticated_at is None:
            return "Never authenticated"
        when = time_ago(self.last_authenticated_at, self._now())
        if self.last_authentication_ok:
            return f"Last authenticated {when}: succeeded"
        codes = f" ({', '.join(self.last_authentication_codes)})" if self.last_authentication_codes else ""
        return f"Last authenticated {when}: failed{codes}"

    def health_problem(self) -> str | None:
        """What is wrong with the integration's health, in one sentence without a remedy; None when healthy or not configured.

        Each screen adds its own remedy ("Press Test…" in the panel, "Run ai-admin test…"
        in a terminal).
        """
        if self.health is Health.FAILING:
            codes = f" ({', '.join(self.last_authentication_codes)})" if self.last_authentication_codes else ""
            return f"The last authentication of the saved credentials failed{codes}, so AI features may not work."
        if self.health is Health.STALE:
            if self.last_authenticated_at is None:
                return "The saved credentials have no authentication on record."
            if _as_utc(self.last_authenticated_at) - self._now() > CLOCK_TOLERANCE:
                return (
                    f"The last authentication is recorded in the future ({_as_utc(self.last_authenticated_at):%Y-%m-%d %H:%M} UTC), "
                    "so this server's clock or the record is wrong; check the clock."
                )
            limit = duration_text(timedelta(seconds=self.stale_after_seconds))
            return f"The saved credentials were last authenticated more than {limit} ago; a key may have changed since."
        return None

    @property
    def key_hint(self) -> str | None:
        """The language model's key hint (``"…abcd"``), or None when not configured."""
        return self.models[0].key_hint if self.models else None

    def summary(self) -> str:
        """One line for the OpenAI row, e.g. ``"Azure OpenAI · gpt-4o, text-embedding-3-small"``."""
        if not self.configured or self.provider is None:
            return "Not configured. AI functionality is disabled."
        names = ", ".join(model.model or model.deployment_id or "?" for model in self.models)
        if self.models and self.models[0].authentication.startswith("Microsoft Entra ID"):
            return f"{self.provider.label} · {names} · Microsoft Entra ID (keyless)"
        return f"{self.provider.label} · {names} · key {self.key_hint}"


def _as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC already (the store writes UTC)."""
    return moment.astimezone(timezone.utc) if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


#: How far in the future a recorded authentication may be (clocks of two servers differ a
#: little) before it counts as a clock problem, and so as stale.
CLOCK_TOLERANCE = timedelta(minutes=10)


# --------------------------------------------------------------------------- #
# Explanations: one per failure code (what is wrong, what the admin does, what an analyst is told)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Timeouts:
    """How long a check or an AI call may take, and how large an answer may be.

    Every deadline is overall: it counts every byte read (a server that trickles its answer
    ends at the deadline with ``timeout``), not only the wait for each read.

    Attributes:
        connect: seconds allowed to open a connection (default 5).
        check: seconds allowed for one whole model check, retries included (default 20).
        retry_budget: the most seconds a check waits in total for rate limits before it
            reports ``rate_limited`` (default 10).
        request: seconds allowed for one whole AI call of :mod:`~ai_admin_widgets.ai`,
            retries included, unless its ``AIClient(timeout=...)`` says otherwise (default 60).
        max_answer_bytes: the most bytes of one answer to a check (default 1 MiB; a model's
            description or a one-token answer is a few KB). A longer one is refused unread.
        max_ai_answer_bytes: the most bytes of one chat answer (default 16 MiB, far above the
            longest completion) and the allowance of an embeddings answer besides its vectors.
        max_embedding_bytes: the most bytes an embeddings answer may add per text sent
            (default 128 KiB: 3072 numbers, text-embedding-3-large's dimension, take about
            70 KB as the vendors print them, one per line). A full batch of 2048 texts may
            so take 16 MiB + 256 MiB; the default batch of 256, 48 MiB.
    """

    connect: float = 5.0
    check: float = 20.0
    retry_budget: float = 10.0
    request: float = 60.0
    max_answer_bytes: int = 1024 * 1024
    max_ai_answer_bytes: int = 16 * 1024 * 1024
    max_embedding_bytes: int = 128 * 1024


@dataclass(frozen=True)
class CheckTarget:
    """What one check talks to, for messages and field paths."""

    role: Role
    provider: Provider
    url: str
    field_prefix: str  # "" for OpenAI, "language_model." / "embeddings_model." for Azure
    deployment_id: str | None
    model: str | None
    api_version: str | None = None
    signs_in: bool = False  # the deployment signs in with Microsoft Entra ID (no API Key to blame)

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
    def entra_field(self) -> str:
        """The Microsoft Entra ID sign-in of this deployment (``"language_model.entra_id"``)."""
        return self.field_prefix + "entra_id"

    @property
    def tenant_field(self) -> str:
        return self.entra_field + ".tenant_id"

    @property
    def client_field(self) -> str:
        return self.entra_field + ".client_id"

    @property
    def secret_field(self) -> str:
        return self.entra_field + ".client_secret"

    @property
    def authority_field(self) -> str:
        return self.entra_field + ".authority_host"

    @property
    def method_field(self) -> str:
        return self.entra_field + ".method"

    @property
    def deployment_field(self) -> str:
        return self.field_prefix + "deployment_id" if self.provider is Provider.AZURE_OPENAI else self.key_field

    @property
    def wanted(self) -> str:
        return "GPT-4 Turbo or later (such as gpt-4o)" if self.role == "language" else "text-embedding-3-small"


@dataclass(frozen=True)
class Outcome:
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
    redirect_never_called: bool = False  # ... at a metadata, link-local or unspecified address (never followed)
    proxy: bool = False  # the failure happened at the proxy from HTTP(S)_PROXY
    sign_in: str | None = None  # for a Microsoft Entra ID failure: who signed in, in words (entra_words)
    sign_in_host: str | None = (
        None  # ... and the sign-in service's host (the authority host, or the machine's endpoint)
    )
    sign_in_failure: str | None = None  # ... for entra_unreachable: what failed, in words ("timed out", ...)


def _azure_or_openai(target: CheckTarget, openai: str, azure: str) -> str:
    return openai if target.provider is Provider.OPENAI else azure


#: What an analyst is told to do when an AI call fails and nothing in the table says better.
ASK_ADMIN = "Ask an admin to open AI Settings and press Test: it shows what to change."


class _Entry(NamedTuple):
    """One row of the explanations table; each text is formatted with the target (t), the outcome (o)
    and the limits in force (s)."""

    field: str  # the attribute of the target naming the field to correct, "api_version_field" / "organization_field", or "none" (no field can fix it)
    wrong: Callable[[CheckTarget, Outcome, Timeouts], str]
    admin: Callable[[CheckTarget, Outcome, Timeouts], str]
    analyst: Callable[[CheckTarget, Outcome, Timeouts], str] = lambda t, o, s: ASK_ADMIN


class Explanation(NamedTuple):
    """A failure in words: what is wrong, what an admin does, what an analyst is told, and the field to correct."""

    wrong: str
    admin_todo: str
    analyst_todo: str
    field: str | None
    code: FailureCode | None = None  # the code said (another than the one asked, for a deployment that signs in)


def _wait_text(o: Outcome) -> str:
    return f"{max(o.wait_seconds or 0, 1):.0f} seconds" if o.wait_seconds else "a minute"


#: The one table of explanations: per code, the field to blame, what is wrong, what an admin does
#: (Save's checks, Test, the CLI) and what an analyst is told (ai.chat / ai.embed).
_MESSAGES: dict[FailureCode, _Entry] = {
    FailureCode.INVALID_API_KEY: _Entry(
        "key_field",
        lambda t, o, s: f"{t.host} rejected the API Key.",
        lambda t, o, s: _azure_or_openai(
            t,
            "Create a key on the API keys page of platform.openai.com and paste it again.",
            "Copy KEY 1 from the resource's Keys and Endpoint page in the Azure portal and paste it again; check that the Endpoint URL belongs to the same resource.",
        ),
    ),
    FailureCode.MISSING_PERMISSIONS: _Entry(
        "key_field",
        lambda t, o, s: "The API Key is valid but is not allowed to use the model.",
        lambda t, o, s: _azure_or_openai(
            t,
            "If it is a restricted key, give it the Models (read) and Model capabilities (write) permissions on platform.openai.com, or use a key with All permissions.",
            "Give the identity the 'Cognitive Services OpenAI User' role on the resource, or check that key authentication and network access are allowed on the resource.",
        ),
    ),
    FailureCode.NETWORK_NOT_ALLOWED: _Entry(
        "none",
        lambda t, o, s: (
            f"{t.host} refuses calls from the network this server is on; the credentials were not the problem."
        ),
        lambda t, o, s: _azure_or_openai(
            t,
            "Add the public IP address this server's calls leave from (the AI gateway's, on a hub) to the IP allow-list of "
            "the organization or project on platform.openai.com (Settings), then Save again. A new key would not help.",
            "In the Azure portal, open the resource's Networking page and allow this server's network (its public IP "
            "address, or the virtual network or private endpoint it uses), then Save again; a change there can take a few "
            "minutes to apply. A new key would not help.",
        ),
        lambda t, o, s: "The service refuses calls from this network; ask an admin (a new key would not help).",
    ),
    FailureCode.REGION_NOT_SUPPORTED: _Entry(
        "none",
        lambda t, o, s: f"{t.host} is not offered in the country or region this server's calls come from.",
        lambda t, o, s: (
            "Run the calls from a supported region (on a hub, the AI gateway's machine is where they come from), or use "
            "Azure OpenAI in a region your organization may use. A new key would not help."
        ),
        lambda t, o, s: "The service is not offered where this server is; ask an admin.",
    ),
    FailureCode.KEY_AUTH_DISABLED: _Entry(
        "none",
        lambda t, o, s: (
            "Key authentication is turned off on this Azure OpenAI resource: it accepts Microsoft Entra ID only."
        ),
        lambda t, o, s: (
            "Switch to Microsoft Entra ID: choose it under Authentication (a service principal, or the managed "
            "identity of the machine the calls are made from) and give that identity the 'Cognitive Services OpenAI "
            "User' role on the resource (Access control (IAM)). Or ask the resource's owner to allow key "
            "authentication again (its disableLocalAuth setting). A new key would not help."
        ),
        lambda t, o, s: (
            "The resource accepts Microsoft Entra ID only; ask an admin to switch to it (a new key would not help)."
        ),
    ),
    FailureCode.ENTRA_TENANT_NOT_FOUND: _Entry(
        "tenant_field",
        lambda t, o, s: f"Microsoft Entra ID has no tenant with that Tenant ID ({o.sign_in}).",
        lambda t, o, s: (
            "Copy the Directory (tenant) ID from the app registration's Overview page (Microsoft Entra ID > App "
            "registrations), or use the tenant's domain such as contoso.onmicrosoft.com; check the Authority host "
            "for a national cloud."
        ),
    ),
    FailureCode.ENTRA_CLIENT_NOT_FOUND: _Entry(
        "client_field",
        lambda t, o, s: f"The tenant has no application with that Client ID ({o.sign_in}).",
        lambda t, o, s: (
            "Copy the Application (client) ID from the app registration's Overview page, and check that the app is "
            "registered in the tenant named by Tenant ID (not the Object ID, nor another tenant's app)."
        ),
    ),
    FailureCode.ENTRA_SECRET_INVALID: _Entry(
        "secret_field",
        lambda t, o, s: "Microsoft Entra ID rejected the client secret.",
        lambda t, o, s: (
            "Paste the secret's Value, not its Secret ID, from the app registration's Certificates & secrets page; "
            "the Value is shown only when the secret is created, so create a new secret if it was not copied then."
        ),
    ),
    FailureCode.ENTRA_SECRET_EXPIRED: _Entry(
        "secret_field",
        lambda t, o, s: "The client secret has expired.",
        lambda t, o, s: (
            "Create a new client secret on the app registration's Certificates & secrets page, paste its Value as "
            "the Client secret, and Save again."
        ),
        lambda t, o, s: "The sign-in's client secret has expired; ask an admin to renew it.",
    ),
    FailureCode.ENTRA_IDENTITY_UNAVAILABLE: _Entry(
        "method_field",
        lambda t, o, s: (
            "This machine has no managed identity to sign in with (none at all, or none with that Client ID), and "
            "no workload identity is set up."
        ),
        lambda t, o, s: (
            "Sign in as a managed identity only where the calls run on Azure with one assigned (a virtual machine, "
            "App Service, Container Apps, or AKS with workload identity; on a hub, the AI gateway's machine), or "
            "choose a service principal. A user-assigned identity needs its Client ID."
        ),
    ),
    FailureCode.ENTRA_UNREACHABLE: _Entry(
        "authority_field",
        lambda t, o, s: (
            f"Microsoft Entra ID's sign-in service at {o.sign_in_host} could not be reached"
            + (f" ({o.sign_in_failure})." if o.sign_in_failure else ".")
        ),
        lambda t, o, s: (
            f"Check that this server may reach {o.sign_in_host} (a firewall, or the proxy in HTTPS_PROXY), and, if a "
            "proxy inspects HTTPS, that SSL_CERT_FILE holds its certificate authority; check the Authority host."
        ),
    ),
    FailureCode.ENTRA_SIGN_IN_REFUSED: _Entry(
        "entra_field",
        lambda t, o, s: f"Microsoft Entra ID refused the sign-in ({o.sign_in}).",
        lambda t, o, s: (
            "Read the service's message below; its AADSTS code is explained at https://login.microsoftonline.com/error."
        ),
    ),
    FailureCode.ENTRA_TOKEN_REFUSED: _Entry(
        "none",
        lambda t, o, s: f"{t.host} refused the Microsoft Entra ID token it was sent, although the sign-in succeeded.",
        lambda t, o, s: (
            "The identity most likely belongs to another tenant than the Azure OpenAI resource: check that Tenant ID "
            "is the resource's tenant (Microsoft Entra ID's Overview page, as seen from the resource's subscription), "
            "that the app registration is in it, and that the identity has the 'Cognitive Services OpenAI User' role "
            "on the resource (Access control (IAM)); a new role assignment can take a few minutes to apply."
        ),
    ),
    FailureCode.ROLE_MISSING: _Entry(
        "none",
        lambda t, o, s: (
            "The identity signed in, but has no role on the Azure OpenAI resource that lets it call the model"
            + (f" ({o.sign_in})." if o.sign_in else ".")
        ),
        lambda t, o, s: (
            "In the Azure portal, open the resource's Access control (IAM) page and add the role assignment "
            "'Cognitive Services OpenAI User' for this identity; a new role assignment can take a few minutes "
            "(up to about 10) to apply, so Save again after that. A new key would not help."
        ),
        lambda t, o, s: (
            "The AI identity lacks the 'Cognitive Services OpenAI User' role on the resource; ask an admin (a new "
            "assignment takes a few minutes to apply)."
        ),
    ),
    FailureCode.CONTENT_REFUSED: _Entry(
        "none",
        lambda t, o, s: "The service's content filter refused the text of the request.",
        lambda t, o, s: "The credentials work; change the text, or ask the resource's owner about its content filter.",
        lambda t, o, s: "The service's content filter refused the text: rephrase it and try again.",
    ),
    FailureCode.WRONG_ORGANIZATION: _Entry(
        "organization_field",
        lambda t, o, s: "The Organization ID or Project ID does not match the API Key.",
        lambda t, o, s: (
            "Leave Organization ID and Project ID empty, or copy them from the settings of the organization and project the key was created in."
        ),
    ),
    FailureCode.MODEL_NOT_AVAILABLE: _Entry(
        "key_field",
        lambda t, o, s: f"This API Key cannot use the model '{t.model}'.",
        lambda t, o, s: (
            "Use a key from a project that has access to the model, or ask your OpenAI organization owner to allow it for the project."
        ),
    ),
    FailureCode.DEPLOYMENT_NOT_FOUND: _Entry(
        "deployment_field",
        lambda t, o, s: f"The resource at {t.host} has no deployment named '{t.deployment_id}'.",
        lambda t, o, s: (
            "Type the deployment's name as listed under Deployments in Microsoft Foundry (not the model's name); a deployment created in the last 5 minutes may not be ready yet."
        ),
    ),
    FailureCode.ENDPOINT_NOT_FOUND: _Entry(
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
    FailureCode.API_VERSION_UNSUPPORTED: _Entry(
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
    FailureCode.WRONG_MODEL_TYPE: _Entry(
        "deployment_field",
        lambda t, o, s: f"The deployment '{t.deployment_id}' serves another kind of model than {t.wanted}.",
        lambda t, o, s: f"Type the name of the deployment of {t.wanted}; the two Deployment IDs may have been swapped.",
    ),
    FailureCode.MODEL_NOT_SUPPORTED: _Entry(
        "deployment_field",
        lambda t, o, s: (
            f"The {_azure_or_openai(t, 'model', 'deployment')} answers as {o.model}, but AI features need {t.wanted}."
        ),
        lambda t, o, s: _azure_or_openai(
            t,
            f"Use {t.wanted}.",
            f"Deploy {t.wanted} in Microsoft Foundry and type that deployment's name.",
        ),
    ),
    FailureCode.QUOTA_EXCEEDED: _Entry(
        "key_field",
        lambda t, o, s: "The account has used up its quota or credit.",
        lambda t, o, s: _azure_or_openai(
            t,
            "Add credit or raise the limits on the Billing page of platform.openai.com, then Save again.",
            "Raise the deployment's quota in Microsoft Foundry (Quotas), or check the subscription's spending limit, then Save again.",
        ),
        lambda t, o, s: "Ask an admin to add credit or raise the quota; nothing will work until then.",
    ),
    FailureCode.RATE_LIMITED: _Entry(
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
                "raise the deployment's tokens-per-minute limit in Microsoft Foundry.",
            )
        ),
        lambda t, o, s: (
            f"Wait {_wait_text(o)} and try again, or send fewer requests at once (a smaller concurrency for embed)."
        ),
    ),
    FailureCode.SERVER_ERROR: _Entry(
        "endpoint_field",
        lambda t, o, s: f"{t.host} answered with a server error (HTTP {o.status}).",
        lambda t, o, s: (
            "This is on the service's side: wait a few minutes and Save again, or check the status page of OpenAI or Azure."
        ),
        lambda t, o, s: "This is on the service's side: try again in a few minutes.",
    ),
    FailureCode.TIMEOUT: _Entry(
        "endpoint_field",
        lambda t, o, s: f"{t.host} did not answer within {s.check:g} second{'' if s.check == 1 else 's'}.",
        lambda t, o, s: (
            "Check the Endpoint URL and that this server can reach it (a firewall or proxy may be in the way), then try again."
        ),
        lambda t, o, s: "Try again; for long answers, use an AIClient with a longer timeout.",
    ),
    FailureCode.DNS_FAILURE: _Entry(
        "endpoint_field",
        lambda t, o, s: f"The host name {urlsplit(t.url).hostname} could not be found.",
        lambda t, o, s: (
            "Check the Endpoint URL for typos (the resource name is the first part of the host name); on a private network, check that this server's DNS knows the name."
        ),
    ),
    FailureCode.CONNECTION_FAILED: _Entry(
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
        lambda t, o, s: (
            "Check that this server can reach the service (or your proxy, HTTPS_PROXY) and try again; "
            "if it keeps failing, ask an admin to open AI Settings and press Test."
        ),
    ),
    FailureCode.ADDRESS_REFUSED: _Entry(
        "endpoint_field",
        lambda t, o, s: (
            f"When the AI gateway connected, {t.host} resolved to an address it may not call (a metadata, "
            "link-local, or private address that AI_ADMIN_GATEWAY_ALLOW_HOSTS does not list)."
        ),
        lambda t, o, s: (
            "Check the Endpoint URL. If the host is on your private network, ask the hub's admin to allow it in "
            "AI_ADMIN_GATEWAY_ALLOW_HOSTS; a name that resolves elsewhere than it did at Save is refused on purpose."
        ),
    ),
    FailureCode.TLS_ERROR: _Entry(
        "endpoint_field",
        lambda t, o, s: f"The secure connection to {t.host} failed: its certificate is not trusted.",
        lambda t, o, s: (
            "A corporate proxy that inspects HTTPS often causes this: ask IT for the proxy's certificate authority (CA) bundle and set SSL_CERT_FILE to it before starting JupyterLab."
        ),
    ),
    FailureCode.UNEXPECTED_RESPONSE: _Entry(
        "endpoint_field",
        lambda t, o, s: (
            f"{t.host} redirected the check (HTTP {o.status}) to {o.redirect}, a metadata, link-local or unspecified "
            "address that is never called (by the AI gateway neither)."
            if o.redirect is not None and o.redirect_never_called
            else f"{t.host} redirected the check elsewhere (HTTP {o.status}{', to ' + o.redirect if o.redirect else ''})."
            if o.redirect is not None
            else f"{t.host} refused the check with HTTP {o.status} and error code {o.api_error}."
            if o.api_error
            else f"{t.host} sent "
            + ("a web page (HTML)" if o.html else "an answer")
            + (f" with HTTP status {o.status}" if o.status is not None else "")
            + " instead of an OpenAI API response."
        ),
        lambda t, o, s: (
            "This is not the OpenAI API: check the Endpoint URL, and that nothing between this server and the service rewrites addresses."
            if o.redirect is not None and o.redirect_never_called
            else "Use the address it points to as the Endpoint URL, or check that nothing between this server and the service rewrites addresses."
            if o.redirect is not None
            else "Read the service's message below; if it does not say what to change, contact the service's support with the request id."
            if o.api_error
            else "Check that the Endpoint URL points at the OpenAI or Azure OpenAI API itself, not at a web page or a proxy's sign-in page."
        ),
        lambda t, o, s: (
            "Check the messages, texts and options given; the service's words below say what it refused."
            if o.status == 400
            else ASK_ADMIN
        ),
    ),
}


def explain(code: FailureCode, target: CheckTarget, outcome: Outcome, timeouts: Timeouts) -> Explanation:
    """A failure in words, from the one table of explanations (``_MESSAGES``).

    Args:
        code: the failure's code (not ``FailureCode.OK``).
        target: what the request talked to (role, provider, URL, deployment, model).
        outcome: what the service said (status, wait, its own message, ...).
        timeouts: the limits in force, for the timeout message (seconds).
    Returns:
        An :class:`Explanation`: what is wrong, what an admin does, what an analyst is told
        (sentences without the model's label), and the dotted path of the field to correct
        (None when no field is to blame). None holds the key: what the service said is
        scrubbed before it reaches an :class:`Outcome`.
    """
    asked = code
    if target.signs_in:  # no API Key to blame: the token, or the identity's role
        code = _SIGNED_IN_CODES.get(code, code)
    entry = _MESSAGES[code]
    if entry.field == "api_version_field":
        field: str | None = "api_version"
    elif entry.field == "organization_field":
        field = "project" if "project" in outcome.vendor_message.lower() else "organization"
    elif entry.field == "none":  # a cause no field of the form can fix
        field = None
    else:
        field = getattr(target, entry.field)
    if target.signs_in and field == target.key_field:
        field = None  # a deployment that signs in has no API Key field
    return Explanation(
        entry.wrong(target, outcome, timeouts),
        entry.admin(target, outcome, timeouts),
        entry.analyst(target, outcome, timeouts),
        field,
        code if code is not asked else None,
    )


#: What a refusal means for a deployment that signs in with Microsoft Entra ID: a 401 is the token refused
#: (Azure OpenAI: "audience is incorrect … or have expired", an identity of another tenant), a 403 the role.
_SIGNED_IN_CODES = {
    FailureCode.INVALID_API_KEY: FailureCode.ENTRA_TOKEN_REFUSED,
    FailureCode.MISSING_PERMISSIONS: FailureCode.ROLE_MISSING,
}


def _minimum_version(vendor_message: str) -> str | None:
    """The api-version a model needs, from Azure's "enabled only for api versions X and later"."""
    match = re.search(r"api versions? (\d{4}-\d{2}-\d{2}(?:-preview)?) and later", vendor_message, re.I)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- #
# View models: what crosses the Settings interface (no secret in any of them)
# --------------------------------------------------------------------------- #


class AdminCheck(_Model):
    """Whether a user is an admin, where the answer came from, and why not.

    Attributes:
        admin: True when the user may change the integration.
        source: ``"hub"`` (JupyterHub said), ``"store"`` (the store's admins list),
            ``"forced"`` (``AccessPolicy(admin=...)``) or ``"gateway"`` (the AI gateway said).
        reason: for a user who is not an admin, or an admin by a fallback rule, one
            sentence saying why (e.g. the hub could not be reached); None otherwise.
    """

    admin: bool
    source: str
    reason: str | None = None

    def __init__(self, admin: bool, source: str, reason: str | None = None) -> None:
        super().__init__(**{"admin": admin, "source": source, "reason": reason})


class AccessLists(_Model):
    """Who may change the integration and who may use AI, as the store holds them.

    Attributes:
        admins: the store's admins list as it applies off a hub.
        allowed_users: the users who may use AI; with ``allowed_groups`` empty too, everyone may.
        allowed_groups: the groups whose members may use AI.
        on_hub: True when JupyterHub, not ``admins``, decides who is an admin.
    """

    admins: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()
    on_hub: bool = False

    @property
    def everyone_may_use_ai(self) -> bool:
        """True when both allow-lists are empty (no restriction)."""
        return not self.allowed_users and not self.allowed_groups


class KeyringState(_Model):
    """Where the keys are kept, in words, and why no keyring can hold them (None when one can).

    Attributes:
        backend: the keyring backend's name (``"none usable"`` when there is none).
        problem: the :class:`KeyringUnavailable` message with what to do, or None.
    """

    backend: str
    problem: str | None = None


class _Fields(_Model):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class OpenAIFields(_Fields):
    """A saved OpenAI integration without its key (what the Edit form starts from)."""

    provider: Literal[Provider.OPENAI] = Provider.OPENAI
    base_url: str = DEFAULT_OPENAI_BASE_URL
    language_model: str = DEFAULT_LANGUAGE_MODEL
    embeddings_model: str = DEFAULT_EMBEDDINGS_MODEL
    organization: str | None = None
    project: str | None = None


class EntraIDFields(_Fields):
    """A saved Microsoft Entra ID sign-in without its client secret."""

    method: Literal["service_principal", "managed_identity"] = "service_principal"
    tenant_id: str | None = None
    client_id: str | None = None
    authority_host: str = DEFAULT_AUTHORITY_HOST

    def described(self) -> str:
        """The sign-in in words (:func:`entra_words`)."""
        return entra_words(self.method, self.tenant_id, self.client_id)


class AzureDeploymentFields(_Fields):
    """One saved Azure OpenAI deployment without its key (or client secret)."""

    endpoint_url: str
    deployment_id: str
    entra_id: EntraIDFields | None = None

    @property
    def authentication(self) -> Literal["api_key", "entra_id"]:
        """``"entra_id"`` when the deployment signs in with Microsoft Entra ID, else ``"api_key"``."""
        return "entra_id" if self.entra_id is not None else "api_key"

    def secret_slots(self, prefix: str) -> tuple[str, ...]:
        """The keyring slots this deployment's secrets are under, each name after ``prefix`` (``"language_model."``)."""
        if self.entra_id is None:
            return (f"{prefix}api_key",)
        return (f"{prefix}entra_id.client_secret",) if self.entra_id.method == "service_principal" else ()


class AzureOpenAIFields(_Fields):
    """A saved Azure OpenAI integration without its keys (what the Edit form starts from)."""

    provider: Literal[Provider.AZURE_OPENAI] = Provider.AZURE_OPENAI
    language_model: AzureDeploymentFields
    embeddings_model: AzureDeploymentFields
    api_version: str = DEFAULT_AZURE_API_VERSION

    def deployment(self, role: Role) -> AzureDeploymentFields:
        """The saved deployment of ``role``."""
        return self.language_model if role == "language" else self.embeddings_model

    @property
    def uses_shared_endpoint(self) -> bool:
        """True when both deployments have the same endpoint URL and sign-in (the form then offers one endpoint and one key)."""
        return (
            self.language_model.endpoint_url == self.embeddings_model.endpoint_url
            and self.language_model.entra_id == self.embeddings_model.entra_id
        )

    def secret_slots(self) -> tuple[str, ...]:
        """The keyring slots of the saved secrets (none for deployments that sign in as a managed identity)."""
        return tuple(slot for role in ROLES for slot in self.deployment(role).secret_slots(f"{role}_model."))


#: A saved integration's public fields, either provider.
SavedFields = Annotated[OpenAIFields | AzureOpenAIFields, Field(discriminator="provider")]
_SAVED_FIELDS: TypeAdapter[OpenAIFields | AzureOpenAIFields] = TypeAdapter(SavedFields)


def saved_fields(public_fields: Any) -> OpenAIFields | AzureOpenAIFields:
    """The typed form of a record's ``integration`` (what ``public_fields()`` wrote).

    Raises:
        pydantic.ValidationError: the record's fields are not those of an integration.
    """
    return _SAVED_FIELDS.validate_python(public_fields)


class SettingsSnapshot(_Model):
    """Everything the AI Settings page shows, read once per render; safe to show the current user.

    Attributes:
        status: the integration's state.
        user: who the page acts as.
        admin: whether that user may configure, and why not.
        access: the admins list and the allow-lists.
        may_use_ai: whether that user may use AI now.
        keyring: where keys are kept and what is wrong with it.
        saved: the saved integration's fields without keys (for the Edit form), or None.
        openai_base_url: the Base URL a new OpenAI integration starts from.
        problem: why the settings record could not be read (then ``status`` is empty), or None.
    """

    status: IntegrationStatus
    user: str
    admin: AdminCheck
    access: AccessLists
    may_use_ai: bool
    keyring: KeyringState
    saved: SavedFields | None = None
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    problem: str | None = None


# --------------------------------------------------------------------------- #
# The audit log
# --------------------------------------------------------------------------- #


class AuditAction(str, enum.Enum):
    """What an audit event records; ``action.label`` is what History and ``ai-admin history`` call it."""

    label: str

    def __new__(cls, value: str, label: str) -> AuditAction:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    ADD = "add", "Added"
    EDIT = "edit", "Edited"
    REMOVE = "remove", "Removed"
    AUTHENTICATE = "authenticate", "Tested"
    SAVE = "save", "Save refused"
    ALLOW = "allow", "Allow-lists changed"
    ADD_ADMIN = "add-admin", "Admin added"
    REMOVE_ADMIN = "remove-admin", "Admin removed"
    IMPORT = "import", "Moved into the gateway's database"


#: What an audit event's ``error`` said in words; older logs hold these class names.
_ERROR_WORDS = {
    "ConcurrentChange": "someone else changed it meanwhile",
    "KeyringUnavailable": "no usable keyring",
    "StoreError": "the store could not be read or written",
    "SavedKeyUnavailable": "the saved key could not be kept",
    "KeyNotInThisKeyring": "this keyring has no key for this store",
}

#: Field paths that are not integration fields, in words.
_OTHER_FIELDS = {
    "provider": "Provider",
    "admins": "Admins",
    "allowed_users": "Users who may use AI",
    "allowed_groups": "Groups who may use AI",
}


def refusal_words(error: BaseException) -> str:
    """Why a change was refused, in the words the audit log records (never a class name, never a key)."""
    for kind in type(error).__mro__:
        if kind.__name__ in _ERROR_WORDS:
            return _ERROR_WORDS[kind.__name__]
    return "an unexpected problem"


def field_title(path: str) -> str:
    """The admin's name of a field path, from the models' field titles.

    ``"language_model.endpoint_url"`` is ``"Endpoint URL, language model"``; ``"base_url"``
    is ``"Base URL"``; an unknown path is returned as it is.
    """
    if path in _OTHER_FIELDS:
        return _OTHER_FIELDS[path]
    head, _, leaf = path.partition(".")
    if leaf and head in ("language_model", "embeddings_model"):
        if leaf.startswith("entra_id."):
            field = EntraID.model_fields.get(leaf.removeprefix("entra_id."))
        else:
            field = AzureDeployment.model_fields.get(leaf)
        if field is not None and field.title:
            return f"{field.title}, {ROLE_LABELS[head.removesuffix('_model')].lower()}"
        return path
    for model in (OpenAIIntegration, AzureOpenAIIntegration):
        field = model.model_fields.get(path)
        if field is not None and field.title:
            return field.title
    return path


class HistoryRow(NamedTuple):
    """One audit event as the cells History and ``ai-admin history`` show."""

    when: str
    who: str
    what: str
    provider: str
    outcome: str
    details: str


class AuditEvent(_Fields):
    """One audit event: who did what, when, to which provider, with which outcome. Never a secret.

    Attributes:
        at: when (UTC).
        actor: who, as the service knew them.
        action: what (:class:`AuditAction`).
        provider: the integration's provider, when the action concerns one.
        changed: the dotted paths of the fields a save changed (names, never values).
        outcome: ``"ok"`` or ``"failed"``.
        codes: for an authentication, each model's :class:`FailureCode` value, language model first.
        error: why a change was refused, in words.
        user: the user an admin change concerns.
        allowed_users, allowed_groups: the allow-lists an ``allow`` event set.
        id: the event's number in the AI gateway's database (for paging: ``history(before=id)``); None elsewhere.
    """

    at: datetime
    actor: str = ""
    action: AuditAction
    provider: Provider | None = None
    changed: tuple[str, ...] = ()
    outcome: str = "ok"
    codes: tuple[str, ...] = ()
    error: str | None = None
    user: str | None = None
    allowed_users: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()
    id: int | None = None

    @field_validator("at")
    @classmethod
    def _in_utc(cls, moment: datetime) -> datetime:
        return _as_utc(moment)

    @classmethod
    def parse(cls, data: Any) -> AuditEvent | None:
        """The event from one parsed audit line; None for a line that is not one (damaged, or an unknown action)."""
        try:
            return cls.model_validate(data)
        except ValidationError:
            return None

    def details(self) -> str:
        """The failure codes with their model, the changed fields by title, the reason, or the user concerned."""
        failed = [code for code in self.codes if code != "ok"]
        if failed:
            if len(self.codes) == len(ROLES):
                labelled = [
                    f"{ROLE_LABELS[role]}: {code}" for role, code in zip(ROLES, self.codes, strict=True) if code != "ok"
                ]
                return ", ".join(labelled)
            return ", ".join(dict.fromkeys(failed))
        if self.error:
            return _ERROR_WORDS.get(self.error, self.error)
        if self.action in (AuditAction.ADD_ADMIN, AuditAction.REMOVE_ADMIN) and self.user:
            return self.user
        if self.action is AuditAction.ALLOW:
            if not self.allowed_users and not self.allowed_groups:
                return "everyone may use AI"
            return f"users: {', '.join(self.allowed_users) or '-'}; groups: {', '.join(self.allowed_groups) or '-'}"
        return "; ".join(field_title(path) for path in self.changed)

    def row(self) -> HistoryRow:
        """The event as table cells (the one renderer of a history row)."""
        return HistoryRow(
            when=f"{self.at:%Y-%m-%d %H:%M}",
            who=self.actor,
            what=self.action.label,
            provider=self.provider.label if self.provider else "",
            outcome=self.outcome,
            details=self.details(),
        )


# --------------------------------------------------------------------------- #
# Usage: the AI calls the gateway forwarded, summed (only on a hub with the AI gateway)
# --------------------------------------------------------------------------- #

#: What a usage report is grouped by: the caller (hub user), each hub group of the caller, or the model called.
UsageBy = Literal["user", "group", "model"]
USAGE_BY: tuple[str, ...] = ("user", "group", "model")
#: The days a usage report covers when no ``since`` is given: today (UTC) and the 29 before it.
DEFAULT_USAGE_DAYS = 30
#: The most days one usage report covers, today included.
MAX_USAGE_DAYS = 366


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


def parse_usage_since(text: str | None, *, today: date | None = None, name: str = "since") -> date | None:
    """``text`` as the first day of a report (``YYYY-MM-DD``, UTC); None for None or empty.

    Raises:
        ValueError: not such a date, after today, or more than :data:`MAX_USAGE_DAYS` days ago; the message names ``name``.
    """
    if text is None or not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{name} must be a day written YYYY-MM-DD, such as {(today or _utc_today()) - timedelta(days=7)} "
            f"(it is {text.strip()[:40]!r})."
        ) from None
    return check_usage_since(day, today=today, name=name)


def check_usage_since(day: date | None, *, today: date | None = None, name: str = "since") -> date | None:
    """``day`` when a report may start on it (None stays None).

    Raises:
        ValueError: not a date, after today (UTC), or more than :data:`MAX_USAGE_DAYS` days before it.
    """
    if day is None:
        return None
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"{name} must be a date (datetime.date), not {type(day).__name__}.")
    today = today or _utc_today()
    if day > today:
        raise ValueError(f"{name} ({day}) is after today ({today}, UTC): give a day up to today.")
    if (today - day).days >= MAX_USAGE_DAYS:
        earliest = today - timedelta(days=MAX_USAGE_DAYS - 1)
        raise ValueError(
            f"{name} ({day}) is too long ago: a report covers at most {MAX_USAGE_DAYS} days, from {earliest} on."
        )
    return day


def parse_usage_by(text: str | None, *, name: str = "by") -> str:
    """``text`` as what a report is grouped by (default ``"user"``).

    Raises:
        ValueError: not one of ``user``, ``group``, ``model``.
    """
    chosen = (text or "user").strip().lower()
    if chosen not in USAGE_BY:
        raise ValueError(f"{name} must be one of {', '.join(USAGE_BY)} (it is {str(text)[:40]!r}).")
    return chosen


class UsageTotal(_Model):
    """The AI calls of one user, group or model, summed over a report's days.

    Attributes:
        key: the user's, group's or model's name (``"(no group)"`` for callers in none, ``"(none)"`` for a
            call that named no model); ``"all"`` for a report's :attr:`UsageReport.overall`.
        calls: the calls recorded, whatever their outcome.
        failures: calls that failed (the provider failed or was too slow, or the answer broke off).
        refused: calls refused before they reached the provider (a budget, the allow-list, a wrong model).
        prompt_tokens, completion_tokens: as the provider counted them (0 for calls it gave no figures for).
        tokens: the provider's total tokens (prompt + completion where it gave no total).
    """

    key: str
    calls: int = 0
    failures: int = 0
    refused: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens: int = 0


class UsageDay(UsageTotal):
    """:class:`UsageTotal` of one key on one day (UTC)."""

    day: date


class UsageReport(_Model):
    """Who used AI through the gateway, how much, day by day: ``ai-admin usage`` and the panel's Usage region.

    Days are UTC calendar days, ``since`` to ``until`` inclusive. By group, a call counts once for each of
    the caller's hub groups (so the groups' sums may exceed :attr:`overall`). Never a prompt or an answer.

    Attributes:
        since, until: the first and the last day counted (``until`` is the day the report was made).
        by: what :attr:`days` and :attr:`totals` are grouped by.
        days: one entry per day and key with calls, oldest day first, then most tokens first (``"(others)"`` last).
        totals: one entry per key over all the days, most tokens first.
        top_users: the users with the most tokens over the days (at most ten), whatever ``by`` is.
        overall: every call of the days, counted once.
    """

    since: date
    until: date
    by: UsageBy = "user"
    days: tuple[UsageDay, ...] = ()
    totals: tuple[UsageTotal, ...] = ()
    top_users: tuple[UsageTotal, ...] = ()
    overall: UsageTotal = Field(default_factory=lambda: UsageTotal(key="all"))


# Budgets and limits (kept by the AI gateway)
# --------------------------------------------------------------------------- #


BudgetScope = Literal["user", "group", "organization"]
BudgetPeriod = Literal["day", "month", "minute"]
#: The scopes and periods of a budget, in the order they are listed.
BUDGET_SCOPES: tuple[BudgetScope, ...] = ("user", "group", "organization")
BUDGET_PERIODS: tuple[BudgetPeriod, ...] = ("day", "month", "minute")
#: A user budget under this name applies to each user who has no budget of their own for the period.
EVERY_USER = "*"
#: The largest limit a budget takes (tokens or requests).
MAX_BUDGET_LIMIT = 10**15


class Budget(_Model):
    """One budget or limit: tokens per UTC day or month, or requests per minute, for a user, a group or everyone.

    Attributes:
        scope: ``user`` (``name`` a hub user, or ``*`` for each user without a budget of their own),
            ``group`` (a hub group: its members' calls together) or ``organization`` (every call; ``name`` empty).
        name: whose budget it is.
        period: ``day`` or ``month`` (UTC; ``limit`` in tokens), or ``minute`` (``limit`` in requests; users only).
        limit: the most tokens (or requests) in one period; calls are refused once it is reached.
        used: what the current period has counted so far (None for ``*``: each user is counted apart).
        resets_at: when the current period ends (UTC).
        updated_by, updated_at: who set it and when.
    """

    scope: BudgetScope
    name: str = ""
    period: BudgetPeriod
    limit: int
    used: int | None = None
    resets_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None

    @property
    def unit(self) -> str:
        """``requests`` for a per-minute limit, else ``tokens``."""
        return "requests" if self.period == "minute" else "tokens"

    def described(self) -> str:
        """E.g. ``"user 'alice': 10000 tokens per day (UTC)"``."""
        if self.scope == "organization":
            whose = "the organization"
        elif self.scope == "user" and self.name == EVERY_USER:
            whose = "each user"
        else:
            whose = f"{self.scope} '{self.name}'"
        utc = "" if self.period == "minute" else " (UTC)"
        return f"{whose}: {self.limit} {self.unit} per {self.period}{utc}"


class BudgetsView(_Model):
    """The budgets the gateway enforces, each with what its current period has used.

    Attributes:
        budgets: ordered by scope (user, group, organization), name, then period (day, month, minute).
    """

    budgets: tuple[Budget, ...] = ()


#: A budget's limit as typed: ASCII digits, or digits in groups of three joined by one kind of separator (, or _).
_LIMIT_TEXT = re.compile(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?:_[0-9]{3})+")


def budget_limit_number(text: str) -> int | None:
    """``text`` (a budget's limit as typed: ``1000000``, ``1,000,000`` or ``1_000_000``; whitespace around it
    trimmed) as a number; None for anything else (``1,0,0``, ``1.5``, ``-5``, other digits than ASCII's)."""
    text = text.strip()
    if len(text) > 40 or not _LIMIT_TEXT.fullmatch(text):
        return None
    return int(text.replace(",", "").replace("_", ""))


def checked_budget(scope: Any, name: Any, period: Any, limit: Any) -> Budget:
    """A budget from what an admin typed, each part checked; whitespace around names trimmed.

    Raises:
        ValueError: one part is wrong; the message names it (``scope``, ``name``, ``period``, ``limit``) and what to give.
    """
    if scope not in BUDGET_SCOPES:
        raise ValueError(f"scope must be one of user, group, organization (not {str(scope)[:40]!r}).")
    if period not in BUDGET_PERIODS:
        raise ValueError(f"period must be day or month (tokens, UTC) or minute (requests), not {str(period)[:40]!r}.")
    name = name.strip() if isinstance(name, str) else name
    if scope == "organization":
        if name not in (None, ""):
            raise ValueError("name must be empty for the organization's budget (it covers every call).")
        name = ""
    elif not isinstance(name, str) or not name:
        what = "a hub user's name, or * for each user" if scope == "user" else "a hub group's name"
        raise ValueError(f"name must be {what} for a {scope} budget.")
    elif len(name) > 255 or any(unicodedata.category(char)[0] == "C" for char in name):
        raise ValueError(f"name must be at most 255 printable characters (the {scope}'s name on the hub).")
    if period == "minute" and scope != "user":
        raise ValueError("period minute (requests per minute) is a limit per user: give scope user.")
    if isinstance(limit, str):
        number = budget_limit_number(limit)
        limit = number if number is not None else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BUDGET_LIMIT:
        unit = "requests" if period == "minute" else "tokens"
        raise ValueError(
            f"limit must be a whole number of {unit} from 1 to {MAX_BUDGET_LIMIT}, not {str(limit)[:40]!r}."
        )
    return Budget(scope=scope, name=name, period=period, limit=limit)
