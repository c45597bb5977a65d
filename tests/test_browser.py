"""JupyterLab in headless Chromium, driven as an admin would: the AI Settings panel, end to end.

A real ``jupyter lab`` (tools/lab_browser.py) runs on 127.0.0.1 with widget-state saving on, and
Debian's Chromium is driven by Playwright. Each test shuts down the kernels of earlier tests and
opens a notebook of its own in a fresh workspace: its first cell starts a sandbox (the practice
provider, in the kernel) and makes the settings on the sandbox's store with keyrings.cryptfile's
encrypted file keyring (what the product's screenshots may show; never the plain-text one), and
the next cells show the panel. The test then works the panel by clicks and keys, asserting on
what the page shows, found by the DOM conventions of the panel's front end (panel.js): the
classes of its nodes, ``<dialog>`` for the dialogs, ``role=radiogroup`` for the provider choice.

Screenshots of the panel in the light and the dark theme go to a temporary folder;
``make screenshots`` sets ``AI_ADMIN_SCREENSHOTS`` to ``docs/img/`` so that they are written there
(and only then). Without ``/usr/bin/chromium`` the tests skip, except in CI (``CI=true``), where
that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lab_browser  # noqa: E402  (tools/lab_browser.py)
from lab_browser import DARK, HIGH_CONTRAST, LIGHT  # noqa: E402

#: Set by ``make screenshots`` to docs/img/; otherwise the screenshots go to a temporary folder.
SCREENSHOTS_ENV = "AI_ADMIN_SCREENSHOTS"
HINT = 4  # characters of a key that the product may show (the hint)
PANEL = ".aiw-panel"
#: One view of a panel: its outermost .aiw-panel element (the root node's box inside it carries the class too).
VIEW = ".aiw-panel:not(.aiw-panel *)"
FORM = ".aiw-panel dialog.aiw-form"
CONFIRMATION = ".aiw-panel dialog.aiw-confirmation"
BANNER_WORDS = "Run the cell again"

if not lab_browser.CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is missing: .ci/run installs Debian's chromium for the browser tests", pytrace=False)
    pytest.skip("no /usr/bin/chromium (apt-get install chromium) for the browser tests", allow_module_level=True)

from playwright import sync_api as playwright  # noqa: E402  (after the skip: the test extra installs it)
from playwright.sync_api import expect  # noqa: E402

expect.set_options(timeout=30_000)  # the kernel answers within seconds; a shared machine may be slow

#: The first cell: a sandbox, and settings on its store with an encrypted file keyring (its password
#: from the environment, as the store reads it). Prints the practice values as one JSON line.
SETUP = """
import json, os
import ai_admin_widgets as aiw
from ai_admin_widgets.access import AccessPolicy, current_user
from keyrings.cryptfile.cryptfile import CryptFileKeyring

