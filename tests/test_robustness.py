"""What goes wrong around the store: broken keyrings, damaged files, folders others own, races."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import keyring
import pytest
from keyring.backends import null

import ai_admin_widgets as aiw
from ai_admin_widgets.store import default_keyring
from ai_admin_widgets.verify import Timeouts


def openai(sandbox, **fields):
    return aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url, **fields)


def test_null_keyring_is_refused_so_keys_are_never_silently_dropped(monkeypatch):
    monkeypatch.setattr(keyring, "get_keyring", lambda: null.Keyring())
    with pytest.raises(aiw.KeyringUnavailable, match="No keyring backend is available"):
        default_keyring()


def test_save_checks_the_keyring_before_sending_any_key(tmp_path, sandbox, monkeypatch):
    monkeypatch.setattr(keyring, "get_keyring", lambda: null.Keyring())
    settings = aiw.AISettings(home=tmp_path / "store")
    with pytest.raises(aiw.KeyringUnavailable):
        settings.save(openai(sandbox))
    assert sandbox.requests == []


def test_remove_works_without_a_keyring(settings, sandbox, tmp_path, monkeypatch):
    settings.save(openai(sandbox))
    monkeypatch.setattr(keyring, "get_keyring", lambda: null.Keyring())
    without_keyring = aiw.AISettings(home=settings.home)
    without_keyring.remove()
    assert not settings.status().configured


@pytest.mark.parametrize(
    "damage",
    [
        lambda record: record.pop("integration"),
        lambda record: record.update(provider="anthropic"),
        lambda record: record.update(updated_at="yesterday"),
        lambda record: record.update(store_id=None),
        lambda record: record.update(revision="three"),
    ],
    ids=["integration missing", "unknown provider", "bad time", "no store id", "bad revision"],
)
def test_a_damaged_record_is_a_store_error_and_remove_resets_it(settings, sandbox, damage):
    settings.save(openai(sandbox))
    path = settings.home / "settings.json"
    record = json.loads(path.read_text())
    damage(record)
    path.write_text(json.dumps(record))

    for call in (settings.status, settings.test, settings.saved_fields):
        with pytest.raises(aiw.StoreError, match="Remove the integration"):
            call()
    settings.remove()
    assert not settings.status().configured
    assert list(settings.home.glob("settings.json.damaged-*"))
    settings.save(openai(sandbox))
    assert settings.status().configured


def test_a_truncated_audit_line_is_skipped(settings, sandbox):
    settings.save(openai(sandbox))
    with open(settings.home / "audit.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"at": "2026-')
    settings.remove()
    assert [event["action"] for event in settings.audit_log()] == ["add", "remove"]


def _as_nobody(*command: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command],
        capture_output=True,
        text=True,
        timeout=60,
        **options,
    )


def _nobody_can_run_python() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    return _as_nobody(sys.executable, "-c", "import ai_admin_widgets").returncode == 0


@pytest.mark.skipif(not _nobody_can_run_python(), reason="needs root, setpriv, and a Python the 'nobody' user may run")
def test_a_user_who_cannot_write_the_store_gets_a_clear_error_but_sees_the_status(sandbox, file_keyring):
    shared = tempfile.mkdtemp(prefix="ai-admin-shared-")
    try:
        os.chmod(shared, 0o755)
        settings = aiw.AISettings(home=os.path.join(shared, "store"), keyring=file_keyring)
        settings.save(openai(sandbox))
        settings.add_admin("nobody")  # an admin by the store's list, but the folder is not theirs to write
        script = (
            "import ai_admin_widgets as aiw\n"
            "from keyrings.alt.file import PlaintextKeyring\n"
            f"s = aiw.AISettings(home={str(settings.home)!r}, keyring=PlaintextKeyring(), user='nobody')\n"
            "print(s.status().configured)\n"
            "try:\n    s.remove()\nexcept aiw.StoreError as e:\n    print('StoreError:', e)\n"
        )
        done = _as_nobody(sys.executable, "-c", script, env={**os.environ, "HOME": shared})
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == "True"
        assert "Cannot write to" in done.stdout and "only users who may write this folder" in done.stdout
        assert settings.status().configured
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_slow_test_of_old_credentials_does_not_overwrite_a_newer_save(tmp_path, file_keyring):
    with aiw.Sandbox(latency_ms=1500) as slow, aiw.Sandbox() as fast:
        settings = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring, timeouts=Timeouts(check=0.5))
        settings.save(aiw.OpenAIIntegration(api_key=fast.openai_api_key, base_url=fast.openai_base_url))
        # Point the saved integration at the slow sandbox, then test it while a newer save lands.
        settings._timeouts = Timeouts(check=5)
        settings.save(aiw.OpenAIIntegration(api_key=slow.openai_api_key, base_url=slow.openai_base_url))
        settings._timeouts = Timeouts(check=0.5)
        tester = threading.Thread(target=settings.test)
        tester.start()
        while not slow.requests[2:]:  # the test's two requests have arrived (the save made two before)
            threading.Event().wait(0.01)
        settings._timeouts = Timeouts()
        settings.save(aiw.OpenAIIntegration(api_key=fast.openai_api_key, base_url=fast.openai_base_url))
        tester.join()
        status = settings.status()
        assert status.models[0].endpoint_url == fast.openai_base_url
        assert status.last_authentication_ok is True


def test_test_records_a_failure_when_the_saved_key_is_gone(settings, sandbox, file_keyring):
    settings.save(openai(sandbox))
    record = json.loads((settings.home / "settings.json").read_text())
    file_keyring.delete_password("ai-admin-widgets", f"{record['store_id']}/r{record['revision']}/api_key")
    with pytest.raises(aiw.StoreError, match="no longer holds the saved API key"):
        settings.test()
    assert settings.status().last_authentication_ok is False


def test_save_of_something_else_is_a_type_error(settings):
    with pytest.raises(TypeError, match="takes an OpenAIIntegration or an AzureOpenAIIntegration"):
        settings.save({"api_key": "x"})


def test_settings_file_is_readable_by_others_and_holds_no_key(settings, sandbox):
    settings.save(openai(sandbox))
    path = settings.home / "settings.json"
    assert path.stat().st_mode & 0o044 == 0o044
    assert sandbox.openai_api_key.get_secret_value() not in path.read_text()


def test_an_explicit_null_keyring_is_refused_before_any_request(tmp_path, sandbox):
    settings = aiw.AISettings(home=tmp_path / "store", keyring=null.Keyring())
    with pytest.raises(aiw.KeyringUnavailable, match="forgets every key"):
        settings.save(openai(sandbox))
    assert sandbox.requests == []


def test_a_change_that_cannot_be_audited_is_not_made(settings, sandbox):
    settings.save(openai(sandbox))
    before = (settings.home / "settings.json").read_text()
    (settings.home / "audit.jsonl").unlink()
    (settings.home / "audit.jsonl").mkdir()  # as good as a full disk or a file another admin owns
    requests = len(sandbox.requests)
    with pytest.raises(aiw.StoreError, match="audit.jsonl"):
        settings.save(openai(sandbox, language_model="gpt-4.1"))
    assert (settings.home / "settings.json").read_text() == before
    assert len(sandbox.requests) == requests


def test_the_user_name_comes_from_the_account_not_from_the_environment(monkeypatch):
    import pwd

    from ai_admin_widgets.access import current_user

    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.setenv("USER", "alice-spoofed")
    monkeypatch.setenv("LOGNAME", "alice-spoofed")
    assert current_user() == pwd.getpwuid(os.getuid()).pw_name
