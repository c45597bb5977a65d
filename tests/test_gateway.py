"""The AI gateway, end to end without a real JupyterHub: the practice gateway (a real tornado server, a
sandbox as the provider, a stand-in for the hub's token API that HubAuth talks to as to a hub), the
admin API through GatewaySettings, and /v1 through the official openai package, unmodified.

Everything listens on 127.0.0.1. A real hub, the Helm example and the benchmarks are later steps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from openai import OpenAI

import ai_admin_widgets as aiw
from ai_admin_widgets.client import GatewaySettings, GatewayUnavailable
from ai_admin_widgets.gateway.practice import Practice
from ai_admin_widgets.models import (
    KEEP_SAVED_KEY,
    ConcurrentChange,
    NotConfigured,
    PermissionDenied,
    SavedKeyUnavailable,
    VerificationFailed,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]


def _environment(**extra: str) -> dict[str, str]:
    """The test's environment for a child process, without any hub or gateway variable unless given."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("JUPYTERHUB_", "AI_ADMIN_", "KEYRING_CRYPTFILE")) and "PROXY" not in name.upper()
    }
    return environment | extra


@pytest.fixture
def practice():
    """A running practice gateway with its own sandbox, stopped after the test."""
    with Practice() as running:
        yield running


def _settings(practice: Practice, who: str) -> GatewaySettings:
    return GatewaySettings(practice.gateway_url, token=practice.tokens[who])


def _save_openai(practice: Practice, key: str | None = None) -> None:
    sandbox = practice.sandbox
    _settings(practice, "admin").save(
        aiw.OpenAIIntegration(api_key=key or sandbox.openai_api_key, base_url=sandbox.openai_base_url)
    )


def _openai(practice: Practice, who: str = "analyst", **options) -> OpenAI:
    return OpenAI(base_url=practice.gateway_url + "/v1", api_key=practice.tokens[who], max_retries=0, **options)


def _api(practice: Practice, method: str, path: str, who: str | None = "admin", **options) -> httpx.Response:
    headers = {"authorization": f"token {practice.tokens[who]}"} if who else {}
    return httpx.request(method, f"{practice.gateway_url}/{path}", headers=headers, timeout=30, **options)


# --------------------------------------------------------------------------- #
# ai-admin gateway practice / serve / hub-config, as commands
# --------------------------------------------------------------------------- #


def test_practice_prints_its_json_line_first_and_serves_both_tokens():
    process = subprocess.Popen(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "practice"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    try:
        first = json.loads(process.stdout.readline())
        assert set(first) == {"gateway_url", "tokens"} and set(first["tokens"]) == {"admin", "analyst"}
        assert first["gateway_url"].startswith("http://127.0.0.1:")
        assert all(token.startswith(f"practice-{who}-") for who, token in first["tokens"].items())
        for who, name, admin in (("admin", "practice-admin", True), ("analyst", "practice-analyst", False)):
            settings = GatewaySettings(first["gateway_url"], token=first["tokens"][who])
            snapshot = settings.snapshot()
            assert snapshot.problem is None
            assert (snapshot.user, snapshot.admin.admin) == (name, admin)
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors


def test_practice_refuses_to_run_beside_a_real_hub():
    done = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "practice"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(JUPYTERHUB_API_URL="http://127.0.0.1:8081/hub/api"),
    )
    assert done.returncode == 3 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "real JupyterHub" in done.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_refuses_to_start_without_a_safe_keyring(tmp_path):
    port = _free_port()
    done = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(tmp_path / "gateway")],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
            JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
            JUPYTERHUB_API_URL="http://127.0.0.1:8081/hub/api",
            JUPYTERHUB_API_TOKEN="service-token",
        ),
    )
    assert done.returncode == 3
    assert len(done.stderr.splitlines()) == 1 and "KEYRING_CRYPTFILE_PASSWORD" in done.stderr
    with socket.socket() as probe:  # nothing listens
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(("option", "value"), [("--usage-keep", "-1"), ("--usage-max-mib", "0")])
def test_serve_refuses_a_usage_log_bound_it_cannot_keep(tmp_path, option, value):
    done = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(tmp_path), option, value],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{_free_port()}",
            JUPYTERHUB_API_URL="http://127.0.0.1:8081/hub/api",
            KEYRING_CRYPTFILE_PASSWORD="a service password",
        ),
    )
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1 and option in done.stderr


def test_serve_runs_as_a_managed_service_with_the_hubs_environment(practice, tmp_path):
    """The served gateway asks the hub named by JUPYTERHUB_API_URL (here the practice's stand-in) and serves under the prefix."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(tmp_path / "gateway")],
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
            JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
            JUPYTERHUB_API_URL=practice.hub_api_url,
            JUPYTERHUB_API_TOKEN="service-token",
            JUPYTERHUB_SERVICE_NAME="ai-gateway",  # HubAuth then requires access:services!service=ai-gateway
            KEYRING_CRYPTFILE_PASSWORD="a service password",
        ),
    )
    try:
        assert any("AI gateway on" in process.stderr.readline() for _ in range(20))  # it says so once it listens
        url = f"http://127.0.0.1:{port}/services/ai-gateway"
        snapshot = GatewaySettings(url, token=practice.tokens["analyst"]).snapshot()
        assert snapshot.problem is None and snapshot.user == "practice-analyst" and not snapshot.admin.admin
        assert snapshot.keyring.backend.startswith("CryptFileKeyring") or "Crypt" in snapshot.keyring.backend
        assert httpx.get(f"{url}/api/status", timeout=10).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def _hub_config(*options: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "hub-config", *options],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _exec_config(snippet: str, before: str = ""):
    """``before`` then the snippet, run as JupyterHub runs jupyterhub_config.py: against a traitlets Config named c."""
    from traitlets.config import Config

    config = Config()
    exec(compile(before + "\n" + snippet, "jupyterhub_config.py", "exec"), {"c": config})
    return config


def _value(config, section: str, name: str, empty):
    value = config[section][name]
    return value.get_value(empty) if hasattr(value, "get_value") else value


def test_hub_config_is_python_that_sets_the_service_scopes_roles_and_environment(monkeypatch):
    snippet = _hub_config("--admin", "alice")
    monkeypatch.setenv("AI_ADMIN_GATEWAY_KEYRING_PASSWORD", "from the hub's environment")
    config = _exec_config(snippet)
    (service,) = _value(config, "JupyterHub", "services", [])
    assert service["name"] == "ai-gateway" and service["url"] == "http://127.0.0.1:10101"
    assert service["command"][1:5] == ["-m", "ai_admin_widgets", "gateway", "serve"]
    assert service["environment"]["KEYRING_CRYPTFILE_PASSWORD"] == "from the hub's environment"
    assert set(_value(config, "JupyterHub", "custom_scopes", {})) == {
        "custom:ai-admin:configure",
        "custom:ai-admin:use",
    }
    roles = {role["name"]: role for role in _value(config, "JupyterHub", "load_roles", [])}
    assert "custom:ai-admin:configure" in roles["ai-admin-configure"]["scopes"]
    assert roles["ai-admin-configure"]["users"] == ["alice"]
    scopes = config.Spawner.server_token_scopes
    assert "access:services!service=ai-gateway" in scopes and "custom:ai-admin:use" in scopes
    assert _value(config, "Spawner", "environment", {}) == {
        "AI_ADMIN_GATEWAY_URL": "http://127.0.0.1:10101/services/ai-gateway"
    }
    names: dict = {"c": type(config)()}
    exec(compile(snippet, "jupyterhub_config.py", "exec"), names)
    assert not [name for name in names if name.startswith("_ai_gateway")]  # no name left behind


def test_hub_config_takes_the_address_users_servers_call_the_gateway_at():
    snippet = _hub_config("--url", "http://hub:10101", "--gateway-url", "https://hub.example.org/services/ai-gateway/")
    config = _exec_config(snippet)
    assert _value(config, "Spawner", "environment", {})["AI_ADMIN_GATEWAY_URL"] == (
        "https://hub.example.org/services/ai-gateway"
    )
    assert _value(config, "JupyterHub", "services", [])[0]["url"] == "http://hub:10101"
    help_text = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "hub-config", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
    ).stdout
    assert "--gateway-url" in help_text and "through the hub's proxy" in " ".join(help_text.split())
    from ai_admin_widgets.gateway.hubconfig import hub_config

    with pytest.raises(ValueError, match="--gateway-url"):
        hub_config(gateway_url="hub.example.org/services/ai-gateway")


#: The "user" role as an operator may have defined it above the snippet, and the user role's scopes the hub then has.
_USER_ROLES = {
    "none": "",
    "with scopes": 'c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "read:users:activity"]}]',
    "without scopes": 'c.JupyterHub.load_roles.append({"name": "user", "description": "Everyone."})',
    "extra scopes": 'c.JupyterHub.extra_user_scopes = {"read:users:activity"}',
}

_ROLE_CHECK = """
import asyncio, json, sys
from jupyterhub import orm
from jupyterhub.app import JupyterHub

