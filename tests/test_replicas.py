"""Several gateway replicas on one database: the settings record and the audit log in it, a save through one in
force on the others within a second, racing saves with one winner, the import of a folder-based gateway's files,
the audit log's pages and retention; and the folder store still used off the gateway.

Real processes throughout where replicas are concerned: two ``ai-admin gateway serve`` on one PostgreSQL database
(the session's temporary cluster, tests/postgres.py) or one SQLite file, behind the practice hub stand-in's token
API, saving against the sandbox.
"""

# ruff: noqa: F811  (the `database` fixture of test_database, imported to share it, is each test's argument)
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from test_database import Database, _environment, _free_port, _key, database  # noqa: F401 (database: a fixture)

import ai_admin_widgets as aiw
from ai_admin_widgets.client import GatewaySettings
from ai_admin_widgets.gateway import db
from ai_admin_widgets.gateway.dbkeyring import database_keyring
from ai_admin_widgets.gateway.dbstore import DatabaseSettingsStore, import_folder, prune_audit
from ai_admin_widgets.gateway.practice import Practice
from ai_admin_widgets.store import SERVICE_NAME, SettingsStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: How long a save through one replica may take to be in force on another: the 1 s promised, and a margin for
#: a loaded machine (2 shared cores) that still proves no restart was needed (a restart alone takes longer).
IN_FORCE_WITHIN = 1.0 + 1.0


@pytest.fixture
def practice():
    """The hub stand-in (its token API) and the sandbox; its own gateway is not used by the replica tests."""
    with Practice() as running:
        yield running


class Replica:
    """One ``ai-admin gateway serve`` process of the test, and its address."""

    def __init__(self, process: subprocess.Popen[str], port: int, lines: list[str]) -> None:
        self.process, self.port, self.lines = process, port, lines

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/ai-gateway"

    def settings(self, practice: Practice, who: str = "admin") -> GatewaySettings:
        return GatewaySettings(self.url, token=practice.tokens[who])

    def models(self, practice: Practice) -> list[str]:
        answer = httpx.get(
            f"{self.url}/v1/models", headers={"authorization": f"Bearer {practice.tokens['analyst']}"}, timeout=10
        )
        return [model["id"] for model in answer.json().get("data", [])] if answer.status_code == 200 else []


