"""Practice without a hub: a gateway on 127.0.0.1, a fresh sandbox as the provider, and a stand-in for the hub.

The stand-in answers ``GET /hub/api/user`` as JupyterHub does (the token's owner's model with
the token's ``scopes``, 403 for a token it does not know), so the gateway's HubAuth talks to it
exactly as to a hub. Two practice users: ``practice-admin`` (configure and use) and
``practice-analyst`` (use only, group ``analysts``). Their tokens are fresh for each practice
and obviously fake (``practice-admin-…``, ``practice-analyst-…``).

    with Practice() as practice:
        OpenAI(base_url=practice.gateway_url + "/v1", api_key=practice.tokens["analyst"])

It refuses to run beside a real hub (``$JUPYTERHUB_API_URL`` set), so practice never touches one.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..models import AIAdminError
from .auth import CONFIGURE_SCOPE, USE_SCOPE

__all__ = ["PREFIX", "Practice", "PracticeRefused"]

#: The path the practice gateway serves under, as a hub's proxy would route it.
PREFIX = "/services/ai-gateway/"


class PracticeRefused(AIAdminError):
    """Practice was asked to run beside a real JupyterHub."""


def _listening_socket() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.setblocking(False)
    return listener


class Practice:
    """A practice gateway, sandbox and hub stand-in, served from a background thread.

    Args:
        sandbox: the provider to practise against (default: a fresh :class:`~ai_admin_widgets.Sandbox`,
            stopped with the practice).
        cache_seconds: how long the gateway keeps the hub's answer about a token (0: asks every time).
        deadline: seconds a forwarded AI call may take.
        **config: other :class:`~ai_admin_widgets.gateway.app.GatewayConfig` fields (``max_request_bytes``, ...).
    Raises:
        PracticeRefused: ``$JUPYTERHUB_API_URL`` is set (this looks like a real hub's server).
    """

    def __init__(
        self, *, sandbox: Any = None, cache_seconds: float = 30.0, deadline: float = 300.0, **config: Any
    ) -> None:
        if os.environ.get("JUPYTERHUB_API_URL"):
            raise PracticeRefused(
                "ai-admin gateway practice does not run beside a real JupyterHub (JUPYTERHUB_API_URL is set): "
                "use the hub's own gateway, or practise in a terminal outside the hub."
            )
        self._own_sandbox = sandbox is None
        self.sandbox = sandbox
        self.cache_seconds = cache_seconds
        self.deadline = deadline
        self._config = config
        self.tokens = {
            "admin": f"practice-admin-{secrets.token_hex(12)}",
            "analyst": f"practice-analyst-{secrets.token_hex(12)}",
        }
        self.users = {
            self.tokens["admin"]: {
                "kind": "user",
                "name": "practice-admin",
                "admin": False,
                "groups": [],
                "scopes": sorted({CONFIGURE_SCOPE, USE_SCOPE, "access:services!service=ai-gateway"}),
            },
            self.tokens["analyst"]: {
                "kind": "user",
                "name": "practice-analyst",
                "admin": False,
                "groups": ["analysts"],
                "scopes": sorted({USE_SCOPE, "access:services!service=ai-gateway"}),
            },
        }
        self.hub_requests = 0
        self.folder: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._hub_server: Any = None
        self._gateway_server: Any = None
        self._gateway: Any = None
        self._hub_port = 0
        self._gateway_port = 0

    def __repr__(self) -> str:
        return f"<Practice {'running' if self._loop else 'stopped'}>"

    # -- addresses -------------------------------------------------------------- #

    @property
    def gateway_url(self) -> str:
        """The gateway's address, ``http://127.0.0.1:<port>/services/ai-gateway`` (``AI_ADMIN_GATEWAY_URL``)."""
        return f"http://127.0.0.1:{self._gateway_port}{PREFIX.rstrip('/')}"

    @property
    def hub_api_url(self) -> str:
        """The stand-in hub's API, ``http://127.0.0.1:<port>/hub/api``."""
        return f"http://127.0.0.1:{self._hub_port}/hub/api"

    @property
    def gateway(self) -> Any:
        """The running :class:`~ai_admin_widgets.gateway.app.Gateway` (its config, its usage log)."""
        return self._gateway

    # -- lifecycle -------------------------------------------------------------- #

    def start(self) -> Practice:
        """Start the sandbox (if it is the practice's own), the hub stand-in and the gateway; returns self."""
        from ..sandbox import Sandbox

        if self._loop is not None:
            raise RuntimeError("This practice is already running.")
        if self.sandbox is None:
            self.sandbox = Sandbox()
        if self._own_sandbox:
            self.sandbox.start()
        self.folder = Path(tempfile.mkdtemp(prefix="ai-admin-gateway-practice-"))
        hub_socket, gateway_socket = _listening_socket(), _listening_socket()
        self._hub_port = hub_socket.getsockname()[1]
        self._gateway_port = gateway_socket.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(hub_socket, gateway_socket))
            except BaseException as error:  # reported to start()
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=run, name="ai-admin-gateway-practice", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._loop = None
            self.stop()
            raise failure[0]
        return self

    async def _serve(self, hub_socket: socket.socket, gateway_socket: socket.socket) -> None:
        from tornado.httpserver import HTTPServer

        from .app import Gateway, GatewayConfig, make_app

        assert self.folder is not None
        keyring = self._config.get("keyring") or _practice_keyring(self.folder / "keyring.cfg")
        config = GatewayConfig(
            home=self.folder / "store",
            keyring=keyring,
            hub_api_url=self.hub_api_url,
            service_token=f"practice-service-{secrets.token_hex(8)}",
            prefix=PREFIX,
            cache_seconds=self.cache_seconds,
            deadline=self.deadline,
            openai_base_url=self.sandbox.openai_base_url,
            access_scopes={"access:services!service=ai-gateway"},
            **(
                {"allow_hosts": ("127.0.0.1",)}
                | {name: value for name, value in self._config.items() if name != "keyring"}
            ),
        )
        self._gateway = Gateway(config)
        self._gateway.start()
        self._hub_server = HTTPServer(_hub_app(self))
        self._hub_server.add_sockets([hub_socket])
        self._gateway_server = HTTPServer(make_app(self._gateway), max_body_size=config.max_request_bytes + 2**20)
        self._gateway_server.add_sockets([gateway_socket])

    async def _close(self) -> None:
        if self._gateway_server is not None:
            self._gateway_server.stop()
            await self._gateway_server.close_all_connections()
        if self._hub_server is not None:
            self._hub_server.stop()
        if self._gateway is not None:
            await self._gateway.close()

    def stop_hub(self) -> None:
        """Stop the hub stand-in (the gateway then cannot identify anyone: 503)."""
        done = threading.Event()

        def stop() -> None:
            if self._hub_server is not None:
                self._hub_server.stop()
                asyncio.ensure_future(self._hub_server.close_all_connections()).add_done_callback(lambda _: done.set())
            else:
                done.set()

        if self._loop is not None:
            self._loop.call_soon_threadsafe(stop)
            done.wait(10)

    def stop(self) -> None:
        """Stop everything and delete the practice folder. Safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._own_sandbox and self.sandbox is not None:
            self.sandbox.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> Practice:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def first_line(self) -> str:
        """The JSON line ``ai-admin gateway practice`` prints first: the gateway's address and the two tokens."""
        return json.dumps({"gateway_url": self.gateway_url, "tokens": dict(self.tokens)})


