"""Budgets and limits, enforced atomically in the gateway's database, so several replicas share them.

A budget (:class:`~ai_admin_widgets.models.Budget`) caps the tokens of a user, a group or the whole
organization per UTC day or UTC month, or a user's requests per UTC minute. Each budget counts, per
window (the day, month or minute a call starts in), the calls it admitted and the tokens of those
that have ended (``ai_gateway_spend``: ``tokens``, ``admitted``, ``settled``).

**Admission** (:func:`admit`) is one transaction, before anything is sent to the provider: for every
budget that applies to the caller, in a fixed order, ``UPDATE … SET admitted = admitted + 1 WHERE tokens
< limit`` (requests: ``WHERE admitted < limit``). On PostgreSQL the update takes the row's lock and
re-reads the row after waiting for another replica's, so two replicas never both pass a check the
count allows only once; SQLite has a single writer. If one budget has no room, the whole transaction
is rolled back and the call is refused (429), naming that budget and when its window ends. The gateway
admits through :class:`Admissions`: the same check in one statement (one round trip), this one-by-one
transaction only for a window's first call or a refusal.

**Settling** (:func:`settle`): when the call ends, its ``total_tokens`` as the service counted them
(0 when it gave none: a failed or cancelled call) are added to each budget that admitted it, in the
window it was admitted in, by the usage writer (:mod:`~ai_admin_widgets.gateway.usage`).

**The bound.** A call is admitted only while the counted tokens are below the limit, and a call's
tokens are counted only when it ends. So once the limit is reached nothing more is admitted, and
the last call admitted saw ``counted < limit`` with ``k = admitted - settled`` calls in flight (itself
included). Every call admitted in the window is then counted or in flight, so at the end
``spend = counted + (the tokens of those k calls) < limit + k × (the most tokens one call takes)``:
spend passes the limit by at most the tokens of the calls that were already admitted, and not yet
ended, when the limit was reached. :func:`admit` returns ``counted`` and ``k`` for each budget
(kept in the usage row's ``details``), so the bound can be checked call by call.

A budget set during a window starts from the tokens already recorded in ``ai_gateway_usage_events``
for that window (the first call counted in a window seeds its row). The budgets themselves are read
at most once a second per replica (:class:`Budgets`), so a change made on one replica is in force on
every replica within a second.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..models import BUDGET_PERIODS, BUDGET_SCOPES, EVERY_USER, Budget, BudgetsView

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["Admissions", "Budgets", "Exceeded", "admit", "settle", "window_end", "window_start"]

#: Seconds a replica keeps the budgets it read (a change elsewhere is in force within this time).
CACHE_SECONDS = 1.0
#: Minute windows older than this are deleted (they only serve requests-per-minute).
KEEP_MINUTES = 10


def window_start(period: str, now: datetime) -> datetime:
    """The start (UTC) of the day, month or minute ``now`` falls in."""
    now = now.astimezone(timezone.utc)
    if period == "minute":
        return now.replace(second=0, microsecond=0)
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def window_end(period: str, start: datetime) -> datetime:
    """The end (UTC) of the window that starts at ``start``: when its budget resets."""
    if period == "minute":
        return start + timedelta(minutes=1)
    if period == "day":
        return start + timedelta(days=1)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Exceeded:
    """Why a call was refused: the budget with no room left and when its window ends."""

    budget: Budget
    who: str  # the user counted, for a ``*`` budget; else the budget's name
    resets_at: datetime

    @property
    def code(self) -> str:
        return "rate_limit_exceeded" if self.budget.period == "minute" else "budget_exceeded"

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the window ends (at least 1), for ``Retry-After``."""
        return max(1, math.ceil((self.resets_at - now).total_seconds()))

    def message(self) -> str:
        """Which budget (scope, name, period, limit) has no room, and when it resets (ISO, UTC)."""
        budget = self.budget
        if budget.scope == "organization":
            whose = "the organization"
        elif budget.scope == "user" and budget.name == EVERY_USER:
            whose = f"each user (*), counted for '{self.who}',"
        else:
            whose = f"{budget.scope} '{budget.name}'"
        if budget.period == "minute":
            said = f"The request limit of {whose} is reached: {budget.limit} requests per minute"
        else:
            said = f"The token budget of {whose} is used up: {budget.limit} tokens per {budget.period} (UTC)"
        return (
            f"{said} (scope {budget.scope}, name '{budget.name}', period {budget.period}, limit {budget.limit}). "
            f"It resets at {self.resets_at.isoformat()}; try again then, or ask an admin to raise it in AI Settings."
        )