@contextmanager
def _replica(practice: Practice, home: Path, *options: str, **environment: str) -> Iterator[Replica]:
    """A served gateway on ``home``, with ``options`` (``--db-url``, ...), until the block ends (then SIGTERM)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(home), *options],
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
            JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
            JUPYTERHUB_API_URL=practice.hub_api_url,
            JUPYTERHUB_API_TOKEN="service-token",
            AI_ADMIN_GATEWAY_ALLOW_HOSTS="127.0.0.1",  # the sandbox
            **environment,
        ),
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for _ in range(40):
            line = process.stderr.readline()
            lines.append(line)
            if "AI gateway on" in line or not line:
                break
        assert "AI gateway on" in lines[-1], lines
        yield Replica(process, port, lines)
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
        lines.append(rest)
    assert process.returncode == 0, lines
    assert "Traceback" not in "".join(lines)


def _replicas(practice: Practice, database: Database, tmp_path: Path, crypt_key: str, count: int = 2):
    """``count`` replicas on one database and crypt key, each with its own folder (as on separate hosts)."""
    db.upgrade(engine := database.engine())
    engine.dispose()
    return [
        _replica(practice, tmp_path / f"replica-{n}", "--db-url", database.url, AI_ADMIN_CRYPT_KEY=crypt_key)
        for n in range(count)
    ]


def _integration(practice: Practice, key: str, model: str = "gpt-4o") -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(api_key=key, base_url=practice.sandbox.openai_base_url, language_model=model)


def _sandbox_key(tag: str) -> str:
    return f"sk-sandbox-{tag}-{uuid.uuid4().hex}"


# --------------------------------------------------------------------------- #
# A save through one replica, in force on the other
# --------------------------------------------------------------------------- #


def test_a_save_through_one_replica_is_used_by_the_others_v1_within_a_second(database, practice, tmp_path, capsys):
    first, second = _replicas(practice, database, tmp_path, _key())
    with first as a, second as b:
        a.settings(practice).save(_integration(practice, _sandbox_key("first")))
        deadline = time.monotonic() + 10
        while "gpt-4o" not in b.models(practice):  # the first save: B had nothing
            assert time.monotonic() < deadline, "replica B never saw the first save"
            time.sleep(0.02)
        a.settings(practice).save(_integration(practice, _sandbox_key("second"), model="gpt-4o-mini"))
        saved = time.monotonic()
        while "gpt-4o-mini" not in b.models(practice):
            assert time.monotonic() - saved < 10, "replica B never saw the second save"
            time.sleep(0.02)
        took = time.monotonic() - saved
        with capsys.disabled():
            print(f"\n[{database.kind}] a save through replica A was in force on replica B after {took * 1000:.0f} ms")
        assert took < IN_FORCE_WITHIN, took
        answer = httpx.post(
            f"{b.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {practice.tokens['analyst']}"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert "gpt-4o" not in b.models(practice)  # the old model is gone there too
        status = b.settings(practice).status()  # the admin API of B reads the same record
        assert status.revision == 2 and status.models[0].model == "gpt-4o-mini"
        assert a.settings(practice).fingerprint() == b.settings(practice).fingerprint()


def test_a_replica_that_cannot_read_the_database_refuses_v1_after_a_while_and_recovers(database, sandbox):
    """Fail closed: a removal through another replica must not go unnoticed for longer than settings_stale_seconds."""
    db.upgrade(engine := database.engine())
    with Practice(engine=engine, sandbox=sandbox, settings_stale_seconds=1.0) as practice:
        GatewaySettings(practice.gateway_url, token=practice.tokens["admin"]).save(
            aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
        )

        def chat() -> httpx.Response:
            return httpx.post(
                f"{practice.gateway_url}/v1/chat/completions",
                headers={"authorization": f"Bearer {practice.tokens['analyst']}"},
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )

        assert chat().status_code == 200
        other = database.engine()  # another's hands on the database: the settings table out of reach
        with other.begin() as connection:
            connection.execute(sa.text("ALTER TABLE ai_gateway_settings RENAME TO ai_gateway_settings_away"))
        deadline = time.monotonic() + 15
        while (answer := chat()).status_code == 200:
            assert time.monotonic() < deadline, "the replica went on using settings it could no longer read"
            time.sleep(0.1)
        assert answer.status_code == 503 and "has not answered" in answer.json()["error"]["message"]
        with other.begin() as connection:
            connection.execute(sa.text("ALTER TABLE ai_gateway_settings_away RENAME TO ai_gateway_settings"))
        deadline = time.monotonic() + 15
        while (answer := chat()).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
        other.dispose()
    engine.dispose()


# --------------------------------------------------------------------------- #
# Two saves racing
# --------------------------------------------------------------------------- #


def _secrets(database: Database, crypt_key: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The store's entries in the database's keyring, decrypted: keyring user name -> password."""
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", crypt_key)
    engine = database.engine()
    with engine.connect() as connection:
        names = connection.execute(
            sa.select(db.secrets_table.c.username).where(db.secrets_table.c.service == SERVICE_NAME)
        ).scalars()
        names = list(names)
    keyring = database_keyring(database.home, database.url)
    found = {name: keyring.get_password(SERVICE_NAME, name) or "" for name in names}
    engine.dispose()
    keyring.engine.dispose()
    return found


