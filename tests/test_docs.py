"""The deployment documents say what the code does: the README's hub-config excerpt, the zero-to-jupyterhub
values example, and saved walkthroughs that hold no key or practice token.

Pure file reading and the snippet as text (no server, no hub, no cluster: the Helm example is not run here).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from ai_admin_widgets.gateway import CONFIGURE_SCOPE, USE_SCOPE
from ai_admin_widgets.gateway.hubconfig import hub_config

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "docs" / "zero-to-jupyterhub-values.yaml"
ACCESS = "access:services!service=ai-gateway"


def _snippet_config(snippet: str) -> Config:
    """The snippet loaded as JupyterHub loads jupyterhub_config.py, its appends applied to empty lists."""
    config = Config()
    exec(compile(snippet, "jupyterhub_config.py", "exec"), {"c": config})
    return config


def _readme_excerpt() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## On JupyterHub") :]
    block = re.search(r"Its output, abbreviated.*?```python\n(.*?)```", section, re.S)
    assert block, "the README's On JupyterHub section has no abbreviated hub-config output"
    return block.group(1).splitlines()


def test_the_readmes_hub_config_excerpt_is_what_the_command_prints():
    printed = {line.strip() for line in hub_config(admins=["alice"], python="/opt/jupyterhub/bin/python").splitlines()}
    shown = [line.strip() for line in _readme_excerpt() if line.strip() and "…" not in line]
    assert len(shown) > 30
    assert [line for line in shown if line not in printed] == []


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


def test_the_helm_values_say_they_were_not_run_here():
    head = VALUES.read_text(encoding="utf-8")[:600]
    assert "NOT RUN HERE" in head


def test_the_helm_values_run_the_gateway_as_a_hub_service_with_its_own_port(values):
    service = values["hub"]["services"]["ai-gateway"]
    assert service["command"][1:5] == ["-m", "ai_admin_widgets", "gateway", "serve"]
    assert service["command"][-2:] == ["--home", "/srv/jupyterhub/ai-gateway"]  # on the hub's volume
    assert service["command"][5:7] == ["--ip", "0.0.0.0"] and service["url"] == "http://hub:10101"
    from ai_admin_widgets.cli import _parser

    parsed = _parser().parse_args(service["command"][3:])  # what `python3 -m ai_admin_widgets` is given
    assert (parsed.gateway_command, parsed.ip, parsed.home) == ("serve", "0.0.0.0", "/srv/jupyterhub/ai-gateway")
    (port,) = values["hub"]["service"]["extraPorts"]
    assert port["port"] == port["targetPort"] == 10101
    assert values["singleuser"]["extraEnv"]["AI_ADMIN_GATEWAY_URL"] == "http://hub:10101/services/ai-gateway"
    assert values["hub"]["networkPolicy"]["ingress"][0]["ports"] == [{"port": 10101}]
    assert values["singleuser"]["networkPolicy"]["egress"][0]["ports"] == [{"port": 10101}]
    secret = values["hub"]["extraEnv"]["AI_ADMIN_GATEWAY_KEYRING_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "ai-gateway-keyring", "key": "password"}


def test_the_helm_values_grant_what_the_snippet_grants(values):
    snippet = _snippet_config(hub_config(admins=["alice"]))
    roles = {role["name"]: role for role in snippet.JupyterHub.load_roles}
    helm_roles = values["hub"]["loadRoles"]
    # On JupyterHub 6 the snippet gives every user its scopes through extra_user_scopes; the Helm
    # example, for the chart's JupyterHub, defines the user role whole ("self" and the same scopes).
    assert set(helm_roles) == {*roles, "user"}
    for name, role in roles.items():
        assert set(helm_roles[name]["scopes"]) == set(role["scopes"]), name
    extra = snippet.JupyterHub.extra_user_scopes.get_value(set())  # the snippet's update, applied to the default
    assert set(helm_roles["user"]["scopes"]) == {"self", *extra}
    assert helm_roles["ai-admin-configure"]["users"] == ["alice"]
    config = values["hub"]["config"]
    assert set(config["JupyterHub"]["custom_scopes"]) == {CONFIGURE_SCOPE, USE_SCOPE}
    assert set(config["KubeSpawner"]["server_token_scopes"]) == set(snippet.Spawner.server_token_scopes)
    assert {USE_SCOPE, ACCESS} <= set(helm_roles["user"]["scopes"])


def test_the_helm_extra_config_gives_the_gateway_its_address_and_keyring_password(values, monkeypatch):
    """hub.extraConfig, run as the chart runs it: after hub.services became c.JupyterHub.services (name from the key)."""
    monkeypatch.setenv("AI_ADMIN_GATEWAY_KEYRING_PASSWORD", "from the Kubernetes secret")
    c = Config()
    c.JupyterHub.services = [{"name": key, **service} for key, service in values["hub"]["services"].items()]
    for _, source in sorted(values["hub"]["extraConfig"].items()):
        exec(compile(source, "extraConfig", "exec"), {"c": c})
    (service,) = c.JupyterHub.services
    assert service["url"] == "http://hub:10101"
    assert service["environment"]["KEYRING_CRYPTFILE_PASSWORD"] == "from the Kubernetes secret"
    assert "AI_ADMIN_GATEWAY_ALLOW_HOSTS" in service["environment"]


#: What a key or token in a saved walkthrough would look like: the sandbox's keys and the practice gateway's tokens.
SECRET_SHAPES = re.compile(
    r"sk-sandbox-[0-9a-f]{6,}|sandbox-azure-[0-9a-f]{6,}|practice-(?:admin|analyst|service)-[0-9a-f]{6,}"
)


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda path: path.name)
def test_saved_walkthroughs_hold_no_key_and_no_practice_token(notebook):
    assert SECRET_SHAPES.findall(notebook.read_text(encoding="utf-8")) == []


def test_the_notebook_runner_refuses_the_same_shapes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    for text in ("sk-sandbox-0a1b2c3d", "practice-admin-0123456789ab", "practice-analyst-abcdef012345"):
        assert runner.SANDBOX_KEY.search(text), text


def test_the_readme_lists_every_metrics_label_value_and_serves_home_default():
    import subprocess
    import sys

    from ai_admin_widgets.gateway.metrics import OUTCOMES, ROLES

    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    described = readme[readme.index("`metrics` is Prometheus' text format") :][:1200]
    for value in (*ROLES, *OUTCOMES, "other"):
        assert f"`{value}`" in described, value
    roles = described[described.index("by `role`") : described.index("`outcome`")]
    assert "`other`" in roles  # role="other" as well as outcome="other"
    assert "default `/srv/ai-gateway`; make it owned" not in readme  # serve's own default is not that folder
    assert "`serve --home`; without it `$AI_ADMIN_HOME`, else the user data folder" in readme
    helped = subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "gateway", "serve", "--help"], capture_output=True, text=True
    )
    assert "(default: $AI_ADMIN_HOME or the user data folder)" in " ".join(helped.stdout.split())
