"""A save is all or nothing, even when a step fails or the saving process is killed; two saves never mix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_keyring import FaultyKeyring
from keyrings.alt.file import PlaintextKeyring

import ai_admin_widgets as aiw
from ai_admin_widgets import store as store_module
from ai_admin_widgets.store import SERVICE_NAME

TESTS = Path(__file__).parent


def azure(sandbox, key: str, language: str = "chat-gpt-4o"):
    """A non-shared Azure integration (two key slots) with a practice key."""
    deployment = {"endpoint_url": sandbox.azure_endpoint, "api_key": key}
    return aiw.AzureOpenAIIntegration(
        language_model=deployment | {"deployment_id": language},
        embeddings_model=deployment | {"deployment_id": "embeddings-3-small"},
    )


OLD_KEY = "sandbox-azure-OLD-0000000000000000"
NEW_KEY = "sandbox-azure-NEW-1111111111111111"


@pytest.fixture
def keyring_file(tmp_path):
    return str(tmp_path / "keyring.cfg")


@pytest.fixture
def saved(tmp_path, sandbox, keyring_file):
    """Settings with the OLD integration saved."""
    plain = PlaintextKeyring()
    plain.file_path = keyring_file
    settings = aiw.AISettings(home=tmp_path / "store", keyring=plain)
    settings.save(azure(sandbox, OLD_KEY))
    return settings


def record(settings) -> dict:
    return json.loads((settings.home / "settings.json").read_text())


def key_at(keyring_file, settings_record: dict, revision: int, slot: str) -> str | None:
    plain = PlaintextKeyring()
    plain.file_path = keyring_file
    return plain.get_password(SERVICE_NAME, f"{settings_record['store_id']}/r{revision}/{slot}")


def loaded_key(tmp_path, keyring_file) -> str:
    plain = PlaintextKeyring()
    plain.file_path = keyring_file
    fresh = aiw.AISettings(home=tmp_path / "store", keyring=plain)
    integration = fresh.store.load()
    assert integration is not None
    keys = {slot: key.get_secret_value() for slot, key in integration.secrets().items()}
    assert len(set(keys.values())) == 1, f"a mix of two saves: {sorted(keys)}"
    return next(iter(keys.values()))


SLOTS = ("language_model.api_key", "embeddings_model.api_key")


def test_a_failing_keyring_write_leaves_the_old_integration_whole(tmp_path, sandbox, saved, keyring_file):
    before = record(saved)
    faulty = aiw.AISettings(home=saved.home, keyring=FaultyKeyring(keyring_file, fail_set_at=2))
    with pytest.raises(aiw.KeyringUnavailable, match="nothing was changed"):
        faulty.save(azure(sandbox, NEW_KEY))
    assert record(saved) == before
    assert loaded_key(tmp_path, keyring_file) == OLD_KEY
    assert all(key_at(keyring_file, before, before["revision"] + 1, slot) is None for slot in SLOTS)


def test_a_failing_record_write_leaves_the_old_integration_whole(tmp_path, sandbox, saved, keyring_file, monkeypatch):
    before = record(saved)

    def full_disk(*_arguments):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "replace", full_disk)
    with pytest.raises(aiw.StoreError, match="No space left on device"):
        saved.save(azure(sandbox, NEW_KEY))
    monkeypatch.undo()
    assert record(saved) == before
    assert loaded_key(tmp_path, keyring_file) == OLD_KEY
    assert all(key_at(keyring_file, before, before["revision"] + 1, slot) is None for slot in SLOTS)


def test_a_failing_delete_keeps_the_new_integration_and_the_leftovers_go_next_time(
    tmp_path, sandbox, saved, keyring_file
):
    before = record(saved)
    faulty = aiw.AISettings(home=saved.home, keyring=FaultyKeyring(keyring_file, fail_delete=True))
    faulty.save(azure(sandbox, NEW_KEY))
    after = record(saved)
    assert after["revision"] == before["revision"] + 1
    assert key_at(keyring_file, before, before["revision"], SLOTS[0]) == OLD_KEY  # left behind
    assert loaded_key(tmp_path, keyring_file) == NEW_KEY  # opening the store cleans up
    assert all(key_at(keyring_file, before, before["revision"], slot) is None for slot in SLOTS)


CHILD = """
import os, sys
sys.path.insert(0, os.environ["AI_ADMIN_TEST_DIR"])
import ai_admin_widgets as aiw
from fault_keyring import from_environment
deployment = {"endpoint_url": os.environ["ENDPOINT"], "api_key": os.environ["KEY"]}
settings = aiw.AISettings(home=os.environ["HOME_FOLDER"], keyring=from_environment())
settings.save(aiw.AzureOpenAIIntegration(
    language_model=deployment | {"deployment_id": "chat-gpt-4o"},
    embeddings_model=deployment | {"deployment_id": "embeddings-3-small"},
))
"""


@pytest.mark.parametrize(
    "step, survivor",
    [("set:1", OLD_KEY), ("set:2", OLD_KEY), ("delete:1", NEW_KEY)],
    ids=[
        "killed after one key",
        "killed after all keys, before the record",
        "killed after the record, before the old keys go",
    ],
)
def test_a_save_killed_between_steps_leaves_one_whole_integration(
    tmp_path, sandbox, saved, keyring_file, step, survivor
):
    before = record(saved)
    stopped = tmp_path / "stopped"
    env = dict(
        os.environ,
        AI_ADMIN_TEST_DIR=str(TESTS),
        AI_ADMIN_TEST_KEYRING=keyring_file,
        AI_ADMIN_TEST_STOP_AFTER=step,
        AI_ADMIN_TEST_STOPPED=str(stopped),
        ENDPOINT=sandbox.azure_endpoint,
        KEY=NEW_KEY,
        HOME_FOLDER=str(saved.home),
    )
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not stopped.exists():
            assert child.poll() is None, f"the saving process ended early: {child.stderr.read()}"
            assert time.monotonic() < deadline, "the saving process never reached the step"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)

    leftover_revision = before["revision"] + 1 if survivor == OLD_KEY else before["revision"]
    assert key_at(keyring_file, before, leftover_revision, SLOTS[0]) is not None, "the step left nothing behind"
    assert loaded_key(tmp_path, keyring_file) == survivor
    assert all(key_at(keyring_file, before, leftover_revision, slot) is None for slot in SLOTS), "leftovers stayed"


RACER = """
import os, sys, time
from pathlib import Path
import ai_admin_widgets as aiw
from keyrings.alt.file import PlaintextKeyring
keyring = PlaintextKeyring()
keyring.file_path = os.environ["KEYRING_FILE"]
from ai_admin_widgets.access import AccessPolicy
settings = aiw.AISettings(home=os.environ["HOME_FOLDER"], keyring=keyring, user=os.environ["WHO"],
                          access=AccessPolicy(admin=True))