def test_two_saves_racing_through_two_replicas_have_one_winner_and_leave_only_its_keys(
    database, practice, tmp_path, monkeypatch
):
    crypt_key = _key()
    first, second = _replicas(practice, database, tmp_path, crypt_key)
    keys = {"a": _sandbox_key("racer-a"), "b": _sandbox_key("racer-b")}
    with first as a, second as b:
        a.settings(practice).save(_integration(practice, _sandbox_key("start")))
        revision = b.settings(practice).status().revision
        ready = threading.Barrier(2)
        outcomes: dict[str, object] = {}

        def save(name: str, replica: Replica, model: str) -> None:
            settings = replica.settings(practice)
            integration = _integration(practice, keys[name], model=model)
            ready.wait(timeout=30)
            try:
                outcomes[name] = settings.save(integration, expected_revision=revision)
            except aiw.ConcurrentChange as error:
                outcomes[name] = error

        racers = [
            threading.Thread(target=save, args=("a", a, "gpt-4o")),
            threading.Thread(target=save, args=("b", b, "gpt-4o-mini")),
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=120)
        losers = [name for name, outcome in outcomes.items() if isinstance(outcome, aiw.ConcurrentChange)]
        assert len(outcomes) == 2 and len(losers) == 1, outcomes
        (loser,) = losers
        (winner,) = set(keys) - {loser}
        said = str(outcomes[loser])
        assert "changed by practice-admin at " in said and " UTC" in said, said
        assert keys[loser] not in said and keys[winner] not in said
        for replica in (a, b):
            status = replica.settings(practice).status()
            assert status.revision == revision + 1
            assert status.models[0].key_hint.endswith(keys[winner][-4:])
            assert status.models[0].model == ("gpt-4o" if winner == "a" else "gpt-4o-mini")
    stored = _secrets(database, crypt_key, monkeypatch)
    passwords = set(stored.values())
    assert keys[winner] in passwords and keys[loser] not in passwords, sorted(stored)
    api_keys = [name for name in stored if name.endswith("/api_key")]
    assert len(api_keys) == 1 and api_keys[0].split("/")[1] == f"r{revision + 1}", api_keys  # the old key went too