os.environ["KEYRING_CRYPTFILE_PASSWORD"] = "practice-keyring-password"
sandbox = aiw.Sandbox(latency_ms={latency_ms}).start()
keyring = CryptFileKeyring()
keyring.file_path = str(sandbox.folder / "keyring.cfg")
keyring.time_cost, keyring.memory_cost = 2, 2**12  # the defaults take seconds for each key
access = AccessPolicy(use_hub=False)
settings = aiw.AISettings(
    home=sandbox.folder / "store", keyring=keyring, openai_base_url=sandbox.openai_base_url,
    access=access, user=current_user(access),
)
print("PRACTICE " + json.dumps({{
    "endpoint": sandbox.azure_endpoint,
    "language": sandbox.azure_deployments["language"],
    "embeddings": sandbox.azure_deployments["embeddings"],
}}))
"""
PANEL_CELL = "panel = settings.panel()\npanel"


# -- the server and the browser ----------------------------------------------------------- #


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with lab_browser.jupyterlab(tmp_path_factory.mktemp("lab"), theme=LIGHT) as running:
        yield running


@pytest.fixture
def page(lab):
    lab.shut_down_kernels()
    with playwright.sync_playwright() as driver:
        browser = lab_browser.launch_chromium(driver)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def open_notebook(page, lab, name: str, *cells: str, latency_ms: float = 0) -> tuple[Path, dict[str, str]]:
    """Write a notebook of SETUP and ``cells``, open it in a fresh workspace, run all its cells and wait
    until every panel shows its row; the notebook's path and the practice values SETUP printed."""
    path = lab_browser.notebook(lab.notebooks / name, SETUP.format(latency_ms=latency_ms), *cells)
    page.goto(lab.open_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    lab_browser.run_all_cells(page)
    expect(page.locator(f"{PANEL} .aiw-row").first).to_be_visible()
    printed = page.locator(".jp-OutputArea-output", has_text="PRACTICE").first.inner_text()
    return path, json.loads(printed.split("PRACTICE", 1)[1].strip().splitlines()[0])


def save_notebook(page, path: Path) -> str:
    """Save the notebook with File > Save Notebook's command (as autosave would: the menu is out of reach
    while a dialog is open) and return the saved file's text."""
    before = path.stat().st_mtime_ns
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
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


#: Every open widget's state as the kernel holds it (what its comms send), as JSON.
KERNEL_STATE = """
import json as _json
from ipywidgets.widgets.widget import _instances as _widgets
print(_json.dumps([_w.get_state() for _w in list(_widgets.values())], default=repr))
"""


def kernel_widget_state(page) -> str:
    """The state of every widget the kernel holds, as JSON text (run outside the notebook's cells)."""
    printed = lab_browser.execute(page, KERNEL_STATE)
    assert printed.startswith("[") and '"aiw-panel' in printed, "the kernel's widget state was not read"
    return printed


def new_key(prefix: str) -> str:
    """``prefix`` (public: the practice keys start with it) and 40 random capital letters, which
    nothing else in a notebook is made of, so any 5 of them in a row can only come from the key."""
    return prefix + "".join(secrets.choice(string.ascii_uppercase) for _ in range(40))


def assert_no_part_of(keys: list[str], text: str, where: str) -> None:
    """No piece of any key's secret part longer than the 4-character hint appears in ``text``."""
    size = HINT + 1
    for key in keys:
        secret = key.lstrip(string.ascii_lowercase + string.digits + "-")
        pieces = {secret[start : start + size] for start in range(len(secret) - size + 1)}
        found = sorted(piece for piece in pieces if piece in text)
        assert not found, f"{where} holds part of a key: {len(found)} pieces of {size} characters"


def assert_no_key_anywhere(page, path: Path, keys: list[str], when: str) -> None:
    """Neither the saved notebook (its outputs and its widget-state metadata) nor the kernel's widget state holds a key."""
    assert_no_part_of(keys, save_notebook(page, path), f"the saved notebook ({when})")
    assert_no_part_of(keys, kernel_widget_state(page), f"the kernel's widget state ({when})")


# -- reading the panel -------------------------------------------------------------------- #


def panel(page, number: int = 0):
    """The ``number``-th view of a panel on the page, in page order."""
    return page.locator(VIEW).nth(number)


def status_text(page, number: int = 0) -> str:
    return panel(page, number).locator(".aiw-status").first.inner_text()


def expect_status(page, words: str, number: int = 0, timeout: float = 30_000) -> None:
    expect(panel(page, number).locator(".aiw-status").first).to_contain_text(words, timeout=timeout)


def field(scope, css_class: str):
    """The input that carries ``css_class`` (panel.js puts a field's classes on its ``<input>``)."""
    return scope.locator(f"input.{css_class}")


def described(page, input_locator, css_class: str) -> str:
    """The text of the element of class ``css_class`` that ``input_locator``'s ``aria-describedby`` names ('' if none)."""
    return input_locator.evaluate(
        """(input, cls) => (input.getAttribute('aria-describedby') || '').split(/\\s+/)
            .map(id => id && document.getElementById(id)).filter(e => e && e.classList.contains(cls))
            .map(e => e.innerText.trim()).join(' ')""",
        css_class,
    )


def expect_buttons(page, shown: tuple[str, ...], absent: tuple[str, ...], number: int = 0) -> None:
    """The row shows the buttons ``shown`` and none of ``absent`` (CSS classes), once the page has caught up."""
    row = panel(page, number).locator(".aiw-row")
    for css_class in shown:
        expect(row.locator(f"button.{css_class}")).to_be_visible()
    for css_class in absent:
        expect(row.locator(f".{css_class}")).to_have_count(0)


def expect_gone(page, dialog, after: str) -> None:
    """``dialog`` leaves the page once ``after`` was pressed; if not, say what the panel shows instead."""
    try:
        expect(dialog).to_have_count(0)
    except AssertionError:
        shown = page.locator(VIEW).first.inner_text()
        raise AssertionError(f"the dialog stayed open after {after}; the panel shows:\n{shown}") from None


def focused(page) -> dict[str, Any]:
    """What has the keyboard focus: its tag, its label (or text), its classes, and whether it is inside the open dialog."""
    return page.evaluate("""() => {
        const element = document.activeElement;
        const label = element.labels && element.labels.length ? element.labels[0].innerText : element.innerText;
        const dialog = document.querySelector('.aiw-panel dialog[open]');
        return {tag: element.tagName.toLowerCase(), label: (label || '').trim(), classes: element.className || '',
                role: element.getAttribute('role') || '', in_dialog: !!(dialog && dialog.contains(element))};
    }""")


def wait_focus(page, selector: str, timeout: float = 30_000) -> None:
    """Wait until the focused element is (or is inside) the first element matching ``selector``."""
    try:
        page.wait_for_function(
            "selector => { const e = document.querySelector(selector); return !!e && e.contains(document.activeElement); }",
            arg=selector,
            timeout=timeout,
        )
    except playwright.TimeoutError:
        where = page.evaluate("""() => {
            const views = [...document.querySelectorAll('.aiw-panel:not(.aiw-panel *)')];
            return views.findIndex(view => view.contains(document.activeElement));
        }""")
        raise AssertionError(
            f"the focus did not reach {selector}: it is on {focused(page)} (in view {where} of the panels)"
        ) from None


def press_until(page, key: str, wanted, limit: int = 40) -> list[dict[str, Any]]:
    """Press ``key`` until ``wanted(focused)`` holds; the focused elements passed on the way."""
    passed = []
    for _ in range(limit):
        page.keyboard.press(key)
        now = focused(page)
        passed.append(now)
        if wanted(now):
            return passed
    raise AssertionError(f"{key} never reached the wanted element; passed {[each['label'] for each in passed]}")


def choose_provider(page, value: str) -> None:
    option = page.locator(f"{FORM} [role=radiogroup].aiw-provider [role=radio].aiw-option-{value}")
    option.click()
    expect(option).to_have_attribute("aria-checked", "true")


# -- themes and screenshots --------------------------------------------------------------- #


def set_theme(page, theme: str) -> None:
    page.evaluate("theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme)
    page.wait_for_function(
        "theme => document.body.dataset.jpThemeName === theme && "
        "getComputedStyle(document.body).getPropertyValue('--jp-layout-color0') !== ''",
        arg=theme,
    )
    # The theme's stylesheet is applied on the next frames: wait for two of them.
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


_CONTRAST = """
(selectors) => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const [r, g, b, a = 1] = rgb(getComputedStyle(node).backgroundColor);
      if (a > 0.5) return [r, g, b];
    }
    return rgb(getComputedStyle(document.body).backgroundColor).slice(0, 3);
  };
  const luminance = ([r, g, b]) => {
    const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const ratios = {};
  for (const selector of selectors) {
    for (const element of document.querySelectorAll(selector)) {
      if (!element.getClientRects().length || !element.innerText.trim()) continue;
      const [l1, l2] = [luminance(rgb(getComputedStyle(element).color)), luminance(background(element))];
      const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
      ratios[selector] = Math.min(ratios[selector] ?? Infinity, ratio);
    }
  }
  return ratios;
}
"""

#: The panel's texts whose contrast is measured: every one shown is checked, the poorest counts.
READABLE = [
    ".aiw-panel h3",
    ".aiw-panel h4",
    ".aiw-panel .aiw-status",
    ".aiw-panel .aiw-health",
    ".aiw-panel .aiw-test-result",
    ".aiw-panel .aiw-warnings",
    ".aiw-panel .aiw-notice",
    ".aiw-panel .aiw-footer",
    ".aiw-panel label",
    ".aiw-panel input",
    ".aiw-panel button",
    ".aiw-panel [role=radio]",
    ".aiw-panel .aiw-field-error",
    ".aiw-panel .aiw-field-notice",
    ".aiw-panel dialog",
]


def assert_readable(page, theme: str) -> dict[str, float]:
    """Text in the panel stands out from what is behind it (WCAG contrast of at least 3:1, in the page)."""
    ratios = page.evaluate(_CONTRAST, READABLE)
    assert ratios, "nothing of the panel was found to measure"
    poor = {selector: round(ratio, 2) for selector, ratio in ratios.items() if ratio < 3}
    assert not poor, f"hard to read in {theme}: {poor}"
    return ratios


def assert_readable_in_every_theme(page) -> None:
    for theme in (LIGHT, DARK, HIGH_CONTRAST):
        set_theme(page, theme)
        assert_readable(page, theme)
    set_theme(page, LIGHT)


@pytest.fixture(scope="session")
def screenshot_folder(tmp_path_factory) -> Path:
    """Where screenshots go: $AI_ADMIN_SCREENSHOTS (``make screenshots``: docs/img/), else a temporary folder."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


PLAIN_TEXT_KEYRING = re.compile(r"plain[- ]?text|PlaintextKeyring", re.IGNORECASE)


def screenshots(page, name: str, folder: Path) -> None:
    """Save the panel (or its open dialog, with a margin of the page around it) in the light and the dark
    theme as <folder>/<name>-light.png and -dark.png, after checking that it is readable in that theme."""
    shown = page.locator(VIEW).first.inner_text()
    assert not PLAIN_TEXT_KEYRING.search(shown), "the screenshot would show the plain-text file keyring"
    folder.mkdir(parents=True, exist_ok=True)
    for theme, suffix in ((LIGHT, "light"), (DARK, "dark")):
        set_theme(page, theme)
        assert_readable(page, theme)
        target = folder / f"{name}-{suffix}.png"
        dialog = page.locator(f"{PANEL} dialog[open]")
        if dialog.count():
            box = dialog.first.bounding_box()
            margin = 24
            page.screenshot(
                path=str(target),
                animations="disabled",
                clip={
                    "x": max(0, box["x"] - margin),
                    "y": max(0, box["y"] - margin),
                    "width": box["width"] + 2 * margin,
                    "height": box["height"] + 2 * margin,
                },
            )
        else:
            element = page.locator(VIEW).first
            element.scroll_into_view_if_needed()
            element.screenshot(path=str(target), animations="disabled")
    set_theme(page, LIGHT)


# -- the flows ---------------------------------------------------------------------------- #


def test_add_openai_test_edit_to_azure_a_refused_save_and_remove(page, lab, screenshot_folder):
    path, sandbox = open_notebook(page, lab, "flows.ipynb", PANEL_CELL)
    assert status_text(page).startswith("Not configured")
    expect_buttons(page, shown=("aiw-add",), absent=("aiw-edit", "aiw-test", "aiw-remove"))
    keys: list[str] = []

    # Add: a modal dialog over the page, OpenAI chosen, the focus in the API Key.
    openai_key = new_key("sk-sandbox-")
    keys.append(openai_key)
    page.locator(f"{PANEL} .aiw-row button.aiw-add").click()
    form = page.locator(FORM)
    expect(form).to_be_visible()
    assert form.evaluate("dialog => dialog.open && dialog.matches(':modal')"), "the form is not a modal dialog"
    title = form.evaluate("dialog => document.getElementById(dialog.getAttribute('aria-labelledby'))?.innerText")
    assert title == "Add OpenAI Integration"
    expect(form.locator("[role=radiogroup].aiw-provider .aiw-option-openai")).to_have_attribute("aria-checked", "true")
    expect(form.locator("[role=radiogroup].aiw-provider .aiw-option-azure_openai")).to_have_attribute(
        "aria-checked", "false"
    )
    wait_focus(page, f"{FORM} input.aiw-openai-api-key")
    assert field(form, "aiw-openai-api-key").get_attribute("type") == "password"
    field(form, "aiw-openai-api-key").fill(openai_key)
    # (a) a notebook saved while the key is typed holds none of it
    assert_no_key_anywhere(page, path, keys, "a key typed, not saved")

    # Save: the row shows the configured integration with Edit, Test and Remove.
    form.locator("button.aiw-save").click()
    expect_status(page, "OpenAI ·")
    expect(form).to_have_count(0)
    assert f"key …{openai_key[-HINT:]}" in status_text(page)
    expect_buttons(page, shown=("aiw-edit", "aiw-test", "aiw-remove"), absent=("aiw-add",))
    assert_no_key_anywhere(page, path, keys, "after Save")

    # Test: both models are authenticated again, said under the row.
    page.locator(f"{PANEL} .aiw-row button.aiw-test").click()
    result = panel(page).locator(".aiw-test-result")
    expect(result).to_have_text(re.compile(r"^[^✓✗]*✓[^✓✗]*✓[^✓✗]*$"))  # both models, each a ✓
    expect(result).not_to_contain_text("Authenticating")

    # Edit, switch to Azure OpenAI, fill both models with the shared endpoint and key, Save.
    azure_key = new_key("sandbox-azure-")
    keys.append(azure_key)
    page.locator(f"{PANEL} .aiw-row button.aiw-edit").click()
    expect(form).to_be_visible()
    assert form.evaluate("d => document.getElementById(d.getAttribute('aria-labelledby'))?.innerText") == (
        "Edit OpenAI Integration"
    )
    choose_provider(page, "azure_openai")
    field(form, "aiw-language-endpoint-url").fill(sandbox["endpoint"])
    field(form, "aiw-language-deployment-id").fill(sandbox["language"])
    field(form, "aiw-language-api-key").fill(azure_key)
    form.locator("input[type=checkbox].aiw-same-endpoint").check()
    # the shared option leaves out the embeddings model's endpoint and key
    expect(field(form, "aiw-embeddings-endpoint-url")).to_have_count(0)
    expect(field(form, "aiw-embeddings-api-key")).to_have_count(0)
    field(form, "aiw-embeddings-deployment-id").fill(sandbox["embeddings"])
    form.locator("button.aiw-save").click()
    expect_status(page, "Azure OpenAI")
    expect(form).to_have_count(0)
    configured = status_text(page)
    assert f"deployment {sandbox['language']}" in configured or sandbox["language"] in configured, configured
    assert f"key …{azure_key[-HINT:]}" in configured
    # the test result described the OpenAI integration, which is gone
    expect(result).to_have_count(0)
    screenshots(page, "configured-row", screenshot_folder)

    # Edit, a wrong key, Save: refused, the error beside the key field; the saved integration unchanged.
    wrong_key = new_key("sandbox-wrong-")
    keys.append(wrong_key)
    page.locator(f"{PANEL} .aiw-row button.aiw-edit").click()
    expect(form.locator(".aiw-option-azure_openai")).to_have_attribute("aria-checked", "true")
    expect(form.locator("input[type=checkbox].aiw-same-endpoint")).to_be_checked()
    key_input = field(form, "aiw-language-api-key")
    key_input.fill(wrong_key)
    form.locator("button.aiw-save").click()
    expect(key_input).to_have_attribute("aria-invalid", "true")
    wait_focus(page, f"{FORM} input.aiw-language-api-key")  # a refused Save puts the cursor in the field marked
    error = described(page, key_input, "aiw-field-error")
    assert "API Key" in error and ("rejected" in error or "not valid" in error), error
    error_id = key_input.evaluate(
        """input => (input.getAttribute('aria-describedby') || '').split(/\\s+/)
            .find(id => document.getElementById(id)?.classList.contains('aiw-field-error'))"""
    )
    assert page.locator(f"[id='{error_id}']").get_attribute("role") == "alert", "the error is not announced"
    expect(form).to_contain_text("Authentication failed, so nothing was saved.")
    expect(form).not_to_contain_text("Authenticating")
    assert status_text(page) == configured, "a refused Save changed the saved integration"
    screenshots(page, "azure-form-error", screenshot_folder)
    assert_no_key_anywhere(page, path, keys, "after a refused Save")

    # Cancel, with a key typed: nothing changes, and the key is nowhere.
    cancelled_key = new_key("sandbox-azure-")
    keys.append(cancelled_key)
    key_input.fill(cancelled_key)
    form.locator("button.aiw-cancel").click()
    expect_gone(page, form, "Cancel")
    assert status_text(page) == configured

    # Remove: a modal confirmation that lands on Cancel; Cancel changes nothing.
    page.locator(f"{PANEL} .aiw-row button.aiw-remove").click()
    confirmation = page.locator(CONFIRMATION)
    expect(confirmation).to_be_visible()
    assert confirmation.evaluate("dialog => dialog.open && dialog.matches(':modal')")
    expect(confirmation).to_contain_text("AI functionality will be disabled")
    wait_focus(page, f"{CONFIRMATION} button.aiw-cancel")
    screenshots(page, "remove-confirmation", screenshot_folder)
    confirmation.locator("button.aiw-cancel").click()
    expect(confirmation).to_have_count(0)
    assert status_text(page) == configured
    expect_buttons(page, shown=("aiw-edit", "aiw-test", "aiw-remove"), absent=("aiw-add",))

    # Remove, Remove: the row shows Add.
    page.locator(f"{PANEL} .aiw-row button.aiw-remove").click()
    confirmation.locator("button.aiw-confirm-remove").click()
    expect_status(page, "Not configured")
    expect_buttons(page, shown=("aiw-add",), absent=("aiw-edit", "aiw-test", "aiw-remove"))

    assert_no_key_anywhere(page, path, keys, "at the end")


def test_a_pasted_target_uri_and_key_are_tidied_when_the_field_is_left_before_any_save(page, lab):
    path, sandbox = open_notebook(page, lab, "tidy.ipynb", PANEL_CELL)
    page.locator(f"{PANEL} .aiw-row button.aiw-add").click()
    form = page.locator(FORM)
    choose_provider(page, "azure_openai")
    version = "2024-10-21"
    target_uri = (
        f"{sandbox['endpoint']}/openai/deployments/{sandbox['language']}/chat/completions?api-version={version}"
    )
    endpoint = field(form, "aiw-language-endpoint-url")
    endpoint.fill(target_uri)
    endpoint.press("Tab")  # leaving the field tidies it: one round trip to the kernel
    expect(endpoint).to_have_value(sandbox["endpoint"])
    expect(field(form, "aiw-language-deployment-id")).to_have_value(sandbox["language"])
    expect(field(form, "aiw-api-version")).to_have_value(version)
    page.wait_for_function(
        """input => (input.getAttribute('aria-describedby') || '').split(/\\s+/)
            .some(id => { const e = document.getElementById(id);
                          return e && e.classList.contains('aiw-field-notice') && e.innerText.trim(); })""",
        arg=endpoint.element_handle(),
    )
    assert described(page, endpoint, "aiw-field-notice"), "no notice beside the Endpoint URL"
    expect(form.locator("button.aiw-save")).to_be_visible()  # nothing was saved: the dialog is still open
    assert status_text(page).startswith("Not configured")

    # A key pasted with "Bearer " and quotes: the input holds the key alone once left.
    key = new_key("sandbox-azure-")
    key_input = field(form, "aiw-language-api-key")
    key_input.fill(f'"Bearer {key}"')
    key_input.press("Tab")
    expect(key_input).to_have_value(key)
    assert described(page, key_input, "aiw-field-notice"), "no notice beside the API Key"

    # Save then takes the tidied values.
    form.locator("input[type=checkbox].aiw-same-endpoint").check()
    field(form, "aiw-embeddings-deployment-id").fill(sandbox["embeddings"])
    form.locator("button.aiw-save").click()
    expect_status(page, "Azure OpenAI")
    assert f"key …{key[-HINT:]}" in status_text(page)
    assert_no_key_anywhere(page, path, [key], "after tidying and Save")


def test_the_whole_add_edit_and_remove_flow_by_keyboard_alone(page, lab):
    open_notebook(page, lab, "keyboard.ipynb", PANEL_CELL)
    page.keyboard.press("Escape")  # command mode; Tab then walks the page, the panel's buttons included
    press_until(page, "Tab", lambda now: "aiw-add" in now["classes"], limit=120)
    page.keyboard.press("Enter")  # Add
    expect(page.locator(FORM)).to_be_visible()
    wait_focus(page, f"{FORM} input.aiw-openai-api-key")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('.aiw-panel dialog input')]
        .filter(input => input.getClientRects().length)
        .filter(input => !(input.labels && [...input.labels].some(label => label.innerText.trim())))
        .map(input => input.outerHTML)""")
    assert unlabelled == []

    # Tab and Shift+Tab stay inside the dialog (past its last element the browser's own UI may take
    # the focus, the document itself, never an element of the page behind the dialog).
    for key in ("Tab", "Shift+Tab"):
        labels = []
        for _ in range(25):
            page.keyboard.press(key)
            now = focused(page)
            assert now["in_dialog"] or now["tag"] == "body", f"{key} left the dialog for {now}"
            labels.append(now["label"])
        assert "Save" in labels and "Cancel" in labels, labels

    # The provider is a radio group: arrows move the choice, and the other provider's fields follow.
    wait_focus(page, FORM)
    press_until(page, "Shift+Tab", lambda now: now["role"] == "radio")
    assert "aiw-option-openai" in focused(page)["classes"]
    page.keyboard.press("ArrowRight")
    expect(page.locator(f"{FORM} .aiw-option-azure_openai")).to_have_attribute("aria-checked", "true")
    expect(page.locator(f"{FORM} .aiw-option-openai")).to_have_attribute("aria-checked", "false")
    wait_focus(page, f"{FORM} .aiw-option-azure_openai")
    expect(field(page.locator(FORM), "aiw-language-endpoint-url")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    expect(page.locator(f"{FORM} .aiw-option-openai")).to_have_attribute("aria-checked", "true")
    expect(field(page.locator(FORM), "aiw-openai-api-key")).to_be_visible()

    # Escape from anywhere in it (here the radio group) closes it; the focus returns to the row.
    page.keyboard.press("Escape")
    expect(page.locator(FORM)).to_have_count(0)
    wait_focus(page, f"{PANEL} .aiw-row button.aiw-add")

    # Add again, type the key, Enter saves; the focus lands on Edit.
    key = new_key("sk-sandbox-")
    page.keyboard.press("Enter")
    wait_focus(page, f"{FORM} input.aiw-openai-api-key")
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    expect_status(page, "OpenAI ·")
    assert f"key …{key[-HINT:]}" in status_text(page)
    expect(page.locator(FORM)).to_have_count(0)
    wait_focus(page, f"{PANEL} .aiw-row button.aiw-edit")

    # Enter in any field saves: Edit, then Enter in the Base URL (the key left empty keeps the saved key).
    page.keyboard.press("Enter")
    wait_focus(page, f"{FORM} input.aiw-openai-api-key")
    press_until(page, "Tab", lambda now: now["label"].startswith("Base URL"))
    page.keyboard.press("Enter")
    expect(page.locator(FORM)).to_have_count(0)
    assert f"key …{key[-HINT:]}" in status_text(page), "Edit with the key left empty keeps the saved key"
    wait_focus(page, f"{PANEL} .aiw-row button.aiw-edit")

    # Remove by keyboard: the confirmation lands on Cancel; Enter there cancels; Escape cancels too.
    press_until(page, "Tab", lambda now: "aiw-remove" in now["classes"])
    page.keyboard.press("Enter")
    wait_focus(page, f"{CONFIRMATION} button.aiw-cancel")
    page.keyboard.press("Enter")
    expect(page.locator(CONFIRMATION)).to_have_count(0)
    assert status_text(page).startswith("OpenAI")
    wait_focus(page, f"{PANEL} .aiw-row button.aiw-edit")
    press_until(page, "Tab", lambda now: "aiw-remove" in now["classes"])
    page.keyboard.press("Enter")
    wait_focus(page, f"{CONFIRMATION} button.aiw-cancel")
    page.keyboard.press("Escape")
    expect(page.locator(CONFIRMATION)).to_have_count(0)
    assert status_text(page).startswith("OpenAI")


#: Every id in the panels is unique in the page, and every reference (label for, aria-*) names an id of its own view.
_IDS = """() => {
    const views = [...document.querySelectorAll('.aiw-panel:not(.aiw-panel *)')];
    const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
    const duplicates = ids.filter((id, index) => ids.indexOf(id) !== index);
    const stray = [];
    for (const view of views) {
        for (const element of view.querySelectorAll('[for], [aria-describedby], [aria-labelledby]')) {
            const names = [element.getAttribute('for'), element.getAttribute('aria-describedby'),
                           element.getAttribute('aria-labelledby')].join(' ').split(/\\s+/).filter(Boolean);
            for (const name of names) {
                const target = document.getElementById(name);
                if (!target || !view.contains(target)) stray.push(name);
            }
        }
    }
    return {views: views.length, duplicates, stray, panel_ids: views.flatMap(v => [...v.querySelectorAll('[id]')]).length};
}"""


def test_two_panels_and_one_shown_twice_keep_their_ids_apart_and_follow_a_change(page, lab):
    path, _ = open_notebook(page, lab, "two.ipynb", PANEL_CELL, "other = settings.panel()\nother", "display(panel)")
    expect(page.locator(f"{PANEL} .aiw-row")).to_have_count(3)
    ids = page.evaluate(_IDS)
    assert ids["views"] == 3, ids
    assert ids["duplicates"] == [] and ids["stray"] == [], ids

    # Add in the second panel: the first (both of its views) follows within a few seconds.
    key = new_key("sk-sandbox-")
    panel(page, 1).locator(".aiw-row button.aiw-add").click()
    form = panel(page, 1).locator("dialog.aiw-form")
    expect(form).to_be_visible()
    field(form, "aiw-openai-api-key").fill(key)
    form.locator("button.aiw-save").click()
    expect_status(page, "OpenAI ·", number=1)
    for number in (0, 2):
        expect_status(page, f"key …{key[-HINT:]}", number=number, timeout=10_000)
        expect_buttons(page, shown=("aiw-edit", "aiw-remove"), absent=("aiw-add",), number=number)

    # A change made outside any panel (here, the settings in the kernel): every view follows.
    lab_browser.execute(page, "settings.remove()")
    for number in range(3):
        expect_status(page, "Not configured", number=number, timeout=10_000)
    assert_no_key_anywhere(page, path, [key], "with two panels")

    # Add in the first panel: both of its views draw the form, and still no id is shared.
    panel(page, 0).locator(".aiw-row button.aiw-add").click()
    for number in (0, 2):
        expect(panel(page, number).locator("dialog.aiw-form input.aiw-openai-api-key")).to_have_count(1)
    expect(panel(page, 1).locator("dialog.aiw-form")).to_have_count(0)
    ids = page.evaluate(_IDS)
    assert ids["panel_ids"] > 0 and ids["duplicates"] == [] and ids["stray"] == [], ids


def test_a_kernel_restart_during_a_save_shows_the_banner_and_nothing_stays_authenticating(page, lab):
    # The sandbox waits 4 s before each answer, so that the Save is still authenticating when the kernel restarts.
    open_notebook(page, lab, "restart.ipynb", PANEL_CELL, latency_ms=4000)
    page.locator(f"{PANEL} .aiw-row button.aiw-add").click()
    form = page.locator(FORM)
    field(form, "aiw-openai-api-key").fill(new_key("sk-sandbox-"))
    form.locator("button.aiw-save").click()
    expect(panel(page)).to_contain_text("Authenticating", use_inner_text=True)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")

    banner = panel(page).locator(".aiw-banner[role=alert]")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(BANNER_WORDS)
    expect(banner).to_contain_text("Nothing was saved")
    expect(page.locator(f"{PANEL} dialog[open]")).to_have_count(0)
    expect(panel(page)).not_to_contain_text("Authenticating", use_inner_text=True)  # what the page shows
    enabled = page.evaluate("""() => [...document.querySelectorAll(
            '.aiw-panel button, .aiw-panel input, .aiw-panel [role=radio]')]
        .filter(e => e.getClientRects().length && !e.disabled && e.getAttribute('aria-disabled') !== 'true')
        .map(e => e.outerHTML.slice(0, 80))""")
    assert enabled == [], f"controls still enabled after the restart: {enabled}"
    lab_browser.wait_kernel_idle(page)
    expect(banner).to_be_visible()  # and it stays once the kernel is back


def test_the_panel_is_readable_in_the_light_dark_and_high_contrast_themes(page, lab):
    open_notebook(page, lab, "themes.ipynb", PANEL_CELL)
    assert_readable_in_every_theme(page)  # the row, not configured
    page.locator(f"{PANEL} .aiw-row button.aiw-add").click()
    form = page.locator(FORM)
    choose_provider(page, "azure_openai")
    field(form, "aiw-language-endpoint-url").fill("not a url")
    field(form, "aiw-language-api-key").fill(new_key("sandbox-wrong-"))
    form.locator("button.aiw-save").click()
    expect(form.locator(".aiw-field-error").first).not_to_be_empty()
    assert_readable_in_every_theme(page)  # the form with its errors


def test_the_same_panel_shown_twice_opens_its_dialog_where_add_was_pressed(page, lab):
    """Both views of one panel draw its form; the one where Add was pressed gets the focus and can be worked."""
    open_notebook(page, lab, "twice.ipynb", PANEL_CELL, "display(panel)")
    expect(page.locator(f"{PANEL} .aiw-row")).to_have_count(2)
    panel(page, 0).locator(".aiw-row button.aiw-add").click()
    expect(page.locator(f"{PANEL} dialog.aiw-form")).to_have_count(2)
    wait_focus(page, f"{VIEW} dialog.aiw-form input.aiw-openai-api-key")  # querySelector: the first view's
    key = new_key("sk-sandbox-")
    page.keyboard.type(key)
    panel(page, 0).locator("dialog.aiw-form button.aiw-save").click()
    for number in (0, 1):
        expect_status(page, f"key …{key[-HINT:]}", number=number)
    expect(page.locator(f"{PANEL} dialog.aiw-form")).to_have_count(0)


def test_keys_stay_in_the_panel_a_retyped_value_is_tidied_again_and_focus_comes_back_after_a_mouse_save(page, lab):
    """What a first tester found: M on a focused button turned the panel's cell into Markdown; typing the same
    untidy host again left it untidy; a Save by mouse left the focus on the page instead of the row."""
    _, sandbox = open_notebook(page, lab, "review.ipynb", PANEL_CELL)
    cells = page.locator(".jp-Notebook .jp-Cell")
    kinds = cells.evaluate_all("cells => cells.map(c => c.classList.contains('jp-MarkdownCell'))")
    page.locator(f"{PANEL} .aiw-row button.aiw-add").click()
    form = page.locator(FORM)
    choose_provider(page, "azure_openai")
    form.locator("[role=radio][aria-checked=true]").first.focus()
    for key in ("m", "a", "b", "d", "d", "y"):  # notebook shortcuts in command mode: none may fire from the panel
        page.keyboard.press(key)
    expect(form).to_be_visible()
    assert cells.evaluate_all("cells => cells.map(c => c.classList.contains('jp-MarkdownCell'))") == kinds

    endpoint = field(form, "aiw-language-endpoint-url")
    for _ in range(2):  # the same untidy text twice: tidied both times
        endpoint.fill("myres.openai.azure.com")
        endpoint.press("Tab")
        expect(endpoint).to_have_value("https://myres.openai.azure.com")
    endpoint.fill(
        f"{sandbox['endpoint']}/openai/deployments/{sandbox['language']}/chat/completions?api-version=2024-10-21"
    )
    endpoint.press("Tab")
    expect(endpoint).to_have_value(sandbox["endpoint"])
    expect(field(form, "aiw-language-deployment-id")).to_have_value(sandbox["language"])

    form.locator("input[type=checkbox].aiw-same-endpoint").check()
    field(form, "aiw-language-api-key").fill(new_key("sandbox-azure-"))
    field(form, "aiw-embeddings-deployment-id").fill(sandbox["embeddings"])
    form.locator("button.aiw-save").click()  # by mouse: the button is disabled while it works
    expect_status(page, "Azure OpenAI")
    wait_focus(page, f"{PANEL} .aiw-row button.aiw-edit")
    page.keyboard.press("m")  # on the row's button too
    assert cells.evaluate_all("cells => cells.map(c => c.classList.contains('jp-MarkdownCell'))") == kinds


def test_a_panel_drawn_from_a_saved_notebook_without_its_kernel_says_to_run_the_cell_again(page, lab):
    path, _ = open_notebook(page, lab, "reopened.ipynb", PANEL_CELL)
    save_notebook(page, path)
    lab.shut_down_kernels()
    page.goto(lab.open_url("reopened.ipynb").replace("reopened?reset", "reopened-again?reset"))
    page.wait_for_selector(".jp-Notebook .jp-Cell")  # a notebook saved here is trusted: its widgets are drawn
    expect(page.locator(f"{PANEL} .aiw-row").first).to_be_visible()  # from the saved widget state, no kernel behind
    banner = panel(page).locator(".aiw-banner[role=alert]")
    expect(banner).to_be_visible(timeout=30_000)
    expect(banner).to_contain_text(BANNER_WORDS)
