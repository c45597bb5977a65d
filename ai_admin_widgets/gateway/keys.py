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

import os
from pathlib import Path

from keyring.backend import KeyringBackend

from ..models import KeyringUnavailable
from ..store import CRYPTFILE_PASSWORD_ENV, default_keyring, prepare_keyring

__all__ = ["gateway_keyring"]


def gateway_keyring(home: Path) -> KeyringBackend:
    """The keyring the gateway keeps its keys in, ready to use (its password checked against its file).

    The folder ``home`` is made if missing, with mode 700: its settings, audit log and keyring
    file are for the gateway alone, even where users' servers can reach the path.

    Raises:
        KeyringUnavailable: keyrings.cryptfile is not installed, ``$KEYRING_CRYPTFILE_PASSWORD``
            is not set or does not open the file, or the backend named in
            ``$PYTHON_KEYRING_BACKEND`` is not safe; the message says what to do, in one line.
    """
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        backend = default_keyring()
        prepare_keyring(backend)
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
    home.mkdir(mode=0o700, parents=True, exist_ok=True)  # made here, it is the service's user's alone
    backend = CryptFileKeyring()
    backend.file_path = str(home / "keyring.cfg")
    prepare_keyring(backend)
    return backend
