"""The AI gateway on a real JupyterHub: the hub (pip), configurable-http-proxy (npm), the gateway as the
hub's managed service configured by ``ai-admin gateway hub-config``'s snippet, a sandbox as the provider,
and two real OS users, an admin and an analyst, with real single-user servers started through the hub's
REST API (``LocalProcessSpawner``). tools/real_hub.py sets it all up (as for ``make hub``).

The hub is started once for the module; each test leaves it as it found it (integration saved,
everyone allowed, both users in the group holding the use scope). Everything listens on 127.0.0.1.
Creating OS users needs root: without it the tests skip, except under ``CI=true``, where that fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import real_hub  # noqa: E402  (tools/real_hub.py)

import ai_admin_widgets as aiw  # noqa: E402
from ai_admin_widgets.client import GatewaySettings  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADMIN, ANALYST = "aiwhub-admin", "aiwhub-analyst"
CACHE_SECONDS = 2  # the gateway's --cache-seconds: how long a removed analyst may still use AI
HINT = 4  # characters of a key that answers may show (the hint)
CHROMIUM = Path("/usr/bin/chromium")

if os.geteuid() != 0:
    if os.environ.get("CI") == "true":
        pytest.fail("the real-hub tests create OS users and must run as root in CI", pytrace=False)
    pytest.skip("the real-hub tests create OS users: run them as root", allow_module_level=True)


# -- OS users, the hub, the servers ------------------------------------------------------------- #


def _remove_os_user(name: str) -> None:
    """End the processes of ``name`` (by their ids: our hub started them) and delete the user and its home."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for pid in real_hub.processes_of(uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while real_hub.processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def os_users():
    """The admin and the analyst as OS users (homes under /home), removed afterwards."""
    for name in (ADMIN, ANALYST):
        _remove_os_user(name)  # a run that was killed may have left one
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--user-group", name], check=True)
    try:
        yield {name: pwd.getpwnam(name) for name in (ADMIN, ANALYST)}
    finally:
        for name in (ADMIN, ANALYST):
            _remove_os_user(name)


@pytest.fixture(scope="module")
def sandbox_provider():
    with aiw.Sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def hub(os_users, sandbox_provider):
    """The running hub (its gateway caching token answers CACHE_SECONDS), both users' servers started."""
    users = real_hub.HubUsers(admin=ADMIN, analyst=ANALYST)
    with real_hub.Hub(users, os_users=True, cache_seconds=CACHE_SECONDS) as running:
        admin = os_users[ADMIN]
        real_hub.write_panel_notebook(Path(admin.pw_dir), owner=(admin.pw_uid, admin.pw_gid))
        analyst = os_users[ANALYST]
        real_hub.write_panel_notebook(Path(analyst.pw_dir), owner=(analyst.pw_uid, analyst.pw_gid))
        for name in (ADMIN, ANALYST):
            running.api("POST", f"/users/{name}/server")  # both start at once; spawn() waits
        for name in (ADMIN, ANALYST):
            running.spawn(name)
        yield running


def _admin(hub: real_hub.Hub) -> GatewaySettings:
    """The admin's Settings, with the token the admin's own server calls the gateway with."""
    return GatewaySettings(hub.gateway_url, token=hub.server_token(ADMIN))


@pytest.fixture
def saved(hub, sandbox_provider, marker_key):
    """The OpenAI integration saved through the gateway by the admin, with a marker key; yields the key."""
    key = "sk-sandbox-" + marker_key.removeprefix("sk-")  # the sandbox takes any key with its practice prefix
    _admin(hub).save(aiw.OpenAIIntegration(api_key=key, base_url=sandbox_provider.openai_base_url))
    return key


def _chat(hub: real_hub.Hub, token: str) -> httpx.Response:
    return httpx.post(
        f"{hub.gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {token}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]},
        timeout=30,
    )