async def roles(path):
    hub = JupyterHub(log_level="ERROR")
    hub.load_config_file(path)
    hub.db_url = "sqlite:///:memory:"
    hub.init_db()
    await hub.init_role_creation()
    return {role.name: sorted(role.scopes) for role in hub.db.query(orm.Role)}

print(json.dumps({path: asyncio.run(roles(path)) for path in sys.argv[1:]}))
"""


def _roles_a_real_hub_loads(*paths: str, cwd: Path) -> dict[str, dict[str, list[str]]]:
    """For each jupyterhub_config.py, the roles (name: scopes) a real JupyterHub creates from it, in a subprocess."""
    done = subprocess.run(
        [sys.executable, "-c", _ROLE_CHECK, *paths],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(AI_ADMIN_GATEWAY_KEYRING_PASSWORD="x"),
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_hub_config_adds_its_scopes_to_the_hubs_user_role_without_redefining_it(tmp_path):
    """Loaded by a real JupyterHub (its config file and its role loading, on an in-memory database)."""
    snippet = _hub_config()
    ours = {"custom:ai-admin:use", "access:services!service=ai-gateway"}
    paths = {}
    for case, before in _USER_ROLES.items():
        _exec_config(snippet, before)  # traitlets' Config takes it as it is
        path = tmp_path / f"{case.replace(' ', '-')}.py"
        path.write_text(before + "\n" + snippet)
        paths[case] = str(path)
    loaded = _roles_a_real_hub_loads(*paths.values(), cwd=tmp_path)
    user = {case: set(loaded[path]["user"]) for case, path in paths.items()}
    assert user["none"] == {"self"} | ours  # JupyterHub's default user scope kept
    assert user["with scopes"] == {"self", "read:users:activity"} | ours  # the operator's scopes kept
    assert user["without scopes"] == {"self"} | ours
    assert user["extra scopes"] == {"self", "read:users:activity"} | ours
    for path in paths.values():
        assert "custom:ai-admin:configure" in loaded[path]["ai-admin-configure"]


# --------------------------------------------------------------------------- #
# The Settings interface over the admin API
# --------------------------------------------------------------------------- #


def test_the_admin_saves_tests_edits_and_removes_through_the_gateway(practice):
    admin = _settings(practice, "admin")
    sandbox = practice.sandbox
    changes = []
    admin.on_change(lambda: changes.append(1))
    status = admin.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    assert status.configured and status.updated_by == "practice-admin"
    assert admin.test().ok
    edited = admin.save(
        aiw.OpenAIIntegration(api_key=KEEP_SAVED_KEY, base_url=sandbox.openai_base_url, language_model="gpt-4o-mini")
    )
    assert edited.models[0].model.startswith("gpt-4o-mini")
    assert [event.action.value for event in admin.history()] == ["add", "authenticate", "edit"]
    assert all(event.actor == "practice-admin" for event in admin.history())
    admin.remove()
    assert not admin.status().configured
    assert len(changes) == 4


def test_the_models_errors_come_back_as_the_same_errors(practice):
    admin = _settings(practice, "admin")
    sandbox = practice.sandbox
    with pytest.raises(NotConfigured):
        admin.remove()
    with pytest.raises(VerificationFailed) as failed:
        admin.save(aiw.OpenAIIntegration(api_key="sk-not-a-sandbox-key-0000", base_url=sandbox.openai_base_url))
    assert failed.value.report.check("language").code.value == "invalid_api_key"
    _save_openai(practice)
    with pytest.raises(SavedKeyUnavailable) as kept:
        admin.save(
            aiw.AzureOpenAIIntegration.shared(
                endpoint_url=sandbox.azure_endpoint,
                api_key=KEEP_SAVED_KEY,
                language_deployment_id="chat-gpt-4o",
                embeddings_deployment_id="embeddings-3-small",
            )
        )
    assert kept.value.field == "language_model.api_key"
    with pytest.raises(ConcurrentChange):
        admin.save(
            aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url),
            expected_revision=0,
        )
    refused = _api(practice, "POST", "api/save", json={"integration": {"provider": "openai", "api_key": "x"}})
    assert refused.status_code == 422
    assert refused.json()["error"]["type"] == "ValidationError" and "api_key" in refused.json()["error"]["field_errors"]
    assert _api(practice, "POST", "api/save", content=b"[1]").status_code == 400
    with pytest.raises(ValueError, match="limit"):
        admin.history(0)


def test_the_analyst_cannot_save_test_or_remove(practice):
    _save_openai(practice)
    analyst = _settings(practice, "analyst")
    sandbox = practice.sandbox
    integration = aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
    for attempt in (
        lambda: analyst.save(integration),
        lambda: analyst.test(),
        lambda: analyst.test(integration.model_copy(update={"api_key": KEEP_SAVED_KEY})),
        analyst.remove,
        lambda: analyst.set_allowed(users=["practice-analyst"]),
    ):
        with pytest.raises(PermissionDenied, match="custom:ai-admin:configure"):
            attempt()
    for path in ("api/save", "api/test", "api/remove", "api/access"):
        answer = _api(practice, "POST", path, who="analyst", json={"integration": None})
        assert answer.status_code == 403 and answer.json()["error"]["type"] == "PermissionDenied", path
    assert _api(practice, "GET", "api/usage", who="analyst").status_code == 403
    assert analyst.status().configured  # nothing was changed
    snapshot = analyst.snapshot()
    assert not snapshot.admin.admin and "custom:ai-admin:configure" in snapshot.admin.reason and snapshot.may_use_ai


def test_the_analyst_asks_only_about_itself_and_its_read_only_panel_says_why(practice):
    """Whether another user may use AI, the history and the usage log are for those who may configure."""
    from ai_admin_widgets.gateway import CONFIGURE_SCOPE
    from ai_admin_widgets.models import ADMIN_REQUIRED

    _save_openai(practice)
    admin, analyst = _settings(practice, "admin"), _settings(practice, "analyst")
    assert analyst.can_use_ai() and analyst.can_use_ai("practice-analyst")  # about itself: always
    with pytest.raises(PermissionDenied, match=CONFIGURE_SCOPE):
        analyst.can_use_ai("practice-admin")
    with pytest.raises(PermissionDenied, match="history"):
        analyst.history()
    for path in ("api/can-use-ai?user=practice-admin", "api/history", "api/history?limit=5", "api/usage"):
        answer = _api(practice, "GET", path, who="analyst")
        assert answer.status_code == 403 and answer.json()["error"]["type"] == "PermissionDenied", path
        assert "events" not in answer.text and "practice-admin" not in answer.json()["error"]["message"]
    assert admin.can_use_ai("practice-analyst") and [event.action.value for event in admin.history()] == ["add"]
    assert _api(practice, "GET", "api/usage", who="admin").status_code == 200

    panel = analyst.panel()  # the read-only page renders, with its reason, and History says why it is empty
    assert ADMIN_REQUIRED in panel.text_of("aiw-notice") and "practice-admin" in panel.text_of("aiw-status")
    if panel.offered("aiw-history-toggle"):  # the History region (Region classes of the regions' part)
        panel.press("aiw-history-toggle")
        shown = panel.text_of("aiw-history")
        assert "history" in shown and CONFIGURE_SCOPE in shown and "Traceback" not in shown
    done = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "history"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(AI_ADMIN_GATEWAY_URL=practice.gateway_url, JUPYTERHUB_API_TOKEN=practice.tokens["analyst"]),
    )
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1 and CONFIGURE_SCOPE in done.stderr


def test_a_token_the_hub_does_not_know_is_refused(practice):
    _save_openai(practice)
    for headers in ({}, {"authorization": "token practice-admin-0000"}, {"authorization": "Basic abc"}):
        answer = httpx.get(f"{practice.gateway_url}/api/snapshot", headers=headers, timeout=10)
        assert answer.status_code == 401 and answer.json()["error"]["type"] == "NotAuthenticated"
    import openai

    client = OpenAI(base_url=practice.gateway_url + "/v1", api_key="practice-analyst-0000", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["code"] == "not_authenticated"
    with pytest.raises(PermissionDenied):
        GatewaySettings(practice.gateway_url, token="practice-admin-0000").remove()


def test_an_unreachable_hub_is_503_and_never_allowed():
    with Practice(cache_seconds=0) as practice:
        _save_openai(practice)
        practice.stop_hub()
        answer = _api(practice, "GET", "api/snapshot")
        assert answer.status_code == 503 and answer.json()["error"]["type"] == "HubUnavailable"
        assert "JupyterHub" in answer.json()["error"]["message"]
        import openai

        with pytest.raises(openai.InternalServerError) as unavailable:
            _openai(practice).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert unavailable.value.status_code == 503 and unavailable.value.body["code"] == "hub_unavailable"
        admin = _settings(practice, "admin")
        snapshot = admin.snapshot()
        assert snapshot.problem and not snapshot.admin.admin and not snapshot.may_use_ai
        assert not admin.is_admin() and not admin.can_use_ai()
        with pytest.raises(GatewayUnavailable):
            admin.remove()
        assert _api(practice, "GET", "api/status").status_code == 503
        assert not any(request["path"].endswith("chat/completions") for request in practice.sandbox.requests[2:])


def test_a_gateway_whose_hub_api_url_is_dead_answers_503_and_allows_nothing(practice, tmp_path):
    """Served with JUPYTERHUB_API_URL at a port where nothing listens: every call is 503 with the hub named, none is let in."""
    import openai

    _save_openai(practice)  # a valid-looking token: the practice hub's analyst, whom this gateway cannot ask about
    port = _free_port()
    dead_hub = f"http://127.0.0.1:{_free_port()}/hub/api"
    process = subprocess.Popen(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(tmp_path / "gateway")],
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
            JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
            JUPYTERHUB_API_URL=dead_hub,
            JUPYTERHUB_API_TOKEN="service-token",
            KEYRING_CRYPTFILE_PASSWORD="a service password",
        ),
    )
    try:
        assert any("AI gateway on" in process.stderr.readline() for _ in range(20))
        url = f"http://127.0.0.1:{port}/services/ai-gateway"
        headers = {"authorization": f"token {practice.tokens['admin']}"}
        for method, path in (("GET", "api/status"), ("GET", "api/can-use-ai"), ("POST", "api/remove")):
            answer = httpx.request(method, f"{url}/{path}", headers=headers, timeout=30)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.json()["error"]["type"] == "HubUnavailable" and dead_hub in answer.json()["error"]["message"]
        client = OpenAI(base_url=url + "/v1", api_key=practice.tokens["analyst"], max_retries=0)
        with pytest.raises(openai.InternalServerError) as unavailable:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert unavailable.value.status_code == 503 and unavailable.value.body["code"] == "hub_unavailable"
        snapshot = GatewaySettings(url, token=practice.tokens["admin"]).snapshot()
        assert snapshot.problem and "JupyterHub" in snapshot.problem and not snapshot.admin.admin
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert "Traceback" not in errors


def test_the_allow_list_narrows_use_with_the_hubs_groups(practice):
    _save_openai(practice)
    admin, analyst = _settings(practice, "admin"), _settings(practice, "analyst")
    admin.set_allowed(users=["practice-admin"])
    assert not analyst.can_use_ai() and not analyst.ai_routes().allowed
    import openai

    with pytest.raises(openai.PermissionDeniedError) as refused:
        _openai(practice).embeddings.create(model="text-embedding-3-small", input=["x"])
    assert refused.value.body["code"] == "not_allowed"
    with pytest.raises(aiw.AINotAllowed):
        aiw.ai.chat("hello", settings=analyst)
    admin.set_allowed(users=["practice-admin"], groups=["analysts"])  # the analyst's hub group
    assert analyst.can_use_ai()
    assert len(_openai(practice).embeddings.create(model="text-embedding-3-small", input=["x"]).data) == 1


# --------------------------------------------------------------------------- #
# /v1 with the official openai package, and ai.chat / ai.embed
# --------------------------------------------------------------------------- #


def test_the_openai_package_chats_embeds_and_streams_through_the_gateway(practice):
    _save_openai(practice)
    client = _openai(practice)
    assert [model.id for model in client.models.list()] == ["gpt-4o", "text-embedding-3-small"]
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello gateway"}])
    assert answer.choices[0].message.content == "Sandbox reply to: hello gateway"
    pieces = [
        chunk.choices[0].delta.content
        for chunk in client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "stream this please"}], stream=True
        )
        if chunk.choices and chunk.choices[0].delta.content
    ]
    assert len(pieces) > 3 and "".join(pieces) == "Sandbox reply to: stream this please"
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert [len(item.embedding) for item in vectors.data] == [1536, 1536]
    usage = practice.gateway.usage(10)
    assert [(event["operation"], event["outcome"], event["stream"]) for event in usage] == [
        ("chat", "ok", False),
        ("chat", "ok", True),
        ("embeddings", "ok", False),
    ]
    assert {event["username"] for event in usage} == {"practice-analyst"}
    stored = b"".join(path.read_bytes() for path in practice.gateway.config.home.glob("ai-gateway.sqlite*"))
    assert stored and b"stream this please" not in stored and b"hello gateway" not in stored  # never the prompt


def test_api_usage_answers_the_newest_calls_oldest_first_from_the_database():
    with Practice() as practice:
        _save_openai(practice)
        client = _openai(practice)
        operations = []
        for number in range(30):
            if number % 3 == 2:
                client.embeddings.create(model="text-embedding-3-small", input=[f"call {number}"])
                operations.append("embeddings")
            else:
                client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"call {number}"}])
                operations.append("chat")
        assert not list(practice.gateway.config.home.glob("usage.jsonl*"))  # the calls are in the database only
        for limit in (3, 10, 30, 100):  # the newest ones, oldest first
            answer = _api(practice, "GET", f"api/usage?limit={limit}")
            assert answer.status_code == 200
            events = answer.json()
            assert len(events) == min(limit, 30)
            assert [event["operation"] for event in events] == operations[len(operations) - len(events) :]
            assert [event["at"] for event in events] == sorted(event["at"] for event in events)
            assert all(event["outcome"] == "ok" and event["username"] == "practice-analyst" for event in events)
            assert all(event["total_tokens"] for event in events)
        assert _api(practice, "GET", "api/usage?limit=100000").status_code == 422


def test_azure_deployments_are_named_by_deployment_id_or_model(practice):
    sandbox = practice.sandbox
    _settings(practice, "admin").save(
        aiw.AzureOpenAIIntegration.shared(
            endpoint_url=sandbox.azure_endpoint,
            api_key=sandbox.azure_api_key,
            language_deployment_id="chat-gpt-4o",
            embeddings_deployment_id="embeddings-3-small",
        )
    )
    client = _openai(practice)
    assert [model.id for model in client.models.list()] == ["chat-gpt-4o", "embeddings-3-small"]
    for name in ("chat-gpt-4o", "gpt-4o-2024-08-06"):
        answer = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "Sandbox reply to: hi"
    streamed = client.chat.completions.create(
        model="chat-gpt-4o", messages=[{"role": "user", "content": "hi azure"}], stream=True
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices).endswith("hi azure")
    assert sandbox.requests[-1]["path"] == "/openai/deployments/chat-gpt-4o/chat/completions"


def test_a_model_that_is_not_saved_is_refused_naming_the_ones_that_exist(practice):
    import openai

    client = _openai(practice)
    with pytest.raises(openai.BadRequestError) as disabled:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert disabled.value.body["code"] == "ai_disabled"
    assert client.models.list().data == [] or True  # listed only once saved (see below)
    _save_openai(practice)
    for make in (
        lambda: client.chat.completions.create(model="gpt-5-secret", messages=[{"role": "user", "content": "hi"}]),
        lambda: client.chat.completions.create(
            model="text-embedding-3-small", messages=[{"role": "user", "content": "hi"}]
        ),
        lambda: client.embeddings.create(model="gpt-4o", input=["x"]),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            make()
        error = refused.value.body
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "model_not_found" and error["param"] == "model"
        assert "'gpt-4o'" in error["message"] and "'text-embedding-3-small'" in error["message"]
    assert not any("gpt-5-secret" in json.dumps(request["body"]) for request in practice.sandbox.requests)


def test_a_request_the_provider_refuses_comes_back_in_openais_shape(practice):
    import openai

    _save_openai(practice)
    with pytest.raises(openai.BadRequestError) as refused:
        _openai(practice).embeddings.create(model="text-embedding-3-small", input=[""])
    assert refused.value.body["code"] == "unexpected_response" and "input" in refused.value.body["message"]


def test_ai_chat_without_settings_follows_the_servers_token_and_gateway_as_they_change(practice, monkeypatch):
    """The kept client is per gateway URL and token: a kernel whose token changes never goes on as the first user."""
    from ai_admin_widgets import ai

    _save_openai(practice)
    monkeypatch.setenv("AI_ADMIN_GATEWAY_URL", practice.gateway_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", practice.tokens["analyst"])
    assert ai.chat("first") == "Sandbox reply to: first"
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "a-token-the-hub-does-not-know")
    with pytest.raises(aiw.AIAdminError) as refused:
        ai.chat("second")
    assert "token" in str(refused.value)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", practice.tokens["analyst"])
    assert ai.chat("third") == "Sandbox reply to: third"


def test_serve_listens_on_the_ip_it_is_given_and_refuses_one_that_is_not_an_address(tmp_path):
    """--ip: a service URL with a cluster name (http://hub:PORT) and the gateway listening on 127.0.0.1."""
    port = _free_port()
    environment = _environment(
        JUPYTERHUB_SERVICE_URL=f"http://hub.invalid:{port}",
        JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
        JUPYTERHUB_API_URL=f"http://127.0.0.1:{_free_port()}/hub/api",
        JUPYTERHUB_API_TOKEN="service-token",
        KEYRING_CRYPTFILE_PASSWORD="a service password",
    )
    command = [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(tmp_path / "gateway")]
    refused = subprocess.run([*command, "--ip", "hub"], env=environment, capture_output=True, text=True, timeout=60)
    assert (
        refused.returncode == 3 and refused.stderr.count("\n") == 1 and "--ip must be an IP address" in refused.stderr
    )
    process = subprocess.Popen([*command, "--ip", "127.0.0.1"], stderr=subprocess.PIPE, text=True, env=environment)
    try:
        assert any("AI gateway on http://127.0.0.1:" in process.stderr.readline() for _ in range(20))
        answer = httpx.get(f"http://127.0.0.1:{port}/services/ai-gateway/api/status", timeout=30)
        assert answer.status_code == 401  # listening, and asking for a token
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_ai_chat_embed_and_ai_admin_work_unchanged_in_a_users_server(practice, monkeypatch):
    _save_openai(practice)
    monkeypatch.setenv("AI_ADMIN_GATEWAY_URL", practice.gateway_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", practice.tokens["analyst"])
    from ai_admin_widgets import ai
    from ai_admin_widgets.interface import open_settings

    settings = open_settings()
    assert isinstance(settings, GatewaySettings) and isinstance(aiw.AISettings(), GatewaySettings)
    assert type(aiw.AISettings(home=practice.folder / "elsewhere")) is aiw.AISettings  # an explicit store is local
    assert ai.chat("hello from a kernel", settings=settings) == "Sandbox reply to: hello from a kernel"
    assert len(ai.embed(["a", "b"], settings=settings)) == 2
    routes = settings.ai_routes()
    assert practice.sandbox.openai_api_key.get_secret_value() not in repr(routes.routes["language"].headers)
    assert str(routes.routes["language"].url).startswith(practice.gateway_url + "/v1/")
    done = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(AI_ADMIN_GATEWAY_URL=practice.gateway_url, JUPYTERHUB_API_TOKEN=practice.tokens["analyst"]),
    )
    assert done.returncode == 0, done.stderr
    assert "OpenAI · gpt-4o" in done.stdout and "Saved by practice-admin" in done.stdout
    removed = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "remove", "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(AI_ADMIN_GATEWAY_URL=practice.gateway_url, JUPYTERHUB_API_TOKEN=practice.tokens["analyst"]),
    )
    assert removed.returncode == 3 and "custom:ai-admin:configure" in removed.stderr


