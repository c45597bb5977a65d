"""The project's own habits: one tier per test, one version, no test-only package where `make lab` sees it.

These read the installed metadata and run short child processes of this interpreter; nothing
here contacts any host.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TEST_ONLY, TIERS
from packaging.requirements import Requirement

import ai_admin_widgets as aiw

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "ai-admin-widgets"


def test_every_collected_test_has_exactly_one_tier(request):
    untiered = {}
    for item in request.session.items:
        tiers = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
        if len(tiers) != 1:
            untiered[item.nodeid] = tiers
    assert not untiered, f"tests without exactly one tier of {TIERS}: {untiered}"


def test_the_version_is_written_once_in_the_package():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, re.MULTILINE), "pyproject.toml spells the version again"
    assert re.search(r'^dynamic\s*=\s*\[[^]]*"version"', project, re.MULTILINE)
    assert importlib.metadata.version(DISTRIBUTION) == aiw.__version__


def _runtime_requirements() -> list[Requirement]:
    requirements = [Requirement(text) for text in importlib.metadata.requires(DISTRIBUTION) or ()]
    return [requirement for requirement in requirements if "extra" not in str(requirement.marker or "")]


def test_trustme_is_not_a_runtime_dependency():
    names = {requirement.name.lower() for requirement in _runtime_requirements()}
    assert "httpx" in names  # the metadata was read
    assert "trustme" not in names


# Everything the package does at run time, with trustme made unimportable: every module imports,
# a Save and an AI call work against a plain sandbox, and only Sandbox(tls=True) needs trustme.
_WITHOUT_TRUSTME = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    sys.modules["trustme"] = None  # an import of it now fails as if it were not installed
    import ai_admin_widgets as aiw
    for module in pkgutil.walk_packages(aiw.__path__, "ai_admin_widgets."):
        if module.name != "ai_admin_widgets.__main__":  # runs the command line when imported
            importlib.import_module(module.name)
    from ai_admin_widgets import ai
    with aiw.Sandbox() as sandbox:
        settings = sandbox.settings()
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
        with ai.AIClient(settings) as client:
            reply = client.chat("hello")
    tls = aiw.Sandbox(tls=True)
    try:
        tls.start()
        outcome = "started"
    except ImportError as error:
        outcome = str(error)
    finally:
        tls.stop()
    print(json.dumps({"reply": reply, "tls": outcome}))
    """
)


@pytest.mark.sandbox
def test_without_trustme_only_a_tls_sandbox_fails_and_it_says_what_to_install(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TRUSTME], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["reply"].startswith("Sandbox reply to: hello")
    assert "trustme" in outcome["tls"] and "pip install trustme" in outcome["tls"], outcome["tls"]
    assert "Traceback" not in done.stderr


# What `make lab` sees: this interpreter without the test run's additions to the path.
_LAB_VIEW = textwrap.dedent(
    """
    import importlib.metadata, importlib.util, json, keyring
    print(json.dumps({
        "modules": {name: importlib.util.find_spec(name) is not None for name in ("keyrings.cryptfile", "Crypto")},
        "entry_points": sorted(e.value for e in importlib.metadata.entry_points(group="keyring.backends")),
        "keyring": repr(keyring.get_keyring()),
    }))
    """
)


def _lab_environment(tmp_path: Path) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    environment.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"))
    return environment


def test_the_test_only_keyring_backends_are_invisible_to_make_lab(tmp_path):
    """keyring chooses among the backends it can find, so a test backend in .venv would change `make lab`'s."""
    done = subprocess.run(
        [sys.executable, "-c", _LAB_VIEW], env=_lab_environment(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["modules"] == {"keyrings.cryptfile": False, "Crypto": False}
    assert not [value for value in seen["entry_points"] if "cryptfile" in value]
    assert "cryptfile" not in seen["keyring"].lower()


def test_the_test_run_has_the_test_only_keyring_backends_and_all_they_need():
    if not TEST_ONLY.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{TEST_ONLY} is missing: make test installs tests/keyring-backends.txt there")
        pytest.skip(f"no {TEST_ONLY} (make test installs it)")
    assert importlib.util.find_spec("keyrings.cryptfile") is not None
    assert str(TEST_ONLY) in os.environ["PYTHONPATH"].split(os.pathsep)  # and the test run's child processes
    # installed with --no-deps: whatever the backends require must already be here
    for distribution in importlib.metadata.distributions(path=[str(TEST_ONLY)]):
        for text in distribution.requires or ():
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                installed = importlib.metadata.version(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                pytest.fail(
                    f"{distribution.metadata['Name']} needs {requirement}: add it to tests/keyring-backends.txt"
                )
            assert requirement.specifier.contains(installed, prereleases=True), (requirement, installed)
