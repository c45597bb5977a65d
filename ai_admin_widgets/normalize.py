"""Normalizers: what admins paste, turned into what the APIs expect, with every change said out loud.

Pure functions, no I/O. The models call them before validating, and keep the
:class:`Notice` list so the panel and the report can show each change beside its
field. A normalizer never raises anything but :class:`FieldProblem` (a
``ValueError`` that names the field it belongs to).

Sources:
* Azure OpenAI endpoints and the target URI (``https://<resource>.openai.azure.com/openai/deployments/<deployment>/chat/completions?api-version=<version>``):
  Azure OpenAI REST API reference, "Inference"; the sovereign clouds' endpoint suffixes:
  Azure Government and Azure operated by 21Vianet documentation.
* api-versions and model versions: Azure OpenAI "API version lifecycle" and "Models" pages.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = [
    "AZURE_V1_API",
    "AzureTarget",
    "FieldProblem",
    "Notice",
    "azure_host_notices",
    "is_loopback",
    "judge_model",
    "normalize_api_key",
    "normalize_api_version",
    "provider_hint",
    "split_azure_endpoint",
]


class Notice(BaseModel):
    """Something the tool changed in, or wants to say about, what the admin typed.

    Attributes:
        field: the dotted path of the field it concerns (``"language_model.endpoint_url"``).
        message: one or two sentences in the admin's words; never a key.
        level: ``"info"`` for a change made (e.g. quotes removed), ``"warning"`` for
            something to check (e.g. a key that looks like the other provider's).
    """

    model_config = ConfigDict(frozen=True)

    field: str
    message: str
    level: Literal["info", "warning"] = "info"

    def under(self, prefix: str) -> Notice:
        """The same notice with ``prefix`` put before its field path."""
        return Notice(field=f"{prefix}{self.field}", message=self.message, level=self.level)


class FieldProblem(ValueError):
    """A validation error that belongs to one field (``.field``, a dotted path relative to the model)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- #
# Hosts
# --------------------------------------------------------------------------- #

#: The loopback hosts where plain http is allowed: exactly the ones the checks reach
#: directly, never through a proxy (verify.py mounts a direct transport for each).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.1``, ``localhost`` and ``::1`` (in any spelling of that address).

    Other names that may resolve to loopback (``*.localhost``, ``127.0.0.2``) are not
    counted: a name can be resolved elsewhere, and a proxy would see what is sent to them.
    """
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


#: Host name suffixes of Azure OpenAI resources: the global cloud, Azure Government
#: (``.us``) and Azure operated by 21Vianet (``.cn``), and the regional Cognitive
#: Services endpoints.
AZURE_HOST_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
    ".openai.azure.us",
    ".cognitiveservices.azure.us",
    ".services.ai.azure.us",
    ".openai.azure.cn",
    ".cognitiveservices.azure.cn",
    ".services.ai.azure.cn",
    ".api.cognitive.microsoft.com",
    ".api.cognitive.microsoft.us",
    ".api.cognitive.azure.cn",
)
_GATEWAY_SUFFIX = ".azure-api.net"


def azure_host_notices(host: str, field: str = "endpoint_url") -> list[Notice]:
    """Warnings about an Azure OpenAI endpoint's host name: none for a known Azure host or loopback.

    Args:
        host: the host name (lower case or not).
        field: the field path the notice names.
    Returns:
        A list with at most one warning :class:`Notice`.
    """
    host = host.lower()
    if is_loopback(host) or host.endswith(AZURE_HOST_SUFFIXES):
        return []
    if host.endswith(_GATEWAY_SUFFIX):
        return [
            Notice(
                field=field,
                level="warning",
                message=(
                    f"{host} is an Azure API Management gateway, not the Azure OpenAI resource itself. "
                    "Save works only if the gateway passes /openai/deployments/... through and accepts the api-key header; "
                    "if it fails, use the resource's own endpoint from its Keys and Endpoint page."
                ),
            )
        ]
    return [
        Notice(
            field=field,
            level="warning",
            message=(
                f"{host} is not an Azure OpenAI host name (those end in .openai.azure.com, "
                ".cognitiveservices.azure.com or .services.ai.azure.com). Check that you copied the Endpoint from the resource's Keys and Endpoint page."
            ),
        )
    ]


# --------------------------------------------------------------------------- #
# Endpoint URLs and target URIs
# --------------------------------------------------------------------------- #

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_WRAPPERS = {('"', '"'), ("'", "'"), ("<", ">"), ("‹", "›"), ("“", "”"), ("(", ")"), ("[", "]"), ("`", "`")}
_OPERATION_ROLE = {"chat/completions": "language", "completions": "language", "embeddings": "embeddings"}


@dataclass
class AzureTarget:
    """An Azure endpoint URL taken apart.

    Attributes:
        endpoint: the base endpoint (``scheme://host[:port]`` plus any path before ``/openai``),
            without a trailing slash; or the input, stripped, when it is not a URL.
        deployment_id: the deployment named in a pasted target URI, or None.
        role: ``"language"`` or ``"embeddings"`` when the target URI names an operation, else None.
        api_version: the ``api-version`` of a pasted target URI, or None.
        notices: what was changed, for the admin.
        problem: why the URL cannot be used as it is and which one to copy instead (a Microsoft Foundry
            project or models endpoint, whose Azure OpenAI endpoint is not certain from it), or None.
    """

    endpoint: str
    deployment_id: str | None = None
    role: str | None = None
    api_version: str | None = None
    notices: list[Notice] = field(default_factory=list)
    problem: str | None = None


#: Microsoft Foundry's own endpoints on a Foundry resource's host (``<resource>.services.ai.azure.com``): the
#: project endpoint (the Foundry SDK's, ``/api/projects/<project>``) and the Foundry Models inference endpoint
#: (``/models``). Neither is the Azure OpenAI API (Microsoft Foundry "SDKs and endpoints").
_FOUNDRY_PATHS = re.compile(r"^/(?:api/projects(?:/[^/]+)?|models)(?:/|$)", re.IGNORECASE)
_FOUNDRY_HOST = re.compile(
    r"^(?P<resource>[a-z0-9][a-z0-9-]*)\.services\.ai\.azure\.(?P<cloud>com|us|cn)$", re.IGNORECASE
)


#: The portals' own addresses (web pages, never an API): Microsoft Foundry, Azure OpenAI Studio, the Azure portal.
_PORTAL_HOSTS = frozenset({"ai.azure.com", "oai.azure.com", "portal.azure.com", "ai.azure.us", "portal.azure.us"})


def _foundry_problem(host: str, path: str) -> str | None:
    """What to copy instead of a Microsoft Foundry project or models endpoint, or None for any other URL."""
    if host.lower() in _PORTAL_HOSTS:
        return (
            f"This is the address of a portal's web page ({host.lower()}), not an endpoint. Copy the Azure OpenAI "
            "endpoint instead: in Microsoft Foundry, the resource's Overview page lists it under Endpoints (choose "
            "Azure OpenAI), and the Azure portal under Keys and Endpoint (such as https://<resource>.openai.azure.com)."
        )
    found = _FOUNDRY_HOST.match(host)
    if not found or not _FOUNDRY_PATHS.match(path):
        return None
    what = (
        "project endpoint (for the Foundry SDK)"
        if path.lower().startswith("/api/projects")
        else "models endpoint (the Foundry Models inference API, /models)"
    )
    openai_host = f"{found.group('resource').lower()}.openai.azure.{found.group('cloud').lower()}"
    return (
        f"This is Microsoft Foundry's {what}, not the Azure OpenAI endpoint. Copy the Azure OpenAI endpoint instead: "
        f"in Microsoft Foundry, the resource's Overview page lists it under Endpoints (choose Azure OpenAI), and the Azure "
        f"portal under Keys and Endpoint; for this resource it is likely https://{openai_host}."
    )


def split_azure_endpoint(text: str, field_name: str = "endpoint_url") -> AzureTarget:
    """Take an Azure endpoint URL, or a whole target URI, apart. Never raises.

    Handles: surrounding whitespace; a missing ``https://``; trailing slashes; an
    ``/openai`` (or ``/openai/deployments``) suffix; a full target URI ``…/openai/deployments/<d>/<operation>?api-version=<v>``;
    a v1 API URL ``…/openai/v1/[<operation>]`` (the API version becomes ``v1``).

    Args:
        text: what the admin typed in Endpoint URL.
        field_name: the field path used in the notices.
    Returns:
        An :class:`AzureTarget`; ``endpoint`` equals the stripped input when nothing applied.
    """
    notices: list[Notice] = []
    text = text.strip()
    cleaned = _INVISIBLE.sub("", text)
    if cleaned != text:
        text = cleaned.strip()
        notices.append(
            Notice(
                field=field_name, message="Invisible characters (copied with the URL) were removed from Endpoint URL."
            )
        )
    if len(text) >= 2 and (text[0], text[-1]) in _WRAPPERS:
        text = text[1:-1].strip()
        notices.append(Notice(field=field_name, message="The quotes or brackets around Endpoint URL were removed."))
    if text and "://" not in text and re.match(r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/|$)", text):
        text = "https://" + text
        notices.append(Notice(field=field_name, message="Endpoint URL had no https:// in front; it was added."))
    try:
        parts = urlsplit(text)
    except ValueError:  # "https://[" and the like: the field validator says it is not a web address
        return AzureTarget(endpoint=text, notices=notices)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return AzureTarget(endpoint=text, notices=notices)
    path = re.sub(r"/{2,}", "/", parts.path)
    problem = _foundry_problem(parts.hostname or "", path)
    if problem is not None:
        return AzureTarget(endpoint=text, notices=notices, problem=problem)
    match = re.search(r"/openai/deployments/([^/?#]+)(?:/(.*?))?/?$", path, flags=re.IGNORECASE)
    target = AzureTarget(endpoint="", notices=notices)
    if match:
        base_path = path[: match.start()]
        target.deployment_id = match.group(1)
        operation = (match.group(2) or "").strip("/").lower()
        target.role = _OPERATION_ROLE.get(operation)
        versions = parse_qs(parts.query).get("api-version")
        target.api_version = versions[0].strip() if versions else None
        target.endpoint = f"{parts.scheme}://{parts.netloc}{base_path}".rstrip("/")
        notices.append(
            Notice(
                field=field_name,
                message=f"Endpoint URL held a whole target URI: it was cut to the endpoint {target.endpoint}, "
                f"and its deployment '{target.deployment_id}' was used.",
            )
        )
        return target
    v1 = re.search(r"/openai/v1(?:/(.*?))?/?$", path, flags=re.IGNORECASE)
    if v1:  # Azure's v1 API: the endpoint is what comes before /openai, the API version is v1
        # The v1 API's base names no deployment: the same endpoint serves both models (no role to question).
        target.api_version = AZURE_V1_API
        target.endpoint = f"{parts.scheme}://{parts.netloc}{path[: v1.start()]}".rstrip("/")
        notices.append(
            Notice(
                field=field_name,
                message=f"Endpoint URL held Azure's v1 API path {v1.group(0).rstrip('/')}: it was cut to the endpoint "
                f"{target.endpoint}, and the v1 API is used (no dated API version).",
            )
        )
        return target
    trimmed = path.rstrip("/")
    suffix = re.search(r"(?:/openai(?:/deployments)?)+$", trimmed, flags=re.IGNORECASE)
    api_path = re.search(r"/openai/.*$", trimmed, flags=re.IGNORECASE)
    if suffix:  # all of it at once, so that normalizing the result again changes nothing
        trimmed = trimmed[: suffix.start()].rstrip("/")
        notices.append(
            Notice(
                field=field_name,
                message=f"Endpoint URL ended in {suffix.group(0)}, which the tool adds itself; it was removed.",
            )
        )
    elif api_path:  # another API's path (/openai/v1/..., /openai/responses): the endpoint is what comes before it
        trimmed = trimmed[: api_path.start()].rstrip("/")
        notices.append(
            Notice(
                field=field_name,
                message=f"Endpoint URL held the API path {api_path.group(0)}, which was removed: the endpoint is what comes before it.",
            )
        )
    elif trimmed != path:
        notices.append(Notice(field=field_name, message="The / at the end of Endpoint URL was removed."))
    if parts.query:
        notices.append(Notice(field=field_name, message="Endpoint URL had a ?query after it, which was removed."))
    if parts.fragment:
        notices.append(Notice(field=field_name, message="Endpoint URL had a #fragment after it, which was removed."))
    target.endpoint = f"{parts.scheme}://{parts.netloc}{trimmed}"
    return target


# --------------------------------------------------------------------------- #
# API keys
# --------------------------------------------------------------------------- #

_QUOTES = ('"', "'", "`", "“", "”", "‘", "’")
_ENVIRONMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


def _is_variable_name(text: str) -> bool:
    """True for an environment variable's name such as ``AZURE_OPENAI_API_KEY`` (capitals with
    underscores, at most 64 characters), which is safe to repeat in a message; never a key's shape."""
    return len(text) <= 64 and bool(_ENVIRONMENT_NAME.match(text))


_AZURE_KEY_SHAPE = re.compile(r"^(?:[0-9a-fA-F]{32}|[A-Za-z0-9]{84})$")


def normalize_api_key(value: Any, field_name: str = "api_key") -> tuple[Any, list[Notice]]:
    """Remove what admins paste around a key: whitespace, quotes, ``Bearer ``, ``api-key:``, ``NAME=`` and ``${…}``.

    Args:
        value: the typed key (``str`` or ``SecretStr``); anything else is returned unchanged
            for the field validator to reject.
        field_name: the field path used in notices and problems.
    Returns:
        ``(key, notices)``: the key as a ``SecretStr`` (or the unchanged non-text input),
        and one notice per change; no notice ever holds the key.
    Raises:
        FieldProblem: the value is a variable reference such as ``${AZURE_OPENAI_API_KEY}``,
            not a key.
    """
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value, []
    notices: list[Notice] = []
    text = value.strip()
    if text != value and text:
        notices.append(Notice(field=field_name, message="Spaces or line breaks around the API Key were removed."))
    for _ in range(3):  # wrappers can nest: "Bearer 'sk-…'"
        before = text
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1].strip()
            notices.append(Notice(field=field_name, message="Quotes around the API Key were removed."))
        lowered = text.lower()
        for prefix, what in (
            ("authorization:", "'Authorization:'"),
            ("ocp-apim-subscription-key:", "'Ocp-Apim-Subscription-Key:'"),
            ("api-key:", "'api-key:'"),
            ("api-key=", "'api-key='"),
            ("api_key=", "'api_key='"),
            ("bearer ", "'Bearer '"),
        ):
            if lowered.startswith(prefix):
                text = text[len(prefix) :].strip()
                lowered = text.lower()
                notices.append(Notice(field=field_name, message=f"{what} in front of the API Key was removed."))
        assignment = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S.*)$", text)
        if assignment and _is_variable_name(assignment.group(1)):
            text = assignment.group(2).strip()
            notices.append(
                Notice(field=field_name, message=f"'{assignment.group(1)}=' in front of the API Key was removed.")
            )
        if text.startswith("${") and text.endswith("}"):
            inner = text[2:-1].strip()
            if _is_variable_name(inner):
                raise FieldProblem(
                    field_name,
                    f"API Key holds the variable reference ${{{inner}}}, not a key: paste the key's value itself.",
                )
            text = inner
            notices.append(Notice(field=field_name, message="'${' and '}' around the API Key were removed."))
        if text == before:
            break
    _refuse_placeholders(text, field_name)
    return SecretStr(text), notices