def test_the_store_serializes_replicas_saves_and_the_loser_writes_no_key(database, tmp_path, monkeypatch):
    """Two stores on one database (two engines: as two processes have), saving at once from the same revision."""
    db.upgrade(engine := database.engine())
    engine.dispose()
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", _key())
    stores = [
        DatabaseSettingsStore(db.make_engine(database.url), database_keyring(database.home, database.url))
        for _ in range(2)
    ]
    keys = [f"sk-racer-{n}-{uuid.uuid4().hex}" for n in range(2)]
    ready, outcomes = threading.Barrier(2), {}

    def save(n: int) -> None:
        integration = aiw.OpenAIIntegration(api_key=keys[n], base_url="https://api.openai.com/v1")
        ready.wait(timeout=30)
        try:
            outcomes[n] = stores[n].save(integration, actor=f"admin-{n}", models={}, expected_revision=0)
        except aiw.ConcurrentChange as error:
            outcomes[n] = error

    racers = [threading.Thread(target=save, args=(n,)) for n in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    (loser,) = [n for n, outcome in outcomes.items() if isinstance(outcome, aiw.ConcurrentChange)]
    winner = 1 - loser
    assert f"changed by admin-{winner} at " in str(outcomes[loser])
    record = stores[loser].read()
    assert record.revision == 1 and record.updated_by == f"admin-{winner}"
    loaded = stores[loser].load()
    assert loaded is not None and loaded.api_key.get_secret_value() == keys[winner]
    everything = database.stored_bytes()
    assert keys[loser].encode() not in everything and keys[winner].encode() not in everything  # encrypted, or gone
    with stores[0].engine.connect() as connection:
        count = connection.execute(
            sa.select(sa.func.count()).select_from(db.secrets_table).where(db.secrets_table.c.service == SERVICE_NAME)
        ).scalar_one()
    assert count == 1  # the winner's one key
    for store in stores:
        store.engine.dispose()
        assert store.keyring is not None
        store.keyring.engine.dispose()  # type: ignore[attr-defined]


def test_a_keyring_failure_mid_save_leaves_the_old_record_and_no_new_key(database, tmp_path):
    from fault_keyring import FaultyKeyring

    db.upgrade(engine := database.engine())
    keyring = FaultyKeyring(
        str(tmp_path / "keyring.cfg"), fail_set_at=3
    )  # 1: the first key, 2: its revisions list, 3: the second key
    store = DatabaseSettingsStore(engine, keyring)
    first = store.save(
        aiw.OpenAIIntegration(api_key="sk-first-0001", base_url="https://api.openai.com/v1"), actor="alice", models={}
    )
    with pytest.raises(aiw.KeyringUnavailable):
        store.save(
            aiw.OpenAIIntegration(api_key="sk-second-0002", base_url="https://api.openai.com/v1"),
            actor="bob",
            models={},
            expected_revision=first.revision,
        )
    kept = store.read()
    assert kept.revision == 1 and kept.updated_by == "alice"
    loaded = store.load()
    assert loaded is not None and loaded.api_key.get_secret_value() == "sk-first-0001"
    assert keyring.get_password(SERVICE_NAME, first.username("api_key").replace("/r1/", "/r2/")) is None
    engine.dispose()


# --------------------------------------------------------------------------- #
# The import of a folder-based gateway's files
# --------------------------------------------------------------------------- #


def _cryptfile(folder: Path, password: str):
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    keyring = CryptFileKeyring()
    keyring.file_path = str(folder / "keyring.cfg")
    keyring.keyring_key = password
    return keyring


def test_an_upgraded_gateway_imports_its_folders_settings_and_audit_log_once(practice, tmp_path):
    """A folder as the file-based gateway left it (settings.json, audit.jsonl, keyring.cfg): serve takes the record
    and the events into its database at first start, says so, keeps using the key from keyring.cfg, and does it
    only once."""
    folder, password = tmp_path / "gateway", "the gateway's password"
    folder.mkdir(mode=0o700)
    old = SettingsStore(folder, _cryptfile(folder, password))
    key = practice.sandbox.openai_api_key
    old.save(
        aiw.OpenAIIntegration(api_key=key, base_url=practice.sandbox.openai_base_url),
        actor="practice-admin",
        models={"language": "gpt-4o", "embeddings": "text-embedding-3-small"},
    )
    for action in ("add", "authenticate"):
        old.append_audit({"actor": "practice-admin", "action": action, "provider": "openai", "outcome": "ok"})
    before = (folder / "settings.json").read_bytes()
    with _replica(practice, folder, KEYRING_CRYPTFILE_PASSWORD=password) as replica:
        admin = replica.settings(practice)
        status = admin.status()
        assert status.configured and status.revision == 1
        events = admin.history()
        assert [event.action.value for event in events] == ["add", "authenticate", "import"]
        assert all(event.id for event in events)
        assert "settings.json (revision 1) and 2 audit events" in events[-1].details()
        answer = httpx.post(
            f"{replica.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {practice.tokens['analyst']}"},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text  # the key, where keyring.cfg holds it
        admin.set_allowed(["practice-analyst"], [])  # a change after the import: in the database only
    said = "".join(replica.lines)
    assert said.count("Imported") == 1 and str(folder / "settings.json") in said and "once" in said
    assert (folder / "settings.json").read_bytes() == before  # the files stay as they were
    with _replica(practice, folder, KEYRING_CRYPTFILE_PASSWORD=password) as again:
        events = again.settings(practice).history()
        assert [event.action.value for event in events].count("import") == 1
        assert again.settings(practice).access_lists().allowed_users == ("practice-analyst",)
    assert "Imported" not in "".join(again.lines)


def test_the_import_into_either_database_is_once_keeps_the_store_id_and_skips_damaged_lines(database, tmp_path):
    folder = tmp_path / "gateway"
    SettingsStore(folder, None).update_access(actor="alice", allowed_groups=["analysts"])
    store = SettingsStore(folder, None)
    for n in range(3):
        store.append_audit({"actor": "alice", "action": "allow", "outcome": "ok", "n": n})
    with (folder / "audit.jsonl").open("a") as log:
        log.write("not json\n")
    db.upgrade(engine := database.engine())
    imported = import_folder(engine, folder)
    assert imported is not None and imported[1] == 3
    assert import_folder(engine, folder) is None  # once
    into = DatabaseSettingsStore(engine, None)
    assert into.read().store_id == store.read().store_id and into.read().allowed_groups == ["analysts"]
    assert [event["action"] for event in into.audit_log()] == ["allow"] * 3 + ["import"]
    engine.dispose()


# --------------------------------------------------------------------------- #
# The audit log's pages and retention
# --------------------------------------------------------------------------- #


def test_the_audit_log_is_paged_by_id_through_the_admin_api(database):
    db.upgrade(engine := database.engine())
    with Practice(engine=engine) as practice:
        store = practice.gateway.store()
        for n in range(25):
            store.append_audit(
                {"actor": "practice-admin", "action": "allow", "outcome": "ok", "allowed_users": [f"u{n}"]}
            )
        admin = GatewaySettings(practice.gateway_url, token=practice.tokens["admin"])
        pages, before = [], None
        while True:
            page = admin.history(limit=10, before=before)
            if not page:
                break
            pages.append([event.allowed_users[0] for event in page])
            before = page[0].id
        assert pages == [[f"u{n}" for n in range(15, 25)], [f"u{n}" for n in range(5, 15)], [f"u{n}" for n in range(5)]]
        with pytest.raises(ValueError, match="before"):
            admin.history(limit=10, before=0)
        answer = httpx.get(
            f"{practice.gateway_url}/api/history?limit=5&before=abc",
            headers={"authorization": f"token {practice.tokens['admin']}"},
            timeout=10,
        )
        assert answer.status_code == 422 and "before must be a whole number" in answer.json()["error"]["message"]
        analyst = GatewaySettings(practice.gateway_url, token=practice.tokens["analyst"])
        with pytest.raises(aiw.PermissionDenied):
            analyst.history(limit=5)
    engine.dispose()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("before=99999999999999999999999", "before"),
        (f"before={2**63}", "before"),
        ("before=-3", "before"),
        ("limit=10001", "limit"),
        ("limit=0", "limit"),
        ("limit=1_000", "limit"),
        ("limit=" + "9" * 5000, "limit"),
    ],
)
def test_the_history_page_refuses_a_before_or_limit_out_of_range_with_422_naming_it(database, query, field):
    db.upgrade(engine := database.engine())
    with Practice(engine=engine) as practice:
        practice.gateway.store().append_audit({"actor": "practice-admin", "action": "allow", "outcome": "ok"})
        headers = {"authorization": f"token {practice.tokens['admin']}"}
        answer = httpx.get(f"{practice.gateway_url}/api/history?{query}", headers=headers, timeout=10)
        assert answer.status_code == 422, answer.text
        message = answer.json()["error"]["message"]
        assert message.startswith(f"{field} must be a whole number from 1 to ") and "9999999999" not in message
        for good in (f"before={2**63 - 1}", "limit=10000", ""):
            answer = httpx.get(f"{practice.gateway_url}/api/history?{good}", headers=headers, timeout=10)
            assert answer.status_code == 200 and len(answer.json()) == 1, (good, answer.text)
    engine.dispose()