settings.status()
Path(os.environ["READY"]).write_text("ready")
while len(list(Path(os.environ["READY"]).parent.glob("ready-*"))) < 2:
    time.sleep(0.01)
deployment = {"endpoint_url": os.environ["ENDPOINT"], "api_key": os.environ["KEY"]}
try:
    settings.save(aiw.AzureOpenAIIntegration(
        language_model=deployment | {"deployment_id": "chat-gpt-4o"},
        embeddings_model=deployment | {"deployment_id": "embeddings-3-small"},
    ))
except aiw.ConcurrentChange as error:
    print("refused:", error)
else:
    print("saved")
"""


def test_two_kernels_saving_at_once_one_wins_and_the_other_is_told(tmp_path, saved, keyring_file):
    with aiw.Sandbox(latency_ms=1500) as slow:  # both checks are under way at the same time
        racers = []
        for who, key in (("alice", "sandbox-azure-ALICE-000000000000"), ("bob", "sandbox-azure-BOB-11111111111111")):
            env = dict(
                os.environ,
                KEYRING_FILE=keyring_file,
                HOME_FOLDER=str(saved.home),
                WHO=who,
                KEY=key,
                ENDPOINT=slow.azure_endpoint,
                READY=str(tmp_path / f"ready-{who}"),
            )
            racers.append(
                (
                    who,
                    key,
                    subprocess.Popen(
                        [sys.executable, "-c", RACER],
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
            )
        results = {who: (key, process.communicate(timeout=120)) for who, key, process in racers}

    outcomes = {who: out.strip() for who, (_key, (out, _err)) in results.items()}
    assert all(out for out in outcomes.values()), {who: err for who, (_key, (_out, err)) in results.items()}
    assert sorted(outcome.split(":")[0] for outcome in outcomes.values()) == ["refused", "saved"], outcomes
    winner = next(who for who, outcome in outcomes.items() if outcome == "saved")
    loser = next(who for who in outcomes if who != winner)
    assert f"changed by {winner} at " in outcomes[loser] and "Reload" in outcomes[loser]
    assert loaded_key(tmp_path, keyring_file) == results[winner][0]
    assert aiw.AISettings(home=saved.home, keyring=saved._keyring).status().updated_by == winner


ADMIN_CHANGE = """
import os, sys, time
from pathlib import Path
import ai_admin_widgets as aiw
settings = aiw.AISettings(home=os.environ["HOME_FOLDER"], keyring=None, user=os.environ["WHO"])
Path(os.environ["READY"]).write_text("ready")
while len(list(Path(os.environ["READY"]).parent.glob("ready-*"))) < 2:
    time.sleep(0.005)
getattr(settings, os.environ["CHANGE"])(os.environ["NAME"])
"""


def test_two_admins_changing_the_admins_list_at_once_keep_both_changes(tmp_path):
    from ai_admin_widgets.store import SettingsStore

    home = tmp_path / "store"
    SettingsStore(home, None).update_access(actor="alice", admins=["alice", "bob", "dave"])
    for round_number in range(3):
        folder = tmp_path / f"round-{round_number}"
        folder.mkdir()
        changes = (
            ("alice", "add_admin", f"carol{round_number}"),
            ("bob", "remove_admin", "dave" if round_number == 0 else f"carol{round_number - 1}"),
        )
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", ADMIN_CHANGE],
                env=dict(
                    os.environ,
                    HOME_FOLDER=str(home),
                    WHO=who,
                    CHANGE=change,
                    NAME=name,
                    READY=str(folder / f"ready-{who}"),
                ),
                stderr=subprocess.PIPE,
                text=True,
            )
            for who, change, name in changes
        ]
        for process in processes:
            _, error = process.communicate(timeout=60)
            assert process.returncode == 0, error
        admins = SettingsStore(home, None).read().admins
        assert f"carol{round_number}" in admins
        assert changes[1][2] not in admins


def test_a_save_refused_by_the_store_is_in_the_audit_log(tmp_path, sandbox, saved, keyring_file):
    faulty = aiw.AISettings(home=saved.home, keyring=FaultyKeyring(keyring_file, fail_set_at=1))
    with pytest.raises(aiw.KeyringUnavailable):
        faulty.save(azure(sandbox, NEW_KEY))
    last = saved.audit_log()[-1]
    assert (last["action"], last["outcome"], last["error"]) == ("save", "failed", "no usable keyring")
    assert NEW_KEY not in json.dumps(saved.audit_log())
