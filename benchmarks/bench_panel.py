"""The panel: building ``AISettingsPanel`` and one Save by simulated clicks, against a bare ipywidgets form.

Our side, each run on a new store: ``settings.panel()``, click Add, choose Azure OpenAI,
tick "Use the same endpoint URL and API key for both models", type the endpoint, both
deployment IDs and the key, click Save (both checks against the sandbox, at 0 ms
latency, then the store) until the row shows the saved integration.

The baseline: the same number of input widgets of the same kinds (counted in the
panel: text boxes, key fields as ``Password``, toggle buttons, check boxes) and of
buttons, in one ``VBox``, with as many values typed, and a click on a button whose
handler reads every field and writes one line: what a form costs in ipywidgets itself.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

from common import (
    AZURE_DEPLOYMENTS,
    AZURE_PRACTICE_KEY,
    emit,
    figure,
    fresh_settings,
    interleaved,
    isolate_environment,
    milliseconds,
    sandbox_process,
)

RUNS = 15
TARGET = 3.0


def widgets_in(root: Any) -> list[Any]:
    """Every widget under ``root`` (children of boxes), ``root`` included."""
    found = [root]
    for child in getattr(root, "children", ()):
        found.extend(widgets_in(child))
    return found


def input_kinds(panel: Any) -> Counter[str]:
    """How many inputs of each kind the panel holds, by their ipywidgets counterpart: Text (our text
    fields and any Text), Password (our key fields), ToggleButtons, Checkbox; and Button."""
    import ipywidgets as widgets

    from ai_admin_widgets.widgets.fields import KeyField, TextField

    kinds: Counter[str] = Counter()
    for widget in widgets_in(panel):
        if isinstance(widget, (KeyField, widgets.Password)):
            kinds["Password"] += 1
        elif isinstance(widget, (TextField, widgets.Text, widgets.Textarea)):
            kinds["Text"] += 1
        elif isinstance(widget, (widgets.ToggleButtons, widgets.Dropdown, widgets.RadioButtons)):
            kinds["ToggleButtons"] += 1
        elif isinstance(widget, widgets.Checkbox):
            kinds["Checkbox"] += 1
        elif isinstance(widget, widgets.Button):
            kinds["Button"] += 1
    return kinds


def widget_costs() -> dict[str, float]:
    """Seconds to make one widget of the kinds a form field is built from (median of 5 rounds of 50)."""
    import ipywidgets as widgets

    from ai_admin_widgets.widgets.fields import TextField
    from ai_admin_widgets.widgets.panel import IntegrationForm

    def each(make: Any, count: int = 50) -> float:
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            made = [make() for _ in range(count)]
            rounds.append((time.perf_counter() - started) / count)
            for widget in made:
                widget.close()
        return statistics.median(rounds)

    return {
        "html_line": each(lambda: widgets.HTML("help", layout=widgets.Layout(margin="0 0 0 136px"))),
        "vbox": each(widgets.VBox),
        "text_field": each(TextField),
        "ipywidgets_text": each(widgets.Text),
        "integration_form": each(lambda: IntegrationForm(lambda integration: None, lambda: None), count=2),
    }


def main() -> None:
    isolate_environment()
    import ipywidgets as widgets

    import ai_admin_widgets as aiw

    with sandbox_process(latency_ms=0) as url:
        opened: list[Any] = []
        typed_values = 6  # provider, the same-endpoint option, endpoint, two deployment IDs, key

        def panel_save() -> float:
            settings = fresh_settings(openai_base_url=f"{url}/v1")
            started = time.perf_counter()
            panel = settings.panel()
            built = time.perf_counter()
            panel.row.add_button.click()
            form = panel.form
            form.provider.value = aiw.Provider.AZURE_OPENAI
            form.same_endpoint.value = True
            form.language.endpoint_url.value = url
            form.language.deployment_id.value = AZURE_DEPLOYMENTS["language"]
            form.embeddings.deployment_id.value = AZURE_DEPLOYMENTS["embeddings"]
            form.language.api_key.value = AZURE_PRACTICE_KEY
            filled = time.perf_counter()
            form.save_button.click()
            elapsed = time.perf_counter() - started  # the store's setup above and the checks below are not timed
            phases.append((built - started, filled - built, started + elapsed - filled))
            shown = panel.visible_text()
            assert panel.view == "row" and "Azure OpenAI" in shown and "Not configured" not in shown, shown
            opened.append(panel)
            return elapsed

        phases: list[tuple[float, float, float]] = []
        probe_settings = fresh_settings(openai_base_url=f"{url}/v1")
        probe = probe_settings.panel()
        kinds = input_kinds(probe)
        probe.close()
        fields = sum(count for kind, count in kinds.items() if kind != "Button")

        def bare_form() -> float:
            started = time.perf_counter()
            inputs: list[Any] = []
            inputs += [widgets.Text(description=f"Field {number}") for number in range(kinds["Text"])]
            inputs += [widgets.Password(description=f"Key {number}") for number in range(kinds["Password"])]
            inputs += [widgets.ToggleButtons(options=["OpenAI", "Azure OpenAI"]) for _ in range(kinds["ToggleButtons"])]
            inputs += [widgets.Checkbox(description=f"Option {number}") for number in range(kinds["Checkbox"])]
            buttons = [widgets.Button(description=f"Button {number}") for number in range(kinds["Button"])]
            message = widgets.HTML()
            buttons[0].on_click(
                lambda _: setattr(message, "value", f"{sum(bool(item.value) for item in inputs)} fields filled")
            )
            form = widgets.VBox([*inputs, widgets.HBox(buttons), message])
            for item in [item for item in inputs if isinstance(item, (widgets.Text, widgets.Password))][:typed_values]:
                item.value = "typed"
            buttons[0].click()
            elapsed = time.perf_counter() - started
            assert message.value.endswith("fields filled")
            opened.append(form)
            return elapsed

        times = interleaved({"panel": panel_save, "bare": bare_form}, runs=RUNS)
        panel_times, bare_times = times["panel"], times["bare"]
        for widget in opened:
            widget.close()

    costs = widget_costs()
    panel_widgets = widgets_in(probe)
    field_boxes = [widget for widget in panel_widgets if type(widget).__name__ == "_Field"]
    per_field = len(widgets_in(field_boxes[0])) if field_boxes else 0
    build, fill, save = (statistics.median(phase[index] for phase in phases[1:]) for index in range(3))
    # One widget per field instead of a box, the input and three HTML lines: what that would save.
    saved = len(field_boxes) * (costs["vbox"] + 3 * costs["html_line"])
    estimate = (statistics.median(panel_times) - saved) / statistics.median(bare_times)
    form_widgets = len(widgets_in(probe.form))
    # The whole Edit form as one front-end view: about the cost of one of our fields instead of the form.
    estimate_one_view = (
        statistics.median(panel_times) - costs["integration_form"] + costs["text_field"]
    ) / statistics.median(bare_times)
    emit(
        [
            figure(
                "panel",
                ours="settings.panel(), then Add, fill Azure OpenAI (shared endpoint), Save, by simulated clicks",
                measured=panel_times,
                baseline=f"a bare ipywidgets form: {fields} inputs and {kinds['Button']} buttons, {typed_values} values typed, one click",
                baseline_measured=bare_times,
                target=f"ratio ≤ {TARGET:g}",
                at_most=TARGET,
                how=(
                    f"{RUNS} runs of each, interleaved, after one untimed run each; in one process, outside a kernel "
                    f"(ipywidgets' comms are no-ops there, for both sides). Inputs counted in the panel: "
                    + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
                    + f". The sandbox runs in its own process at 0 ms latency. Widgets in the panel: "
                    f"{len(panel_widgets)}, in the bare form: {sum(kinds.values()) + 3}. Our median run: "
                    f"building the panel {milliseconds(build)}, Add and typing {milliseconds(fill)}, Save "
                    f"{milliseconds(save)} (both checks and the store; the bare form's click does no I/O)."
                ),
                miss=(
                    f"Building the panel is most of it: {len(panel_widgets)} widgets against "
                    f"{sum(kinds.values()) + 3}, each with a Layout (and most with a Style) widget of its own. "
                    f"Each of the {len(field_boxes)} form fields is {per_field} widgets: a box, the input, and "
                    f"three HTML lines for its help, error and notices (an HTML line costs "
                    f"{milliseconds(costs['html_line'])}, a box {milliseconds(costs['vbox'])}; our text field "
                    f"{milliseconds(costs['text_field'])} against {milliseconds(costs['ipywidgets_text'])} for "
                    "ipywidgets' Text). What would close it: render the help, error and notices in the field's "
                    "own front-end view (TextField and KeyField already render the label and the input; help, "
                    "error and notices would be three more traits, with the same ids for aria-describedby), "
                    f"so that each field is one widget: that alone would save about {milliseconds(saved)}, "
                    f"a ratio of about {estimate:.1f}. Building the Edit form alone takes "
                    f"{milliseconds(costs['integration_form'])} ({form_widgets} widgets), more than the whole bare "
                    "form: a ratio of 3 needs the form drawn by one front-end view from one state (one anywidget, "
                    "as the project's design describes a widget: one small class and one front-end module), which would leave about "
                    f"{estimate_one_view:.1f}; besides, build the regions that stay hidden until asked for (the "
                    "remove confirmation, the history table) when first shown."
                ),
                extra={
                    "inputs": dict(kinds),
                    "panel_widgets": len(panel_widgets),
                    "widget_costs_seconds": costs,
                    "phases_median_seconds": {"build": build, "add_and_type": fill, "save": save},
                    "estimated_ratio_with_one_widget_per_field": estimate,
                    "estimated_ratio_with_the_form_as_one_view": estimate_one_view,
                },
            )
        ]
    )


if __name__ == "__main__":
    main()
