"""One store folder shared by several admins, as the README recommends (``AI_ADMIN_HOME=/srv/ai-admin``).

Two real operating system users in one group, each with their own file keyring, take
turns to save, test and remove in a folder of that group. The test makes the users and
the group, runs each admin's step in a child process as that user, and deletes them
afterwards. It needs root (and ``useradd``/``setpriv``): without them it is skipped,
except under CI (``CI=true``), where it fails instead.

Also here, without extra users: a co-admin whose keyring lacks the keys is told so and
the organization's health stays as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from keyrings.alt.file import PlaintextKeyring

import ai_admin_widgets as aiw
from ai_admin_widgets.store import KeyNotInThisKeyring

CO_ADMIN = "this keyring has no key for this store; run as the admin who saved it"


def _can_make_users() -> bool:
    return (
        hasattr(os, "geteuid")
        and os.geteuid() == 0
        and all(shutil.which(tool) for tool in ("useradd", "userdel", "groupadd", "groupdel", "setpriv"))
    )


def _require_users() -> None:
    if _can_make_users():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the shared-folder test, which needs root, useradd and setpriv")
    pytest.skip("needs root, useradd and setpriv to make two admins' accounts")


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.fixture
def two_admins():
    """Two new OS users (their own primary groups) who share one extra group; deleted afterwards."""
    _require_users()
    tag = uuid.uuid4().hex[:6]
    group, users = f"aiw-admins-{tag}", [f"aiw-alice-{tag}", f"aiw-bob-{tag}"]
    _run(["groupadd", group])
    made: list[str] = []
    try:
        for user in users:
            _run(["useradd", "--no-create-home", "--user-group", "--groups", group, "--shell", "/bin/sh", user])
            made.append(user)
        yield group, users
    finally:
        for user in made:
            subprocess.run(["userdel", user], capture_output=True, timeout=60)
        subprocess.run(["groupdel", group], capture_output=True, timeout=60)


STEP = """
import json, os, sys
import ai_admin_widgets as aiw
from keyrings.alt.file import PlaintextKeyring
keyring = PlaintextKeyring()
keyring.file_path = os.environ["KEYRING_FILE"]
settings = aiw.AISettings(home=os.environ["STORE"], keyring=keyring)
step = os.environ["STEP"]
try:
    if step == "save":
        settings.save(aiw.OpenAIIntegration(api_key=os.environ["KEY"], base_url=os.environ["BASE_URL"]))
        result = "saved"
    elif step == "add-admin":
        settings.add_admin(os.environ["NAME"])
        result = "added"
    elif step == "test":
        result = "ok" if settings.test().ok else "failed"
    elif step == "keep-key":
        result = "kept" if settings.saved_key("api_key", os.environ["BASE_URL"]) else "none"
    elif step == "remove":
        result = "removed: " + json.dumps(settings.remove())
except aiw.AIAdminError as error:
    result = f"{type(error).__name__}: {error}"
status = settings.status()
print(json.dumps({"user": settings.user, "result": result, "health": status.health.value,
                  "configured": status.configured}))
