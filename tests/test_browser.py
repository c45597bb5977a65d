"""JupyterLab in headless Chromium, driven as an admin would: the quickstart's panel, end to end.

A real ``jupyter lab`` runs on 127.0.0.1 with a token and its own config, data, runtime,
settings and workspaces folders, with widget-state saving on, notebook windowing off and
autosave and news checks off. Debian's Chromium is driven by Playwright. Each test shuts
down the kernels of earlier tests, opens a fresh copy of ``notebooks/01_quickstart.ipynb``
in a fresh workspace, runs all its cells and then works the panel by clicks and typing,
asserting on what the page shows (found by the CSS classes of DESIGN.md). Screenshots of
the panel in the light and the dark theme are taken into a temporary folder; ``make screenshots``
sets ``AI_ADMIN_SCREENSHOTS`` to ``docs/img/`` so that they are written there (and only then).

Without ``/usr/bin/chromium`` the tests skip, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import string
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "e2e-" + uuid.uuid4().hex
ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "notebooks" / "01_quickstart.ipynb"
#: Set by ``make screenshots`` to docs/img/; otherwise the screenshots go to a temporary folder.
SCREENSHOTS_ENV = "AI_ADMIN_SCREENSHOTS"
LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"
HINT = 4  # characters of a key that the product may show (the hint)

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is missing: .ci/run installs Debian's chromium for the browser tests", pytrace=False)
    pytest.skip("no /usr/bin/chromium (apt-get install chromium) for the browser tests", allow_module_level=True)

from playwright import sync_api as playwright  # noqa: E402  (after the skip: the test extra installs it)
from playwright.sync_api import expect  # noqa: E402

expect.set_options(timeout=30_000)  # the kernel answers within seconds; a shared machine may be slow


# -- the server ----------------------------------------------------------------------------- #


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _api(url: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = answer.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server; yields (url, folder it serves)."""
    root = tmp_path_factory.mktemp("lab")
    settings = root / "settings"
    for plugin, values in {
        "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": LIGHT},
    }.items():
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / plugin).write_text(json.dumps(values))
    notebooks = root / "notebooks"
    notebooks.mkdir()
    port = _free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
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
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
    ]  # window.jupyterapp: wait on the kernel, not on sleeps
    server = subprocess.Popen(command, env=env, stdout=open(root / "lab.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _api(url, "/api/status")
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


def shut_down_kernels(url: str) -> None:
    """Shut down every session and kernel the server has, so no earlier test's kernel competes."""
    for session in _api(url, "/api/sessions"):
        _api(url, f"/api/sessions/{session['id']}", "DELETE")
    for kernel in _api(url, "/api/kernels"):
        _api(url, f"/api/kernels/{kernel['id']}", "DELETE")
    deadline = time.monotonic() + 30
    while _api(url, "/api/kernels"):
        assert time.monotonic() < deadline, "kernels of an earlier test did not shut down"
        time.sleep(0.2)


@pytest.fixture
def page(lab):
    shut_down_kernels(lab[0])
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


# -- waiting on JupyterLab, not on the clock -------------------------------------------------- #

_KERNEL_STATUS = "() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel?.status"


def wait_kernel_idle(page) -> None:
    """Wait until the open notebook's kernel is started and idle."""
    page.wait_for_function(f"() => ({_KERNEL_STATUS})() === 'idle'", timeout=120_000)


def run_all_cells(page) -> None:
    """Run every cell of the open notebook and wait until the last one has finished."""
    wait_kernel_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=180_000,
    )
    wait_kernel_idle(page)


def open_quickstart(page, lab, name: str) -> Path:
    """Copy the quickstart, open it in a fresh workspace, run all cells, and wait for the panel to show Add."""
    url, notebooks = lab
    path = notebooks / name
    shutil.copy(QUICKSTART, path)
    workspace = name.removesuffix(".ipynb")  # a fresh workspace: no tab of an earlier test comes back
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{name}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    run_all_cells(page)
    page.wait_for_selector(".aiw-panel .aiw-add >> visible=true")
    return path


def practice_values(page) -> dict[str, str]:
    """The sandbox's practice values, as the quickstart prints them for the admin."""
    text = page.locator(".jp-OutputArea-output", has_text="Practice values").first.inner_text()
    return {
        "endpoint": re.search(r"Endpoint URL\s+(http://127\.0\.0\.1:\d+)", text).group(1),
        "language": re.search(r"Deployment ID\s+(\S+) \(language model\)", text).group(1),
        "embeddings": re.search(r", (\S+) \(embeddings model\)", text).group(1),
    }


def save_notebook(page, path: Path) -> str:
    """Save the notebook as an admin would (File > Save Notebook) and return the saved file's text."""
    before = path.stat().st_mtime_ns
    page.locator(".lm-MenuBar-itemLabel", has_text="File").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Save Notebook").first.click()
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.1)
    text = path.read_text(encoding="utf-8")
    assert '"application/vnd.jupyter.widget-state+json"' in text, (
        "widget state was not saved: this check proves nothing"
    )
    return text


