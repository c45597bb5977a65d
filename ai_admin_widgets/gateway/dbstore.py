"""The gateway's settings record and audit log in its database (``ai_gateway_settings``, ``ai_gateway_audit_events``).

:class:`DatabaseSettingsStore` is the :class:`~ai_admin_widgets.store.SettingsStore` of a gateway: the same
methods and the same all-or-nothing order for keys (the new revision's keys into the keyring, then the
record, then the old revision's keys deleted; a failure leaves the old record and deletes what it wrote),
with the record in one row of ``ai_gateway_settings`` and each audit event a row of
``ai_gateway_audit_events``. The keys stay behind the keyring interface: several replicas share them only
through :class:`~ai_admin_widgets.gateway.dbkeyring.DatabaseKeyring` (``$AI_ADMIN_CRYPT_KEY`` set), never
through a keyrings.cryptfile file, which is one machine's.

Writes are serialized across replicas twice over: a lock held for the whole change (on PostgreSQL a
transaction-level advisory lock, ``pg_advisory_xact_lock``; on SQLite, whose replicas share one machine,
a file lock beside the database file), and the revision guard of the write itself
(``UPDATE ... WHERE revision = <the revision read under the lock>``, or an insert that fails if another
inserted first). A save that started from a revision that has moved on writes nothing (not even its keys)
and raises :class:`~ai_admin_widgets.models.ConcurrentChange`, saying who changed it and when.

A gateway first started on a database without a settings row takes the folder's ``settings.json`` and
``audit.jsonl`` into it (:func:`import_folder`), once; the audit log is kept for ``--audit-keep-days``
(:func:`prune_audit`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import filelock
import sqlalchemy as sa
from keyring.backend import KeyringBackend
from pydantic import ValidationError
from sqlalchemy.engine import Connection, Engine

from ..models import ConcurrentChange, StoreError
from ..store import (
    SettingsRecord,
    SettingsStore,
    _bounded_lines,
    _event,
    _keyring_timeout_from_environment,
    _NotRegularFile,
    _now,
    _open_regular,
    salvaged_access,
)
from .db import GatewayDatabaseError, audit_table, connected, settings_table, sqlite_path

__all__ = ["LOCK_TIMEOUT", "DatabaseSettingsStore", "import_folder", "prune_audit"]

log = logging.getLogger("ai_admin_widgets.gateway")

#: Seconds a change waits for another replica's change to finish before it is refused.
LOCK_TIMEOUT = 30
#: The PostgreSQL advisory lock key of the settings (any 64-bit number no other program of the database uses).
LOCK_KEY = 0x41_49_41_44_4D_49_4E  # "AIADMIN"
#: The one settings row's id.
ROW = 1
#: Where the record is, in messages.
WHERE = "the AI gateway's database"
#: Audit events inserted per statement by the import.
IMPORT_BATCH = 1000
_UNREAD = object()


class _Conflict(Exception):
    """The guarded write found the row moved on (rolled back)."""


def _changed_by(record: SettingsRecord) -> ConcurrentChange:
    when = f" at {record.updated_at:%Y-%m-%d %H:%M:%S} UTC" if record.updated_at else ""
    return ConcurrentChange(
        f"The OpenAI integration was changed by {record.updated_by or 'someone else'}{when} while this change was "
        "being made, so nothing was saved. Reload it (close and reopen the form) and save again."
    )


@contextmanager
def _as_store_errors() -> Iterator[None]:
    """The database's errors as the store's (StoreError), so the service handles them as a folder's."""
    try:
        yield
    except GatewayDatabaseError as error:
        raise StoreError(str(error)) from None


