"""The OpenAI-compatible API of the AI gateway: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

A caller with the ``custom:ai-admin:use`` scope whom the allow-list lets in sends an OpenAI
request naming a saved model (``model``: the language or the embeddings model, by its model id
or Azure deployment ID, or the model name that answered at Save); the gateway forwards it to the
saved integration's own endpoint for that model, with the saved key, and nowhere else (it is not
an open relay: the URL, the headers and the model come from the saved settings, only the rest of
the body from the caller). Answers are passed on chunk by chunk as they arrive, a streamed chat
(``"stream": true``) as the provider's server-sent events, never buffered whole; a caller that
hangs up cancels the request to the provider. Every forwarded call has an overall deadline, and
request and answer bodies are capped. Each call is recorded in the gateway's database
(``ai_gateway_usage_events``: who, when, which model, the tokens the service counted, latency, outcome,
request id; never the prompt or the answer), and counted against the budgets (429 ``budget_exceeded`` /
``rate_limit_exceeded`` when one has no room; see :mod:`~ai_admin_widgets.gateway.budgets`).

Tokens come from the service's own ``usage``: the end of a non-streamed answer, or, for a streamed chat,
the usage chunk the service sends last when asked with ``stream_options: {"include_usage": true}``.
The gateway asks for it when the caller did not, and then does not pass that chunk on (the caller
gets the stream it asked for). Azure OpenAI accepts ``stream_options`` from api-version
2024-09-01-preview on (:data:`STREAM_USAGE_SINCE`); with an older api-version nothing is added and
the streamed call has no token counts.

Errors come in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with our code:
``not_authenticated`` (401), ``hub_unavailable`` (503), ``not_allowed`` (403), ``ai_disabled`` and
``model_not_found`` (400, naming the models that exist), ``too_large`` (413), ``invalid_request``
(400), and for the provider's failures the :class:`~ai_admin_widgets.models.FailureCode`
(``rate_limited`` / ``quota_exceeded`` 429 with the provider's ``retry-after``; ``timeout`` 504;
a request the provider refused as malformed 400 with its message; the others 502, with what an
analyst can do). No answer holds the key: the provider's error texts are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import tornado.iostream
from pydantic import SecretStr

from ..models import ROLE_LABELS, FailureCode, KeyringUnavailable, Outcome, Role, StoreError, Timeouts, explain
from ..store import SettingsRecord
from ..transport import _request_id, holds_part_of
from .app import BaseHandler, _NotFound, _Refused
from .auth import USE_SCOPE, Caller, GatewayAccess

if TYPE_CHECKING:
    from ..transport import Route
    from .app import Gateway

__all__ = ["ChatHandler", "EmbeddingsHandler", "ModelsHandler", "Upstream", "V1NotFound"]

log = logging.getLogger("ai_admin_widgets.gateway")

#: The most bytes of a provider's error answer that are read (to classify it).
MAX_ERROR_BYTES = 64 * 2**10

_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",  # OpenAI's for a URL it does not serve
    405: "invalid_request_error",
    413: "invalid_request_error",
    400: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}
_CODES = {
    "NotAuthenticated": "not_authenticated",
    "HubUnavailable": "hub_unavailable",
    "TooLarge": "too_large",
    "TypeError": "invalid_request",
    "Forbidden": "no_service_access",
}


@dataclass
class Saved:
    """What the saved settings say, read once per change of the settings record (the keys in the routes)."""

    fingerprint: Any
    record: SettingsRecord | None = None
    routes: dict[Role, Route] = field(default_factory=dict)
    names: dict[Role, tuple[str, ...]] = field(default_factory=dict)
    problem: str | None = None

    def __repr__(self) -> str:  # never the routes' headers
        return f"Saved(configured={self.configured}, names={self.names})"

    @property
    def configured(self) -> bool:
        return self.record is not None and self.record.configured

    def allows(self, caller: Caller) -> bool:
        """Whether ``caller`` may use AI: the use scope, then the allow-lists (with the caller's hub groups)."""
        if self.record is None:
            return False
        access = GatewayAccess(caller)
        return access.may_use_ai(caller.name, self.record.allowed_users, self.record.allowed_groups)

    def primary_names(self) -> dict[str, str]:
        """The name each role's model goes by first (OpenAI's model id, Azure's deployment ID)."""
        return {role: names[0] for role, names in self.names.items()}

    def role_of(self, model: Any) -> Role | None:
        for role, names in self.names.items():
            if model in names:
                return role
        return None

    def described(self) -> str:
        names = self.primary_names()
        return " and ".join(f"'{names[role]}' ({ROLE_LABELS[role].lower()})" for role in names)


#: The provider's headers that are passed on, each only in a plain shape and with nothing of the key in it.
_CONTENT_TYPE = re.compile(r"(?:application/json|text/event-stream)(?:; ?charset=[A-Za-z0-9_-]{1,20})?", re.IGNORECASE)
_RETRY_AFTER = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?|[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT")


def _content_type(response: httpx.Response, key: SecretStr, stream: bool) -> str:
    """The provider's ``content-type`` when it is JSON's or server-sent events' (and holds no piece of the key)."""
    found = response.headers.get("content-type", "")
    if _CONTENT_TYPE.fullmatch(found) and not holds_part_of(found, key):
        return found
    return "text/event-stream" if stream else "application/json"


def _retry_headers(response: httpx.Response, key: SecretStr) -> dict[str, str]:
    """``retry-after`` (seconds or an HTTP date, RFC 9110 10.2.3) and ``retry-after-ms``, when they are plain."""
    found = {}
    for name in ("retry-after", "retry-after-ms"):
        value = response.headers.get(name)
        if value is not None and _RETRY_AFTER.fullmatch(value) and not holds_part_of(value, key):
            found[name] = value
    return found


#: The first Azure OpenAI api-version (a date) that takes ``stream_options`` (2024-09-01-preview; GA from 2024-10-21).
STREAM_USAGE_SINCE = "2024-09-01"
#: The bytes kept of the end of a non-streamed answer, where its ``usage`` is (the whole answer when it is smaller).
USAGE_TAIL_BYTES = 16 * 2**10
_USAGE_KEY = re.compile(rb'"usage"\s*:')
_TOKEN_FIELD = re.compile(rb'"(prompt_tokens|completion_tokens|total_tokens)"\s*:\s*([0-9]{1,12})')
_EVENT_END = re.compile(rb"\r?\n\r?\n")
_NULL_USAGE = re.compile(rb'"usage"\s*:\s*null')
#: The stream's last event (a line of its own: inside an event's JSON a newline is always escaped).
_DONE = re.compile(rb"^data: ?\[DONE\]\s*$", re.MULTILINE)
#: Seconds the budgets' check may wait for the database (a stalled server, a lock held) before the call is refused (503).
ADMIT_SECONDS = 10.0
#: Bytes per token in an estimate (OpenAI: "a token is about 4 characters of English text").
BYTES_PER_TOKEN = 4


def asks_stream_usage(route: Route, payload: dict[str, Any]) -> bool:
    """Whether the gateway sets ``stream_options.include_usage: true`` on a streamed chat the caller did not ask it of.

    The service's usage chunk is what the budgets count, so it is asked for whatever the caller said
    (``include_usage: false`` or null, no ``stream_options``, or one that is not an object): a caller cannot
    keep its tokens from being counted; the chunk is then kept from that caller. True for OpenAI, and for
    Azure OpenAI with an api-version from :data:`STREAM_USAGE_SINCE` on (older ones refuse the parameter);
    False when the caller asked for it itself.
    """
    from ..models import Provider

    options = payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return False
    if route.provider is Provider.AZURE_OPENAI:
        if "/openai/v1/" in route.url.path:  # Azure's v1 API takes it (it has no dated api-version)
            return True
        version = route.url.params.get("api-version") or ""
        return version[:10] >= STREAM_USAGE_SINCE
    return True


def tokens_of(usage: Any) -> dict[str, int | None]:
    """``prompt_tokens``, ``completion_tokens``, ``total_tokens`` of a ``usage`` object (None for any missing)."""
    found: dict[str, int | None] = {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}
    if isinstance(usage, dict):
        for name in found:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                found[name] = value
    if found["total_tokens"] is None and found["prompt_tokens"] is not None:
        found["total_tokens"] = found["prompt_tokens"] + (found["completion_tokens"] or 0)
    return found


def answer_tokens(tail: bytes, whole: bool) -> dict[str, int | None]:
    """The token counts of a non-streamed JSON answer from its last bytes (``whole``: the answer entire).

    The whole answer is parsed as JSON; of a longer one the fields after its last ``"usage":`` key are read
    (outside JSON strings a quote is never escaped, so text in the answer cannot pose as that key).
    """
    if whole:
        try:
            body = json.loads(tail)
        except ValueError:
            body = None
        return tokens_of(body.get("usage") if isinstance(body, dict) else None)
    starts = [match.end() for match in _USAGE_KEY.finditer(tail)]
    if not starts:
        return tokens_of(None)
    part = tail[starts[-1] : starts[-1] + 2048]
    part = part[: part.find(b"}") + 1] if b"}" in part else part
    return tokens_of({name.decode(): int(value) for name, value in _TOKEN_FIELD.findall(part)})


#: The endpoints of /v1, as a 404 or 405 names them.
ENDPOINTS = "POST /v1/chat/completions, POST /v1/embeddings and GET /v1/models"
#: The settings record's marker before it is read.
_UNKNOWN: Any = object()


class Upstream:
    """The saved integration's routes, reloaded when the settings record changes, and the client that calls them.

    A /v1 call costs no database query: :meth:`poll` reads the record's marker (revision and time of the last
    write, :meth:`~ai_admin_widgets.gateway.dbstore.DatabaseSettingsStore.marker`) every
    ``settings_poll_seconds`` in the background, and :meth:`saved` reloads (keys included) only when it moved,
    so a save through another replica is in force here within that time plus one reload. A change made through
    this replica (:meth:`changed`) is in force here at once.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._saved: Saved | None = None
        self._lock: asyncio.Lock | None = None
        self._client: httpx.AsyncClient | None = None
        #: The record's marker as last read (:data:`_UNKNOWN`: to be read by the next call), and its generation.
        self._marker: Any = _UNKNOWN
        self._generation = 0
        self._polling = False
        #: When the marker was last read (``time.monotonic()``; 0: never).
        self._read_at = 0.0
        #: The poll's own thread: never queued behind Save's and Test's checks on the gateway's pool.
        self._poller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ai-gateway-settings-poll")

    def changed(self) -> None:
        """This replica changed the settings (any thread): the next call reads the marker afresh."""
        self._generation += 1
        self._marker = _UNKNOWN

    async def poll(self) -> None:
        """Read the record's marker every ``settings_poll_seconds``, for ever (cancelled by the gateway's close).

        A database out of reach is logged once until it answers again; after ``settings_stale_seconds`` without an
        answer, :meth:`saved` refuses (fails closed).
        """
        self._polling = True
        store = self.gateway.store()
        failing = False
        try:
            while True:
                generation = self._generation
                try:
                    marker = await asyncio.get_running_loop().run_in_executor(self._poller, store.marker)
                except Exception as error:  # StoreError, or the pool's own (a timeout): the poll goes on
                    if not failing:
                        log.warning(
                            "Cannot read the saved settings' marker (kept as they were): %s",
                            error if isinstance(error, StoreError) else type(error).__name__,
                        )
                    failing = True
                else:
                    failing = False
                    self._read_at = time.monotonic()
                    if generation == self._generation:  # no change of this replica's since the read began
                        self._marker = marker
                await asyncio.sleep(self.gateway.config.settings_poll_seconds)
        finally:
            self._polling = False

    async def saved(self) -> Saved:
        """The saved settings as they are now (no query when unchanged; marker and keys read on the thread pool).

        Fails closed: when the database has not answered the poll for ``settings_stale_seconds``, the answer is a
        :class:`Saved` with a ``problem`` (/v1 refuses with 503) until it answers again, so a removal made through
        another replica is never ignored for longer.
        """
        if not self._polling:
            self.gateway.start()  # a gateway nobody started (a test's): the poll starts with its first call
        stale = self._stale()
        if stale is not None:
            return stale
        saved, marker = self._saved, self._marker
        if saved is not None and marker is not _UNKNOWN and saved.fingerprint == marker:
            return saved
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._marker is _UNKNOWN:
                generation = self._generation
                try:
                    marker = await self.gateway.run(self.gateway.store().marker)
                except StoreError as error:
                    return Saved(_UNKNOWN, problem=str(error))
                self._read_at = time.monotonic()
                if generation == self._generation:
                    self._marker = marker
            else:
                marker = self._marker
            if self._saved is None or self._saved.fingerprint != marker:
                previous, self._saved = self._saved, await self.gateway.run(self._load, marker)
                if previous is not None:  # the Microsoft Entra ID credentials of the integration before
                    for old_route in previous.routes.values():
                        old_route.close()
            return self._saved

    def _stale(self) -> Saved | None:
        """A refusal when the poll has not read the marker for ``settings_stale_seconds``; None while it reads it."""
        if not self._read_at:
            return None  # never read yet: the first call reads it
        silent = time.monotonic() - self._read_at
        if silent <= self.gateway.config.settings_stale_seconds:
            return None
        return Saved(
            _UNKNOWN,
            problem=f"the gateway's database has not answered for {silent:.0f} s, so whether the saved integration "
            "is still in force is not known here (it may have been changed through another replica); it is used "
            "again as soon as the database answers.",
        )

    def _load(self, fingerprint: Any) -> Saved:
        from ..models import AzureOpenAIIntegration
        from ..transport import routes_for

        store = self.gateway.store(self.gateway.config.keyring)
        try:
            record = store.read()
        except StoreError as error:
            return Saved(fingerprint, problem=str(error))
        if not record.configured:
            return Saved(fingerprint, record)
        try:
            integration = store.load()
        except (StoreError, KeyringUnavailable) as error:
            return Saved(fingerprint, record, problem=str(error))
        if integration is None:
            return Saved(fingerprint, None)
        from .addresses import refused_endpoints

        refused = refused_endpoints(integration, self.gateway.addresses)
        if refused:
            return Saved(fingerprint, record, problem=" ".join(refused.values()))
        names: dict[Role, tuple[str, ...]] = {}
        for role in ("language", "embeddings"):
            if isinstance(integration, AzureOpenAIIntegration):
                first = integration.deployment(role).deployment_id
            else:
                first = integration.language_model if role == "language" else integration.embeddings_model
            answered = record.models.get(role)
            names[role] = (first, answered) if answered and answered != first else (first,)
        return Saved(fingerprint, record, routes_for(integration, self.gateway.config.timeouts), names)

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            from ..transport import make_client

            config = self.gateway.config
            self._client = make_client(
                Timeouts(connect=config.timeouts.connect, check=config.deadline), network_backend=self.gateway.network
            )
        return self._client

    async def close(self) -> None:
        self._poller.shutdown(wait=False, cancel_futures=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class V1Handler(BaseHandler):
    """Errors in OpenAI's shape; the caller must have the use scope and pass the allow-list."""

    def initialize(self, gateway: Gateway) -> None:
        super().initialize(gateway)
        self.body_cap = gateway.config.max_request_bytes

    def error_json(self, status: int, kind: str, message: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "error": {
                "message": message,
                "type": _TYPES.get(status, "api_error"),
                "param": extra.get("param"),
                "code": extra.get("code") or _CODES.get(kind, kind),
            }
        }

    def http_error_message(self, status_code: int) -> str:
        if status_code in (404, 405):
            said = "does not take" if status_code == 405 else "has no"
            path = self.request.path[len(self.gateway.config.prefix) - 1 :]
            return f"The AI gateway {said} {self.request.method} {path}; it serves {ENDPOINTS}."
        return super().http_error_message(status_code)

    async def usable(self) -> Saved:
        """The saved settings, if this caller may use them now.

        Raises:
            _Refused: no use scope (403), the allow-list leaves the caller out (403), the keys cannot be read (503).
        """
        if USE_SCOPE not in self.caller.scopes:
            raise _Refused(
                403,
                "not_allowed",
                f"Your JupyterHub token does not carry the {USE_SCOPE} scope, so it cannot use AI; ask the hub's admin "
                "for a role that grants it (and restart your server, so its token gets it).",
                code="not_allowed",
            )
        saved = await self.gateway.upstream.saved()
        if saved.configured and not saved.allows(self.caller):
            raise _Refused(
                403,
                "not_allowed",
                f'AI functionality is not enabled for {self.caller.name!r}: ask an admin to add you to "Who may use AI" '
                "in AI Settings.",
                code="not_allowed",
            )
        if saved.problem is not None:
            raise _Refused(
                503, "unavailable", f"The saved integration cannot be used now: {saved.problem}", code="store_error"
            )
        return saved


class ModelsHandler(V1Handler):
    """``GET /v1/models``: the saved models (none when AI functionality is disabled)."""

    async def get(self) -> None:
        if not self.admitted():
            return
        try:
            saved = await self.usable()
        except _Refused as refused:
            self.refuse(refused)
            return
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "organization"}
            for name in saved.primary_names().values()
        ]
        self.finish({"object": "list", "data": data})


