"""What crosses the wire between the AI gateway and its clients: integrations inward, errors outward.

Pure (models only), so :mod:`~ai_admin_widgets.client` uses it without tornado or jupyterhub.

An integration travels as its public fields with each key slot holding the key's text, or
``{"keep_saved": true}`` for :data:`~ai_admin_widgets.models.KEEP_SAVED_KEY` (only the gateway
resolves it). Errors of the admin API travel as ``{"error": {"type", "message", ...}}``, where
``type`` names the :mod:`~ai_admin_widgets.models` error, with ``report`` (VerificationFailed),
``field`` (SavedKeyUnavailable) or ``field_errors`` (ValidationError) beside it.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, ValidationError

from ..models import (
    AdminsDecidedByHub,
    AIAdminError,
    AzureOpenAIIntegration,
    ConcurrentChange,
    KeyringUnavailable,
    NotConfigured,
    OpenAIIntegration,
    PermissionDenied,
    SavedKey,
    SavedKeyUnavailable,
    StoreError,
    VerificationFailed,
    VerificationReport,
    field_errors,
)

__all__ = [
    "KEEP",
    "error_body",
    "error_from_body",
    "error_status",
    "integration_from_json",
    "integration_to_json",
    "snapshot_data",
    "status_data",
]

#: What a key slot holds on the wire to keep the saved key.
KEEP = {"keep_saved": True}


def integration_to_json(integration: OpenAIIntegration | AzureOpenAIIntegration) -> dict[str, Any]:
    """``integration`` as the body part of ``/api/test`` and ``/api/save``; it holds the keys (send it only inward)."""
    data: dict[str, Any] = {
        name: dict(value) if isinstance(value, dict) else value for name, value in integration.public_fields().items()
    }
    for slot, key in integration.secrets().items():
        *path, leaf = slot.split(".")
        target = data
        for part in path:
            target = target.setdefault(part, {})
        target[leaf] = dict(KEEP) if isinstance(key, SavedKey) else key.get_secret_value()
    return data


def integration_from_json(data: Any) -> OpenAIIntegration | AzureOpenAIIntegration:
    """The integration a request body holds, validated as the panel validates it.

    Raises:
        ValidationError: a field breaks its rule (the message never repeats the input).
        TypeError: ``data`` is not a JSON object.
    """
    if not isinstance(data, dict):
        raise TypeError("integration must be a JSON object with a provider and its fields.")
    copied: dict[str, Any] = {name: dict(value) if isinstance(value, dict) else value for name, value in data.items()}
    for part in (copied, copied.get("language_model"), copied.get("embeddings_model")):
        if isinstance(part, dict) and part.get("api_key") == KEEP:
            part["api_key"] = SavedKey("")
        entra = part.get("entra_id") if isinstance(part, dict) else None
        if isinstance(part, dict) and isinstance(entra, dict):
            part["entra_id"] = entra = dict(entra)
            if entra.get("client_secret") == KEEP:
                entra["client_secret"] = SavedKey("")
    provider = copied.get("provider")
    if provider == "openai":
        return OpenAIIntegration.model_validate(copied)
    if provider == "azure_openai":
        return AzureOpenAIIntegration.model_validate(copied)
    raise TypeError("integration's provider must be 'openai' or 'azure_openai'.")


#: HTTP status of each error kind (the first class in an exception's MRO that is listed).
_STATUS: dict[type[BaseException], int] = {
    PermissionDenied: 403,
    NotConfigured: 409,
    AdminsDecidedByHub: 409,
    VerificationFailed: 422,
    ConcurrentChange: 409,
    SavedKeyUnavailable: 422,
    ValidationError: 422,
    ValueError: 422,
    TypeError: 400,
    KeyringUnavailable: 503,
    StoreError: 500,
}


def error_status(error: BaseException) -> int:
    """The HTTP status the admin API answers ``error`` with (500 for a kind not listed)."""
    for kind in type(error).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return 500


def error_body(error: BaseException) -> dict[str, Any]:
    """The JSON body for ``error``: its type, its message, and what goes with it (never a key)."""
    if isinstance(error, ValidationError):
        fields = field_errors(error)
        message = "; ".join(f"{path}: {text}" for path, text in fields.items())
        return {"error": {"type": "ValidationError", "message": message, "field_errors": fields}}
    known = isinstance(error, (AIAdminError, ValueError, TypeError))
    body: dict[str, Any] = {
        "type": type(error).__name__ if known else "InternalError",
        "message": str(error) if known else f"The AI gateway failed ({type(error).__name__}); see its log.",
    }
    if isinstance(error, VerificationFailed):
        body["report"] = error.report.model_dump(mode="json")
    if isinstance(error, SavedKeyUnavailable):
        body["field"] = error.field
    return {"error": body}


_KINDS: dict[str, type[Exception]] = {
    "PermissionDenied": PermissionDenied,
    "NotConfigured": NotConfigured,
    "AdminsDecidedByHub": AdminsDecidedByHub,
    "ConcurrentChange": ConcurrentChange,
    "KeyringUnavailable": KeyringUnavailable,
    "StoreError": StoreError,
    "ValueError": ValueError,
    "ValidationError": ValueError,
    "TypeError": TypeError,
}


def error_from_body(status: int, body: Any, where: str) -> Exception:
    """The exception an admin API answer of ``status`` stands for, as :class:`~ai_admin_widgets.AISettings` raises it.

    Args:
        status: the HTTP status (not 2xx).
        body: the parsed JSON answer (anything).
        where: the gateway's address, for messages of answers that are not the gateway's.
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("type"), str):
        return StoreError(f"The AI gateway at {where} answered HTTP {status} without saying why; ask the hub's admin.")
    kind, message = error["type"], str(error.get("message") or "")
    if kind == "VerificationFailed" and isinstance(error.get("report"), dict):
        return VerificationFailed(VerificationReport.model_validate(error["report"]))
    if kind == "SavedKeyUnavailable":
        return SavedKeyUnavailable(message, field=str(error.get("field") or "api_key"))
    if kind in ("NotAuthenticated", "Forbidden"):
        return PermissionDenied(message)
    return _KINDS.get(kind, StoreError)(message)


def status_data(data: Any) -> Any:
    """An IntegrationStatus answer without its computed fields (``stale``, ``health``, ...), so it validates again."""
    from ..models import IntegrationStatus

    if not isinstance(data, dict):
        return data
    return {name: value for name, value in data.items() if name not in IntegrationStatus.model_computed_fields}


def snapshot_data(data: Any) -> Any:
    """A SettingsSnapshot answer, its status without computed fields."""
    if isinstance(data, dict) and "status" in data:
        return {**data, "status": status_data(data["status"])}
    return data


def secret(text: str) -> SecretStr:
    """``text`` as a ``SecretStr`` (tokens are kept that way, so no repr shows them)."""
    return SecretStr(text)
