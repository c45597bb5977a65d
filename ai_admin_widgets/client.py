"""GatewaySettings: the Settings interface over HTTP to the AI gateway, for users' servers on a JupyterHub.

Chosen by :func:`~ai_admin_widgets.interface.open_settings` (and ``aiw.AISettings()``) when
``$AI_ADMIN_GATEWAY_URL`` is set. Every request carries the user's own JupyterHub token
(``$JUPYTERHUB_API_TOKEN``) as ``Authorization: token …``; the gateway decides with the hub's
roles and the allow-list, and keeps the keys. A key typed in the panel travels once, in the
body of ``/api/test`` or ``/api/save``; no answer holds one, and :meth:`GatewaySettings.ai_routes`
routes AI calls to the gateway's ``/v1`` with the hub token, never a provider's key.

Errors are those of :class:`~ai_admin_widgets.AISettings`, rebuilt from the gateway's answer
(``PermissionDenied``, ``NotConfigured``, ``VerificationFailed`` with its report,
``ConcurrentChange``, ``SavedKeyUnavailable``, ``KeyringUnavailable``, ``StoreError``,
``ValueError``); a gateway that cannot be reached, or a hub that cannot identify the user, is
:class:`GatewayUnavailable` (a ``StoreError``). Reads that the panel renders (``snapshot``,
``admin_check``, ``can_use_ai`` for oneself) answer "not available" with the reason instead of
raising. The history, and whether another user may use AI, are for users who may configure:
others get ``PermissionDenied`` with the reason (the panel shows it in place of the history).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

import httpx
from pydantic import SecretStr, TypeAdapter

from .gateway.wire import snapshot_data, status_data
from .models import (
    AccessLists,
    AdminCheck,
    AuditEvent,
    AzureOpenAIFields,
    AzureOpenAIIntegration,
    BudgetsView,
    IntegrationStatus,
    KeyringState,
    ModelCheck,
    OpenAIFields,
    OpenAIIntegration,
    Role,
    SavedFields,
    SettingsSnapshot,
    StoreError,
    Timeouts,
    UsageReport,
    VerificationReport,
)

if TYPE_CHECKING:
    from .transport import AIRoutes
    from .widgets import AISettingsPanel

__all__ = ["GATEWAY_URL_ENV", "GatewaySettings", "GatewayUnavailable"]

#: The variable that points users' servers at the gateway (set by ``c.Spawner.environment``).
GATEWAY_URL_ENV = "AI_ADMIN_GATEWAY_URL"
#: Seconds a read may take; a test or save authenticates from the gateway, so it gets the checks' time and more.
READ_TIMEOUT = 30.0
CHANGE_TIMEOUT = 180.0
#: Seconds :meth:`GatewaySettings.fingerprint` keeps the gateway's answer (ai.chat asks it before every call).
#: Shorter than the panel's poll (every 2 s while the page is visible), so each poll asks the gateway and a
#: change made elsewhere shows within about 2 seconds (it was 5: up to 7 seconds).
FINGERPRINT_SECONDS = 1.5
_SAVED_FIELDS: TypeAdapter[OpenAIFields | AzureOpenAIFields] = TypeAdapter(SavedFields)


class GatewayUnavailable(StoreError):
    """The AI gateway cannot be reached, or cannot identify the user now; the message says what to do."""


class GatewaySettings:
    """The organization's AI Settings, kept by the AI gateway of this JupyterHub.

    Args:
        url: the gateway's address, ``http://<host>:<port>/services/<name>``; default ``$AI_ADMIN_GATEWAY_URL``.
        token: the user's JupyterHub token; default ``$JUPYTERHUB_API_TOKEN``.
        stale_after: as for :class:`~ai_admin_widgets.AISettings` (default: the gateway's).
    Raises:
        ValueError: no URL or no token (the message says which variable to set).
    """

    def __init__(
        self, url: str | None = None, *, token: str | None = None, stale_after: timedelta | None = None
    ) -> None:
        url = (url or os.environ.get(GATEWAY_URL_ENV, "")).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Set {GATEWAY_URL_ENV} to the AI gateway's http(s) address (ask the hub's admin).")
        token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not token:
            raise ValueError("JUPYTERHUB_API_TOKEN is not set, so the AI gateway cannot tell who you are.")
        if stale_after is not None and (not isinstance(stale_after, timedelta) or stale_after <= timedelta(0)):
            raise ValueError(f"stale_after must be a positive timedelta, not {stale_after!r}.")
        self.url = url
        self._token = SecretStr(token)
        self._stale_after = stale_after
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._user: str | None = os.environ.get("JUPYTERHUB_USER") or None
        self._base_url: str | None = None
        self._fingerprint: tuple[float, Hashable] | None = None

    def __repr__(self) -> str:
        return f"GatewaySettings(url={self.url!r})"

    # -- plumbing --------------------------------------------------------------- #

    def _http(self) -> httpx.Client:
        if self._client is None:
            from .transport import make_sync_client

            with self._lock:
                if self._client is None:
                    self._client = make_sync_client(Timeouts(connect=5.0, check=READ_TIMEOUT))
        return self._client

    def _call(
        self, method: str, path: str, *, body: Any = None, params: Any = None, timeout: float = READ_TIMEOUT
    ) -> Any:
        from .gateway.wire import error_from_body

        headers = {"authorization": f"token {self._token.get_secret_value()}", "accept": "application/json"}
        try:
            response = self._http().request(
                method, f"{self.url}/api/{path}", json=body, params=params, headers=headers, timeout=timeout
            )
        except httpx.TimeoutException:
            raise GatewayUnavailable(
                f"The AI gateway at {self.url} did not answer within {timeout:g} seconds; try again, or ask the hub's admin."
            ) from None
        except httpx.HTTPError as error:
            raise GatewayUnavailable(
                f"Cannot reach the AI gateway at {self.url} ({type(error).__name__}); ask the hub's admin to check "
                "that it is running."
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 200:
            return answer
        problem = answer.get("error") if isinstance(answer, dict) else None
        kind = problem.get("type") if isinstance(problem, dict) else None
        if kind == "HubUnavailable" or (response.status_code in (502, 503, 504) and kind is None):
            message = problem.get("message") if isinstance(problem, dict) else None
            raise GatewayUnavailable(
                str(
                    message
                    or f"The AI gateway at {self.url} answered HTTP {response.status_code}; try again in a minute."
                )
            )
        raise error_from_body(response.status_code, answer, self.url)

    def _notify(self) -> None:
        self._fingerprint = None
        for callback in list(self._listeners):
            callback()

    def _stale(self, status: IntegrationStatus) -> IntegrationStatus:
        if self._stale_after is None:
            return status
        return status.model_copy(update={"stale_after_seconds": self._stale_after.total_seconds()})

    # -- who ---------------------------------------------------------------------- #

    @property
    def user(self) -> str:
        """The user the gateway knows this token by (``$JUPYTERHUB_USER``, else asked once)."""
        if self._user is None:
            self._user = self.snapshot().user
        return self._user

    @property
    def openai_base_url(self) -> str:
        """The Base URL the gateway offers for a new OpenAI integration (asked once)."""
        if self._base_url is None:
            self._base_url = self.snapshot().openai_base_url
        return self._base_url

    @property
    def timeouts(self) -> Timeouts:
        """The limits of authentication (the gateway applies its own; these are the defaults)."""
        return Timeouts()

    # -- reading ------------------------------------------------------------------ #

    def snapshot(self) -> SettingsSnapshot:
        """Everything the AI Settings page shows; a gateway that cannot answer is a snapshot whose ``problem`` says so."""
        try:
            snapshot = SettingsSnapshot.model_validate(snapshot_data(self._call("GET", "snapshot")))
        except GatewayUnavailable as error:
            now = datetime.now(timezone.utc)
            return SettingsSnapshot(
                status=IntegrationStatus(configured=False, keyring_backend="the AI gateway's", checked_at=now),
                user=self._user or os.environ.get("JUPYTERHUB_USER") or "",
                admin=AdminCheck(False, "gateway", str(error)),
                access=AccessLists(on_hub=True),
                may_use_ai=False,
                keyring=KeyringState(backend="the AI gateway's"),
                problem=str(error),
            )
        self._user, self._base_url = snapshot.user, snapshot.openai_base_url
        return snapshot.model_copy(update={"status": self._stale(snapshot.status)})

    def status(self) -> IntegrationStatus:
        """The integration's state, as the gateway holds it. Raises GatewayUnavailable."""
        return self._stale(IntegrationStatus.model_validate(status_data(self._call("GET", "status"))))

    def saved_fields(self) -> OpenAIFields | AzureOpenAIFields | None:
        """The saved integration without its keys, or None."""
        answer = self._call("GET", "saved-fields")
        return None if answer is None else _SAVED_FIELDS.validate_python(answer)

    def access_lists(self) -> AccessLists:
        """The admins list and the allow-lists (``on_hub`` is True: the hub's roles decide who is an admin)."""
        return AccessLists.model_validate(self._call("GET", "access"))

    def admin_check(self) -> AdminCheck:
        """Whether this user may configure, and why not; an unreachable gateway is a non-admin with the reason."""
        try:
            return AdminCheck.model_validate(self._call("GET", "admin-check"))
        except GatewayUnavailable as error:
            return AdminCheck(False, "gateway", str(error))

    def is_admin(self) -> bool:
        """``admin_check().admin``."""
        return self.admin_check().admin

    def can_use_ai(self, user: str | None = None) -> bool:
        """Whether ``user`` (default: this user) may use AI now; False when the gateway cannot say.

        Raises:
            PermissionDenied: ``user`` is another user and this one may not configure (the gateway tells
                only those who may, so False never stands for "not allowed to ask").
        """
        try:
            return bool(self._call("GET", "can-use-ai", params={"user": user} if user else None)["allowed"])
        except (GatewayUnavailable, KeyError, TypeError):
            return False

    def history(self, limit: int | None = None, *, before: int | None = None) -> list[AuditEvent]:
        """The newest ``limit`` audit events (when None, the gateway's default page: 1,000), oldest first, each with its ``id``.

        Args:
            limit: how many at most (the gateway answers 1 to 10,000).
            before: only events older than the one with this ``id`` (the next page back: pass the first
                event's ``id`` of the page before).
        Raises:
            ValueError: ``limit`` or ``before`` is not a whole number of 1 or more.
            PermissionDenied: this user may not configure (on a hub the history is theirs only); the message says so.
        """
        for name, value in (("limit", limit), ("before", before)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number of 1 or more, not {value!r}.")
        params = {name: value for name, value in (("limit", limit), ("before", before)) if value}
        answer = self._call("GET", "history", params=params or None)
        return [event for event in map(AuditEvent.parse, answer or []) if event is not None]

    def fingerprint(self) -> Hashable:
        """A token that changes when the saved settings change; the gateway is asked at most every 1.5 seconds."""
        cached = self._fingerprint
        if cached is not None and time.monotonic() - cached[0] < FINGERPRINT_SECONDS:
            return cached[1]
        value = self._call("GET", "fingerprint").get("fingerprint")
        value = tuple(value) if isinstance(value, list) else value
        self._fingerprint = (time.monotonic(), value)
        return value

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every change made through this object; returns the unsubscriber."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def usage_report(self, since: date | None = None, by: str = "user") -> UsageReport:
        """The gateway's usage report (``api/usage-report``): tokens and calls per UTC day, by user, group or model.

        Args:
            since: the first day counted (default: the last 30 days, today included).
            by: ``"user"``, ``"group"`` or ``"model"``.
        Raises:
            ValueError: ``since`` is after today or over a year ago, or ``by`` is not one of the three.
            PermissionDenied: this user may not configure (the report is theirs only).
            GatewayUnavailable: the gateway cannot be reached.
            StoreError: the gateway's database cannot be read (the message says why).
        """
        from .models import check_usage_since, parse_usage_by

        params = {"by": parse_usage_by(by)}
        if check_usage_since(since) is not None:
            params["since"] = since.isoformat()  # type: ignore[union-attr]
        return UsageReport.model_validate(self._call("GET", "usage-report", params=params))

    # -- authenticating and changing ---------------------------------------------- #

    def test(self, integration: OpenAIIntegration | AzureOpenAIIntegration | None = None) -> VerificationReport:
        """Authenticate ``integration`` from the gateway (None: what is saved, recorded there); store nothing else."""
        from .gateway.wire import integration_to_json

        body = {"integration": None if integration is None else integration_to_json(_checked(integration, "test"))}
        report = VerificationReport.model_validate(self._call("POST", "test", body=body, timeout=CHANGE_TIMEOUT))
        if integration is None:
            self._notify()
        return report

    async def test_async(
        self, integration: OpenAIIntegration | AzureOpenAIIntegration | None = None
    ) -> VerificationReport:
        """:meth:`test` without blocking the event loop (the request runs on a thread)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.test, integration)

    def save(
        self, integration: OpenAIIntegration | AzureOpenAIIntegration, *, expected_revision: int | None = None
    ) -> IntegrationStatus:
        """Authenticate from the gateway, then store there all-or-nothing; raises ``VerificationFailed`` with the report."""
        from .gateway.wire import integration_to_json

        body = {
            "integration": integration_to_json(_checked(integration, "save")),
            "expected_revision": expected_revision,
        }
        status = IntegrationStatus.model_validate(
            status_data(self._call("POST", "save", body=body, timeout=CHANGE_TIMEOUT))
        )
        self._notify()
        return self._stale(status)

    async def save_async(
        self,
        integration: OpenAIIntegration | AzureOpenAIIntegration,
        *,
        on_check: Callable[[ModelCheck], None] | None = None,
        expected_revision: int | None = None,
    ) -> IntegrationStatus:
        """:meth:`save` without blocking the event loop; ``on_check`` gets each model's check when the gateway answers."""
        from .models import VerificationFailed

        loop = asyncio.get_running_loop()
        try:
            status = await loop.run_in_executor(
                None, lambda: self.save(integration, expected_revision=expected_revision)
            )
        except VerificationFailed as failed:
            if on_check is not None:
                for check in failed.report.checks:
                    on_check(check)
            raise
        if on_check is not None:
            for model in status.models:
                from .models import FailureCode

                on_check(
                    ModelCheck(
                        role=model.role, ok=True, code=FailureCode.OK, message="Authenticated.", model=model.model
                    )
                )
        return status

    def remove(self) -> list[str]:
        """Remove the integration at the gateway: AI functionality disabled for everyone.

        Returns:
            What the removal left undone at the gateway, one sentence each (never a key).
        """
        answer = self._call("POST", "remove", timeout=CHANGE_TIMEOUT)
        self._notify()
        undone = answer.get("undone") if isinstance(answer, dict) else None
        return [str(note) for note in undone] if isinstance(undone, list) else []

    def set_allowed(
        self, users: str | Iterable[str] | None = None, groups: str | Iterable[str] | None = None
    ) -> AccessLists:
        """Set who may use AI (both empty: everyone); names are checked by the gateway."""
        body = {
            "users": users if users is None or isinstance(users, str) else list(users),
            "groups": groups if groups is None or isinstance(groups, str) else list(groups),
        }
        lists = AccessLists.model_validate(self._call("POST", "access", body=body))
        self._notify()
        return lists

    def add_admin(self, user: str) -> AccessLists:
        """Refused by the gateway: on a hub, hub admins and holders of ``custom:ai-admin:configure`` configure.

        Raises:
            AdminsDecidedByHub: always, from the gateway (its message says how to grant configuring on the hub).
            PermissionDenied: the caller may not configure.
        """
        lists = AccessLists.model_validate(self._call("POST", "admins", body={"add": user}))
        self._notify()
        return lists

    def remove_admin(self, user: str) -> AccessLists:
        """Refused by the gateway, as :meth:`add_admin` is (configuring is taken away on the hub).

        Raises:
            AdminsDecidedByHub: always, from the gateway.
            PermissionDenied: the caller may not configure.
        """
        lists = AccessLists.model_validate(self._call("POST", "admins", body={"remove": user}))
        self._notify()
        return lists

    # -- budgets ---------------------------------------------------------------------- #

    def budgets(self) -> BudgetsView:
        """The budgets and limits with what each period used: all of them for those who may configure, for others
        the ones that count their calls."""
        return BudgetsView.model_validate(self._call("GET", "budgets"))

    def set_budget(self, scope: str, name: str, period: str, limit: int) -> BudgetsView:
        """Add or change one budget; returns them all.

        Args:
            scope: ``user``, ``group`` or ``organization``.
            name: the hub user (``*``: each user without a budget of their own) or group; empty for the organization.
            period: ``day`` or ``month`` (tokens, UTC) or ``minute`` (requests; users only).
            limit: the most tokens (requests) per period.
        Raises:
            ValueError: a part is wrong (checked here and by the gateway); the message names it.
            PermissionDenied: this user may not configure.
        """
        from .models import checked_budget

        budget = checked_budget(scope, name, period, limit)
        body = {"set": budget.model_dump(include={"scope", "name", "period", "limit"})}
        view = BudgetsView.model_validate(self._call("POST", "budgets", body=body))
        self._notify()
        return view

    def remove_budget(self, scope: str, name: str, period: str) -> BudgetsView:
        """Remove one budget; returns those left.

        Raises:
            ValueError: a part is wrong, or there is no such budget.
            PermissionDenied: this user may not configure.
        """
        from .models import checked_budget

        budget = checked_budget(scope, name, period, 1)
        body = {"remove": budget.model_dump(include={"scope", "name", "period"})}
        view = BudgetsView.model_validate(self._call("POST", "budgets", body=body))
        self._notify()
        return view

    # -- AI calls ------------------------------------------------------------------- #

    def ai_routes(self) -> AIRoutes:
        """Routes to the gateway's ``/v1`` for this user, carrying the hub token (never a provider's key)."""
        import httpx as _httpx

        from .models import CheckTarget, Provider
        from .transport import AIRoutes, Route, _Headers

        answer = self._call("GET", "ai-routes")
        recheck = float(answer.get("recheck_after") or 30.0)
        if not answer.get("configured"):
            return AIRoutes(configured=False, allowed=False, recheck_after=recheck)
        if not answer.get("allowed"):
            return AIRoutes(configured=True, allowed=False, recheck_after=recheck)
        routes = {}
        for role, operation in (("language", "chat/completions"), ("embeddings", "embeddings")):
            role = cast(Role, role)
            name = str(answer["models"][role])
            url = f"{self.url}/v1/{operation}"
            headers = _Headers(
                {"authorization": f"token {self._token.get_secret_value()}", "content-type": "application/json"}
            )
            target = CheckTarget(
                role=role, provider=Provider.OPENAI, url=url, field_prefix="", deployment_id=None, model=name
            )
            routes[role] = Route(Provider.OPENAI, _httpx.URL(url), headers, {"model": name}, self._token, target)
        return AIRoutes(configured=True, allowed=True, routes=routes, recheck_after=recheck)

    def panel(self) -> AISettingsPanel:
        """The AI Settings page bound to the gateway's settings."""
        from .widgets import AISettingsPanel

        return AISettingsPanel(self)

    def close(self) -> None:
        """Close the connection pool."""
        client, self._client = self._client, None
        if client is not None:
            client.close()


def _checked(integration: Any, method: str) -> OpenAIIntegration | AzureOpenAIIntegration:
    if not isinstance(integration, (OpenAIIntegration, AzureOpenAIIntegration)):
        raise TypeError(
            f"{method}() takes an OpenAIIntegration or an AzureOpenAIIntegration, not {type(integration).__name__}."
        )
    return integration
