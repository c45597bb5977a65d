"""What the benchmark scripts share: interleaved timing, medians, figures, a sandbox in its own process.

Every benchmark script prints one JSON document on stdout, ``{"figures": [figure, ...]}``,
where a figure is the dictionary made by :func:`figure`; ``run.py`` collects them into
RESULTS.md. Nothing here contacts anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: Variables that would send requests through a proxy or ask a real JupyterHub; removed for every benchmark.
OUTSIDE_WORLD_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "JUPYTERHUB_API_URL",
    "JUPYTERHUB_API_TOKEN",
    "JUPYTERHUB_USER",
    "AI_ADMIN_HOME",
)

#: Practice keys: the sandbox accepts any key with these prefixes (see ai_admin_widgets.sandbox),
#: so a benchmark can use a sandbox that runs in another process. Fresh for each run, never printed.
OPENAI_PRACTICE_KEY = f"sk-sandbox-bench-{secrets.token_hex(12)}"
AZURE_PRACTICE_KEY = f"sandbox-azure-bench-{secrets.token_hex(12)}"
AZURE_DEPLOYMENTS = {"language": "chat-gpt-4o", "embeddings": "embeddings-3-small"}

#: The bare ipywidgets form the panel is measured against (bench_panel, bench_panel_browser): the inputs
#: of each kind, and the buttons, that the ipywidgets panel of issue 13 held (counted in it then).
BARE_FORM = {"Text": 10, "Password": 3, "ToggleButtons": 1, "Checkbox": 1, "Button": 10}

#: Python that defines ``bare_form(typed_values=0) -> (form, click, message)``: :data:`BARE_FORM` in one
#: ``VBox`` (CSS class ``bare-form``), ``typed_values`` text inputs filled, and ``click`` a button whose handler
#: reads every field and writes one line into ``message``. Source text, so that a kernel can run the same form.
BARE_FORM_CODE = f"""
def bare_form(typed_values=0, kinds={BARE_FORM!r}):
    import ipywidgets as widgets

    inputs = [widgets.Text(description=f"Field {{number}}") for number in range(kinds["Text"])]
    inputs += [widgets.Password(description=f"Key {{number}}") for number in range(kinds["Password"])]
    inputs += [widgets.ToggleButtons(options=["OpenAI", "Azure OpenAI"]) for _ in range(kinds["ToggleButtons"])]
    inputs += [widgets.Checkbox(description=f"Option {{number}}") for number in range(kinds["Checkbox"])]
    buttons = [widgets.Button(description=f"Button {{number}}") for number in range(kinds["Button"])]
    message = widgets.HTML()

    def clicked(_):
        message.value = f"{{sum(bool(item.value) for item in inputs)}} fields filled"

    buttons[0].on_click(clicked)
    form = widgets.VBox([*inputs, widgets.HBox(buttons), message])
    form.add_class("bare-form")
    for item in [item for item in inputs if isinstance(item, widgets.Text)][:typed_values]:
        item.value = "typed"
    return form, buttons[0].click, message
"""


def bare_form(typed_values: int = 0) -> tuple[Any, Callable[[], None], Any]:
    """:data:`BARE_FORM_CODE`'s form, made in this process: (the ``VBox``, a click on its first button, the message)."""
    if not _bare_form:
        exec(BARE_FORM_CODE, _bare_form)  # our own constant source text, compiled once (not inside a timed run)
    return _bare_form["bare_form"](typed_values)


_bare_form: dict[str, Any] = {}


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _loopback_only(event: str, arguments: tuple[Any, ...]) -> None:
    """An audit hook: any connection or name lookup beyond 127.0.0.1 raises instead of leaving the machine."""
    if event == "socket.connect":
        address = arguments[1]
        if isinstance(address, tuple) and address and address[0] not in LOOPBACK:
            raise PermissionError(
                f"the benchmarks contact nothing but 127.0.0.1 (a connection to {address[0]} was attempted)"
            )
    elif event == "socket.getaddrinfo":
        host = arguments[0]
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK:
            raise PermissionError(f"the benchmarks contact nothing but 127.0.0.1 (a lookup of {name!r} was attempted)")


def isolate_environment() -> None:
    """Keep this benchmark process on 127.0.0.1.

    Removes the proxy and JupyterHub variables (OUTSIDE_WORLD_VARIABLES) from the
    environment, and adds an audit hook that makes any connection or name lookup beyond
    the loopback addresses fail (the sandbox's ``.invalid`` names are answered before any
    lookup happens).
    """
    for name in OUTSIDE_WORLD_VARIABLES:
        os.environ.pop(name, None)
    sys.addaudithook(_loopback_only)


def interleaved(contenders: dict[str, Callable[[], Any]], *, runs: int, warmups: int = 1) -> dict[str, list[float]]:
    """Time each contender ``runs`` times, taking turns, after ``warmups`` untimed turns each.

    The order alternates from one round to the next (A B, then B A, ...), so that a
    change in the machine's load during the run weighs on every contender alike.

    Args:
        contenders: name -> a callable that does one whole run. The call is timed whole,
            unless it returns a number: then that is the run's time in seconds, as the
            callable measured it itself (to leave a setup out).
        runs: timed runs of each contender.
        warmups: untimed runs of each contender first (imports, caches, compiled bytecode).
    Returns:
        name -> the ``runs`` wall times, in seconds, in the order they were taken.
    """
    names = list(contenders)
    for _ in range(warmups):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(runs):
        order = names if round_number % 2 == 0 else list(reversed(names))
        for name in order:
            started = time.perf_counter()
            measured = contenders[name]()
            elapsed = time.perf_counter() - started
            times[name].append(float(measured) if isinstance(measured, (int, float)) else elapsed)
    return times