# -- reading and changing the budgets ---------------------------------------------------------------- #


def _order(budget: Budget) -> tuple[int, str, int]:
    return BUDGET_SCOPES.index(budget.scope), budget.name, BUDGET_PERIODS.index(budget.period)


def read_budgets(connection: Connection) -> list[Budget]:
    from .db import budgets_table as table

    budgets = [
        Budget(
            scope=row.scope,
            name=row.name,
            period=row.period,
            limit=row.limit,
            updated_by=row.updated_by,
            updated_at=_utc(row.updated_at),
        )
        for row in connection.execute(sa.select(table))
        if row.scope in BUDGET_SCOPES and row.period in BUDGET_PERIODS
    ]
    return sorted(budgets, key=_order)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Budgets:
    """One replica's view of the budgets: read at most every :data:`CACHE_SECONDS`, changed in the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cached: tuple[float, list[Budget]] | None = None
        self._lock = threading.Lock()

    def current(self) -> list[Budget]:
        """The budgets, as read at most :data:`CACHE_SECONDS` ago (blocks on the database when older)."""
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        with self._lock:
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] >= CACHE_SECONDS:
                from .db import connected

                with connected(self.engine) as connection:
                    cached = (time.monotonic(), read_budgets(connection))
                self._cached = cached
        return cached[1]

    def fresh(self) -> bool:
        """Whether :meth:`current` would answer without the database."""
        cached = self._cached
        return cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS

    def applying(self, username: str, groups: tuple[str, ...] | list[str]) -> list[tuple[Budget, str]]:
        """The budgets that count a call of ``username`` (in ``groups``), each with the name its spend is kept under."""
        budgets = self.current()
        own = {budget.period for budget in budgets if budget.scope == "user" and budget.name == username}
        found: list[tuple[Budget, str]] = []
        for budget in budgets:
            if budget.scope == "user":
                if budget.name == username or (budget.name == EVERY_USER and budget.period not in own):
                    found.append((budget, username))
            elif budget.scope == "group":
                if budget.name in groups:
                    found.append((budget, budget.name))
            else:
                found.append((budget, ""))
        return found

    def view(self, now: datetime | None = None) -> BudgetsView:
        """Every budget with what its current window has counted (blocks on the database)."""
        from .db import connected
        from .db import spend_table as spend

        now = now or datetime.now(timezone.utc)
        with connected(self.engine) as connection:
            budgets = read_budgets(connection)
            shown = []
            for budget in budgets:
                start = window_start(budget.period, now)
                used = None
                if budget.name != EVERY_USER:
                    column = spend.c.admitted if budget.period == "minute" else spend.c.tokens
                    used = connection.execute(
                        sa.select(column).where(*_key(budget.scope, budget.name, budget.period, start))
                    ).scalar()
                    if used is None:  # nothing counted in this window yet: what its first call will start from
                        used = _seed(connection, budget.scope, budget.name, budget.period, start)
                    used = int(used)
                shown.append(budget.model_copy(update={"used": used, "resets_at": window_end(budget.period, start)}))
        return BudgetsView(budgets=tuple(shown))

    def set(self, budget: Budget, actor: str) -> None:
        """Set (add or change) ``budget``; in force on this replica at once, on the others within a second."""
        from .db import budgets_table as table
        from .db import connected

        values = {
            "scope": budget.scope,
            "name": budget.name,
            "period": budget.period,
            "limit": budget.limit,
            "updated_by": actor,
            "updated_at": datetime.now(timezone.utc),
        }
        with connected(self.engine, write=True) as connection:
            changed = connection.execute(
                table.update()
                .where(table.c.scope == budget.scope, table.c.name == budget.name, table.c.period == budget.period)
                .values(limit=budget.limit, updated_by=actor, updated_at=values["updated_at"])
            )
            if not changed.rowcount:
                connection.execute(table.insert().values(**values))
        self._cached = None

    def remove(self, scope: str, name: str, period: str) -> bool:
        """Remove one budget; False when there was none such."""
        from .db import budgets_table as table
        from .db import connected

        with connected(self.engine, write=True) as connection:
            gone = connection.execute(
                table.delete().where(table.c.scope == scope, table.c.name == name, table.c.period == period)
            ).rowcount
        self._cached = None
        return bool(gone)


def forget_old_minutes(connection: Connection, now: datetime) -> None:
    """Delete the minute windows older than :data:`KEEP_MINUTES` (they only serve requests-per-minute)."""
    from .db import spend_table as spend

    connection.execute(
        spend.delete().where(spend.c.period == "minute", spend.c.window < now - timedelta(minutes=KEEP_MINUTES))
    )


# -- admission and settling ------------------------------------------------------------------------- #


def _key(scope: str, name: str, period: str, window: datetime) -> tuple[Any, ...]:
    from .db import spend_table as spend

    return (spend.c.scope == scope, spend.c.name == name, spend.c.period == period, spend.c.window == window)


def _seed(connection: Connection, scope: str, name: str, period: str, start: datetime) -> int:
    """The tokens already recorded for this budget's window (calls made before its first count there)."""
    from .db import usage_table as usage

    if period == "minute":
        return 0
    query = sa.select(sa.func.coalesce(sa.func.sum(usage.c.total_tokens), 0)).where(usage.c.at >= start)
    if scope == "user":
        query = query.where(usage.c.username == name)
    elif scope == "group":
        if connection.dialect.name == "postgresql":
            query = query.where(sa.text("ai_gateway_usage_events.groups @> CAST(:members AS jsonb)")).params(
                members=json.dumps([name])
            )
        else:
            query = query.where(
                sa.text(
                    "EXISTS (SELECT 1 FROM json_each(ai_gateway_usage_events.groups) WHERE json_each.value = :member)"
                )
            ).params(member=name)
    return int(connection.execute(query).scalar() or 0)