# --------------------------------------------------------------------------- #
# Streaming, deadlines, caps
# --------------------------------------------------------------------------- #


def _stream(practice: Practice, prompt: str):
    return httpx.stream(
        "POST",
        f"{practice.gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {practice.tokens['analyst']}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}], "stream": True},
        timeout=30,
    )


def test_a_stream_is_forwarded_chunk_by_chunk_as_it_arrives():
    sandbox = aiw.Sandbox(stream_interval_ms=100).start()
    try:
        with Practice(sandbox=sandbox) as practice:
            _save_openai(practice)
            sandbox.stream_ended.clear()
            with _stream(practice, "one two three four five six seven eight") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                lines = response.iter_lines()
                first = next(lines)
                assert first.startswith("data: ") and '"role": "assistant"' in first
                record = sandbox.streams[-1]
                assert record["sent"] < record["events"] / 2  # the gateway did not wait for the whole answer
                rest = list(lines)
            assert "data: [DONE]" in rest
            assert sandbox.stream_ended.wait(10) and sandbox.streams[-1]["completed"]
    finally:
        sandbox.stop()


def test_a_client_that_hangs_up_mid_stream_cancels_the_providers_request():
    """The whole answer takes 20 s (400 events, 50 ms apart); the provider sees its request end within 5 s of the hang-up."""
    sandbox = aiw.Sandbox(stream_interval_ms=50).start()
    try:
        with Practice(sandbox=sandbox) as practice:
            _save_openai(practice)
            sandbox.stream_ended.clear()
            with _stream(practice, " ".join(["word"] * 400)) as response:
                next(response.iter_lines())
                assert not sandbox.stream_ended.is_set()
            hung_up = time.monotonic()
            assert sandbox.stream_ended.wait(5), "the provider's request went on after the client hung up"
            assert time.monotonic() - hung_up < 5
            record = sandbox.streams[-1]
            assert not record["completed"] and record["sent"] < record["events"] / 4
            ended = threading.Event()
            for _ in range(100):  # the usage record is written when the handler sees the hang-up
                if practice.gateway.usage(5) and practice.gateway.usage(5)[-1]["outcome"] == "cancelled":
                    ended.set()
                    break
                ended.wait(0.05)
            assert ended.is_set()
    finally:
        sandbox.stop()