def new_key(prefix: str) -> str:
    """``prefix`` (public: the practice values print it) and 40 random capital letters, which
    nothing else in a notebook is made of, so any 5 of them in a row can only come from the key."""
    return prefix + "".join(secrets.choice(string.ascii_uppercase) for _ in range(40))


def assert_no_part_of(key: str, text: str, when: str) -> None:
    """No piece of ``key``'s secret part longer than the 4-character hint appears in ``text``."""
    secret = key.lstrip(string.ascii_lowercase + string.digits + "-")
    size = HINT + 1
    pieces = {secret[start : start + size] for start in range(len(secret) - size + 1)}
    found = sorted(piece for piece in pieces if piece in text)
    assert not found, f"the saved notebook holds part of the key ({when}): {len(found)} pieces of {size} characters"


def status_text(page) -> str:
    return page.locator(".aiw-panel .aiw-status").first.inner_text()


def wait_text(page, selector: str, words: str) -> None:
    """Wait until the first element matching ``selector`` shows ``words``."""
    page.wait_for_function(
        "([selector, words]) => document.querySelector(selector)?.innerText.includes(words)", arg=[selector, words]
    )


def wait_status(page, words: str) -> None:
    wait_text(page, ".aiw-panel .aiw-status", words)


def field(page, css_class: str):
    """The input of the visible field with ``css_class`` (e.g. ``aiw-language-api-key``)."""
    return page.locator(f".aiw-panel .{css_class} input >> visible=true")


def error_beside(page, css_class: str):
    """The error shown in the same field box as the input with ``css_class``."""
    box = page.locator(f".aiw-panel .{css_class} >> visible=true").locator("xpath=..")
    return box.locator(".aiw-field-error")


def expect_buttons(page, shown: tuple[str, ...], hidden: tuple[str, ...]) -> None:
    """The row shows the buttons ``shown`` and none of ``hidden`` (CSS classes), once the page has caught up."""
    for css_class in shown:
        expect(page.locator(f".aiw-panel .aiw-row .{css_class}")).to_be_visible()
    for css_class in hidden:
        expect(page.locator(f".aiw-panel .aiw-row .{css_class}")).to_be_hidden()


# -- themes and screenshots --------------------------------------------------------------- #


