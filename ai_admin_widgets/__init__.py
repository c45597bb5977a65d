"""ai-admin-widgets: set up, check, change and remove the organization's OpenAI integration from JupyterLab.

Quick start::

    import ai_admin_widgets as aiw
    settings = aiw.AISettings()          # or aiw.Sandbox().start().settings() to practise
    settings.panel()                     # the AI Settings page

    from ai_admin_widgets import ai      # analysts: ai.chat(...), ai.embed([...]) through the saved integration

Names load on first use, so importing the package costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "AIClient": "ai",
    "AIDisabled": "ai",
    "AINotAllowed": "ai",
    "AIRequestFailed": "ai",
    "AISettings": "service",
    "AISettingsPanel": "widgets",
    "Sandbox": "sandbox",
    "Timeouts": "models",
    "Health": "health",
    "AIAdminError": "models",
    "ConcurrentChange": "models",
    "AzureDeployment": "models",
    "EntraID": "models",
    "AzureOpenAIIntegration": "models",
    "FailureCode": "models",
    "IntegrationStatus": "models",
    "KeyringUnavailable": "models",
    "KeyNotInThisKeyring": "models",
    "SavedKeyUnavailable": "models",
    "KEEP_SAVED_KEY": "models",
    "SettingsSnapshot": "models",
    "AuditEvent": "models",
    "AuditAction": "models",
    "Settings": "interface",
    "ModelCheck": "models",
    "ModelSummary": "models",
    "NotConfigured": "models",
    "OpenAIIntegration": "models",
    "PermissionDenied": "models",
    "Provider": "models",
    "StoreError": "models",
    "VerificationFailed": "models",
    "VerificationReport": "models",
    "Notice": "models",
    "field_errors": "models",
    "ValidationError": "models",
}

#: submodules reachable as attributes before they are imported (``aiw.ai.chat(...)``)
_SUBMODULES = ("ai",)

__all__ = [
    "KEEP_SAVED_KEY",
    "AIAdminError",
    "AIClient",
    "AIDisabled",
    "AINotAllowed",
    "AIRequestFailed",
    "AISettings",
    "AISettingsPanel",
    "AuditAction",
    "AuditEvent",
    "AzureDeployment",
    "AzureOpenAIIntegration",
    "ConcurrentChange",
    "EntraID",
    "FailureCode",
    "Health",
    "IntegrationStatus",
    "KeyNotInThisKeyring",
    "KeyringUnavailable",
    "ModelCheck",
    "ModelSummary",
    "NotConfigured",
    "Notice",
    "OpenAIIntegration",
    "PermissionDenied",
    "Provider",
    "Sandbox",
    "SavedKeyUnavailable",
    "Settings",
    "SettingsSnapshot",
    "StoreError",
    "Timeouts",
    "ValidationError",
    "VerificationFailed",
    "VerificationReport",
    "field_errors",
]
assert set(_EXPORTS) == set(__all__)  # one list to keep in step

if TYPE_CHECKING:
    from . import ai  # noqa: F401 (a submodule reached as an attribute)
    from .ai import AIClient, AIDisabled, AINotAllowed, AIRequestFailed
    from .health import Health
    from .interface import Settings
    from .models import (
        KEEP_SAVED_KEY,
        AIAdminError,
        AuditAction,
        AuditEvent,
        AzureDeployment,
        AzureOpenAIIntegration,
        ConcurrentChange,
        EntraID,
        FailureCode,
        IntegrationStatus,
        KeyNotInThisKeyring,
        KeyringUnavailable,
        ModelCheck,
        ModelSummary,
        NotConfigured,
        Notice,
        OpenAIIntegration,
        PermissionDenied,
        Provider,
        SavedKeyUnavailable,
        SettingsSnapshot,
        StoreError,
        Timeouts,
        VerificationFailed,
        VerificationReport,
        field_errors,
    )
    from .sandbox import Sandbox
    from .service import AISettings
    from .widgets import AISettingsPanel


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ai_admin_widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
