"""Where the integration lives: a settings record and an audit log in a folder, keys in keyring.

The folder (``$AI_ADMIN_HOME``, or the platform's user data folder) holds:

* ``settings.json``: the provider, endpoints, deployment ids, key hints (last 4
  characters), the models that answered, who saved and when, and the revision
  number; and who may change it or use AI (``admins``, ``allowed_users``,
  ``allowed_groups``: see :mod:`ai_admin_widgets.access`), which a save or remove
  keeps. Never a key. Written atomically (a temporary file, then a rename).
* ``audit.jsonl``: one JSON event per line (add, edit, remove, authenticate, a refused
  save, and changes to who may use AI or change it; see :data:`AUDIT_ACTIONS`).
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock
from keyring.backend import KeyringBackend
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from .models import (
    AzureOpenAIIntegration,
    ConcurrentChange,
    KeyringUnavailable,
    OpenAIIntegration,
    Provider,
    StoreError,
    key_hint,
    parse_integration,
)

__all__ = [
    "AUDIT_ACTIONS",
    "SERVICE_NAME",
    "Authentication",
    "SettingsRecord",
    "SettingsStore",
    "backend_name",
    "default_home",
    "default_keyring",
    "prepare_keyring",
]

SERVICE_NAME = "ai-admin-widgets"
RECORD_FORMAT = 1
#: Every key slot an integration can have (OpenAI's one key; Azure OpenAI's two).
ALL_KEY_SLOTS = ("api_key", "language_model.api_key", "embeddings_model.api_key")
PLAINTEXT_ENV = "AI_ADMIN_ALLOW_PLAINTEXT_KEYRING"
#: Where keyrings.cryptfile's password comes from (the name its own documentation uses).
CRYPTFILE_PASSWORD_ENV = "KEYRING_CRYPTFILE_PASSWORD"  # noqa: S105 (the variable's name)
#: What each audit event's ``action`` is called on screen (the panel's history, ``ai-admin history``).
AUDIT_ACTIONS = {
    "add": "Added",
    "edit": "Edited",
    "remove": "Removed",
    "authenticate": "Tested",
    "save": "Save refused",
    "allow": "Allow-lists changed",
    "add-admin": "Admin added",
    "remove-admin": "Admin removed",
}
#: How long (seconds) the unlock prompt of a locked Secret Service keyring may wait for an answer.
UNLOCK_TIMEOUT = 60.0


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
    module = type(backend).__module__
    return module.startswith(("keyrings.alt", "keyrings.cryptfile")) and "Plaintext" in type(backend).__name__


def _members(backend: KeyringBackend) -> list[KeyringBackend]:
    """The backends a chainer tries in turn (highest priority first), or ``[backend]``."""
    from keyring.backends.chainer import ChainerBackend

    return list(backend.backends) if isinstance(backend, ChainerBackend) else [backend]


def _asks_for_password(backend: KeyringBackend) -> bool:
    """True for an encrypted file keyring (keyrings.cryptfile, keyrings.alt) that has no password yet.

    Such a backend would ask for it with ``getpass`` on its first use: on a terminal nobody
    watches, or in a kernel, that waits forever.
    """
    if not hasattr(type(backend), "keyring_key"):
        return False
    return getattr(backend, "_keyring_key", None) is None and "keyring_key" not in vars(backend)


def _supplied_password(backend: KeyringBackend) -> str | None:
    """The password the environment gives for ``backend`` (keyrings.cryptfile only), or None."""
    if type(backend).__module__.startswith("keyrings.cryptfile"):
        return os.environ.get(CRYPTFILE_PASSWORD_ENV) or None
    return None


def _prompt_refused(backend: KeyringBackend) -> KeyringUnavailable:
    if type(backend).__module__.startswith("keyrings.cryptfile"):
        how = f"Set {CRYPTFILE_PASSWORD_ENV} to its password in the environment that starts Jupyter (or ai-admin)"
    else:
        how = f"Use keyrings.cryptfile's CryptFileKeyring with {CRYPTFILE_PASSWORD_ENV} set instead"
    return KeyringUnavailable(
        f"The keyring ({backend_name(backend)}) would ask for its password on a terminal, which stops a Jupyter "
        f"kernel. {how}, or choose another keyring with keyring's PYTHON_KEYRING_BACKEND."
    )


def _unlock_secret_service(backend: KeyringBackend) -> None:
    """Make sure the Secret Service collection ``backend`` uses is unlocked, waiting at most UNLOCK_TIMEOUT.

    keyring itself waits for an unlock prompt without a limit; a prompt nobody answers (a
    desktop nobody sits at, a JupyterHub server) would stop the kernel for good.
    """
    import secretstorage
    from secretstorage.exceptions import ItemNotFoundException, SecretStorageException

    try:
        connection = secretstorage.dbus_init()
    except SecretStorageException:
        raise KeyringUnavailable(
            "The Secret Service (GNOME Keyring / KWallet) cannot be reached on D-Bus. Start it, "
            "or choose another keyring with keyring's PYTHON_KEYRING_BACKEND."
        ) from None
    try:
        path = getattr(backend, "preferred_collection", None) or secretstorage.collection.DEFAULT_COLLECTION
        collection = secretstorage.Collection(connection, path)
        if collection.is_locked():
            collection.unlock(timeout=UNLOCK_TIMEOUT)
            if collection.is_locked():
                raise TimeoutError  # the prompt was dismissed, or could not be shown
    except TimeoutError:
        raise KeyringUnavailable(
            f"The Secret Service keyring is locked, and its unlock prompt was not answered (it waits "
            f"{UNLOCK_TIMEOUT:g} seconds at most). Unlock it (log in to the desktop, or open Passwords and Keys), "
            "then try again."
        ) from None
    except ItemNotFoundException:
        raise KeyringUnavailable(
            "The Secret Service has no default keyring. Create one (Passwords and Keys, or log in to the desktop once), "
            "then try again."
        ) from None
    except SecretStorageException as error:
        raise KeyringUnavailable(f"The Secret Service failed ({type(error).__name__}); try again.") from None
    finally:
        connection.close()


def prepare_keyring(backend: KeyringBackend) -> None:
    """Get ``backend`` ready to be used without any prompt that could wait forever.

    An encrypted file keyring (keyrings.cryptfile) gets its password from
    ``$KEYRING_CRYPTFILE_PASSWORD`` instead of asking on a terminal; a locked Secret
    Service keyring is unlocked, its prompt waiting at most :data:`UNLOCK_TIMEOUT` seconds.
    For a chainer, each backend it would try is prepared.

    Args:
        backend: any ``keyring.backend.KeyringBackend``.
    Returns:
        None; the backend is ready for get, set and delete.
    Raises:
        KeyringUnavailable: the backend would prompt (no password in the environment, a
            wrong one, a locked keyring nobody unlocked); the message says what to set or do.
    """
    from keyring.backends import SecretService

    for member in _members(backend):
        if _asks_for_password(member):
            password = _supplied_password(member)
            if password is None:
                raise _prompt_refused(member)
            try:
                member.keyring_key = password  # checked against the file's reference value
            except Exception:  # ValueError ("Incorrect Password", "MAC check failed") and the like
                try:
                    del member.keyring_key  # a wrong password must not stay set
                except Exception:  # noqa: S110 (nothing was set, nothing to undo)
                    pass
                raise KeyringUnavailable(
                    f"{CRYPTFILE_PASSWORD_ENV} does not open the keyring file {getattr(member, 'file_path', '')}. "
                    "Set it to the password that file was made with, then try again."
                ) from None
        elif isinstance(member, SecretService.Keyring):
            _unlock_secret_service(member)


def default_keyring() -> KeyringBackend:
    """The keyring policy: the backend ``keyring`` chooses for this machine, checked for safety.

    Returns:
        The system's keyring backend.
    Raises:
        KeyringUnavailable: there is no usable backend (keyring's fail backend, or its null
            backend, which silently forgets every key), or the
            only one stores keys in plain text and ``AI_ADMIN_ALLOW_PLAINTEXT_KEYRING=1``
            is not set, or the best one would ask for its password on a terminal
            (keyrings.cryptfile without ``KEYRING_CRYPTFILE_PASSWORD``).
    """
    import keyring
    from keyring.backends import fail, null

    none_usable = (
        "No keyring backend is available to hold the API keys. Install and unlock a system keyring "
        "(GNOME Keyring / KWallet on Linux), or configure one with keyring's PYTHON_KEYRING_BACKEND."
    )
    try:
        backend = keyring.get_keyring()
        members = _members(backend)
    except Exception:  # a backend that fails while being chosen
        raise KeyringUnavailable(none_usable) from None
    if isinstance(backend, (fail.Keyring, null.Keyring)) or not members:
        raise KeyringUnavailable(none_usable)
    if any(_asks_for_password(member) for member in members):
        # Only the best backend, so no lookup falls through to another that would prompt.
        backend, members = members[0], members[:1]
        if _asks_for_password(backend) and _supplied_password(backend) is None:
            raise _prompt_refused(backend)
    if all(_is_plaintext(member) for member in members) and os.environ.get(PLAINTEXT_ENV) != "1":
        raise KeyringUnavailable(
            f"The only keyring backend available ({backend_name(backend)}) stores keys in plain text. "
            f"Install a system keyring, or set {PLAINTEXT_ENV}=1 to accept plain-text storage."
        )
    return backend


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Authentication(BaseModel):
    """When the saved credentials were last authenticated (UTC), whether that passed, and if not, why.

    ``codes`` are the :class:`~ai_admin_widgets.models.FailureCode` values of the checks
    that failed, each once, in check order; empty when it passed, when the saved keys could
    not be read, and in records written before codes were kept.
    """

    model_config = ConfigDict(frozen=True)

    at: datetime
    ok: bool
    codes: tuple[str, ...] = ()


class SettingsRecord(BaseModel):
    """What ``settings.json`` holds: everything about the integration except the keys.

    Attributes:
        format: the file format's version (1).
        store_id: a random id that keeps this store's keyring entries apart from others'.
        revision: counts every save and remove; the keys of revision N live under ``…/rN/…``.
        provider: the saved integration's provider, or None when nothing is configured.
        integration: the integration's fields without keys (``public_fields()``).
        key_slots: the names of the keys held in keyring (``"api_key"``, ``"language_model.api_key"``, …).
        key_hints: the last 4 characters of each key, by slot.
        models: the model that answered each role at the last save.
        warnings: what to check, from the last save's authentication.
        updated_by / updated_at: who saved or removed last, and when (UTC).
        last_authentication: the most recent authentication of the saved credentials.
        admins: the users who may change the integration off a JupyterHub (the first is
            whoever first changed the store); kept by save and remove.
        allowed_users / allowed_groups: who may use AI; both empty means everyone.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: int = RECORD_FORMAT
    store_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=8)
    revision: int = Field(default=0, ge=0)
    provider: Provider | None = None
    integration: dict[str, Any] | None = None
    key_slots: list[str] = []
    key_hints: dict[str, str] = {}
    models: dict[str, str | None] = {}
    warnings: list[str] = []
    updated_by: str | None = None
    updated_at: datetime | None = None
    last_authentication: Authentication | None = None
    admins: list[str] = []
    allowed_users: list[str] = []
    allowed_groups: list[str] = []

    @model_validator(mode="after")
    def _complete(self) -> SettingsRecord:
        if self.provider is not None and (not self.integration or not self.key_slots):
            raise ValueError("a record with a provider needs the integration's fields and its key slots")
        return self

    @property
    def configured(self) -> bool:
        """True when the record holds an integration."""
        return self.provider is not None and self.integration is not None

    @property
    def effective_admins(self) -> list[str]:
        """The admins list as it applies: ``admins``; for a store written before the list
        existed, the user who last saved or removed (``updated_by``); else empty (no admin yet)."""
        if self.admins:
            return list(self.admins)
        return [self.updated_by] if self.updated_by else []

    def carried_access(self, actor: str) -> dict[str, list[str]]:
        """The access fields that the next record of this store keeps.

        Args:
            actor: the user writing the next record; the first admin when there is none yet.
        Returns:
            ``admins`` (:attr:`effective_admins`, or ``[actor]``), ``allowed_users`` and
            ``allowed_groups``, ready to pass to a new :class:`SettingsRecord`.
        """
        return {
            "admins": self.effective_admins or [actor],
            "allowed_users": list(self.allowed_users),
            "allowed_groups": list(self.allowed_groups),
        }

    def username(self, slot: str) -> str:
        """The keyring user name of a key slot in this revision: ``<store id>/r<revision>/<slot>``."""
        return f"{self.store_id}/r{self.revision}/{slot}"


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

    # -- reading -------------------------------------------------------------- #

    def read(self) -> SettingsRecord:
        """The settings record; an empty one (revision 0) before the first save.

        Raises:
            StoreError: ``settings.json`` exists but cannot be read, or is not a valid record.
        """
        try:
            text = self._record_path.read_bytes()
        except FileNotFoundError:
            return SettingsRecord()
        except OSError as error:
            raise StoreError(
                f"Cannot read {self._record_path} ({error.strerror}). Ask an admin to check the folder's permissions."
            ) from None
        try:
            return SettingsRecord.model_validate_json(text.decode("utf-8"))
        except (ValidationError, ValueError):  # ValueError: not UTF-8 (a hand edit in another encoding)
            raise StoreError(
                f"{self._record_path} is damaged, so the OpenAI integration cannot be read. "
                "Remove the integration (the Remove button, or `ai-admin remove --yes`) and add it again; "
                "the damaged file is kept beside it."
            ) from None

    def fingerprint(self) -> tuple[int, int, int] | None:
        """A cheap marker of ``settings.json`` that changes whenever any process writes it.

        Every write is the rename of a new file, so the marker, ``(inode, size, modification
        time in nanoseconds)``, changes with every save, remove, recorded authentication and
        access change. One ``stat`` call; nothing is read.

        Returns:
            The marker, or None when there is no ``settings.json`` (or it cannot be examined).
        """
        try:
            found = os.stat(self._record_path)
        except OSError:
            return None
        return found.st_ino, found.st_size, found.st_mtime_ns

    def load(self) -> OpenAIIntegration | AzureOpenAIIntegration | None:
        """The saved integration with its keys, or None when nothing is saved.

        Raises:
            StoreError: the record is damaged, or points at keys the keyring no longer has.
            KeyringUnavailable: the keyring backend fails.
        """
        record = self.read()
        if not record.configured:
            return None
        secrets: dict[str, SecretStr] = {}
        for slot in record.key_slots:
            value = self._keyring_call("get_password", SERVICE_NAME, record.username(slot))
            if value is None:
                raise StoreError(
                    f"The keyring ({backend_name(self.keyring)}) no longer holds the saved API key. "
                    "Edit the OpenAI integration and type the key again."
                )
            secrets[slot] = SecretStr(value)
        try:
            return parse_integration(record.integration or {}, secrets)
        except ValidationError:
            raise StoreError(
                f"The saved settings in {self._record_path} are no longer valid. Edit the OpenAI integration and save it again."
            ) from None

    # -- writing -------------------------------------------------------------- #

    def save(
        self,
        integration: OpenAIIntegration | AzureOpenAIIntegration,
        *,
        actor: str,
        models: dict[str, str | None],
        warnings: list[str] | None = None,
        expected_revision: int | None = None,
    ) -> SettingsRecord:
        """Store ``integration`` all or nothing, as a new revision.

        Order: the new revision's keys into keyring, then the record (atomic rename),
        then the old revision's keys are deleted. If a keyring write fails, the keys
        already written are deleted and the old record stays as it was.

        Args:
            integration: the authenticated integration.
            actor: the user name recorded as ``updated_by``.
            models: the model that answered, by role, from the verification report.
            warnings: what to check, from the verification report.
            expected_revision: the revision this change started from; when the record has
                moved on since (another kernel saved or removed), nothing is written.
        Returns:
            The new record.
        Raises:
            ConcurrentChange: the record is no longer at ``expected_revision``; nothing changed.
            KeyringUnavailable: the keyring refused a key; nothing changed.
            StoreError: the record could not be written; nothing changed.
        """
        with self._locked():
            old = self.read()
            if expected_revision is not None and old.revision != expected_revision:
                when = f" at {old.updated_at:%Y-%m-%d %H:%M} UTC" if old.updated_at else ""
                raise ConcurrentChange(
                    f"The OpenAI integration was changed by {old.updated_by or 'someone else'}{when} while this change was "
                    "being made, so nothing was saved. Reload it (close and reopen the form) and save again."
                )
            now = _now()
            secrets = integration.secrets()
            record = SettingsRecord(
                store_id=old.store_id,
                revision=old.revision + 1,
                provider=integration.provider,
                integration=integration.public_fields(),
                key_slots=sorted(secrets),
                key_hints={slot: key_hint(value) for slot, value in secrets.items()},
                models=models,
                warnings=list(warnings or []),
                updated_by=actor,
                updated_at=now,
                last_authentication=Authentication(at=now, ok=True),
                **old.carried_access(actor),
            )
            written: list[str] = []
            try:
                for slot, value in secrets.items():
                    username = record.username(slot)
                    self._keyring_call("set_password", SERVICE_NAME, username, value.get_secret_value())
                    written.append(username)
                self._write_record(record)
            except BaseException:
                for username in written:
                    self._delete_quietly(username)
                raise
            self._delete_secrets(old)
            return record

    def remove(self, *, actor: str) -> SettingsRecord:
        """Forget the integration: an empty record with the next revision, then the old keys deleted.

        Works without a keyring (the old keys then stay behind) and on a damaged record
        (which is kept as ``settings.json.damaged-<time>``), so AI can always be switched off.

        Args:
            actor: the user name recorded as ``updated_by``.
        Returns:
            The new (empty) record.
        Raises:
            StoreError: the record could not be written; nothing changed.
        """
        with self._locked():
            try:
                old = self.read()
            except StoreError:
                if not self._record_path.exists():
                    raise
                old = self._salvaged() or SettingsRecord()
                aside = self._record_path.with_name(f"settings.json.damaged-{_now():%Y%m%dT%H%M%S}")
                try:
                    os.replace(self._record_path, aside)
                except OSError as error:
                    raise StoreError(f"Cannot move the damaged {self._record_path} aside ({error.strerror}).") from None
            record = SettingsRecord(
                store_id=old.store_id,
                revision=old.revision + 1,
                updated_by=actor,
                updated_at=_now(),
                **old.carried_access(actor),
            )
            self._write_record(record)
            self._delete_secrets(old)
            return record

    def update_access(
        self,
        *,
        actor: str,
        admins: list[str] | None = None,
        allowed_users: list[str] | None = None,
        allowed_groups: list[str] | None = None,
        add_admin: str | None = None,
        remove_admin: str | None = None,
    ) -> SettingsRecord:
        """Change who may change the integration or use AI; the integration and its revision stay as they are.

        The whole change is read, checked and written under the store's lock, so two admins
        changing the lists at once never lose one another's change.

        Args:
            actor: the user making the change; becomes the first admin when there is none yet.
            admins, allowed_users, allowed_groups: the new lists (already cleaned); None keeps a list.
            add_admin: a user to add to the admins list as it is now (no change if listed).
            remove_admin: a user to take off the admins list as it is now.
        Returns:
            The new record.
        Raises:
            ValueError: ``remove_admin`` is not on the list, or is the last admin.
            StoreError: the record is damaged (remove the integration first) or cannot be written.
        """
        with self._locked():
            old = self.read()
            update = old.carried_access(actor)
            if add_admin is not None and add_admin not in update["admins"]:
                update["admins"] = [*update["admins"], add_admin]
            if remove_admin is not None:
                if remove_admin not in update["admins"]:
                    raise ValueError(f"{remove_admin!r} is not on the admins list ({', '.join(update['admins'])}).")
                if update["admins"] == [remove_admin]:
                    raise ValueError(
                        f"{remove_admin!r} is the last admin: add another admin first, so that someone can still change the settings."
                    )
                update["admins"] = [name for name in update["admins"] if name != remove_admin]
            for name, value in (
                ("admins", admins),
                ("allowed_users", allowed_users),
                ("allowed_groups", allowed_groups),
            ):
                if value is not None:
                    update[name] = list(value)
            record = old.model_copy(update=update)
            self._write_record(record)
            return record

    def read_access(self) -> SettingsRecord | None:
        """The record, for deciding who may do what; from a damaged one, what can still be read of it.

        Returns:
            The record; for a damaged ``settings.json``, a record holding only its readable
            ``admins``, ``allowed_users``, ``allowed_groups`` and ``updated_by``; None when
            not even those can be read.
        """
        try:
            return self.read()
        except StoreError:
            return self._salvaged()

    def record_authentication(self, *, ok: bool, revision: int, codes: Sequence[str] = ()) -> None:
        """Note the time (now, UTC) and outcome of re-authenticating revision ``revision`` of the credentials.

        Args:
            ok: whether every model check passed.
            revision: the record revision whose credentials were checked.
            codes: the failure codes of the checks that failed (repeats are kept once).
        Nothing is written when the record has moved on to another revision meanwhile
        (an older test must not overwrite a newer save's outcome).
        """
        outcome = Authentication(at=_now(), ok=ok, codes=tuple(dict.fromkeys(codes)))
        with self._locked():
            record = self.read()
            if not record.configured or record.revision != revision:
                return
            self._write_record(record.model_copy(update={"last_authentication": outcome}))

    # -- audit ------------------------------------------------------------------ #

    def append_audit(self, event: dict[str, Any]) -> None:
        """Append one event (a JSON-ready dict without secrets) to ``audit.jsonl``, stamped with ``at``.

        Raises:
            StoreError: the audit log could not be written.
        """
        line = json.dumps({"at": _now().isoformat(), **event}, sort_keys=True, ensure_ascii=False)
        with self._locked():
            try:
                with open(self._audit_path, "a+b") as handle:
                    handle.seek(0, os.SEEK_END)
                    if handle.tell():  # a line cut short by a crash must not swallow this one
                        handle.seek(-1, os.SEEK_END)
                        if handle.read(1) != b"\n":
                            handle.write(b"\n")
                    handle.write((line + "\n").encode("utf-8"))
            except OSError as error:
                raise StoreError(f"Cannot write the audit log {self._audit_path} ({error.strerror}).") from None

    def audit_log(self) -> list[dict[str, Any]]:
        """Every audit event, oldest first; a damaged line is skipped."""
        try:
            lines = self._audit_path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise StoreError(f"Cannot read the audit log {self._audit_path} ({error.strerror}).") from None
        events = []
        for line in lines:
            try:
                event = json.loads(line.decode("utf-8"))
            except ValueError:  # cut short, not JSON, or not UTF-8
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    # -- internals --------------------------------------------------------------- #

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's lock (``settings.lock``), making the folder first."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            lock = filelock.FileLock(str(self.home / "settings.lock"), timeout=30)
            lock.acquire()
        except filelock.Timeout:
            raise StoreError(
                "Another kernel has been changing the OpenAI integration for 30 seconds; try again in a minute."
            ) from None
        except OSError as error:
            raise StoreError(
                f"Cannot write to {self.home} ({error.strerror}): only users who may write this folder can change the OpenAI integration."
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _keyring_call(self, method: str, *args: str) -> Any:
        if self.keyring is None:
            raise KeyringUnavailable("This store was opened without a keyring, so it cannot read or write keys.")
        prepare_keyring(self.keyring)  # never a prompt that waits forever
        try:
            return getattr(self.keyring, method)(*args)
        except Exception as error:  # keyring backends raise many kinds; none may carry the key
            raise KeyringUnavailable(
                f"The keyring ({backend_name(self.keyring)}) failed ({type(error).__name__}). "
                "Check that it is installed and unlocked, then try again; nothing was changed."
            ) from None

    def _salvaged(self) -> SettingsRecord | None:
        """The access fields of a damaged record, when its JSON still holds them; else None."""
        try:
            data = json.loads(self._record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        kept: dict[str, Any] = {}
        for name in ("admins", "allowed_users", "allowed_groups"):
            value = data.get(name)
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                kept[name] = value
        if isinstance(data.get("updated_by"), str):
            kept["updated_by"] = data["updated_by"]
        return SettingsRecord(**kept) if kept else None

    def _delete_quietly(self, username: str) -> None:
        try:
            self._keyring_call("delete_password", SERVICE_NAME, username)
        except Exception:  # noqa: S110 (already gone, or no keyring: a leftover is harmless and cleaned up later)
            pass

    def check_writable(self) -> None:
        """Check, before anything is sent or changed, that the record and the audit log can be written.

        Raises:
            StoreError: the folder, the lock, ``settings.json`` or ``audit.jsonl`` cannot be
                written by this user; the message names which and says what to do.
        """
        with self._locked():
            for path in (self._record_path, self._audit_path):
                if path.exists() and (not path.is_file() or not os.access(path, os.W_OK)):
                    raise StoreError(
                        f"Cannot write {path}: only users who may write it can change the OpenAI integration "
                        "(ask an admin to check its owner and permissions)."
                    )
            if not os.access(self.home, os.W_OK):
                raise StoreError(
                    f"Cannot write to {self.home}: only users who may write this folder can change the OpenAI integration."
                )

    def clean_leftovers(self) -> None:
        """Delete the keys an interrupted save or remove may have left in the keyring.

        A save killed after writing the next revision's keys but before the record leaves
        keys under revision N+1; one killed after the record but before deleting the old
        keys leaves revision N-1's. Both are deleted here, under the store's lock (so a
        save in progress elsewhere is never touched). Without a keyring, nothing happens.
        """
        if self.keyring is None or not self._record_path.exists():
            return
        with self._locked():
            try:
                record = self.read()
            except StoreError:
                return
            for revision in (record.revision - 1, record.revision + 1):
                if revision < 1:
                    continue
                for slot in ALL_KEY_SLOTS:
                    self._delete_quietly(record.model_copy(update={"revision": revision}).username(slot))

    def _delete_secrets(self, record: SettingsRecord) -> None:
        if record.configured:
            for slot in record.key_slots:
                self._delete_quietly(record.username(slot))

    def _write_record(self, record: SettingsRecord) -> None:
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.home, prefix=".settings-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(record.model_dump_json(indent=2))
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o644)  # no secret inside: anyone may read the status
            os.replace(temporary, self._record_path)
        except OSError as error:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise StoreError(f"Cannot write {self._record_path} ({error.strerror}). Nothing was changed.") from None
