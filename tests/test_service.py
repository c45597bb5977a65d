"""AI Settings end to end against the sandbox: save, status, test, remove, access and the audit log."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ai_admin_widgets as aiw
from ai_admin_widgets.access import AccessPolicy


def openai(sandbox, **fields) -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(**({"api_key": sandbox.openai_api_key, "base_url": sandbox.openai_base_url} | fields))


def azure(sandbox, *, key=None) -> aiw.AzureOpenAIIntegration:
    return aiw.AzureOpenAIIntegration.shared(
        endpoint_url=sandbox.azure_endpoint,
        api_key=key or sandbox.azure_api_key,
        language_deployment_id=sandbox.azure_deployments["language"],
        embeddings_deployment_id=sandbox.azure_deployments["embeddings"],
    )


def secret(value) -> str:
    return value.get_secret_value()


def unchanged(now, earlier) -> bool:
    """Two statuses describe the same saved state (they were read at different times: ``checked_at`` differs)."""
    return now.model_dump(exclude={"checked_at"}) == earlier.model_dump(exclude={"checked_at"})


def files_text(folder: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in folder.rglob("*") if path.is_file())


def test_save_openai_then_remove(settings, sandbox):
    status = settings.save(openai(sandbox))
    assert status.configured
    assert unchanged(settings.status(), status)
    assert status.provider is aiw.Provider.OPENAI
    assert [model.model for model in status.models] == ["gpt-4o", "text-embedding-3-small"]
    assert status.key_hint == "…" + secret(sandbox.openai_api_key)[-4:]
    assert status.updated_by == settings.user
    assert status.last_authentication_ok is True

    settings.remove()
    assert not settings.status().configured
    assert settings.status().summary() == "Not configured. AI functionality is disabled."


def test_save_azure_with_a_shared_endpoint_and_key(settings, sandbox):
    status = settings.save(azure(sandbox))
    assert status.provider is aiw.Provider.AZURE_OPENAI
    assert [(m.role, m.deployment_id, m.model) for m in status.models] == [
        ("language", "chat-gpt-4o", "gpt-4o-2024-08-06"),
        ("embeddings", "embeddings-3-small", "text-embedding-3-small"),
    ]
    assert {m.endpoint_url for m in status.models} == {sandbox.azure_endpoint}
    assert settings.store.load() == azure(sandbox)


def test_failed_save_stores_nothing_and_keeps_the_previous_integration(settings, sandbox, marker_key, file_keyring):
    settings.save(openai(sandbox))
    before = settings.status()

    with pytest.raises(aiw.VerificationFailed) as caught:
        settings.save(azure(sandbox, key=marker_key))

    assert [check.code for check in caught.value.report.checks] == [aiw.FailureCode.INVALID_API_KEY] * 2
    assert marker_key not in str(caught.value)
    assert unchanged(settings.status(), before)
    assert settings.store.load() == openai(sandbox)
    assert marker_key not in files_text(settings.home)
    keyring_file = "".join(Path(file_keyring.file_path).read_text().split())
    assert base64.b64encode(marker_key.encode()).decode() not in keyring_file  # PlaintextKeyring stores base64


def test_failed_first_save_leaves_nothing_configured(settings, sandbox):
    with pytest.raises(aiw.VerificationFailed):
        settings.save(openai(sandbox, language_model="gpt-9-imaginary"))
    assert not settings.status().configured
    assert settings.store.load() is None


def test_test_with_an_integration_stores_nothing(settings, sandbox):
    assert settings.test(openai(sandbox)).ok
    assert not settings.status().configured


def test_test_reauthenticates_the_saved_integration(settings, sandbox):
    settings.save(azure(sandbox))
    saved_at = settings.status().last_authenticated_at
    requests_before = len(sandbox.requests)

    report = settings.test()

    assert report.ok
    assert len(sandbox.requests) == requests_before + 2
    status = settings.status()
    assert status.last_authentication_ok is True
    assert status.last_authenticated_at >= saved_at
    assert settings.audit_log()[-1]["action"] == "authenticate"


def test_test_records_a_failed_reauthentication(settings, sandbox):
    settings.save(openai(sandbox))
    sandbox.stop()  # the endpoint goes away after the save

    report = settings.test()

    assert [check.code for check in report.checks] == [aiw.FailureCode.CONNECTION_FAILED] * 2
    status = settings.status()
    assert status.configured
    assert status.last_authentication_ok is False
    assert settings.audit_log()[-1] | {"at": None} == {
        "at": None,
        "actor": settings.user,
        "action": "authenticate",
        "provider": "openai",
        "changed": [],
        "outcome": "failed",
        "codes": ["connection_failed", "connection_failed"],
    }


def test_test_with_nothing_saved_is_not_configured(settings):
    with pytest.raises(aiw.NotConfigured):
        settings.test()


def test_remove_with_nothing_saved_is_not_configured(settings):
    with pytest.raises(aiw.NotConfigured):
        settings.remove()


# --------------------------------------------------------------------------- #
# Access
# --------------------------------------------------------------------------- #


@pytest.fixture
def viewer(tmp_path, file_keyring) -> aiw.AISettings:
    """The same store as ``settings``, opened by a user who is not an admin."""
    return aiw.AISettings(
        home=tmp_path / "store", keyring=file_keyring, user="viewer", access=AccessPolicy(admin=False)
    )


def test_non_admin_cannot_save_and_no_credentials_are_sent(viewer, sandbox):
    assert not viewer.is_admin()
    with pytest.raises(aiw.PermissionDenied, match="Admin"):
        viewer.save(openai(sandbox))
    assert sandbox.requests == []
    assert not viewer.status().configured


def test_non_admin_cannot_remove_but_can_see_the_status(settings, viewer, sandbox):
    settings.save(openai(sandbox))
    with pytest.raises(aiw.PermissionDenied):
        viewer.remove()
    status = viewer.status()
    assert status.configured
    assert status.updated_by == settings.user


def test_status_works_when_the_system_keyring_is_broken(tmp_path, monkeypatch):
    import keyring

    def broken_keyring():
        raise RuntimeError("D-Bus is not running")

    monkeypatch.setattr(keyring, "get_keyring", broken_keyring)
    status = aiw.AISettings(home=tmp_path / "store").status()
    assert not status.configured
    assert status.keyring_backend == "none usable"


# --------------------------------------------------------------------------- #
# Audit log and change listeners
# --------------------------------------------------------------------------- #


def test_audit_log_records_each_change_and_never_a_key(settings, sandbox, marker_key):
    settings.save(openai(sandbox))
    settings.save(openai(sandbox, language_model="gpt-4o-mini"))
    settings.test()
    with pytest.raises(aiw.VerificationFailed):
        settings.save(openai(sandbox, api_key=marker_key))
    settings.remove()

    log = settings.audit_log()
    assert [(event["action"], event["outcome"]) for event in log] == [
        ("add", "ok"),
        ("edit", "ok"),
        ("authenticate", "ok"),
        ("save", "failed"),
        ("remove", "ok"),
    ]
    assert {event["actor"] for event in log} == {settings.user}
    assert log[1]["changed"] == ["language_model"]
    assert log[3]["codes"] == ["invalid_api_key", "invalid_api_key"]
    text = (settings.home / "audit.jsonl").read_text(encoding="utf-8")
    for key in (secret(sandbox.openai_api_key), marker_key):
        assert key[:-4] not in text


def test_edit_names_the_changed_fields_and_key_slot_never_their_values(settings, sandbox):
    with aiw.Sandbox() as other:
        settings.save(openai(other))
        settings.save(openai(sandbox))  # another base URL and another key
        old_key = secret(other.openai_api_key)
    assert settings.audit_log()[-1]["changed"] == ["base_url", "api_key"]
    assert old_key[:-4] not in (settings.home / "audit.jsonl").read_text(encoding="utf-8")


def test_on_change_listeners_are_called_after_save_and_remove(settings, sandbox):
    seen: list[bool] = []
    stop = settings.on_change(lambda: seen.append(settings.status().configured))

    settings.save(openai(sandbox))
    with pytest.raises(aiw.VerificationFailed):
        settings.save(openai(sandbox, language_model="gpt-9-imaginary"))
    settings.remove()
    assert seen == [True, False]

    stop()
    settings.save(openai(sandbox))
    assert seen == [True, False]


# --------------------------------------------------------------------------- #
# The README example, in a plain Python process
# --------------------------------------------------------------------------- #

README_SNIPPET = textwrap.dedent(
    """
    import ai_admin_widgets as aiw
    with aiw.Sandbox() as sb:
        s = sb.settings()
        s.save(aiw.OpenAIIntegration(api_key=sb.openai_api_key, base_url=sb.openai_base_url))
        assert s.status().configured
        s.remove()
        assert not s.status().configured
    """
)


def test_readme_snippet_runs_in_a_plain_python_process(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", README_SNIPPET], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
