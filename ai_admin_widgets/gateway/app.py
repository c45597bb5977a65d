"""The AI gateway's tornado application: the admin API under ``{prefix}api/`` and the AI calls under ``{prefix}v1/``.

Admin API (JSON; every request with the caller's hub token; each one is the
:class:`~ai_admin_widgets.interface.Settings` call of the same name, made by
:class:`~ai_admin_widgets.AISettings` on the gateway's own store as the hub-verified caller):

====================  ======  ==============================================================
path                  method  answer
====================  ======  ==============================================================
``api/snapshot``      GET     SettingsSnapshot
``api/status``        GET     IntegrationStatus
``api/saved-fields``  GET     OpenAIFields / AzureOpenAIFields, or null
``api/access``        GET     AccessLists; POST ``{"users", "groups"}`` sets the allow-lists
``api/admins``        POST    refused, 409 ``AdminsDecidedByHub``: the hub's roles decide who configures
``api/admin-check``   GET     AdminCheck
``api/can-use-ai``    GET     ``{"allowed": bool}`` (the caller; ``?user=`` another user: configure only)
``api/history``       GET     [AuditEvent] (configure only; ``?limit=N``, 1 to 10,000, default 1,000; ``&before=ID``:
                              the page before that event, 1 to 2**63-1)
``api/usage``         GET     the newest AI calls (configure only; ``?limit=N``): who, when, model, tokens, outcome
``api/usage-report``  GET     UsageReport (configure only; ``?since=YYYY-MM-DD&by=user|group|model``)
``api/budgets``       GET     BudgetsView (those who may configure: every budget; others: the ones that count them);
                              POST ``{"set": {"scope", "name", "period", "limit"}}`` or ``{"remove": {...}}`` (configure only)
``api/fingerprint``   GET     ``{"fingerprint": ...}``
``api/ai-routes``     GET     ``{"configured", "allowed", "models": {role: name}, "recheck_after"}``
``api/test``          POST    ``{"integration": {...} | null}`` -> VerificationReport
``api/save``          POST    ``{"integration": {...}, "expected_revision": n | null}`` -> IntegrationStatus
``api/remove``        POST    ``{"removed": true}``
====================  ======  ==============================================================

Besides, without a token: ``health/live`` and ``health/ready`` (:mod:`~ai_admin_widgets.gateway.health`);
with a hub token holding ``read:metrics``: ``metrics`` (:mod:`~ai_admin_widgets.gateway.metrics`).

Who may read what: everyone with access to the service reads the snapshot, the status, the saved
fields (never a key), the allow-lists and whether they themselves may use AI; the history,
the usage log and whether *another* user may use AI are for those who may configure (a hub
admin, or ``custom:ai-admin:configure``), as are all changes and tests.

Errors: ``{"error": {"type", "message", ...}}`` with 401 (no token, or one the hub does not
know), 403 (PermissionDenied), 409 (NotConfigured, ConcurrentChange), 413 (a body over the
cap), 422 (VerificationFailed with ``report``, SavedKeyUnavailable with ``field``, a
ValidationError with ``field_errors``, ValueError), 503 (the hub cannot identify callers,
KeyringUnavailable), 500 (StoreError). The key travels only inward (test and save bodies);
no answer holds one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.web
from keyring.backend import KeyringBackend

from ..models import DEFAULT_OPENAI_BASE_URL, AdminsDecidedByHub, Timeouts
from .auth import CONFIGURE_SCOPE, Caller, GatewayAccess, HubUnavailable, Identity, NoServiceAccess, token_of
from .wire import error_body, error_status, integration_from_json

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..service import AISettings
    from .dbstore import DatabaseSettingsStore

__all__ = ["Gateway", "GatewayConfig", "make_app"]

#: Why the gateway adds and removes no admins, and how the hub grants configuring instead.
ADMINS_ON_THE_HUB = (
    "On JupyterHub the gateway keeps no admins list: hub admins and holders of the custom:ai-admin:configure "
    "scope configure. Grant it on the hub: name the user in the ai-admin-configure role (ai-admin gateway "
    "hub-config --admin USER, or that role's users in c.JupyterHub.load_roles), or make them a hub admin; "
    "take it away the same way, then restart the hub."
)
#: The most usage events one ``api/usage`` answer holds, and the most audit events one ``api/history`` page holds.
MAX_USAGE_LIMIT = 10_000
MAX_HISTORY_LIMIT = 10_000
#: The audit events one ``api/history`` page holds when ``limit`` is not given.
DEFAULT_HISTORY_LIMIT = 1_000
#: The largest event id ``before`` may name (ids are 64-bit signed integers, PostgreSQL's ``bigint``).
MAX_EVENT_ID = 2**63 - 1
#: Seconds between two deletions of audit events past ``audit_keep_days``.
AUDIT_PRUNE_SECONDS = 3600.0

log = logging.getLogger("ai_admin_widgets.gateway")


@dataclass
class GatewayConfig:
    """How one gateway runs.

    Attributes:
        home: its folder (the keyring file, the default SQLite database); it is their only writer.
        keyring: the keyring backend holding the keys (see :func:`~ai_admin_widgets.gateway.keys.gateway_keyring`).
        hub_api_url: JupyterHub's API (``$JUPYTERHUB_API_URL``).
        service_token: the gateway's own hub token (``$JUPYTERHUB_API_TOKEN`` of the service).
        prefix: the URL prefix it serves under (``$JUPYTERHUB_SERVICE_PREFIX``), starting and ending with ``/``.
        cache_seconds: how long the hub's answer about a token is kept (default 30; at most 60 is advised).
        hub_timeout: seconds the hub may take to identify a token.
        deadline: seconds one forwarded AI call may take in all, streaming included.
        max_request_bytes: the largest ``/v1`` request body; ``max_admin_request_bytes`` for the admin API.
        max_answer_bytes: the largest answer forwarded from the provider.
        usage_max_bytes, usage_keep: no longer used (the AI calls are recorded in the database, not in a rotated
            ``usage.jsonl``); still accepted so that existing configurations start.
        openai_base_url: the Base URL the panel offers for a new OpenAI integration.
        access_scopes: the scopes a token needs to reach the gateway at all (None: HubAuth's, from
            the environment the hub gives a managed service).
        allow_hosts: private or loopback hosts (names, CIDR blocks) the gateway may call
            (``$AI_ADMIN_GATEWAY_ALLOW_HOSTS``; see :mod:`~ai_admin_widgets.gateway.addresses`).
        timeouts: the authentication limits of Save and Test.
        engine: the gateway's database (:func:`~ai_admin_widgets.gateway.db.open_database`); None: the SQLite
            file ``ai-gateway.sqlite`` in ``home``, made on first use. It holds the settings record and the audit
            log (:class:`~ai_admin_widgets.gateway.dbstore.DatabaseSettingsStore`), shared by every replica on it.
        reauth_seconds: how often the saved integration is authenticated again, in seconds (``serve
            --reauth-minutes``; 0: never; see :mod:`~ai_admin_widgets.gateway.health`).
        reauth_retry_seconds: after a failed authentication, how soon it is tried again, in seconds (at most
            ``reauth_seconds``), so one failure does not keep ``health/ready`` at 503 for a whole interval.
        authenticate_metrics: whether ``metrics`` needs a hub token with ``read:metrics`` (JupyterHub's
            ``authenticate_prometheus``; default True).
        audit_keep_days: how many days audit events are kept (older ones deleted hourly; 0: kept for ever).
        settings_poll_seconds: how often the saved settings' marker is read, so a save through another replica is
            in force here within that time (plus one reload).
        settings_stale_seconds: how long the database may fail to answer that poll before /v1 refuses (503) rather
            than go on with settings another replica may have changed or removed meanwhile.
        record_usage: record every forwarded call in the database and enforce the budgets (False: neither; for
            benchmarks that measure what they cost).
    """

    home: Path
    keyring: KeyringBackend
    hub_api_url: str
    service_token: str = field(default="", repr=False)
    prefix: str = "/"
    cache_seconds: float = 30.0
    hub_timeout: float = 5.0
    deadline: float = 300.0
    max_request_bytes: int = 8 * 2**20
    max_admin_request_bytes: int = 256 * 2**10
    max_answer_bytes: int = 512 * 2**20
    usage_max_bytes: int = 16 * 2**20
    usage_keep: int = 5
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    timeouts: Timeouts = field(default_factory=Timeouts)
    access_scopes: set[str] | None = None
    allow_hosts: tuple[str, ...] = ()
    engine: Engine | None = None
    reauth_seconds: float = 0.0
    reauth_retry_seconds: float = 60.0
    authenticate_metrics: bool = True
    audit_keep_days: float = 365.0
    settings_poll_seconds: float = 0.25
    settings_stale_seconds: float = 10.0
    record_usage: bool = True


class Gateway:
    """The state one gateway process shares between requests: identity, a thread pool, the upstream client."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.identity = Identity(
            config.hub_api_url,
            config.service_token,
            cache_seconds=config.cache_seconds,
            timeout=config.hub_timeout,
            access_scopes=config.access_scopes,
        )
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ai-gateway")
        from .db import db_url, open_database

        #: The gateway's database: settings, audit log, AI calls, budgets (and the keys, with ``$AI_ADMIN_CRYPT_KEY``).
        self.engine: Engine = config.engine or open_database(db_url(None, config.home, environ={}))
        #: This process among the gateway's replicas: ``<hostname>:<pid>``.
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self._tasks: list[asyncio.Future[None]] = []
        self._import_folder()
        from .addresses import AddressPolicy, PinnedBackend
        from .v1 import Upstream

        self.addresses = AddressPolicy(config.allow_hosts)
        #: Opens every connection the gateway makes to a provider (Save's and Test's checks, /v1), pinned to checked addresses.
        self.network = PinnedBackend(self.addresses)
        self.upstream = Upstream(self)
        #: Called with every usage event, in :meth:`record_use` (metrics); an observer that raises is logged.
        self.observers: list[Callable[[dict[str, Any]], None]] = []
        from .budgets import Admissions, Budgets
        from .usage import UsageWriter

        #: Writes the usage events and the budgets' spend (:mod:`~ai_admin_widgets.gateway.usage`).
        self.usage_writer = UsageWriter(self.engine)
        #: The budgets and limits (:mod:`~ai_admin_widgets.gateway.budgets`).
        self.budgets = Budgets(self.engine)
        #: Admits each /v1 call against the budgets, on a connection and thread of its own.
        self.admissions = Admissions(self.engine)
        self._start_operations()

    def _start_operations(self) -> None:
        """Metrics (fed through :attr:`observers`) and the periodic re-authentication, started on the running loop.

        Raises:
            RuntimeError: ``reauth_seconds`` is set and no event loop runs (make the gateway inside its loop).
        """
        from .health import Reauthentication
        from .metrics import gateway_metrics

        #: The Prometheus metrics of this gateway (``{prefix}metrics``); None without prometheus_client.
        self.metrics = gateway_metrics()
        if self.metrics is not None:
            self.observers.append(self.metrics.observe)
        #: The periodic re-authentication (``reauth_seconds``).
        self.reauthentication = Reauthentication(self)
        self.reauthentication.start()

    def settings(self, caller: Caller) -> AISettings:
        """The gateway's AI Settings as ``caller`` (validate → authenticate → store → audit, unchanged), on its database."""
        from ..service import AISettings

        settings = AISettings(
            home=self.config.home,
            keyring=self.config.keyring,
            user=caller.name,
            access=GatewayAccess(caller, cache_seconds=self.config.cache_seconds),
            openai_base_url=self.config.openai_base_url,
            timeouts=self.config.timeouts,
            network_backend=self.network,
            store_factory=self.store,
        )
        settings.on_change(self.upstream.changed)  # this replica's own change: in force here at once
        return settings

    def store(self, keyring: KeyringBackend | None = None) -> DatabaseSettingsStore:
        """The settings record and audit log in the gateway's database, the keys in ``keyring`` (None: reads only)."""
        from .dbstore import DatabaseSettingsStore

        return DatabaseSettingsStore(self.engine, keyring)

    def _import_folder(self) -> None:
        """On a database without a settings record, take the folder's ``settings.json`` and ``audit.jsonl`` in, once."""
        from ..models import AIAdminError
        from .dbstore import import_folder

        try:
            imported = import_folder(self.engine, self.config.home)
        except AIAdminError as error:
            log.error("The settings in %s were not imported into the gateway's database: %s", self.config.home, error)
            return
        if imported is None or not imported[0].configured:
            return
        try:
            self.store(self.config.keyring).load()
        except AIAdminError:
            from ..store import backend_name

            log.warning(
                "The imported integration's keys are not in %s (a folder's gateway kept them in its keyring.cfg): "
                "edit the OpenAI integration once and type its key again.",
                backend_name(self.config.keyring),
            )

    def start(self) -> None:
        """Start the background work (on the running event loop): the saved settings' poll, the audit retention."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.ensure_future(self.upstream.poll()),
            asyncio.ensure_future(self._keep_audit()),
        ]

    async def _keep_audit(self) -> None:
        """Delete audit events older than ``audit_keep_days``, at start and then every hour."""
        from ..models import AIAdminError
        from .dbstore import prune_audit

        while self.config.audit_keep_days > 0:
            try:
                deleted = await self.run(prune_audit, self.engine, self.config.audit_keep_days)
            except AIAdminError as error:
                log.warning("Old audit events were not deleted: %s", error)
            else:
                if deleted:
                    log.info(
                        "Deleted %d audit events older than %g days (--audit-keep-days).",
                        deleted,
                        self.config.audit_keep_days,
                    )
            await asyncio.sleep(AUDIT_PRUNE_SECONDS)

    async def run(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` on the thread pool (store, keyring and checks block)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    def record_use(self, event: dict[str, Any]) -> None:
        """Record one forwarded AI call (its usage event: the columns of ``ai_gateway_usage_events``; never the
        prompt or the answer): each observer is called with it, then it is handed to the usage writer, which
        commits it on its own thread, normally within milliseconds, and counts its tokens against the budgets
        that admitted it (``"spend"``). The call never waits for the database here; readers through the gateway
        (:meth:`usage`) wait for what was handed over. Never raises: a failure to record is logged, never an
        error of the call. Nothing is written when ``record_usage`` is off."""
        for observer in self.observers:
            try:
                observer(event)
            except Exception as error:  # an observer's fault is never the call's
                log.error("A usage observer failed (%s).", type(error).__name__)
        if self.config.record_usage:
            self.usage_writer.put(event)

    def usage(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` AI calls, oldest first, from the database, after every call recorded so far is written.

        Each is the usage row: ``at`` (ISO, UTC; when the call came), ``username``, ``groups``, ``operation``, ``role``,
        ``model``, ``stream``, ``outcome``, ``code``, ``status``, the token counts, ``latency_ms``, ``request_id``,
        ``replica``. Blocks on the database (call it off the event loop).
        """
        import sqlalchemy as sa

        from .db import connected, usage_table
        from .usage import USAGE_COLUMNS

        self.usage_writer.flush()
        columns = [usage_table.c.at, *(usage_table.c[name] for name in USAGE_COLUMNS)]
        query = sa.select(*columns).order_by(usage_table.c.id.desc()).limit(limit)
        with connected(self.engine) as connection:
            rows = connection.execute(query).all()
        events = []
        for row in reversed(rows):
            event = dict(row._mapping)
            at = event["at"]
            event["at"] = (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).isoformat()
            events.append(event)
        return events

    async def close(self) -> None:
        """Stop the background work and the re-authentication; close the upstream client and HubAuth's session; stop the pool."""
        await self.reauthentication.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.upstream.close()
        await self.identity.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self.usage_writer.close)
        self.admissions.close()
        if self.config.engine is None:
            self.engine.dispose()


