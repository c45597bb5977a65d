"""JupyterLab in headless Chromium: the panel renders, the API Key field works, and a saved notebook never holds the key.

A real ``jupyter lab`` runs on 127.0.0.1 with a token and its own config, data, runtime,
settings and workspaces folders; Debian's Chromium is driven by Playwright. Without
``/usr/bin/chromium`` the tests skip, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "e2e-" + uuid.uuid4().hex

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is missing: .ci/run installs Debian's chromium for the browser tests", pytrace=False)
    pytest.skip("no /usr/bin/chromium (apt-get install chromium) for the browser tests", allow_module_level=True)

from playwright import sync_api as playwright  # noqa: E402  (after the skip: the test extra installs it)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server with widget-state saving on and notebook windowing off; yields (url, folder)."""
    root = tmp_path_factory.mktemp("lab")
    settings = root / "settings"
    for plugin, values in {
        "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / plugin).write_text(json.dumps(values))
    notebooks = root / "notebooks"
    notebooks.mkdir()
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_DATA_DIR=str(root / "data"),
               JUPYTER_RUNTIME_DIR=str(root / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"))
    env.pop("JUPYTERHUB_API_URL", None)
    # The kernel must find the python3 kernelspec of this environment, not of the empty data folder.
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={notebooks}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    server = subprocess.Popen(command, env=env, stdout=open(root / "lab.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (root / "lab.log").read_text()
                assert time.monotonic() < deadline, "JupyterLab did not start"
                time.sleep(0.5)
        yield url, notebooks
    finally:
        server.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def page(lab):
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def open_panel(page, lab, name: str):
    """Write a notebook that shows a sandbox-backed panel, open it, run its cell, and wait for the panel."""
    url, notebooks = lab
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import ai_admin_widgets as aiw\nsandbox = aiw.Sandbox().start()\npanel = sandbox.settings().panel()\npanel"
    )])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, notebooks / name)
    workspace = name.replace(".ipynb", "")  # a fresh workspace: no tab of an earlier test comes back
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{name}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=90_000)
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_selector(".aiw-panel .aiw-add >> visible=true", timeout=90_000)
    return notebooks / name


def save_notebook(page, path: Path) -> str:
    before = path.stat().st_mtime_ns
    page.locator(".lm-MenuBar-itemLabel", has_text="File").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Save Notebook").first.click()
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.1)
    time.sleep(0.3)
    return path.read_text(encoding="utf-8")


def test_add_by_typing_the_key_and_the_saved_notebook_never_holds_it(page, lab):
    path = open_panel(page, lab, "add.ipynb")
    key = "sk-sandbox-E2E" + uuid.uuid4().hex
    page.locator(".aiw-add:visible").click()
    page.locator(".aiw-openai-api-key input:visible").fill(key)

    typed_not_saved = save_notebook(page, path)
    assert '"widgets"' in typed_not_saved, "widget state was not saved, so this test proves nothing"
    assert key[:-4] not in typed_not_saved and key[4:-4] not in typed_not_saved

    page.locator(".aiw-save:visible").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.aiw-status')].some(e => e.innerText.includes('OpenAI ·'))", timeout=60_000
    )
    status = page.locator(".aiw-status:visible").inner_text()
    assert "key …" + key[-4:] in status
    assert page.locator(".aiw-edit:visible").count() == 1 and page.locator(".aiw-remove:visible").count() == 1

    after_save = save_notebook(page, path)
    assert key[:-4] not in after_save and key[4:-4] not in after_save


def test_a_wrong_key_is_shown_beside_the_key_field(page, lab):
    open_panel(page, lab, "wrong.ipynb")
    page.locator(".aiw-add:visible").click()
    page.locator(".aiw-openai-api-key input:visible").fill("sk-wrong-" + uuid.uuid4().hex)
    page.locator(".aiw-openai-api-key input:visible").press("Enter")  # Enter in the key field saves
    page.wait_for_function(
        "() => [...document.querySelectorAll('.aiw-field-error')].some(e => e.innerText.includes('rejected the API Key'))",
        timeout=60_000,
    )
    assert page.locator(".aiw-status:visible").inner_text().startswith("Not configured")