def test_every_forwarded_call_has_an_overall_deadline():
    slow = threading.Event()
    sandbox = aiw.Sandbox(latency_ms=lambda request: 20000 if slow.is_set() else 0).start()
    try:
        with Practice(sandbox=sandbox, deadline=1.0) as practice:
            _save_openai(practice)
            slow.set()
            import openai

            started = time.monotonic()
            with pytest.raises(openai.APIStatusError) as stopped:
                _openai(practice).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            elapsed = time.monotonic() - started
            assert stopped.value.status_code == 504 and stopped.value.body["code"] == "timeout"
            assert elapsed < 2 * 1.0
            slow.clear()
    finally:
        sandbox.stop()


def test_bodies_over_the_cap_are_refused_with_413():
    with Practice(max_request_bytes=2000, max_admin_request_bytes=1000) as practice:
        _save_openai(practice)
        big = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 3000}]}
        answer = httpx.post(
            f"{practice.gateway_url}/v1/chat/completions",
            headers={"authorization": f"token {practice.tokens['analyst']}"},
            json=big,
            timeout=10,
        )
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"
        assert _api(practice, "POST", "api/access", json={"users": ["x" * 2000]}).status_code == 413
        for path in ("v1/completions", "v1/responses", "v1/deployments/chat-gpt-4o/chat/completions"):
            unknown = httpx.post(
                f"{practice.gateway_url}/{path}",
                headers={"authorization": f"token {practice.tokens['analyst']}"},
                json={"model": "gpt-4o", "prompt": "hello"},
                timeout=10,
            )
            assert unknown.status_code == 404, (path, unknown.text)  # a wrong path, not a body too large