class DatabaseSettingsStore(SettingsStore):
    """The settings record and the audit log of a gateway in its database; the keys in ``keyring``.

    Args:
        engine: the gateway's database, at the current schema (:func:`~ai_admin_widgets.gateway.db.open_database`).
        keyring: the backend holding the keys (None: a store that only reads the record and the audit log).
            Replicas need one they share: :class:`~ai_admin_widgets.gateway.dbkeyring.DatabaseKeyring`.
        keyring_timeout: seconds one keyring call may take (default ``$AI_ADMIN_KEYRING_TIMEOUT`` or 10).
        lock_timeout: seconds a change waits for another replica's change (default :data:`LOCK_TIMEOUT`).
    """

    def __init__(
        self,
        engine: Engine,
        keyring: KeyringBackend | None,
        *,
        keyring_timeout: float | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.keyring_timeout = keyring_timeout if keyring_timeout is not None else _keyring_timeout_from_environment()
        self.lock_timeout = lock_timeout
        path = sqlite_path(engine)
        self.home = path.parent if path is not None else Path()
        self._guard = threading.local()

    def __repr__(self) -> str:
        return f"<DatabaseSettingsStore {self.engine.url.render_as_string(hide_password=True)}>"

    @property
    def _record_name(self) -> str:
        return WHERE

    # -- reading -------------------------------------------------------------- #

    def _row(self) -> Any:
        with _as_store_errors(), connected(self.engine) as connection:
            return connection.execute(sa.select(settings_table).where(settings_table.c.id == ROW)).first()

    def read(self) -> SettingsRecord:
        """The settings record; an empty one (revision 0) before the first save.

        Raises:
            StoreError: the database cannot be reached, or its record is not a valid one.
        """
        row = self._row()
        if getattr(self._guard, "held", False):
            self._guard.revision = None if row is None else row.revision  # what this change's write must find
        if row is None:
            return SettingsRecord()
        try:
            return SettingsRecord.model_validate(row.record)
        except (ValidationError, ValueError, TypeError):
            raise StoreError(
                f"The settings record in {WHERE} is damaged, so the OpenAI integration cannot be read. Remove the "
                "integration (the Remove button, or `ai-admin remove --yes`) and add it again."
            ) from None

    def _salvaged(self) -> SettingsRecord | None:
        """The store id, revision and access fields of a damaged record, when it still holds them; else None."""
        try:
            row = self._row()
        except StoreError:
            return None
        data = row.record if row is not None else None
        if not isinstance(data, dict):
            return None
        kept = salvaged_access(data)
        if row is not None and isinstance(row.store_id, str) and len(row.store_id) >= 8:
            kept["store_id"] = row.store_id
            kept["revision"] = max(int(row.revision), 0)
        return SettingsRecord(**kept) if kept else None

    def marker(self) -> tuple[str, int, str] | None:
        """``(store id, revision, time of the last write)`` of the settings row, None when there is none: one small query.

        Every write (save, remove, recorded authentication, access change) sets the row's ``updated_at``, so the
        marker changes with each; replicas poll it to notice a change made through another.

        Raises:
            StoreError: the database cannot be reached.
        """
        with _as_store_errors(), connected(self.engine) as connection:
            row = connection.execute(
                sa.select(settings_table.c.store_id, settings_table.c.revision, settings_table.c.updated_at).where(
                    settings_table.c.id == ROW
                )
            ).first()
        if row is None:
            return None
        return row.store_id, row.revision, row.updated_at.isoformat() if row.updated_at else ""

    def fingerprint(self) -> tuple[str, int, str] | None:  # type: ignore[override]
        """:meth:`marker`, or None when there is no record or the database cannot be reached."""
        try:
            return self.marker()
        except StoreError:
            return None

    # -- writing -------------------------------------------------------------- #

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the settings' lock across replicas for one change (see the module's docstring).

        Raises:
            StoreError: another replica held it for :attr:`lock_timeout` seconds, or the database is out of reach.
        """
        busy = StoreError(
            f"Another AI gateway replica has been changing the OpenAI integration for {self.lock_timeout:g} seconds; "
            "try again in a minute."
        )
        self._guard.held, self._guard.revision = True, _UNREAD
        try:
            path = sqlite_path(self.engine)
            if path is not None:
                lock = filelock.FileLock(f"{path}.settings-lock", timeout=self.lock_timeout, mode=0o600)
                try:
                    lock.acquire()
                except filelock.Timeout:
                    raise busy from None
                except OSError as error:
                    raise StoreError(f"Cannot take the lock beside {path} ({error.strerror}).") from None
                try:
                    yield
                finally:
                    lock.release()
                return
            with _as_store_errors(), connected(self.engine) as connection:
                connection.execute(sa.text(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'"))
                try:
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
                except sa.exc.OperationalError:  # lock_timeout: LockNotAvailable
                    raise busy from None
                yield  # the lock is the transaction's: released when the connection rolls back, or is lost
        finally:
            self._guard.held = False

    def _write_record(self, record: SettingsRecord) -> None:
        """Write ``record`` as the row, guarded by the revision this change read under the lock.

        Raises:
            ConcurrentChange: the row moved on since (a writer that did not take the lock), or another inserted it.
            StoreError: the database cannot be reached or refused the write; nothing changed.
            RuntimeError: called outside :meth:`_locked` (a programming error).
        """
        if not getattr(self._guard, "held", False):
            raise RuntimeError("the settings row is written only under the settings' lock")
        if self._guard.revision is _UNREAD:
            self._row_revision()
        expected = self._guard.revision
        values = {
            "store_id": record.store_id,
            "revision": record.revision,
            "record": record.model_dump(mode="json"),
            "updated_by": record.updated_by,
            "updated_at": _now(),
        }
        try:
            with _as_store_errors(), connected(self.engine, write=True) as connection:
                if expected is None:
                    try:
                        connection.execute(sa.insert(settings_table).values(id=ROW, **values))
                    except sa.exc.IntegrityError:  # another replica inserted the first record meanwhile
                        raise _Conflict from None
                else:
                    done = connection.execute(
                        sa.update(settings_table)
                        .where(settings_table.c.id == ROW, settings_table.c.revision == expected)
                        .values(**values)
                    )
                    if done.rowcount != 1:
                        raise _Conflict
        except _Conflict:
            raise _changed_by(self._current_or_empty()) from None
        self._guard.revision = record.revision

    def _row_revision(self) -> None:
        row = self._row()
        self._guard.revision = None if row is None else row.revision

    def _current_or_empty(self) -> SettingsRecord:
        try:
            return self.read()
        except StoreError:
            return SettingsRecord()

    def _record_exists(self) -> bool:
        return self._row() is not None

    def _put_damaged_aside(self) -> None:
        """A damaged record is replaced in place by :meth:`remove` (its store id, revision and access lists kept
        when they can be read), so AI can always be switched off; its revision is taken for the guarded write."""
        self._row_revision()
        log.warning("The damaged settings record in %s was replaced by an empty one (Remove).", WHERE)

    def check_writable(self) -> None:
        """Check, before anything is sent or changed, that the database answers.

        Raises:
            StoreError: it cannot be reached; the message names it (password hidden) and why.
        """
        with _as_store_errors(), connected(self.engine) as connection:
            connection.execute(sa.select(sa.literal(1)))

    def clean_leftovers(self) -> None:
        """Delete the keys an interrupted or failed save or remove left in the keyring (under the lock)."""
        if self.keyring is None:
            return
        with self._locked():
            try:
                if self._row() is None:
                    return
                record = self.read()
            except StoreError:
                return
            self._sweep(record, neighbours=True)

    # -- audit ---------------------------------------------------------------- #

    def append_audit(self, event: dict[str, Any]) -> None:
        """Add one event (a JSON-ready dict without secrets), stamped with ``at``.

        Raises:
            StoreError: the database cannot be reached or refused the write.
        """
        now = _now()
        with _as_store_errors(), connected(self.engine, write=True) as connection:
            _insert_events(connection, [{"at": now.isoformat(), **event}])

    def audit_log(self, limit: int | None = None, *, before: int | None = None) -> list[dict[str, Any]]:
        """The audit events, oldest first, each with its ``id``: the newest ``limit`` (all when None) below ``before``.

        Raises:
            TypeError: ``limit`` or ``before`` is not a whole number (or None).
            ValueError: ``limit`` is negative.
            StoreError: the database cannot be reached.
        """
        for name, value in (("limit", limit), ("before", before)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{name} must be a whole number or None, not {type(value).__name__}.")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be 0 or more events, not {limit}.")
        query = sa.select(audit_table.c.id, audit_table.c.event).order_by(audit_table.c.id.desc())
        if before is not None:
            query = query.where(audit_table.c.id < before)
        if limit is not None:
            query = query.limit(limit)
        with _as_store_errors(), connected(self.engine) as connection:
            rows = connection.execute(query).all()
        return [{**row.event, "id": row.id} for row in reversed(rows) if isinstance(row.event, dict)]


def _moment(text: Any) -> datetime | None:
    """An event's ``at`` as an aware UTC time, or None when it is not an ISO 8601 time."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _insert_events(connection: Connection, events: Sequence[dict[str, Any]]) -> int:
    """Insert audit events (each with an ISO ``at``; one without is skipped); returns how many were inserted."""
    rows = []
    for event in events:
        at = _moment(event.get("at"))
        if at is None:
            continue
        actor = event.get("actor")
        rows.append(
            {
                "at": at,
                "action": str(event.get("action") or "")[:64],
                "actor": actor[:255] if isinstance(actor, str) else None,
                "event": event,
            }
        )
    if rows:
        connection.execute(sa.insert(audit_table), rows)
    return len(rows)


