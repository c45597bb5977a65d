"""A real JupyterHub on 127.0.0.1 with the AI gateway as its managed service: ``make hub``, and tests/test_hub.py.

What it runs (JupyterHub docs: "Services", "Authenticators" (shared-password), "Spawners"):

* JupyterHub (pip) and configurable-http-proxy (npm, installed by the Makefile into
  ``.venv/node/``), each port a free one on 127.0.0.1, the hub's database, cookie secret,
  configuration and log in a temporary folder of its own (mode 700);
* the gateway as the hub's managed service, configured by the snippet ``ai-admin gateway
  hub-config`` prints, its folder beside that one (``<folder>-gateway``, made by the gateway
  itself, where users could reach it as they can ``/srv/ai-gateway``), its keyring password in
  the hub's environment only, allowed to call 127.0.0.1 (``AI_ADMIN_GATEWAY_ALLOW_HOSTS``) so that a :class:`~ai_admin_widgets.Sandbox`
  can be the provider;
* two users, an admin (a hub admin, in the snippet's configure role) and an analyst, logging in
  with JupyterHub's shared-password authenticator; both in the group ``ai-users``, which holds
  the use scope (taken off what the snippet gives every user), so that a user leaves the role by
  leaving the group through the hub's REST API;
* single-user servers (JupyterLab, a kernel, ipywidgets, the project, ``openai``) from the
  *runtime*: a venv built with Debian's ``/usr/bin/python3`` under ``/var/tmp`` (readable by
  every OS user, unlike a checkout under ``/root``), keyed by a hash of the checkout's path and
  its pyproject.toml, and rebuilt only when that changes; the project is installed into it
  non-editable, again only when its sources change. The hub and the gateway run from the same
  venv, as on a real hub.

Spawners: ``LocalProcessSpawner`` with real OS users (the tests create them, as root), or,
for ``make hub`` by default, ``SimpleLocalProcessSpawner`` (every server as the user running
the hub, homes in the temporary folder; nothing is added to the machine's users).

    python tools/real_hub.py            # make hub: prints the login URL, the users, the passwords
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: configurable-http-proxy, installed by the Makefile (a prerequisite of `make test` and `make hub`).
PROXY = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
#: The interpreter the runtime venv is built with: one that every OS user may execute.
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: What the runtime holds besides the project's ``hub`` and ``lab`` extras (hatchling: to build the project).
RUNTIME_EXTRAS = ("openai>=1.40", "hatchling>=1.18")
SERVICE = "ai-gateway"
OPERATOR = "hub-operator"
USE_GROUP = "ai-users"


class HubError(RuntimeError):
    """The hub or its runtime could not be set up or started; the message says which step and where its log is."""


# -- the runtime venv ------------------------------------------------------------------------ #


def _digest(paths: list[Path]) -> str:
    hasher = hashlib.sha256()
    for path in paths:
        hasher.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()[:16]


def _sources() -> list[Path]:
    return sorted(
        path for path in (ROOT / "ai_admin_widgets").rglob("*") if path.is_file() and "__pycache__" not in path.parts
    )


def _safe_folder(path: Path) -> None:
    """Refuse a folder someone else made (it is in a world-writable place and we will run its programs)."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise HubError(f"{path} is not a folder of ours that only we may write to; remove it and try again.")


def _run(command: list[str], log: Path) -> None:
    # Without the test run's PYTHONPATH (.venv/test-only): pip would take what it finds there as installed.
    environment = {
        name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    with log.open("ab") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=environment, check=False)
    if done.returncode:
        raise HubError(f"{' '.join(command[:4])} ... failed; see {log}")


