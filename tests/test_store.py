"""The settings store against a real file keyring in a temp folder: where keys go, and that saves are all or nothing."""

from __future__ import annotations

import base64
import json
import traceback
import uuid
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring

import ai_admin_widgets as aiw
from ai_admin_widgets.store import PLAINTEXT_ENV, SERVICE_NAME, SettingsStore, default_keyring

AZURE = "https://my-resource.openai.azure.com"
MODELS = {"language": "gpt-4o", "embeddings": "text-embedding-3-small"}


def new_key() -> str:
    return f"sk-LEAKMARKER-{uuid.uuid4().hex}"


def azure(language_key: str, embeddings_key: str) -> aiw.AzureOpenAIIntegration:
    return aiw.AzureOpenAIIntegration(
        language_model=aiw.AzureDeployment(endpoint_url=AZURE, deployment_id="gpt-4o", api_key=language_key),
        embeddings_model=aiw.AzureDeployment(endpoint_url=AZURE, deployment_id="emb-3", api_key=embeddings_key),
    )


def reopened(backend: PlaintextKeyring) -> PlaintextKeyring:
    """A second backend on the same keyring file, so reads come from the file and not from memory."""
    fresh = PlaintextKeyring()
    fresh.file_path = backend.file_path
    return fresh


def keyring_file_holds(backend: PlaintextKeyring, key: str) -> bool:
    """True when the keyring file stores ``key`` (PlaintextKeyring writes values base64-encoded)."""
    path = Path(backend.file_path)
    text = "".join(path.read_text().split()) if path.exists() else ""
    return base64.b64encode(key.encode()).decode() in text or key in text


def store_files_text(store: SettingsStore) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in store.home.iterdir() if path.is_file())


def username(record, slot: str) -> str:
    return f"{record.store_id}/r{record.revision}/{slot}"


@pytest.fixture
def store(settings) -> SettingsStore:
    return settings.store


def test_save_puts_keys_in_the_keyring_and_only_hints_in_settings_json(store, file_keyring):
    language_key, embeddings_key = new_key(), new_key()
    record = store.save(azure(language_key, embeddings_key), actor="alice", models=MODELS)

    written = reopened(file_keyring)
    assert written.get_password(SERVICE_NAME, username(record, "language_model.api_key")) == language_key
    assert written.get_password(SERVICE_NAME, username(record, "embeddings_model.api_key")) == embeddings_key

    text = (store.home / "settings.json").read_text(encoding="utf-8")
    for key in (language_key, embeddings_key):
        assert key[:-4] not in text
    assert json.loads(text)["key_hints"] == {
        "language_model.api_key": "…" + language_key[-4:],
        "embeddings_model.api_key": "…" + embeddings_key[-4:],
    }


def test_load_round_trips_the_saved_integration(store):
    integration = azure(new_key(), new_key())
    store.save(integration, actor="alice", models=MODELS)
    assert store.load() == integration


def test_load_with_nothing_saved_is_none(store):
    assert store.load() is None
    assert store.read().revision == 0


def test_second_save_deletes_the_previous_revisions_keys(store, file_keyring):
    old_key, new = new_key(), new_key()
    first = store.save(aiw.OpenAIIntegration(api_key=old_key), actor="alice", models=MODELS)
    second = store.save(aiw.OpenAIIntegration(api_key=new), actor="alice", models=MODELS)

    assert second.revision == first.revision + 1
    assert not keyring_file_holds(file_keyring, old_key)
    assert reopened(file_keyring).get_password(SERVICE_NAME, username(first, "api_key")) is None
    assert reopened(file_keyring).get_password(SERVICE_NAME, username(second, "api_key")) == new
    assert store.load().api_key.get_secret_value() == new


def test_a_save_that_lost_the_race_says_who_changed_it_and_when_to_the_second(store):
    first = store.save(aiw.OpenAIIntegration(api_key=new_key()), actor="alice", models=MODELS)
    store.save(aiw.OpenAIIntegration(api_key=new_key()), actor="bob", models=MODELS)
    with pytest.raises(aiw.ConcurrentChange) as lost:
        store.save(
            aiw.OpenAIIntegration(api_key=new_key()), actor="alice", models=MODELS, expected_revision=first.revision
        )
    when = store.read().updated_at
    assert f"changed by bob at {when:%Y-%m-%d %H:%M:%S} UTC while" in str(lost.value), str(lost.value)


