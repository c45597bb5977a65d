"""The Settings interface: what the panel, ai-admin and ai may ask, typed, and the kept-key contract."""

from __future__ import annotations

import pytest

import ai_admin_widgets as aiw
from ai_admin_widgets.interface import Settings, open_settings
from ai_admin_widgets.models import (
    KEEP_SAVED_KEY,
    AuditAction,
    AuditEvent,
    AzureOpenAIFields,
    OpenAIFields,
    SavedKeyUnavailable,
    SettingsSnapshot,
)


def openai(sandbox, **fields) -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(**({"api_key": sandbox.openai_api_key, "base_url": sandbox.openai_base_url} | fields))


def azure(sandbox, key=None) -> aiw.AzureOpenAIIntegration:
    return aiw.AzureOpenAIIntegration.shared(
        endpoint_url=sandbox.azure_endpoint,
        api_key=sandbox.azure_api_key if key is None else key,
        language_deployment_id=sandbox.azure_deployments["language"],
        embeddings_deployment_id=sandbox.azure_deployments["embeddings"],
    )


def test_ai_settings_implements_the_interface(settings):
    assert isinstance(settings, Settings)
    assert isinstance(open_settings(home=settings.home, keyring=settings._keyring), Settings)


def test_snapshot_is_typed_and_holds_no_key(settings, sandbox):
    settings.save(azure(sandbox))
    snapshot = settings.snapshot()
    assert isinstance(snapshot, SettingsSnapshot)
    assert snapshot.status.configured and snapshot.user == settings.user
    assert isinstance(snapshot.saved, AzureOpenAIFields)
    assert snapshot.saved.language_model.deployment_id == sandbox.azure_deployments["language"]
    assert snapshot.admin.admin and snapshot.may_use_ai and snapshot.problem is None
    assert sandbox.azure_api_key.get_secret_value() not in snapshot.model_dump_json()


def test_snapshot_of_a_damaged_record_says_so_instead_of_raising(settings, sandbox):
    settings.save(openai(sandbox))
    (settings.home / "settings.json").write_text('{"revision": "many"}', encoding="utf-8")
    snapshot = settings.snapshot()
    assert not snapshot.status.configured
    assert "damaged" in (snapshot.problem or "")


def test_an_edit_that_keeps_the_saved_key_sends_it_to_the_same_host_only(settings, sandbox):
    settings.save(openai(sandbox))
    status = settings.save(openai(sandbox, api_key=KEEP_SAVED_KEY, language_model="gpt-4.1"))
    assert status.key_hint == "…" + sandbox.openai_api_key.get_secret_value()[-4:]
    saved = settings.saved_fields()
    assert isinstance(saved, OpenAIFields) and saved.language_model == "gpt-4.1"

    elsewhere = sandbox.openai_base_url.replace("127.0.0.1", "localhost")
    with pytest.raises(SavedKeyUnavailable) as refused:
        settings.save(openai(sandbox, api_key=KEEP_SAVED_KEY, base_url=elsewhere))
    assert refused.value.field == "api_key"
    assert settings.saved_fields().base_url == sandbox.openai_base_url  # nothing changed


def test_a_kept_key_of_the_other_provider_is_refused_by_field(settings, sandbox):
    settings.save(openai(sandbox))
    with pytest.raises(SavedKeyUnavailable) as refused:
        settings.test(azure(sandbox, key=KEEP_SAVED_KEY))
    assert refused.value.field == "language_model.api_key"


def test_test_and_save_take_only_integrations(settings):
    for method in (settings.test, settings.save):
        with pytest.raises(TypeError, match="OpenAIIntegration or an AzureOpenAIIntegration"):
            method("x")


def test_history_is_typed_newest_last_and_limited(settings, sandbox):
    settings.save(openai(sandbox))
    settings.test()
    settings.remove()
    events = settings.history()
    assert [event.action for event in events] == [AuditAction.ADD, AuditAction.AUTHENTICATE, AuditAction.REMOVE]
    assert [event.action for event in settings.history(limit=2)] == [AuditAction.AUTHENTICATE, AuditAction.REMOVE]
    with pytest.raises(ValueError, match="limit"):
        settings.history(limit=0)


def test_one_history_row_names_fields_by_title_and_codes_by_model():
    edit = AuditEvent.parse(
        {
            "at": "2026-01-02T03:04:00+00:00",
            "actor": "ann",
            "action": "edit",
            "provider": "azure_openai",
            "changed": ["language_model.endpoint_url", "api_version"],
        }
    )
    assert edit is not None
    assert edit.row().details == "Endpoint URL, language model; API version"
    assert edit.row().what == "Edited" and edit.row().provider == "Azure OpenAI"
    refused = AuditEvent.parse(
        {
            "at": "2026-01-02T03:04:00+00:00",
            "action": "save",
            "outcome": "failed",
            "codes": ["ok", "invalid_api_key"],
        }
    )
    assert refused is not None and refused.row().details == "Embeddings model: invalid_api_key"
    concurrent = AuditEvent.parse({"at": "2026-01-02T03:04:00", "action": "save", "error": "ConcurrentChange"})
    assert concurrent is not None and "ConcurrentChange" not in concurrent.row().details
    assert AuditEvent.parse({"at": "yesterday", "action": "add"}) is None
    assert AuditEvent.parse({"at": "2026-01-02T03:04:00", "action": "no-such-action"}) is None
