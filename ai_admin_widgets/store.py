"""Where the integration lives: a settings record and an audit log in a folder, keys in keyring.

The folder (``$AI_ADMIN_HOME``, or the platform's user data folder) holds:

* ``settings.json``: the provider, endpoints, deployment ids, key hints (last 4
  characters), the models that answered, who saved and when, and the revision
  number. Never a key. Written atomically (a temporary file, then a rename).
* ``audit.jsonl``: one JSON event per line (add, edit, remove, authenticate).
* ``settings.lock``: the lock (filelock) that serializes writers.

Keys are stored only through the keyring backend interface (get, set, delete),
under the service name ``ai-admin-widgets`` and the user name
``<store id>/r<revision>/<slot>``, so each revision's keys are separate.
A save writes the new revision's keys, then the record that points at them,
then deletes the old revision's keys.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock
from keyring.backend import KeyringBackend
from pydantic import SecretStr

from .models import (
    AzureOpenAIIntegration,
    KeyringUnavailable,
    OpenAIIntegration,
    StoreError,
    key_hint,
    parse_integration,
)

__all__ = ["SERVICE_NAME", "SettingsStore", "default_home", "default_keyring", "backend_name"]

SERVICE_NAME = "ai-admin-widgets"
RECORD_FORMAT = 1
PLAINTEXT_ENV = "AI_ADMIN_ALLOW_PLAINTEXT_KEYRING"


def default_home() -> Path:
    """The store's folder: ``$AI_ADMIN_HOME`` if set, else platformdirs' user data dir for ``ai-admin-widgets``."""
    configured = os.environ.get("AI_ADMIN_HOME")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ai-admin-widgets", appauthor=False))


def backend_name(backend: KeyringBackend) -> str:
    """A readable name of a keyring backend, e.g. ``"SecretService Keyring"`` or ``"PlaintextKeyring (file)"``."""
    name = getattr(backend, "name", None) or type(backend).__name__
    return str(name)


def _is_plaintext(backend: KeyringBackend) -> bool:
    return type(backend).__module__.startswith("keyrings.alt") and "Plaintext" in type(backend).__name__


def default_keyring() -> KeyringBackend:
    """The keyring policy: the backend ``keyring`` chooses for this machine, checked for safety.

    Returns:
        The system's keyring backend.
    Raises:
        KeyringUnavailable: there is no usable backend (keyring's fail backend), or the
            only one stores keys in plain text and ``AI_ADMIN_ALLOW_PLAINTEXT_KEYRING=1``
            is not set.
    """
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    members = getattr(backend, "backends", None) or [backend]
    if isinstance(backend, fail.Keyring) or not members:
        raise KeyringUnavailable(
            "No keyring backend is available to hold the API keys. Install and unlock a system keyring "
            "(GNOME Keyring / KWallet on Linux), or configure one with keyring's PYTHON_KEYRING_BACKEND."
        )
    if all(_is_plaintext(member) for member in members) and os.environ.get(PLAINTEXT_ENV) != "1":
        raise KeyringUnavailable(
            f"The only keyring backend available ({backend_name(backend)}) stores keys in plain text. "
            f"Install a system keyring, or set {PLAINTEXT_ENV}=1 to accept plain-text storage."
        )
    return backend


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SettingsStore:
    """The settings record, the audit log and the keys of one organization.

    Args:
        home: the folder for ``settings.json``, ``audit.jsonl`` and the lock; made if missing.
        keyring: the keyring backend that holds the keys (any ``keyring.backend.KeyringBackend``);
            None for a store that only reads the record and the audit log.
    """

    def __init__(self, home: Path, keyring: KeyringBackend | None) -> None:
        self.home = Path(home)
        self.keyring = keyring
        self._record_path = self.home / "settings.json"
        self._audit_path = self.home / "audit.jsonl"
        self._lock = FileLock(str(self.home / "settings.lock"), timeout=30)

    # -- reading -------------------------------------------------------------- #

    def read(self) -> dict[str, Any]:
        """The settings record as a dict; ``{"revision": 0, "provider": None}`` before the first save.

        Raises:
            StoreError: ``settings.json`` exists but cannot be read as a record.
        """
        try:
            text = self._record_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"format": RECORD_FORMAT, "revision": 0, "provider": None}
        except OSError as error:
            raise StoreError(f"Cannot read {self._record_path}: {error.strerror}.") from None
        try:
            record = json.loads(text)
        except ValueError:
            raise StoreError(
                f"{self._record_path} is damaged (not JSON). Restore it from a backup, or remove the integration and add it again."
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("revision"), int):
            raise StoreError(f"{self._record_path} is not a settings record of this tool.")
        return record

    def load(self) -> OpenAIIntegration | AzureOpenAIIntegration | None:
        """The saved integration with its keys, or None when nothing is saved.

        Raises:
            StoreError: the record points at keys the keyring no longer has.
            KeyringUnavailable: the keyring backend fails.
        """
        record = self.read()
        if not record.get("provider"):
            return None
        secrets: dict[str, SecretStr] = {}
        for slot in record["key_slots"]:
            value = self._keyring_call("get_password", SERVICE_NAME, self._username(record, slot))
            if value is None:
                raise StoreError(
                    f"The keyring ({backend_name(self.keyring)}) no longer holds the saved API key. "
                    "Edit the OpenAI integration and type the key again."
                )
            secrets[slot] = SecretStr(value)
        return parse_integration(record["integration"], secrets)

    # -- writing -------------------------------------------------------------- #

    def save(
        self,
        integration: OpenAIIntegration | AzureOpenAIIntegration,
        *,
        actor: str,
        models: dict[str, str | None],
    ) -> dict[str, Any]:
        """Store ``integration`` all or nothing, as a new revision.

        Order: the new revision's keys into keyring, then the record (atomic rename),
        then the old revision's keys are deleted. If a keyring write fails, the keys
        already written are deleted and the old record stays as it was.

        Args:
            integration: the authenticated integration.
            actor: the user name recorded as ``updated_by``.
            models: the model that answered, by role, from the verification report.
        Returns:
            The new record.
        Raises:
            KeyringUnavailable: the keyring refused a key; nothing changed.
            StoreError: the record could not be written; nothing changed.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock:
            old = self.read()
            store_id = old.get("store_id") or uuid.uuid4().hex
            now = _now().isoformat()
            secrets = integration.secrets()
            record = {
                "format": RECORD_FORMAT,
                "store_id": store_id,
                "revision": old["revision"] + 1,
                "provider": integration.provider.value,
                "integration": integration.public_fields(),
                "key_slots": sorted(secrets),
                "key_hints": {slot: key_hint(value) for slot, value in secrets.items()},
                "models": models,
                "updated_by": actor,
                "updated_at": now,
                "last_authentication": {"at": now, "ok": True},
            }
            written: list[str] = []
            try:
                for slot, value in secrets.items():
                    username = self._username(record, slot)
                    self._keyring_call("set_password", SERVICE_NAME, username, value.get_secret_value())
                    written.append(username)
                self._write_record(record)
            except BaseException:
                for username in written:
                    self._delete_quietly(username)
                raise
            self._delete_secrets(old)
            return record

    def remove(self, *, actor: str) -> dict[str, Any]:
        """Forget the integration: an empty record with the next revision, then the old keys deleted.

        Args:
            actor: the user name recorded as ``updated_by``.
        Returns:
            The new (empty) record.
        Raises:
            StoreError: the record could not be written; nothing changed.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock:
            old = self.read()
            record = {
                "format": RECORD_FORMAT,
                "store_id": old.get("store_id") or uuid.uuid4().hex,
                "revision": old["revision"] + 1,
                "provider": None,
                "updated_by": actor,
                "updated_at": _now().isoformat(),
            }
            self._write_record(record)
            self._delete_secrets(old)
            return record

    def record_authentication(self, *, ok: bool) -> None:
        """Note the time and outcome of re-authenticating the saved credentials in the record."""
        with self._lock:
            record = self.read()
            if not record.get("provider"):
                return
            record["last_authentication"] = {"at": _now().isoformat(), "ok": ok}
            self._write_record(record)

    # -- audit ------------------------------------------------------------------ #

    def append_audit(self, event: dict[str, Any]) -> None:
        """Append one event (a JSON-ready dict without secrets) to ``audit.jsonl``, stamped with ``at``."""
        self.home.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": _now().isoformat(), **event}, sort_keys=True, ensure_ascii=False)
        with self._lock, open(self._audit_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def audit_log(self) -> list[dict[str, Any]]:
        """Every audit event, oldest first."""
        try:
            lines = self._audit_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    # -- internals --------------------------------------------------------------- #

    @staticmethod
    def _username(record: dict[str, Any], slot: str) -> str:
        return f"{record['store_id']}/r{record['revision']}/{slot}"

    def _keyring_call(self, method: str, *args: str) -> Any:
        if self.keyring is None:
            raise KeyringUnavailable("This store was opened without a keyring, so it cannot read or write keys.")
        try:
            return getattr(self.keyring, method)(*args)
        except Exception as error:  # keyring backends raise many kinds; none may carry the key
            raise KeyringUnavailable(
                f"The keyring ({backend_name(self.keyring)}) failed ({type(error).__name__}). "
                "Check that it is installed and unlocked, then try again; nothing was changed."
            ) from None

    def _delete_quietly(self, username: str) -> None:
        try:
            self._keyring_call("delete_password", SERVICE_NAME, username)
        except Exception:  # already gone, or the keyring failed: a leftover is harmless and cleaned up later
            pass

    def _delete_secrets(self, record: dict[str, Any]) -> None:
        if record.get("provider"):
            for slot in record.get("key_slots", []):
                self._delete_quietly(self._username(record, slot))

    def _write_record(self, record: dict[str, Any]) -> None:
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.home, prefix=".settings-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(record, file, indent=2, sort_keys=True, ensure_ascii=False)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self._record_path)
        except OSError as error:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise StoreError(f"Cannot write {self._record_path}: {error.strerror}. Nothing was changed.") from None

