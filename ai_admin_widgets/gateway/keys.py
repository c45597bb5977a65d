"""The gateway's keyring: one that works headless in a service, or none (and the gateway does not start).

keyrings.cryptfile's ``CryptFileKeyring`` in the gateway's own folder (``keyring.cfg``),
encrypted (Argon2 key derivation, AES-GCM) with the password in ``$KEYRING_CRYPTFILE_PASSWORD`` of
the service's environment, which the hub passes on (``c.JupyterHub.services[...]["environment"]``)
and keeps out of users' servers. A desktop keyring (Secret Service) needs a logged-in session a
service does not have, and a plain-text file is no keyring, so neither is chosen by default. An
operator who has a better backend names it with keyring's own ``$PYTHON_KEYRING_BACKEND``; it is
then checked by the store's keyring policy (:func:`~ai_admin_widgets.store.default_keyring`).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from keyring.backend import KeyringBackend

from ..models import KeyringUnavailable, StoreError
from ..store import CRYPTFILE_PASSWORD_ENV, default_keyring, prepare_keyring

__all__ = ["gateway_keyring", "private_home", "refuse_open_home"]

log = logging.getLogger("ai_admin_widgets.gateway")


def private_home(home: Path) -> None:
    """Make ``home``, the gateway's folder, its user's alone: made with mode 700 if missing; tightened to 700
    (one warning logged) if it is this user's and open to group or others; its files tightened to 600.

    Raises:
        StoreError: the folder belongs to another user and is open to others (it cannot be made private from
            here), or is not a folder; the one-line message says what to run.
    """
    found = refuse_open_home(home)
    mode = stat.S_IMODE(found.st_mode)
    if mode & 0o077 and found.st_uid == os.geteuid():
        os.chmod(home, 0o700)
        log.warning("The AI gateway's folder %s was open to other users (mode %03o); it is now 700.", home, mode)
    _private_files(home)


def refuse_open_home(home: Path) -> os.stat_result:
    """Check, changing nothing but making ``home`` (mode 700) if missing, that :func:`private_home` can make it private.

    Raises:
        StoreError: as :func:`private_home`.
    """
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = os.stat(home)
    except FileExistsError:
        found = None
    except OSError as error:
        raise StoreError(
            f"--home {home}: cannot make the AI gateway's folder there ({error.strerror}); give a folder the hub's "
            "user can create, or create it beforehand (mode 700)."
        ) from None
    if found is None or not stat.S_ISDIR(found.st_mode):
        raise StoreError(f"--home {home}: the AI gateway's folder is not a folder; give it a folder of its own.")
    if found.st_mode & 0o007 and found.st_uid != os.geteuid():
        raise StoreError(
            f"The AI gateway's folder {home} belongs to another user and every local user can read it: "
            f"run 'chmod 700 {home}' (as its owner), or give the gateway a folder of its own."
        )
    return found


def _private_files(home: Path) -> None:
    """Take group and others' access off the regular files of ``home`` that this user owns (settings, logs, keys)."""
    try:
        entries = list(os.scandir(home))
    except OSError:
        return
    for entry in entries:
        try:
            found = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(found.st_mode) and found.st_uid == os.geteuid() and found.st_mode & 0o077:
                os.chmod(entry.path, stat.S_IMODE(found.st_mode) & 0o700, follow_symlinks=False)
        except (OSError, NotImplementedError):
            continue


def gateway_keyring(home: Path) -> KeyringBackend:
    """The keyring the gateway keeps its keys in, ready to use (its password checked against its file).

    The folder ``home`` is made private once the keyring is ready (:func:`private_home`): its settings, audit log, usage
    log and keyring file are for the gateway alone, even where users' servers can reach the path.

    Raises:
        StoreError: the folder cannot be made private (see :func:`private_home`).
        KeyringUnavailable: keyrings.cryptfile is not installed, ``$KEYRING_CRYPTFILE_PASSWORD``
            is not set or does not open the file, or the backend named in
            ``$PYTHON_KEYRING_BACKEND`` is not safe; the message says what to do, in one line.
    """
    refuse_open_home(home)
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        backend = default_keyring()
        prepare_keyring(backend)
        private_home(home)
        return backend
    try:
        from keyrings.cryptfile.cryptfile import CryptFileKeyring
    except ImportError:
        raise KeyringUnavailable(
            "The AI gateway keeps its keys with keyrings.cryptfile, which is not installed: "
            "pip install 'ai-admin-widgets[hub]'."
        ) from None
    if not os.environ.get(CRYPTFILE_PASSWORD_ENV):
        raise KeyringUnavailable(
            f"The AI gateway has no safe keyring: set {CRYPTFILE_PASSWORD_ENV} in its service environment "
            "(ai-admin gateway hub-config shows where), or name a keyring in PYTHON_KEYRING_BACKEND."
        )
    backend = CryptFileKeyring()
    backend.file_path = str(home / "keyring.cfg")
    prepare_keyring(backend)
    private_home(home)  # last: a start refused for another reason leaves the folder as it was
    return backend
