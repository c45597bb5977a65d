"""Fixtures shared by the test suite: a running sandbox, a file keyring in a temp folder, and settings on both.

Also: the test-only packages put on the path (below), and every test given exactly one tier
(:func:`pytest_collection_modifyitems`). Nothing here touches the machine's own keyring or
contacts anything but 127.0.0.1.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

# Test-only keyring backends (keyrings.cryptfile) live in .venv/test-only, not in .venv, so that
# `make lab` never sees them (keyring picks a backend from the entry points it can find). This run
# and its subprocesses (the ai-admin command, kernels, JupyterLab) see them. Done before anything
# imports keyrings, whose __init__ finds its parts on sys.path when it is first imported.
TEST_ONLY = Path(sys.prefix) / "test-only"
if TEST_ONLY.is_dir() and str(TEST_ONLY) not in sys.path:
    sys.path.append(str(TEST_ONLY))  # after site-packages: it can add packages, never shadow one
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(TEST_ONLY)]))

from keyrings.alt.file import PlaintextKeyring  # noqa: E402  (after the path is set)

import ai_admin_widgets as aiw  # noqa: E402

# -- tiers -------------------------------------------------------------------------------- #

#: The tiers, from fast to real (registered in pyproject.toml); every test has exactly one.
TIERS = ("fast", "sandbox", "keyring", "database", "notebooks", "browser", "hub")
#: Modules whose every test is of one tier: real processes, servers or browsers throughout.
MODULE_TIERS = {
    "test_browser.py": "browser",
    "test_database.py": "database",  # the gateway's database: SQLite, and PostgreSQL in a temporary cluster
    "test_ops.py": "database",  # usage report, health, metrics, re-authentication: practice gateways, PostgreSQL
    "test_replicas.py": "database",  # two served gateways on one database: saves in force on both, races, import
    "test_budgets.py": "database",  # usage rows and budgets on SQLite and PostgreSQL; two replicas on one database
    "test_hub.py": "hub",  # a real JupyterHub, its gateway service, real OS users and their servers
    "test_keyrings.py": "keyring",
    "test_cli.py": "sandbox",  # the ai-admin command as a subprocess against the sandbox
    "test_all_or_nothing.py": "sandbox",  # processes killed or racing mid-save
    "test_failures.py": "sandbox",
    "test_verify.py": "sandbox",
    "test_ai.py": "sandbox",
    "test_secrets.py": "sandbox",  # the leak hunt: a real kernel, the command line, the sandbox
    "test_gateway.py": "sandbox",
    "test_entra.py": "sandbox",  # keyless Azure OpenAI: the sandbox as Microsoft Entra ID over TLS, a practice gateway
    "test_gateway_ops.py": "sandbox",  # hub-config and serve as an operator meets them; admins on the gateway
    "test_benchmarks.py": "fast",  # benchmarks/run.py on a copy of its files; a stand-in benchmark script
    "test_history_tail.py": "sandbox",  # ai-admin as a subprocess over a million-line audit log  # the AI gateway against its practice hub and the sandbox
    "test_regions.py": "sandbox",  # the regions under the OpenAI row through the panel, on the sandbox's settings
    "test_docs.py": "fast",  # the README's hub-config excerpt, the Helm values example, saved walkthroughs: files only
}
#: Fixtures that start the sandbox or another server on 127.0.0.1 (test_access's fake hub), directly or
#: through another fixture.
SANDBOX_FIXTURES = frozenset({"sandbox", "tls_sandbox", "hub"})


def _tier(item: pytest.Item) -> str:
    """The tier of one collected test: by notebook, by module, by fixtures used, or by starting a sandbox."""
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb":
        return "notebooks"
    if path.name in MODULE_TIERS:
        return MODULE_TIERS[path.name]
    if SANDBOX_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return "sandbox"
    function = getattr(item, "function", None)
    if function is not None and _starts_a_sandbox(function):
        return "sandbox"
    return "fast"


def _starts_a_sandbox(function: Any) -> bool:
    """True if the test's source, or a module-level text it uses (a child process's script), starts a Sandbox."""
    if "Sandbox(" in inspect.getsource(function):
        return True
    code, namespace = getattr(function, "__code__", None), getattr(function, "__globals__", {})
    names = code.co_names if code is not None else ()
    return any(isinstance(namespace.get(name), str) and "Sandbox(" in namespace[name] for name in names)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under ``-m fast`` alone, modules with no fast test are not even imported (``make test-fast`` stays quick)."""
    if config.getoption("markexpr", "") == "fast" and MODULE_TIERS.get(collection_path.name, "fast") != "fast":
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier (``pytest -m fast`` ...); a test that already names one keeps it.

    Raises:
        pytest.UsageError: a test marked with more than one tier.
    """
    for item in items:
        named = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        if len(set(named)) > 1:
            raise pytest.UsageError(f"{item.nodeid} is marked with several tiers ({', '.join(named)}); give it one")
        if not named:
            item.add_marker(getattr(pytest.mark, _tier(item)))


# -- the working tree ---------------------------------------------------------------------- #

ROOT = Path(__file__).resolve().parent.parent
_TREE_BEFORE = pytest.StashKey[str]()
_TREE_CHANGES = pytest.StashKey[list[str]]()


def _tree_state() -> str | None:
    """``git status --porcelain`` of the checkout (tracked changes and untracked files), or None without git."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def pytest_sessionstart(session: pytest.Session) -> None:
    state = _tree_state()
    if state is not None:
        session.config.stash[_TREE_BEFORE] = state


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Tests never modify the checkout: under CI a run that changed ``git status`` fails; elsewhere it is said.

    (Elsewhere only said, because a developer may be editing files while the tests run.)
    """
    before, after = session.config.stash.get(_TREE_BEFORE, None), _tree_state()
    if before is None or after is None or before == after:
        return
    changes = sorted(set(after.splitlines()) ^ set(before.splitlines()))
    screenshots = os.environ.get("AI_ADMIN_SCREENSHOTS")  # make screenshots: writing there is the point
    if screenshots and Path(screenshots).resolve().is_relative_to(ROOT):
        wanted = Path(screenshots).resolve().relative_to(ROOT).as_posix().rstrip("/") + "/"
        changes = [line for line in changes if not line[3:].strip('"').startswith(wanted)]
    if not changes:
        return
    session.config.stash[_TREE_CHANGES] = changes
    if os.environ.get("CI") == "true":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    changes = config.stash.get(_TREE_CHANGES, [])
    if changes:
        terminalreporter.write_sep("=", "the test run changed the working tree (git status --porcelain)", red=True)
        for line in changes:
            terminalreporter.write_line(f"  {line}", red=True)


@pytest.fixture(autouse=True)
def _fast_tests_start_no_sandbox(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test of the fast tier that starts a sandbox fails, saying to mark it ``sandbox`` (the tier stays honest)."""
    if request.node.get_closest_marker("fast") is None:
        return

    def refuse(self: aiw.Sandbox) -> aiw.Sandbox:
        pytest.fail(
            f"{request.node.nodeid} starts a sandbox but is in the fast tier: mark it @pytest.mark.sandbox "
            "or give it its tier in tests/conftest.py",
            pytrace=False,
        )

    monkeypatch.setattr(aiw.Sandbox, "start", refuse)


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to the local servers go straight to 127.0.0.1, never through a proxy from the environment."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _off_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as if off JupyterHub (even on one), so no real hub is ever asked; test_access sets its fake hub."""
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sandbox():
    """A running :class:`aiw.Sandbox` on 127.0.0.1, stopped after the test."""
    with aiw.Sandbox() as running:
        yield running


@pytest.fixture
def file_keyring(tmp_path):
    """A real keyring backend (keyrings.alt's PlaintextKeyring) whose file lives in the test's temp folder."""
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    return backend


@pytest.fixture
def settings(tmp_path, file_keyring):
    """:class:`aiw.AISettings` on a store folder in tmp_path and the file keyring."""
    return aiw.AISettings(home=tmp_path / "store", keyring=file_keyring)


@pytest.fixture
def marker_key() -> str:
    """A key-shaped string that no other test uses, to grep outputs and files for leaks."""
    return f"sk-LEAKMARKER-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def cluster():
    """A temporary PostgreSQL cluster (tests/postgres.py), one per session, started when a test first asks for it."""
    from postgres import running_cluster

    with running_cluster() as running:
        yield running