def runtime(base: Path = Path("/var/tmp")) -> Path:
    """The runtime venv's folder, built or brought up to date (the project reinstalled if its sources changed).

    Built once per checkout and pyproject.toml (about a minute here; the packages come from pip's index), then
    only the project is reinstalled (seconds) when a file under ai_admin_widgets/ changes.
    Every file is readable and every program executable by all users (umask 022).

    Raises:
        HubError: /usr/bin/python3 is missing, the folder is not ours, or pip failed (its log is named).
    """
    from filelock import FileLock

    if not SYSTEM_PYTHON.exists():
        raise HubError(f"{SYSTEM_PYTHON} is missing: the users' servers need a Python every user may run.")
    # One per checkout (two checkouts' sources never take turns in one venv) and per pyproject.toml.
    key = hashlib.sha256(f"{ROOT}\0{_digest([ROOT / 'pyproject.toml'])}".encode()).hexdigest()[:16]
    venv = base / f"ai-admin-widgets-hub-{key}"
    old_umask = os.umask(0o022)
    try:
        with FileLock(str(venv) + ".lock", timeout=1800):
            log = venv.with_name(venv.name + ".log")
            built = venv / ".built"
            if venv.exists():
                _safe_folder(venv)
            if not built.exists():
                shutil.rmtree(venv, ignore_errors=True)
                log.write_bytes(b"")
                _run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], log)
                _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], log)
                _run(
                    [
                        str(venv / "bin" / "python"),
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        f"{ROOT}[hub,lab]",
                        *RUNTIME_EXTRAS,
                    ],
                    log,
                )
                imports = "import keyrings.cryptfile.cryptfile, jupyterhub, jupyterlab, ipykernel, ipywidgets, openai"
                _run([str(venv / "bin" / "python"), "-c", imports], log)
                built.write_text("")
            stamp = venv / f".source-{_digest(_sources())}"
            if not stamp.exists():
                for old in venv.glob(".source-*"):
                    old.unlink()
                _run(
                    [
                        str(venv / "bin" / "python"),
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--no-deps",
                        "--no-build-isolation",
                        "--force-reinstall",
                        str(ROOT),
                    ],
                    log,
                )
                stamp.write_text("")
            overrides = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
            if not overrides.exists():
                overrides.parent.mkdir(parents=True, exist_ok=True)
                overrides.write_text(json.dumps(LAB_SETTINGS, indent=1))
    finally:
        os.umask(old_umask)
    return venv


#: JupyterLab's settings in the runtime (its overrides.json): no news or update checks (nothing
#: but 127.0.0.1 is contacted), widget state saved, every cell rendered (the browser test waits on them).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}
#: What every single-user server is started with: no update checks; ``window.jupyterapp`` for tests that wait on it.
SERVER_ARGS = ("--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True")
#: A notebook with the panel, put in the admin's home.
PANEL_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": [
                "import ai_admin_widgets as aiw\n",
                "\n",
                "aiw.AISettings().panel()  # the AI gateway's, on this hub",
            ],
        }
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


# -- the hub ------------------------------------------------------------------------------------ #


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class HubUsers:
    """The hub's two users and the shared passwords (the admin's is JupyterHub's admin_password, 32+ characters)."""

    admin: str = "admin"
    analyst: str = "analyst"
    user_password: str = field(default_factory=lambda: "analyst-" + secrets.token_urlsafe(9))
    admin_password: str = field(default_factory=lambda: "admin-" + secrets.token_urlsafe(27))

    def password(self, name: str) -> str:
        return self.admin_password if name == self.admin else self.user_password


