"""The gateway's database, on SQLite and on a real PostgreSQL server: migrations, the encrypted keyring, key rotation,
and ``ai-admin gateway serve`` refusing what it cannot use, each in one line.

PostgreSQL is Debian's (``/usr/lib/postgresql/<version>/bin``), started for this module in a temporary cluster on a
free port of 127.0.0.1 as an unprivileged OS user (``postgres`` where the package made it, else one made here and
removed afterwards: its binaries refuse to run as root), stopped and deleted at the end. Without the binaries the
PostgreSQL tests are skipped, except under ``CI=true``, where they fail (``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from keyring.errors import PasswordDeleteError
from openai import OpenAI
from postgres import PG_PASSWORD, Cluster
from pydantic import SecretStr

import ai_admin_widgets as aiw
from ai_admin_widgets.client import GatewaySettings
from ai_admin_widgets.gateway import db
from ai_admin_widgets.gateway.crypt import CryptKeyError, multi_fernet, parse_crypt_keys
from ai_admin_widgets.gateway.dbkeyring import CHECK_SERVICE, DatabaseKeyring, database_keyring, rotate_crypt_key
from ai_admin_widgets.gateway.practice import Practice
from ai_admin_widgets.store import SERVICE_NAME, SettingsStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _environment(**extra: str) -> dict[str, str]:
    """The test's environment for a child process, without any hub, gateway or keyring variable unless given."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("JUPYTERHUB_", "AI_ADMIN_", "KEYRING_CRYPTFILE", "PYTHON_KEYRING"))
        and "PROXY" not in name.upper()
    }
    return environment | extra


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _key() -> str:
    return secrets.token_hex(32)


def _gateway(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(**environment),
    )


@dataclass
class Database:
    """One empty database of either kind, for one test."""

    kind: str
    url: str
    home: Path
    cluster: Cluster | None = None
    name: str = ""

    def engine(self) -> sa.Engine:
        return db.make_engine(self.url)

    def stored_bytes(self) -> bytes:
        """Everything the database holds on disk or in a dump: the SQLite file (and its journal), or ``pg_dump``."""
        if self.cluster is not None:
            return self.cluster.dump(self.name).encode("utf-8")
        return b"".join(path.read_bytes() for path in sorted(self.home.glob(db.DB_FILE + "*")))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Iterator[Database]:
    """An empty database: a SQLite file in the gateway's folder, or a new database in the temporary cluster."""
    home = tmp_path / "gateway"
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite:///{home / db.DB_FILE}", home)
        return
    cluster: Cluster = request.getfixturevalue("cluster")
    name = f"t_{uuid.uuid4().hex[:12]}"
    cluster.admin(f"CREATE DATABASE {name}")
    try:
        yield Database("postgresql", cluster.url(name), home, cluster, name)
    finally:
        cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")


def _upgraded(database: Database) -> sa.Engine:
    engine = database.engine()
    db.upgrade(engine)
    return engine


# --------------------------------------------------------------------------- #
# Migrations
# --------------------------------------------------------------------------- #


