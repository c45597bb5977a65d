"""The gateway's health: ``{prefix}health/live``, ``{prefix}health/ready``, and the periodic re-authentication.

``health/live`` answers 200 as long as the process serves requests (a liveness probe restarts it otherwise).
``health/ready`` answers 200 when the gateway can do its work, else 503, with a JSON body naming each check::

    {"ready": false, "checks": {"database": {"ok": true, "detail": "reachable"},
                                "integration": {"ok": true, "detail": "configured"},
                                "authentication": {"ok": false, "detail": "the last authentication failed"}}}

* ``database``: a ``SELECT 1`` on the gateway's database answers within :data:`CHECK_SECONDS`;
* ``integration``: an integration is saved (and its record can be read);
* ``authentication``: its last authentication (a Save, a Test, or the re-authentication below) passed, within
  the re-authentication window: twice ``--reauth-minutes`` plus :data:`WINDOW_SLACK` (one missed run is
  tolerated); with re-authentication off, within the stale age (``AI_ADMIN_STALE_AFTER_DAYS``, default 7 days).

Neither needs a token (a load balancer's or Kubernetes' probe has none), and that is safe: the answers hold
fixed words only, never a key, a URL, a user, a model or an error's text; what they tell anyone who can
reach the gateway is whether AI is configured and working, which every user's panel shows anyway.

The re-authentication (``serve --reauth-minutes N``, default 60; 0 turns it off) checks the saved
integration again with the same check as Test (:meth:`AISettings.test() <ai_admin_widgets.AISettings.test>`
with nothing given: both models, recorded as the last authentication and audited, by
:data:`REAUTH_ACTOR`), on the thread pool. It runs when the last authentication on record is older than the
interval, so after a Save or a Test it waits, and with several replicas on one database the first replica to
find it due re-authenticates and the others find it fresh (two may now and then run at the same moment:
harmless, the outcome is the same). After a failed authentication (its own, a Test's, another replica's) it
tries again sooner: once the failure on record is ``reauth_retry_seconds`` old (60 s, at most the interval), and
every replica looks at the record that often, so a passing key is ready again on all of them within about a
minute, not an interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import tornado.web

from ..models import AIAdminError, NotConfigured
from .auth import CONFIGURE_SCOPE, Caller

if TYPE_CHECKING:
    from ..models import IntegrationStatus, VerificationReport
    from .app import Gateway

__all__ = ["REAUTH_ACTOR", "LiveHandler", "ReadyHandler", "Reauthentication", "readiness"]

log = logging.getLogger("ai_admin_widgets.gateway")

#: Who the re-authentication acts as, in the audit log ("Who" in History and ``ai-admin history``).
REAUTH_ACTOR = "ai-gateway (re-authentication)"
#: The gateway itself, for its own reads and re-authentications: it may configure, it is no hub user.
SYSTEM_CALLER = Caller(name=REAUTH_ACTOR, scopes=frozenset({CONFIGURE_SCOPE}))
#: Seconds each check of ``health/ready`` may take before it counts as failed.
CHECK_SECONDS = 5.0
#: Added to twice the re-authentication interval, for the checks' own time and a clock's drift.
WINDOW_SLACK = timedelta(minutes=1)


def reauth_window(gateway: Gateway) -> timedelta | None:
    """How old the last authentication may be for ``health/ready``; None: re-authentication is off (the stale age)."""
    seconds = gateway.config.reauth_seconds
    return 2 * timedelta(seconds=seconds) + WINDOW_SLACK if seconds > 0 else None


async def _database_check(gateway: Gateway) -> dict[str, Any]:
    import sqlalchemy as sa

    from .db import connected

    def ping() -> None:
        with connected(gateway.engine) as connection:
            connection.execute(sa.text("SELECT 1"))

    try:
        await asyncio.wait_for(gateway.run(ping), CHECK_SECONDS)
    except asyncio.TimeoutError:
        return {"ok": False, "detail": f"did not answer within {CHECK_SECONDS:g} seconds"}
    except Exception as error:  # GatewayDatabaseError and the like: its text names the server, so it is logged only
        log.warning("health/ready: the database check failed: %s", error)
        return {"ok": False, "detail": "unreachable"}
    return {"ok": True, "detail": "reachable"}


async def _status(gateway: Gateway) -> IntegrationStatus:
    settings = gateway.settings(SYSTEM_CALLER)
    return await asyncio.wait_for(gateway.run(settings.status), CHECK_SECONDS)


def _authentication_check(gateway: Gateway, status: IntegrationStatus) -> dict[str, Any]:
    from ..health import duration_text, time_ago

    at, ok = status.last_authenticated_at, status.last_authentication_ok
    if at is None or ok is None:
        return {"ok": False, "detail": "none on record"}
    now = datetime.now(timezone.utc)
    when = time_ago(at, now)
    if not ok:
        return {"ok": False, "detail": f"the last authentication failed ({when})"}
    window = reauth_window(gateway)
    if window is None:
        if status.stale:
            return {"ok": False, "detail": f"passed {when}, longer ago than the stale age"}
        return {"ok": True, "detail": f"passed {when}"}
    at = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
    if now - at > window:
        return {
            "ok": False,
            "detail": f"passed {when}, longer ago than the re-authentication window ({duration_text(window)})",
        }
    return {"ok": True, "detail": f"passed {when}"}


async def readiness(gateway: Gateway) -> dict[str, Any]:
    """The body of ``health/ready``: ``{"ready": bool, "checks": {name: {"ok", "detail"}}}`` (see the module)."""
    checks: dict[str, Any] = {"database": await _database_check(gateway)}
    try:
        status = await _status(gateway)
    except asyncio.TimeoutError:
        checks["integration"] = {"ok": False, "detail": f"its record did not answer within {CHECK_SECONDS:g} seconds"}
        status = None
    except Exception as error:  # StoreError and the like
        log.warning("health/ready: the settings cannot be read: %s", error)
        checks["integration"] = {"ok": False, "detail": "its record cannot be read"}
        status = None
    if status is not None:
        configured = status.configured
        checks["integration"] = {"ok": configured, "detail": "configured" if configured else "not configured"}
        checks["authentication"] = (
            _authentication_check(gateway, status) if configured else {"ok": False, "detail": "nothing to authenticate"}
        )
    else:
        checks["authentication"] = {"ok": False, "detail": "not known: the settings cannot be read"}
    return {"ready": all(check["ok"] for check in checks.values()), "checks": checks}


class _HealthHandler(tornado.web.RequestHandler):
    """No token, JSON, never cached."""

    gateway: Gateway

    def initialize(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def set_default_headers(self) -> None:
        self.set_header("content-type", "application/json")
        self.set_header("cache-control", "no-store")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": {"type": "HTTPError", "message": "The health check failed; see the gateway's log."}})


class LiveHandler(_HealthHandler):
    """``GET {prefix}health/live``: 200 ``{"live": true}`` while the process answers."""

    def get(self) -> None:
        self.finish({"live": True})

    head = get


class ReadyHandler(_HealthHandler):
    """``GET {prefix}health/ready``: 200 when every check passes, else 503; the body names each (see the module)."""

    async def get(self) -> None:
        body = await readiness(self.gateway)
        self.set_status(200 if body["ready"] else 503)
        self.finish(json.dumps(body))


class Reauthentication:
    """The periodic re-authentication of one gateway (see the module); started by :meth:`start`, on its event loop.

    Attributes:
        runs: how many re-authentications it has made (whatever their outcome).
        last_outcome: ``"ok"``, ``"failed"``, ``"error"`` (nothing could be checked: the keyring, the store)
            or None before the first.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.interval = float(gateway.config.reauth_seconds)
        #: Seconds after a failed authentication before the next try, and how often the record is looked at.
        self.retry = max(0.0, min(self.interval, float(gateway.config.reauth_retry_seconds)))
        self.runs = 0
        self.last_outcome: str | None = None
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Reauthentication(every {self.interval:g} s, {self.runs} runs)"

    def start(self) -> None:
        """Start re-authenticating on the running event loop (nothing when the interval is 0)."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._every_interval())

    async def stop(self) -> None:
        """Stop it (a check under way is abandoned; its thread finishes on its own)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _every_interval(self) -> None:
        while True:
            try:
                wait = await self._until_due()
            except Exception as error:  # the settings cannot be read now: try again soon
                log.warning("Re-authentication: the settings cannot be read (%s); trying again later.", error)
                wait = self.retry or self.interval
            if wait > 0:
                # look at the record again at least every retry: another replica or a Test may have failed meanwhile
                await asyncio.sleep(min(wait, self.retry or self.interval))
                continue
            report = await self.run_once()
            await asyncio.sleep(self.interval if report is not None and report.ok else (self.retry or self.interval))

    async def _until_due(self) -> float:
        """Seconds until the last authentication on record is due again: an interval after one that passed, a retry
        after one that failed (0: due now; an interval: nothing saved)."""
        status = await _status(self.gateway)
        if not status.configured:
            return self.interval
        at = status.last_authenticated_at
        if at is None:
            return 0.0
        after = self.interval if status.last_authentication_ok is not False else (self.retry or self.interval)
        at = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
        return max(0.0, (at + timedelta(seconds=after) - datetime.now(timezone.utc)).total_seconds())

    async def run_once(self) -> VerificationReport | None:
        """Re-authenticate the saved integration now, as Test does; the report, or None when nothing could be checked."""
        settings = self.gateway.settings(SYSTEM_CALLER)
        report: VerificationReport | None = None
        try:
            report = await self.gateway.run(settings.test)
        except NotConfigured:
            return None  # removed meanwhile: nothing to check
        except AIAdminError as error:  # the keyring or the store: not recorded as the credentials' failure
            outcome = "error"
            log.warning("Re-authentication could not check the saved integration: %s", error)
        except Exception as error:  # a bug: logged, and the loop goes on
            outcome = "error"
            log.error("Re-authentication failed unexpectedly (%s).", type(error).__name__)
        else:
            outcome = "ok" if report.ok else "failed"
            codes = ", ".join(check.code.value for check in report.checks)
            (log.info if report.ok else log.warning)(
                "Re-authentication of the saved integration: %s (%s).", outcome, codes
            )
        self.runs += 1
        self.last_outcome = outcome
        if self.gateway.metrics is not None:
            self.gateway.metrics.reauthenticated(outcome, time.time())
        return report
