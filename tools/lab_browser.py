"""A real JupyterLab on 127.0.0.1 and Debian's Chromium driven by Playwright: tests/test_browser.py and
benchmarks/bench_browser.py.

The lab runs with a token and its own config, data, runtime, settings and workspaces folders, with
widget-state saving on, notebook windowing off, autosave and news checks off, and
``window.jupyterapp`` exposed, so that a caller waits on the kernel's status rather than on the clock.
Chromium is ``/usr/bin/chromium``: Playwright cannot download a browser here, so it is launched
with ``executable_path``.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
LIGHT, DARK, HIGH_CONTRAST = "JupyterLab Light", "JupyterLab Dark", "JupyterLab Dark High Contrast"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: its URL, its token, the folder it serves and its log."""

    url: str
    token: str
    notebooks: Path
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API (``/api/...``) with the token; the decoded JSON answer, or None."""
        request = urllib.request.Request(  # noqa: S310 (self.url is http://127.0.0.1:<port>)
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            body = answer.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """Shut down every session and kernel, so that no earlier kernel competes for the machine."""
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", "DELETE")
        for kernel in self.api("/api/kernels"):
            self.api(f"/api/kernels/{kernel['id']}", "DELETE")
        deadline = time.monotonic() + 30
        while self.api("/api/kernels"):
            if time.monotonic() > deadline:
                raise TimeoutError("the kernels of an earlier run did not shut down within 30 s")
            time.sleep(0.2)

    def open_url(self, name: str) -> str:
        """The URL that opens notebook ``name`` in a fresh workspace of its own (no tab of an earlier page comes back)."""
        workspace = name.removesuffix(".ipynb")
        return f"{self.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}"


@contextmanager
def jupyterlab(root: Path, theme: str = LIGHT, environment: dict[str, str] | None = None) -> Iterator[Lab]:
    """Run ``jupyter lab`` with its folders under ``root`` until the block ends.

    Args:
        root: an empty folder; the lab serves ``root/notebooks`` and logs to ``root/lab.log``.
        theme: the theme the lab starts with.
        environment: variables to add to the lab's (and so its kernels') environment.
    Raises:
        RuntimeError: the lab exited, or did not answer within 120 s (its log is in the message).
    """
    settings = root / "settings"
    for plugin, values in {
        "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": theme},
    }.items():
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / plugin).write_text(json.dumps(values))
    notebooks = root / "notebooks"
    notebooks.mkdir()
    token = "lab-" + uuid.uuid4().hex
    port = free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
        **(environment or {}),
    )
    env.pop("JUPYTERHUB_API_URL", None)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
    ]
    log = root / "lab.log"
    with open(log, "w") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    lab = Lab(f"http://127.0.0.1:{port}", token, notebooks, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                lab.api("/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield lab
    finally:
        server.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def launch_chromium(driver: Any) -> Any:
    """Debian's Chromium, headless, from a started ``sync_playwright()``."""
    return driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def notebook(path: Path, *cells: str) -> Path:
    """Write a notebook of code cells ``cells`` (no outputs) for the Python kernel at ``path``."""
    document = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"cell-{number}", "metadata": {}, "outputs": []}
            | {"source": source}
            for number, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


KERNEL_STATUS = "() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel?.status"


def wait_kernel_idle(page: Any, timeout_ms: float = 120_000) -> None:
    """Wait until the open notebook's kernel is started and idle."""
    page.wait_for_function(f"() => ({KERNEL_STATUS})() === 'idle'", timeout=timeout_ms)


def run_all_cells(page: Any) -> None:
    """Run every cell of the open notebook and wait until the last one has finished."""
    wait_kernel_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
            const failed = document.querySelector('.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]');
            return failed || (prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)));
        }""",
        timeout=180_000,
    )
    failed = page.locator('.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    if failed.count():
        raise AssertionError(f"a cell failed: {failed.first.inner_text()[-3000:]}")
    wait_kernel_idle(page)


_EXECUTE = """async (code) => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const future = kernel.requestExecute({code, silent: false, store_history: false});
    const out = [];
    future.onIOPub = (message) => {
        const type = message.header.msg_type;
        if (type === 'stream') out.push(message.content.text);
        if (type === 'error') out.push(message.content.ename + ': ' + message.content.evalue);
    };
    await future.done;
    return out.join('');
}"""


def execute(page: Any, code: str) -> str:
    """Run ``code`` in the open notebook's kernel outside any cell (nothing enters the notebook); its printed text."""
    return page.evaluate(_EXECUTE, code)