def _hub_app(practice: Practice) -> Any:
    """The stand-in for JupyterHub's token API: ``GET /hub/api/user`` only."""
    import tornado.web

    from .auth import token_of

    class WhoAmI(tornado.web.RequestHandler):
        def get(self) -> None:
            practice.hub_requests += 1
            model = practice.users.get(token_of(self.request.headers.get("authorization")) or "")
            if model is None:
                self.set_status(403)  # what JupyterHub answers for a token it does not know
                self.finish({"status": 403, "message": "Forbidden"})
                return
            self.finish({**model, "session_id": None, "token_id": None})

    return tornado.web.Application([(r"/hub/api/user", WhoAmI)])


def _practice_keyring(path: Path) -> Any:
    """The practice gateway's keyring in its temporary folder: the encrypted file keyring a real gateway uses
    when keyrings.cryptfile is installed, else a plain file one (practice keys are fake, and the folder goes
    with the practice), so practice runs where ``make lab`` or ``make test`` set up, without the hub extra."""
    try:
        from keyrings.cryptfile.cryptfile import CryptFileKeyring
    except ImportError:
        from keyrings.alt.file import PlaintextKeyring

        plain = PlaintextKeyring()
        plain.file_path = str(path)
        return plain
    keyring = CryptFileKeyring()
    keyring.file_path = str(path)
    keyring.time_cost, keyring.memory_cost = 2, 2**12  # practice keys are fake: a cheap key derivation
    keyring.keyring_key = secrets.token_urlsafe(24)
    return keyring