def _insert_ignoring_conflict(connection: Connection, values: dict[str, Any]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    from .db import spend_table as spend

    if connection.dialect.name == "postgresql":
        connection.execute(postgresql.insert(spend).values(**values).on_conflict_do_nothing())
    else:
        connection.execute(sqlite.insert(spend).values(**values).on_conflict_do_nothing())


def admit(
    engine: Engine, applying: list[tuple[Budget, str]], now: datetime
) -> tuple[list[dict[str, Any]], Exceeded | None]:
    """Count one call against every budget in ``applying``, atomically, if each has room.

    Returns:
        ``(admitted, None)``: the spend rows counted (``scope``, ``name``, ``period``, ``window`` (ISO), and
        ``counted`` / ``in_flight`` as they were when this call was admitted), for :func:`settle`; or
        ``([], Exceeded)`` when a budget has no room (nothing was counted).
    Raises:
        GatewayDatabaseError: the database cannot be reached (the caller refuses the call: fail closed).
    """
    from .db import connected

    ordered = sorted(applying, key=lambda item: (item[0].scope, item[1], item[0].period))
    admitted: list[dict[str, Any]] = []
    try:
        with connected(engine, write=True) as connection:
            _admit(connection, ordered, now, admitted)
    except _NoRoom as refused:  # raised inside the transaction, so it was rolled back: nothing counted
        return [], refused.exceeded
    return admitted, None


class Admissions:
    """One replica's admissions (:func:`admit`'s check, in fewer round trips): on a connection of their own, on a
    thread of their own (:attr:`executor`), one statement for all of a caller's budgets.

    Per call, when every budget's row of this window exists: ``UPDATE … SET admitted = admitted + 1 WHERE
    (<budget 1's key> AND tokens < <its limit>) OR …  RETURNING …`` in one transaction, committed only when it
    returned a row for every budget (else rolled back, and :func:`admit`'s one-budget-at-a-time path decides:
    it seeds a window's first row, or names the budget with no room). On PostgreSQL the rows are first locked in
    the fixed key order (``SELECT … ORDER BY … FOR UPDATE``), so replicas never deadlock, and the update re-reads
    each row after waiting for another replica's lock, as :func:`admit` does; its commit does not wait for the
    disk (``synchronous_commit = off`` for this connection). The connection is not checked before each use
    (no ``pool_pre_ping`` round trip): when the server dropped it, it is reconnected and the call tried once more.

    A refusal is remembered until its window ends (or the budget's limit changes): counts only grow within a
    window, so a later call that the same budget counts is refused without the database. Admitting is never
    decided from memory.
    """

    #: Budgets remembered as exhausted before the ones whose window ended are forgotten.
    REMEMBERED = 1024

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: The one thread admissions run on (their connection is used by one thread at a time).
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ai-gateway-admit")
        self._connection: Connection | None = None
        self._lock = threading.Lock()
        self._statements: dict[tuple[bool, ...], Any] = {}
        self._exhausted: dict[tuple[str, str, str, datetime, int], Exceeded] = {}

    def admit(self, applying: list[tuple[Budget, str]], now: datetime) -> tuple[list[dict[str, Any]], Exceeded | None]:
        """As :func:`admit` (same answer, same errors: GatewayDatabaseError when the database cannot be used)."""
        from .db import unusable

        ordered = sorted(applying, key=lambda item: (item[0].scope, item[1], item[0].period))
        keys: list[tuple[str, str, str, datetime]] = [
            (budget.scope, name, budget.period, window_start(budget.period, now)) for budget, name in ordered
        ]
        for (budget, _), key in zip(ordered, keys, strict=True):
            known = self._exhausted.get((*key, budget.limit))
            if known is not None:
                return [], known
        with self._lock:
            for attempt in range(2):
                try:
                    admitted, exceeded = self._admit(ordered, keys, now)
                    break
                except sa.exc.DBAPIError as error:
                    self._drop()
                    if attempt or not error.connection_invalidated:
                        raise unusable(self.engine, error) from None
        if exceeded is not None:
            if len(self._exhausted) >= self.REMEMBERED:
                self._exhausted = {k: v for k, v in self._exhausted.items() if v.resets_at > now}
            budget = exceeded.budget
            start = window_start(budget.period, now)
            self._exhausted[(budget.scope, exceeded.who, budget.period, start, budget.limit)] = exceeded
        return admitted, exceeded

    def close(self) -> None:
        """Close the connection (not back to the pool: it has its own settings) and stop the thread."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a connection the server already dropped
                connection.invalidate()
                connection.close()

    def _connect(self) -> Connection:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET synchronous_commit = off")  # see db.relaxed_commit
        self._connection = connection
        return connection

    def _statement(self, minutes: tuple[bool, ...]) -> Any:
        """The one statement that admits a call against budgets of these kinds (True: a minute's requests)."""
        from .db import spend_table as spend

        update = self._statements.get(minutes)
        if update is None:
            matches = [
                sa.and_(
                    spend.c.scope == sa.bindparam(f"s{i}"),
                    spend.c.name == sa.bindparam(f"n{i}"),
                    spend.c.period == sa.bindparam(f"p{i}"),
                    spend.c.window == sa.bindparam(f"w{i}", type_=spend.c.window.type),
                )
                for i in range(len(minutes))
            ]
            rooms = [
                sa.and_(match, (spend.c.admitted if minute else spend.c.tokens) < sa.bindparam(f"l{i}"))
                for i, (match, minute) in enumerate(zip(matches, minutes, strict=True))
            ]
            # The rows, locked in key order (PostgreSQL; SQLite's one writer holds the file), each with whether it
            # has room as it is once locked (the newest version: read committed re-reads a row it waited for).
            locked = (
                sa.select(spend.c.scope, spend.c.name, spend.c.period, spend.c.window, sa.or_(*rooms).label("room"))
                .where(sa.or_(*matches))
                .order_by(spend.c.scope, spend.c.name, spend.c.period, spend.c.window)
                .with_for_update()
                .cte("locked")
            )
            with_room = sa.select(sa.func.count()).select_from(locked).where(locked.c.room).scalar_subquery()
            update = (
                spend.update()
                .where(
                    spend.c.scope == locked.c.scope,
                    spend.c.name == locked.c.name,
                    spend.c.period == locked.c.period,
                    spend.c.window == locked.c.window,
                    with_room == len(minutes),  # every budget has room, or no row is counted
                )
                .values(admitted=spend.c.admitted + 1)
                .returning(
                    spend.c.scope, spend.c.name, spend.c.period, spend.c.tokens, spend.c.admitted - spend.c.settled
                )
            )
            self._statements[minutes] = update
        return update

    def _admit(
        self, ordered: list[tuple[Budget, str]], keys: list[tuple[str, str, str, datetime]], now: datetime
    ) -> tuple[list[dict[str, Any]], Exceeded | None]:
        update = self._statement(tuple(budget.period == "minute" for budget, _ in ordered))
        values: dict[str, Any] = {}
        for i, ((budget, _), (scope, name, period, start)) in enumerate(zip(ordered, keys, strict=True)):
            values.update({f"s{i}": scope, f"n{i}": name, f"p{i}": period, f"w{i}": start, f"l{i}": budget.limit})
        connection = self._connection or self._connect()
        rows = {(row[0], row[1], row[2]): row for row in connection.execute(update, values)}  # its own commit
        if len(rows) == len(ordered):
            return [
                {
                    "scope": scope,
                    "name": name,
                    "period": period,
                    "window": start.isoformat(),
                    "counted": int(rows[scope, name, period][3]),
                    "in_flight": int(rows[scope, name, period][4]),
                }
                for scope, name, period, start in keys
            ], None
        # Nothing was counted: a window's first call (a row to seed), or a budget with no room. One budget at a
        # time, in a transaction of its own, as admit() does.
        from .db import connected

        admitted: list[dict[str, Any]] = []
        try:
            with connected(self.engine, write=True) as transaction:
                _admit(transaction, ordered, now, admitted)
        except _NoRoom as refused:
            return [], refused.exceeded
        return admitted, None


class _NoRoom(Exception):
    def __init__(self, exceeded: Exceeded) -> None:
        self.exceeded = exceeded


def _admit(
    connection: Connection, ordered: list[tuple[Budget, str]], now: datetime, admitted: list[dict[str, Any]]
) -> None:
    from .db import relaxed_commit
    from .db import spend_table as spend

    relaxed_commit(connection)
    for budget, name in ordered:
        start = window_start(budget.period, now)
        where = _key(budget.scope, name, budget.period, start)
        room = (spend.c.admitted < budget.limit) if budget.period == "minute" else (spend.c.tokens < budget.limit)
        update = (
            spend.update()
            .where(*where, room)
            .values(admitted=spend.c.admitted + 1)
            .returning(spend.c.tokens, spend.c.admitted - spend.c.settled)
        )
        row = connection.execute(update).first()
        if row is None and connection.execute(sa.select(spend.c.scope).where(*where)).first() is None:
            seed = _seed(connection, budget.scope, name, budget.period, start)
            _insert_ignoring_conflict(
                connection,
                {
                    "scope": budget.scope,
                    "name": name,
                    "period": budget.period,
                    "window": start,
                    "tokens": seed,
                    "admitted": 0,
                    "settled": 0,
                },
            )
            row = connection.execute(update).first()
        if row is None:
            raise _NoRoom(Exceeded(budget, name, window_end(budget.period, start)))
        admitted.append(
            {
                "scope": budget.scope,
                "name": name,
                "period": budget.period,
                "window": start.isoformat(),
                "counted": int(row[0]),
                "in_flight": int(row[1]),
            }
        )


def settle(connection: Connection, events: list[dict[str, Any]]) -> None:
    """Add each ended call's ``total_tokens`` (0 when none) to the budgets that admitted it (``event["spend"]``)."""
    from .db import spend_table as spend

    totals: dict[tuple[str, str, str, str], list[int]] = {}
    for event in events:
        tokens = event.get("total_tokens")
        tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0 else 0
        for key in event.get("spend") or ():
            entry = totals.setdefault((key["scope"], key["name"], key["period"], key["window"]), [0, 0])
            entry[0] += 0 if key["period"] == "minute" else tokens
            entry[1] += 1
    if not totals:
        return
    global _SETTLE
    if _SETTLE is None:  # built once: the same statement for every batch, its values bound
        _SETTLE = (
            spend.update()
            .where(
                spend.c.scope == sa.bindparam("k_scope"),
                spend.c.name == sa.bindparam("k_name"),
                spend.c.period == sa.bindparam("k_period"),
                spend.c.window == sa.bindparam("k_window", type_=spend.c.window.type),
            )
            .values(
                tokens=spend.c.tokens + sa.bindparam("k_tokens", type_=sa.BigInteger),
                settled=spend.c.settled + sa.bindparam("k_count", type_=sa.BigInteger),
            )
        )
    connection.execute(
        _SETTLE,
        [
            {
                "k_scope": scope,
                "k_name": name,
                "k_period": period,
                "k_window": datetime.fromisoformat(window),
                "k_tokens": tokens,
                "k_count": count,
            }
            for (scope, name, period, window), (tokens, count) in sorted(totals.items())
        ],
    )


_SETTLE: Any = None
