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
* ``settings.reserve``: 64 KiB set aside while the disk has room, deleted to make room
  when the disk is full, so that Remove (and the audit event of a change) can still be
  written; made again by a later write that finds room.

A folder shared by several admins (one ``$AI_ADMIN_HOME`` for all, e.g. ``/srv/ai-admin``
owned by an ``ai-admins`` group, mode ``2775``) stays shared: when the folder is
group-writable, every file the store writes gets the folder's group and group
read-write, and a replaced ``settings.json`` keeps the mode of the one it replaces, so
any admin in that group can save, test and remove after another.

``settings.json`` is read without following a symbolic link or opening anything but a
regular file, and at most :data:`RECORD_MAX_BYTES` of it; ``audit.jsonl`` is appended to
likewise (a symbolic link there is refused, never followed).

Keys are stored only through the keyring backend interface (get, set, delete),
under the service name ``ai-admin-widgets`` and the user name
``<store id>/r<revision>/<slot>``, so each revision's keys are separate.
A save writes the new revision's keys, then the record that points at them,
then deletes the old revision's keys. Each keyring also holds, under the service
``ai-admin-widgets-revisions`` and the user name ``<store id>/revisions``, the
revisions whose keys it may still hold (numbers, no secret), so keys that a failed
delete left behind are deleted later, however old.
Every keyring call waits at most :data:`KEYRING_TIMEOUT` seconds
(``$AI_ADMIN_KEYRING_TIMEOUT``).
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import from_json

from .models import (
    AIAdminError,
    AzureOpenAIIntegration,
    ConcurrentChange,
    KeyNotInThisKeyring,
    KeyringUnavailable,
    OpenAIIntegration,
    Provider,
    SavedFields,
    StoreError,
    key_hint,
    parse_integration,
)

__all__ = [
    "AUDIT_ACTIONS",
    "KEYRING_WORDS",
    "SERVICE_NAME",
    "Authentication",
    "KeyNotInThisKeyring",
    "Removal",
    "SettingsRecord",
    "SettingsStore",
    "backend_name",
    "default_home",
    "default_keyring",
    "prepare_keyring",
    "read_tail_lines",
]

SERVICE_NAME = "ai-admin-widgets"
#: The keyring service of each store's list of revisions whose keys a keyring may hold (numbers, never a key).
REVISIONS_SERVICE = "ai-admin-widgets-revisions"
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
    "import": "Moved into the gateway's database",
}
#: How long (seconds) the unlock prompt of a locked Secret Service keyring may wait for an answer.
UNLOCK_TIMEOUT = 60.0
#: How long (seconds) one keyring call (get, set or delete a key) may take; ``$AI_ADMIN_KEYRING_TIMEOUT`` overrides it.
KEYRING_TIMEOUT = 10.0
KEYRING_TIMEOUT_ENV = "AI_ADMIN_KEYRING_TIMEOUT"
#: The most of ``settings.json`` that is read (1 MiB; a real record is a few KiB): a larger file is damaged.
RECORD_MAX_BYTES = 1 << 20
#: The longest audit line read (1 MiB); a longer one is damaged and skipped.
AUDIT_LINE_MAX_BYTES = 1 << 20
#: The size of ``settings.reserve``, the room kept for a Remove and an audit event on a full disk.
RESERVE_BYTES = 64 * 1024
_TAIL_CHUNK = 64 * 1024
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
#: The keyring calls that outlived their wait and still run, by backend (``id``): such a backend gets no other call.
_OVERDUE: dict[int, threading.Thread] = {}
_OVERDUE_LOCK = threading.Lock()
#: Open without following a symbolic link or waiting on a FIFO (both 0 where the platform has no such flag).
_SAFE_OPEN = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Removal:
    """What :meth:`SettingsStore.remove` did.

    Attributes:
        record: the new (empty) record.
        kept_keys: the keys that could not be deleted from the keyring, each named by slot
            and revision (``"language_model.api_key of revision 3"``), never by value;
            empty when every key was deleted. They are deleted when the store next opens
            with that keyring.
        nothing_salvaged: the removed record was too damaged to read even its store id and
            admins list: the keys saved before cannot be found (they stay in the keyring), and
            the admins list starts again with the actor.
    """

    record: SettingsRecord
    kept_keys: tuple[str, ...] = ()
    nothing_salvaged: bool = False


