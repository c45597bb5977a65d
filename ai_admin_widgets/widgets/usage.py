"""The Usage region of the AI Settings page: tokens per day (by user or by model) and the top users.

Shown only on a hub with the AI gateway (the admin check came from the gateway) and only to those who
may configure; it reads :meth:`~ai_admin_widgets.interface.Settings.usage_report` only while it is open.

The chart is SVG drawn here, in an ``HTML`` widget, not a plotting library's widget: the SVG is the
widget's value, so it is in the widget state a saved notebook keeps and shows without a kernel or a
server (JupyterLab renders saved widget state, and nbconvert's HTML too), it takes JupyterLab's theme
through its CSS variables (``var(--jp-ui-font-color1)``, ``var(--jp-brand-color1)``, ...) in light and
dark themes alike, and it adds no dependency (and no front-end bundle) to the package.

Stable CSS classes: ``aiw-usage``, ``aiw-usage-toggle`` (Show usage / Hide usage), ``aiw-usage-by``
(By user / By model), ``aiw-usage-chart`` (the SVG; one ``<g class="aiw-usage-day" data-day=...>`` per day
with calls), ``aiw-usage-top`` (the top users' table) and ``aiw-usage-message``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..models import AIAdminError, NotOnGateway, PermissionDenied, UsageReport
from .style import ERROR, HELP, classes, show, span, text

if TYPE_CHECKING:
    from ..interface import Settings
    from ..models import SettingsSnapshot

__all__ = ["BY_OPTIONS", "Usage", "top_users_table", "usage_chart"]

#: What the chart can be drawn by: the toggle's labels and the report's ``by``.
BY_OPTIONS = [("By user", "user"), ("By model", "model")]
#: The bars' fills, in the order of the keys with the most tokens first: JupyterLab's theme colours (with the
#: light theme's values for a page without them, such as an exported notebook).
PALETTE = (
    "var(--jp-brand-color1, #1976d2)",
    "var(--jp-accent-color1, #388e3c)",
    "var(--jp-warn-color1, #f57c00)",
    "var(--jp-error-color1, #d32f2f)",
    "var(--jp-brand-color3, #bbdefb)",
    "var(--jp-accent-color3, #c8e6c9)",
    "var(--jp-warn-color3, #ffe0b2)",
    "var(--jp-error-color3, #ffcdd2)",
    "var(--jp-brand-color0, #0d47a1)",
    "var(--jp-accent-color0, #1b5e20)",
    "var(--jp-warn-color0, #bf360c)",
    "var(--jp-error-color0, #b71c1c)",
)
OTHERS_FILL = "var(--jp-border-color1, #bdbdbd)"
_FONT = (
    "fill: var(--jp-ui-font-color1, #212121); font-family: var(--jp-ui-font-family, sans-serif); "
    "font-size: var(--jp-ui-font-size0, 11px)"
)
_MUTED = (
    "fill: var(--jp-ui-font-color2, #616161); font-family: var(--jp-ui-font-family, sans-serif); "
    "font-size: var(--jp-ui-font-size0, 11px)"
)
_GRID = "stroke: var(--jp-border-color2, #e0e0e0); stroke-width: 1"
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 22, 28


def _attribute(value: str) -> str:
    return html.escape(value, quote=True)


def _number(value: float) -> str:
    """A count as the axis and the tooltips show it: 950, 12.5k, 3.2M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:g}"


def _nice_ceiling(value: float) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at or above ``value``."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if step * power >= value)


def usage_chart(report: UsageReport) -> str:
    """``report``'s days as an SVG bar chart: one stacked bar per day with calls, a segment per key, a legend.

    The bars show tokens; when no call of the report carried token figures (the provider gave none), calls.
    """
    measure = "tokens" if report.overall.tokens > 0 else "calls"
    what = "Tokens" if measure == "tokens" else "Calls (no token figures were recorded)"
    span_days = (report.until - report.since).days + 1
    by_day: dict[str, list[tuple[str, int]]] = {}
    for entry in report.days:
        by_day.setdefault(entry.day.isoformat(), []).append((entry.key, getattr(entry, measure)))
    keys: list[str] = []
    for entry in report.days:  # the legend: the keys in the order of their totals (the report's order), "others" last
        if entry.key not in keys:
            keys.append(entry.key)
    order = {total.key: position for position, total in enumerate(report.totals)}
    keys.sort(key=lambda key: (key == "(others)", order.get(key, len(order))))
    fills = {
        key: OTHERS_FILL if key == "(others)" else PALETTE[position % len(PALETTE)] for position, key in enumerate(keys)
    }
    highest = _nice_ceiling(max((sum(value for _, value in parts) for parts in by_day.values()), default=0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_width / span_days
    bar = max(1.0, step * 0.7)
    label = f"{what} per day by {report.by}, {report.since} to {report.until} (UTC)"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'style="max-width: {WIDTH}px" role="img" aria-label="{_attribute(label)}">',
        f"<title>{text(label)}</title>",
        f'<text x="{LEFT}" y="{TOP - 10}" style="{_MUTED}">{measure}</text>',
    ]
    for fraction in (0.0, 0.5, 1.0):  # gridlines and the axis' figures
        y = TOP + plot_height * (1 - fraction)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" style="{_GRID}"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" style="{_MUTED}">{_number(highest * fraction)}</text>'
        )
    label_every = max(1, round(span_days / 6))
    for index in range(span_days):
        day = report.since + timedelta(days=index)
        x = LEFT + step * index + step / 2
        if index % label_every == 0 or index == span_days - 1:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" style="{_MUTED}">{day:%m-%d}</text>')
        segments = by_day.get(day.isoformat())
        if not segments:
            continue
        total = sum(value for _, value in segments)
        group = [
            f'<g class="aiw-usage-day" data-day="{day.isoformat()}" data-{measure}="{total}">',
            f"<title>{day.isoformat()}: {total} {measure}</title>",
        ]
        bottom = float(TOP + plot_height)
        for key, value in sorted(segments, key=lambda segment: keys.index(segment[0])):
            height = plot_height * value / highest
            bottom -= height
            group.append(
                f'<rect x="{x - bar / 2:.1f}" y="{bottom:.1f}" width="{bar:.1f}" height="{max(height, 0.5 if value else 0):.1f}" '
                f'data-key="{_attribute(key)}" style="fill: {fills[key]}"><title>{text(key)}: {value} {measure}</title></rect>'
            )
        group.append("</g>")
        parts.extend(group)
    parts.append("</svg>")
    legend = "".join(
        f'<span style="white-space: nowrap; margin-right: 12px"><span style="display: inline-block; width: 10px; '
        f'height: 10px; margin-right: 4px; background: {fills[key]}"></span>{text(key)}</span>'
        for key in keys
    )
    return "".join(parts) + f'<div class="aiw-usage-legend" style="{_legend_style()}">{legend}</div>'