def _raw_request(url: str, header_lines: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """POST to ``url`` on a socket with these header lines (one a line) and no body; the status, headers and body."""
    parts = urlsplit(url)
    request = [f"POST {parts.path} HTTP/1.1", "Host: gateway", *header_lines.splitlines()]
    with socket.create_connection((parts.hostname, parts.port), timeout) as raw:
        raw.sendall(("\r\n".join(request) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer and (piece := raw.recv(65536)):
            answer += piece
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)) and (piece := raw.recv(65536)):
            body += piece
    return int(lines[0].split()[1]), headers, body


def test_a_body_over_the_cap_is_413_in_openais_shape_however_it_comes():
    """Over tornado's own limit too (cap + 1 MiB), declared or chunked: a JSON 413 naming the cap, never an empty 400."""
    with Practice(max_request_bytes=2000, max_admin_request_bytes=1000) as practice:
        _save_openai(practice)
        token = practice.tokens["analyst"]
        url = f"{practice.gateway_url}/v1/chat/completions"
        huge = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * (3 * 2**20)}]}
        answer = httpx.post(url, headers={"authorization": f"token {token}"}, json=huge, timeout=30)
        assert answer.status_code == 413, answer.text
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == "too_large"
        assert "2000 bytes" in error["message"] and error["type"] == "invalid_request_error"

        def chunks(count: int):
            for _ in range(count):
                yield b"x" * 1000

        for count in (3, 3000):  # 3 kB (read and dropped) and 3 MB (answered as soon as it passes the drain)
            chunked = httpx.post(url, headers={"authorization": f"token {token}"}, content=chunks(count), timeout=30)
            assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "too_large", chunked.text
        admin = httpx.post(
            f"{practice.gateway_url}/api/access",
            headers={"authorization": f"token {practice.tokens['admin']}"},
            content=chunks(3000),
            timeout=30,
        )
        assert admin.status_code == 413 and "1000 bytes" in admin.json()["error"]["message"]
        assert practice.gateway.usage(10) == []  # nothing reached the provider
        # Declared over the cap, and no body sent: refused on the headers alone.
        for extra in ("Content-Length: 1000000000000\n", "Content-Length: 2500\nExpect: 100-continue\n"):
            status, headers, body = _raw_request(
                url, f"Authorization: token {token}\nContent-Type: application/json\n{extra}"
            )
            assert status == 413 and json.loads(body)["error"]["code"] == "too_large", (extra, body)
            assert headers.get("connection") == "close"


# --------------------------------------------------------------------------- #
# The key stays in the gateway
# --------------------------------------------------------------------------- #


def _holds_five_of(text: str, key: str) -> list[str]:
    return [key[start : start + 5] for start in range(len(key) - 4) if key[start : start + 5] in text]


def test_no_answer_or_gateway_file_holds_five_characters_of_the_key(practice):
    marker = "sk-sandbox-LEAKMARKER" + os.urandom(16).hex()
    sandbox = practice.sandbox
    answers: list[str] = []
    admin = _settings(practice, "admin")
    refused = _api(
        practice,
        "POST",
        "api/save",
        json={
            "integration": {
                "provider": "openai",
                "api_key": "sk-LEAKMARKER" + marker[-20:],
                "base_url": sandbox.openai_base_url,
            }
        },
    )
    answers.append(refused.text)
    assert refused.status_code == 422
    _save_openai(practice, key=marker)
    admin.test()
    admin.set_allowed(groups=["analysts"])
    for who in ("admin", "analyst"):
        for path in (
            "snapshot",
            "status",
            "saved-fields",
            "access",
            "admin-check",
            "can-use-ai",
            "history",
            "fingerprint",
            "ai-routes",
            "usage",
        ):
            answers.append(_api(practice, "GET", f"api/{path}", who=who).text)
        for body in (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True},
            {"model": "nope", "messages": []},
        ):
            answers.append(_api(practice, "POST", "v1/chat/completions", who=who, json=body).text)
        answers.append(
            _api(
                practice, "POST", "v1/embeddings", who=who, json={"model": "text-embedding-3-small", "input": [""]}
            ).text
        )
        answers.append(_api(practice, "GET", "v1/models", who=who).text)
        answers.append(_api(practice, "POST", "api/test", who=who, json={"integration": None}).text)
    answers.append(
        _api(
            practice,
            "POST",
            "api/save",
            json={
                "integration": {
                    "provider": "openai",
                    "api_key": {"keep_saved": True},
                    "base_url": "http://127.0.0.1:1/v1",
                }
            },
        ).text
    )
    answers.append(_api(practice, "POST", "api/remove").text)
    answers.append(_api(practice, "POST", "api/remove").text)
    assert len(answers) >= 36
    for answer in answers:
        assert _holds_five_of(answer, marker[len("sk-sandbox-") :]) == [], answer[:300]
    for path in practice.folder.rglob("*"):
        if path.is_file():
            assert _holds_five_of(path.read_text(errors="replace"), marker[len("sk-sandbox-") :]) == [], path.name


