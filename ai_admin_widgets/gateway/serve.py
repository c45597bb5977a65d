"""``ai-admin gateway serve``: the gateway as a JupyterHub-managed service.

It reads what JupyterHub gives a managed service (JupyterHub docs, "Services": "Hub-Managed
Services"): ``$JUPYTERHUB_SERVICE_URL`` (where to listen), ``$JUPYTERHUB_SERVICE_PREFIX`` (the
path the proxy routes to it), ``$JUPYTERHUB_API_URL`` and ``$JUPYTERHUB_API_TOKEN`` (the hub's
API and the service's own token). It refuses to start, with one line, without a safe keyring
(:mod:`~ai_admin_widgets.gateway.keys`) or without the hub's address.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import re
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..models import AIAdminError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend
    from sqlalchemy.engine import Engine

__all__ = ["ServeError", "check", "check_allow_hosts", "config_from_environment", "serve"]


class ServeError(AIAdminError):
    """The gateway cannot start; the message says why and what to do, in one line."""


def config_from_environment(
    home: str | os.PathLike[str] | None,
    cache_seconds: float,
    deadline: float,
    *,
    usage_max_mib: float = 16.0,
    usage_keep: int = 5,
    ip: str | None = None,
    db_url: str | None = None,
    create: bool = True,
    reauth_minutes: float = 60.0,
    authenticate_metrics: bool = True,
    audit_keep_days: float = 365.0,
) -> tuple:
    """``(GatewayConfig, host, port)`` from a managed service's environment.

    The gateway listens on ``$JUPYTERHUB_SERVICE_URL``'s port, and on its host unless ``ip`` names
    the address to bind (``0.0.0.0`` in a container whose service URL is a cluster name such as
    ``http://hub:10101``, which is not an address of the pod's own).

    ``usage_max_mib`` and ``usage_keep``: no longer used (the AI calls are recorded in the database, see
    :meth:`~ai_admin_widgets.gateway.app.Gateway.record_use`); still checked, so a configuration that gives
    them keeps starting, and a wrong value is still named.

    ``reauth_minutes``: how often the saved integration is authenticated again (0: never;
    :mod:`~ai_admin_widgets.gateway.health`). ``authenticate_metrics``: False serves ``metrics`` without a token.
    ``audit_keep_days`` (``--audit-keep-days``): how many days audit events are kept in the database (0: for ever).

    ``db_url`` (``--db-url``), ``$AI_ADMIN_GATEWAY_DB_URL`` or ``$AI_ADMIN_CRYPT_KEY``, any of them given:
    the keys are kept in the gateway's database, encrypted
    (:func:`~ai_admin_widgets.gateway.dbkeyring.database_keyring`); the database is opened in any case
    (see :func:`_open_keyring`).

    Raises:
        ServeError: a variable is missing or unusable, or there is no safe keyring (with a database: no
            crypt key, keys that decrypt nothing stored, a schema that is behind, a database out of reach).
    """
    from ..store import default_home
    from .addresses import allowed_hosts_from_environment
    from .app import GatewayConfig, environment_prefix

    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL", "")
    hub_api = os.environ.get("JUPYTERHUB_API_URL", "")
    if not service_url or not hub_api:
        raise ServeError(
            "ai-admin gateway serve is started by JupyterHub as a managed service (JUPYTERHUB_SERVICE_URL and "
            "JUPYTERHUB_API_URL are not set); see 'ai-admin gateway hub-config', or try 'ai-admin gateway practice'."
        )
    parts = urlsplit(service_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or not port:
        raise ServeError(
            f"JUPYTERHUB_SERVICE_URL must be an http:// address with a port from 1 to 65535 (the service's url in "
            f"jupyterhub_config.py, e.g. http://127.0.0.1:10101), not {service_url!r}."
        )
    api = urlsplit(hub_api)
    try:
        api_port = api.port
    except ValueError:
        api_port = 0
    if api.scheme not in ("http", "https") or not api.hostname or api_port == 0:
        raise ServeError(
            f"JUPYTERHUB_API_URL must be the hub's API address, such as http://127.0.0.1:8081/hub/api, not {hub_api!r} "
            "(the hub sets it for its managed services)."
        )
    problem = check_allow_hosts(os.environ.get("AI_ADMIN_GATEWAY_ALLOW_HOSTS", ""))
    if problem is not None:
        raise ServeError(problem)
    if not 0 < cache_seconds <= 300 and cache_seconds != 0:
        raise ServeError("--cache-seconds must be from 0 to 300 (default 30).")
    if not deadline > 0:
        raise ServeError("--deadline must be a number of seconds above 0.")
    if not 0.01 <= usage_max_mib <= 1024 * 1024:
        raise ServeError("--usage-max-mib must be from 0.01 to 1048576 (MiB; default 16).")
    if not 0 <= usage_keep <= 1000:
        raise ServeError("--usage-keep must be a whole number from 0 to 1000 (default 5).")
    if not 0 <= reauth_minutes <= 7 * 24 * 60:
        raise ServeError("--reauth-minutes must be from 0 (never) to 10080 (a week); default 60.")
    if not 0 <= audit_keep_days <= 36500:
        raise ServeError("--audit-keep-days must be from 0 (keep every event) to 36500 days (default 365).")
    folder = Path(home).expanduser() if home else default_home()
    keyring, engine = _open_keyring(folder, db_url, create=create)
    config = GatewayConfig(
        home=folder,
        keyring=keyring,
        engine=engine,
        hub_api_url=hub_api,
        service_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
        prefix=environment_prefix(),
        cache_seconds=cache_seconds,
        deadline=deadline,
        allow_hosts=allowed_hosts_from_environment(),
        usage_max_bytes=int(usage_max_mib * 2**20),
        usage_keep=usage_keep,
        reauth_seconds=reauth_minutes * 60,
        authenticate_metrics=authenticate_metrics,
        audit_keep_days=audit_keep_days,
    )
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ServeError(
                f"--ip must be an IP address to listen on (such as 0.0.0.0 or 127.0.0.1), not {ip!r}."
            ) from None
    return config, ip or parts.hostname, port


def _open_keyring(folder: Path, db_url: str | None, *, create: bool = True) -> tuple[KeyringBackend, Engine]:
    """The gateway's keyring and database for ``folder``, ready; ServeError in one line if either cannot be used.

    The database (``--db-url``, ``$AI_ADMIN_GATEWAY_DB_URL``, else the SQLite file in ``folder``) holds the
    settings, the audit log and the AI calls; an empty one gets its tables (JupyterHub's rule), one at an
    older schema is refused (``create=False``, for ``--check``: an empty one is left empty). The keys are in it too, encrypted, when ``--db-url``, ``$AI_ADMIN_GATEWAY_DB_URL``
    or ``$AI_ADMIN_CRYPT_KEY`` is given; otherwise in keyrings.cryptfile in ``folder``.
    """
    from .crypt import crypt_keys
    from .db import db_url as resolve_url
    from .db import open_database
    from .keys import gateway_keyring, refuse_open_home

    try:
        from .dbkeyring import database_keyring, uses_database

        if uses_database(db_url):
            refuse_open_home(folder)
            crypt_keys()  # a missing or malformed key is said before the database is touched
            engine = open_database(resolve_url(db_url, folder), create=create)
            keyring: KeyringBackend = database_keyring(folder, engine=engine)
        else:
            if not os.environ.get("PYTHON_KEYRING_BACKEND") and not os.environ.get("KEYRING_CRYPTFILE_PASSWORD"):
                raise ServeError(
                    "The AI gateway has no keyring password: set AI_ADMIN_GATEWAY_KEYRING_PASSWORD in the hub's "
                    "environment (passed to the gateway as KEYRING_CRYPTFILE_PASSWORD; see 'ai-admin gateway "
                    "hub-config'), or name a keyring in PYTHON_KEYRING_BACKEND."
                )
            keyring = gateway_keyring(folder)
            engine = open_database(resolve_url(None, folder), create=create)
    except AIAdminError as error:
        raise ServeError(str(error)) from None
    except OSError as error:
        raise ServeError(_folder_problem(folder, error)) from None
    return keyring, engine


def check(home: str | os.PathLike[str] | None, *, ip: str | None = None, db_url: str | None = None, **options) -> str:
    """``serve --check``: what serve checks before listening, run by hand before the hub starts; one line when all is well.

    Run where the hub runs, as its user, with the hub's environment: ``$AI_ADMIN_GATEWAY_KEYRING_PASSWORD`` stands
    for ``$KEYRING_CRYPTFILE_PASSWORD`` when that is not set (the snippet passes one as the other). Without the
    hub's ``$JUPYTERHUB_SERVICE_URL`` and ``$JUPYTERHUB_API_URL`` (set only for the service the hub starts), the
    folder, the keyring and the allow-list are checked; with them, everything serve checks, and that the host to
    listen on resolves. Nothing listens. ``options`` are serve's other options (``cache_seconds``, ...).

    Raises:
        ServeError: what serve would refuse to start with, in its words.
    """
    from ..store import backend_name, default_home

    password = os.environ.get("AI_ADMIN_GATEWAY_KEYRING_PASSWORD")
    if password and not os.environ.get("KEYRING_CRYPTFILE_PASSWORD"):
        os.environ["KEYRING_CRYPTFILE_PASSWORD"] = password
    if os.environ.get("JUPYTERHUB_SERVICE_URL") and os.environ.get("JUPYTERHUB_API_URL"):
        config, host, port = config_from_environment(
            home,
            options.pop("cache_seconds", 30.0),
            options.pop("deadline", 300.0),
            ip=ip,
            db_url=db_url,
            create=False,
            **options,
        )
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise ServeError(
                f"The AI gateway cannot listen on {host}:{port} (JUPYTERHUB_SERVICE_URL, or --ip): {host} does not "
                "resolve; add --ip 0.0.0.0 (or this machine's address) to serve."
            ) from None
        folder, keyring, where = config.home, config.keyring, f", would listen on {host}:{port}"
    else:
        problem = check_allow_hosts(os.environ.get("AI_ADMIN_GATEWAY_ALLOW_HOSTS", ""))
        if problem is not None:
            raise ServeError(problem)
        folder = Path(home).expanduser() if home else default_home()
        (keyring, _), where = (
            _open_keyring(folder, db_url, create=False),
            " (the hub's service variables are not set: not checked)",
        )
    return f"ai-admin: the AI gateway can start: folder {folder}, keys in {backend_name(keyring)}{where}."


def _folder_problem(folder: Path, error: OSError) -> str:
    """One line for an OSError met making or opening the gateway's folder, naming ``--home``."""
    why = {
        FileNotFoundError: "a folder above it does not exist and cannot be made there",
        FileExistsError: "it is a file, not a folder",
        NotADirectoryError: "a part of its path is a file, not a folder",
        PermissionError: "the hub's user may not make or write it",
    }.get(type(error), error.strerror or type(error).__name__)
    return (
        f"--home {folder}: cannot use it as the gateway's folder ({why}); give a folder the hub's user can "
        "make and write, e.g. /srv/ai-gateway owned by that user."
    )


#: A DNS name: dot-separated labels of letters, digits, '-' (not first or last) and '_', each up to 63 long.
_NAME = re.compile(
    r"(?=.{1,253}\.?$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.?"
)


def check_allow_hosts(value: str) -> str | None:
    """Why ``value`` (``$AI_ADMIN_GATEWAY_ALLOW_HOSTS``) is not a comma-separated list of host names, IP addresses and
    CIDR blocks, in one line naming the first bad entry; None when it is (empty entries are skipped)."""
    for entry in (part.strip().lower() for part in value.split(",")):
        if not entry:
            continue
        if "/" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
                continue
            except ValueError:
                what = "a CIDR block"
        else:
            try:
                ipaddress.ip_address(entry)
                continue
            except ValueError:
                what = "a host name or IP address"
            numeric = all(label.isdigit() for label in entry.rstrip(".").split("."))
            if _NAME.fullmatch(entry) and not numeric:
                continue
        return (
            f"AI_ADMIN_GATEWAY_ALLOW_HOSTS has {entry!r}, which is not {what}: give host names, IP addresses or "
            "CIDR blocks (such as 10.0.0.0/8), comma-separated."
        )
    return None


def serve(config, host: str, port: int) -> None:
    """Serve ``config``'s gateway on ``host:port`` until SIGTERM or SIGINT.

    Raises:
        ServeError: it cannot listen there (a host that does not resolve, a port in use, an address not of this
            machine), before anything is served.
    """
    from tornado.httpserver import HTTPServer

    from ..store import backend_name
    from .app import Gateway, make_app
    from .db import safe_url

    logging.basicConfig(level=logging.WARNING, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    logging.getLogger("ai_admin_widgets.gateway").setLevel(logging.INFO)

    sockets = _listen(host, port)

    async def main() -> None:
        gateway = Gateway(config)
        gateway.start()
        server = HTTPServer(make_app(gateway), max_body_size=config.max_request_bytes + 2**20, xheaders=True)
        server.add_sockets(sockets)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sign in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sign, stop.set)
        logging.getLogger("ai_admin_widgets.gateway").info(
            "AI gateway on http://%s:%d%s, store %s, settings and audit log in %s, keys in %s",
            host,
            port,
            config.prefix,
            config.home,
            safe_url(gateway.engine.url),
            backend_name(config.keyring),
        )
        await stop.wait()
        server.stop()
        await gateway.close()

    asyncio.run(main())


def _listen(host: str, port: int) -> list[socket.socket]:
    """The listening sockets for ``host:port``, or ServeError naming where they came from and what to do."""
    from tornado.netutil import bind_sockets

    where = f"{host}:{port} (JUPYTERHUB_SERVICE_URL, or --ip)"
    try:
        return bind_sockets(port, host)
    except socket.gaierror:
        raise ServeError(
            f"The AI gateway cannot listen on {where}: {host} is not a name of this machine; keep the service's url "
            "as the hub and users' servers call it and add --ip 0.0.0.0 (or this machine's address) to serve."
        ) from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            why = f"port {port} is in use by another program; give the service another port in its url"
        elif error.errno == errno.EADDRNOTAVAIL:
            why = f"{host} is not an address of this machine; add --ip with one that is (or 0.0.0.0)"
        elif isinstance(error, PermissionError):
            why = f"the hub's user may not listen on port {port}; give a port above 1023"
        else:
            why = error.strerror or type(error).__name__
        raise ServeError(f"The AI gateway cannot listen on {where}: {why}.") from None