def _legend_style() -> str:
    return "color: var(--jp-ui-font-color1, #212121); font-size: var(--jp-ui-font-size0, 11px)"


def top_users_table(report: UsageReport) -> str:
    """The top users of ``report`` as an HTML table: calls, failed, refused, prompt, completion and total tokens."""
    headings = ("User", "Calls", "Failed", "Refused", "Prompt tokens", "Completion tokens", "Tokens")
    head = "".join(f"<th>{text(heading)}</th>" for heading in headings)
    rows = "".join(
        f"<tr><td>{text(user.key)}</td>"
        + "".join(
            f'<td style="text-align: right">{value}</td>'
            for value in (
                user.calls,
                user.failures,
                user.refused,
                user.prompt_tokens,
                user.completion_tokens,
                user.tokens,
            )
        )
        + "</tr>"
        for user in report.top_users
    )
    return (
        '<table style="border-collapse: collapse; font-size: var(--jp-ui-font-size1)" cellpadding="4">'
        f'<caption style="text-align: left">Top users, {report.since} to {report.until} (UTC)</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


class Usage(widgets.VBox):
    """Tokens per day by user or by model, and the top users; shown on request (reading it queries the gateway).

    Args:
        settings: whose :meth:`~ai_admin_widgets.interface.Settings.usage_report` is shown.
        on_toggle: called before the region is opened or closed (the panel catches up with changes elsewhere).
    """

    def __init__(self, settings: Settings, *, on_toggle: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self._on_toggle = on_toggle
        self.toggle = classes(widgets.Button(description="Show usage", tooltip="Show usage"), "aiw-usage-toggle")
        self.by = classes(
            widgets.ToggleButtons(options=BY_OPTIONS, value="user", description="Tokens per day"), "aiw-usage-by"
        )
        self.chart = classes(widgets.HTML(""), "aiw-usage-chart")
        self.top = classes(widgets.HTML(""), "aiw-usage-top")
        self.message = classes(widgets.HTML(""), "aiw-usage-message")
        self.body = widgets.VBox([self.by, self.message, self.chart, self.top])
        self.toggle.on_click(lambda _: self._flip())
        self.by.observe(lambda _: self.render(), names="value")
        super().__init__([self.toggle, self.body])
        classes(self, "aiw-usage")
        show(self.body, False)
        show(self, False)
        self.report: UsageReport | None = None

    @property
    def shown(self) -> bool:
        """True while the chart and the table are open."""
        return self.body.layout.display != "none"

    def offer(self, snapshot: SettingsSnapshot) -> None:
        """Show the region only on the gateway (its admin check said so) to those who may configure; then draw it."""
        on_gateway = snapshot.admin.source == "gateway" and snapshot.problem is None
        show(self, on_gateway and snapshot.admin.admin)
        if self.layout.display == "none":
            show(self.body, False)
            self.toggle.description = "Show usage"
            return
        self.render()

    def _flip(self) -> None:
        if self._on_toggle is not None:
            self._on_toggle()
        show(self.body, not self.shown)
        self.toggle.description = "Hide usage" if self.shown else "Show usage"
        self.render()

    def render(self) -> None:
        """Read the report (by the toggle's choice) and draw it, if the region is open (nothing is read while closed)."""
        if not self.shown or self.layout.display == "none":
            return
        try:
            report = self.settings.usage_report(by=str(self.by.value))
        except NotOnGateway:  # one machine: there is no usage to show
            show(self, False)
            return
        except PermissionDenied as error:
            self._say(span(str(error), HELP))
            return
        except AIAdminError as error:
            self._say(span(str(error), ERROR, alert=True))
            return
        self.report = report
        if not report.days:
            self._say(span(f"No AI calls were recorded from {report.since} to {report.until} (UTC).", HELP))
            return
        overall = report.overall
        self.message.value = span(
            f"{overall.calls} calls ({overall.failures} failed, {overall.refused} refused), {overall.tokens} tokens, "
            f"{report.since} to {report.until} (UTC).",
            HELP,
        )
        self.chart.value = usage_chart(report)
        self.top.value = top_users_table(report)

    def _say(self, message: str) -> None:
        self.message.value = message
        self.chart.value = ""
        self.top.value = ""
