"""The AI calls' writer: each forwarded call's usage event, and what it spent, written to the gateway's database.

One background thread per gateway takes the events handed to :meth:`UsageWriter.put` and writes
them in batches, one transaction each (a group commit; a batch gathers for at most
:data:`BATCH_SECONDS` after its first event, and at once when a reader waits): the usage rows
(``ai_gateway_usage_events``) and, for calls a budget admitted, the tokens they spent
(``ai_gateway_spend``, :func:`~ai_admin_widgets.gateway.budgets.settle`). A call therefore never waits
for the database after its answer; its row is committed within :data:`BATCH_SECONDS` and a commit's
time of the answer's end. :meth:`UsageWriter.flush` waits until everything
handed over so far is committed: :meth:`~ai_admin_widgets.gateway.app.Gateway.usage` (``api/usage``)
flushes first, so a caller who has their answer finds their call there; :meth:`UsageWriter.close` writes
what is left.

A batch the database refuses, or that cannot reach it, is kept and tried again, waiting
:data:`FIRST_BACKOFF` seconds, then twice as long each time up to :data:`MAX_BACKOFF`; every attempt that fails is
logged (one warning line). So a database outage of minutes loses nothing: the calls are recorded, and their tokens
settled in the budgets, once it answers again. Memory stays bounded: at most ``max_waiting`` events
(:data:`MAX_WAITING`) wait; past that the oldest are dropped, said in one error line per attempt with how many.
What a replica killed with SIGKILL has not written yet (at most :data:`BATCH_SECONDS` of calls, or what waited
for the database) is lost; see docs/gateway-database.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["USAGE_COLUMNS", "UsageWriter"]

log = logging.getLogger("ai_admin_widgets.gateway")

#: The keys of a usage event that are columns of ``ai_gateway_usage_events`` (the contract with metrics and reports).
USAGE_COLUMNS = (
    "username",
    "groups",
    "operation",
    "role",
    "model",
    "stream",
    "outcome",
    "code",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "request_id",
    "replica",
)
#: Seconds the writer waits, after the first event of a batch, for more to write in the same transaction (unless a
#: reader is waiting, or BATCH_MAX are there): each call then costs a share of one commit.
BATCH_SECONDS = 0.02
BATCH_MAX = 500
#: The most events one transaction writes (a backlog after an outage is written in several).
WRITE_MAX = 5000
#: Seconds before the first retry of a batch the database refused; each further one waits twice as long, up to MAX.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
#: The most events that wait for the database (about 1 KiB each); past that the oldest are dropped.
MAX_WAITING = 100_000
#: The text columns' lengths (a longer value is cut, never refused).
_LENGTHS = {"username": 255, "operation": 64, "role": 32, "model": 255, "outcome": 32, "code": 64}
_LENGTHS |= {"request_id": 128, "replica": 255}


def usage_row(event: dict[str, Any]) -> dict[str, Any]:
    """The ``ai_gateway_usage_events`` row of ``event``: its columns, ``at`` (the call's start, UTC), ``details``."""
    row: dict[str, Any] = {name: event.get(name) for name in USAGE_COLUMNS}
    for name, length in _LENGTHS.items():
        if isinstance(row[name], str):
            row[name] = row[name][:length]
    row["username"] = row["username"] or "-"
    row["operation"] = row["operation"] or "-"
    row["outcome"] = row["outcome"] or "failed"
    row["stream"] = bool(row["stream"])
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "status"):
        value = row[name]
        row[name] = value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None
    at = event.get("at")
    row["at"] = at if isinstance(at, datetime) else datetime.now(timezone.utc)
    details = event.get("details")
    row["details"] = details if isinstance(details, dict) and details else None
    return row