_PLACEHOLDERS = (
    (
        re.compile(r"^\$[A-Z][A-Z0-9_]*$|^%[A-Za-z_][A-Za-z0-9_]*%$|os\.environ|getenv\("),
        "API Key holds a reference to an environment variable, not a key: paste the key's value itself.",
    ),
    (
        re.compile(r"^<.*>$|^\{.*\}$|your[-_ ]?(api[-_ ]?)?key|api[-_ ]?key[-_ ]?here|^x{6,}$", re.IGNORECASE),
        "API Key holds a placeholder from an example, not a key: paste the key from the portal.",
    ),
    (
        re.compile(r"^[…•*·]|^\.\.\.|[•*]{4,}"),
        "API Key holds the hidden hint of a key (…abcd or ••••), not the key: paste the whole key from the portal.",
    ),
)


def _refuse_placeholders(text: str, field_name: str) -> None:
    """Raise a FieldProblem when the text is plainly not a key (a variable, a placeholder, a hint)."""
    for pattern, message in _PLACEHOLDERS:
        if pattern.search(text):
            raise FieldProblem(field_name, message)


def provider_hint(key: str, provider: str, field_name: str = "api_key") -> list[Notice]:
    """A warning when a key has the other provider's shape (OpenAI keys start with ``sk-``).

    Args:
        key: the normalized key.
        provider: ``"openai"`` or ``"azure_openai"``: the provider the key was given to.
        field_name: the field path the notice names.
    Returns:
        A list with at most one warning; it never holds the key.
    """
    if provider == "azure_openai" and key.startswith("sk-"):
        return [
            Notice(
                field=field_name,
                level="warning",
                message="This API Key starts with sk-, like an OpenAI key: choose the OpenAI provider, or paste KEY 1 from the Azure resource's Keys and Endpoint page.",
            )
        ]
    if provider == "openai" and _AZURE_KEY_SHAPE.match(key):
        return [
            Notice(
                field=field_name,
                level="warning",
                message="This API Key looks like an Azure OpenAI key (OpenAI keys start with sk-): choose the Azure OpenAI provider, or create a key at platform.openai.com.",
            )
        ]
    return []