class _ForwardHandler(V1Handler):
    """Forwards one POST to the saved integration's endpoint for :attr:`role`."""

    role: Role
    operation: str
    _task: asyncio.Future[None] | None = None
    _closed = False
    _recorded = False
    _hide_usage = False
    #: Bytes of the request sent on, and stream events forwarded, once the provider answered 200 (for an estimate).
    _sent_bytes = 0
    _events_forwarded = 0
    _answered = False
    _event: dict[str, Any]
    _started: float

    def on_connection_close(self) -> None:
        """The caller hung up: the request to the provider is cancelled."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()

    async def post(self) -> None:
        if not self.admitted():
            return
        self._started = time.perf_counter()
        from datetime import datetime, timezone

        event: dict[str, Any] = {
            "at": datetime.now(timezone.utc),
            "username": self.caller.name,
            "groups": list(self.caller.groups),
            "operation": self.operation,
            "role": self.role,
            "model": None,
            "stream": False,
            "outcome": None,
            "code": None,
            "status": None,
            "prompt_tokens": None,
            "completion_tokens": None,
            "total_tokens": None,
            "latency_ms": None,
            "request_id": None,
            "replica": getattr(self.gateway, "replica", None),
        }
        self._event = event
        try:
            saved = await self.usable()
            body = self.json_body()
            model = body.get("model")
            if not saved.configured:
                raise _Refused(
                    400,
                    "ai_disabled",
                    "AI functionality is disabled: no OpenAI integration is configured; ask an admin to add one in AI Settings.",
                    code="ai_disabled",
                    param="model",
                )
            if not isinstance(model, str):
                wanted = saved.primary_names()[self.role]
                raise _Refused(
                    400,
                    "invalid_request",
                    f"The request must name a model: \"model\" must be a string, '{wanted}' here. The models that "
                    f"exist are {saved.described()}.",
                    code="model_not_found",
                    param="model",
                )
            role = saved.role_of(model)
            event["model"] = model if role is not None else None  # a caller's other text is never kept
            if role != self.role:
                wanted = saved.primary_names()[self.role]
                said = f"'{model}'" if len(model) <= 128 else "The model given"
                why = (
                    f"{said} is the organization's {ROLE_LABELS[role].lower()}, not its {ROLE_LABELS[self.role].lower()}"
                    if role is not None
                    else f"{said} is not one of the organization's models"
                )
                raise _Refused(
                    400,
                    "model_not_found",
                    f"{why}: send model='{wanted}' here. The models that exist are {saved.described()}.",
                    code="model_not_found",
                    param="model",
                )
            event["stream"] = stream = body.get("stream") is True
            route = saved.routes[role]
            payload = {name: value for name, value in body.items() if name != "model"} | route.body
            self._hide_usage = False
            if stream and self.role == "language" and asks_stream_usage(route, payload):
                options = payload.get("stream_options")
                payload["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
                self._hide_usage = True  # asked by the gateway: the usage chunk is not the caller's
            if self.gateway.config.record_usage:
                await self._admit(event)
            try:
                content = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            except (RecursionError, ValueError):
                raise _Refused(
                    400, "TypeError", "The request body is JSON nested too deeply to send on; send a flatter body."
                ) from None
        except _Refused as refused:
            event.update(outcome="refused", code=refused.extra.get("code") or refused.kind, status=refused.status)
            self._record()
            self.refuse(refused)
            return
        self._task = asyncio.ensure_future(self._forward(route, content, stream, event))
        try:
            await asyncio.wait_for(self._task, self.gateway.config.deadline)
        except asyncio.TimeoutError:
            event.update(outcome="failed", code=FailureCode.TIMEOUT.value, status=504)
            self._deadline_passed(route, stream)
        except (asyncio.CancelledError, tornado.iostream.StreamClosedError):
            event.update(outcome="cancelled", code="client_closed")
        self._record()

    async def _admit(self, event: dict[str, Any]) -> None:
        """Count this call against the budgets that apply to the caller (one transaction), or refuse it.

        Raises:
            _Refused: 429 ``budget_exceeded`` / ``rate_limit_exceeded`` (a budget has no room; ``Retry-After`` is
                set), 503 ``store_error`` (the budgets cannot be checked: the call is refused, never let through).
        """
        from .db import GatewayDatabaseError

        budgets = self.gateway.budgets
        try:
            if budgets.fresh():
                applying = budgets.applying(self.caller.name, self.caller.groups)
            else:
                applying = await asyncio.wait_for(
                    self.gateway.run(budgets.applying, self.caller.name, self.caller.groups), ADMIT_SECONDS
                )
            if not applying:
                return
            admissions = self.gateway.admissions
            admitted, exceeded = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(
                    admissions.executor, admissions.admit, applying, event["at"]
                ),
                ADMIT_SECONDS,
            )
        except (GatewayDatabaseError, asyncio.TimeoutError) as error:
            if isinstance(error, asyncio.TimeoutError):
                error = GatewayDatabaseError(f"the database did not answer within {ADMIT_SECONDS:g} seconds")
            log.error("Budgets cannot be checked: %s", error)
            raise _Refused(
                503,
                "unavailable",
                "The AI gateway cannot check the budgets now (its database does not answer); try again in a minute.",
                code="store_error",
            ) from None
        if exceeded is not None:
            from datetime import datetime, timezone

            self.set_header("retry-after", str(exceeded.retry_after(datetime.now(timezone.utc))))
            raise _Refused(429, exceeded.code, exceeded.message(), code=exceeded.code)
        event["spend"] = admitted
        event["details"] = {"budgets": admitted}

    def _record(self) -> None:
        """Hand the usage event over once, before the answer ends (see :meth:`Gateway.record_use` for when it is written)."""
        if self._recorded:
            return
        self._recorded = True
        self._event["latency_ms"] = round((time.perf_counter() - self._started) * 1000, 1)
        if self._answered and self._event.get("total_tokens") is None:
            self._estimate_tokens(self._event)
        self.gateway.record_use(dict(self._event))  # a copy: the writer's thread must not see later changes

    def _estimate_tokens(self, event: dict[str, Any]) -> None:
        """Tokens for a call the provider answered without its usage figures: a stream the caller left before the
        usage chunk, or an Azure api-version too old to send one. Counted against the budgets all the same, so
        hanging up early never makes a call free: the prompt as its request's bytes / 4 (:data:`BYTES_PER_TOKEN`,
        OpenAI's rule of thumb for English), the answer as one token per stream event forwarded (OpenAI and Azure
        send about one token per chunk). Marked ``details.estimated``."""
        prompt = -(-self._sent_bytes // BYTES_PER_TOKEN)
        completion = self._events_forwarded
        event.update(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
        event["details"] = {**(event.get("details") or {}), "estimated": True}

    async def _forward(self, route: Route, content: bytes, stream: bool, event: dict[str, Any]) -> None:
        from ..entra import SignInFailed
        from ..transport import _classify_transport, sign_in_failure

        client = self.gateway.upstream.client()
        headers = route.headers
        if route.tokens is not None:  # Microsoft Entra ID: the gateway signs in (in practice as its machine identity)
            try:
                headers = route.bearer(await route.tokens.token_async())
            except SignInFailed as error:
                failed = sign_in_failure(error, route.tokens)
                self._upstream_failed(route, failed.code, failed.outcome, None, event)
                return
        request = client.build_request("POST", route.url, headers=headers, content=content)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as error:
            code = _classify_transport(error)
            self._upstream_failed(route, code, Outcome(), None, event)
            return
        try:
            if response.status_code != 200:
                await self._failed_answer(route, response, event)
                return
            self._answered, self._sent_bytes = True, len(content)
            self.set_status(200)
            self.set_header("content-type", _content_type(response, route.key, stream))
            request_id = _request_id(response, route.key)
            if request_id is not None:
                self.set_header("x-request-id", request_id)
                event["request_id"] = request_id
            if stream:
                self.set_header("cache-control", "no-cache")
                self.set_header("x-accel-buffering", "no")
            sent = 0
            cap = self.gateway.config.max_answer_bytes
            tail = b""  # the end of a non-streamed answer; the unfinished event of a stream
            try:
                async for received in response.aiter_bytes():
                    sent += len(received)
                    if sent > cap:
                        log.warning("An answer of %s was cut at %d bytes (the cap).", route.target.host, cap)
                        event.update(outcome="failed", code="too_large", status=200)
                        self._record()
                        self.request.connection.close()  # type: ignore[union-attr]
                        return
                    chunk = received
                    if stream:
                        tail, chunk = self._events(tail + received, event)
                        if not chunk:
                            continue
                        if b"[DONE]" in chunk and _DONE.search(chunk):  # a client may stop here: record the call first
                            event.update(outcome="ok", code="ok", status=200)
                            self._record()
                    else:
                        tail = (tail + received)[-USAGE_TAIL_BYTES:]
                    self.write(chunk)
                    await self.flush()
                if stream and tail:
                    self.write(tail)
                elif not stream:
                    event.update(answer_tokens(tail, whole=sent <= USAGE_TAIL_BYTES))
            except httpx.HTTPError as error:  # the provider broke off mid-answer
                from ..transport import _classify_transport

                code = _classify_transport(error).value
                event.update(outcome="failed", code=code, status=200)
                self._record()
                if stream:
                    message = "The provider broke off the answer midway; try again."
                    self.write(f"data: {json.dumps(self.error_json(502, code, message, {'code': code}))}\n\n".encode())
                    self.finish()
                else:
                    self.request.connection.close()  # type: ignore[union-attr]
                return
            event.update(outcome="ok", code="ok", status=200)
            self._record()
            self.finish()
        finally:
            await response.aclose()

    def _events(self, pending: bytes, event: dict[str, Any]) -> tuple[bytes, bytes]:
        """Split ``pending`` stream bytes at the last event boundary: ``(unfinished rest, complete events to send)``.

        An event carrying ``usage`` (the service's counts, as the last chunk when ``include_usage`` was asked)
        sets the event's tokens; when the gateway asked for it (the caller did not), that chunk is left out.
        """
        ends = list(_EVENT_END.finditer(pending))
        if not ends:
            return pending, b""
        self._events_forwarded += len(ends)
        done, rest = pending[: ends[-1].end()], pending[ends[-1].end() :]
        if b'"usage"' not in done or not _USAGE_KEY.search(_NULL_USAGE.sub(b"", done)):
            return rest, done
        kept: list[bytes] = []
        start = 0
        for end in ends:
            block = pending[start : end.end()]
            start = end.end()
            if b'"usage"' in block and _USAGE_KEY.search(_NULL_USAGE.sub(b"", block)):
                data = b"".join(line[5:].strip() for line in block.splitlines() if line.startswith(b"data:"))
                try:
                    chunk = json.loads(data)
                except ValueError:
                    chunk = None
                if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
                    event.update(tokens_of(chunk["usage"]))
                    if self._hide_usage and chunk.get("choices") == []:
                        continue
            kept.append(block)
        return rest, b"".join(kept)

    async def _failed_answer(self, route: Route, response: httpx.Response, event: dict[str, Any]) -> None:
        from ..transport import _classify_status, _read_error, scrub

        raw = b""
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) > MAX_ERROR_BYTES:
                break
        try:
            body = json.loads(raw[:MAX_ERROR_BYTES])
        except ValueError:
            body = None
        error = _read_error(body)
        status = response.status_code
        code = _classify_status(route.provider, status, error) if error is not None or status >= 500 else None
        said = scrub(error.message, route.key) if error is not None and error.message else ""
        if code is None:
            code = FailureCode.UNEXPECTED_RESPONSE
        retry = _retry_headers(response, route.key)
        outcome = Outcome(status=status, vendor_message=said)
        if code is FailureCode.UNEXPECTED_RESPONSE and status == 400 and error is not None:
            param = scrub(error.param, route.key) if error.param else None
            self._answer_error(400, said or "The provider refused the request as malformed.", code.value, param, event)
            return
        self._upstream_failed(route, code, outcome, retry, event)

    def _upstream_failed(
        self, route: Route, code: FailureCode, outcome: Outcome, headers: dict[str, str] | None, event: dict[str, Any]
    ) -> None:
        if code in (FailureCode.RATE_LIMITED, FailureCode.QUOTA_EXCEEDED):
            status = 429
        elif code is FailureCode.TIMEOUT:
            status = 504
        else:
            status = 502
        explanation = explain(code, route.target, outcome, self.gateway.config.timeouts)
        code = explanation.code or code  # a deployment that signs in: the token refused, or the role missing
        message = f"The {ROLE_LABELS[route.target.role].lower()} request failed: {explanation.wrong} {explanation.analyst_todo}"
        if outcome.vendor_message and code is not FailureCode.INVALID_API_KEY:
            message += f" The service said: “{outcome.vendor_message}”"
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        self._answer_error(status, message.replace(route.key.get_secret_value(), "[key]"), code.value, None, event)

    def _answer_error(self, status: int, message: str, code: str, param: str | None, event: dict[str, Any]) -> None:
        event.update(outcome="failed", code=code, status=status)
        self._record()
        self.set_status(status)
        self.set_header("content-type", "application/json")
        self.finish(self.error_json(status, code, message, {"code": code, "param": param}))

    def _deadline_passed(self, route: Route, stream: bool) -> None:
        deadline = self.gateway.config.deadline
        message = (
            f"The {ROLE_LABELS[route.target.role].lower()} request took longer than the gateway's {deadline:g} seconds "
            "and was stopped; ask for a shorter answer, or try again later."
        )
        self._record()
        if self._closed:
            return
        if not self._headers_written:
            self.set_status(504)
            self.finish(self.error_json(504, "timeout", message, {"code": FailureCode.TIMEOUT.value}))
        elif stream:
            error = json.dumps(self.error_json(504, "timeout", message, {"code": FailureCode.TIMEOUT.value}))
            self.write(f"data: {error}\n\n".encode())
            self.finish()
        else:
            self.request.connection.close()  # type: ignore[union-attr]


class ChatHandler(_ForwardHandler):
    """``POST /v1/chat/completions`` to the saved language model (streamed with ``"stream": true``)."""

    role: Role = "language"
    operation = "chat"


class EmbeddingsHandler(_ForwardHandler):
    """``POST /v1/embeddings`` to the saved embeddings model."""

    role: Role = "embeddings"
    operation = "embeddings"


class V1NotFound(_NotFound, V1Handler):
    """Any other path under ``/v1``: 404 in OpenAI's shape, naming the endpoints that exist."""

    def initialize(self, gateway: Gateway) -> None:
        V1Handler.initialize(self, gateway)
        self.body_cap = _NotFound.body_cap