def test_the_history_page_holds_a_thousand_events_unless_told(tmp_path):
    engine = db.open_database(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    with engine.begin() as connection:
        at = datetime.now(timezone.utc)
        event = {"at": at.isoformat(), "actor": "a", "action": "allow"}
        rows = [{"at": at, "action": "allow", "actor": "a", "event": event} for _ in range(1001)]
        connection.execute(sa.insert(db.audit_table), rows)
    with Practice(engine=engine) as practice:
        admin = GatewaySettings(practice.gateway_url, token=practice.tokens["admin"])
        assert len(admin.history()) == 1000 and len(admin.history(limit=1001)) == 1001
    engine.dispose()


def _old_event(engine: sa.Engine, days: float, actor: str) -> None:
    at = datetime.now(timezone.utc) - timedelta(days=days)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(db.audit_table).values(
                at=at, action="allow", actor=actor, event={"at": at.isoformat(), "actor": actor, "action": "allow"}
            )
        )


def test_audit_events_past_the_retention_are_deleted_by_the_running_gateway(database):
    db.upgrade(engine := database.engine())
    _old_event(engine, 400, "ancient")
    _old_event(engine, 40, "older")
    _old_event(engine, 1, "recent")
    assert prune_audit(engine, 0) == 0  # 0: keep every event
    with Practice(engine=engine, audit_keep_days=30) as practice:
        deadline = time.monotonic() + 10
        while len(practice.gateway.store().audit_log()) != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert [event["actor"] for event in practice.gateway.store().audit_log()] == ["recent"]
    engine.dispose()


def test_serve_refuses_an_audit_retention_it_cannot_keep(tmp_path, practice):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ai_admin_widgets",
            "gateway",
            "serve",
            "--home",
            str(tmp_path / "g"),
            "--audit-keep-days",
            "-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{_free_port()}",
            JUPYTERHUB_API_URL=practice.hub_api_url,
            KEYRING_CRYPTFILE_PASSWORD="a password",
        ),
    )
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "--audit-keep-days" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- #
# The gateway keeps nothing in its folder's files; one machine keeps its folder store
# --------------------------------------------------------------------------- #