# --------------------------------------------------------------------------- #
# api-version
# --------------------------------------------------------------------------- #

#: Model versions an admin may type where the api-version goes, with their model
#: (Azure OpenAI "Models" page). None of them is an api-version.
MODEL_VERSIONS = {
    "2024-05-13": "gpt-4o",
    "2024-08-06": "gpt-4o",
    "2024-11-20": "gpt-4o",
    "2024-07-18": "gpt-4o-mini",
    "2024-04-09": "gpt-4 (turbo)",
    "2025-04-14": "gpt-4.1",
    "2024-09-12": "o1-preview / o1-mini",
    "2024-12-17": "o1",
    "2025-01-31": "o3-mini",
    "2025-04-16": "o3 / o4-mini",
    "2025-08-07": "gpt-5",
    "0613": "gpt-4 / gpt-35-turbo",
    "0314": "gpt-4",
    "0301": "gpt-35-turbo",
    "1106-preview": "gpt-4 / gpt-35-turbo",
    "0125-preview": "gpt-4",
    "0125": "gpt-35-turbo",
    "1106": "gpt-35-turbo",
    "vision-preview": "gpt-4",
    "turbo-2024-04-09": "gpt-4",
}
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
#: The API version that means Azure OpenAI's v1 API: ``{endpoint}/openai/v1/…``, no ``api-version`` parameter
#: (Azure OpenAI "API version lifecycle": the v1 API needs no dated version).
AZURE_V1_API = "v1"

