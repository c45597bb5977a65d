"""Faults a user can cause around the store, each with what the admin sees instead of a hang or a traceback.

* a Save whose audit event cannot be written after the record was: reported saved, the audit problem named;
* Remove on a full disk (a real, small tmpfs; needs root, else skipped, and fails under CI=true),
  and on a settings.json that is deeply nested, of the wrong shape, too big, or not a regular file;
* an audit.jsonl that is a symbolic link: refused, never followed;
* a keyring that raises or hangs: a bounded wait, nothing recorded against the credentials,
  leftovers of every older revision cleaned, and Remove naming the keys it could not delete.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_keyring import FaultyKeyring
from keyrings.alt.file import PlaintextKeyring

import ai_admin_widgets as aiw
from ai_admin_widgets.store import SERVICE_NAME, SettingsStore

SLOTS = ("api_key", "language_model.api_key", "embeddings_model.api_key")


def openai(sandbox, **fields) -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url, **fields)


def finishes(call: Callable[[], object], within: float) -> tuple[object, BaseException | None]:
    """Run ``call`` in a daemon thread; fail the test if it has not returned within ``within`` seconds."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(within)
    assert not worker.is_alive(), f"still waiting after {within} s"
    error = outcome.get("error")
    return outcome.get("value"), error if isinstance(error, BaseException) else None


def keys_in(keyring_file: Path, store_id: str, revision: int) -> list[str]:
    plain = PlaintextKeyring()
    plain.file_path = str(keyring_file)
    return [slot for slot in SLOTS if plain.get_password(SERVICE_NAME, f"{store_id}/r{revision}/{slot}")]


def record_of(settings) -> dict:
    return json.loads((settings.home / "settings.json").read_text())


# -- a save whose audit event fails after the record is written ------------------------- #


def test_a_save_whose_audit_event_fails_after_the_record_is_reported_saved_naming_the_audit_problem(
    settings, sandbox, monkeypatch
):
    settings.save(openai(sandbox))
    write_record = SettingsStore._write_record

    def then_the_audit_log_breaks(store: SettingsStore, record) -> None:
        write_record(store, record)
        audit = store.home / "audit.jsonl"
        audit.unlink()
        audit.mkdir()  # from here on, no audit event can be appended (as with a disk that filled up)

    monkeypatch.setattr(SettingsStore, "_write_record", then_the_audit_log_breaks)
    status = settings.save(openai(sandbox, language_model="gpt-4.1"))
    monkeypatch.undo()
    assert status.configured and status.models[0].model is not None
    assert any("Saved, but the audit event" in warning and "audit.jsonl" in warning for warning in status.warnings)
    assert settings.saved_fields().language_model == "gpt-4.1"  # the change is in force, as reported


# -- a full disk (a real tmpfs) ---------------------------------------------------------- #