def test_the_gateway_keeps_its_record_in_the_database_and_one_machine_keeps_the_folder(database, tmp_path, sandbox):
    db.upgrade(engine := database.engine())
    with Practice(engine=engine, sandbox=sandbox) as practice:
        admin = GatewaySettings(practice.gateway_url, token=practice.tokens["admin"])
        admin.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
        home = practice.gateway.config.home
        assert not (home / "settings.json").exists() and not (home / "audit.jsonl").exists()
        with engine.connect() as connection:
            (row,) = connection.execute(sa.select(db.settings_table)).all()
        assert row.revision == 1 and row.updated_by == "practice-admin"
        assert sandbox.openai_api_key.get_secret_value() not in json.dumps(row.record)
        assert [event.action.value for event in admin.history()] == ["add"]
    engine.dispose()
    local = aiw.AISettings(home=tmp_path / "local", keyring=sandbox.keyring())
    local.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    assert (tmp_path / "local" / "settings.json").exists() and (tmp_path / "local" / "audit.jsonl").exists()
    assert not list((tmp_path / "local").glob("*.sqlite"))
    assert [event.action.value for event in local.history(limit=5)] == ["add"]
    with pytest.raises(ValueError, match="before= pages the AI gateway's audit log"):
        local.history(limit=5, before=3)


# --------------------------------------------------------------------------- #
# hub-config
# --------------------------------------------------------------------------- #


def test_the_snippet_passes_the_database_and_crypt_key_from_the_hubs_environment_and_never_writes_them(
    monkeypatch,
):
    from ai_admin_widgets.gateway.hubconfig import hub_config

    url, crypt_key = "postgresql+psycopg://aigw:db-secret-1234@db.example.org/jupyterhub", _key()
    monkeypatch.setenv("AI_ADMIN_GATEWAY_DB_URL", url)
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", crypt_key)
    done = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "hub-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(AI_ADMIN_GATEWAY_DB_URL=url, AI_ADMIN_CRYPT_KEY=crypt_key),
    )
    assert done.returncode == 0, done.stderr
    assert url not in done.stdout and "db-secret" not in done.stdout and crypt_key not in done.stdout
    from traitlets.config import Config

    def loaded(snippet: str) -> dict[str, str]:
        config = Config()
        exec(compile(snippet, "jupyterhub_config.py", "exec"), {"c": config})  # as the hub loads it
        (service,) = [entry for entry in config.JupyterHub.services if entry["name"] == "ai-gateway"]
        return service["environment"]

    environment = loaded(done.stdout)  # the hub's environment (this process's) at the hub's start
    assert environment["AI_ADMIN_GATEWAY_DB_URL"] == url and environment["AI_ADMIN_CRYPT_KEY"] == crypt_key
    monkeypatch.delenv("AI_ADMIN_GATEWAY_DB_URL")
    monkeypatch.delenv("AI_ADMIN_CRYPT_KEY")
    unset = loaded(hub_config())
    assert unset["AI_ADMIN_GATEWAY_DB_URL"] == unset["AI_ADMIN_CRYPT_KEY"] == ""  # empty: the gateway's defaults
    from ai_admin_widgets.gateway.dbkeyring import uses_database

    assert not uses_database(None, unset)  # keyring.cfg and the SQLite file, as before


def test_a_damaged_record_in_the_database_can_still_be_removed_keeping_who_may_use_ai(database, monkeypatch):
    """AI can always be switched off: a record of the wrong shape is replaced by an empty one, the allow-list kept."""
    db.upgrade(engine := database.engine())
    monkeypatch.setenv("AI_ADMIN_CRYPT_KEY", _key())
    store = DatabaseSettingsStore(engine, database_keyring(database.home, database.url))
    integration = aiw.OpenAIIntegration(api_key=f"sk-damaged-{uuid.uuid4().hex}", base_url="https://api.openai.com/v1")
    saved = store.save(integration, actor="admin", models={})
    store.update_access(actor="admin", allowed_users=["analyst"])
    with engine.begin() as connection:  # a hand edit gone wrong: the provider is not one
        record = connection.execute(sa.select(db.settings_table.c.record)).scalar_one()
        connection.execute(sa.update(db.settings_table).values(record=record | {"provider": 5}))
    with pytest.raises(aiw.StoreError):
        store.read()
    removal = store.remove(actor="admin")
    after = store.read()
    assert not after.configured and after.revision == saved.revision + 1 and removal.record.revision == after.revision
    assert after.allowed_users == ["analyst"] and after.updated_by == "admin"
    engine.dispose()
    assert store.keyring is not None
    store.keyring.engine.dispose()  # type: ignore[attr-defined]