#: The ``code`` of tornado's own errors (a route that does not exist, a method a route does not take, ...).
HTTP_ERROR_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "internal_error",
    503: "unavailable",
}


class _Refused(Exception):
    """A request refused before it reaches the settings: its status, error type and message."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.kind, self.extra = status, kind, extra


#: Bytes beyond a body's cap that are still read (and dropped) before the 413 is sent, so that a client
#: which sends its whole body before reading (most do) gets the answer instead of a reset connection.
DRAIN_BYTES = 2**20


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Identifies the caller before anything else; answers JSON; never caches.

    Bodies are streamed in (:func:`tornado.web.stream_request_body`) and capped at
    :attr:`body_cap` bytes as they arrive, never kept beyond it. A declared ``Content-Length``
    over the cap is refused with 413 on the headers alone: at once, closing the connection,
    when the client waits for a go-ahead (``Expect: 100-continue``) or the length is more than
    :data:`DRAIN_BYTES` over; otherwise the body is read and dropped first, so that a client
    that sends it whole before reading (most do), or the hub's proxy in front, gets the 413
    rather than a reset connection. A body without a length (chunked) is refused likewise once
    it passes the cap. Refusals decided before the body is read (401, 403, 503) are sent after
    it, for the same reason.
    """

    gateway: Gateway
    caller: Caller
    body_cap: int = 0
    _refusal: _Refused | None = None
    _received = 0

    def initialize(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._chunks: list[bytes] = []

    def set_default_headers(self) -> None:
        self.set_header("content-type", "application/json")
        self.set_header("cache-control", "no-store")

    def compute_etag(self) -> None:
        return None

    def check_xsrf_cookie(self) -> None:  # token-authenticated API: no cookies are used
        return None

    def _too_large(self) -> _Refused:
        from ..transport import size_text

        cap = self.body_cap
        return _Refused(
            413,
            "TooLarge",
            f"The request body is over the AI gateway's cap of {size_text(cap)} ({cap} bytes); send less at once.",
            code="too_large",
        )

    async def prepare(self) -> None:
        limit = getattr(self.request.connection, "set_max_body_size", None)
        if limit is not None:  # this handler counts the body itself, chunk by chunk (tornado's own limit would 400)
            limit(sys.maxsize)
        try:
            declared = int(self.request.headers.get("content-length") or 0)
        except ValueError:
            declared = 0  # tornado refuses a Content-Length that is not a number
        if declared > self.body_cap:
            waiting = self.request.headers.get("expect", "").lower() == "100-continue"  # it sends no body unless told
            if waiting or declared > self.body_cap + DRAIN_BYTES:
                self.refuse(self._too_large(), close=True)
            else:
                self._refusal = self._too_large()
            return
        try:
            token = token_of(self.request.headers.get("authorization"))
            if token is None:
                raise _Refused(
                    401,
                    "NotAuthenticated",
                    "Send your JupyterHub token: 'Authorization: token $JUPYTERHUB_API_TOKEN' (or 'Bearer …').",
                )
            try:
                caller = await self.gateway.identity.caller(token)
            except HubUnavailable as error:
                raise _Refused(503, "HubUnavailable", str(error)) from None
            except NoServiceAccess as error:
                raise _Refused(403, "Forbidden", str(error), code="no_service_access") from None
            if caller is None:
                raise _Refused(
                    401,
                    "NotAuthenticated",
                    "JupyterHub does not know this token (expired, revoked, or not a user's); use your server's "
                    "$JUPYTERHUB_API_TOKEN.",
                )
            self.caller = caller
        except _Refused as refused:
            if self._refusal is None:
                self._refusal = refused

    def data_received(self, chunk: bytes) -> None:
        """Keep the body up to the cap; past it, drop what comes (a 413 is due), and past the drain, answer now."""
        if self._finished:
            return
        self._received += len(chunk)
        if self._received > self.body_cap + DRAIN_BYTES:
            self.refuse(self._refusal or self._too_large(), close=True)
            return
        if self._received > self.body_cap and (self._refusal is None or self._refusal.status != 413):
            self._refusal = self._too_large()
        if self._refusal is None:
            self._chunks.append(chunk)

    def admitted(self) -> bool:
        """Whether the request may go on (its body whole in ``request.body``); if not, its refusal was sent."""
        if self._finished:
            return False
        if self._refusal is not None:
            self.refuse(self._refusal)
            return False
        self.request.body = b"".join(self._chunks)
        self._chunks = []
        return True

    def refuse(self, refused: _Refused, *, close: bool = False) -> None:
        """Answer ``refused`` and end the request (``close``: and the connection, the rest of the body unread)."""
        if self._finished:
            return
        self.set_status(refused.status)
        if close:
            self.set_header("connection", "close")
        if refused.status == 401:
            self.set_header("www-authenticate", 'token realm="JupyterHub"')
        self.finish(self.error_json(refused.status, refused.kind, str(refused), refused.extra))

    def error_json(self, status: int, kind: str, message: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {"error": {"type": kind, "message": message, **extra}}

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado's own errors (404, 405, an uncaught exception) in the same JSON shape, without a traceback."""
        self.set_header("content-type", "application/json")
        code = HTTP_ERROR_CODES.get(status_code, "internal_error" if status_code >= 500 else "invalid_request")
        self.finish(self.error_json(status_code, "HTTPError", self.http_error_message(status_code), {"code": code}))

    def http_error_message(self, status_code: int) -> str:
        """What went wrong, for one of tornado's own errors (``status_code``)."""
        if status_code == 404:
            return "No such route of the AI gateway."
        if status_code == 405:
            return f"This route does not take {self.request.method}."
        if status_code < 500:
            return "The AI gateway could not read the request."
        return "The AI gateway failed; see its log."

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object ({} when empty).

        Raises:
            _Refused: 400, the body is not JSON, is nested deeper than Python's parser goes, or is no object.
        """
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise _Refused(400, "TypeError", "The request body is not JSON.") from None
        except RecursionError:
            raise _Refused(
                400, "TypeError", "The request body is JSON nested too deeply to read; send a flatter body."
            ) from None
        if not isinstance(body, dict):
            raise _Refused(400, "TypeError", "The request body must be a JSON object.")
        return body


class ApiHandler(BaseHandler):
    """``{prefix}api/<action>``: the Settings interface, as the hub-verified caller."""

    def initialize(self, gateway: Gateway) -> None:
        super().initialize(gateway)
        self.body_cap = gateway.config.max_admin_request_bytes

    async def get(self, action: str) -> None:
        await self._answer("GET", action)

    async def post(self, action: str) -> None:
        await self._answer("POST", action)

    async def _answer(self, method: str, action: str) -> None:
        if not self.admitted():
            return
        handler = _ROUTES.get((method, action))
        if handler is None:
            self.send_error(404 if all(name != action for _, name in _ROUTES) else 405)
            return
        started = time.perf_counter()
        try:
            body = self.json_body() if method == "POST" else {}
            result = await handler(self, body)
        except _Refused as refused:
            self.refuse(refused)
            return
        except Exception as error:  # the models' errors, mapped; anything else is a 500 without details
            answer = error_body(error)
            if answer["error"]["type"] == "InternalError":
                log.error("api/%s failed: %s", action, type(error).__name__)
            self.set_status(error_status(error))
            self.finish(answer)
            return
        log.debug("api/%s for %s in %.1f ms", action, self.caller.name, (time.perf_counter() - started) * 1000)
        self.finish(json.dumps(result, ensure_ascii=False))

    # -- actions ---------------------------------------------------------------- #

    def _require_configure(self, reading: str | None = None) -> None:
        """Changes and tests (which make the gateway send requests) are for callers who may configure, checked first.

        Args:
            reading: for a read that is theirs only, what is read ("the AI Settings history"), to say so.
        Raises:
            PermissionDenied: the caller is neither a hub admin nor holds the configure scope.
        """
        from ..models import PermissionDenied

        check = GatewayAccess(self.caller).check_admin(self.caller.name)
        if check.admin:
            return
        if reading is None:
            raise PermissionDenied(check.reason or "")
        raise PermissionDenied(
            f"Only those who may configure the OpenAI integration (a hub admin, or a role with the {CONFIGURE_SCOPE} "
            f"scope) can read {reading}; ask the hub's admin."
        )

    def _query_limit(self, default: int | None) -> int | None:
        text = self.get_query_argument("limit", None)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"limit must be a whole number of 1 or more, not {text!r}.") from None

    def _query_whole(self, name: str, highest: int) -> int | None:
        """The query argument ``name`` as a whole number from 1 to ``highest`` (digits only); None when not given.

        Raises:
            ValueError: (422) anything else; the message names ``name`` and the range, never echoes a long value.
        """
        text = self.get_query_argument(name, None)
        if text is None:
            return None
        if text.isascii() and text.isdigit() and len(text) <= len(str(highest)) and 1 <= int(text) <= highest:
            return int(text)
        raise ValueError(f"{name} must be a whole number from 1 to {highest:,}.")

    async def snapshot(self, body: dict[str, Any]) -> Any:
        settings = self.gateway.settings(self.caller)
        return (await self.gateway.run(settings.snapshot)).model_dump(mode="json")

    async def status(self, body: dict[str, Any]) -> Any:
        settings = self.gateway.settings(self.caller)
        return (await self.gateway.run(settings.status)).model_dump(mode="json")

    async def saved_fields(self, body: dict[str, Any]) -> Any:
        fields = await self.gateway.run(self.gateway.settings(self.caller).saved_fields)
        return fields.model_dump(mode="json") if fields is not None else None

    async def access(self, body: dict[str, Any]) -> Any:
        return (await self.gateway.run(self.gateway.settings(self.caller).access_lists)).model_dump(mode="json")

    async def set_access(self, body: dict[str, Any]) -> Any:
        self._require_configure()
        settings = self.gateway.settings(self.caller)
        lists = await self.gateway.run(lambda: settings.set_allowed(body.get("users"), body.get("groups")))
        return lists.model_dump(mode="json")

    async def admins(self, body: dict[str, Any]) -> Any:
        """Refused (409): the gateway keeps no admins list of its own, the hub's roles decide who configures."""
        self._require_configure()
        raise AdminsDecidedByHub(ADMINS_ON_THE_HUB)

    async def admin_check(self, body: dict[str, Any]) -> Any:
        return (await self.gateway.run(self.gateway.settings(self.caller).admin_check)).model_dump(mode="json")

    async def can_use_ai(self, body: dict[str, Any]) -> Any:
        user = self.get_query_argument("user", None) or None
        if user is not None and user != self.caller.name:
            self._require_configure("whether another user may use AI")
        return {"allowed": await self.gateway.run(self.gateway.settings(self.caller).can_use_ai, user)}

    async def history(self, body: dict[str, Any]) -> Any:
        self._require_configure("the AI Settings history (the audit log)")
        settings = self.gateway.settings(self.caller)
        limit = self._query_whole("limit", MAX_HISTORY_LIMIT) or DEFAULT_HISTORY_LIMIT
        before = self._query_whole("before", MAX_EVENT_ID)
        events = await self.gateway.run(lambda: settings.history(limit, before=before))
        return [event.model_dump(mode="json") for event in events]

    async def usage(self, body: dict[str, Any]) -> Any:
        self._require_configure("the AI usage log")
        limit = self._query_limit(100)
        if limit is None or not 1 <= limit <= MAX_USAGE_LIMIT:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_USAGE_LIMIT}.")
        return await self.gateway.run(self.gateway.usage, limit)

    async def usage_report(self, body: dict[str, Any]) -> Any:
        """The usage report (:func:`~ai_admin_widgets.gateway.report.usage_report`) of ``?since=`` and ``?by=``."""
        from ..models import parse_usage_by, parse_usage_since
        from .db import GatewayDatabaseError
        from .report import usage_report

        self._require_configure("the AI usage report")
        since = parse_usage_since(self.get_query_argument("since", None))
        by = parse_usage_by(self.get_query_argument("by", None))
        try:
            report = await self.gateway.run(self._flushed_report, usage_report, since, by)
        except GatewayDatabaseError as error:
            raise _Refused(503, "DatabaseUnavailable", str(error), code="database_unavailable") from None
        return report.model_dump(mode="json")

    def _flushed_report(self, report: Any, since: Any, by: Any) -> Any:
        """``report`` over the database once every call handed to the usage writer is written (so it counts them)."""
        self.gateway.usage_writer.flush()
        return report(self.gateway.engine, since, by)

    async def budgets(self, body: dict[str, Any]) -> Any:
        """Every budget, with what its period used, for those who may configure; others see the ones that count them."""
        view = await self.gateway.run(self._budgets_view)
        if not GatewayAccess(self.caller).check_admin(self.caller.name).admin:
            mine = {
                (budget.scope, budget.name, budget.period)
                for budget, _ in await self.gateway.run(
                    self.gateway.budgets.applying, self.caller.name, self.caller.groups
                )
            }
            view = view.model_copy(
                update={"budgets": tuple(b for b in view.budgets if (b.scope, b.name, b.period) in mine)}
            )
        return view.model_dump(mode="json")

    def _budgets_view(self) -> Any:
        """The budgets with what each period used, once every call handed to the usage writer is counted."""
        self.gateway.usage_writer.flush()
        return self.gateway.budgets.view()

    async def change_budgets(self, body: dict[str, Any]) -> Any:
        """``{"set": {"scope", "name", "period", "limit"}}`` adds or changes one; ``{"remove": {...}}`` removes one."""
        from ..models import checked_budget

        self._require_configure()
        if set(body) not in ({"set"}, {"remove"}) or not isinstance(next(iter(body.values())), dict):
            raise TypeError('The body must be {"set": {"scope", "name", "period", "limit"}} or {"remove": {...}}.')
        action, part = next(iter(body.items()))
        if action == "set":
            budget = checked_budget(part.get("scope"), part.get("name"), part.get("period"), part.get("limit"))
            await self.gateway.run(self.gateway.budgets.set, budget, self.caller.name)
            view = await self.gateway.run(self._budgets_view)
        else:
            budget = checked_budget(part.get("scope"), part.get("name"), part.get("period"), 1)
            removed = await self.gateway.run(self.gateway.budgets.remove, budget.scope, budget.name, budget.period)
            if not removed:
                raise ValueError(f"There is no budget for {budget.described().split(':')[0]} per {budget.period}.")
            view = await self.gateway.run(self._budgets_view)
        return view.model_dump(mode="json")

    async def fingerprint(self, body: dict[str, Any]) -> Any:
        value = await self.gateway.run(self.gateway.settings(self.caller).fingerprint)
        return {"fingerprint": list(value) if isinstance(value, tuple) else value}

    async def ai_routes(self, body: dict[str, Any]) -> Any:
        saved = await self.gateway.upstream.saved()
        allowed = saved.configured and saved.allows(self.caller)
        return {
            "configured": saved.configured,
            "allowed": allowed,
            "models": saved.primary_names() if allowed else {},
            "recheck_after": self.gateway.config.cache_seconds,
        }

    async def _refuse_addresses(self, integration: Any) -> None:
        """Refuse endpoints the gateway must not call (metadata, link-local, private unless allowed), by field."""
        from .addresses import refused_endpoints

        problems = await self.gateway.run(refused_endpoints, integration, self.gateway.addresses)
        if problems:
            message = "; ".join(f"{path}: {text}" for path, text in problems.items())
            raise _Refused(422, "ValidationError", message, field_errors=problems)

    async def test(self, body: dict[str, Any]) -> Any:
        self._require_configure()
        settings = self.gateway.settings(self.caller)
        integration = body.get("integration")
        checked = None if integration is None else integration_from_json(integration)
        if checked is not None:
            await self._refuse_addresses(checked)
        return (await self.gateway.run(settings.test, checked)).model_dump(mode="json")

    async def save(self, body: dict[str, Any]) -> Any:
        self._require_configure()
        settings = self.gateway.settings(self.caller)
        integration = integration_from_json(body.get("integration"))
        await self._refuse_addresses(integration)
        revision = body.get("expected_revision")
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
            raise TypeError("expected_revision must be a whole number or null.")
        status = await self.gateway.run(lambda: settings.save(integration, expected_revision=revision))
        return status.model_dump(mode="json")

    async def remove(self, body: dict[str, Any]) -> Any:
        self._require_configure()
        undone = await self.gateway.run(self.gateway.settings(self.caller).remove)
        return {"removed": True, "undone": undone}


_ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "snapshot"): ApiHandler.snapshot,
    ("GET", "status"): ApiHandler.status,
    ("GET", "saved-fields"): ApiHandler.saved_fields,
    ("GET", "access"): ApiHandler.access,
    ("POST", "access"): ApiHandler.set_access,
    ("POST", "admins"): ApiHandler.admins,
    ("GET", "admin-check"): ApiHandler.admin_check,
    ("GET", "can-use-ai"): ApiHandler.can_use_ai,
    ("GET", "history"): ApiHandler.history,
    ("GET", "usage"): ApiHandler.usage,
    ("GET", "usage-report"): ApiHandler.usage_report,
    ("GET", "fingerprint"): ApiHandler.fingerprint,
    ("GET", "budgets"): ApiHandler.budgets,
    ("POST", "budgets"): ApiHandler.change_budgets,
    ("GET", "ai-routes"): ApiHandler.ai_routes,
    ("POST", "test"): ApiHandler.test,
    ("POST", "save"): ApiHandler.save,
    ("POST", "remove"): ApiHandler.remove,
}


