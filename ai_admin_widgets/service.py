"""AI Settings: the one place where validate → authenticate → store → audit is sequenced."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from keyring.backend import KeyringBackend
from pydantic import SecretStr

from .access import ADMIN_REQUIRED, AccessPolicy, AdminCheck, clean_names, current_user
from .health import DEFAULT_STALE_AFTER, STALE_AFTER_ENV, duration_text, parse_stale_after_days
from .models import (
    DEFAULT_OPENAI_BASE_URL,
    ROLES,
    AccessLists,
    AuditEvent,
    AzureOpenAIFields,
    AzureOpenAIIntegration,
    EntraID,
    IntegrationStatus,
    KeyringState,
    KeyringUnavailable,
    ModelSummary,
    NotConfigured,
    OpenAIFields,
    OpenAIIntegration,
    PermissionDenied,
    Role,
    SavedKey,
    SavedKeyUnavailable,
    SettingsSnapshot,
    StoreError,
    VerificationFailed,
    VerificationReport,
    refusal_words,
)
from .normalize import split_azure_endpoint
from .store import (
    SERVICE_NAME,
    KeyNotInThisKeyring,
    SettingsRecord,
    SettingsStore,
    backend_name,
    default_home,
    default_keyring,
    prepare_keyring,
)

if TYPE_CHECKING:
    from datetime import date

    import httpcore

    from .models import Timeouts, UsageReport
    from .transport import AIRoutes
    from .widgets import AISettingsPanel

__all__ = ["AISettings"]

AnyIntegration = OpenAIIntegration | AzureOpenAIIntegration


class AISettings:
    """The organization's AI Settings: status, test, save and remove the OpenAI integration.

    Args:
        home: the store's folder; default ``$AI_ADMIN_HOME`` or the platform's user data folder.
        keyring: the keyring backend instance for the keys; default: the system's, checked by
            :func:`~ai_admin_widgets.store.default_keyring` when a key is first needed.
        user: the user name to act as; default: :func:`~ai_admin_widgets.access.current_user`.
        timeouts: the authentication limits (:class:`~ai_admin_widgets.verify.Timeouts`).
        access: who may change the integration (:class:`~ai_admin_widgets.access.AccessPolicy`).
        openai_base_url: the Base URL the panel offers for a new OpenAI integration
            (default ``https://api.openai.com/v1``; the sandbox passes its own).
        stale_after: how old the last authentication may be before :meth:`status` calls the
            integration stale, as a ``timedelta``; default: ``$AI_ADMIN_STALE_AFTER_DAYS``
            days, or 7 days (an unusable value of that variable is reported in the status's
            warnings, and 7 days apply).
        clock: returns the current time as an aware UTC ``datetime``; :meth:`status` measures
            "how long ago" and staleness with it (default: the system clock). Records and
            the audit log are always stamped with the system clock.
        network_backend: what opens the connections of Save's and Test's checks (an
            ``httpcore.AsyncNetworkBackend``; default httpcore's). The AI gateway passes its
            :class:`~ai_admin_widgets.gateway.addresses.PinnedBackend`, so a check connects only
            to an address it may call.
        store_factory: makes the store from a keyring backend (or None, for a store that only reads);
            default: a :class:`~ai_admin_widgets.store.SettingsStore` in ``home``. The AI gateway passes
            one that makes a :class:`~ai_admin_widgets.gateway.dbstore.DatabaseSettingsStore` (its
            database, shared by its replicas).

    On a user's server of a JupyterHub with the AI gateway (``$AI_ADMIN_GATEWAY_URL`` set),
    ``AISettings()`` with no store of its own (no ``home``, ``keyring`` or other argument but
    ``stale_after``) is the gateway's settings, a :class:`~ai_admin_widgets.client.GatewaySettings`
    (the same interface; the keys stay in the gateway), so notebooks and the panel work unchanged.

    Raises:
        ValueError: ``stale_after`` is not a positive length of time.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> AISettings:
        if (
            cls is AISettings
            and not args
            and not kwargs.keys() - {"stale_after"}
            and os.environ.get("AI_ADMIN_GATEWAY_URL")
        ):
            from .client import GatewaySettings

            return GatewaySettings(stale_after=kwargs.get("stale_after"))  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(
        self,
        home: str | Path | None = None,
        keyring: KeyringBackend | None = None,
        *,
        user: str | None = None,
        timeouts: Timeouts | None = None,
        access: AccessPolicy | None = None,
        openai_base_url: str = DEFAULT_OPENAI_BASE_URL,
        stale_after: timedelta | None = None,
        clock: Callable[[], datetime] | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        store_factory: Callable[[KeyringBackend | None], SettingsStore] | None = None,
    ) -> None:
        self._network_backend = network_backend
        self._store_factory = store_factory
        self.home = Path(home) if home is not None else default_home()
        self._keyring = keyring
        self.access = access or AccessPolicy()
        self.user = user or current_user(self.access)  # a policy that never asks the hub asks it nothing here either
        self._timeouts = timeouts
        self.openai_base_url = openai_base_url
        self._stale_after_problem: str | None = None
        if stale_after is None:
            stale_after, self._stale_after_problem = _stale_after_from_environment()
        elif not isinstance(stale_after, timedelta) or stale_after <= timedelta(0):
            raise ValueError(
                f"stale_after must be a positive timedelta, such as timedelta(days=7), not {stale_after!r}."
            )
        self.stale_after: timedelta = stale_after
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._cleaned = False
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"AISettings(home={str(self.home)!r}, user={self.user!r})"

    # -- parts ------------------------------------------------------------------ #

    @property
    def store(self) -> SettingsStore:
        """The settings store; resolves the system keyring on first use.

        Raises:
            KeyringUnavailable: no keyring was given and the system has no safe one.
        """
        if self._keyring is None:
            self._keyring = default_keyring()
        store = self._open_store(self._keyring)
        if not self._cleaned:  # once per AISettings: keys an interrupted save left behind
            self._cleaned = True
            store.clean_leftovers()
        return store

    @property
    def _reader(self) -> SettingsStore:
        """The store for reading the record and the audit log; needs no keyring (status is for everyone)."""
        return self._open_store(self._keyring)

    def _open_store(self, keyring: KeyringBackend | None) -> SettingsStore:
        """The store over ``keyring``: ``store_factory``'s, else the folder's."""
        if self._store_factory is not None:
            return self._store_factory(keyring)
        return SettingsStore(self.home, keyring)

    @property
    def timeouts(self) -> Timeouts:
        """The authentication limits in force."""
        if self._timeouts is None:
            from .models import Timeouts

            self._timeouts = Timeouts()
        return self._timeouts

    def is_admin(self) -> bool:
        """True when the current user may add, edit or remove the integration (see :mod:`~ai_admin_widgets.access`)."""
        return self.admin_check().admin

    def admin_check(self) -> AdminCheck:
        """Whether the current user is an admin, where that answer came from, and why not.

        Returns:
            An :class:`~ai_admin_widgets.access.AdminCheck`; an unreachable JupyterHub is a
            non-admin with a ``reason``, never an exception.
        """
        return self.access.check_admin(self.user, self._store_admins())

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every save or remove through this object.

        Returns:
            A function that stops the calls.
        """
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    # -- reading ---------------------------------------------------------------- #

    def status(self) -> IntegrationStatus:
        """The integration's state, safe to show anyone (no secret).

        Returns:
            An :class:`IntegrationStatus`; ``configured`` is False when nothing is saved. Its
            ``health``, ``stale`` and ``last_authentication_summary`` are measured at this
            call's time (``checked_at``) against ``stale_after``.
        Raises:
            StoreError: the settings record cannot be read or is damaged.
        """
        return self._status(self._reader.read())

    def _status(self, record: SettingsRecord, keyring_backend: str | None = None) -> IntegrationStatus:
        """The status of ``record``, measured now."""
        settings_warnings = (self._stale_after_problem,) if self._stale_after_problem else ()
        common: dict[str, Any] = dict(
            revision=record.revision,
            updated_by=record.updated_by,
            updated_at=record.updated_at,
            keyring_backend=keyring_backend if keyring_backend is not None else self.keyring_backend_name(),
            checked_at=self._clock(),
            stale_after_seconds=self.stale_after.total_seconds(),
        )
        fields = self._saved_fields(record)
        if fields is None:
            return IntegrationStatus(configured=False, warnings=settings_warnings, **common)
        hints = record.key_hints
        summaries = tuple(
            ModelSummary(
                role=role,
                endpoint_url=fields.base_url,
                model=record.models.get(role),
                key_hint=hints.get("api_key", "…"),
                authentication=f"API key {hints.get('api_key', '…')}",
            )
            if isinstance(fields, OpenAIFields)
            else _azure_summary(role, fields, record.models.get(role), hints)
            for role in ROLES
        )
        last = record.last_authentication
        return IntegrationStatus(
            configured=True,
            provider=record.provider,
            models=summaries,
            last_authenticated_at=last.at if last else None,
            last_authentication_ok=last.ok if last else None,
            last_authentication_codes=last.codes if last else (),
            warnings=tuple(record.warnings) + settings_warnings,
            **common,
        )

    def keyring_backend_name(self) -> str:
        """The name of the keyring backend that holds (or would hold) the keys, or why there is none."""
        if self._keyring is not None:
            return backend_name(self._keyring)
        try:
            return backend_name(default_keyring())
        except Exception:  # KeyringUnavailable, or a backend that fails while being chosen
            return "none usable"

    def keyring_problem(self) -> str | None:
        """Why no keyring can hold the keys here, and how to fix that; None when one can.

        Returns:
            The message of the :class:`KeyringUnavailable` that the keyring policy
            (:func:`~ai_admin_widgets.store.default_keyring`) raises, or None (also when a
            keyring backend was given explicitly).
        """
        if self._keyring is not None:
            return None
        try:
            default_keyring()
        except KeyringUnavailable as error:
            return str(error)
        return None

    def saved_fields(self) -> OpenAIFields | AzureOpenAIFields | None:
        """The saved integration's fields without keys (for pre-filling the Edit form), or None.

        Raises:
            StoreError: the record cannot be read or is damaged.
        """
        return self._saved_fields(self._reader.read())

    @staticmethod
    def _saved_fields(record: SettingsRecord) -> OpenAIFields | AzureOpenAIFields | None:
        return record.integration if record.configured else None

    def snapshot(self) -> SettingsSnapshot:
        """Everything the AI Settings page shows, from one read of the record; safe to show this user.

        A damaged record is no exception here: the snapshot is not configured, its ``problem``
        says what is wrong and what to do, and the lists hold what can still be read.
        """
        problem = None
        try:
            record = self._reader.read()
        except StoreError as error:
            problem = str(error)
            record = self._reader.read_access() or SettingsRecord()
            configured = None
        else:
            configured = record
        keyring = KeyringState(backend=self.keyring_backend_name(), problem=self.keyring_problem())
        admins = record.effective_admins
        lists = AccessLists(
            admins=tuple(admins),
            allowed_users=tuple(record.allowed_users),
            allowed_groups=tuple(record.allowed_groups),
            on_hub=self.access.on_hub(),
        )
        if configured is not None:
            status = self._status(configured, keyring.backend)
            try:
                saved = self._saved_fields(configured)
            except StoreError as error:
                problem, saved = str(error), None
        else:
            status = IntegrationStatus(
                configured=False, keyring_backend=keyring.backend, checked_at=self._clock(), revision=record.revision
            )
            saved = None
        may_use = bool(
            configured is not None
            and configured.configured
            and self.access.may_use_ai(self.user, record.allowed_users, record.allowed_groups)
        )
        return SettingsSnapshot(
            status=status,
            user=self.user,
            admin=self.access.check_admin(self.user, admins),
            access=lists,
            may_use_ai=may_use,
            keyring=keyring,
            saved=saved,
            openai_base_url=self.openai_base_url,
            problem=problem,
        )

    def saved_key(self, slot: str, endpoint_url: str) -> SecretStr | None:
        """The saved key of ``slot``, if it may go to ``endpoint_url``; for the service's own use and for cells.

        A saved key is only ever sent to the host (and port) it was entered for: when
        ``endpoint_url`` reaches another host, or nothing is saved for ``slot``, the
        answer is None and the admin must type the key again. The panel never calls
        this: it passes :data:`~ai_admin_widgets.models.KEEP_SAVED_KEY`, resolved by
        :meth:`save` and :meth:`test` (so the gateway can keep its keys to itself).

        Args:
            slot: ``"api_key"`` (OpenAI), ``"language_model.api_key"`` or ``"embeddings_model.api_key"``.
            endpoint_url: the Base URL or Endpoint URL as typed in the form (it may be a whole target URI).
        Returns:
            The key as a ``SecretStr``, or None.
        Raises:
            PermissionDenied: the current user is not an admin.
            StoreError, KeyringUnavailable: the store or the keyring cannot be read.
        """
        return self._saved_key(slot, endpoint_url)[0]

    def _saved_key(self, slot: str, endpoint_url: str) -> tuple[SecretStr | None, str]:
        """:meth:`saved_key`, and when there is none, why not, as the sentence an admin is shown."""
        self._require_admin()
        store = self.store
        record = store.read()
        fields = self._saved_fields(record)
        if fields is None or slot not in record.key_slots:
            return (
                None,
                "Type the API Key: no key is saved for it (nothing is saved, or the saved integration is of the other provider).",
            )
        if isinstance(fields, OpenAIFields):
            saved_endpoint = fields.base_url if slot == "api_key" else None
        else:
            role = slot.split(".", maxsplit=1)[0].removesuffix("_model")
            saved_endpoint = fields.deployment(role).endpoint_url if role in ROLES else None
        if saved_endpoint is None:
            return None, "Type the API Key: no key is saved for it."
        if _netloc(endpoint_url) != _netloc(saved_endpoint):
            return None, (
                f"Type the API Key again: the endpoint's host changed (from {_netloc(saved_endpoint)} to "
                f"{_netloc(endpoint_url)}), and a saved key is only ever sent to the host it was entered for."
            )
        saved = store.load(actor=self.user)
        key = saved.secrets().get(slot) if saved is not None else None
        return key, "" if key is not None else "Type the API Key: no key is saved for it."

    def _with_saved_keys(self, integration: AnyIntegration) -> AnyIntegration:
        """``integration`` with each :data:`KEEP_SAVED_KEY` replaced by the saved key of its slot.

        Raises:
            SavedKeyUnavailable: nothing is saved for that slot, the saved integration is of
                another provider, or the key would go to another host than it was entered for.
        """
        if isinstance(integration, OpenAIIntegration):
            if not isinstance(integration.api_key, SavedKey):
                return integration
            return integration.model_copy(update={"api_key": self._kept_key("api_key", integration.base_url)})
        updates = {}
        for role in ROLES:
            deployment = integration.deployment(role)
            if isinstance(deployment.api_key, SavedKey):
                key = self._kept_key(f"{role}_model.api_key", deployment.endpoint_url)
                updates[f"{role}_model"] = deployment.model_copy(update={"api_key": key})
            entra = deployment.entra_id
            if entra is not None and isinstance(entra.client_secret, SavedKey):
                secret = self._kept_client_secret(role, entra)
                updates[f"{role}_model"] = deployment.model_copy(
                    update={"entra_id": entra.model_copy(update={"client_secret": secret})}
                )
        return integration.model_copy(update=updates) if updates else integration

    def _kept_client_secret(self, role: Role, entra: EntraID) -> SecretStr:
        """The saved client secret of ``role``'s deployment, kept only for the same app in the same tenant and cloud.

        Raises:
            SavedKeyUnavailable: none is saved, or the Tenant ID, Client ID or Authority host changed.
        """
        self._require_admin()
        slot = f"{role}_model.entra_id.client_secret"
        record = self.store.read()
        fields = self._saved_fields(record)
        saved = fields.deployment(role).entra_id if isinstance(fields, AzureOpenAIFields) else None
        if saved is None or slot not in record.key_slots:
            raise SavedKeyUnavailable("Type the Client secret: no client secret is saved for it.", field=slot)
        if (saved.tenant_id, saved.client_id, saved.authority_host) != (
            entra.tenant_id,
            entra.client_id,
            entra.authority_host,
        ):
            raise SavedKeyUnavailable(
                "Type the Client secret again: the Tenant ID, Client ID or Authority host changed, and a saved "
                "client secret is only ever sent for the app and tenant it was entered for.",
                field=slot,
            )
        loaded = self.store.load(actor=self.user)
        secret = loaded.secrets().get(slot) if loaded is not None else None
        if secret is None:
            raise SavedKeyUnavailable("Type the Client secret: no client secret is saved for it.", field=slot)
        return secret

    def _kept_key(self, slot: str, endpoint_url: str) -> SecretStr:
        key, why_not = self._saved_key(slot, endpoint_url)
        if key is None:
            raise SavedKeyUnavailable(why_not, field=slot)
        return key

    # -- who may change it, and who may use AI --------------------------------- #

    def access_lists(self) -> AccessLists:
        """The admins list and the AI allow-lists, safe to show anyone.

        Returns:
            An :class:`~ai_admin_widgets.access.AccessLists`; from a damaged record, what can
            still be read of it (empty lists when nothing can).
        """
        record = self._reader.read_access()
        if record is None:
            return AccessLists(on_hub=self.access.on_hub())
        return AccessLists(
            admins=tuple(record.effective_admins),
            allowed_users=tuple(record.allowed_users),
            allowed_groups=tuple(record.allowed_groups),
            on_hub=self.access.on_hub(),
        )

    def can_use_ai(self, user: str | None = None) -> bool:
        """Whether ``user`` may use AI: an integration is configured and the allow-lists let them.

        Both allow-lists empty means everyone may; otherwise the user must be listed in the
        allowed users, or belong to a listed group (JupyterHub's groups on a hub, the
        operating system's off it).

        Args:
            user: the user name; default: the current user.
        Returns:
            True or False; False when nothing is configured or the record cannot be read.
        """
        user = user or self.user
        try:
            record = self._reader.read()
        except StoreError:
            return False
        if not record.configured:
            return False
        return self.access.may_use_ai(user, record.allowed_users, record.allowed_groups)

    def saved_integration(self) -> AnyIntegration | None:
        """The saved integration with its keys, for the AI functions (:mod:`ai_admin_widgets.ai`).

        Unlike the admin's calls it writes nothing (no clean-up of keys an interrupted save
        left), so it works for users who may only read the store's folder. It does not apply
        the allow-list: callers check :meth:`can_use_ai` first.

        Returns:
            An :class:`OpenAIIntegration` or :class:`AzureOpenAIIntegration`, or None when
            nothing is configured.
        Raises:
            StoreError: the record is damaged, or the keyring no longer holds the saved key.
            KeyringUnavailable: no usable keyring here, or it fails.
        """
        keyring = self._keyring if self._keyring is not None else default_keyring()
        return self._open_store(keyring).load()

    # -- budgets: kept by the AI gateway only -------------------------------------- #

    def budgets(self) -> Any:
        """Budgets are the AI gateway's (on JupyterHub).

        Raises:
            NotOnGateway: always, here (this machine keeps no usage and no budgets).
        """
        from .models import NotOnGateway

        raise NotOnGateway(NotOnGateway.__doc__ or "")

    def set_budget(self, scope: str, name: str, period: str, limit: int) -> Any:
        """As :meth:`budgets`: raises NotOnGateway."""
        return self.budgets()

    def remove_budget(self, scope: str, name: str, period: str) -> Any:
        """As :meth:`budgets`: raises NotOnGateway."""
        return self.budgets()

    def ai_routes(self) -> AIRoutes:
        """Where the current user's AI calls go and the keys they carry; the keys are read only for a user who may use AI.

        Returns:
            An :class:`~ai_admin_widgets.transport.AIRoutes` (never shown: its routes hold keys).
        Raises:
            StoreError: the record is damaged, or the keyring no longer holds the saved key.
            KeyringUnavailable: no usable keyring here, or it fails.
        """
        from .transport import AIRoutes, routes_for

        recheck = self.access.cache_seconds
        if self.saved_fields() is None:
            return AIRoutes(configured=False, allowed=False, recheck_after=recheck)
        if not self.can_use_ai():
            return AIRoutes(configured=True, allowed=False, recheck_after=recheck)
        integration = self.saved_integration()
        if integration is None:  # removed in between
            return AIRoutes(configured=False, allowed=False, recheck_after=recheck)
        return AIRoutes(
            configured=True, allowed=True, routes=routes_for(integration, self.timeouts), recheck_after=recheck
        )

    def set_allowed(
        self, users: str | Iterable[str] | None = None, groups: str | Iterable[str] | None = None
    ) -> AccessLists:
        """Set who may use AI (both lists empty: everyone). Audited, names only.

        Args:
            users: the users who may use AI, as names or comma-separated text; None keeps the list.
            groups: the groups whose members may use AI, likewise.
        Returns:
            The new :class:`~ai_admin_widgets.access.AccessLists`.
        Raises:
            PermissionDenied: the current user is not an admin.
            ValueError: a name is not acceptable (see :func:`~ai_admin_widgets.access.clean_names`).
            StoreError: the record is damaged or cannot be written; nothing changed.
        """
        self._require_admin()
        new_users = None if users is None else clean_names(users, kind="user")
        new_groups = None if groups is None else clean_names(groups, kind="group")
        store = self._reader
        before = store.read()
        after = store.update_access(actor=self.user, allowed_users=new_users, allowed_groups=new_groups)
        changed = [
            name for name in ("allowed_users", "allowed_groups") if getattr(before, name) != getattr(after, name)
        ]
        store.append_audit(
            {
                "actor": self.user,
                "action": "allow",
                "provider": after.provider.value if after.provider else None,
                "changed": changed,
                "outcome": "ok",
                "allowed_users": list(after.allowed_users),
                "allowed_groups": list(after.allowed_groups),
            }
        )
        self._notify()
        return self.access_lists()

    def add_admin(self, user: str) -> AccessLists:
        """Add ``user`` to the store's admins list (it decides who is an admin off a JupyterHub). Audited.

        Args:
            user: the user name to add; adding one already listed changes nothing.
        Returns:
            The new :class:`~ai_admin_widgets.access.AccessLists`.
        Raises:
            PermissionDenied: the current user is not an admin.
            ValueError: ``user`` is empty or not an acceptable name.
            StoreError: the record is damaged or cannot be written; nothing changed.
        """
        self._require_admin()
        names = clean_names([user], kind="user")
        if len(names) != 1:
            raise ValueError("Give the user name of the admin to add.")
        store = self._reader
        before = store.read().carried_access(self.user)["admins"]
        after = store.update_access(actor=self.user, add_admin=names[0]).admins
        if list(after) != list(before):
            store.append_audit(
                {
                    "actor": self.user,
                    "action": "add-admin",
                    "provider": None,
                    "changed": ["admins"],
                    "outcome": "ok",
                    "user": names[0],
                }
            )
            self._notify()
        return self.access_lists()

    def remove_admin(self, user: str) -> AccessLists:
        """Take ``user`` off the store's admins list; at least one admin must remain. Audited.

        Args:
            user: the user name to remove (the current user may remove themselves if another admin remains).
        Returns:
            The new :class:`~ai_admin_widgets.access.AccessLists`.
        Raises:
            PermissionDenied: the current user is not an admin.
            ValueError: ``user`` is not on the list, or is the last admin.
            StoreError: the record is damaged or cannot be written; nothing changed.
        """
        self._require_admin()
        names = clean_names([user], kind="user")  # refuses a key-shaped name without repeating it
        if len(names) != 1:
            raise ValueError("Give the user name of the admin to remove.")
        user = names[0]
        store = self._reader
        store.update_access(actor=self.user, remove_admin=user)
        store.append_audit(
            {
                "actor": self.user,
                "action": "remove-admin",
                "provider": None,
                "changed": ["admins"],
                "outcome": "ok",
                "user": user,
            }
        )
        self._notify()
        return self.access_lists()

    def audit_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The audit events, oldest first: ``at``, ``actor``, ``action``, ``provider``, ``changed``, ``outcome``.

        Args:
            limit: only the newest ``limit`` events, read from the end of the log (time and
                memory bounded by ``limit``, not by the log's length); None: every event.
        Raises:
            TypeError, ValueError: ``limit`` is not a whole number of 0 or more.
            StoreError: the audit log cannot be read.
        """
        return self._reader.audit_log(limit)

    def history(self, limit: int | None = None, *, before: int | None = None) -> list[AuditEvent]:
        """The newest ``limit`` audit events (every one when None), oldest first, typed; damaged lines are left out.

        Args:
            limit: how many at most.
            before: only events older than the one of this ``id`` (the next page: the first event's ``id``);
                the AI gateway's log has ids, a folder's has none.
        Raises:
            ValueError: ``limit`` is not a whole number of 1 or more, ``before`` not one of 1 or more, or
                ``before`` is given for a folder's log.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a whole number of 1 or more, not {limit!r}.")
        if before is not None and (isinstance(before, bool) or not isinstance(before, int) or before < 1):
            raise ValueError(f"before must be an event id (a whole number of 1 or more), not {before!r}.")
        events = self._reader.audit_log(limit, before=before)
        return [event for event in map(AuditEvent.parse, events) if event is not None]

    def fingerprint(self) -> Hashable:
        """A token that changes whenever the record is written (a folder's: one ``stat`` of ``settings.json``; the
        gateway's: one query of its revision); None when there is none."""
        return self._reader.fingerprint()

    def usage_report(self, since: date | None = None, by: str = "user") -> UsageReport:
        """Not here: usage is recorded by the AI gateway on JupyterHub (``GatewaySettings.usage_report``).

        Raises:
            NotOnGateway: always; this machine forwards no AI calls, so it has no usage to report.
        """
        from .models import NotOnGateway

        raise NotOnGateway(
            "Usage is recorded by the AI gateway on JupyterHub; this machine has none. Open the panel, or run "
            "ai-admin usage, in a server of a hub with the gateway (AI_ADMIN_GATEWAY_URL set)."
        )

    # -- authenticating --------------------------------------------------------- #

    def test(self, integration: AnyIntegration | None = None) -> VerificationReport:
        """Authenticate credentials without storing them.

        Args:
            integration: the credentials to check; None re-authenticates what is saved
                (and records the time and outcome in the store and the audit log).
        Returns:
            The :class:`VerificationReport`.
        Raises:
            PermissionDenied: ``integration`` is None and the current user is not an admin.
            NotConfigured: ``integration`` is None and nothing is saved.
            KeyNotInThisKeyring: another admin saved the keys, in their own keyring; this
                keyring has none (not recorded: the credentials may well work).
            KeyringUnavailable: the keyring failed or did not answer in time (not recorded:
                a keyring problem here says nothing about the credentials).
            StoreError: the saved credentials cannot be read (the key is gone from the
                keyring that saved it): recorded as a failed authentication, and audited.
        """
        from .verify import verify

        if integration is not None:
            return verify(
                self._checked(integration, "test"), timeouts=self.timeouts, network_backend=self._network_backend
            )
        saved, revision = self._load_saved()
        report = verify(saved, timeouts=self.timeouts, network_backend=self._network_backend)
        self._record_test(saved, report, revision)
        return report

    async def test_async(self, integration: AnyIntegration | None = None) -> VerificationReport:
        """:meth:`test` for a running event loop (the kernel's): the checks do not block it."""
        from .verify import verify_async

        if integration is not None:
            return await verify_async(
                self._checked(integration, "test_async"), timeouts=self.timeouts, network_backend=self._network_backend
            )
        saved, revision = self._load_saved()
        report = await verify_async(saved, timeouts=self.timeouts, network_backend=self._network_backend)
        self._record_test(saved, report, revision)
        return report

    # -- changing --------------------------------------------------------------- #

    def save(self, integration: AnyIntegration, *, expected_revision: int | None = None) -> IntegrationStatus:
        """Authenticate ``integration`` and, only if both models pass, store it.

        Args:
            integration: an :class:`OpenAIIntegration` or :class:`AzureOpenAIIntegration`.
            expected_revision: the settings revision this change started from (the panel
                passes the one it showed when the form opened); default: the revision when
                this call began. If another kernel saved or removed in between, nothing is saved.
        Returns:
            The new :class:`IntegrationStatus`.
        Raises:
            TypeError: ``integration`` is not an integration model.
            PermissionDenied: the current user is not an admin.
            KeyringUnavailable: no safe keyring holds keys here (checked before any request).
            VerificationFailed: a model check failed; ``.report`` says which and why.
                Nothing was stored.
            ConcurrentChange: someone else changed the integration meanwhile ("changed by
                <user> at <time>, reload"); nothing was stored.
            StoreError: the store could not be written; nothing changed. (Once the record
                is written, Save reports success: an audit event that cannot be written
                then is named in the returned status's ``warnings``.)
        """
        from .verify import verify

        integration = self._checked(integration, "save")
        store, revision = self._prepare_save(integration, expected_revision)
        report = verify(integration, timeouts=self.timeouts, network_backend=self._network_backend)
        return self._store_verified(store, integration, report, revision)

    async def save_async(
        self, integration: AnyIntegration, *, on_check: Any = None, expected_revision: int | None = None
    ) -> IntegrationStatus:
        """:meth:`save` for a running event loop (the kernel's): the checks do not block it.

        Args:
            integration, expected_revision: as for :meth:`save`.
            on_check: called with each model's :class:`ModelCheck` as soon as it is done.
        """
        from .verify import verify_async

        integration = self._checked(integration, "save_async")
        store, revision = self._prepare_save(integration, expected_revision)
        report = await verify_async(
            integration, timeouts=self.timeouts, on_check=on_check, network_backend=self._network_backend
        )
        return self._store_verified(store, integration, report, revision)

    def remove(self) -> list[str]:
        """Remove the OpenAI integration: its keys are deleted and AI functionality is disabled.

        Works without a usable keyring (the keys then stay in it), on a full disk, and on a
        damaged settings record, so AI can always be switched off.

        Returns:
            What the removal left undone, one sentence each (never a key): the keys that
            could not be deleted from the keyring, named by slot and revision; an audit
            event that could not be written. Empty when everything was done. The removal
            itself is in force either way.
        Raises:
            PermissionDenied: the current user is not an admin.
            NotConfigured: nothing is saved.
            StoreError: the store could not be written; nothing changed.
        """
        self._require_admin()
        try:
            keyring = self._keyring if self._keyring is not None else default_keyring()
        except KeyringUnavailable:
            keyring = None
        store = self._open_store(keyring)
        store.check_writable()  # a removal that cannot be audited is not made
        try:
            record = store.read()
        except StoreError:
            provider = None  # damaged: removing resets it
        else:
            if not record.configured:
                raise NotConfigured("There is no OpenAI integration to remove.")
            provider = record.provider.value if record.provider else None
        removal = store.remove(actor=self.user)
        undone = []
        if removal.nothing_salvaged:
            undone.append(
                "The damaged settings were too damaged to say which keys they had or who the admins were: "
                f"the keys saved before stay in the keyring (service '{SERVICE_NAME}'; delete its entries there), "
                f"and the admins list starts again with {self.user}: add the other admins again."
            )
        if removal.kept_keys:
            where = backend_name(keyring) if keyring is not None else "no usable keyring here"
            undone.append(
                f"These keys could not be deleted from the keyring ({where}): {', '.join(removal.kept_keys)}. "
                "They are deleted the next time the store opens with that keyring."
            )
        try:
            store.append_audit(
                {"actor": self.user, "action": "remove", "provider": provider, "changed": [], "outcome": "ok"}
            )
        except StoreError as error:  # removed all the same: say so, and what is missing
            undone.append(f"The integration was removed, but its audit event was not written: {error}")
        self._notify()
        return undone

    def panel(self) -> AISettingsPanel:
        """The AI Settings page as a widget, bound to these settings."""
        from .widgets import AISettingsPanel

        return AISettingsPanel(self)

    # -- internals -------------------------------------------------------------- #

    def _store_admins(self) -> list[str]:
        """The store's admins list as it applies (empty: none yet, or unreadable)."""
        record = self._reader.read_access()
        return record.effective_admins if record is not None else []

    def _require_admin(self) -> None:
        check = self.admin_check()
        if not check.admin:
            reason = check.reason or ""
            raise PermissionDenied(
                reason if reason.startswith(ADMIN_REQUIRED) else f"{ADMIN_REQUIRED} {reason}".strip()
            )

    def _checked(self, integration: Any, method: str) -> AnyIntegration:
        """``integration`` as the checks may send it: of the right type, with every kept key resolved.

        Raises:
            TypeError: ``integration`` is not an integration model.
            PermissionDenied: it keeps a saved key and the current user is not an admin.
            SavedKeyUnavailable: a kept key cannot be kept (see :meth:`_with_saved_keys`).
        """
        if not isinstance(integration, (OpenAIIntegration, AzureOpenAIIntegration)):
            raise TypeError(
                f"{method}() takes an OpenAIIntegration or an AzureOpenAIIntegration, not {type(integration).__name__}."
            )
        return self._with_saved_keys(integration)

    def _prepare_save(self, integration: AnyIntegration, expected_revision: int | None) -> tuple[SettingsStore, int]:
        """Check the input and the caller, resolve the keyring, and note the revision the change starts from."""
        if not isinstance(integration, (OpenAIIntegration, AzureOpenAIIntegration)):
            raise TypeError(
                f"save() takes an OpenAIIntegration or an AzureOpenAIIntegration, not {type(integration).__name__}."
            )
        self._require_admin()
        store = self.store  # resolves the keyring first: no key is sent anywhere if it cannot be stored
        if store.keyring is not None:
            prepare_keyring(store.keyring)  # an explicit backend too: a password prompt fails now, not after the checks
            _refuse_null(store.keyring)
        store.check_writable()  # the record, the lock and the audit log: a change that cannot be audited is not made
        return store, store.read().revision if expected_revision is None else expected_revision

    def _load_saved(self) -> tuple[AnyIntegration, int]:
        self._require_admin()  # re-testing what is saved writes its outcome to the store
        if not self._reader.read().configured:  # before the keyring is needed: nothing to test is the answer
            raise NotConfigured("No OpenAI integration is configured: add one first.")
        store = self.store
        record = store.read()
        try:
            saved = store.load(actor=self.user)
        except (KeyNotInThisKeyring, KeyringUnavailable):
            raise  # this person's keyring, not the credentials: nothing is recorded
        except StoreError as error:
            store.record_authentication(ok=False, revision=record.revision)
            try:
                store.append_audit(
                    {
                        "actor": self.user,
                        "action": "authenticate",
                        "provider": record.provider.value if record.provider else None,
                        "changed": [],
                        "outcome": "failed",
                        "codes": [],
                        "error": refusal_words(error),
                    }
                )
            except StoreError:
                pass  # the audit log itself cannot be written: the first error is the one to report
            raise
        if saved is None:
            raise NotConfigured("No OpenAI integration is configured: add one first.")
        return saved, record.revision

    def _record_test(self, saved: AnyIntegration, report: VerificationReport, revision: int) -> None:
        store = self.store
        failed = [check.code.value for check in report.checks if not check.ok]
        store.record_authentication(ok=report.ok, revision=revision, codes=failed)
        store.append_audit(
            {
                "actor": self.user,
                "action": "authenticate",
                "provider": saved.provider.value,
                "changed": [],
                "outcome": "ok" if report.ok else "failed",
                "codes": [check.code.value for check in report.checks],
            }
        )

    def _store_verified(
        self, store: SettingsStore, integration: AnyIntegration, report: VerificationReport, revision: int
    ) -> IntegrationStatus:
        if not report.ok:
            store.append_audit(
                {
                    "actor": self.user,
                    "action": "save",
                    "provider": integration.provider.value,
                    "changed": [],
                    "outcome": "failed",
                    "codes": [check.code.value for check in report.checks],
                }
            )
            raise VerificationFailed(report)
        previous = store.read()
        changed = _changed_fields(previous, integration, store)
        try:
            store.save(
                integration,
                actor=self.user,
                models={check.role: check.model for check in report.checks},
                warnings=list(report.warnings),
                expected_revision=revision,
            )
        except StoreError as error:  # ConcurrentChange, KeyringUnavailable, an unwritable record: audited too
            try:
                store.append_audit(
                    {
                        "actor": self.user,
                        "action": "save",
                        "provider": integration.provider.value,
                        "changed": [],
                        "outcome": "failed",
                        "error": refusal_words(error),
                    }
                )
            except StoreError:
                pass  # the audit log itself cannot be written: the first error is the one to report
            raise
        try:
            store.append_audit(
                {
                    "actor": self.user,
                    "action": "edit" if previous.configured else "add",
                    "provider": integration.provider.value,
                    "changed": changed,
                    "outcome": "ok",
                }
            )
        except StoreError as error:  # the change is in force: report it saved, and name what is missing
            self._notify()
            status = self.status()
            problem = f"Saved, but the audit event of this save was not written: {error}"
            return status.model_copy(update={"warnings": (*status.warnings, problem)})
        self._notify()
        return self.status()

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()


def _stale_after_from_environment() -> tuple[timedelta, str | None]:
    """The stale age from ``$AI_ADMIN_STALE_AFTER_DAYS`` (default 7 days), and what is wrong with the variable, if anything."""
    text = os.environ.get(STALE_AFTER_ENV, "").strip()
    if not text:
        return DEFAULT_STALE_AFTER, None
    try:
        return parse_stale_after_days(text), None
    except ValueError as error:
        return DEFAULT_STALE_AFTER, f"{error} Using {duration_text(DEFAULT_STALE_AFTER)}."


def _refuse_null(backend: KeyringBackend) -> None:
    """keyring's null backend forgets every key, even when it was chosen explicitly."""
    from keyring.backends import null

    if isinstance(backend, null.Keyring):
        raise KeyringUnavailable(
            "The keyring backend given here (keyring's null backend) forgets every key, so nothing could be saved. "
            "Pass a real keyring backend, or none to use the system's."
        )


def _netloc(url: str) -> str:
    """``host:port`` of an endpoint as the checks would reach it (a pasted target URI included), lower case."""
    return urlsplit(split_azure_endpoint(url).endpoint).netloc.lower()


def _flatten(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _changed_fields(previous: SettingsRecord, integration: AnyIntegration, store: SettingsStore) -> list[str]:
    """The names (never the values) of the fields a save changes; key slots count when the key differs.

    A field left empty (None or ``""``) that was not set before is no change: the first Add of
    OpenAI does not list an Organization ID and a Project ID nobody typed.
    """
    new = _flatten(integration.public_fields())
    old = (
        _flatten(previous.integration.model_dump(mode="json"))
        if previous.integration is not None and previous.provider is integration.provider
        else {}
    )
    changed = [name for name in sorted(new) if not _same(old.get(name), new[name])]
    if previous.provider is not integration.provider:
        return changed + sorted(integration.secrets())
    try:
        old_integration = store.load()
    except (StoreError, KeyringUnavailable):  # the old keys are unreadable: count every key as changed
        old_integration = None
    old_secrets = old_integration.secrets() if old_integration is not None else {}
    changed += [slot for slot, key in sorted(integration.secrets().items()) if old_secrets.get(slot) != key]
    return changed


def _same(old: Any, new: Any) -> bool:
    """Whether a field kept its value; None and ``""`` both mean "not set"."""
    return old == new or (old in (None, "") and new in (None, ""))


def _azure_summary(role: Role, fields: AzureOpenAIFields, model: str | None, hints: dict[str, str]) -> ModelSummary:
    """What the status shows of one saved Azure deployment: where, which, and how it authenticates, in words."""
    deployment = fields.deployment(role)
    if deployment.entra_id is None:
        hint = hints.get(f"{role}_model.api_key", "…")
        words = f"API key {hint}"
    elif deployment.entra_id.method == "service_principal":
        hint = hints.get(f"{role}_model.entra_id.client_secret", "…")
        words = f"{deployment.entra_id.described()}, client secret {hint}"
    else:
        hint = ""
        words = deployment.entra_id.described()
    return ModelSummary(
        role=role,
        endpoint_url=deployment.endpoint_url,
        deployment_id=deployment.deployment_id,
        model=model,
        key_hint=hint,
        authentication=words,
    )
