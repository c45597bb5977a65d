"""The gateway's SQL database: where it is (``db_url``), its tables, and their Alembic migrations.

``db_url`` follows JupyterHub's ``c.JupyterHub.db_url``: a SQLAlchemy URL, SQLite by default
(``sqlite:///<home>/ai-gateway.sqlite``, a file in the gateway's folder), PostgreSQL in
production (``postgresql+psycopg://user:password@host/dbname``; a bare ``postgresql://`` is
taken to mean psycopg 3, the driver the ``hub`` extra installs). It comes from
``ai-admin gateway serve --db-url``, else ``$AI_ADMIN_GATEWAY_DB_URL``, else the default.

Every table is named ``ai_gateway_*`` and Alembic's version table is ``ai_gateway_alembic_version``,
so the gateway may share a PostgreSQL database with JupyterHub itself (whose tables, and whose
own ``alembic_version``, it never touches). The migrations ship inside the package
(``ai_admin_widgets/gateway/migrations``) and run programmatically: ``ai-admin gateway upgrade-db``
applies them; ``serve`` only checks (:func:`check_schema`) and refuses a schema that is behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection, Engine

from ..models import AIAdminError

__all__ = [
    "DB_FILE",
    "DB_URL_ENV",
    "VERSION_TABLE",
    "GatewayDatabaseError",
    "SchemaBehind",
    "budgets_table",
    "check_schema",
    "db_url",
    "head_revision",
    "make_engine",
    "metadata",
    "open_database",
    "safe_url",
    "schema_revision",
    "spend_table",
    "unusable",
    "upgrade",
]

DB_URL_ENV = "AI_ADMIN_GATEWAY_DB_URL"
#: The default database: this file in the gateway's folder.
DB_FILE = "ai-gateway.sqlite"
VERSION_TABLE = "ai_gateway_alembic_version"
#: Seconds to wait for a connection (PostgreSQL) or for another writer's lock (SQLite).
CONNECT_TIMEOUT = 10
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class GatewayDatabaseError(AIAdminError):
    """The gateway's database cannot be used (a bad URL, unreachable, refused); one line says what to do."""


class SchemaBehind(GatewayDatabaseError):
    """The database's schema is not the one this version needs (empty, older or newer); the message says what to run."""


# -- the tables ---------------------------------------------------------------------------- #

metadata = sa.MetaData()
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: An auto-incrementing 64-bit id (SQLite auto-increments only an INTEGER PRIMARY KEY, which is 64-bit there).
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)

#: The settings record (what ``settings.json`` holds: everything but the keys), one row per database (``id`` 1).
#: ``revision`` is the record's own; a change writes ``WHERE revision = <the one it started from>``, so saves
#: from several replicas are serialized and a loser learns who changed it and when (``updated_by``, ``updated_at``).
settings_table = sa.Table(
    "ai_gateway_settings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("store_id", sa.String(64), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("record", _JSON, nullable=False),
    sa.Column("updated_by", sa.String(255)),
    sa.Column("updated_at", _WHEN),
)

#: The audit events (one per add, edit, remove, test, refused save, access change); ``event`` is the whole event
#: as ``audit.jsonl`` holds it, ``at``/``action``/``actor`` are copied out of it for pages, filters and retention.
audit_table = sa.Table(
    "ai_gateway_audit_events",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("at", _WHEN, nullable=False, index=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(255)),
    sa.Column("event", _JSON, nullable=False),
)

