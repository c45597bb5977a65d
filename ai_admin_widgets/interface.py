"""The Settings interface: everything the panel, ``ai-admin`` and ``ai`` may ask of the AI Settings.

One :class:`typing.Protocol` with two implementations: :class:`~ai_admin_widgets.AISettings`
(this machine's store and keyring) and, on a JupyterHub, the AI gateway's client. What crosses it
is typed (:mod:`~ai_admin_widgets.models`' view models), never a ``dict``, and never a key except
on the way in (an integration to test or save) and in the routes of :meth:`Settings.ai_routes`,
which hold what an AI call must send.

The widgets, the CLI and :mod:`~ai_admin_widgets.ai` import only this module and ``models``;
:func:`open_settings` makes the implementation for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from datetime import date

    from .models import (
        AccessLists,
        AdminCheck,
        AuditEvent,
        AzureOpenAIFields,
        AzureOpenAIIntegration,
        BudgetsView,
        IntegrationStatus,
        ModelCheck,
        OpenAIFields,
        OpenAIIntegration,
        SettingsSnapshot,
        Timeouts,
        UsageReport,
        VerificationReport,
    )
    from .transport import AIRoutes
    from .widgets import AISettingsPanel

__all__ = ["Settings", "open_settings"]


@runtime_checkable
class Settings(Protocol):
    """The organization's AI Settings, as every consumer sees them.

    Errors are those of :mod:`~ai_admin_widgets.models`: ``PermissionDenied`` (not an admin),
    ``NotConfigured``, ``VerificationFailed`` (``.report``), ``ConcurrentChange``,
    ``SavedKeyUnavailable``, ``KeyringUnavailable`` and ``StoreError`` (the message says what to
    do), ``TypeError`` / ``ValueError`` for arguments of the wrong kind.
    """

    @property
    def user(self) -> str:
        """Who the calls act as (on a hub: the token's owner, as the hub says)."""
        ...

    @property
    def openai_base_url(self) -> str:
        """The Base URL a new OpenAI integration starts from."""
        ...

    @property
    def timeouts(self) -> Timeouts:
        """The limits of authentication and AI calls, in seconds."""
        ...

    # -- reading (anyone) ---------------------------------------------------- #

    def snapshot(self) -> SettingsSnapshot:
        """Everything the AI Settings page shows, read at once (one read of the record)."""
        ...

    def status(self) -> IntegrationStatus:
        """The integration's state, safe to show anyone."""
        ...

    def saved_fields(self) -> OpenAIFields | AzureOpenAIFields | None:
        """The saved integration without its keys, or None."""
        ...

    def access_lists(self) -> AccessLists:
        """The admins list and the allow-lists."""
        ...

    def admin_check(self) -> AdminCheck:
        """Whether the current user may configure, and why not."""
        ...

    def is_admin(self) -> bool:
        """``admin_check().admin``."""
        ...

    def can_use_ai(self, user: str | None = None) -> bool:
        """Whether ``user`` (default: the current user) may use AI now."""
        ...

    def history(self, limit: int | None = None, *, before: int | None = None) -> list[AuditEvent]:
        """The newest ``limit`` audit events (all when None), oldest first; ``before``: those older than that event ``id``."""
        ...

    def fingerprint(self) -> Hashable:
        """A cheap token that changes whenever the saved settings change (for caches)."""
        ...

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every change made through this object; returns the unsubscriber."""
        ...

    def usage_report(self, since: date | None = None, by: str = "user") -> UsageReport:
        """The AI calls through the gateway since ``since`` (UTC; default the last 30 days) by user, group or model.

        For those who may configure; on one machine (no gateway) it raises ``NotOnGateway``.
        """
        ...

    # -- authenticating and changing (admins) ------------------------------- #

    def test(self, integration: OpenAIIntegration | AzureOpenAIIntegration | None = None) -> VerificationReport:
        """Authenticate ``integration`` (None: what is saved, and record the outcome); store nothing else."""
        ...

    async def test_async(
        self, integration: OpenAIIntegration | AzureOpenAIIntegration | None = None
    ) -> VerificationReport:
        """:meth:`test` without blocking the event loop."""
        ...

    def save(
        self, integration: OpenAIIntegration | AzureOpenAIIntegration, *, expected_revision: int | None = None
    ) -> IntegrationStatus:
        """Authenticate, then store all-or-nothing; raises ``VerificationFailed`` when a model check fails."""
        ...

    async def save_async(
        self,
        integration: OpenAIIntegration | AzureOpenAIIntegration,
        *,
        on_check: Callable[[ModelCheck], None] | None = None,
        expected_revision: int | None = None,
    ) -> IntegrationStatus:
        """:meth:`save` without blocking the event loop; ``on_check`` gets each model's check as it ends."""
        ...

    def remove(self) -> list[str]:
        """Remove the integration (AI functionality disabled); returns what it left undone, one sentence each."""
        ...

    def set_allowed(
        self, users: str | Iterable[str] | None = None, groups: str | Iterable[str] | None = None
    ) -> AccessLists:
        """Set who may use AI (both empty: everyone)."""
        ...

    def add_admin(self, user: str) -> AccessLists:
        """Add ``user`` to the admins list."""
        ...

    def remove_admin(self, user: str) -> AccessLists:
        """Take ``user`` off the admins list."""
        ...

    # -- budgets (the AI gateway only) ---------------------------------------- #

    def budgets(self) -> BudgetsView:
        """The budgets and limits, each with what its period used (``NotOnGateway`` off a hub's gateway)."""
        ...

    def set_budget(self, scope: str, name: str, period: str, limit: int) -> BudgetsView:
        """Add or change one budget (tokens per UTC day or month, or requests per minute); those who configure only."""
        ...

    def remove_budget(self, scope: str, name: str, period: str) -> BudgetsView:
        """Remove one budget; those who configure only."""
        ...

    # -- AI calls ----------------------------------------------------------- #

    def ai_routes(self) -> AIRoutes:
        """Where the current user's AI calls go and what they carry (they hold a credential: never show them)."""
        ...

    def panel(self) -> AISettingsPanel:
        """The AI Settings page bound to these settings."""
        ...


def open_settings(*, sandbox: str | os.PathLike[str] | None = None, **options: Any) -> Settings:
    """The organization's settings, as the panel's callers, ``ai-admin`` and ``ai`` should open them.

    Args:
        sandbox: a running :class:`~ai_admin_widgets.Sandbox`'s folder (``sandbox.folder``): its
            practice store and keyring instead of the organization's.
        **options: passed on to :class:`~ai_admin_widgets.AISettings` (``home``, ``stale_after``, ...);
            options given as None are left out.
    Returns:
        :class:`~ai_admin_widgets.client.GatewaySettings` when ``$AI_ADMIN_GATEWAY_URL`` is set (a
        user's server on a JupyterHub with the AI gateway) and neither a sandbox nor any option
        but ``stale_after`` is given; otherwise :class:`~ai_admin_widgets.AISettings`.
    Raises:
        ValueError: ``sandbox`` is not a sandbox's folder, or comes with ``home``; the gateway's
            address is set but ``$JUPYTERHUB_API_TOKEN`` is not.
    """
    options = {name: value for name, value in options.items() if value is not None}
    if sandbox is None and not options.keys() - {"stale_after"} and os.environ.get("AI_ADMIN_GATEWAY_URL"):
        from .client import GatewaySettings

        return GatewaySettings(stale_after=options.get("stale_after"))
    if sandbox is not None:
        if "home" in options:
            raise ValueError("Give either a sandbox's folder or a store's folder (home), not both.")
        from .sandbox import practice_settings

        return practice_settings(sandbox, **options)
    from .service import AISettings

    return AISettings(**options)
