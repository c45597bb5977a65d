"""``ai-admin gateway hub-config``: the ``jupyterhub_config.py`` snippet that runs the AI gateway.

What it sets (JupyterHub docs: "Services", "Scopes in JupyterHub" (custom scopes, JupyterHub 3+),
"Roles", and ``Spawner.server_token_scopes``, JupyterHub 4+, which grants each server's token
the subset of those scopes its user holds):

* ``c.JupyterHub.services``: the managed service (``command``, ``url``, ``environment`` with the
  keyring's password, and for a database (``$AI_ADMIN_GATEWAY_DB_URL``, PostgreSQL for replicas) its URL and
  the encryption keys ``$AI_ADMIN_CRYPT_KEY``, all taken from the hub's own environment, never written in
  the file; an unset one is passed empty, which the gateway takes as not set);
* ``c.JupyterHub.custom_scopes``: ``custom:ai-admin:configure`` and ``custom:ai-admin:use``;
* the hub's ``user`` role gets ``custom:ai-admin:use`` and ``access:services!service=<name>``
  (every user may use AI; the allow-list narrows it), without redefining that role: the scopes
  are added to a ``user`` role that ``c.JupyterHub.load_roles`` already defines above the
  snippet, else to ``c.JupyterHub.extra_user_scopes`` (JupyterHub 6+, which adds them to the
  default ``user`` role), else (older hubs) a ``user`` role with JupyterHub's default ``self``
  and these is added;
* ``c.JupyterHub.load_roles``: the role ``ai-admin-configure`` for the named admins (hub admins
  may always configure);
* ``c.Spawner.server_token_scopes``: ``access:services!service=<name>``, ``read:users!user`` (so the gateway
  sees the ``admin`` field) and both custom scopes, added to the list (or a callable's answer) set above the
  snippet, or, with none set, to the ``server`` role's scopes, which is what JupyterHub's ``User.spawn`` gives a
  server's token when ``server_token_scopes`` is empty;
* ``c.JupyterHub.services`` and the ``ai-admin-configure`` role replace an entry of the same name, so the
  snippet appended twice (the second after changing ``--admin``) leaves one of each;
* ``c.Spawner.environment``: ``AI_ADMIN_GATEWAY_URL``, so users' servers use the gateway.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["hub_config"]

PASSWORD_VARIABLE = "AI_ADMIN_GATEWAY_KEYRING_PASSWORD"  # noqa: S105 (the variable's name)


def _check_url(option: str, value: str, *, service: bool) -> None:
    """Raise ValueError, naming ``option``, unless ``value`` is an address the hub (``service``: and the gateway) accept."""
    what = (
        "http://HOST:PORT (the gateway serves plain http, behind the hub's proxy)" if service else "an http(s) address"
    )
    parts = urlsplit(value)
    schemes = ("http",) if service else ("http", "https")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{option} has a port that is not a number from 1 to 65535: {value!r}.") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{option} must be {what}, not {value!r}.")
    if service and port is None:
        raise ValueError(f"{option} must name its port, e.g. http://127.0.0.1:10101, not {value!r}.")
    if port == 0:
        raise ValueError(f"{option} has a port that is not a number from 1 to 65535: {value!r}.")
    try:
        unspecified = ipaddress.ip_address(parts.hostname).is_unspecified
    except ValueError:
        unspecified = False
    if unspecified:
        raise ValueError(
            f"{option} must be an address the hub and users' servers can call, not {parts.hostname} (which means "
            "every address, for listening only): give e.g. http://hub:10101 and let the gateway listen on all "
            "addresses by adding --ip 0.0.0.0 to its serve command."
        )


def hub_config(
    *,
    name: str = "ai-gateway",
    url: str = "http://127.0.0.1:10101",
    home: str = "/srv/ai-gateway",
    admins: Sequence[str] = (),
    python: str | None = None,
    gateway_url: str | None = None,
) -> str:
    """The snippet, as Python source to append to ``jupyterhub_config.py`` (after any ``load_roles`` it should extend).

    Args:
        name: the service's name (its path is ``/services/<name>/``).
        url: where the service listens (the hub's proxy routes ``/services/<name>/`` there).
        home: the gateway's folder (its SQLite database by default, usage log, encrypted keyring file), writable by the hub's user only.
        admins: hub user names who may configure the integration (hub admins always may).
        python: the interpreter that runs the gateway (default: the one running this command).
        gateway_url: the address users' servers call the gateway at (their ``AI_ADMIN_GATEWAY_URL``).
            Default ``<url>/services/<name>``, straight to the service, which works only where users'
            servers can reach ``url`` (servers on the hub's machine, for a loopback ``url``). Otherwise
            pass the address through the hub's proxy, e.g. ``https://hub.example.org/services/ai-gateway``,
            or in a cluster the hub's service address, e.g. ``http://hub:10101/services/ai-gateway``.
    Raises:
        ValueError: an argument the hub or the gateway would refuse (the message names its option, such as
            ``--url``, and what to give): a name that is not a plain service name, a ``url`` that is not
            ``http://HOST:PORT`` with a host users' servers can call, a ``gateway_url`` that is not an http(s)
            address with a host, a ``home`` that is not absolute, an empty admin name.
    """
    if not name or not all(character.isalnum() or character in "-_" for character in name):
        raise ValueError(f"--name must be letters, digits, '-' and '_' (a JupyterHub service name), not {name!r}.")
    _check_url("--url", url, service=True)
    if gateway_url is not None:
        _check_url("--gateway-url", gateway_url, service=False)
    if not home or not home.startswith("/"):
        raise ValueError(f"--home must be an absolute path (the gateway's folder, e.g. /srv/ai-gateway), not {home!r}.")
    for admin in admins:
        if not admin or admin != admin.strip() or "/" in admin:
            raise ValueError(
                f"--admin must be a hub user name (not empty, no '/', no surrounding spaces), not {admin!r}."
            )
    interpreter = python or sys.executable
    gateway_url = (gateway_url or f"{url.rstrip('/')}/services/{name}").rstrip("/")
    q = json.dumps  # a JSON string or list of strings is Python source too
    return f"""# --- AI gateway (ai-admin-widgets): printed by `ai-admin gateway hub-config` ---
# The hub starts the gateway, restarts it if it exits, and routes /services/{name}/ to it.
# Before starting the hub, set {PASSWORD_VARIABLE} in the hub's environment: it opens the
# gateway's encrypted keyring file, and is passed to the gateway only (never to users' servers).
# With a database (PostgreSQL, for several replicas), also set AI_ADMIN_GATEWAY_DB_URL and AI_ADMIN_CRYPT_KEY
# there: the gateway then keeps its settings, audit log and keys (encrypted) in that database.
# The hub does not start while the gateway refuses to: check it first with `ai-admin gateway serve --check`.
# Safe to add twice: a later copy (say, with other --admin users) replaces this one's service and role.
import os


def _ai_gateway_replace(section, trait, entry):
    values = getattr(section, trait)
    values = values.get_value([]) if hasattr(values, "get_value") else list(values)
    kept = [value for value in values if not (isinstance(value, dict) and value.get("name") == entry["name"])]
    setattr(section, trait, [*kept, entry])


_ai_gateway_replace(
    c.JupyterHub,
    "services",
    {{
        "name": {q(name)},
        "url": {q(url)},
        "command": [{q(interpreter)}, "-m", "ai_admin_widgets", "gateway", "serve", "--home", {q(home)}],
        "environment": {{
            "KEYRING_CRYPTFILE_PASSWORD": os.environ.get({q(PASSWORD_VARIABLE)}, ""),
            # Private or loopback hosts the gateway may call (names or CIDR blocks, comma-separated).
            "AI_ADMIN_GATEWAY_ALLOW_HOSTS": os.environ.get("AI_ADMIN_GATEWAY_ALLOW_HOSTS", ""),
            # Its database (default: a SQLite file in its folder) and the keys' encryption keys (';'-separated).
            "AI_ADMIN_GATEWAY_DB_URL": os.environ.get("AI_ADMIN_GATEWAY_DB_URL", ""),
            "AI_ADMIN_CRYPT_KEY": os.environ.get("AI_ADMIN_CRYPT_KEY", ""),
        }},
        "display": False,
    }},
)

# Custom scopes (JupyterHub 3 or later): who may configure the OpenAI integration, who may use AI.
c.JupyterHub.custom_scopes.update(
    {{
        "custom:ai-admin:configure": {{"description": "Configure the organization's OpenAI integration."}},
        "custom:ai-admin:use": {{"description": "Use AI through the organization's OpenAI integration."}},
    }}
)

# Every user may use AI (the panel's "Who may use AI" narrows it). The hub's "user" role is not
# redefined: these scopes are added to the "user" role that load_roles defines above, if any; else to
# c.JupyterHub.extra_user_scopes (JupyterHub 6 or later); else a "user" role with JupyterHub's default
# scope ("self") and these is added.
def _ai_gateway_grant_users(c, scopes):
    roles = c.JupyterHub.load_roles
    if not isinstance(roles, list):  # nothing assigned above: traitlets' record of appends
        roles = c.JupyterHub.load_roles = roles.get_value([])
    user = next((role for role in roles if isinstance(role, dict) and role.get("name") == "user"), None)
    if user is not None and "scopes" in user:
        user["scopes"] = [*user["scopes"], *(scope for scope in scopes if scope not in user["scopes"])]
        return
    from jupyterhub.app import JupyterHub

    if "extra_user_scopes" in JupyterHub.class_trait_names():
        extra = c.JupyterHub.extra_user_scopes
        if isinstance(extra, (set, list, tuple)):
            c.JupyterHub.extra_user_scopes = {{*extra, *scopes}}
        else:
            extra.update(scopes)
    elif user is not None:  # a "user" role without scopes gets the default's, "self"
        user["scopes"] = ["self", *scopes]
    else:
        roles.append({{"name": "user", "scopes": ["self", *scopes]}})


_ai_gateway_grant_users(c, ["custom:ai-admin:use", "access:services!service={name}"])

# These users may configure it (hub admins always may).
_ai_gateway_replace(
    c.JupyterHub,
    "load_roles",
    {{
        "name": "ai-admin-configure",
        "description": "Configure the organization's OpenAI integration in AI Settings.",
        "scopes": ["custom:ai-admin:configure", "custom:ai-admin:use", "access:services!service={name}"],
        "users": {q(list(admins))},
    }},
)


# Each user's server token gets the subset of these scopes its user holds (JupyterHub 4 or later).
# They are added to the scopes set above; set nothing (or empty), the hub gives the "server" role's
# scopes (load_roles' "server" role, else JupyterHub's default), and they are kept.
def _ai_gateway_server_scopes(c, scopes):
    import inspect

    from jupyterhub.roles import get_default_roles

    requested = c.Spawner.server_token_scopes
    if hasattr(requested, "get_value"):  # nothing assigned above, or appends
        requested = requested.get_value([])
    roles = [*get_default_roles(), *c.JupyterHub.load_roles]
    server = [role["scopes"] for role in roles if isinstance(role, dict) and role.get("name") == "server" and "scopes" in role]

    def with_ours(chosen):
        chosen = list(chosen or server[-1])
        return [*chosen, *(scope for scope in scopes if scope not in chosen)]

    if not callable(requested):
        c.Spawner.server_token_scopes = with_ours(requested)
        return

    async def server_token_scopes(spawner):  # a callable set above: ours are added to what it gives
        chosen = requested(spawner)
        return with_ours(await chosen if inspect.isawaitable(chosen) else chosen)

    c.Spawner.server_token_scopes = server_token_scopes


_ai_gateway_server_scopes(
    c,
    [
        "read:users!user",
        "access:services!service={name}",
        "custom:ai-admin:use",
        "custom:ai-admin:configure",
    ],
)
del _ai_gateway_replace, _ai_gateway_grant_users, _ai_gateway_server_scopes

# Users' servers find the gateway here; nothing else changes for them.
c.Spawner.environment.update({{"AI_ADMIN_GATEWAY_URL": {q(gateway_url)}}})
# --- end of the AI gateway ---
"""