def test_remove_deletes_the_keys_and_leaves_nothing_configured(settings, store, file_keyring):
    key = new_key()
    store.save(aiw.OpenAIIntegration(api_key=key), actor="alice", models=MODELS)
    store.remove(actor="bob")

    assert not keyring_file_holds(file_keyring, key)
    assert store.load() is None
    status = settings.status()
    assert not status.configured
    assert status.updated_by == "bob"
    assert status.revision == 2


class _SecondSetFails(PlaintextKeyring):
    """A file keyring that refuses its second write, with an error text that (carelessly) holds the key."""

    def __init__(self, file_path: str) -> None:
        super().__init__()
        self.file_path = file_path
        self.set_calls = 0

    def set_password(self, service: str, username: str, password: str) -> None:
        self.set_calls += 1
        if self.set_calls == 2:
            raise RuntimeError(f"keyring locked while storing {password}")
        super().set_password(service, username, password)


def test_keyring_failure_mid_save_changes_nothing(settings, store, file_keyring):
    old_key = new_key()
    old = aiw.OpenAIIntegration(api_key=old_key)
    store.save(old, actor="alice", models=MODELS)
    record_before = (store.home / "settings.json").read_text(encoding="utf-8")

    failing = SettingsStore(store.home, _SecondSetFails(file_keyring.file_path))
    first_new, second_new = new_key(), new_key()
    with pytest.raises(aiw.KeyringUnavailable) as caught:
        failing.save(azure(first_new, second_new), actor="alice", models=MODELS)

    assert (store.home / "settings.json").read_text(encoding="utf-8") == record_before
    assert store.load() == old
    assert keyring_file_holds(file_keyring, old_key)
    assert not keyring_file_holds(file_keyring, first_new)  # the key written before the failure was taken back
    shown = "".join(traceback.format_exception(caught.value))
    assert first_new not in shown and second_new not in shown
    assert "nothing was changed" in str(caught.value)
    assert settings.status().provider is aiw.Provider.OPENAI


def test_damaged_settings_file_is_a_clear_store_error(settings, store):
    store.home.mkdir(parents=True)
    (store.home / "settings.json").write_text('{"revision": 3, "provider": "open', encoding="utf-8")
    with pytest.raises(aiw.StoreError, match=r"settings\.json is damaged"):
        store.load()
    with pytest.raises(aiw.StoreError, match="Remove the integration .* and add it again"):
        settings.status()


def test_settings_file_of_another_shape_is_a_store_error(store):
    store.home.mkdir(parents=True)
    (store.home / "settings.json").write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(aiw.StoreError, match=r"settings\.json is damaged"):
        store.read()


# --------------------------------------------------------------------------- #
# The keyring policy
# --------------------------------------------------------------------------- #


class _SystemLikeKeyring(KeyringBackend):
    """Stands in for an OS keyring (Secret Service, Keychain); stores nothing."""

    priority = 5

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        raise NotImplementedError

    def delete_password(self, service, username):
        raise NotImplementedError


@pytest.fixture
def system_keyring(monkeypatch):
    """Make ``keyring.get_keyring()`` answer with a chosen backend, without touching the machine's keyring."""

    def choose(backend: KeyringBackend) -> None:
        monkeypatch.setattr(keyring, "get_keyring", lambda: backend)

    monkeypatch.delenv(PLAINTEXT_ENV, raising=False)
    return choose


def test_default_keyring_refuses_a_plaintext_backend(system_keyring, file_keyring):
    system_keyring(file_keyring)
    with pytest.raises(aiw.KeyringUnavailable, match=PLAINTEXT_ENV):
        default_keyring()


def test_default_keyring_accepts_plaintext_when_allowed(system_keyring, file_keyring, monkeypatch):
    system_keyring(file_keyring)
    monkeypatch.setenv(PLAINTEXT_ENV, "1")
    assert default_keyring() is file_keyring


def test_default_keyring_refuses_the_fail_backend(system_keyring):
    system_keyring(fail.Keyring())
    with pytest.raises(aiw.KeyringUnavailable, match="No keyring backend is available"):
        default_keyring()


def test_default_keyring_accepts_a_system_keyring(system_keyring):
    backend = _SystemLikeKeyring()
    system_keyring(backend)
    assert default_keyring() is backend


def test_settings_without_a_keyring_refuse_to_save_on_a_plaintext_only_machine(system_keyring, file_keyring, tmp_path):
    system_keyring(file_keyring)
    settings = aiw.AISettings(home=tmp_path / "store")
    assert not settings.status().configured  # reading needs no keyring
    with pytest.raises(aiw.KeyringUnavailable):
        settings.store.save(aiw.OpenAIIntegration(api_key=new_key()), actor="alice", models=MODELS)
