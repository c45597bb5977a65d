"""The Usage region of the AI Settings page: tokens per day (by user or by model) and the top users.

Offered only on a hub with the AI gateway (the admin check came from the gateway) and only to those who
may configure; it reads :meth:`~ai_admin_widgets.interface.Settings.usage_report` only while it is open.

The chart is SVG drawn here (an ``svg`` node of the panel's state), not a plotting library's widget: the
SVG is in the state a saved notebook keeps and shows without a kernel or a server, it takes JupyterLab's
theme through its CSS variables (``var(--jp-ui-font-color1)``, ``var(--jp-brand-color1)``, ...) in light
and dark themes alike, and it adds no dependency to the package. Its legend is part of the SVG.

Events: ``usage.toggle`` (Show usage / Hide usage), ``usage.by`` (By user / By model; path ``usage.by``).
Stable CSS classes: ``aiw-usage``, ``aiw-usage-toggle``, ``aiw-usage-by``, ``aiw-usage-chart`` (the SVG; one
``<g class="aiw-usage-day" data-day=...>`` per day with calls), ``aiw-usage-top`` (the top users' table)
and ``aiw-usage-message``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..models import AIAdminError, NotOnGateway, PermissionDenied, UsageReport
from . import view
from .region import Region

if TYPE_CHECKING:
    from ..interface import Settings
    from ..models import SettingsSnapshot
    from .view import Node

__all__ = ["BY_OPTIONS", "UsageRegion", "chart_label", "top_users_table", "usage_chart"]

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
LEGEND_ROW = 16


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
    label = chart_label(report)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'style="max-width: {WIDTH}px" role="img" aria-label="{_attribute(label)}">',
        f"<title>{_text(label)}</title>",
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
                f'data-key="{_attribute(key)}" style="fill: {fills[key]}"><title>{_text(key)}: {value} {measure}</title></rect>'
            )
        group.append("</g>")
        parts.extend(group)
    legend, legend_height = _legend(keys, fills)
    parts.extend(legend)
    parts.append("</svg>")
    parts[0] = parts[0].replace(f"0 0 {WIDTH} {HEIGHT}", f"0 0 {WIDTH} {HEIGHT + legend_height}")
    return "".join(parts)


def _text(value: str) -> str:
    return html.escape(value, quote=False)


def _legend(keys: list[str], fills: dict[str, str]) -> tuple[list[str], int]:
    """The legend under the plot, a swatch and a name per key, in rows that fit the width; and its height."""
    parts = [f'<g class="aiw-usage-legend" transform="translate(0 {HEIGHT})">']
    x, row = float(LEFT), 0
    for key in keys:
        width = 16 + 6.5 * len(key) + 14  # the swatch, the name at about 6.5 px a character, a gap
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, row = float(LEFT), row + 1
        y = 4 + row * LEGEND_ROW
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="10" height="10" style="fill: {fills[key]}"/>'
            f'<text x="{x + 14:.1f}" y="{y + 9}" style="{_FONT}">{_text(key)}</text>'
        )
        x += width
    parts.append("</g>")
    return parts, (row + 1) * LEGEND_ROW + 6 if keys else 0


TOP_USERS_HEADINGS = ("User", "Calls", "Failed", "Refused", "Prompt tokens", "Completion tokens", "Tokens")


def top_users_table(report: UsageReport) -> Node:
    """The top users of ``report`` as a table node: calls, failed, refused, prompt, completion and total tokens."""
    counts = ("calls", "failures", "refused", "prompt_tokens", "completion_tokens", "tokens")
    rows = [[user.key, *(str(getattr(user, count)) for count in counts)] for user in report.top_users]
    return view.table(
        "top",
        TOP_USERS_HEADINGS,
        rows,
        caption=f"Top users, {report.since} to {report.until} (UTC)",
        cls="aiw-usage-top",
    )


def chart_label(report: UsageReport) -> str:
    """The chart's text alternative (also its ``<title>``)."""
    what = "Tokens" if report.overall.tokens > 0 else "Calls (no token figures were recorded)"
    return f"{what} per day by {report.by}, {report.since} to {report.until} (UTC)"


class UsageRegion(Region):
    """Tokens per day by user or by model, and the top users; shown on request (reading it queries the gateway).

    Args:
        settings: whose :meth:`~ai_admin_widgets.interface.Settings.usage_report` is shown.
        panel: the page this region is part of.

    Attributes:
        open: whether the chart and the table are shown; ``by``: ``"user"`` or ``"model"``.
        report: the report last drawn, or None.
    """

    prefix = "usage"

    def __init__(self, settings: Settings, panel: Any) -> None:
        super().__init__(settings, panel)
        self.open = False
        self.by = "user"
        self.available = True
        self.report: UsageReport | None = None

    @property
    def shown(self) -> bool:
        """True while the chart and the table are open."""
        return self.open

    def node(self, snapshot: SettingsSnapshot) -> Node | None:
        """Absent but on the gateway (its admin check said so) for those who may configure; closed, it reads nothing."""
        offered = snapshot.admin.source == "gateway" and snapshot.problem is None and snapshot.admin.admin
        if not (offered and self.available):
            self.open = False
            return None
        children: list[Node | None] = []
        if self.open:
            children = self.read_once(snapshot, self._body)
            if not self.available:
                return None
        toggle = view.disclosure(
            "toggle",
            "Hide usage" if self.open else "Show usage",
            open=self.open,
            event="usage.toggle",
            children=children,
            cls="aiw-usage-toggle",
        )
        return view.box("usage", toggle, cls="aiw-usage")

    def _body(self) -> list[Node | None]:
        """Read the report (by the choice of ``by``) and draw it."""
        by = view.radio(
            "usage.by",
            "Tokens per day",
            ((value, label) for label, value in BY_OPTIONS),
            self.by,
            event="usage.by",
            cls="aiw-usage-by",
        )
        try:
            report = self.settings.usage_report(by=self.by)
        except NotOnGateway:  # one machine: there is no usage to show
            self.available = self.open = False
            return []
        except PermissionDenied as error:
            return [by, _message(str(error), "help")]
        except AIAdminError as error:
            return [by, _message(str(error), "error")]
        self.report = report
        if not report.days:
            return [by, _message(f"No AI calls were recorded from {report.since} to {report.until} (UTC).", "help")]
        overall = report.overall
        said = (
            f"{overall.calls} calls ({overall.failures} failed, {overall.refused} refused), {overall.tokens} tokens, "
            f"{report.since} to {report.until} (UTC)."
        )
        return [
            by,
            _message(said, "help"),
            view.svg("chart", usage_chart(report), chart_label(report), cls="aiw-usage-chart"),
            top_users_table(report),
        ]

    def handle(self, action: str, content: Mapping[str, Any]) -> None:
        """``toggle``: open or close; ``by``: draw by user or by model (``content["value"]``)."""
        if action == "toggle":
            self.open = not self.open
            self.forget()
        elif action == "by" and content.get("value") in dict(BY_OPTIONS).values():
            self.by = str(content["value"])
            self.forget()


def _message(said: str, tone: str) -> Node:
    return view.text("message", said, tone=tone, alert=tone == "error", cls="aiw-usage-message")