"""


@pytest.mark.parametrize("setgid", [True, False], ids=["setgid folder", "group-writable folder"])
def test_two_admins_in_one_group_take_turns_in_a_shared_folder(two_admins, sandbox, setgid):
    group, (alice, bob) = two_admins
    top = Path(tempfile.mkdtemp(prefix="aiw-shared-"))
    try:
        os.chmod(top, 0o755)
        store = top / "ai-admin"
        store.mkdir()
        shutil.chown(store, group=group)
        os.chmod(store, 0o2770 if setgid else 0o770)
        keyrings = {}
        for user in (alice, bob):
            own = top / user
            own.mkdir(mode=0o700)
            shutil.chown(own, user=user, group=user)
            keyrings[user] = own / "keyring.cfg"

        def step(user: str, name: str, **extra: str) -> dict:
            done = subprocess.run(
                ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", sys.executable, "-c", STEP],
                env={
                    **os.environ,
                    "HOME": str(keyrings[user].parent),
                    "KEYRING_FILE": str(keyrings[user]),
                    "STORE": str(store),
                    "STEP": name,
                    "KEY": sandbox.openai_api_key.get_secret_value(),
                    "BASE_URL": sandbox.openai_base_url,
                    **extra,
                },
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            answer = json.loads(done.stdout.splitlines()[-1])
            assert answer["user"] == user
            return answer

        assert step(alice, "save")["result"] == "saved"
        assert step(alice, "add-admin", NAME=bob)["result"] == "added"

        # Bob's keyring has none of the keys Alice saved: he is told so, and the health stays ok.
        for name in ("test", "keep-key"):
            answer = step(bob, name)
            assert answer["result"].startswith("KeyNotInThisKeyring: ") and CO_ADMIN in answer["result"], answer
            assert alice in answer["result"]
            assert answer["health"] == "ok"

        # Bob can save over Alice's record, test it, and Alice can then save and remove after him.
        assert step(bob, "save")["result"] == "saved"
        assert step(bob, "test")["result"] == "ok"
        answer = step(alice, "test")
        assert CO_ADMIN in answer["result"] and bob in answer["result"] and answer["health"] == "ok"
        assert step(alice, "save")["result"] == "saved"
        answer = step(bob, "remove")
        assert answer["result"].startswith("removed: ") and not answer["configured"], answer
        assert step(alice, "save")["result"] == "saved"

        gid = shutil._get_gid(group)  # type: ignore[attr-defined]
        for name in ("settings.json", "audit.jsonl", "settings.lock"):
            found = os.stat(store / name)
            assert found.st_gid == gid, f"{name} is not in the shared group"
            assert stat.S_IMODE(found.st_mode) & 0o060 == 0o060, f"{name} is not group read-write"
        actions = [
            (event["actor"], event["action"], event["outcome"]) for event in aiw.AISettings(home=store).audit_log()
        ]
        assert actions == [
            (alice, "add", "ok"),
            (alice, "add-admin", "ok"),
            (bob, "edit", "ok"),
            (bob, "authenticate", "ok"),
            (alice, "edit", "ok"),
            (bob, "remove", "ok"),
            (alice, "add", "ok"),
        ]
    finally:
        shutil.rmtree(top, ignore_errors=True)


# -- a co-admin's keyring, in one process ------------------------------------------------ #


def _keyring(path: Path) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    backend.file_path = str(path)
    return backend


@pytest.fixture
def alice_and_bob(tmp_path, sandbox):
    """Alice saved the integration from her keyring and made Bob an admin; Bob has a keyring of his own."""
    home = tmp_path / "store"
    alice = aiw.AISettings(home=home, keyring=_keyring(tmp_path / "alice.cfg"), user="alice")
    alice.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    alice.add_admin("bob")
    bob = aiw.AISettings(home=home, keyring=_keyring(tmp_path / "bob.cfg"), user="bob")
    return alice, bob


def test_a_co_admin_without_the_keys_is_told_whose_keyring_has_them_and_health_stays_ok(alice_and_bob, sandbox):
    alice, bob = alice_and_bob
    events = len(alice.audit_log())
    requests = len(sandbox.requests)
    with pytest.raises(KeyNotInThisKeyring, match=CO_ADMIN) as raised:
        bob.test()
    assert "(alice)" in str(raised.value)
    with pytest.raises(KeyNotInThisKeyring, match=CO_ADMIN):  # an Edit that keeps the saved key
        bob.saved_key("api_key", sandbox.openai_base_url)
    status = bob.status()
    assert status.last_authentication_ok is True and status.health.value == "ok"
    assert len(alice.audit_log()) == events  # nothing was authenticated, so nothing is recorded
    assert len(sandbox.requests) == requests
    assert alice.test().ok  # Alice's keyring still has them


def test_the_admin_who_saved_whose_key_is_gone_gets_a_recorded_and_audited_failure(alice_and_bob):
    alice, _bob = alice_and_bob
    record = json.loads((alice.home / "settings.json").read_text())
    alice._keyring.delete_password("ai-admin-widgets", f"{record['store_id']}/r{record['revision']}/api_key")
    with pytest.raises(aiw.StoreError, match="no longer holds the saved API key"):
        alice.test()
    assert alice.status().last_authentication_ok is False
    last = alice.audit_log()[-1]
    assert (last["actor"], last["action"], last["outcome"]) == ("alice", "authenticate", "failed")