class _NotRegularFile(Exception):
    """The path is a symbolic link, a folder, a FIFO or another thing that is not a regular file."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _kind(path: Path) -> str:
    """What ``path`` is, for a message: "a symbolic link", "a folder", "a FIFO (named pipe)", …"""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "not a regular file"
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def _open_regular(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that never follows a symbolic link, never blocks on a FIFO and opens only a regular file.

    Raises:
        FileNotFoundError: nothing is at ``path`` (and ``flags`` has no ``O_CREAT``).
        _NotRegularFile: ``path`` is a symbolic link, a folder, a FIFO, a socket or a device.
        OSError: any other failure to open it.
    """
    try:
        if os.path.islink(path) and not getattr(os, "O_NOFOLLOW", 0):  # Windows: no flag, so look first
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
        fd = os.open(path, flags | _SAFE_OPEN, mode)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise _NotRegularFile(_kind(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegularFile(_kind(path))
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _file_mode(folder: Path) -> int:
    """The mode of a file made in ``folder``: 600 in a folder that is its user's alone (the gateway's), else 644."""
    try:
        private = not os.stat(folder).st_mode & 0o077
    except OSError:
        private = False
    return 0o600 if private else 0o644


def _shared_group(folder: Path) -> int | None:
    """The folder's group id when the folder is shared with its group (group-writable), else None."""
    try:
        found = os.stat(folder)
    except OSError:
        return None
    return found.st_gid if found.st_mode & stat.S_IWGRP else None


def _share(fd: int, gid: int | None) -> None:
    """Give the open file the shared folder's group and group read-write; best effort (only its owner may)."""
    if gid is None or not hasattr(os, "fchown"):  # not on Windows, whose folders have no POSIX group
        return
    try:
        found = os.fstat(fd)
        if found.st_gid != gid:
            os.fchown(fd, -1, gid)
        if found.st_mode & 0o060 != 0o060:
            os.fchmod(fd, stat.S_IMODE(found.st_mode) | 0o060)
    except OSError:  # (another admin's file, or a group this user is not in: it stays as it is)
        pass


def _share_path(path: str, gid: int) -> None:
    """:func:`_share` for a file by its path, without following a symbolic link; best effort."""
    try:
        fd = os.open(path, os.O_RDONLY | _SAFE_OPEN)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            _share(fd, gid)
    finally:
        os.close(fd)


def _keyring_timeout_from_environment() -> float:
    """``$AI_ADMIN_KEYRING_TIMEOUT`` in seconds when it is a positive number, else :data:`KEYRING_TIMEOUT`."""
    try:
        value = float(os.environ.get(KEYRING_TIMEOUT_ENV, ""))
    except ValueError:
        return KEYRING_TIMEOUT
    return value if math.isfinite(value) and value > 0 else KEYRING_TIMEOUT


def read_tail_lines(path: str | Path, limit: int, *, max_line: int = AUDIT_LINE_MAX_BYTES) -> list[bytes]:
    """The last ``limit`` lines of a file, oldest first, read backwards from its end in 64 KiB chunks.

    Memory stays bounded by the lines returned plus one chunk, however big the file is:
    a line longer than ``max_line`` bytes is skipped (it counts as no line), and an empty
    line counts as none. The file is opened without following a symbolic link or
    blocking on a FIFO.

    Args:
        path: the file.
        limit: how many lines at most (0 or less: none).
        max_line: the longest line kept, in bytes.
    Returns:
        The lines without their line ends; fewer than ``limit`` when the file has fewer.
    Raises:
        FileNotFoundError: there is no file at ``path``.
        OSError: it cannot be read, or is not a regular file (``EINVAL``).
    """
    return list(_tail(path, max(limit, 0), max_line, keep=lambda line: line))


def _tail(path: str | Path, limit: int, max_line: int, keep: Any) -> Iterator[Any]:
    """What ``keep(line)`` makes of the last ``limit`` lines it does not turn into None, oldest first."""
    if limit <= 0:
        return iter(())
    try:
        fd = _open_regular(Path(path), os.O_RDONLY)
    except _NotRegularFile as error:
        raise OSError(errno.EINVAL, f"{path} is {error.kind}, not a regular file") from None
    found: list[Any] = []
    with os.fdopen(fd, "rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        pending = b""  # the start of a line whose beginning is further back
        too_long = False  # the pending line is longer than max_line: skip it
        while position > 0 and len(found) < limit:
            size = min(_TAIL_CHUNK, position)
            position -= size
            handle.seek(position)
            chunk = handle.read(size)
            pieces = chunk.split(b"\n")
            pieces[-1] += pending
            pending = pieces[0]
            for piece in reversed(pieces[1:]):
                if not too_long and piece and len(piece) <= max_line:
                    value = keep(piece)
                    if value is not None:
                        found.append(value)
                        if len(found) == limit:
                            break
                too_long = False
            if len(pending) > max_line:
                too_long, pending = True, b""
        if position == 0 and len(found) < limit and pending and not too_long:
            value = keep(pending)
            if value is not None:
                found.append(value)
    found.reverse()
    return iter(found)


def default_home() -> Path:
    """The store's folder: ``$AI_ADMIN_HOME`` if set, else platformdirs' user data dir for ``ai-admin-widgets``."""
    configured = os.environ.get("AI_ADMIN_HOME")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ai-admin-widgets", appauthor=False))


#: Keyring backends named in words, by ``module.ClassName`` (the panel's footer and row, ``ai-admin status``, the gateway).
KEYRING_WORDS = {
    "keyring.backends.SecretService.Keyring": "GNOME Keyring (Secret Service)",
    "keyring.backends.libsecret.Keyring": "GNOME Keyring (libsecret)",
    "keyring.backends.kwallet.DBusKeyring": "KDE Wallet",
    "keyring.backends.macOS.Keyring": "macOS Keychain",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Manager",
    "keyring.backends.fail.Keyring": "no usable keyring",
    "keyring.backends.null.Keyring": "no keyring (keys are not kept)",
    "keyrings.alt.file.PlaintextKeyring": "Plain-text file keyring",
    "keyrings.alt.file.EncryptedKeyring": "Encrypted file keyring",
    "keyrings.cryptfile.cryptfile.CryptFileKeyring": "Encrypted file keyring (cryptfile)",
    "keyrings.cryptfile.file.EncryptedKeyring": "Encrypted file keyring",
    "keyrings.cryptfile.file.PlaintextKeyring": "Plain-text file keyring",
    "ai_admin_widgets.gateway.dbkeyring.DatabaseKeyring": "the AI gateway's database, encrypted with AI_ADMIN_CRYPT_KEY",
}


def backend_name(backend: KeyringBackend) -> str:
    """A keyring backend named in words, e.g. ``"GNOME Keyring (Secret Service)"`` or ``"Encrypted file keyring"``.

    Backends not in :data:`KEYRING_WORDS` keep their own ``name`` (or class name); a chainer is
    named by the backend it tries first.
    """
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend) and backend.backends:
        return backend_name(backend.backends[0])
    kind = type(backend)
    words = KEYRING_WORDS.get(f"{kind.__module__}.{kind.__qualname__}")
    return words or str(getattr(backend, "name", None) or kind.__name__)


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


#: What keyrings.cryptfile raises (as ValueError) when the password does not open a well-formed file:
#: pycryptodome's AES-GCM tag check, and cryptfile's own password reference check.
_WRONG_PASSWORD = {"MAC check failed", "Incorrect Password", "Incorrect password"}


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
            wrong one, a locked keyring nobody unlocked), or its file is damaged; the message says
            what to set or do.
    """
    from keyring.backends import SecretService

    for member in _members(backend):
        if _asks_for_password(member):
            password = _supplied_password(member)
            if password is None:
                raise _prompt_refused(member)
            try:
                setattr(member, "keyring_key", password)  # noqa: B010 (cryptfile's property, checked against the file's reference value)
            except Exception as error:  # ValueError ("Incorrect Password", "MAC check failed") and the like
                try:
                    delattr(member, "keyring_key")  # a wrong password must not stay set
                except Exception:  # noqa: S110 (nothing was set, nothing to undo)
                    pass
                if str(error) not in _WRONG_PASSWORD:  # the file itself cannot be read (not INI, not UTF-8, ...)
                    raise KeyringUnavailable(
                        f"The keyring file {getattr(member, 'file_path', '')} is damaged: it cannot be read as an "
                        "encrypted keyring file. Restore it from a backup, or move it away to start afresh (the saved "
                        "keys are then lost: save the integration again)."
                    ) from None
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
    integration: SavedFields | None = None
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

    @model_validator(mode="before")
    @classmethod
    def _provider_of_the_fields(cls, data: Any) -> Any:
        """The integration's fields name their provider; a record that names it only once still reads."""
        if isinstance(data, dict) and isinstance(data.get("integration"), dict) and data.get("provider"):
            data = {**data, "integration": {"provider": data["provider"], **data["integration"]}}
        return data

    @model_validator(mode="after")
    def _complete(self) -> SettingsRecord:
        if self.provider is not None and (self.integration is None or not self.key_slots):
            raise ValueError("a record with a provider needs the integration's fields and its key slots")
        if self.integration is not None and self.integration.provider is not self.provider:
            raise ValueError("the integration's fields are of another provider than the record's")
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
        keyring_timeout: how long one keyring call may take, in seconds; default
            ``$AI_ADMIN_KEYRING_TIMEOUT``, or :data:`KEYRING_TIMEOUT` (10 s). A backend that
            does not answer in time is a :class:`KeyringUnavailable`.
    """

    def __init__(self, home: Path, keyring: KeyringBackend | None, *, keyring_timeout: float | None = None) -> None:
        self.home = Path(home)
        self.keyring = keyring
        self.keyring_timeout = keyring_timeout if keyring_timeout is not None else _keyring_timeout_from_environment()
        self._record_path = self.home / "settings.json"
        self._audit_path = self.home / "audit.jsonl"
        self._reserve_path = self.home / "settings.reserve"

    @property
    def _record_name(self) -> str:
        """Where the record is, for a message."""
        return str(self._record_path)

    # -- reading -------------------------------------------------------------- #

    def read(self) -> SettingsRecord:
        """The settings record; an empty one (revision 0) before the first save.

        Raises:
            StoreError: ``settings.json`` exists but cannot be read, is not a regular file
                (a symbolic link, a folder, a FIFO), is larger than :data:`RECORD_MAX_BYTES`,
                or is not a valid record.
        """
        text = self._read_record_bytes()
        if text is None:
            return SettingsRecord()
        try:
            return SettingsRecord.model_validate_json(text.decode("utf-8"))
        except (ValidationError, ValueError):  # ValueError: not UTF-8 (a hand edit in another encoding)
            raise StoreError(
                f"{self._record_path} is damaged, so the OpenAI integration cannot be read. "
                "Remove the integration (the Remove button, or `ai-admin remove --yes`) and add it again; "
                "the damaged file is kept beside it."
            ) from None

    def _read_record_bytes(self) -> bytes | None:
        """The bytes of ``settings.json`` (at most RECORD_MAX_BYTES), or None when there is none."""
        path = self._record_path
        try:
            fd = _open_regular(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except _NotRegularFile as error:
            raise StoreError(
                f"{path} is {error.kind}, not a regular file, so the OpenAI integration cannot be read "
                "(it is never followed or opened). Remove the integration (the Remove button, or "
                "`ai-admin remove --yes`) to put a new record in its place; it is kept beside it."
            ) from None
        except OSError as error:
            raise StoreError(
                f"Cannot read {path} ({error.strerror}). Ask an admin to check the folder's permissions."
            ) from None
        try:
            with os.fdopen(fd, "rb") as handle:
                text = handle.read(RECORD_MAX_BYTES + 1)
        except OSError as error:
            raise StoreError(f"Cannot read {path} ({error.strerror}).") from None
        if len(text) > RECORD_MAX_BYTES:
            raise StoreError(
                f"{path} is larger than {RECORD_MAX_BYTES // (1 << 20)} MiB, which no settings record is, so it is "
                "damaged and was not read. Remove the integration (the Remove button, or `ai-admin remove --yes`) "
                "and add it again; the damaged file is kept beside it."
            )
        return text

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

    def load(self, *, actor: str | None = None) -> OpenAIIntegration | AzureOpenAIIntegration | None:
        """The saved integration with its keys, or None when nothing is saved.

        Args:
            actor: the user asking. When the keyring lacks a saved key and the record was
                saved by someone else, the key is not lost: it is in that admin's keyring
                (:class:`KeyNotInThisKeyring`).
        Raises:
            KeyNotInThisKeyring: ``actor`` did not save the record, and this keyring has no
                key for it ("this keyring has no key for this store; run as the admin who saved it").
            StoreError: the record is damaged, or points at keys the keyring no longer has.
            KeyringUnavailable: the keyring backend fails or does not answer in time.
        """
        record = self.read()
        if not record.configured:
            return None
        secrets: dict[str, SecretStr] = {}
        for slot in record.key_slots:
            value = self._keyring_call("get_password", SERVICE_NAME, record.username(slot))
            if value is None and self.keyring is not None:
                if actor is not None and record.updated_by and record.updated_by != actor:
                    raise KeyNotInThisKeyring(
                        f"The saved API key is not in the keyring used here ({backend_name(self.keyring)}): "
                        "this keyring has no key for this store; run as the admin who saved it "
                        f"({record.updated_by}), or edit the OpenAI integration and type the key again."
                    )
                raise StoreError(
                    f"The keyring ({backend_name(self.keyring)}) no longer holds the saved API key. "
                    "Edit the OpenAI integration and type the key again."
                )
            secrets[slot] = SecretStr(value)
        try:
            fields = record.integration.model_dump(mode="json") if record.integration is not None else {}
            return parse_integration(fields, secrets)
        except ValidationError:
            raise StoreError(
                f"The saved settings in {self._record_name} are no longer valid. Edit the OpenAI integration and save it again."
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
        then the old revision's keys are deleted, with any an earlier failed delete left
        in this keyring. If a keyring write fails, the keys already written are deleted
        and the old record stays as it was.

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
            KeyringUnavailable: the keyring refused a key or did not answer in time; nothing changed.
            StoreError: the record could not be written; nothing changed.
        """
        with self._locked():
            old = self.read()
            if expected_revision is not None and old.revision != expected_revision:
                when = f" at {old.updated_at:%Y-%m-%d %H:%M:%S} UTC" if old.updated_at else ""
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
            self._sweep(record, replaced=old)
            return record

    def remove(self, *, actor: str) -> Removal:
        """Forget the integration: an empty record with the next revision, then the old keys deleted.

        Works without a keyring (the old keys then stay behind), on a full disk (the
        room kept in ``settings.reserve`` is used), and on a damaged record: one that is
        not JSON, too deeply nested, larger than :data:`RECORD_MAX_BYTES`, of the wrong
        shape, or not a regular file at all (a symbolic link, a folder, a FIFO: moved
        aside without being opened or followed). A damaged one is kept as
        ``settings.json.damaged-<time>``, so AI can always be switched off.

        Args:
            actor: the user name recorded as ``updated_by``.
        Returns:
            The new record, and the keys that could not be deleted from the keyring.
        Raises:
            StoreError: the record could not be written; nothing changed.
        """
        with self._locked():
            nothing_salvaged = False
            try:
                old = self.read()
            except StoreError:
                if not self._record_exists():
                    raise
                salvaged = self._salvaged()
                old = salvaged or SettingsRecord()
                nothing_salvaged = salvaged is None
                self._put_damaged_aside()
            record = SettingsRecord(
                store_id=old.store_id,
                revision=old.revision + 1,
                updated_by=actor,
                updated_at=_now(),
                **old.carried_access(actor),
            )
            self._write_record(record)
            if self.keyring is None:
                kept = [f"{slot} of revision {old.revision}" for slot in old.key_slots] if old.configured else []
            else:
                kept = self._sweep(record, replaced=old)
            return Removal(record=record, kept_keys=tuple(kept), nothing_salvaged=nothing_salvaged)

    def _record_exists(self) -> bool:
        """Whether there is a record at all (a file of any kind at ``settings.json``), readable or not."""
        return os.path.lexists(self._record_path)

    def _put_damaged_aside(self) -> None:
        """Move a damaged ``settings.json`` aside as ``settings.json.damaged-<time>`` (never opened or followed).

        Raises:
            StoreError: it cannot be moved.
        """
        aside = self._record_path.with_name(f"settings.json.damaged-{_now():%Y%m%dT%H%M%S}")
        try:
            os.replace(self._record_path, aside)  # renames a link, a folder or a FIFO itself, never its target
        except OSError as error:
            raise StoreError(f"Cannot move the damaged {self._record_path} aside ({error.strerror}).") from None

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

        The log is opened without following a symbolic link and only if it is a regular
        file; on a full disk, the room kept in ``settings.reserve`` is used.

        Raises:
            StoreError: the audit log could not be written, or is a symbolic link or not a regular file.
        """
        line = json.dumps({"at": _now().isoformat(), **event}, sort_keys=True, ensure_ascii=False)
        with self._locked():
            try:
                try:
                    self._append_line(line)
                except OSError as error:
                    if error.errno not in _DISK_FULL or not self._free_reserve():
                        raise
                    self._append_line(line)
            except _NotRegularFile as error:
                raise StoreError(
                    f"Cannot write the audit log {self._audit_path}: it is {error.kind}, not a regular file, and is "
                    "never followed. Ask an admin to put a regular file (or nothing) in its place."
                ) from None
            except OSError as error:
                raise StoreError(f"Cannot write the audit log {self._audit_path} ({error.strerror}).") from None

    def _append_line(self, line: str) -> None:
        fd = _open_regular(self._audit_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, _file_mode(self.home))
        with os.fdopen(fd, "r+b", buffering=0) as handle:
            _share(fd, _shared_group(self.home))
            end = handle.seek(0, os.SEEK_END)
            prefix = b""
            if end:  # a line cut short by a crash must not swallow this one
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    prefix = b"\n"
            data = prefix + (line + "\n").encode("utf-8")
            written = handle.write(data)
            if written != len(data):  # a short write: the disk filled up mid-line
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def audit_log(self, limit: int | None = None, *, before: int | None = None) -> list[dict[str, Any]]:
        """The audit events, oldest first; a damaged line is skipped.

        Args:
            limit: only the newest ``limit`` events, read backwards from the end of the
                file (memory and time bounded by what is returned, however long the log
                is); None: every event.
            before: pages by event id, which only the AI gateway's database log has; must be None here.
        Raises:
            TypeError: ``limit`` is not a whole number (or None).
            ValueError: ``limit`` is negative, or ``before`` is given.
            StoreError: the audit log cannot be read, or is not a regular file.
        """
        if before is not None:
            raise ValueError(
                "before= pages the AI gateway's audit log (kept in its database); a folder's log is read by limit only."
            )
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise TypeError(f"limit must be a whole number of events or None, not {type(limit).__name__}.")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be 0 or more events, not {limit}.")
        try:
            if limit is not None:
                return list(_tail(self._audit_path, limit, AUDIT_LINE_MAX_BYTES, keep=_event))
            fd = _open_regular(self._audit_path, os.O_RDONLY)
            with os.fdopen(fd, "rb") as handle:
                return [event for event in map(_event, _bounded_lines(handle)) if event is not None]
        except FileNotFoundError:
            return []
        except _NotRegularFile as error:
            raise StoreError(f"Cannot read the audit log {self._audit_path}: it is {error.kind}.") from None
        except OSError as error:
            raise StoreError(f"Cannot read the audit log {self._audit_path} ({error.strerror}).") from None

    # -- internals --------------------------------------------------------------- #

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's lock (``settings.lock``), making the folder first; group-writable in a shared folder."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            path = str(self.home / "settings.lock")
            gid = _shared_group(self.home)
            if gid is not None:  # every admin of the group must be able to take it
                lock = filelock.FileLock(path, timeout=30, mode=0o664)
            else:
                lock = filelock.FileLock(path, timeout=30, mode=_file_mode(self.home))
            lock.acquire()
            if gid is not None:
                _share_path(path, gid)
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
        """Call the backend's ``method``, waiting at most ``keyring_timeout`` seconds for it.

        Raises:
            KeyringUnavailable: no keyring, the backend failed, or it did not answer in time
                (the call is left to finish in a daemon thread; a leftover key it may still
                write is deleted when the store next opens).
            PasswordDeleteError: ``delete_password`` found no such key.
        """
        if self.keyring is None:
            raise KeyringUnavailable("This store was opened without a keyring, so it cannot read or write keys.")
        prepare_keyring(self.keyring)  # never a prompt that waits forever
        backend = self.keyring
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def call() -> None:
            try:
                outcome["value"] = getattr(backend, method)(*args)
            except BaseException as error:  # handed to the caller below
                outcome["error"] = error
            finally:
                with _OVERDUE_LOCK:
                    if _OVERDUE.get(id(backend)) is threading.current_thread():
                        del _OVERDUE[id(backend)]  # it answered after all: the backend may be asked again
                done.set()

        with _OVERDUE_LOCK:
            overdue = _OVERDUE.get(id(backend))
            if overdue is not None and overdue.is_alive():  # never pile calls onto a backend that stopped answering
                raise KeyringUnavailable(
                    f"The keyring ({backend_name(backend)}) did not answer within {self.keyring_timeout:g} s, and "
                    "is still busy with that call. Check that it is running and unlocked, then try again."
                )
            worker = threading.Thread(target=call, name=f"ai-admin-keyring-{method}", daemon=True)
            worker.start()
        if not done.wait(self.keyring_timeout):
            with _OVERDUE_LOCK:
                if not done.is_set():
                    _OVERDUE[id(backend)] = worker
            raise KeyringUnavailable(
                f"The keyring ({backend_name(backend)}) did not answer within {self.keyring_timeout:g} s. "
                f"Check that it is running and unlocked (or set {KEYRING_TIMEOUT_ENV} to wait longer), then try again."
            )
        error = outcome.pop("error", None)
        if error is None:
            return outcome.get("value")
        if isinstance(error, PasswordDeleteError) and method == "delete_password":
            raise PasswordDeleteError("no such key") from None
        if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit in the backend
            raise error
        if isinstance(error, AIAdminError):  # a backend of ours (the gateway's database): its message is key-free
            raise KeyringUnavailable(f"The keyring ({backend_name(backend)}) failed: {error}") from None
        # keyring backends raise many kinds; none may carry the key
        raise KeyringUnavailable(
            f"The keyring ({backend_name(backend)}) failed ({type(error).__name__}). "
            "Check that it is installed and unlocked, then try again; nothing was changed."
        ) from None

    def _salvaged(self) -> SettingsRecord | None:
        """The store id, revision and access fields of a damaged record, when it still holds them; else None."""
        try:
            text = self._read_record_bytes()
        except StoreError:
            return None
        try:
            data = from_json(
                text or b""
            )  # pydantic-core's parser: its depth limit is a ValueError, not a RecursionError
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        kept = salvaged_access(data)
        store_id, revision = data.get("store_id"), data.get("revision")
        if isinstance(store_id, str) and len(store_id) >= 8:
            kept["store_id"] = store_id
            if isinstance(revision, int) and not isinstance(revision, bool) and revision >= 0:
                kept["revision"] = revision  # so the next revision is new, and this store's keys can be found
        return SettingsRecord(**kept) if kept else None

    def _delete_quietly(self, username: str) -> bool:
        """Delete one key; True when it is gone (deleted now, or never there), False when the keyring failed."""
        try:
            self._keyring_call("delete_password", SERVICE_NAME, username)
        except PasswordDeleteError:
            return True
        except Exception:  # no keyring, or it failed: a leftover is harmless and cleaned up later
            return False
        return True

    def check_writable(self) -> None:
        """Check, before anything is sent or changed, that the record and the audit log can be written.

        A ``settings.json`` that is not a regular file passes (Remove moves it aside);
        an ``audit.jsonl`` that is a symbolic link or not a regular file does not.

        Raises:
            StoreError: the folder, the lock, ``settings.json`` or ``audit.jsonl`` cannot be
                written by this user; the message names which and says what to do.
        """
        with self._locked():
            if os.path.lexists(self._audit_path) and _kind(self._audit_path) != "a regular file":
                raise StoreError(
                    f"Cannot write the audit log {self._audit_path}: it is {_kind(self._audit_path)}, not a regular "
                    "file, and is never followed. Ask an admin to put a regular file (or nothing) in its place."
                )
            for path in (self._record_path, self._audit_path):
                if _kind(path) == "a regular file" and not os.access(path, os.W_OK):
                    raise StoreError(
                        f"Cannot write {path}: only users who may write it can change the OpenAI integration "
                        "(ask an admin to check its owner and permissions)."
                    )
            if not os.access(self.home, os.W_OK):
                raise StoreError(
                    f"Cannot write to {self.home}: only users who may write this folder can change the OpenAI integration."
                )

    def clean_leftovers(self) -> None:
        """Delete the keys an interrupted or failed save or remove may have left in the keyring.

        A save killed after writing the next revision's keys but before the record leaves
        keys under revision N+1; one killed after the record but before deleting the old
        keys leaves revision N-1's; a delete that failed leaves an older revision's, which
        this keyring's list of revisions (``<store id>/revisions``) remembers. All are
        deleted here, under the store's lock (so a save in progress elsewhere is never
        touched). Without a keyring, nothing happens.
        """
        if self.keyring is None or not os.path.lexists(self._record_path):
            return
        with self._locked():
            try:
                record = self.read()
            except StoreError:
                return
            self._sweep(record, neighbours=True)

    def _sweep(
        self, record: SettingsRecord, *, replaced: SettingsRecord | None = None, neighbours: bool = False
    ) -> list[str]:
        """Delete this keyring's keys of every revision but ``record``'s; remember the ones that stay.

        The revisions tried: those this keyring's list (``<store id>/revisions`` under
        :data:`REVISIONS_SERVICE`) names, ``replaced``'s, and with ``neighbours`` the
        revisions just before and after ``record``'s (what an interrupted save leaves).
        The list is then rewritten to ``record``'s revision (when it holds keys) and the
        revisions whose keys could not be deleted.

        Args:
            record: the record now in force; its keys stay (when it holds any).
            replaced: the record it replaced, whose keys are to go.
            neighbours: also try the revisions next to ``record``'s.
        Returns:
            What could not be deleted: ``"<slot> of revision <n>"`` for ``replaced``'s keys,
            ``"any key left of revision <n>"`` for older leftovers.
        """
        index = self._index_name(record.store_id)
        try:
            held = set(_revisions(self._keyring_call("get_password", REVISIONS_SERVICE, index)))
        except Exception:  # no usable keyring, or a damaged list: the other revisions are still tried
            held = set()
        candidates = set(held)
        if replaced is not None and replaced.configured:
            candidates.add(replaced.revision)
        if neighbours:
            candidates |= {record.revision - 1, record.revision + 1}
        if record.configured:
            candidates.discard(record.revision)
        kept: list[str] = []
        stays: set[int] = {record.revision} if record.configured else set()
        for revision in sorted(revision for revision in candidates if revision >= 1):
            known = replaced is not None and replaced.configured and revision == replaced.revision
            slots = replaced.key_slots if known and replaced is not None else ALL_KEY_SLOTS
            failed = [slot for slot in slots if not self._delete_quietly(f"{record.store_id}/r{revision}/{slot}")]
            if failed:
                stays.add(revision)
                kept += (
                    [f"{slot} of revision {revision}" for slot in failed]
                    if known
                    else [f"any key left of revision {revision}"]
                )
        if stays != held:
            try:
                if stays:
                    self._keyring_call("set_password", REVISIONS_SERVICE, index, json.dumps(sorted(stays)))
                else:
                    self._keyring_call("delete_password", REVISIONS_SERVICE, index)
            except Exception:  # noqa: S110 (bookkeeping only: the neighbours are tried at every open anyway)
                pass
        return kept

    @staticmethod
    def _index_name(store_id: str) -> str:
        """The keyring user name of the list of revisions whose keys a keyring may hold."""
        return f"{store_id}/revisions"

    def _write_record(self, record: SettingsRecord) -> None:
        """Write ``settings.json`` atomically; on a full disk, once more after freeing ``settings.reserve``.

        The new file keeps the mode of the one it replaces (default 0644: anyone may read
        the status), and in a shared (group-writable) folder gets the folder's group and
        group read-write.

        Raises:
            StoreError: it could not be written; the old record is as it was.
        """
        try:
            try:
                self._replace_record(record)
            except OSError as error:
                if error.errno not in _DISK_FULL or not self._free_reserve():
                    raise
                self._replace_record(record)
        except OSError as error:
            raise StoreError(f"Cannot write {self._record_path} ({error.strerror}). Nothing was changed.") from None
        self._keep_reserve()

    def _replace_record(self, record: SettingsRecord) -> None:
        gid = _shared_group(self.home)
        try:
            existing = os.lstat(self._record_path)
            mode = stat.S_IMODE(existing.st_mode) | 0o600 if stat.S_ISREG(existing.st_mode) else _file_mode(self.home)
        except OSError:
            mode = _file_mode(self.home)
        if gid is not None:
            mode |= 0o060
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.home, prefix=".settings-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(record.model_dump_json(indent=2))
                file.flush()
                os.fsync(file.fileno())
                _share(file.fileno(), gid)
            os.chmod(temporary, mode)
            os.replace(temporary, self._record_path)
        except BaseException:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise

    def _free_reserve(self) -> bool:
        """Delete ``settings.reserve`` to make room on a full disk; True when there was one."""
        try:
            os.unlink(self._reserve_path)
        except OSError:
            return False
        return True

    def _keep_reserve(self) -> None:
        """Make ``settings.reserve`` (RESERVE_BYTES of zeros) when it is missing and the disk has room; best effort."""
        if os.path.lexists(self._reserve_path):
            return
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.home, prefix=".reserve-")
            with os.fdopen(handle, "wb") as file:
                file.write(bytes(RESERVE_BYTES))
                file.flush()
                os.fsync(file.fileno())  # the blocks are really taken, not promised
            os.replace(temporary, self._reserve_path)
        except OSError:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)


def salvaged_access(data: dict[str, Any]) -> dict[str, Any]:
    """Of a damaged record's JSON, the access lists and ``updated_by`` that are still of the right type."""
    kept: dict[str, Any] = {}
    for name in ("admins", "allowed_users", "allowed_groups"):
        value = data.get(name)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            kept[name] = value
    if isinstance(data.get("updated_by"), str):
        kept["updated_by"] = data["updated_by"]
    return kept


def _revisions(text: Any) -> list[int]:
    """The revision numbers in a keyring's ``<store id>/revisions`` entry; none when it is missing or damaged."""
    try:
        values = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    if not isinstance(values, list):
        return []
    return [value for value in values if isinstance(value, int) and not isinstance(value, bool) and value >= 1]


def _bounded_lines(handle: Any, max_line: int = AUDIT_LINE_MAX_BYTES) -> Iterator[bytes]:
    """The lines of a binary file, front to back; a line longer than ``max_line`` bytes is skipped, never held whole."""
    while line := handle.readline(max_line + 1):
        if len(line) <= max_line or line.endswith(b"\n"):
            yield line
            continue
        while (rest := handle.readline(max_line + 1)) and not rest.endswith(b"\n"):
            pass  # the rest of the overlong line


def _event(line: bytes) -> dict[str, Any] | None:
    """One audit line as an event, or None when it is damaged (cut short, not JSON, not UTF-8, not an object)."""
    try:
        event = from_json(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
