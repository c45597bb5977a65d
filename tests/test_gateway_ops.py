"""What a hub operator meets setting up the AI gateway: ``hub-config``'s checks and its snippet run twice or
after the operator's own settings (loaded by a real JupyterHub's role creation), ``serve``'s one-line refusals
(folders, ports, names, the hub's variables, the allow-list), and the admins list that the hub decides.

Everything runs on 127.0.0.1: subprocesses of ``ai-admin``, the practice gateway, JupyterHub's config loading.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from test_gateway import _environment, _exec_config, _free_port, _roles_a_real_hub_loads, _value

from ai_admin_widgets.gateway.practice import Practice

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GATEWAY = [sys.executable, "-m", "ai_admin_widgets", "gateway"]
OURS = {"read:users!user", "access:services!service=ai-gateway", "custom:ai-admin:use", "custom:ai-admin:configure"}


def _run(*arguments: str, timeout: float = 60, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GATEWAY, *arguments], capture_output=True, text=True, timeout=timeout, env=_environment(**environment)
    )


def _one_line_refusal(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    for word in words:
        assert word in done.stderr, (word, done.stderr)


# --------------------------------------------------------------------------- #
# hub-config
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("options", "named", "hint"),
    [
        (["--url", "https://127.0.0.1:18610"], "--url", "http://HOST:PORT"),
        (["--url", "http://"], "--url", "http://HOST:PORT"),
        (["--url", "http://127.0.0.1:99999"], "--url", "1 to 65535"),
        (["--url", "http://127.0.0.1"], "--url", "port"),
        (["--url", "http://0.0.0.0:10101"], "--url", "--ip 0.0.0.0"),
        (["--url", "http://[::]:10101"], "--url", "--ip 0.0.0.0"),
        (["--gateway-url", "http://"], "--gateway-url", "http(s)"),
        (["--gateway-url", "hub.example.org/services/ai-gateway"], "--gateway-url", "http(s)"),
        (["--admin", ""], "--admin", "user name"),
        (["--admin", " alice"], "--admin", "user name"),
        (["--home", "relative/folder"], "--home", "absolute"),
        (["--name", "ai gateway"], "--name", "letters"),
    ],
)
def test_hub_config_refuses_what_the_hub_or_the_gateway_would_refuse(options, named, hint):
    done = _run("hub-config", *options)
    _one_line_refusal(done, named, hint)
    assert done.stdout == ""  # nothing to append by mistake


def test_the_snippet_added_twice_replaces_its_service_and_role_and_the_hub_loads_it(tmp_path):
    """The README's `>>` run again after changing --admin: one service, one role (the later admins), in a real hub."""
    first, second = _run("hub-config", "--admin", "alice"), _run("hub-config", "--admin", "bob")
    assert first.returncode == second.returncode == 0
    before = 'c.JupyterHub.services = [{"name": "other", "api_token": "x" * 32}]'
    config = _exec_config(first.stdout + second.stdout, before)
    services = _value(config, "JupyterHub", "services", [])
    assert [service["name"] for service in services] == ["other", "ai-gateway"]
    roles = [role for role in _value(config, "JupyterHub", "load_roles", []) if role["name"] == "ai-admin-configure"]
    assert [role["users"] for role in roles] == [["bob"]]
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(first.stdout + "\n" + second.stdout)
    loaded = _roles_a_real_hub_loads(str(path), cwd=tmp_path)[str(path)]
    assert "custom:ai-admin:configure" in loaded["ai-admin-configure"]
    assert {"custom:ai-admin:use", "access:services!service=ai-gateway"} <= set(loaded["user"])


def test_the_snippet_adds_its_server_token_scopes_to_the_operators_and_keeps_the_hubs_default():
    snippet = _run("hub-config").stdout
    operator = ["access:servers!server", "users:activity!user", "read:users:name"]
    kept = _exec_config(snippet, f"c.Spawner.server_token_scopes = {operator!r}").Spawner.server_token_scopes
    assert kept[:3] == operator and set(kept) == {*operator, *OURS}
    from jupyterhub.roles import get_default_roles

    (server,) = [role["scopes"] for role in get_default_roles() if role["name"] == "server"]
    default = _exec_config(snippet).Spawner.server_token_scopes  # nothing set: the hub's "server" role's scopes
    assert set(default) == {*server, *OURS}
    twice = _exec_config(snippet + snippet, f"c.Spawner.server_token_scopes = {operator!r}")
    assert sorted(twice.Spawner.server_token_scopes) == sorted(kept)  # no scope twice


def test_a_server_token_scopes_callable_set_before_keeps_working_with_ours_added():
    import asyncio

    snippet = _run("hub-config").stdout
    config = _exec_config(snippet, "c.Spawner.server_token_scopes = lambda spawner: ['access:servers!server', spawner]")
    scopes = asyncio.run(config.Spawner.server_token_scopes("read:users:name"))
    assert scopes[:2] == ["access:servers!server", "read:users:name"] and set(scopes) >= OURS


# --------------------------------------------------------------------------- #
# serve
# --------------------------------------------------------------------------- #


def _serve_environment(port: int | None = None, **extra: str) -> dict[str, str]:
    return {
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port or _free_port()}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/ai-gateway/",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{_free_port()}/hub/api",
        "JUPYTERHUB_API_TOKEN": "service-token",
        "KEYRING_CRYPTFILE_PASSWORD": "a service password",
    } | extra


