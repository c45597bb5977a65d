"""The panel in Chromium: from running its cell to its row being visible, against a bare ipywidgets form.

A real JupyterLab (tools/lab_browser.py, as tests/test_browser.py starts it) and Debian's Chromium
driven by Playwright. One notebook, one kernel: its first cell starts a sandbox, saves an Azure
OpenAI integration (shared endpoint) into the sandbox's store, and defines the bare form
(:data:`common.BARE_FORM_CODE`, the form bench_panel measures against). Then, in turns, the panel's
cell (``settings.panel()``) and the bare form's cell are run, each timed in the page from the
moment the cell is run (``notebook:run-cell``) to the first animation frame where the panel's
``.aiw-row`` (or the form's first input) is laid out and visible. Before each run every output is
cleared and every widget of the earlier runs closed in the kernel, so only one view is ever live.
In the kernel each cell also records how long building its widget took, which splits our time
into the kernel's part and the rest (the comm messages, loading the front-end module, drawing).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import BARE_FORM, BARE_FORM_CODE, ROOT, emit, figure, interleaved, isolate_environment, milliseconds

sys.path.insert(0, str(ROOT / "tools"))
import lab_browser  # tools/lab_browser.py

RUNS = 11
TARGET = 1.5
PANEL_SELECTOR = ".aiw-panel .aiw-row"
BARE_SELECTOR = ".bare-form > :first-child"

SETUP = (
    """
import json, time
import ipywidgets
import ai_admin_widgets as aiw
import ai_admin_widgets.widgets.panel  # imported here: the cells below time the panel, not the import

sandbox = aiw.Sandbox().start()
settings = sandbox.settings()
settings.save(aiw.AzureOpenAIIntegration.shared(
    endpoint_url=sandbox.azure_endpoint,
    api_key=sandbox.azure_api_key,
    language_deployment_id=sandbox.azure_deployments["language"],
    embeddings_deployment_id=sandbox.azure_deployments["embeddings"],
))
shown, built = [], {"panel": [], "bare": []}
"""
    + BARE_FORM_CODE
)
PANEL_CELL = """_started = time.perf_counter()
shown.append(settings.panel())
built["panel"].append(time.perf_counter() - _started)
shown[-1]"""
BARE_CELL = """_started = time.perf_counter()
shown.append(bare_form()[0])
built["bare"].append(time.perf_counter() - _started)
shown[-1]"""
CLOSE = "for _widget in shown: _widget.close()\nshown.clear()"

#: Runs cell ``index`` and resolves with the milliseconds until ``selector`` is laid out and visible.
TIME_CELL = """async ([index, selector]) => {
    const app = window.jupyterapp;
    const notebook = app.shell.currentWidget.content;
    notebook.activeCellIndex = index;
    notebook.deselectAll();
    const visible = () => {
        const element = document.querySelector(selector);
        if (!element) return false;
        const box = element.getBoundingClientRect();
        return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== 'hidden';
    };
    const started = performance.now();
    const ran = app.commands.execute('notebook:run-cell');
    while (!visible()) await new Promise(resolve => requestAnimationFrame(resolve));
    const elapsed = performance.now() - started;
    await ran;
    return elapsed;
}"""
CLEAR = "() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')"


def main() -> None:
    from playwright.sync_api import sync_playwright

    isolate_environment()
    if not lab_browser.CHROMIUM.exists():
        raise SystemExit("no /usr/bin/chromium (apt-get install chromium): the browser benchmark needs it")
    with (
        tempfile.TemporaryDirectory(prefix="ai-admin-bench-lab-") as folder,
        lab_browser.jupyterlab(Path(folder)) as lab,
        sync_playwright() as driver,
    ):
        lab_browser.notebook(lab.notebooks / "bench.ipynb", SETUP, PANEL_CELL, BARE_CELL)
        browser = lab_browser.launch_chromium(driver)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(120_000)
            page.goto(lab.open_url("bench.ipynb"))
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            lab_browser.wait_kernel_idle(page)
            page.evaluate("() => { const n = window.jupyterapp.shell.currentWidget.content; n.activeCellIndex = 0; }")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")
            page.wait_for_function("() => /\\[\\d+\\]/.test(document.querySelector('.jp-InputPrompt').textContent)")
            lab_browser.wait_kernel_idle(page)
            failed = lab_browser.execute(page, "print(settings.status().configured)")
            if failed.strip() != "True":
                raise SystemExit(f"the setup cell did not save the integration: {failed[-500:]}")

            def timed(index: int, selector: str) -> float:
                lab_browser.execute(page, CLOSE)
                page.evaluate(CLEAR)
                page.wait_for_function("() => !document.querySelector('.aiw-panel, .bare-form')")
                lab_browser.wait_kernel_idle(page)
                seconds = page.evaluate(TIME_CELL, [index, selector]) / 1000
                lab_browser.wait_kernel_idle(page)
                return seconds

            times = interleaved(
                {"panel": lambda: timed(1, PANEL_SELECTOR), "bare": lambda: timed(2, BARE_SELECTOR)}, runs=RUNS
            )
            kernel = json.loads(lab_browser.execute(page, "print(json.dumps(built))"))
        finally:
            browser.close()

    panel_times, bare_times = times["panel"], times["bare"]
    # The kernel's share: building the widget (its comm opened, its state sent), the warm-up run left out.
    kernel_panel = statistics.median(kernel["panel"][1:])
    kernel_bare = statistics.median(kernel["bare"][1:])
    ours, theirs = statistics.median(panel_times), statistics.median(bare_times)
    ratio = ours / theirs
    split = (
        f"Of our median {milliseconds(ours)}, building the panel in the kernel took {milliseconds(kernel_panel)}, "
        f"the rest ({milliseconds(ours - kernel_panel)}) is the messages, the front-end module and drawing; "
        f"the bare form: {milliseconds(kernel_bare)} in the kernel, {milliseconds(theirs - kernel_bare)} the rest"
    )
    inputs = ", ".join(f"{count} {kind}" for kind, count in BARE_FORM.items())
    emit(
        [
            figure(
                "panel in Chromium: cell run to row visible",
                ours="in JupyterLab in Chromium, running `settings.panel()`'s cell until the panel's row is visible",
                measured=panel_times,
                baseline=f"the same for a bare ipywidgets form ({inputs}) until its first input is visible",
                baseline_measured=bare_times,
                target=f"ratio ≤ {TARGET:g}",
                at_most=TARGET,
                how=(
                    f"{RUNS} runs of each, interleaved, after one untimed run each, in one kernel of a real "
                    "JupyterLab, headless Chromium (Playwright); timed in the page from `notebook:run-cell` to the "
                    "first animation frame where the element is laid out, every earlier output cleared and its "
                    f"widgets closed first; the integration saved (Azure OpenAI, shared endpoint). {split}"
                ),
                miss=f"The ratio is {ratio:.2f}. {split}.",
                extra={
                    "kernel_build_median_seconds": {"panel": kernel_panel, "bare": kernel_bare},
                    "kernel_build_seconds": kernel,
                },
            )
        ]
    )


if __name__ == "__main__":
    main()