def summary(seconds: list[float]) -> dict[str, float]:
    """Median, lowest and highest of some wall times, in seconds."""
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}


def figure(
    name: str,
    *,
    ours: str,
    measured: list[float] | None,
    target: str,
    met: bool | None = None,
    at_most: float | None = None,
    baseline: str | None = None,
    baseline_measured: list[float] | None = None,
    ratio: float | None = None,
    how: str = "",
    miss: str = "",
    unit: str = "s",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One figure of RESULTS.md.

    Args:
        name: the figure's short name (the table's first column).
        ours: what was timed on our side, in words.
        measured: its values, wall times in seconds unless ``unit`` says otherwise; None when it was not measured.
        target: the target, in words (``"ratio ≤ 1.25"``).
        met: whether the target was met; None when not measured. Decided from ``at_most``
            when that is given instead.
        at_most: the highest ratio that meets the target.
        baseline, baseline_measured: the side-by-side baseline, in words and wall times.
        ratio: ours / baseline (medians), or measured / configured; computed from the
            medians when omitted and both sides were measured.
        how: how it was measured (runs, setup), for the notes.
        miss: why the target was missed and what would close it (shown when ``met`` is False).
        unit: what ``measured`` and ``baseline_measured`` count: ``"s"`` (seconds), ``"MB"``, ``"req/s"``.
        extra: further numbers worth keeping in the JSON (not shown in the table).
    Returns:
        A JSON-ready dictionary.
    """
    ours_summary = summary(measured) if measured else None
    baseline_summary = summary(baseline_measured) if baseline_measured else None
    if ratio is None and ours_summary and baseline_summary:
        ratio = ours_summary["median"] / baseline_summary["median"]
    if met is None and at_most is not None and ratio is not None:
        met = ratio <= at_most
    return {
        "name": name,
        "ours": ours,
        "ours_seconds": ours_summary,
        "baseline": baseline,
        "baseline_seconds": baseline_summary,
        "runs": len(measured) if measured else 0,
        "ratio": ratio,
        "target": target,
        "met": met,
        "how": how,
        "miss": miss if met is False else "",
        "unit": unit,
        "extra": extra or {},
    }


def emit(figures: list[dict[str, Any]]) -> None:
    """Print the script's figures as the one JSON document ``run.py`` reads."""
    json.dump({"figures": figures}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def milliseconds(seconds: float) -> str:
    """``0.2034`` -> ``"203.4 ms"``."""
    return f"{seconds * 1000:.1f} ms"


@contextmanager
def sandbox_process(latency_ms: float = 0.0) -> Iterator[str]:
    """A :class:`~ai_admin_widgets.Sandbox` running in a process of its own, on 127.0.0.1.

    In its own process the sandbox's threads do not compete with the benchmarked code
    for the interpreter lock, as a real service would not. Use the practice keys
    :data:`OPENAI_PRACTICE_KEY` and :data:`AZURE_PRACTICE_KEY` with it.

    Args:
        latency_ms: milliseconds the sandbox waits before each answer.
    Yields:
        The sandbox's URL, ``http://127.0.0.1:<port>`` (the Azure endpoint; OpenAI's base URL is ``<url>/v1``).
    Raises:
        RuntimeError: the sandbox process did not start.
    """
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("sandbox_server.py")), "--latency-ms", str(latency_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = (server.stdout.readline() if server.stdout else "").strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the sandbox process did not start (it printed {url!r})")
        yield url
    finally:
        if server.stdin:
            server.stdin.close()  # the server stops when its input closes
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def file_keyring(folder: Path) -> Any:
    """keyrings.alt's file keyring in ``folder``: what the sandbox and the tests use, never the machine's own keyring."""
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    backend.file_path = str(folder / "keyring.cfg")
    return backend


def fresh_settings(**options: Any) -> Any:
    """:class:`~ai_admin_widgets.AISettings` on a new store in a temporary folder, with a file keyring there.

    As ``Sandbox.settings()`` makes them: the admins list decides who is an admin (no
    JupyterHub is ever asked), and keys go to keyrings.alt's file keyring in that folder.

    Args:
        **options: passed on to ``AISettings`` (``timeouts``, ``openai_base_url``, ...).
    Returns:
        The settings; the folder is removed when the process ends.
    """
    import ai_admin_widgets as aiw
    from ai_admin_widgets.access import AccessPolicy

    folder = Path(tempfile.mkdtemp(prefix="ai-admin-bench-", dir=_scratch()))
    options.setdefault("access", AccessPolicy(use_hub=False))
    options.setdefault("user", "bench-admin")
    return aiw.AISettings(home=folder / "store", keyring=file_keyring(folder), **options)


_scratch_folder: tempfile.TemporaryDirectory[str] | None = None


def _scratch() -> str:
    global _scratch_folder
    if _scratch_folder is None:
        _scratch_folder = tempfile.TemporaryDirectory(prefix="ai-admin-bench-")
    return _scratch_folder.name