def _request(
    url: str, *, method: str = "GET", token: str | None = None, body: Any = None, timeout: float = 30
) -> tuple[int, Any]:
    """``(status, parsed JSON or text)`` of one HTTP request; an HTTP error status is returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"token {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


class Hub:
    """A running JupyterHub with the gateway as its service (a context manager; :meth:`stop` is safe twice).

    Args:
        users: the admin and the analyst (default: ``admin`` and ``analyst``, fresh passwords).
        os_users: True: ``LocalProcessSpawner``, each server as the OS user of its name (they must
            exist; root only). False: ``SimpleLocalProcessSpawner``, every server as this process's user.
        cache_seconds: the gateway's ``--cache-seconds`` (how long it keeps the hub's answer about a token).
        venv: the runtime (default: :func:`runtime`).
    Raises:
        HubError: from :meth:`start`, when a step fails (the hub's log is named).
    """

    def __init__(
        self,
        users: HubUsers | None = None,
        *,
        os_users: bool = False,
        cache_seconds: float = 30,
        venv: Path | None = None,
    ) -> None:
        self.users = users or HubUsers()
        self.os_users = os_users
        self.cache_seconds = cache_seconds
        self.venv = venv
        self.folder = Path(tempfile.mkdtemp(prefix="ai-admin-hub-"))  # mode 700: the hub's user only
        # Beside the hub's folder, not in it: where users may reach it, as /srv/ai-gateway is (the gateway makes it).
        self.gateway_home = self.folder.with_name(self.folder.name + "-gateway")
        self.log = self.folder / "jupyterhub.log"
        self.operator_token = secrets.token_hex(24)
        self.keyring_password = secrets.token_urlsafe(24)
        self.ports = {name: free_port() for name in ("proxy", "proxy_api", "hub", "gateway")}
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Hub(url={self.url!r}, folder={str(self.folder)!r})"

    @property
    def url(self) -> str:
        """The hub's public address (the proxy): ``{url}/hub/login`` is the login page."""
        return f"http://127.0.0.1:{self.ports['proxy']}"

    @property
    def hub_api(self) -> str:
        return f"http://127.0.0.1:{self.ports['hub']}/hub/api"

    @property
    def gateway_url(self) -> str:
        """The gateway as users' servers reach it (``$AI_ADMIN_GATEWAY_URL`` in their environment)."""
        return f"http://127.0.0.1:{self.ports['gateway']}/services/{SERVICE}"

    def home(self, name: str) -> Path:
        """The home folder of user ``name``'s server."""
        if self.os_users:
            import pwd

            return Path(pwd.getpwnam(name).pw_dir)
        return self.folder / "home" / name

    def config(self) -> str:
        """The hub's ``jupyterhub_config.py``: this hub's settings, the gateway's snippet, then what the snippet leaves to us."""
        from ai_admin_widgets.gateway.hubconfig import hub_config

        assert self.venv is not None
        users, q = self.users, json.dumps
        spawner = "localprocess" if self.os_users else "simple"
        args = [*SERVER_ARGS, *(["--allow-root"] if not self.os_users and os.getuid() == 0 else [])]
        snippet = hub_config(
            name=SERVICE,
            url=f"http://127.0.0.1:{self.ports['gateway']}",
            home=str(self.gateway_home),
            admins=[users.admin],
            python=str(self.venv / "bin" / "python"),
        )
        return f"""# A practice hub on 127.0.0.1, written by tools/real_hub.py.
c = get_config()  # noqa
c.JupyterHub.bind_url = "{self.url}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{self.ports["hub"]}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.ports["proxy_api"]}"
c.ConfigurableHTTPProxy.command = [{q(str(PROXY))}]
c.JupyterHub.db_url = {q("sqlite:///" + str(self.folder / "jupyterhub.sqlite"))}
c.JupyterHub.cookie_secret_file = {q(str(self.folder / "jupyterhub_cookie_secret"))}
c.JupyterHub.pid_file = {q(str(self.folder / "jupyterhub.pid"))}
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {q(users.user_password)}
c.SharedPasswordAuthenticator.admin_password = {q(users.admin_password)}
c.Authenticator.admin_users = {{{q(users.admin)}}}
c.Authenticator.allowed_users = {{{q(users.admin)}, {q(users.analyst)}}}
c.JupyterHub.spawner_class = "{spawner}"
c.SimpleLocalProcessSpawner.home_dir_template = {q(str(self.folder / "home" / "{username}"))}
c.Spawner.cmd = [{q(str(self.venv / "bin" / "jupyterhub-singleuser"))}]
c.Spawner.args = {q(args)}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.JupyterHub.load_groups = {{{q(USE_GROUP)}: {{"users": [{q(users.admin)}, {q(users.analyst)}]}}}}
c.JupyterHub.services = []
c.JupyterHub.load_roles = []
c.JupyterHub.custom_scopes = {{}}
c.Spawner.environment = {{}}

{snippet}
# This hub's own additions. The gateway keeps the hub's answer about a token {self.cache_seconds:g} s.
for service in c.JupyterHub.services:
    if service["name"] == {q(SERVICE)}:
        service["command"] = [*service["command"], "--cache-seconds", "{self.cache_seconds:g}"]
# AI is for the group {USE_GROUP!r} (leaving it through the REST API is leaving the role), not for every user.
# The snippet gave every user the use scope: through extra_user_scopes (JupyterHub 6) or the "user" role.
_extra = c.JupyterHub.extra_user_scopes
_extra = _extra.get_value(set()) if hasattr(_extra, "get_value") else set(_extra)
c.JupyterHub.extra_user_scopes = _extra - {{"custom:ai-admin:use"}}
for role in c.JupyterHub.load_roles:
    if role["name"] == "user":
        role["scopes"] = [scope for scope in role["scopes"] if scope != "custom:ai-admin:use"]
c.JupyterHub.load_roles.append({{"name": "ai-users", "scopes": ["custom:ai-admin:use"], "groups": [{q(USE_GROUP)}]}})
# A service of ours that starts and stops servers and changes groups through the REST API.
c.JupyterHub.services.append({{"name": {q(OPERATOR)}, "api_token": {q(self.operator_token)}}})
c.JupyterHub.load_roles.append(
    {{
        "name": {q(OPERATOR)},
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "admin:groups"],
        "services": [{q(OPERATOR)}],
    }}
)
"""

    def start(self, timeout: float = 180) -> Hub:
        """Start the hub (it starts the proxy and the gateway) and wait until the hub and the gateway answer."""
        if self.venv is None:
            self.venv = runtime()
        if not PROXY.exists():
            raise HubError(
                f"configurable-http-proxy is not installed at {PROXY}: `make hub` or `make test` installs it (npm)"
            )
        config = self.folder / "jupyterhub_config.py"
        config.write_text(self.config())
        config.chmod(0o600)
        for name in (self.users.admin, self.users.analyst):
            if not self.os_users:
                self.home(name).mkdir(parents=True, exist_ok=True)
        environment = {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", str(self.folder)),
            "LANG": "C.UTF-8",
            "AI_ADMIN_GATEWAY_KEYRING_PASSWORD": self.keyring_password,
            "AI_ADMIN_GATEWAY_ALLOW_HOSTS": "127.0.0.1",
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "jupyterhub"), "-f", str(config)],
                cwd=self.folder,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        self._wait(lambda: self.api("GET", "/")[0] == 200, deadline, "the hub's API")
        self._wait(lambda: _request(f"{self.url}/hub/api/")[0] == 200, deadline, "the proxy")
        self.wait_gateway(deadline)
        return self

    def _wait(self, ready: Any, deadline: float, what: str) -> None:
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise HubError(
                    f"JupyterHub exited ({self.process.returncode}) before {what} answered:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise HubError(f"{what} did not answer in time:\n{self.log_tail()}")
            time.sleep(0.25)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the hub's log (which holds no key: the gateway logs none)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_gateway(self, deadline: float) -> None:
        """Wait until the gateway answers (a request without a token: 401)."""
        self._wait(lambda: _request(f"{self.gateway_url}/api/status", timeout=5)[0] == 401, deadline, "the AI gateway")

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``(status, JSON)`` of a request to the hub's REST API (``path`` after ``/hub/api``) as our operator service."""
        return _request(f"{self.hub_api}{path}", method=method, token=self.operator_token, body=body)

    def spawn(self, name: str, timeout: float = 240) -> dict[str, Any]:
        """Start ``name``'s server through the REST API and wait until the hub says it is ready; returns its model."""
        status, answer = self.api("POST", f"/users/{name}/server")
        if status not in (201, 202, 400):  # 400: it is already running
            raise HubError(f"starting {name}'s server: {status} {answer}; see {self.log}")
        deadline = time.monotonic() + timeout
        while True:
            status, model = self.api("GET", f"/users/{name}")
            server = (model or {}).get("servers", {}).get("", {}) if status == 200 else {}
            if server.get("ready"):
                return dict(server)
            if time.monotonic() > deadline or (status == 200 and not server.get("pending") and not server):
                raise HubError(f"{name}'s server did not start: {server or model}; see {self.log}")
            time.sleep(0.5)

    def server_pid(self, name: str) -> int:
        """The process id of ``name``'s running server (from its spawner's state)."""
        _, model = self.api("GET", f"/users/{name}")
        return int(model["servers"][""]["state"]["pid"])

    def server_token(self, name: str) -> str:
        """The JupyterHub token ``name``'s server (and its kernels) calls with: ``$JUPYTERHUB_API_TOKEN`` of its process."""
        return process_environment(self.server_pid(name))["JUPYTERHUB_API_TOKEN"]

    def gateway_pid(self) -> int:
        """The process id of the gateway (the one listening on its port)."""
        for pid in _pids():
            with contextlib.suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"serve" in command and str(self.gateway_home).encode() in command:
                    return pid
        raise HubError("the AI gateway's process is not running")

    def stop(self) -> None:
        """Stop the hub (it stops its servers, the gateway and the proxy), then delete its folder.

        A hub that exited on an error leaves the proxy (and perhaps the gateway) running: they are
        ended too, by the ids the hub's pid file and the gateway's command line give.
        """
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in self._leftovers():
            _end(pid)
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.gateway_home, ignore_errors=True)

    def _leftovers(self) -> list[int]:
        found = []
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.folder / "jupyterhub-proxy.pid").read_text())
            if b"configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        with contextlib.suppress(HubError):
            found.append(self.gateway_pid())
        return found

    def __enter__(self) -> Hub:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _end(pid: int, timeout: float = 10) -> None:
    """SIGTERM process ``pid``, then SIGKILL if it is still there after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def _pids() -> Iterator[int]:
    return (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())


def process_environment(pid: int) -> dict[str, str]:
    """The environment process ``pid`` was started with (``/proc/<pid>/environ``)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.split("=", 1) for entry in raw.decode("utf-8", "replace").split("\0") if "=" in entry)