class UsageWriter:
    """Writes usage events (and budgets' spend) on a thread of its own, every waiting event in one transaction."""

    def __init__(self, engine: Engine, *, max_waiting: int = MAX_WAITING) -> None:
        """``max_waiting``: the most events kept while the database does not answer (the oldest dropped past it)."""
        self.engine = engine
        self.max_waiting = max(1, max_waiting)
        self._queue: deque[tuple[dict[str, Any], Future[None] | None]] = deque()
        self._dropped = 0  # events dropped because too many waited, not yet logged
        self._condition = threading.Condition()
        self._handed = 0  # events put so far
        self._written = 0  # events written (or dropped) so far
        self._closed = False
        self._hurry = False  # a reader waits: write now
        self._cleaned = 0.0  # when old minute windows were last deleted (monotonic)
        self._thread = threading.Thread(target=self._run, name="ai-gateway-usage", daemon=True)
        self._thread.start()

    def put(self, event: dict[str, Any], *, notify: bool = False) -> Future[None] | None:
        """Hand one event over (returns at once; written on the writer's thread).

        Returns:
            With ``notify``, a future done when the event's batch is committed (or dropped); else None.
        """
        future: Future[None] | None = Future() if notify else None
        with self._condition:
            if self._closed:
                log.error("A usage event came after the gateway closed; it is not recorded.")
                if future is not None:
                    future.set_result(None)
                return future
            self._queue.append((event, future))
            self._handed += 1
            self._trim()
            self._condition.notify_all()
        return future

    def _trim(self) -> None:
        """Drop the oldest waiting events past ``max_waiting`` (holding the condition's lock)."""
        while len(self._queue) > self.max_waiting:
            _, future = self._queue.popleft()
            self._dropped += 1
            self._written += 1
            if future is not None:
                future.set_result(None)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event handed over so far is committed (or dropped); False if ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._condition:
            target = self._handed
            if self._written < target:
                self._hurry = True
                self._condition.notify_all()
            while self._written < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is waiting, then stop the thread."""
        self.flush(timeout)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.0  # seconds to wait before the next attempt: the last one failed
        while True:
            with self._condition:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if not self._queue and self._closed:
                    return
                if backoff and not self._closed:
                    self._condition.wait_for(lambda: self._closed, backoff)  # close() cuts it short
                gather_until = time.monotonic() + BATCH_SECONDS  # what comes meanwhile: one transaction for all
                while not self._closed and not self._hurry and len(self._queue) < BATCH_MAX:
                    left = gather_until - time.monotonic()
                    if left <= 0:
                        break
                    self._condition.wait(left)
                self._hurry = False
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), WRITE_MAX))]
            failed = self._write([event for event, _ in batch])
            with self._condition:
                if failed is not None:
                    if self._closed:  # closing and the database still does not answer: say what is lost
                        batch += list(self._queue)
                        self._queue.clear()
                        log.error(
                            "The gateway closed while its database did not answer (%s): %d AI call(s) are not "
                            "recorded.",
                            failed,
                            len(batch),
                        )
                    else:
                        self._queue.extendleft(reversed(batch))  # kept, oldest first, for the next attempt
                        self._trim()
                        backoff = min(max(2 * backoff, FIRST_BACKOFF), MAX_BACKOFF)
                        log.warning(
                            "Cannot record %d AI call(s) in the gateway's database now (%s); keeping them and "
                            "trying again in %g s.",
                            len(self._queue),
                            failed,
                            backoff,
                        )
                        batch = []
                    if self._dropped:
                        log.error(
                            "%d AI call(s) waiting to be recorded were dropped, the oldest: at most %d wait while "
                            "the gateway's database does not answer.",
                            self._dropped,
                            self.max_waiting,
                        )
                        self._dropped = 0
                else:
                    backoff = 0.0
                self._written += len(batch)
                self._condition.notify_all()
            for _, future in batch:
                if future is not None:
                    future.set_result(None)

    def _write(self, batch: list[dict[str, Any]]) -> str | None:
        """Write ``batch`` in one transaction; None when committed, else the database's reason (first line)."""
        from .budgets import forget_old_minutes, settle
        from .db import relaxed_commit, usage_table

        rows = [usage_row(event) for event in batch]
        try:
            with self.engine.begin() as connection:
                relaxed_commit(connection)
                connection.execute(usage_table.insert(), rows)
                settle(connection, batch)
                if time.monotonic() - self._cleaned > 60:
                    self._cleaned = time.monotonic()
                    forget_old_minutes(connection, datetime.now(timezone.utc))
            return None
        except Exception as error:  # the database refused or is unreachable: kept and tried again
            from .db import _masked

            reason = _masked(str(getattr(error, "orig", None) or error), self.engine.url).strip().splitlines()
            return reason[0] if reason else type(error).__name__