def _can_mount() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    probe = Path(f"/tmp/aiw-mount-probe-{uuid.uuid4().hex[:8]}")
    probe.mkdir()
    try:
        if subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
        ).returncode:
            return False
        subprocess.run(["umount", str(probe)], capture_output=True, check=True)
        return True
    finally:
        probe.rmdir()


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs) mounted for this test."""
    if not _can_mount():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the full-disk tests, which need root to mount a small tmpfs")
        pytest.skip("needs root to mount a small tmpfs")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> None:
    """Write to ``disk`` until it is full."""
    with open(disk / "filler", "ab", buffering=0) as handle:
        while True:
            try:
                handle.write(b"x" * 4096)
            except OSError as error:
                assert error.errno == errno.ENOSPC
                break
    with pytest.raises(OSError, match="No space left"):
        (disk / "one-more").write_bytes(b"x" * 4096)


def test_remove_works_on_a_full_disk_and_is_audited(small_disk, sandbox, file_keyring):
    settings = aiw.AISettings(home=small_disk / "store", keyring=file_keyring)
    settings.save(openai(sandbox))
    fill(small_disk)
    assert settings.remove() == []
    assert not settings.status().configured
    assert [event["action"] for event in settings.audit_log()] == ["add", "remove"]


def test_a_disk_that_fills_after_the_record_still_gets_the_save_and_its_audit_event(
    small_disk, sandbox, file_keyring, monkeypatch
):
    settings = aiw.AISettings(home=small_disk / "store", keyring=file_keyring)
    settings.save(openai(sandbox))
    audit = settings.home / "audit.jsonl"
    with open(audit, "ab") as handle:  # end the log on a page boundary: the next line needs a new page
        handle.write(b" " * (-(audit.stat().st_size + 1) % 4096) + b"\n")
    write_record = SettingsStore._write_record

    def then_the_disk_fills(store: SettingsStore, record) -> None:
        write_record(store, record)
        fill(small_disk)

    monkeypatch.setattr(SettingsStore, "_write_record", then_the_disk_fills)
    status = settings.save(openai(sandbox, language_model="gpt-4.1"))
    monkeypatch.undo()
    assert status.configured and not [warning for warning in status.warnings if "audit" in warning]
    assert [event["action"] for event in settings.audit_log()] == ["add", "edit"]


# -- a settings.json that is damaged, huge, or not a file ---------------------------------- #


def _deep(path: Path) -> None:
    path.write_text('{"admins": ["me"], "integration": ' + "[" * 200_000 + "]" * 200_000 + "}")


def _wrong_shape(path: Path) -> None:
    record = json.loads(path.read_text())
    record["integration"] = {"language_model": 3}  # status would dig for the base URL
    path.write_text(json.dumps(record))


def _wrong_types(path: Path) -> None:
    path.write_text(json.dumps({"admins": 5, "revision": "x", "store_id": [], "provider": {"a": 1}}))


def _a_list(path: Path) -> None:
    path.write_text("[]")


def _huge(path: Path) -> None:
    path.write_text("{" + " " * (3 << 20) + "}")


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("x")


def _symlink(path: Path) -> None:
    target = path.with_name("elsewhere.json")
    os.replace(path, target)  # a valid record, but not this store's file: it must not be followed
    path.symlink_to(target)


@pytest.mark.parametrize(
    "damage",
    [_deep, _wrong_shape, _wrong_types, _a_list, _huge, _fifo, _folder, _symlink],
    ids=["deeply nested", "wrong shape", "wrong types", "a list", "3 MiB", "a FIFO", "a folder", "a symlink"],
)
def test_remove_resets_a_settings_json_that_is_damaged_or_not_a_file(settings, sandbox, damage):
    settings.save(openai(sandbox))
    settings.add_admin("carol")
    path = settings.home / "settings.json"
    damage(path)

    for call in (settings.status, settings.saved_fields, settings.test):
        _, error = finishes(call, within=10)
        assert isinstance(error, aiw.StoreError), repr(error)
        assert "Remove the integration" in str(error)
    _, error = finishes(settings.remove, within=10)
    assert error is None, repr(error)
    status = settings.status()
    assert not status.configured
    assert list(settings.home.glob("settings.json.damaged-*"))
    if damage is _wrong_shape:  # still readable: who the admins are is kept
        assert settings.access_lists().admins == (settings.user, "carol")
    if damage is _symlink:
        assert json.loads((settings.home / "elsewhere.json").read_text())["provider"] == "openai"  # untouched
    settings.save(openai(sandbox))
    assert settings.status().configured


def test_a_settings_json_too_big_is_refused_saying_so(settings, sandbox):
    settings.save(openai(sandbox))
    _huge(settings.home / "settings.json")
    with pytest.raises(aiw.StoreError, match="larger than 1 MiB"):
        settings.status()


@pytest.mark.parametrize("kind", ["FIFO", "folder", "symbolic link"])
def test_a_settings_json_that_is_not_a_file_is_named_for_what_it_is(settings, sandbox, kind):
    settings.save(openai(sandbox))
    path = settings.home / "settings.json"
    {"FIFO": _fifo, "folder": _folder, "symbolic link": _symlink}[kind](path)
    _, error = finishes(settings.status, within=10)
    assert isinstance(error, aiw.StoreError) and f"is a {kind}" in str(error), repr(error)


# -- an audit log that is a symbolic link --------------------------------------------------- #


def test_an_audit_log_that_is_a_symlink_is_refused_and_its_target_untouched(settings, sandbox):
    settings.save(openai(sandbox))
    victim = settings.home.parent / "victim.txt"
    victim.write_text("precious\n")
    audit = settings.home / "audit.jsonl"
    audit.unlink()
    audit.symlink_to(victim)
    requests = len(sandbox.requests)
    with pytest.raises(aiw.StoreError, match="symbolic link"):
        settings.save(openai(sandbox, language_model="gpt-4.1"))
    assert len(sandbox.requests) == requests  # refused before any key was sent
    with pytest.raises(aiw.StoreError, match="symbolic link"):  # and on the append itself (a link made later)
        settings.store.append_audit(
            {"actor": "x", "action": "remove", "provider": None, "changed": [], "outcome": "ok"}
        )
    assert victim.read_text() == "precious\n"


# -- keyrings that raise or hang ------------------------------------------------------------ #


class HangingKeyring(PlaintextKeyring):
    """A file keyring whose chosen calls wait until ``release`` is set (a backend that stopped answering)."""

    def __init__(self, path: str, hang: set[str]) -> None:
        super().__init__()
        self.file_path = path
        self.hang = hang
        self.release = threading.Event()

    def _wait(self, method: str) -> None:
        if method in self.hang:
            self.release.wait(60)

    def get_password(self, service: str, username: str) -> str | None:
        self._wait("get")
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._wait("set")
        super().set_password(service, username, password)


class RaisingKeyring(PlaintextKeyring):
    """A file keyring whose reads fail, as a locked or crashed backend's would."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.file_path = path

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("the keyring daemon went away")