# --------------------------------------------------------------------------- #
# The hub's answers: cached a short while, and a hub that does not answer
# --------------------------------------------------------------------------- #


def test_taken_off_the_role_the_analyst_loses_ai_within_the_cache_time():
    import openai

    with Practice(cache_seconds=1) as practice:
        _save_openai(practice)
        client = _openai(practice)
        assert client.models.list().data
        practice.users[practice.tokens["analyst"]]["scopes"] = ["access:services!service=ai-gateway"]  # role removed
        started = time.monotonic()
        refused = threading.Event()
        while time.monotonic() - started < 3 and not refused.is_set():
            try:
                client.models.list()
            except openai.PermissionDeniedError as error:
                assert error.body["code"] == "not_allowed" and "custom:ai-admin:use" in error.body["message"]
                refused.set()
            else:
                refused.wait(0.05)
        assert refused.is_set() and time.monotonic() - started < 2 * 1 + 0.5


def test_a_token_without_access_to_the_service_is_refused():
    with Practice(cache_seconds=0) as practice:
        _save_openai(practice)
        practice.users[practice.tokens["analyst"]]["scopes"] = ["custom:ai-admin:use"]  # no access:services!service=…
        answer = _api(practice, "GET", "api/snapshot", who="analyst")
        assert answer.status_code == 403 and "access:services!service=ai-gateway" in answer.json()["error"]["message"]
        import openai

        with pytest.raises(openai.PermissionDeniedError) as refused:
            _openai(practice).models.list()
        assert refused.value.body["code"] == "no_service_access"
        practice.users[practice.tokens["analyst"]]["scopes"] = ["custom:ai-admin:use", "access:services"]  # unfiltered
        assert _openai(practice).models.list().data


def test_a_hub_that_does_not_answer_is_unavailable_within_its_timeout(sandbox):
    import asyncio

    from ai_admin_widgets.gateway.auth import HubUnavailable, Identity

    async def ask() -> None:
        identity = Identity(sandbox.unresponsive_endpoint + "/hub/api", "service-token", timeout=0.5)
        try:
            await identity.caller("practice-analyst-token")
        finally:
            await identity.close()

    started = time.monotonic()
    with pytest.raises(HubUnavailable, match="did not answer within 0.5 seconds"):
        asyncio.run(ask())
    assert time.monotonic() - started < 2 * 0.5 + 0.5


def test_the_sandbox_streams_chat_as_the_openai_package_reads_it(sandbox):
    client = OpenAI(base_url=sandbox.openai_base_url, api_key=sandbox.openai_api_key.get_secret_value(), max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "count these words"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Sandbox reply to: count these words"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert sandbox.stream_ended.wait(10)  # the last chunk of the HTTP answer follows [DONE]
    assert sandbox.streams[-1]["completed"] and sandbox.streams[-1]["sent"] == sandbox.streams[-1]["events"]


def test_save_and_test_refuse_metadata_link_local_and_private_addresses(practice):
    admin = _settings(practice, "admin")
    sandbox = practice.sandbox
    for base_url, words in (
        ("https://169.254.169.254/v1", "link-local"),
        ("https://[::ffff:169.254.169.254]/v1", "link-local"),
        ("https://metadata.google.internal/v1", "metadata"),
        ("https://10.1.2.3/v1", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),
        ("https://127.0.0.2/v1", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),
    ):
        integration = aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=base_url)
        for attempt in (admin.save, admin.test):
            with pytest.raises(ValueError, match=words):
                attempt(integration)
        answer = _api(
            practice,
            "POST",
            "api/test",
            json={"integration": {"provider": "openai", "api_key": "sk-sandbox-0000000000", "base_url": base_url}},
        )
        assert answer.status_code == 422 and set(answer.json()["error"]["field_errors"]) == {"base_url"}
    assert sandbox.requests == [] and not admin.status().configured  # nothing was sent or saved
    _save_openai(practice)  # 127.0.0.1 is allowed for the practice's sandbox
    assert admin.status().configured


def test_practice_runs_without_the_hub_extras_keyring(tmp_path):
    """Where keyrings.cryptfile is not installed (the environment `make lab` makes), practice still saves and
    serves, with a plain file keyring in its temporary folder (its keys are fake)."""
    script = textwrap.dedent(
        """
        import importlib.util, os
        assert importlib.util.find_spec("keyrings.cryptfile") is None, "cryptfile is importable here"
        import ai_admin_widgets as aiw
        from ai_admin_widgets.client import GatewaySettings
        from ai_admin_widgets.gateway.practice import Practice

        with Practice() as practice:
            sandbox = practice.sandbox
            admin = GatewaySettings(practice.gateway_url, token=practice.tokens["admin"])
            admin.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
            analyst = GatewaySettings(practice.gateway_url, token=practice.tokens["analyst"])
            print("chat:", aiw.ai.chat("Hello", settings=analyst)[:20])
        """
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("chat: ")


# --------------------------------------------------------------------------- #
# No DNS rebinding: the address checked is the address connected to
# --------------------------------------------------------------------------- #

#: A name only the test's resolver knows (``.test`` never resolves on the internet, RFC 6761).
REBINDING_NAME = "llm.rebinding.test"


class _Resolver:
    """``socket.getaddrinfo`` answering for :data:`REBINDING_NAME` with the addresses the test sets, each time it is asked.

    ``answers`` is a list of addresses given out in turn (the last one again and again), like a
    rebinding attacker's DNS server: a public-looking first answer, then an internal one.
    """

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked = 0
        self._previous = socket.getaddrinfo

    def __call__(self, host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name.rstrip(".").lower() != REBINDING_NAME:
            return self._previous(host, port, *args, **kwargs)
        address = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]

    def __enter__(self) -> _Resolver:
        self._previous = socket.getaddrinfo
        socket.getaddrinfo = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        socket.getaddrinfo = self._previous


class _Internal:
    """A service inside the hub's network (on 127.0.0.2): counts the connections it gets and answers none."""

    def __init__(self, port: int) -> None:
        self.connections = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.2", port))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@pytest.fixture
def named_practice(monkeypatch):
    """A practice gateway whose sandbox serves https for :data:`REBINDING_NAME` only, its authority trusted."""
    sandbox = aiw.Sandbox(tls=True, tls_names=(REBINDING_NAME,)).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(sandbox.ca_bundle))
        with Practice(sandbox=sandbox) as practice:
            yield practice
    finally:
        sandbox.stop()


def test_a_name_that_rebinds_to_an_internal_address_is_never_connected_to(named_practice):
    """Checked at Save as 127.0.0.1 (allowed for the sandbox), the name then resolves to 127.0.0.2 (not allowed):
    the connections of Test, Save and /v1 are refused there, and the internal service sees none."""
    import openai

    practice = named_practice
    sandbox = practice.sandbox
    internal = _Internal(sandbox.port)
    admin = _settings(practice, "admin")
    integration = aiw.OpenAIIntegration(
        api_key=sandbox.openai_api_key, base_url=f"https://{REBINDING_NAME}:{sandbox.port}/v1"
    )
    try:
        with _Resolver("127.0.0.1") as resolver:
            assert admin.save(integration).configured  # a name that keeps its address works
            resolver.answers = ["127.0.0.2"]  # the attacker's DNS now points the name inside
            report = admin.test()
            assert [check.code.value for check in report.checks] == ["address_refused"] * 2
            assert "AI_ADMIN_GATEWAY_ALLOW_HOSTS" in report.checks[0].message
            resolver.answers, resolver.asked = ["127.0.0.1", "127.0.0.2"], 0  # allowed when checked, inside at connect
            with pytest.raises(openai.APIStatusError) as refused:  # the first /v1 call: a check, a fresh connection
                _openai(practice).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            assert refused.value.status_code == 502 and refused.value.body["code"] == "address_refused"
            resolver.answers, resolver.asked = ["127.0.0.1", "127.0.0.2"], 0
            with pytest.raises(VerificationFailed) as failed:
                admin.save(integration.model_copy(update={"language_model": "gpt-4o-mini"}))
            assert "address_refused" in {check.code.value for check in failed.value.report.checks}
        assert internal.connections == 0
    finally:
        internal.close()