def test_upgrade_db_takes_an_empty_database_to_head_and_leaves_a_shared_hubs_tables_alone(database):
    """Empty (with a JupyterHub-like alembic_version of its own) -> head via the command; then nothing to do."""
    engine = database.engine()
    database.home.mkdir(parents=True, exist_ok=True)
    with engine.begin() as connection:  # what a JupyterHub sharing this database has
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('4621fec11365')"))
    assert db.schema_revision(engine) is None
    with pytest.raises(db.SchemaBehind, match="run ai-admin gateway upgrade-db"):
        db.check_schema(engine)

    done = _gateway("upgrade-db", "--db-url", database.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Made the gateway's database") and f"schema {db.head_revision()}" in done.stdout
    assert PG_PASSWORD not in done.stdout + done.stderr
    assert db.check_schema(engine) == db.head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert {
        "ai_gateway_settings",
        "ai_gateway_audit_events",
        "ai_gateway_usage_events",
        "ai_gateway_secrets",
        db.VERSION_TABLE,
    } <= tables
    columns = {column["name"] for column in sa.inspect(engine).get_columns("ai_gateway_usage_events")}
    assert {"username", "model", "prompt_tokens", "completion_tokens", "latency_ms", "code", "request_id"} <= columns
    with engine.connect() as connection:  # the hub's version is its own
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "4621fec11365"

    again = _gateway("upgrade-db", "--db-url", database.url)
    assert again.returncode == 0 and "already at schema" in again.stdout
    engine.dispose()


def test_the_default_database_is_a_private_sqlite_file_in_the_gateways_folder(tmp_path):
    home = tmp_path / "gateway"
    done = _gateway("upgrade-db", "--home", str(home))
    assert done.returncode == 0, done.stderr
    assert str(home / db.DB_FILE) in done.stdout
    assert (home / db.DB_FILE).stat().st_mode & 0o077 == 0  # the owner's only


def test_a_database_made_by_a_newer_version_is_refused_by_upgrade_and_serve(database):
    engine = _upgraded(database)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {db.VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    done = _gateway("upgrade-db", "--db-url", database.url)
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1 and "upgrade ai-admin-widgets" in done.stderr


# --------------------------------------------------------------------------- #
# serve's refusals, one line each, nothing listening
# --------------------------------------------------------------------------- #


def _serve_command(database: Database) -> list[str]:
    return ["-m", "ai_admin_widgets", "gateway", "serve", "--home", str(database.home), "--db-url", database.url]


def _serve_refusal(database: Database, **environment: str) -> str:
    port = _free_port()
    done = subprocess.run(
        [sys.executable, *_serve_command(database)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
            JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
            JUPYTERHUB_API_URL="http://127.0.0.1:8081/hub/api",
            JUPYTERHUB_API_TOKEN="service-token",
            **environment,
        ),
    )
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr and PG_PASSWORD not in done.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return done.stderr


def test_serve_refuses_a_schema_made_by_a_newer_version(database):
    engine = _upgraded(database)
    with engine.begin() as connection:
        connection.execute(
            sa.update(sa.table(db.VERSION_TABLE, sa.column("version_num"))).values(version_num="r9999_later")
        )
    engine.dispose()
    said = _serve_refusal(database, AI_ADMIN_CRYPT_KEY=_key())
    assert "r9999_later" in said and "upgrade ai-admin-widgets" in said


def test_open_database_makes_the_tables_of_an_empty_database_as_jupyterhub_does(database):
    """JupyterHub makes its own tables on first start; an empty gateway database gets them the same way."""
    engine = database.engine()
    assert db.schema_revision(engine) is None
    engine.dispose()
    opened = db.open_database(database.url)
    assert db.check_schema(opened) == db.head_revision()
    assert "ai_gateway_settings" in sa.inspect(opened).get_table_names()
    opened.dispose()


def test_serve_refuses_to_start_without_a_crypt_key(database):
    _upgraded(database).dispose()
    said = _serve_refusal(database)
    assert "AI_ADMIN_CRYPT_KEY is not set" in said and "openssl rand -hex 32" in said


def test_serve_refuses_a_malformed_crypt_key_without_showing_it(database):
    _upgraded(database).dispose()
    good = _key()
    said = _serve_refusal(database, AI_ADMIN_CRYPT_KEY=f"{good};not-a-key-at-all")
    assert "key 2 is not a 32-byte key" in said and "not-a-key-at-all" not in said and good not in said


def test_serve_refuses_keys_that_decrypt_nothing_stored(database):
    engine = _upgraded(database)
    first = _key()
    DatabaseKeyring(engine, multi_fernet(parse_crypt_keys(first))).check_keys()  # a first start wrote its check
    engine.dispose()
    other = _key()
    said = _serve_refusal(database, AI_ADMIN_CRYPT_KEY=other)
    assert "decrypts none of the 1 secrets" in said and other not in said and first not in said


# --------------------------------------------------------------------------- #
# The keyring backend
# --------------------------------------------------------------------------- #


def test_the_database_keyring_round_trip_and_no_secret_in_clear(database, monkeypatch):
    engine = _upgraded(database)
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", _key())
    backend = database_keyring(database.home, database.url)
    marker = f"sk-marker-{uuid.uuid4().hex}"
    assert backend.get_password("a service", "someone") is None
    backend.set_password("a service", "someone", marker)
    backend.set_password("another service", "someone", "ünïcode ✓")
    assert backend.get_password("a service", "someone") == marker
    assert backend.get_password("another service", "someone") == "ünïcode ✓"
    backend.set_password("a service", "someone", marker + "-2")  # replaced, not added
    assert backend.get_password("a service", "someone") == marker + "-2"
    backend.delete_password("a service", "someone")
    assert backend.get_password("a service", "someone") is None
    with pytest.raises(PasswordDeleteError):
        backend.delete_password("a service", "someone")

    # The store, speaking only keyring's interface, keeps an integration's key there and reads it back.
    store = SettingsStore(database.home, backend)
    integration = aiw.OpenAIIntegration(api_key=SecretStr(marker), base_url="https://api.openai.com/v1")
    record = store.save(integration, actor="admin", models={"language_model": "gpt-4o"})
    assert backend.get_password(SERVICE_NAME, record.username("api_key")) == marker
    loaded = store.load(actor="admin")
    assert loaded is not None and loaded.api_key.get_secret_value() == marker

    with engine.connect() as connection:
        stored = connection.execute(sa.select(db.secrets_table.c.ciphertext)).scalars().all()
    assert stored and all(token.startswith("gAAAAA") for token in stored)  # Fernet tokens, version 0x80
    assert marker.encode() not in database.stored_bytes()
    assert "ünïcode".encode() not in database.stored_bytes()
    assert marker not in repr(backend) + str(backend) and PG_PASSWORD not in repr(backend) + str(backend)
    engine.dispose()


def test_keyring_never_chooses_the_database_backend_by_itself():
    import keyring.backend

    assert not DatabaseKeyring.viable
    assert not any(isinstance(found, DatabaseKeyring) for found in keyring.backend.get_all_keyring())


@pytest.mark.parametrize(
    "text",
    [
        "00" * 32,  # hex
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",  # URL-safe base64 of 32 bytes (a Fernet key)
        "abcdefghijklmnopqrstuvwxyz012345",  # 32 raw ASCII characters
    ],
)
def test_the_crypt_key_formats_jupyterhub_accepts(text):
    assert [len(key) for key in parse_crypt_keys(f" ; {text} ;")] == [32]


def test_a_crypt_key_of_another_length_is_refused_by_position():
    with pytest.raises(CryptKeyError, match="key 2 is not a 32-byte key") as refused:
        parse_crypt_keys(f"{'ab' * 32};{'cd' * 31}")
    assert "cd" * 31 not in str(refused.value)


# --------------------------------------------------------------------------- #
# Rotation
# --------------------------------------------------------------------------- #


def test_rotation_with_two_keys_lets_the_old_key_go(database, monkeypatch):
    engine = _upgraded(database)
    old, new = _key(), _key()
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", old)
    backend = database_keyring(database.home, database.url)
    backend.set_password(SERVICE_NAME, "store/r1/api_key", "sk-rotate-me")

    # The new key first, the old one after: everything still reads; the rotation re-encrypts it all.
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", f"{new};{old}")
    assert database_keyring(database.home, database.url).get_password(SERVICE_NAME, "store/r1/api_key") == (
        "sk-rotate-me"
    )
    done = _gateway("rotate-crypt-key", "--db-url", database.url, AI_ADMIN_CRYPT_KEY=f"{new};{old}")
    assert done.returncode == 0, done.stderr
    assert "Re-encrypted 2 secret(s)" in done.stdout and "may now be removed" in done.stdout  # the key and the check
    assert old not in done.stdout + done.stderr and new not in done.stdout + done.stderr

    # The old key dropped: the gateway starts and reads; the old key alone decrypts nothing any more.
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", new)
    assert database_keyring(database.home, database.url).get_password(SERVICE_NAME, "store/r1/api_key") == (
        "sk-rotate-me"
    )
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", old)
    with pytest.raises(CryptKeyError, match="decrypts none of the 2 secrets"):
        database_keyring(database.home, database.url)
    engine.dispose()


def test_rotation_changes_nothing_when_a_secret_fits_no_key(database):
    engine = _upgraded(database)
    first, second, third = _key(), _key(), _key()
    DatabaseKeyring(engine, multi_fernet(parse_crypt_keys(first))).set_password("s", "a", "one")
    DatabaseKeyring(engine, multi_fernet(parse_crypt_keys(second))).set_password("s", "b", "two")
    with engine.connect() as connection:
        before = connection.execute(sa.select(db.secrets_table.c.ciphertext)).scalars().all()
    with pytest.raises(CryptKeyError, match="1 of the 2 secrets"):
        rotate_crypt_key(engine, multi_fernet(parse_crypt_keys(f"{third};{first}")))
    with engine.connect() as connection:
        assert connection.execute(sa.select(db.secrets_table.c.ciphertext)).scalars().all() == before
    done = _gateway("rotate-crypt-key", "--db-url", database.url, AI_ADMIN_CRYPT_KEY=f"{third};{first}")
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1 and "nothing was re-encrypted" in done.stderr
    engine.dispose()


# --------------------------------------------------------------------------- #
# serve with its keys in the database
# --------------------------------------------------------------------------- #


@pytest.fixture
def practice():
    with Practice() as running:
        yield running


def test_serve_keeps_the_saved_key_in_the_database_encrypted_and_uses_it(database, practice):
    """Save through a served gateway, call /v1 with the saved key, find the key nowhere in the database in clear."""
    _upgraded(database).dispose()
    port, crypt_key = _free_port(), _key()
    process = subprocess.Popen(
        [sys.executable, *_serve_command(database)],
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
            JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
            JUPYTERHUB_API_URL=practice.hub_api_url,
            JUPYTERHUB_API_TOKEN="service-token",
            AI_ADMIN_CRYPT_KEY=crypt_key,
            AI_ADMIN_GATEWAY_ALLOW_HOSTS="127.0.0.1",  # the sandbox
        ),
    )
    key = f"sk-sandbox-marker{uuid.uuid4().hex}"
    try:
        lines = []
        for _ in range(20):
            lines.append(process.stderr.readline())
            if "AI gateway on" in lines[-1]:
                break
        assert "AI gateway on" in lines[-1] and "keys in the AI gateway's database" in lines[-1], lines
        url = f"http://127.0.0.1:{port}/services/ai-gateway"
        admin = GatewaySettings(url, token=practice.tokens["admin"])
        assert admin.snapshot().keyring.backend.startswith("the AI gateway's database, encrypted")
        admin.save(aiw.OpenAIIntegration(api_key=key, base_url=practice.sandbox.openai_base_url))
        client = OpenAI(base_url=url + "/v1", api_key=practice.tokens["analyst"], max_retries=0)
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        assert httpx.get(f"{url}/api/status", timeout=10).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    assert not (database.home / "keyring.cfg").exists()  # not keyrings.cryptfile
    stored = database.stored_bytes()
    assert key.encode() not in stored and key[-12:].encode() not in stored
    engine = database.engine()
    with engine.connect() as connection:
        names = connection.execute(sa.select(db.secrets_table.c.service, db.secrets_table.c.username)).all()
    engine.dispose()
    assert {service for service, _ in names} >= {SERVICE_NAME, CHECK_SERVICE}


def test_a_database_gone_mid_run_is_named_with_its_reason_by_the_store(database, monkeypatch):
    """The store's keyring error says which database failed and why (its own words), not only the exception's type."""
    _upgraded(database).dispose()
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", _key())
    backend = database_keyring(database.home, database.url)
    store = SettingsStore(database.home, backend)
    store.save(
        aiw.OpenAIIntegration(api_key="sk-gone-0000", base_url="https://api.openai.com/v1"),
        actor="admin",
        models={"language_model": "gpt-4o"},
    )
    if database.cluster is not None:
        database.cluster.admin(f"DROP DATABASE {database.name} WITH (FORCE)")
        database.cluster.admin(f"CREATE DATABASE {database.name}")  # empty again, so the fixture's drop still works
    else:
        other = database.engine()  # another process's hands on the file
        with other.begin() as connection:
            connection.execute(sa.text("DROP TABLE ai_gateway_secrets"))
        other.dispose()
    with pytest.raises(aiw.KeyringUnavailable) as failed:
        store.load(actor="admin")
    said = str(failed.value)
    assert "Cannot use the gateway's database" in said and db.safe_url(database.url) in said
    assert PG_PASSWORD not in said and "sk-gone" not in said


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"postgresql://someone:{PG_PASSWORD}@127.0.0.1:{_free_port()}/nothing", "Cannot use the gateway's database"),
        ("mysql://someone:hunter2-db@127.0.0.1/nothing", "the gateway runs on SQLite or PostgreSQL"),
        ("not a url at all hunter2-db", "is not a database URL"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///relative-hunter2.sqlite", "sqlite:////"),
        (
            f"postgresql://someone@127.0.0.1:{_free_port()}/nothing?password=hunter2-q",
            "Cannot use the gateway's database",
        ),
        (
            f"postgresql://someone@127.0.0.1:{_free_port()}/nothing?sslpassword=hunter2-ssl&connect_timeout=3",
            "Cannot use the gateway's database",
        ),
        ("postgresql+psycopg://aigw:Secr@thunter2@127.0.0.1/gw", "write an @ inside the password as %40"),
        # the driver's reason repeats the password (here libpq's host= parameter): masked there too
        (f"postgresql://someone:hunter2-h@127.0.0.1:{_free_port()}/nothing?host=hunter2-h", "Cannot use the gateway"),
    ],
)
def test_a_database_url_it_cannot_use_is_one_line_without_its_password(url, said):
    done = _gateway("upgrade-db", "--db-url", url)
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1, done.stderr
    assert said in done.stderr and PG_PASSWORD not in done.stderr and "hunter2" not in done.stderr
    assert "Secr" not in done.stderr


def test_every_password_of_a_database_url_is_hidden_where_it_is_shown():
    for url in (
        "postgresql+psycopg://aigw@127.0.0.1:55433/gw?password=pw13secret",
        "postgresql+psycopg://aigw:pw13secret@127.0.0.1:55433/gw?sslmode=require&sslpassword=pw13secret",
        "postgresql+psycopg://aigw@127.0.0.1/gw?PassWD=pw13secret&application_name=ai",
        "postgresql+psycopg://aigw:Secr@tpw13secret@127.0.0.1/gw",
    ):
        shown = db.safe_url(url)
        assert "pw13secret" not in shown and "tpw13" not in shown, shown
    assert db.safe_url("postgresql+psycopg://aigw@127.0.0.1/gw?password=x&sslmode=require").endswith(
        "gw?password=***&sslmode=require"
    )
