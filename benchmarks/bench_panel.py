"""The panel: building ``AISettingsPanel`` and one Add and Save through its driver API, against a bare ipywidgets form.

Our side, each run on a new store: ``settings.panel()``, then, as the front end would send them,
Add, choose Azure OpenAI, tick "Use the same endpoint URL and API key for both models", type the
endpoint, both deployment IDs and the key (each typed field then left, which tidies it), and Save
(both checks against the sandbox, at 0 ms latency, then the store) until the row shows the saved
integration (``panel.press`` / ``choose`` / ``check`` / ``type``, the API of issue 14's contract).

The baseline is the bare ipywidgets form this benchmark has always used (:data:`common.BARE_FORM`,
the inputs the ipywidgets panel had: text boxes, key fields as ``Password``, a toggle, a check
box, and its buttons), in one ``VBox``, with as many values typed, and a click on a button whose
handler reads every field and writes one line: what a form costs in ipywidgets itself.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import time
from typing import Any

from common import (
    AZURE_DEPLOYMENTS,
    AZURE_PRACTICE_KEY,
    BARE_FORM,
    bare_form,
    emit,
    figure,
    fresh_settings,
    interleaved,
    isolate_environment,
    milliseconds,
    sandbox_process,
)

RUNS = 15
TARGET = 1.5
TYPED_VALUES = 6  # provider, the same-endpoint option, endpoint, two deployment IDs, key


def add_and_save(panel: Any, url: str) -> float:
    """Add, fill Azure OpenAI with a shared endpoint, Save; the seconds the typing took (before Save)."""
    import ai_admin_widgets as aiw

    started = time.perf_counter()
    panel.press("aiw-add")
    panel.choose("aiw-provider", aiw.Provider.AZURE_OPENAI.value)
    panel.check("aiw-same-endpoint", True)
    panel.type("aiw-language-endpoint-url", url)
    panel.type("aiw-language-deployment-id", AZURE_DEPLOYMENTS["language"])
    panel.type("aiw-embeddings-deployment-id", AZURE_DEPLOYMENTS["embeddings"])
    panel.type("aiw-language-api-key", AZURE_PRACTICE_KEY)
    typed = time.perf_counter() - started
    panel.press("aiw-save")
    return typed


def top_functions(profile: cProfile.Profile, count: int = 6) -> list[tuple[str, float]]:
    """The ``count`` functions of the project with the most cumulative time in ``profile``: (name, seconds)."""
    stats = pstats.Stats(profile)
    rows = []
    for (path, line, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "ai_admin_widgets" in path:
            short = path.split("ai_admin_widgets/", 1)[1]
            rows.append((f"{short}:{line} {name}", cumulative))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:count]


def main() -> None:
    isolate_environment()
    with sandbox_process(latency_ms=0) as url:
        opened: list[Any] = []
        phases: list[tuple[float, float, float]] = []

        def panel_save() -> float:
            settings = fresh_settings(openai_base_url=f"{url}/v1")
            started = time.perf_counter()
            panel = settings.panel()
            built = time.perf_counter()
            typed = add_and_save(panel, url)
            elapsed = time.perf_counter() - started  # the store's setup above and the checks below are not timed
            phases.append((built - started, typed, elapsed - (built - started) - typed))
            shown = panel.visible_text()
            assert panel.view == "row" and "Azure OpenAI" in shown and "Not configured" not in shown, shown
            opened.append(panel)
            return elapsed

        def bare() -> float:
            started = time.perf_counter()
            form, click, message = bare_form(typed_values=TYPED_VALUES)
            click()
            elapsed = time.perf_counter() - started
            assert message.value.endswith("fields filled")
            opened.append(form)
            return elapsed

        def api_save() -> float:
            """The same Save without the panel: ``settings.save()`` of the integration the panel builds."""
            import ai_admin_widgets as aiw

            settings = fresh_settings(openai_base_url=f"{url}/v1")
            started = time.perf_counter()
            settings.save(
                aiw.AzureOpenAIIntegration.shared(
                    endpoint_url=url,
                    api_key=AZURE_PRACTICE_KEY,
                    language_deployment_id=AZURE_DEPLOYMENTS["language"],
                    embeddings_deployment_id=AZURE_DEPLOYMENTS["embeddings"],
                )
            )
            return time.perf_counter() - started

        times = interleaved({"panel": panel_save, "bare": bare, "api_save": api_save}, runs=RUNS)
        panel_times, bare_times = times["panel"], times["bare"]
        api_save_median = statistics.median(times["api_save"])

        # Where the time goes: one more run of ours, profiled (not part of the figures).
        settings = fresh_settings(openai_base_url=f"{url}/v1")
        profile = cProfile.Profile()
        profile.enable()
        panel = settings.panel()
        add_and_save(panel, url)
        profile.disable()
        nodes = sum(1 for _ in _walk(panel.state["root"]))
        state_bytes = len(_json(panel.state))
        opened.append(panel)
        for widget in opened:
            widget.close()

    build, fill, save = (statistics.median(phase[index] for phase in phases) for index in range(3))
    hot = top_functions(profile)
    ratio = statistics.median(panel_times) / statistics.median(bare_times)
    # What the panel itself costs: our run less the Save it asks of the settings (checks over HTTP, the store's
    # fsync'd writes, the keyring), which the bare form's click does not do.
    panel_own = statistics.median(panel_times) - api_save_median
    ratio_own = panel_own / statistics.median(bare_times)
    inputs = ", ".join(f"{count} {kind}" for kind, count in BARE_FORM.items())
    emit(
        [
            figure(
                "panel",
                ours="settings.panel(), then Add, fill Azure OpenAI (shared endpoint), Save, through the panel's driver API",
                measured=panel_times,
                baseline=f"a bare ipywidgets form: {inputs}, {TYPED_VALUES} values typed, one click",
                baseline_measured=bare_times,
                target=f"ratio ≤ {TARGET:g}",
                at_most=TARGET,
                how=(
                    f"{RUNS} runs of each, interleaved, after one untimed run each; in one process, outside a kernel "
                    "(ipywidgets' comms are no-ops there, for both sides). The sandbox runs in its own process at "
                    f"0 ms latency. The panel is one widget whose state, once saved, is {nodes} nodes "
                    f"({state_bytes} bytes of JSON); the bare form {sum(BARE_FORM.values()) + 3} widgets. Our median "
                    f"run: building the panel {milliseconds(build)}, Add and typing {milliseconds(fill)}, Save "
                    f"{milliseconds(save)} (both checks and the store; the bare form's click does no I/O); "
                    f"`settings.save()` alone, without a panel, {milliseconds(api_save_median)}"
                ),
                miss=(
                    f"The ratio is {ratio:.2f}. Our median run: building {milliseconds(build)}, Add and typing "
                    f"{milliseconds(fill)}, Save {milliseconds(save)}. Most of the Save is the settings' own work, "
                    "which the bare form's click does not do: `settings.save()` of the same integration without "
                    f"any panel takes {milliseconds(api_save_median)} (median, measured in the same turns: both "
                    "checks over HTTP to the sandbox, the store's fsync'd writes, the keyring's calls). Less that, "
                    f"the panel's own part is {milliseconds(panel_own)}, a ratio of {ratio_own:.2f}. The "
                    "project's functions with the most cumulative time in a profiled run: "
                    + "; ".join(f"{name} {milliseconds(seconds)}" for name, seconds in hot)
                ),
                extra={
                    "bare_form": BARE_FORM,
                    "state_nodes": nodes,
                    "state_bytes": state_bytes,
                    "phases_median_seconds": {"build": build, "add_and_type": fill, "save": save},
                    "profile_top_cumulative_seconds": dict(hot),
                    "api_save_median_seconds": api_save_median,
                    "ratio_without_the_settings_save": ratio_own,
                },
            )
        ]
    )


def _walk(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("children", ()):
        yield from _walk(child)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


if __name__ == "__main__":
    main()