def _until(condition, seconds: float, what: str):
    """Poll ``condition`` until it returns something true, or fail after ``seconds``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"{what} did not happen within {seconds:g} s"
        time.sleep(0.2)


# -- a kernel in the analyst's server, through the server's kernels API ----------------------------- #


class RemoteKernel:
    """A kernel of a user's single-user server, driven over the Jupyter server's REST and websocket API."""

    def __init__(self, hub: real_hub.Hub, user: str) -> None:
        self.server = f"{hub.url}/user/{user}"
        self.token = hub.server_token(user)
        answer = httpx.post(f"{self.server}/api/kernels", headers=self._headers, json={"name": "python3"}, timeout=60)
        assert answer.status_code == 201, answer.text
        self.id = answer.json()["id"]

    @property
    def _headers(self) -> dict[str, str]:
        return {"authorization": f"token {self.token}"}

    def run(self, code: str, timeout: float = 180) -> str:
        """Execute ``code``; returns what it printed. Raises AssertionError with the traceback if it raised."""
        return asyncio.run(asyncio.wait_for(self._run(textwrap.dedent(code)), timeout))

    async def _run(self, code: str) -> str:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = self.server.replace("http://", "ws://") + f"/api/kernels/{self.id}/channels"
        connection = await websocket_connect(HTTPRequest(url, headers=self._headers))
        msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
        header = {"msg_id": msg_id, "session": session, "username": "test", "msg_type": "execute_request"}
        message = {
            "header": header | {"version": "5.3", "date": "2026-01-01T00:00:00Z"},
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
            "channel": "shell",
            "buffers": [],
        }
        await connection.write_message(json.dumps(message))
        output, error, replied, idle = [], None, False, False
        try:
            while not (replied and idle):
                raw = await connection.read_message()
                assert raw is not None, "the kernel's websocket closed"
                if isinstance(raw, bytes):
                    continue
                reply = json.loads(raw)
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = reply["header"]["msg_type"], reply["content"]
                if kind == "stream":
                    output.append(content["text"])
                elif kind == "execute_result":
                    output.append(content["data"].get("text/plain", ""))
                elif kind == "error":
                    error = "\n".join(content["traceback"])
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
        finally:
            connection.close()
        assert error is None, error
        return "".join(output)

    def shutdown(self) -> None:
        httpx.delete(f"{self.server}/api/kernels/{self.id}", headers=self._headers, timeout=30)


@pytest.fixture(scope="module")
def analyst_kernel(hub):
    kernel = RemoteKernel(hub, ANALYST)
    yield kernel
    kernel.shutdown()


# -- the analyst uses AI ---------------------------------------------------------------------------- #


def test_the_analysts_kernel_chats_embeds_and_streams_through_the_gateway(hub, saved, analyst_kernel):
    printed = analyst_kernel.run(
        """
        import json, os
        import ai_admin_widgets as aiw
        from ai_admin_widgets import ai
        from openai import OpenAI

        client = OpenAI(base_url=os.environ["AI_ADMIN_GATEWAY_URL"] + "/v1", api_key=os.environ["JUPYTERHUB_API_TOKEN"])
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello there"}])
        chunks = [
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "stream this please"}], stream=True
            )
            if chunk.choices
        ]
        print(json.dumps({
            "settings": type(aiw.AISettings()).__name__,
            "chat": ai.chat("Say hello"),
            "embed": [len(vector) for vector in ai.embed(["one", "two"])],
            "openai": answer.choices[0].message.content,
            "openai_embed": len(client.embeddings.create(model="text-embedding-3-small", input=["x"]).data),
            "stream": chunks,
        }))
        """
    )
    result = json.loads(printed.strip().splitlines()[-1])
    assert result["settings"] == "GatewaySettings"
    assert result["chat"] == "Sandbox reply to: Say hello"
    assert len(result["embed"]) == 2 and result["embed"][0] > 0
    assert result["openai"] == "Sandbox reply to: hello there"
    assert result["openai_embed"] == 1
    assert len([chunk for chunk in result["stream"] if chunk]) > 1  # word by word, not one whole answer
    assert "".join(result["stream"]) == "Sandbox reply to: stream this please"


# -- the analyst cannot read the key -------------------------------------------------------------------- #

_FIND_AS_USER = r"""
import json, os, sys
markers = [marker.encode() for marker in json.loads(sys.argv[1])]
found, files = {marker.decode(): [] for marker in markers}, 0
for top in sys.argv[2:]:
    for folder, _, names in os.walk(top):
        for name in names:
            path = os.path.join(folder, name)
            try:
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with open(path, "rb") as handle:
                    data = handle.read(64 * 2**20)
            except OSError:
                continue
            files += 1
            for marker in markers:
                if marker in data:
                    found[marker.decode()].append(path)
