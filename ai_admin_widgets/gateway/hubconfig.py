"""``ai-admin gateway hub-config``: the ``jupyterhub_config.py`` snippet that runs the AI gateway.

What it sets (JupyterHub docs: "Services", "Scopes in JupyterHub" (custom scopes, JupyterHub 3+),
"Roles", and ``Spawner.server_token_scopes``, JupyterHub 4+, which grants each server's token
the subset of those scopes its user holds):

* ``c.JupyterHub.services``: the managed service (``command``, ``url``, ``environment`` with the
  keyring's password taken from the hub's own environment, never written in the file);
* ``c.JupyterHub.custom_scopes``: ``custom:ai-admin:configure`` and ``custom:ai-admin:use``;
* ``c.JupyterHub.load_roles``: every user may use AI (the allow-list narrows it), the named
  admins may configure (hub admins always may);
* ``c.Spawner.server_token_scopes``: the server role's own scopes, ``access:services!service=<name>``,
  ``read:users!user`` (so the gateway sees the ``admin`` field) and both custom scopes;
* ``c.Spawner.environment``: ``AI_ADMIN_GATEWAY_URL``, so users' servers use the gateway.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

__all__ = ["hub_config"]

PASSWORD_VARIABLE = "AI_ADMIN_GATEWAY_KEYRING_PASSWORD"  # noqa: S105 (the variable's name)


def hub_config(
    *,
    name: str = "ai-gateway",
    url: str = "http://127.0.0.1:10101",
    home: str = "/srv/ai-gateway",
    admins: Sequence[str] = (),
    python: str | None = None,
) -> str:
    """The snippet, as Python source to append to ``jupyterhub_config.py``.

    Args:
        name: the service's name (its path is ``/services/<name>/``).
        url: where the service listens, as users' servers reach it (``http://hub:10101`` in a cluster).
        home: the gateway's folder (settings, audit log, encrypted keyring file), writable by the hub's user only.
        admins: hub user names who may configure the integration (hub admins always may).
        python: the interpreter that runs the gateway (default: the one running this command).
    Raises:
        ValueError: ``name`` is not a plain service name, or ``url`` not an http(s) address.
    """
    if not name or not all(character.isalnum() or character in "-_" for character in name):
        raise ValueError(f"The service name must be letters, digits, '-' and '_', not {name!r}.")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"The service URL must start with http:// or https://, not {url!r}.")
    interpreter = python or sys.executable
    gateway_url = f"{url.rstrip('/')}/services/{name}"
    q = json.dumps  # a JSON string or list of strings is Python source too
    return f"""# --- AI gateway (ai-admin-widgets): printed by `ai-admin gateway hub-config` ---
# The hub starts the gateway, restarts it if it exits, and routes /services/{name}/ to it.
# Before starting the hub, set {PASSWORD_VARIABLE} in the hub's environment: it opens the
# gateway's encrypted keyring file, and is passed to the gateway only (never to users' servers).
import os

c.JupyterHub.services.append(
    {{
        "name": {q(name)},
        "url": {q(url)},
        "command": [{q(interpreter)}, "-m", "ai_admin_widgets", "gateway", "serve", "--home", {q(home)}],
        "environment": {{
            "KEYRING_CRYPTFILE_PASSWORD": os.environ.get({q(PASSWORD_VARIABLE)}, ""),
            # Private or loopback hosts the gateway may call (names or CIDR blocks, comma-separated).
            "AI_ADMIN_GATEWAY_ALLOW_HOSTS": os.environ.get("AI_ADMIN_GATEWAY_ALLOW_HOSTS", ""),
        }},
        "display": False,
    }}
)

# Custom scopes (JupyterHub 3 or later): who may configure the OpenAI integration, who may use AI.
c.JupyterHub.custom_scopes.update(
    {{
        "custom:ai-admin:configure": {{"description": "Configure the organization's OpenAI integration."}},
        "custom:ai-admin:use": {{"description": "Use AI through the organization's OpenAI integration."}},
    }}
)

# Every user may use AI (the panel's "Who may use AI" narrows it); these users may configure it.
c.JupyterHub.load_roles.append(
    {{
        "name": "user",
        "scopes": ["self", "custom:ai-admin:use", "access:services!service={name}"],
    }}
)
c.JupyterHub.load_roles.append(
    {{
        "name": "ai-admin-configure",
        "description": "Configure the organization's OpenAI integration in AI Settings.",
        "scopes": ["custom:ai-admin:configure", "custom:ai-admin:use", "access:services!service={name}"],
        "users": {q(list(admins))},
    }}
)

# Each user's server token gets the subset of these scopes its user holds (JupyterHub 4 or later).
c.Spawner.server_token_scopes = [
    "access:servers!server",
    "users:activity!user",
    "read:users!user",
    "access:services!service={name}",
    "custom:ai-admin:use",
    "custom:ai-admin:configure",
]

# Users' servers find the gateway here; nothing else changes for them.
c.Spawner.environment.update({{"AI_ADMIN_GATEWAY_URL": {q(gateway_url)}}})
# --- end of the AI gateway ---
"""