def test_serve_without_the_password_names_the_hubs_variable(tmp_path):
    done = _run("serve", "--home", str(tmp_path / "gateway"), **_serve_environment(KEYRING_CRYPTFILE_PASSWORD=""))
    _one_line_refusal(done, "AI_ADMIN_GATEWAY_KEYRING_PASSWORD", "hub's environment", "KEYRING_CRYPTFILE_PASSWORD")


def test_serve_refuses_folders_it_cannot_make_with_one_line(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("")
    for home in ("/proc/nope", str(afile), str(afile / "sub")):
        _one_line_refusal(_run("serve", "--home", home, **_serve_environment()), "--home", home)


def test_serve_refuses_a_port_in_use_and_a_host_that_does_not_resolve(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run("serve", "--home", str(tmp_path / "g"), **_serve_environment(port))
        _one_line_refusal(done, "JUPYTERHUB_SERVICE_URL", str(port), "in use")
    done = _run(
        "serve",
        "--home",
        str(tmp_path / "g"),
        **_serve_environment(JUPYTERHUB_SERVICE_URL=f"http://nohost.invalid:{_free_port()}"),
    )
    _one_line_refusal(done, "JUPYTERHUB_SERVICE_URL", "nohost.invalid", "--ip")


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("AI_ADMIN_GATEWAY_ALLOW_HOSTS", "10.0.0.0/33,,@@", ("AI_ADMIN_GATEWAY_ALLOW_HOSTS", "10.0.0.0/33")),
        ("AI_ADMIN_GATEWAY_ALLOW_HOSTS", "models.internal, @@", ("AI_ADMIN_GATEWAY_ALLOW_HOSTS", "@@")),
        ("JUPYTERHUB_API_URL", "notaurl", ("JUPYTERHUB_API_URL", "notaurl")),
        ("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1", ("JUPYTERHUB_SERVICE_URL", "port")),
        ("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:99999", ("JUPYTERHUB_SERVICE_URL", "port")),
    ],
)
def test_serve_refuses_variables_it_cannot_use(tmp_path, variable, value, words):
    done = _run("serve", "--home", str(tmp_path / "g"), **_serve_environment(**{variable: value}))
    _one_line_refusal(done, *words)


def test_serve_takes_an_allow_list_of_names_addresses_and_blocks():
    from ai_admin_widgets.gateway.serve import check_allow_hosts

    assert check_allow_hosts("models.internal, 10.0.0.0/8,fd00::/8 ,192.168.1.5,localhost,") is None
    for bad in ("10.0.0.0/33", "300.1.1.1", "models internal", "-models.internal", "@@"):
        assert repr(bad) in (check_allow_hosts(f"models.internal,{bad}") or ""), bad


# --------------------------------------------------------------------------- #
# admins on the gateway
# --------------------------------------------------------------------------- #


def test_the_gateway_refuses_to_add_or_remove_admins_and_says_how_the_hub_grants_configuring():
    import httpx

    from ai_admin_widgets.client import GatewaySettings
    from ai_admin_widgets.models import AdminsDecidedByHub

    with Practice() as practice:
        admin = GatewaySettings(practice.gateway_url, token=practice.tokens["admin"])
        for body in ({"add": "practice-analyst"}, {"remove": "practice-admin"}):
            answer = httpx.post(
                f"{practice.gateway_url}/api/admins",
                json=body,
                headers={"authorization": f"token {practice.tokens['admin']}"},
                timeout=30,
            )
            assert answer.status_code == 409
            message = answer.json()["error"]["message"]
            assert "custom:ai-admin:configure" in message and "ai-admin-configure" in message
        with pytest.raises(AdminsDecidedByHub, match="custom:ai-admin:configure"):
            admin.add_admin("practice-analyst")
        with pytest.raises(AdminsDecidedByHub, match="hub admins"):
            admin.remove_admin("practice-admin")
        assert "practice-analyst" not in admin.access_lists().admins
        assert not GatewaySettings(practice.gateway_url, token=practice.tokens["analyst"]).admin_check().admin
        panel = admin.panel()
        panel.press("aiw-access-toggle")  # Who may use AI's details: who the admins are
        text = panel.visible_text()
        assert "Admins: hub admins and holders of custom:ai-admin:configure." in text
        assert "JupyterHub's admins" not in text


def test_serve_check_runs_serves_checks_with_the_hubs_variable_and_listens_on_nothing(tmp_path):
    """Before starting the hub: the operator's password variable, the folder and the keyring, then serve's own."""
    home = str(tmp_path / "gateway")
    done = _run("serve", "--check", "--home", home, AI_ADMIN_GATEWAY_KEYRING_PASSWORD="the hub's password")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "can start" in done.stdout and home in done.stdout and "not checked" in done.stdout
    wrong = _run("serve", "--check", "--home", home, AI_ADMIN_GATEWAY_KEYRING_PASSWORD="another password")
    _one_line_refusal(wrong, "does not open the keyring file")
    _one_line_refusal(_run("serve", "--check", "--home", home), "AI_ADMIN_GATEWAY_KEYRING_PASSWORD")
    port = _free_port()
    environment = _serve_environment(port, KEYRING_CRYPTFILE_PASSWORD="the hub's password")
    listened = _run("serve", "--check", "--home", home, **environment)
    assert listened.returncode == 0 and f"127.0.0.1:{port}" in listened.stdout, listened.stderr
    unresolved = environment | {"JUPYTERHUB_SERVICE_URL": f"http://nohost.invalid:{port}"}
    _one_line_refusal(_run("serve", "--check", "--home", home, **unresolved), "nohost.invalid", "--ip")
