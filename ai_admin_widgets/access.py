"""Who the current user is, and whether they may change the OpenAI integration.

The rule in force: the user is named by ``$JUPYTERHUB_USER`` on a JupyterHub
server, else by the operating system's login name; every user who can write the
store's folder is an admin. (JupyterHub's admin flag and an admins list come later.)
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