#: api-versions of the Azure OpenAI data-plane inference API (GA and preview).
KNOWN_API_VERSIONS = frozenset(
    {
        "2022-12-01",
        "2023-05-15",
        "2024-02-01",
        "2024-06-01",
        "2024-10-21",
        "2023-03-15-preview",
        "2023-06-01-preview",
        "2023-07-01-preview",
        "2023-08-01-preview",
        "2023-09-01-preview",
        "2023-12-01-preview",
        "2024-02-15-preview",
        "2024-03-01-preview",
        "2024-04-01-preview",
        "2024-05-01-preview",
        "2024-07-01-preview",
        "2024-08-01-preview",
        "2024-09-01-preview",
        "2024-10-01-preview",
        "2024-12-01-preview",
        "2025-01-01-preview",
        "2025-02-01-preview",
        "2025-03-01-preview",
        "2025-04-01-preview",
    }
)


def normalize_api_version(value: Any, field_name: str = "api_version", *, default: str) -> tuple[Any, list[Notice]]:
    """Clean an api-version: whitespace, ``api-version=`` or ``?api-version=`` typed in front of it.

    Args:
        value: the typed api-version; non-text input is returned unchanged.
        field_name: the field path used in notices and problems.
        default: the api-version to recommend in messages.
    Returns:
        ``(api_version, notices)``.
    Raises:
        FieldProblem: a model version (``2024-05-13``, ``0613``, ``1106-Preview``) was typed
            as the api-version, or the text is not shaped like one.
    """
    if not isinstance(value, str):
        return value, []
    notices: list[Notice] = []
    text = value.strip()
    stripped = re.sub(r"^[?&]?api-version\s*=\s*", "", text, flags=re.IGNORECASE)
    if stripped != text:
        notices.append(Notice(field=field_name, message="'api-version=' in front of the API version was removed."))
        text = stripped
    lowered = text.lower()
    if lowered == AZURE_V1_API:
        return lowered, notices
    if lowered in MODEL_VERSIONS and lowered not in KNOWN_API_VERSIONS:
        raise FieldProblem(
            field_name,
            f"{text} is a version of the {MODEL_VERSIONS[lowered]} model, not an API version: use an api-version such as {default}.",
        )
    if not _API_VERSION.match(lowered) or not _is_date(lowered[:10]):
        raise FieldProblem(
            field_name,
            f"API version must look like {default} or 2025-01-01-preview (a date, and -preview for previews), "
            "or be v1 for Azure's v1 API.",
        )
    return lowered, notices


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- #
# Which models are good enough
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ModelVerdict:
    """Whether a model that answered may serve a role.

    Attributes:
        ok: True when the model is supported for the role.
        warning: set when the answer cannot tell (Azure answers plain ``gpt-4`` for both
            GPT-4 0613 and GPT-4 Turbo); says what to check in the portal.
    """

    ok: bool
    warning: str | None = None