#: The AI calls (``/v1``): who, when, which model, the tokens the service counted, how long, the outcome.
#: Never the prompt or the answer. ``groups`` are the caller's hub groups at the time (for budgets and
#: ``--by group``); ``replica`` the gateway process that forwarded it; ``details`` anything else, as JSON.
usage_table = sa.Table(
    "ai_gateway_usage_events",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("at", _WHEN, nullable=False, index=True),
    sa.Column("request_id", sa.String(128)),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("groups", _JSON),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("role", sa.String(32)),
    sa.Column("model", sa.String(255)),
    sa.Column("stream", sa.Boolean, nullable=False, default=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("code", sa.String(64)),
    sa.Column("status", sa.Integer),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("total_tokens", sa.Integer),
    sa.Column("latency_ms", sa.Float),
    sa.Column("replica", sa.String(255)),
    sa.Column("details", _JSON),
    sa.Index("ix_ai_gateway_usage_events_username_at", "username", "at"),
    sa.Index("ix_ai_gateway_usage_events_model_at", "model", "at"),
    sa.Index("ix_ai_gateway_usage_events_request_id", "request_id"),
)

#: The keyring's entries (:class:`~ai_admin_widgets.gateway.dbkeyring.DatabaseKeyring`): each password a
#: Fernet token (ASCII) under ``$AI_ADMIN_CRYPT_KEY``'s keys; never a value in clear.
secrets_table = sa.Table(
    "ai_gateway_secrets",
    metadata,
    sa.Column("service", sa.String(255), primary_key=True),
    sa.Column("username", sa.String(255), primary_key=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("updated_at", _WHEN, nullable=False),
)


#: The budgets and limits (r0002): one row per (scope, name, period). ``scope`` is ``user`` (``name`` a hub user,
#: or ``*``: each user, unless that user has a budget of their own for the period), ``group`` (a hub group: its
#: members' calls together) or ``organization`` (``name`` empty: every call). ``period`` is ``day`` or ``month``
#: (UTC; ``limit`` in tokens) or ``minute`` (``limit`` in requests; scope ``user`` only).
budgets_table = sa.Table(
    "ai_gateway_budgets",
    metadata,
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("limit", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(255)),
    sa.Column("updated_at", _WHEN),
)

#: What each budget has counted in one window (the UTC day, month or minute starting at ``window``): ``tokens`` of
#: the calls it admitted that have ended (``settled``), and ``admitted`` calls in all. ``admitted - settled``
#: are in flight. For a ``user``/``*`` budget the row's ``name`` is the user's own (each user is counted apart).
spend_table = sa.Table(
    "ai_gateway_spend",
    metadata,
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("window", _WHEN, primary_key=True),
    sa.Column("tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("admitted", sa.BigInteger, nullable=False, default=0),
    sa.Column("settled", sa.BigInteger, nullable=False, default=0),
)


# -- where it is ----------------------------------------------------------------------------- #


def db_url(option: str | None, home: Path, environ: Any = None) -> str:
    """The database URL: ``option`` (``--db-url``), else ``$AI_ADMIN_GATEWAY_DB_URL``, else the SQLite file in ``home``."""
    environ = os.environ if environ is None else environ
    chosen = option or environ.get(DB_URL_ENV, "")
    if chosen.strip():
        return chosen.strip()
    return f"sqlite:///{Path(home).expanduser().resolve() / DB_FILE}"


def _parsed(url: str) -> URL:
    """``url`` parsed, with ``postgresql://`` meaning psycopg 3.

    Raises:
        GatewayDatabaseError: not a URL SQLAlchemy reads, or not SQLite or PostgreSQL.
    """
    try:
        parsed = sa.make_url(url)
    except (
        Exception
    ):  # sqlalchemy.exc.ArgumentError and ValueError (a bad port); never show the URL: it may hold a password
        raise GatewayDatabaseError(
            f"--db-url ({DB_URL_ENV}) is not a database URL; give one like "
            "postgresql+psycopg://USER:PASSWORD@HOST/DBNAME or sqlite:////srv/ai-gateway/ai-gateway.sqlite."
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise GatewayDatabaseError(
            f"--db-url ({DB_URL_ENV}) names a {parsed.get_backend_name()} database; the gateway runs on SQLite "
            "or PostgreSQL (postgresql+psycopg://USER:PASSWORD@HOST/DBNAME)."
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise GatewayDatabaseError(
            f"--db-url ({DB_URL_ENV}) names an in-memory SQLite database, which forgets everything when the gateway "
            "stops; name a file: sqlite:////srv/ai-gateway/ai-gateway.sqlite."
        )
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_absolute():
        raise GatewayDatabaseError(
            f"--db-url ({DB_URL_ENV}) names a SQLite file by a relative path, which would depend on the folder the "
            "gateway starts in; give an absolute one, with four slashes: sqlite:////srv/ai-gateway/ai-gateway.sqlite."
        )
    if "@" in (parsed.host or "") or "@" in (parsed.username or ""):
        # SQLAlchemy splits at the first @: the rest of the password would be taken for the host, shown and resolved
        raise GatewayDatabaseError(
            f"--db-url ({DB_URL_ENV}) has an @ in its host part: write an @ inside the password as %40."
        )
    return parsed


def _is_password_key(key: str) -> bool:
    """Whether a URL query parameter named ``key`` holds a password (libpq's ``password`` and ``sslpassword``, or
    any parameter whose name says ``password`` or ``passwd``)."""
    lowered = key.lower()
    return "password" in lowered or "passwd" in lowered


def _passwords(url: URL) -> list[str]:
    """The passwords ``url`` holds: its ``user:password@`` part and its password-like query parameters."""
    found = [url.password] if url.password else []
    for key, value in url.query.items():
        if _is_password_key(key):
            found += [value] if isinstance(value, str) else list(value)
    return [each for each in found if each]


def safe_url(url: str | URL) -> str:
    """``url`` for a message: every password hidden (``***``): ``user:password@`` and query parameters such as
    ``?password=`` or ``?sslpassword=`` (libpq reads both from the URL). An @ in the host part (a password with an
    unencoded @) gives ``(the database URL)``: part of the password would be shown as the host."""
    try:
        parsed = url if isinstance(url, URL) else sa.make_url(url)
    except Exception:
        return "(the database URL)"
    if "@" in (parsed.host or "") or "@" in (parsed.username or ""):
        return "(the database URL)"
    hidden = {key: "***" for key in parsed.query if _is_password_key(key)}
    shown = parsed.update_query_dict(hidden) if hidden else parsed
    rendered = shown.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")
    return _masked(rendered, parsed)  # also where a password is repeated (as libpq's host=, say)


def _masked(text: str, url: URL) -> str:
    """``text`` (a driver's message) with every password of ``url`` replaced by ``***``."""
    for password in sorted(_passwords(url), key=len, reverse=True):
        text = text.replace(password, "***")
    return text


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (see :func:`_parsed`); nothing is connected yet.

    SQLite waits :data:`CONNECT_TIMEOUT` seconds for another writer's lock; PostgreSQL as long for a
    connection. Connections are checked before use (``pool_pre_ping``), so a restarted server is reconnected.

    Raises:
        GatewayDatabaseError: the URL is unusable, or its driver is not installed.
    """
    parsed = _parsed(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": CONNECT_TIMEOUT}
    else:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    try:
        engine = sa.create_engine(parsed, **options)
    except ImportError as error:
        raise GatewayDatabaseError(
            f"The database driver for {parsed.drivername} is not installed ({error.name}): "
            "pip install 'ai-admin-widgets[hub]'."
        ) from None
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_write_ahead)
    return engine


def _sqlite_write_ahead(connection: Any, record: Any) -> None:
    """SQLite in write-ahead-log mode with ``synchronous=NORMAL`` (SQLite's "WAL mode" page): readers do not wait for
    the writer, and a commit does not wait for the disk (a power cut may lose the last commits, never corrupts the
    file), so recording each AI call and checking budgets cost little. The ``-wal`` and ``-shm`` files beside the
    database get its mode (0600). WAL needs a local file system (not NFS): use PostgreSQL there."""
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def relaxed_commit(connection: Connection) -> None:
    """On PostgreSQL, let this transaction's commit return before its WAL record is on disk
    (``SET LOCAL synchronous_commit = off``: a crash may lose the last few ms of commits, never consistency;
    row locks and visibility are as always). For the counters of AI calls and budgets, which every call writes."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET LOCAL synchronous_commit = off"))


def sqlite_path(engine: Engine) -> Path | None:
    """The file of a SQLite engine, or None for another database."""
    if engine.url.get_backend_name() != "sqlite" or not engine.url.database:
        return None
    return Path(engine.url.database)


@contextmanager
def connected(engine: Engine, *, write: bool = False) -> Iterator[Connection]:
    """A connection to ``engine`` in a transaction (committed at the end when ``write``).

    Raises:
        GatewayDatabaseError: the database cannot be reached or refused the connection; the message names it
            and gives the server's reason, first line, with the URL's passwords hidden wherever they appear.
    """
    try:
        with engine.begin() if write else engine.connect() as connection:
            yield connection
    except sa.exc.DBAPIError as error:  # the driver's errors: unreachable, refused, a table gone
        raise unusable(engine, error) from None


def unusable(engine: Engine, error: sa.exc.DBAPIError) -> GatewayDatabaseError:
    """The error to raise for a driver's ``error`` on ``engine``: the database (password hidden) and the server's reason, first line."""
    reason = _masked(str(getattr(error, "orig", None) or error), engine.url).strip().splitlines()
    return GatewayDatabaseError(
        f"Cannot use the gateway's database {safe_url(engine.url)} ({reason[0] if reason else 'no reason given'}). "
        "Check --db-url / AI_ADMIN_GATEWAY_DB_URL and that the server is running."
    )


# -- migrations ---------------------------------------------------------------------------- #


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The schema revision this version of the package needs (the newest migration it ships)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None  # the package ships at least one migration
    return head


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def schema_revision(engine: Engine) -> str | None:
    """The schema revision the database is at; None when it has none (never upgraded), or is a SQLite file not made yet.

    Raises:
        GatewayDatabaseError: it cannot be reached.
    """
    from alembic.runtime.migration import MigrationContext

    path = sqlite_path(engine)
    if path is not None and not path.exists():
        return None  # never create the file here: only upgrade-db does
    with connected(engine) as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def check_schema(engine: Engine) -> str:
    """Check that the database's schema is the one this version needs; returns that revision.

    Raises:
        SchemaBehind: the schema is missing, older (run ``ai-admin gateway upgrade-db``), or newer than this
            version knows (upgrade ai-admin-widgets).
        GatewayDatabaseError: it cannot be reached.
    """
    head, current = head_revision(), schema_revision(engine)
    if current == head:
        return head
    where = safe_url(engine.url)
    if current is None:
        raise SchemaBehind(
            f"The gateway's database {where} has no tables yet: run ai-admin gateway upgrade-db "
            "(with the same --db-url or AI_ADMIN_GATEWAY_DB_URL), then start it again."
        )
    if current in _known_revisions():
        raise SchemaBehind(
            f"The gateway's database {where} is at schema {current}, and this version needs {head}: "
            "run ai-admin gateway upgrade-db, then start it again."
        )
    raise SchemaBehind(
        f"The gateway's database {where} is at schema {current}, which a newer ai-admin-widgets made "
        f"(this one knows up to {head}): upgrade ai-admin-widgets on this host."
    )


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply the migrations the database lacks, in one transaction; returns ``(revision before, revision after)``.

    A new SQLite file is made readable by its owner only (mode 0600: it holds the encrypted secrets and the
    audit log). On PostgreSQL a transaction-level advisory lock keeps two replicas from upgrading at once.

    Raises:
        SchemaBehind: the database is newer than this version knows.
        GatewayDatabaseError: it cannot be reached or refused a change.
    """
    from alembic import command

    path = sqlite_path(engine)
    if path is not None and not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as error:
            raise GatewayDatabaseError(f"Cannot make the database file {path} ({error.strerror}).") from None
    before = schema_revision(engine)
    head = head_revision()
    if before is not None and before != head and before not in _known_revisions():
        check_schema(engine)  # raises: newer than this version
    try:
        with connected(engine, write=True) as connection:
            if engine.url.get_backend_name() == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('ai_gateway_alembic_version'))"))
            command.upgrade(_alembic_config(connection), "head")
    except sa.exc.DBAPIError as error:
        reason = _masked(str(getattr(error, "orig", None) or error), engine.url).strip().splitlines()
        raise GatewayDatabaseError(
            f"The gateway's database {safe_url(engine.url)} refused the upgrade "
            f"({reason[0] if reason else type(error).__name__}); nothing was changed."
        ) from None
    return before, schema_revision(engine) or head


def open_database(url: str, *, create: bool = True) -> Engine:
    """An engine for the gateway's database at ``url``, its schema ready: JupyterHub's rule for its own database.

    An empty database (no ``ai_gateway_*`` schema yet; a new SQLite file is made 0600) gets the tables
    at once, as JupyterHub makes its own on first start; one at an older schema is refused until
    ``ai-admin gateway upgrade-db`` is run, so no upgrade ever happens by surprise. ``create=False``
    (``serve --check``) leaves an empty database empty.

    Raises:
        SchemaBehind: the schema is older (run ``ai-admin gateway upgrade-db``) or newer than this version.
        GatewayDatabaseError: the URL is unusable, its driver missing, or the database unreachable.
    """
    engine = make_engine(url)
    if schema_revision(engine) is None:
        if not create:
            return engine
        upgrade(engine)
    check_schema(engine)
    return engine
