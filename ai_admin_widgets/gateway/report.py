"""The usage report: the AI calls in ``ai_gateway_usage_events``, summed per UTC day and per user, group or model.

Read by ``api/usage-report`` (for those who may configure), hence by ``ai-admin usage`` and the panel's
Usage region. Everything is summed in the database (SQLite or PostgreSQL), so a report costs a few
grouped queries over the ``at`` index, whatever the number of calls, and its size is bounded: at most
:data:`~ai_admin_widgets.models.MAX_USAGE_DAYS` days, :data:`CHART_KEYS` keys a day (the rest summed as ``"(others)"``) and
:data:`MAX_TOTALS` totals. Tokens are the provider's own figures (``total_tokens``, else prompt +
completion; a call without figures counts 0 tokens but still counts as a call).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..models import DEFAULT_USAGE_DAYS, UsageDay, UsageReport, UsageTotal, check_usage_since, parse_usage_by
from . import db

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["CHART_KEYS", "MAX_TOTALS", "TOP_USERS", "usage_report"]

#: The keys each day of :attr:`UsageReport.days` names (those with the most tokens over the report); the others
#: are summed under ``"(others)"``, so a chart stays readable and a report small however many users there are.
CHART_KEYS = 12
#: The most keys :attr:`UsageReport.totals` lists (those with the most tokens).
MAX_TOTALS = 500
#: How many users :attr:`UsageReport.top_users` lists.
TOP_USERS = 10
OTHERS, NO_GROUP, NO_MODEL = "(others)", "(no group)", "(none)"


def usage_report(
    engine: Engine, since: date | None = None, by: str = "user", *, today: date | None = None
) -> UsageReport:
    """The usage report of the calls recorded in ``engine``'s database from ``since`` (UTC) to today.

    Args:
        engine: the gateway's database.
        since: the first day counted; default the last :data:`~ai_admin_widgets.models.DEFAULT_USAGE_DAYS` days, today included.
        by: ``"user"``, ``"group"`` (a call counts for each of its caller's groups; callers in none as
            ``"(no group)"``) or ``"model"`` (the model the caller named).
        today: the last day counted (default: today in UTC).
    Raises:
        ValueError: ``since`` or ``by`` is not one a report takes (see :func:`~ai_admin_widgets.models.check_usage_since`).
        GatewayDatabaseError: the database cannot be read.
    """
    today = today or datetime.now(timezone.utc).date()
    by = parse_usage_by(by)
    since = check_usage_since(since, today=today) or today - timedelta(days=DEFAULT_USAGE_DAYS - 1)
    usage = db.usage_table
    start = datetime.combine(since, time.min, tzinfo=timezone.utc)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=timezone.utc)
    dialect = engine.dialect.name
    source, key = _grouping(by, dialect)
    within = sa.and_(usage.c.at >= start, usage.c.at < end)
    day = _day(usage.c.at, dialect)
    with db.connected(engine) as connection:
        ranked = _summed(source, key, within).order_by(sa.desc("tokens"), key).limit(MAX_TOTALS)
        totals = _totals(connection.execute(ranked))
        shown = [total.key for total in totals[:CHART_KEYS]]
        chart_key = sa.case((key.in_(shown), key), else_=sa.literal(OTHERS)) if shown else sa.literal(OTHERS)
        per_day = _summed(source, chart_key, within, day).order_by(day, sa.desc("tokens"))
        days = [UsageDay(day=_as_date(row.day), **_measures(row, row.key)) for row in connection.execute(per_day)]
        days.sort(key=lambda entry: (entry.day, entry.key == OTHERS))  # stable: most tokens first, the others last
        user = usage.c.username
        top = _summed(usage, user, within).order_by(sa.desc("tokens"), user).limit(TOP_USERS)
        top_users = _totals(connection.execute(top))
        overall_row = connection.execute(sa.select(*_measure_columns()).where(within)).one()
    return UsageReport(
        since=since,
        until=today,
        by=by,
        days=tuple(days),
        totals=tuple(totals),
        top_users=tuple(top_users),
        overall=UsageTotal(**_measures(overall_row, "all")),
    )


def _grouping(by: str, dialect: str) -> tuple[Any, Any]:
    """The FROM clause and the key column of ``by``."""
    usage = db.usage_table
    if by == "user":
        return usage, usage.c.username
    if by == "model":
        return usage, sa.func.coalesce(usage.c.model, NO_MODEL)
    # A row per group of the caller (an outer join: a caller in no group keeps one row, under NO_GROUP).
    if dialect == "postgresql":
        groups = sa.case(
            (sa.func.jsonb_typeof(usage.c.groups) == "array", usage.c.groups), else_=sa.literal_column("'[]'::jsonb")
        )
        each = sa.func.jsonb_array_elements_text(groups).table_valued("value").lateral("caller_group")
    else:
        groups = sa.case(
            (sa.func.json_type(usage.c.groups) == "array", usage.c.groups), else_=sa.literal_column("'[]'")
        )
        each = sa.func.json_each(groups).table_valued("value").alias("caller_group")
    return usage.outerjoin(each, sa.true()), sa.func.coalesce(each.c.value, NO_GROUP)


def _day(at: Any, dialect: str) -> Any:
    """The UTC calendar day of ``at`` (SQLite keeps UTC text: its date; PostgreSQL: the date at UTC)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone("UTC", at), sa.Date)
    return sa.func.date(at)


def _measure_columns() -> list[Any]:
    usage = db.usage_table
    prompt = sa.func.coalesce(usage.c.prompt_tokens, 0)
    completion = sa.func.coalesce(usage.c.completion_tokens, 0)
    return [
        sa.func.count().label("calls"),
        sa.func.coalesce(sa.func.sum(sa.case((usage.c.outcome == "failed", 1), else_=0)), 0).label("failures"),
        sa.func.coalesce(sa.func.sum(sa.case((usage.c.outcome == "refused", 1), else_=0)), 0).label("refused"),
        sa.func.coalesce(sa.func.sum(prompt), 0).label("prompt_tokens"),
        sa.func.coalesce(sa.func.sum(completion), 0).label("completion_tokens"),
        sa.func.coalesce(sa.func.sum(sa.func.coalesce(usage.c.total_tokens, prompt + completion)), 0).label("tokens"),
    ]


def _summed(source: Any, key: Any, within: Any, day: Any = None) -> sa.Select[Any]:
    """SELECT [day,] key, the measures FROM source WHERE within GROUP BY [day,] key."""
    keyed = key.label("key")
    columns = ([day.label("day")] if day is not None else []) + [keyed, *_measure_columns()]
    grouped = ([day] if day is not None else []) + [key]
    return sa.select(*columns).select_from(source).where(within).group_by(*grouped)


def _measures(row: Any, key: str) -> dict[str, Any]:
    return {
        "key": str(key),
        "calls": int(row.calls or 0),
        "failures": int(row.failures or 0),
        "refused": int(row.refused or 0),
        "prompt_tokens": int(row.prompt_tokens or 0),
        "completion_tokens": int(row.completion_tokens or 0),
        "tokens": int(row.tokens or 0),
    }


def _totals(rows: Sequence[Any] | Any) -> list[UsageTotal]:
    return [UsageTotal(**_measures(row, row.key if row.key is not None else "")) for row in rows]


def _as_date(value: Any) -> date:
    """A day from the database: a ``date`` (PostgreSQL) or ``YYYY-MM-DD`` text (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
