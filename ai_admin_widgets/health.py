"""The integration's health: how long ago it was last authenticated, and whether that is too long.

Pure: nothing here does I/O or reads the clock; every function takes the current time
as an argument, so the answers can be checked at any time of day.

Vocabulary:

* **last authentication**: the most recent check of the *saved* credentials against the
  provider, at Save or by Test (``AISettings.test()``, ``ai-admin test``).
* **stale**: that check is older than the configured age (default 7 days), so nobody
  knows whether the credentials still work (a key may have been rotated since).
* **health**: one word for all of it (:class:`Health`).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone

__all__ = ["DEFAULT_STALE_AFTER", "STALE_AFTER_ENV", "Health", "duration_text", "parse_stale_after_days", "time_ago"]

#: How old the last authentication may be before the integration counts as stale.
DEFAULT_STALE_AFTER = timedelta(days=7)

#: The environment variable that sets that age, in days (a number such as ``7`` or ``0.5``).
STALE_AFTER_ENV = "AI_ADMIN_STALE_AFTER_DAYS"


class Health(str, enum.Enum):
    """The integration's health, from its last authentication."""

    # One member per state; the first that applies wins, in this order.
    NOT_CONFIGURED = "not_configured"  # nothing is saved: AI functionality is disabled
    FAILING = "failing"  # the last authentication of the saved credentials failed
    STALE = "stale"  # none on record, or the last one is older than the configured age
    OK = "ok"  # the last authentication succeeded, recently enough

    @property
    def label(self) -> str:
        """The state in the admin's words: ``"ok"``, ``"failing"``, ``"stale"`` or ``"not configured"``."""
        return self.value.replace("_", " ")


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _utc(moment: datetime) -> datetime:
    """``moment`` as an aware datetime; a naive one is taken to be UTC (the store writes UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def time_ago(then: datetime, now: datetime) -> str:
    """How long before ``now`` the moment ``then`` was, in words, rounded down.

    Args:
        then: the earlier moment (aware, or naive meaning UTC).
        now: the current moment (aware, or naive meaning UTC).
    Returns:
        ``"just now"`` (under a minute, or ``then`` after ``now`` by a clock difference
        between servers), ``"1 minute ago"``, ``"5 minutes ago"``, ``"3 hours ago"``,
        ``"2 days ago"``; days are the largest unit (``"400 days ago"``).
    """
    seconds = (_utc(now) - _utc(then)).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{_plural(int(seconds // 60), 'minute')} ago"
    if seconds < 86400:
        return f"{_plural(int(seconds // 3600), 'hour')} ago"
    return f"{_plural(int(seconds // 86400), 'day')} ago"


def duration_text(delta: timedelta) -> str:
    """A length of time in words, in its largest whole unit: ``"7 days"``, ``"36 hours"``, ``"90 minutes"``.

    Args:
        delta: a positive length of time.
    Returns:
        Whole days when ``delta`` is a whole number of days, else whole hours, else whole
        minutes (rounded down), else seconds.
    """
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return _plural(seconds // size, unit)
    if seconds >= 60:
        return _plural(seconds // 60, "minute")
    return _plural(seconds, "second")


def parse_stale_after_days(text: str, *, source: str = STALE_AFTER_ENV) -> timedelta:
    """Read an age in days, as an admin writes it in ``AI_ADMIN_STALE_AFTER_DAYS`` or ``--stale-after-days``.

    Args:
        text: a number of days from one minute to 36500, such as ``"7"``, ``"0.5"`` or ``" 30 "``.
        source: where the text came from, named in the error message (empty: not named,
            for argparse, which names the option itself).
    Returns:
        The age as a ``timedelta``.
    Raises:
        ValueError: ``text`` is not a number of days from one minute to 36500; the message
            names ``source`` and gives an example.
    """
    try:
        days = float(text.strip())
    except ValueError:
        days = float("nan")
    if days * 86400 >= 60 and days <= 36500:  # NaN fails both; under a minute or over a century is a typo
        return timedelta(days=days)
    subject = f"{source} must" if source else "must"
    raise ValueError(
        f"{subject} be a number of days from one minute (0.0007) to 36500, such as 7 or 0.5 (it is {text.strip()!r})."
    )