def processes_of(uid: int) -> list[int]:
    """The ids of the processes whose real user id is ``uid``."""
    found = []
    for pid in _pids():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}").stat().st_uid == uid:
                found.append(pid)
    return found


def write_panel_notebook(folder: Path, owner: tuple[int, int] | None = None) -> Path:
    """``folder/ai_settings.ipynb``: one cell that shows the panel; owned by ``owner`` (uid, gid) if given."""
    path = folder / "ai_settings.ipynb"
    path.write_text(json.dumps(PANEL_NOTEBOOK, indent=1))
    if owner is not None:
        os.chown(path, *owner)
    return path


# -- make hub ----------------------------------------------------------------------------------- #


def main() -> int:
    """``make hub``: a hub, the gateway and a sandbox until Ctrl-C; prints the login URL, the users and the passwords."""
    import threading

    import ai_admin_widgets as aiw

    stop = threading.Event()
    for sign in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sign, lambda *_: stop.set())
    print("Preparing the hub's runtime (the first time takes a few minutes) ...", flush=True)
    try:
        venv = runtime()
        with aiw.Sandbox() as sandbox, Hub(venv=venv) as hub:
            users = hub.users
            write_panel_notebook(hub.home(users.admin))
            print(
                f"JupyterHub with the AI gateway: {hub.url}/hub/login\n"
                f"  admin    {users.admin:8}  password {users.admin_password}  (may configure the integration)\n"
                f"  analyst  {users.analyst:8}  password {users.user_password}  (may use AI)\n"
                f"As the admin, open ai_settings.ipynb, run it, and Add an OpenAI integration with the sandbox:\n"
                f"  Base URL {sandbox.openai_base_url}, API Key: any key that starts with sk-sandbox-\n"
                f"The gateway: {hub.gateway_url} (folder {hub.gateway_home}); the hub's log: {hub.log}\n"
                "Ctrl-C stops the hub, its servers, the gateway and the sandbox.",
                flush=True,
            )
            while not stop.wait(1):
                if hub.process is None or hub.process.poll() is not None:
                    print(f"JupyterHub exited; see {hub.log}", file=sys.stderr)
                    return 1
    except HubError as error:
        print(f"make hub: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