def prune_audit(engine: Engine, keep_days: float) -> int:
    """Delete the audit events older than ``keep_days`` days; returns how many. ``keep_days`` 0 or less keeps all.

    Raises:
        GatewayDatabaseError: the database cannot be reached.
    """
    if keep_days <= 0:
        return 0
    cutoff = _now() - timedelta(days=keep_days)
    with connected(engine, write=True) as connection:
        return int(connection.execute(sa.delete(audit_table).where(audit_table.c.at < cutoff)).rowcount or 0)


def import_folder(engine: Engine, home: Path) -> tuple[SettingsRecord, int] | None:
    """Take ``home``'s ``settings.json`` and ``audit.jsonl`` into a database that has no settings row yet; once.

    For an operator upgrading from the folder-based gateway: the record keeps its store id and revision, so its
    keys are found where the keyring holds them (keyrings.cryptfile's file in ``home``; a database keyring has
    none of them: the integration is then edited once, its key typed again). One ``import`` audit event says so.
    The files are left as they are. Two replicas starting at once import once (the settings' lock).

    Returns:
        The imported record and how many audit events came with it; None when there was nothing to import
        (no files, or the database already has a record).
    Raises:
        StoreError: ``settings.json`` is damaged (nothing is imported: fix or remove it, then start again), or
            the database cannot be written.
    """
    files = SettingsStore(home, None)
    record_file, audit_file = home / "settings.json", home / "audit.jsonl"
    if not os.path.lexists(record_file) and not os.path.lexists(audit_file):
        return None
    store = DatabaseSettingsStore(engine, None)
    if store._row() is not None:
        return None
    record = files.read() if os.path.lexists(record_file) else SettingsRecord()
    with store._locked():
        if store._row() is not None:
            return None  # another replica imported it meanwhile
        count = 0
        with _as_store_errors(), connected(engine, write=True) as connection:
            batch: list[dict[str, Any]] = []
            for event in _file_events(audit_file):
                batch.append(event)
                if len(batch) >= IMPORT_BATCH:
                    count += _insert_events(connection, batch)
                    batch = []
            count += _insert_events(connection, batch)
            _insert_events(
                connection,
                [
                    {
                        "at": _now().isoformat(),
                        "actor": "ai-admin gateway",
                        "action": "import",
                        "provider": record.provider.value if record.provider else None,
                        "changed": [],
                        "outcome": "ok",
                        "error": f"settings.json (revision {record.revision}) and {count} audit events from {home}",
                    }
                ],
            )
            connection.execute(
                sa.insert(settings_table).values(
                    id=ROW,
                    store_id=record.store_id,
                    revision=record.revision,
                    record=record.model_dump(mode="json"),
                    updated_by=record.updated_by,
                    updated_at=_now(),
                )
            )
    log.warning(
        "Imported %s (revision %d) and %d audit events into %s, once; the gateway now reads them there only, and the "
        "files stay as they were. Its keys stay in the keyring that holds them.",
        record_file,
        record.revision,
        count,
        WHERE,
    )
    return record, count


def _file_events(path: Path) -> Iterator[dict[str, Any]]:
    """The events of an ``audit.jsonl``, front to back (damaged lines skipped); none when it is missing."""
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except (FileNotFoundError, _NotRegularFile):
        return
    except OSError as error:
        raise StoreError(f"Cannot read the audit log {path} ({error.strerror}).") from None
    with os.fdopen(fd, "rb") as handle:
        for line in _bounded_lines(handle):
            event = _event(line)
            if event is not None:
                yield event