def set_theme(page, theme: str) -> None:
    page.evaluate("theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme)
    light = "true" if theme == LIGHT else "false"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    page.wait_for_timeout(300)  # the theme's stylesheet is applied on the next frames


_CONTRAST = """
(selectors) => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const [r, g, b, a = 1] = rgb(getComputedStyle(node).backgroundColor);
      if (a > 0.5) return [r, g, b];
    }
    return [255, 255, 255];
  };
  const luminance = ([r, g, b]) => {
    const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const ratios = {};
  for (const selector of selectors) {
    const element = [...document.querySelectorAll(selector)].find(e => e.offsetParent !== null && e.innerText !== '');
    if (!element) continue;
    const [l1, l2] = [luminance(rgb(getComputedStyle(element).color)), luminance(background(element))];
    ratios[selector] = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  }
  return ratios;
}
"""


def assert_readable(page, theme: str) -> None:
    """Text in the panel stands out from what is behind it (WCAG contrast of at least 3:1)."""
    selectors = [
        ".aiw-panel .aiw-status",
        ".aiw-panel .aiw-input-label",
        ".aiw-panel .aiw-field-error span",
        ".aiw-panel .aiw-field-notice span",
        ".aiw-panel .aiw-warnings span",
        ".aiw-panel .aiw-health span",
        ".aiw-panel h3",
        ".aiw-panel .aiw-confirmation .widget-html-content",
    ]
    ratios = page.evaluate(_CONTRAST, selectors)
    assert ratios, "nothing of the panel was found to measure"
    poor = {selector: round(ratio, 2) for selector, ratio in ratios.items() if ratio < 3}
    assert not poor, f"hard to read in {theme}: {poor}"


@pytest.fixture(scope="session")
def screenshot_folder(tmp_path_factory) -> Path:
    """Where screenshots go: $AI_ADMIN_SCREENSHOTS (``make screenshots``: docs/img/), else a temporary folder."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def screenshots(page, name: str, folder: Path) -> None:
    """Save the panel in the light and the dark theme as <folder>/<name>-light.png and -dark.png."""
    folder.mkdir(parents=True, exist_ok=True)
    for theme, suffix in ((LIGHT, "light"), (DARK, "dark")):
        set_theme(page, theme)
        assert_readable(page, theme)
        panel = page.locator(".aiw-panel").first
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(folder / f"{name}-{suffix}.png"), animations="disabled")
    set_theme(page, LIGHT)


# -- the tests ---------------------------------------------------------------------------- #


def test_the_admin_adds_switches_to_azure_is_refused_a_wrong_key_and_removes(page, lab, screenshot_folder):
    path = open_quickstart(page, lab, "flows.ipynb")
    sandbox = practice_values(page)
    assert status_text(page).startswith("Not configured")

    # Add, OpenAI, type the key: (a) a notebook saved while the key is typed holds none of it.
    openai_key = new_key("sk-sandbox-")
    page.locator(".aiw-panel .aiw-add >> visible=true").click()
    expect(page.locator(".aiw-panel .aiw-provider button.mod-active")).to_have_text("OpenAI")
    field(page, "aiw-openai-api-key").fill(openai_key)
    assert_no_part_of(openai_key, save_notebook(page, path), "typed, not saved")

    # Save: the row shows the configured integration with Edit and Remove.
    page.locator(".aiw-panel .aiw-save >> visible=true").click()
    wait_status(page, "OpenAI ·")
    assert f"key …{openai_key[-HINT:]}" in status_text(page)
    page.locator(".aiw-panel .aiw-form").wait_for(state="hidden")
    expect_buttons(page, shown=("aiw-edit", "aiw-test", "aiw-remove"), hidden=("aiw-add",))
    # (b) after a successful Save
    assert_no_part_of(openai_key, save_notebook(page, path), "after Save")

    # Edit, switch to Azure OpenAI, fill both models with the shared endpoint and key, Save.
    azure_key = new_key("sandbox-azure-")
    page.locator(".aiw-panel .aiw-edit >> visible=true").click()
    page.locator(".aiw-panel .aiw-provider button", has_text="Azure OpenAI").click()
    field(page, "aiw-language-endpoint-url").fill(sandbox["endpoint"])
    field(page, "aiw-language-deployment-id").fill(sandbox["language"])
    field(page, "aiw-language-api-key").fill(azure_key)
    page.locator(".aiw-panel .aiw-same-endpoint input[type=checkbox]").check()
    # the shared option hides the embeddings model's endpoint and key
    page.locator(".aiw-panel .aiw-embeddings-endpoint-url").wait_for(state="hidden")
    page.locator(".aiw-panel .aiw-embeddings-api-key").wait_for(state="hidden")
    field(page, "aiw-embeddings-deployment-id").fill(sandbox["embeddings"])
    page.locator(".aiw-panel .aiw-save >> visible=true").click()
    wait_status(page, "Azure OpenAI")
    configured = status_text(page)
    assert f"deployment {sandbox['language']}" in configured and f"deployment {sandbox['embeddings']}" in configured
    assert f"key …{azure_key[-HINT:]}" in configured
    page.locator(".aiw-panel .aiw-form").wait_for(state="hidden")
    screenshots(page, "configured-row", screenshot_folder)

    # Edit, type a wrong key, Save: the error shows beside the key field; the saved integration is unchanged.
    wrong_key = new_key("sandbox-wrong-")
    page.locator(".aiw-panel .aiw-edit >> visible=true").click()
    expect(page.locator(".aiw-panel .aiw-provider button.mod-active")).to_have_text("Azure OpenAI")
    expect(page.locator(".aiw-panel .aiw-same-endpoint input[type=checkbox]")).to_be_checked()
    field(page, "aiw-language-api-key").fill(wrong_key)
    page.locator(".aiw-panel .aiw-save >> visible=true").click()
    error = error_beside(page, "aiw-language-api-key")
    error.get_by_text("API Key", exact=False).wait_for()
    assert "rejected" in error.inner_text() or "not valid" in error.inner_text(), error.inner_text()
    # announced to screen readers, and tied to the input
    announced = error.locator("[role=alert]")
    assert announced.count() == 1
    assert field(page, "aiw-language-api-key").get_attribute("aria-label") == "API Key, Language model"
    described = field(page, "aiw-language-api-key").get_attribute("aria-describedby").split()
    assert announced.get_attribute("id") in described
    assert field(page, "aiw-language-api-key").get_attribute("aria-invalid") == "true"
    wait_text(page, ".aiw-panel .aiw-form .aiw-message", "Authentication failed, so nothing was saved.")
    assert status_text(page) == configured, "a refused Save changed the saved integration"
    screenshots(page, "azure-form-error", screenshot_folder)
    # (d) after a failed Save
    assert_no_part_of(wrong_key, save_notebook(page, path), "after a failed Save")

    # (c) after Cancel: a key typed and then cancelled leaves nothing either.
    cancelled_key = new_key("sandbox-azure-")
    field(page, "aiw-language-api-key").fill(cancelled_key)
    page.locator(".aiw-panel .aiw-cancel >> visible=true").click()
    page.locator(".aiw-panel .aiw-form").wait_for(state="hidden")
    assert status_text(page) == configured
    assert_no_part_of(cancelled_key, save_notebook(page, path), "after Cancel")

    # Remove, Cancel: nothing changes.
    page.locator(".aiw-panel .aiw-remove >> visible=true").click()
    confirmation = page.locator(".aiw-panel .aiw-confirmation")
    confirmation.wait_for(state="visible")
    assert "AI functionality will be disabled" in confirmation.inner_text()
    screenshots(page, "remove-confirmation", screenshot_folder)
    confirmation.locator(".aiw-cancel").click()
    confirmation.wait_for(state="hidden")
    assert status_text(page) == configured
    expect_buttons(page, shown=("aiw-edit", "aiw-remove"), hidden=("aiw-add",))

    # Remove, Remove: the row shows Add.
    page.locator(".aiw-panel .aiw-remove >> visible=true").click()
    confirmation.locator(".aiw-confirm-remove").click()
    wait_status(page, "Not configured")
    expect_buttons(page, shown=("aiw-add",), hidden=("aiw-edit", "aiw-test", "aiw-remove"))

    final = save_notebook(page, path)
    for key in (openai_key, azure_key, wrong_key, cancelled_key):
        assert_no_part_of(key, final, "at the end")


def _focused(page) -> dict[str, str]:
    """What has the keyboard focus: its tag, its label (or text) and its widget's CSS classes."""
    return page.evaluate("""() => {
        const element = document.activeElement;
        const label = element.labels && element.labels.length ? element.labels[0].innerText : element.innerText;
        return {tag: element.tagName.toLowerCase(), label: (label || '').trim(),
                classes: (element.closest('[class*="aiw-"]') || element).className};
    }""")


def _press_until(page, key: str, wanted, limit: int = 40) -> list[str]:
    """Press ``key`` until ``wanted(focused)`` holds; return the labels passed on the way."""
    passed = []
    for _ in range(limit):
        page.keyboard.press(key)
        focused = _focused(page)
        passed.append(focused["label"])
        if wanted(focused):
            return passed
    raise AssertionError(f"{key} never reached the wanted element; passed {passed}")


def test_the_whole_add_flow_by_keyboard_alone(page, lab):
    open_quickstart(page, lab, "keyboard.ipynb")
    # Every input in the form has a visible label tied to it.
    page.keyboard.press("Escape")  # command mode; Tab then walks the page, the panel's buttons included
    _press_until(page, "Tab", lambda focused: "aiw-add" in focused["classes"], limit=80)
    page.keyboard.press("Enter")  # Add
    page.locator(".aiw-panel .aiw-form").wait_for(state="visible")
    page.wait_for_function("() => document.activeElement?.closest('.aiw-openai-api-key') !== null")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('.aiw-panel .aiw-form input')]
        .filter(input => input.offsetParent !== null)
        .filter(input => !(input.labels && [...input.labels].some(label => label.innerText.trim())))
        .map(input => input.outerHTML)""")
    assert unlabelled == []

    # Tab follows the form: key, Base URL, Organization ID, Project ID, then Save and Cancel.
    assert _focused(page)["label"] == "API Key"
    order = _press_until(page, "Tab", lambda focused: focused["label"] == "Cancel")
    assert order == ["Base URL", "Organization ID", "Project ID", "Save", "Cancel"], order

    # Escape in a field cancels: the form closes and the focus returns to Add.
    _press_until(page, "Shift+Tab", lambda focused: focused["label"] == "API Key")
    page.keyboard.press("Escape")
    page.locator(".aiw-panel .aiw-form").wait_for(state="hidden")
    page.wait_for_function("() => document.activeElement?.closest('.aiw-add') !== null")

    # Add again, type the key, Enter saves.
    key = new_key("sk-sandbox-")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement?.closest('.aiw-openai-api-key') !== null")
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    wait_status(page, "OpenAI ·")
    assert f"key …{key[-HINT:]}" in status_text(page)
    page.locator(".aiw-panel .aiw-form").wait_for(state="hidden")
    page.wait_for_function("() => document.activeElement?.closest('.aiw-edit') !== null")

    # Enter in any field saves: Edit, then Enter in the Base URL field.
    page.keyboard.press("Enter")  # Edit
    page.wait_for_function("() => document.activeElement?.closest('.aiw-openai-api-key') !== null")
    page.keyboard.press("Tab")
    assert _focused(page)["label"] == "Base URL"
    page.keyboard.press("Enter")
    page.locator(".aiw-panel .aiw-form").wait_for(state="hidden")
    assert f"key …{key[-HINT:]}" in status_text(page), "Edit with the key left empty keeps the saved key"