_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_LANGUAGE_OK = (
    re.compile(r"^gpt-4-turbo"),
    re.compile(r"^gpt-4-(1106|0125)"),
    re.compile(r"^(chatgpt-)?gpt-4o"),
    re.compile(r"^chatgpt-4o"),
    re.compile(r"^gpt-4\.[1-9]"),
    re.compile(r"^o[1-9]"),
)
_LANGUAGE_LATER = re.compile(r"^gpt-(\d{1,2})(?:\.\d+)?(?:-|$)")


def judge_model(role: str, model: str) -> ModelVerdict:
    """Decide whether the model that answered may serve ``role``.

    Language: GPT-4 Turbo or later (gpt-4-turbo, gpt-4 1106/0125 previews, gpt-4o and
    gpt-4o-mini, the gpt-4.1 family, o-series, gpt-5 and later). Embeddings:
    text-embedding-3-small only.

    Args:
        role: ``"language"`` or ``"embeddings"``.
        model: the model name in the vendor's answer (``"gpt-4o-2024-08-06"``).
    Returns:
        A :class:`ModelVerdict`.
    """
    name = _DATE_SUFFIX.sub("", model.strip().lower())
    name = re.sub(r"^gpt-35", "gpt-3.5", name)  # Azure's spelling of gpt-3.5
    if role == "embeddings":
        return ModelVerdict(ok=name == "text-embedding-3-small")
    if name == "gpt-4":
        return ModelVerdict(
            ok=True,
            warning=(
                "The deployment answers as 'gpt-4', which is both GPT-4 Turbo and the older GPT-4 0613. "
                "In Microsoft Foundry, open the deployment and check that its model version is turbo-2024-04-09 "
                "(or 1106-Preview / 0125-Preview); if it is 0613 or 0314, deploy gpt-4o instead."
            ),
        )
    if any(pattern.match(name) for pattern in _LANGUAGE_OK):
        return ModelVerdict(ok=True)
    later = _LANGUAGE_LATER.match(name)
    if later and int(later.group(1)) >= 5:
        return ModelVerdict(ok=True)
    return ModelVerdict(ok=False)