@pytest.fixture
def keyring_file(file_keyring) -> Path:
    return Path(file_keyring.file_path)


def test_a_hung_keyring_is_given_up_on_within_the_timeout_and_nothing_is_recorded(
    settings, sandbox, keyring_file, monkeypatch
):
    settings.save(openai(sandbox))
    monkeypatch.setenv("AI_ADMIN_KEYRING_TIMEOUT", "0.5")
    reads_hang = HangingKeyring(str(keyring_file), hang={"get"})
    writes_hang = HangingKeyring(str(keyring_file), hang={"set"})
    try:
        # Opening the store, cleaning up and reading the key: one wait of 0.5 s, not one per call.
        _, error = finishes(aiw.AISettings(home=settings.home, keyring=reads_hang).test, within=2)
        assert isinstance(error, aiw.KeyringUnavailable), repr(error)
        assert "did not answer within 0.5 s" in str(error)
        status = settings.status()
        assert status.last_authentication_ok is True and status.health.value == "ok"

        before = record_of(settings)
        saving = aiw.AISettings(home=settings.home, keyring=writes_hang)
        _, error = finishes(lambda: saving.save(openai(sandbox, language_model="gpt-4.1")), within=10)
        assert isinstance(error, aiw.KeyringUnavailable) and "did not answer within 0.5 s" in str(error), repr(error)
        assert record_of(settings) == before  # nothing changed
    finally:
        reads_hang.release.set()
        writes_hang.release.set()


def test_a_keyring_error_during_test_is_not_a_failed_authentication(settings, sandbox, keyring_file):
    settings.save(openai(sandbox))
    events = len(settings.audit_log())
    broken = aiw.AISettings(home=settings.home, keyring=RaisingKeyring(str(keyring_file)))
    with pytest.raises(aiw.KeyringUnavailable, match="RuntimeError"):
        broken.test()
    status = settings.status()
    assert status.last_authentication_ok is True and status.health.value == "ok"
    assert len(settings.audit_log()) == events


def test_leftover_keys_of_every_older_revision_are_cleaned(settings, sandbox, keyring_file):
    settings.save(openai(sandbox))
    store_id = record_of(settings)["store_id"]
    failing = aiw.AISettings(home=settings.home, keyring=FaultyKeyring(str(keyring_file), fail_delete=True))
    for model in ("gpt-4.1", "gpt-4o", "gpt-4.1"):
        failing.save(openai(sandbox, language_model=model))
    revision = record_of(settings)["revision"]
    assert revision == 4 and all(keys_in(keyring_file, store_id, old) for old in (1, 2, 3))

    fresh = aiw.AISettings(home=settings.home, keyring=_plain(keyring_file))
    _ = fresh.store  # opening the store (as any admin's first call does) cleans up
    assert [old for old in (1, 2, 3) if keys_in(keyring_file, store_id, old)] == []
    assert keys_in(keyring_file, store_id, revision) == ["api_key"]
    assert fresh.test().ok


def _plain(path: Path) -> PlaintextKeyring:
    plain = PlaintextKeyring()
    plain.file_path = str(path)
    return plain


def test_remove_says_which_keys_it_could_not_delete(settings, sandbox, keyring_file):
    settings.save(openai(sandbox))
    record = record_of(settings)
    failing = aiw.AISettings(home=settings.home, keyring=FaultyKeyring(str(keyring_file), fail_delete=True))
    undone = failing.remove()
    assert len(undone) == 1
    assert f": api_key of revision {record['revision']}." in undone[0]  # the one key it had, by slot
    assert "language_model" not in undone[0]
    assert sandbox.openai_api_key.get_secret_value() not in undone[0]
    assert not settings.status().configured
    fresh = aiw.AISettings(home=settings.home, keyring=_plain(keyring_file))
    _ = fresh.store  # the next open with that keyring deletes them
    assert keys_in(keyring_file, record["store_id"], record["revision"]) == []