print(json.dumps({"files": files, "found": found}))
"""


def _secret_part(key: str) -> str:
    """The key without its public practice prefix (``sk-sandbox-``, which the sandbox's own texts contain)."""
    return key.removeprefix("sk-sandbox-")


def _pieces(key: str) -> set[str]:
    secret = _secret_part(key)
    return {secret[start : start + HINT + 1] for start in range(len(secret) - HINT)}


def test_the_key_is_in_no_environment_of_the_analysts_processes(hub, saved, analyst_kernel):
    analyst_kernel.run("print('kernel running')")
    pids = real_hub.processes_of(pwd.getpwnam(ANALYST).pw_uid)
    environments = [real_hub.process_environment(pid) for pid in pids]
    assert any("JUPYTERHUB_API_TOKEN" in environment for environment in environments)  # the server and its kernel
    assert len(environments) >= 2
    secret = _secret_part(saved)
    assert not [pid for pid, environment in zip(pids, environments, strict=True) if secret in json.dumps(environment)]


def test_the_key_is_in_no_file_the_analyst_can_read(hub, saved, analyst_kernel):
    """Every file the analyst may open in its home, /tmp, the gateway's folder and the hub's, read as the analyst."""
    analyst_kernel.run("from ai_admin_widgets import ai; ai.chat('leave traces')")
    # A file the analyst may read, with a text of its own: the walk finds what is there to find.
    probe, probe_text = Path(f"/tmp/aiwhub-probe-{uuid.uuid4().hex}"), f"PROBE-{uuid.uuid4().hex}"
    probe.write_text(probe_text)
    probe.chmod(0o644)
    secret = _secret_part(saved)
    tops = [pwd.getpwnam(ANALYST).pw_dir, "/tmp", str(hub.gateway_home), str(hub.folder)]
    walker = ["/usr/bin/python3", "-c", _FIND_AS_USER, json.dumps([secret, probe_text]), *tops]
    try:
        done = subprocess.run(
            ["runuser", "-u", ANALYST, "--", *walker],
            capture_output=True,
            text=True,
            timeout=300,
            cwd="/",
        )
    finally:
        probe.unlink()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["found"][probe_text] == [str(probe)] and result["files"] > 1
    assert result["found"][secret] == []


def test_the_analyst_cannot_look_into_the_gateways_folder(hub, saved):
    """The gateway's folder (settings, audit log, encrypted keyring) is the hub's user's alone, even where users can reach it."""
    assert (hub.gateway_home / "keyring.cfg").exists()
    for command in (["ls", str(hub.gateway_home)], ["cat", str(hub.gateway_home / "keyring.cfg")]):
        done = subprocess.run(["runuser", "-u", ANALYST, "--", *command], capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "Permission denied" in done.stderr, command


def test_no_gateway_answer_to_the_analyst_holds_5_characters_of_the_key(hub, saved):
    token = hub.server_token(ANALYST)
    headers = {"authorization": f"token {token}"}
    answers = [
        httpx.get(f"{hub.gateway_url}/api/{route}", headers=headers, timeout=30)
        for route in ("status", "snapshot", "access", "ai-routes", "can-use-ai", "history", "no-such-route")
    ]
    answers.append(httpx.get(f"{hub.gateway_url}/v1/models", headers=headers, timeout=30))
    answers.append(_chat(hub, token))
    answers.append(httpx.post(f"{hub.gateway_url}/api/test", headers=headers, json={}, timeout=60))
    answers.append(httpx.post(f"{hub.gateway_url}/api/remove", headers=headers, json={}, timeout=60))
    answers.append(
        httpx.post(
            f"{hub.gateway_url}/v1/chat/completions",
            headers={"authorization": f"Bearer {token}"},
            json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
    )
    assert any(answer.status_code == 200 for answer in answers) and any(answer.status_code == 403 for answer in answers)
    text = "\n".join(f"{answer.headers}\n{answer.text}" for answer in answers)
    found = sorted(piece for piece in _pieces(saved) if piece in text)
    assert not found, f"{len(found)} pieces of {HINT + 1} characters of the key in the gateway's answers"


# -- the analyst cannot configure ------------------------------------------------------------------------ #


def test_the_analyst_gets_403_from_the_admin_api_and_a_read_only_panel(hub, saved, sandbox_provider, analyst_kernel):
    token = hub.server_token(ANALYST)
    body = {
        "integration": {
            "provider": "openai",
            "api_key": "sk-sandbox-analyst",
            "base_url": sandbox_provider.openai_base_url,
        }
    }
    refused = httpx.post(
        f"{hub.gateway_url}/api/save", headers={"authorization": f"token {token}"}, json=body, timeout=60
    )
    assert refused.status_code == 403
    assert "custom:ai-admin:configure" in refused.text
    printed = analyst_kernel.run(
        """
        import ai_admin_widgets as aiw
        panel = aiw.AISettings().panel()
        print(panel.visible_text())
        print("buttons:", [name for name in ("aiw-add", "aiw-edit", "aiw-test", "aiw-remove") if panel.offered(name)])
        """
    )
    assert "You must be assigned the Admin account type to configure the OpenAI integration." in printed
    assert "custom:ai-admin:configure" in printed  # the reason: the role that grants it
    assert "OpenAI · gpt-4o" in printed
    assert "buttons: []" in printed
    assert _admin(hub).status().configured  # nothing changed


# -- removed, the analyst loses AI within the cache time ------------------------------------------------- #


def test_left_out_of_who_may_use_ai_in_the_panel_the_analyst_loses_ai(hub, saved):
    token = hub.server_token(ANALYST)
    assert _chat(hub, token).status_code == 200
    panel = _admin(hub).panel()
    panel.press("aiw-access-toggle")  # Who may use AI's details: the allow-lists' editor
    panel.type("aiw-allowed-users", ADMIN)
    panel.press("aiw-apply-access")
    try:
        assert ADMIN in _admin(hub).access_lists().allowed_users
        _until(lambda: _chat(hub, token).status_code == 403, CACHE_SECONDS + 10, "the analyst losing AI")
        assert _chat(hub, hub.server_token(ADMIN)).status_code == 200
    finally:
        _admin(hub).set_allowed(users=[], groups=[])
    _until(lambda: _chat(hub, token).status_code == 200, CACHE_SECONDS + 10, "the analyst getting AI back")


def test_taken_out_of_the_role_the_analyst_loses_ai_within_the_cache_time(hub, saved):
    token = hub.server_token(ANALYST)
    assert _chat(hub, token).status_code == 200
    status, _ = hub.api("DELETE", f"/groups/{real_hub.USE_GROUP}/users", {"users": [ANALYST]})
    assert status == 200
    try:
        # Within the gateway's cache time (and a margin for a busy machine), far below the default 30 s.
        _until(lambda: _chat(hub, token).status_code == 403, CACHE_SECONDS + 10, "the analyst losing AI")
        assert "custom:ai-admin:use" in _chat(hub, token).text
    finally:
        hub.api("POST", f"/groups/{real_hub.USE_GROUP}/users", {"users": [ANALYST]})
    _until(lambda: _chat(hub, token).status_code == 200, CACHE_SECONDS + 10, "the analyst getting AI back")


# -- the gateway killed, the hub gone ----------------------------------------------------------------------- #


def test_the_gateway_killed_is_restarted_by_the_hub_with_the_same_integration(hub, saved):
    before = _admin(hub).status()
    pid = hub.gateway_pid()
    os.kill(pid, signal.SIGKILL)
    _until(lambda: _gateway_down(hub), 30, "the gateway stopping")
    # The hub polls its managed services (every 30 s by default) and starts one that has exited.
    hub.wait_gateway(time.monotonic() + 120)
    assert hub.gateway_pid() != pid
    after = _admin(hub).status()
    assert after.configured and after.revision == before.revision
    assert [model.model_dump() for model in after.models] == [model.model_dump() for model in before.models]
    answer = _chat(hub, hub.server_token(ANALYST))
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "Sandbox reply to: hello"


def _gateway_down(hub: real_hub.Hub) -> bool:
    try:
        httpx.get(f"{hub.gateway_url}/api/status", timeout=2)
    except httpx.TransportError:
        return True
    return False


def test_a_gateway_that_cannot_reach_its_hub_answers_503(hub, tmp_path):
    """A second gateway, its hub API a port where nothing listens: every caller gets 503, never an answer."""
    port, dead = real_hub.free_port(), real_hub.free_port()
    environment = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/ai-gateway/",
        "JUPYTERHUB_SERVICE_NAME": "ai-gateway",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{dead}/hub/api",
        "JUPYTERHUB_API_TOKEN": "service-token-of-a-dead-hub",
        "KEYRING_CRYPTFILE_PASSWORD": "a password for this test only",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(tmp_path / "gateway")],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/services/ai-gateway"

        def answer() -> httpx.Response | None:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                return httpx.get(f"{url}/api/status", headers={"authorization": "token analyst-token"}, timeout=30)
            except httpx.TransportError:
                return None

        _until(answer, 60, "the second gateway answering")
        status = answer()
        assert status is not None and status.status_code == 503
        assert "JupyterHub" in status.json()["error"]["message"]  # and what to do; never "allowed"
        chat = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"authorization": f"Bearer {hub.server_token(ANALYST)}"},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert chat.status_code == 503 and chat.json()["error"]["message"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_health_answers_through_the_hubs_proxy_without_a_token_and_metrics_need_read_metrics(hub, saved):
    """health/live and health/ready at the hub's public address, as a load balancer probes them; /metrics refuses
    a token without read:metrics (the analyst's server token) as the hub's own /hub/metrics does."""
    public = f"{hub.url}/services/ai-gateway"
    live = httpx.get(f"{public}/health/live", timeout=30)
    assert live.status_code == 200 and live.json() == {"live": True}
    ready = httpx.get(f"{public}/health/ready", timeout=30)
    assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
    assert saved not in ready.text and saved[-HINT:] not in ready.text
    assert httpx.get(f"{public}/metrics", timeout=30).status_code == 401
    refused = httpx.get(
        f"{public}/metrics", headers={"authorization": f"token {hub.server_token(ANALYST)}"}, timeout=30
    )
    assert refused.status_code == 403 and "read:metrics" in refused.json()["error"]["message"]


# -- the admin and the analyst, in JupyterLab in Chromium, logged in through the hub --------------------------- #

ROW_BUTTONS = ("aiw-add", "aiw-edit", "aiw-test", "aiw-remove")


@contextmanager
def _panel_in_jupyterlab(hub: real_hub.Hub, user: str) -> Iterator[Any]:
    """Chromium logged in to the hub as ``user``, ai_settings.ipynb opened in JupyterLab and run: the page,
    once the panel shows its row."""
    import lab_browser  # tools/lab_browser.py, on the path as real_hub is
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = lab_browser.launch_chromium(driver)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(120_000)
            page.goto(f"{hub.url}/hub/login")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", hub.users.password(user))
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url(f"**/user/{user}/lab**")
            page.goto(f"{hub.url}/user/{user}/lab/workspaces/hub-test/tree/ai_settings.ipynb?reset")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            lab_browser.wait_kernel_idle(page, timeout_ms=180_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_selector(".aiw-panel .aiw-row >> visible=true", timeout=180_000)
            yield page
        finally:
            browser.close()


@pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("CI") != "true", reason="no /usr/bin/chromium")
def test_the_admin_adds_the_integration_in_the_panel_in_jupyterlab_logged_in_through_the_hub(hub, sandbox_provider):
    from playwright.sync_api import expect

    _admin(hub).remove()
    key = "sk-sandbox-" + "".join(uuid.uuid4().hex.upper().translate(str.maketrans("0123456789", "GHIJKLMNOP")))
    with _panel_in_jupyterlab(hub, ADMIN) as page:
        page.locator(".aiw-panel .aiw-row button.aiw-add").first.click()
        form = page.locator(".aiw-panel dialog.aiw-form")
        expect(form).to_be_visible(timeout=120_000)
        form.locator("input.aiw-openai-base-url").fill(sandbox_provider.openai_base_url)
        form.locator("input.aiw-openai-api-key").fill(key)
        form.locator("button.aiw-save").click()
        expect(page.locator(".aiw-panel .aiw-status").first).to_contain_text("OpenAI", timeout=120_000)
        expect(form).to_have_count(0, timeout=120_000)
        expect(page.locator(".aiw-panel .aiw-row button.aiw-edit")).to_be_visible(timeout=120_000)
        shown = page.locator(".aiw-panel").first.inner_text()
    status_after = _admin(hub).status()
    assert status_after.configured and status_after.updated_by == ADMIN
    assert not [piece for piece in _pieces(key) if piece in shown]
    answer = _chat(hub, hub.server_token(ANALYST))
    assert answer.status_code == 200


@pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("CI") != "true", reason="no /usr/bin/chromium")
def test_the_analysts_panel_in_jupyterlab_shows_the_integration_and_offers_nothing_to_change(hub, saved):
    from playwright.sync_api import expect

    with _panel_in_jupyterlab(hub, ANALYST) as page:
        view = page.locator(".aiw-panel").first
        expect(view.locator(".aiw-status").first).to_contain_text("OpenAI", timeout=120_000)
        expect(view).to_contain_text("You must be assigned the Admin account type to configure the OpenAI integration.")
        for css_class in ROW_BUTTONS:
            expect(view.locator(f".aiw-row .{css_class}")).to_have_count(0)
        assert view.locator("dialog[open]").count() == 0
    assert _admin(hub).status().configured  # nothing changed