class _NotFound(BaseHandler):
    """Any other path under the prefix: 404 in the same shape (after identifying the caller).

    A body sent to a path that does not exist is not "too large", the path is wrong: it is
    read and dropped (up to :data:`DRAIN_BYTES`), never kept.
    """

    body_cap = sys.maxsize

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > DRAIN_BYTES and not self._finished:
            self.set_header("connection", "close")
            self.send_error(404)

    async def get(self, *args: str) -> None:
        if self._finished:
            return
        if self._refusal is not None:
            self.refuse(self._refusal)
            return
        self.send_error(404)

    post = get


def make_app(gateway: Gateway) -> tornado.web.Application:
    """The tornado application of ``gateway``, its routes under ``gateway.config.prefix``."""
    from .health import LiveHandler, ReadyHandler
    from .metrics import MetricsHandler
    from .v1 import ChatHandler, EmbeddingsHandler, ModelsHandler, V1NotFound

    prefix = gateway.config.prefix
    options = {"gateway": gateway}
    return tornado.web.Application(
        [
            (rf"{prefix}api/([a-z-]+)", ApiHandler, options),
            (rf"{prefix}health/live", LiveHandler, options),
            (rf"{prefix}health/ready", ReadyHandler, options),
            (rf"{prefix}metrics", MetricsHandler, options),
            (rf"{prefix}v1/chat/completions", ChatHandler, options),
            (rf"{prefix}v1/embeddings", EmbeddingsHandler, options),
            (rf"{prefix}v1/models", ModelsHandler, options),
            (rf"{prefix}v1(/.*)?", V1NotFound, options),
            (rf"{prefix}(.*)", _NotFound, options),
        ],
        log_function=_log_request,
    )


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """One line per request: status, method, path (never a query's or a body's contents), caller, time."""
    caller = getattr(handler, "caller", None)
    log.info(
        "%d %s %s %s %.1fms",
        handler.get_status(),
        handler.request.method,
        handler.request.path,
        caller.name if caller else "-",
        1000 * handler.request.request_time(),
    )


def environment_prefix() -> str:
    """``$JUPYTERHUB_SERVICE_PREFIX`` as a route prefix (``/services/<name>/``), or ``/``."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    return "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
