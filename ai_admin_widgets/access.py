"""Who the current user is, and whether they may change the OpenAI integration.

The rule in force: the user is named by ``$JUPYTERHUB_USER`` on a JupyterHub
server, else by the operating system's login name. Every user counts as an admin
here; the operating system still decides who can change the integration, because
a save or remove needs write access to the store's folder (a user without it gets a
clear "Cannot write to …" error, and can still see the status).
"""

from __future__ import annotations

import getpass
import os

__all__ = ["AccessPolicy", "current_user"]


def current_user() -> str:
    """The user name of whoever runs this kernel: ``$JUPYTERHUB_USER``, else the login name."""
    hub_user = os.environ.get("JUPYTERHUB_USER")
    if hub_user:
        return hub_user
    try:
        return getpass.getuser()
    except Exception:  # no login name on this system (a container without a passwd entry)
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


class AccessPolicy:
    """Decides who may add, edit and remove the integration.

    Args:
        admin: force the answer of :meth:`is_admin` (True or False); None applies the rule above.
    """

    def __init__(self, admin: bool | None = None) -> None:
        self._admin = admin

    def is_admin(self, user: str) -> bool:
        """True when ``user`` may change the OpenAI integration."""
        return True if self._admin is None else self._admin