def test_a_pinned_connection_keeps_the_names_tls_server_name_certificate_check_and_host(named_practice):
    """The certificate is for the name only (not for 127.0.0.1): Save and /v1 work only if TLS starts with the name."""
    practice, sandbox = named_practice, named_practice.sandbox
    with _Resolver("127.0.0.1"):
        base_url = f"https://{REBINDING_NAME}:{sandbox.port}/v1"
        _settings(practice, "admin").save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=base_url))
        answer = _openai(practice).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "over tls"}]
        )
    assert answer.choices[0].message.content == "Sandbox reply to: over tls"
    assert set(sandbox.server_names) == {REBINDING_NAME}
    assert {request["headers"]["host"] for request in sandbox.requests} == {f"{REBINDING_NAME}:{sandbox.port}"}


# --------------------------------------------------------------------------- #
# A hostile provider: it hands the key it is sent back in headers and error texts
# --------------------------------------------------------------------------- #


class _HostileProvider:
    """An OpenAI-like provider on 127.0.0.1 that passes every request on to a sandbox until told to turn hostile.

    ``mode``: ``"proxy"`` (the sandbox answers), ``"headers"`` (a chat answers 200 with the key it was sent in
    ``x-request-id``, ``content-type``, and with ``retry-after`` on errors), ``"split-400"`` / ``"split-500"``
    (every request fails with the key split into 7-character pieces in the error message), ``"redirect <url>"``
    (every request answered 307 to ``<url>``).
    """

    def __init__(self, sandbox: aiw.Sandbox) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.mode = "proxy"
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return None

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def _answer(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                if provider.mode == "proxy":
                    headers = {n: v for n, v in self.headers.items() if n.lower() not in ("host", "content-length")}
                    answer = httpx.request(method, sandbox.url + self.path, headers=headers, content=body, timeout=30)
                    self._send(answer.status_code, answer.content, {"content-type": answer.headers["content-type"]})
                elif provider.mode == "headers":
                    data = json.dumps(
                        {
                            "id": "chatcmpl-1",
                            "object": "chat.completion",
                            "created": 0,
                            "model": "gpt-4o",
                            "choices": [
                                {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                            ],
                        }
                    ).encode()
                    self._send(200, data, {"content-type": f"application/json; k={key}", "x-request-id": key})
                elif provider.mode.startswith("redirect "):
                    self._send(307, b"", {"location": provider.mode.removeprefix("redirect ")})
                else:
                    pieces = " ".join(key[start : start + 7] for start in range(0, len(key), 7))
                    status = 400 if provider.mode == "split-400" else 500
                    error = {"error": {"message": f"MARK {pieces}", "type": "x", "param": None, "code": None}}
                    self._send(status, json.dumps(error).encode(), {"content-type": "application/json"})

            def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def hostile(practice):
    provider = _HostileProvider(practice.sandbox)
    try:
        yield provider
    finally:
        provider.close()


def _pieces_of(key: str, length: int = 5) -> set[str]:
    return {key[start : start + length] for start in range(len(key) - length + 1)}


def _holds_key_piece(text: str, key: str) -> bool:
    """Whether ``text`` has 5 characters of ``key`` in a row (the issue's criterion)."""
    return any(piece in text for piece in _pieces_of(key))


def _hostile_key(practice: Practice) -> str:
    """A key the sandbox accepts, long enough to split (the sandbox's own)."""
    return practice.sandbox.openai_api_key.get_secret_value()


def test_a_providers_headers_that_hold_the_key_never_reach_the_analyst(practice, hostile):
    """A provider answering a chat with the key in x-request-id and content-type: the analyst sees neither."""
    key = _hostile_key(practice)
    _settings(practice, "admin").save(aiw.OpenAIIntegration(api_key=key, base_url=hostile.base_url))
    hostile.mode = "headers"
    answer = httpx.post(
        f"{practice.gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {practice.tokens['analyst']}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "ok"
    shown = "\n".join(f"{name}: {value}" for name, value in answer.headers.items())
    assert "x-request-id" not in answer.headers and not _holds_key_piece(shown, key)
    assert answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize("mode", ["split-400", "split-500"])
def test_a_key_split_into_pieces_in_a_providers_error_is_hidden_everywhere(practice, hostile, mode):
    """The key in 7-character pieces in the provider's error text: no 5 of its characters in a row reach the
    analyst's /v1 answer, nor the admin's Test and Save reports."""
    key = _hostile_key(practice)
    admin = _settings(practice, "admin")
    integration = aiw.OpenAIIntegration(api_key=key, base_url=hostile.base_url)
    admin.save(integration)
    hostile.mode = mode
    answer = httpx.post(
        f"{practice.gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {practice.tokens['analyst']}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert answer.status_code in (400, 502) and "MARK" in answer.text  # the provider's words do come through
    assert not _holds_key_piece(answer.text, key)
    report = admin.test()
    assert not report.ok and not _holds_key_piece(report.model_dump_json(), key)
    with pytest.raises(VerificationFailed) as failed:
        admin.save(integration.model_copy(update={"language_model": "gpt-4o-mini"}))
    assert not _holds_key_piece(failed.value.report.model_dump_json(), key)
    assert not _holds_key_piece(str(failed.value), key)
    raw = _api(practice, "POST", "api/test", json={"integration": None})
    assert raw.status_code == 200 and not _holds_key_piece(raw.text, key)


ADDRESSES = [
    ("100.64.0.1", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),  # shared address space (CGNAT)
    ("fec0::1", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),  # site-local
    ("fd12:3456::1", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),  # unique local
    ("192.0.0.8", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),  # IETF protocol assignments
    ("10.1.2.3", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),
    ("2002:a9fe:a9fe::1", "never"),  # 6to4 of 169.254.169.254
    ("2002:0a00:0001::1", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),  # 6to4 of 10.0.0.1
    ("64:ff9b::a9fe:a9fe", "never"),  # NAT64 of 169.254.169.254
    ("64:ff9b::7f00:2", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),  # NAT64 of 127.0.0.2
    ("2001:0:4136:e378:8000:63bf:5601:5601", "never"),  # Teredo, client 169.254.169.254 (bits inverted)
    ("::ffff:169.254.169.254", "never"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("169.254.169.254", "never"),
    ("0.0.0.0", "never"),
    ("::", "never"),
    ("8.8.8.8", None),
    ("2606:4700::1111", None),
    ("2002:0808:0808::1", None),  # 6to4 of a public address
    ("64:ff9b::808:808", None),  # NAT64 of a public address
    ("127.0.0.1", None),  # allowed below
]


@pytest.mark.parametrize(("address", "words"), ADDRESSES)
def test_the_address_policy_refuses_every_address_that_is_not_public(address, words):
    import ipaddress

    from ai_admin_widgets.gateway.addresses import AddressPolicy

    problem = AddressPolicy(["127.0.0.1"]).problem("provider.example", ipaddress.ip_address(address))
    if words is None:
        assert problem is None
    else:
        assert problem is not None and words in problem


def test_save_refuses_a_shared_address_and_a_6to4_metadata_address(practice):
    admin = _settings(practice, "admin")
    for base_url, words in (
        ("https://100.64.0.1/v1", "AI_ADMIN_GATEWAY_ALLOW_HOSTS"),
        ("https://[2002:a9fe:a9fe::1]/v1", "never calls"),
        ("https://224.0.0.1/v1", "multicast"),
    ):
        with pytest.raises(ValueError, match=words):
            admin.save(aiw.OpenAIIntegration(api_key=practice.sandbox.openai_api_key, base_url=base_url))
    assert not admin.status().configured


# --------------------------------------------------------------------------- #
# The gateway's folder and files are its user's alone
# --------------------------------------------------------------------------- #


def _serve_environment(practice: Practice, port: int) -> dict[str, str]:
    return _environment(
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
        JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
        JUPYTERHUB_API_URL=practice.hub_api_url,
        JUPYTERHUB_API_TOKEN="service-token",
        KEYRING_CRYPTFILE_PASSWORD="a service password",
        AI_ADMIN_GATEWAY_ALLOW_HOSTS="127.0.0.1",
    )


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_serve_tightens_an_open_folder_of_its_own_and_makes_its_files_private(practice, tmp_path):
    """An operator-made folder with mode 755 and a 644 usage log: serve makes them 700 and 600, says so in one
    warning line, and every file it then writes (the database with the settings and audit log, usage, keys) is 600."""
    folder = tmp_path / "gateway"
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "usage.jsonl").write_text("")
    (folder / "usage.jsonl").chmod(0o644)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(folder)],
        stderr=subprocess.PIPE,
        text=True,
        env=_serve_environment(practice, port),
    )
    try:
        lines = []
        for _ in range(20):
            lines.append(process.stderr.readline())
            if "AI gateway on" in lines[-1]:
                break
        warned = [line for line in lines if str(folder) in line and "700" in line and "AI gateway on" not in line]
        assert len(warned) == 1, lines
        assert _mode(folder) == 0o700 and _mode(folder / "usage.jsonl") == 0o600
        url = f"http://127.0.0.1:{port}/services/ai-gateway"
        sandbox = practice.sandbox
        GatewaySettings(url, token=practice.tokens["admin"]).save(
            aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
        )
        client = OpenAI(base_url=url + "/v1", api_key=practice.tokens["analyst"], max_retries=0)
        client.embeddings.create(model="text-embedding-3-small", input=["x"])
        files = {path.name: _mode(path) for path in folder.iterdir() if path.is_file()}
        assert {"ai-gateway.sqlite", "usage.jsonl", "keyring.cfg"} <= set(files)  # settings and audit: in the database
        assert all(mode & 0o077 == 0 for mode in files.values()), {name: oct(mode) for name, mode in files.items()}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the folder to another user")
def test_serve_refuses_a_folder_of_another_user_that_everyone_can_read(practice, tmp_path):
    folder = tmp_path / "gateway"
    folder.mkdir()
    folder.chmod(0o755)
    os.chown(folder, 65534, 65534)  # nobody's
    port = _free_port()
    done = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--home", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_serve_environment(practice, port),
    )
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1, done.stderr
    assert f"chmod 700 {folder}" in done.stderr
    assert _mode(folder) == 0o755 and list(folder.iterdir()) == []


# --------------------------------------------------------------------------- #
# Bodies and paths the gateway does not take, in OpenAI's shape
# --------------------------------------------------------------------------- #


def _v1(practice: Practice, method: str, path: str, **options) -> httpx.Response:
    return _api(practice, method, f"v1/{path}", who="analyst", **options)


def test_deeply_nested_json_is_a_400_naming_the_body_without_a_traceback(practice, caplog):
    _save_openai(practice)
    nested = b'{"model":"gpt-4o","messages":[],"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with caplog.at_level("DEBUG"):
        chat = _v1(practice, "POST", "chat/completions", content=nested)
        admin = _api(practice, "POST", "api/access", content=b'{"users":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert chat.status_code == 400
    error = chat.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert "request body" in error["message"] and "nested too deeply" in error["message"]
    assert admin.status_code == 400 and "nested too deeply" in admin.json()["error"]["message"]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_tornados_own_errors_have_codes_that_say_what_happened(practice):
    _save_openai(practice)
    wrong_method = _v1(practice, "GET", "chat/completions")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong_method.json()["error"]["message"]
    assert set(wrong_method.json()["error"]) == {"message", "type", "param", "code"}
    admin = _api(practice, "DELETE", "api/status")
    assert admin.status_code == 405 and admin.json()["error"]["code"] == "method_not_allowed"
    missing = _api(practice, "GET", "api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["responses", "completions", "chat", ""])
def test_a_v1_path_that_does_not_exist_is_openais_404_naming_the_endpoints(practice, path):
    answer = _v1(practice, "POST", path, json={"model": "gpt-4o"})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "not_found"
    assert "POST /v1/chat/completions" in error["message"] and "GET /v1/models" in error["message"]
    assert f"/v1/{path}" in error["message"]
    assert _api(practice, "POST", f"v1/{path}", who=None).status_code == 401  # only callers the hub knows learn it


@pytest.mark.parametrize("body", [b"", b"{}", b'{"model": null}', b'{"model": ["gpt-4o"]}', b'{"model": 4}'])
def test_a_body_without_a_model_name_is_told_what_model_must_be(practice, body):
    _save_openai(practice)
    answer = _v1(practice, "POST", "chat/completions", content=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "model" and error["message"][0].isupper()
    assert '"model" must be a string' in error["message"] and "'gpt-4o'" in error["message"]


@pytest.mark.parametrize(
    "location", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/v1", "http://metadata.google.internal/"]
)
def test_a_redirect_to_an_address_never_called_does_not_advise_using_it(practice, hostile, location):
    hostile.mode = f"redirect {location}"
    integration = aiw.OpenAIIntegration(api_key=practice.sandbox.openai_api_key, base_url=hostile.base_url)
    report = _settings(practice, "admin").test(integration)
    for check in report.checks:
        assert check.code.value == "unexpected_response"
        assert "never called" in check.message and "Use the address it points to" not in check.message


def test_a_redirect_to_another_public_address_still_says_where_to_point(practice, hostile):
    hostile.mode = "redirect https://api.example.com/v1"
    integration = aiw.OpenAIIntegration(api_key=practice.sandbox.openai_api_key, base_url=hostile.base_url)
    report = _settings(practice, "admin").test(integration)
    assert all("Use the address it points to" in check.message for check in report.checks)


def test_a_change_made_through_the_gateway_shows_on_the_panels_next_poll(practice):
    """The panel polls every 2 s while visible; the client's fingerprint cache is shorter, so that poll sees the change."""
    settings = _settings(practice, "admin")
    panel = settings.panel()
    try:
        assert panel.offered("aiw-add")
        panel.handle({"event": "panel.poll", "values": {}})  # the gateway's fingerprint is cached now
        _save_openai(practice)  # another client: this panel's settings object is not told
        asked_at, fingerprint = settings._fingerprint
        settings._fingerprint = (asked_at - 2.0, fingerprint)  # the next poll comes 2 s later
        panel.handle({"event": "panel.poll", "values": {}})
        assert panel.offered("aiw-edit") and "OpenAI · gpt-4o" in panel.text_of("aiw-status")
    finally:
        panel.close()
