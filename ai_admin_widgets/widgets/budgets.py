"""The Budgets region of the AI Settings page: the AI gateway's token budgets and requests-per-minute limits.

Shown only where the settings are the AI gateway's (on JupyterHub): elsewhere
:meth:`~ai_admin_widgets.interface.Settings.budgets` raises ``NotOnGateway`` at the first render and the
region stays hidden (and is not asked again). Like History, the table is read only while it is shown
(*Show budgets*), so a render of the page reads nothing else while it is hidden. Anyone sees the budgets that count their calls (those who may configure see them all), with what the
current period used and when it resets (UTC); those who may configure also set one (scope, name,
period, limit, then Save) or remove one (the same scope, name and period, then Remove). Stable CSS
classes: ``aiw-budgets``, ``aiw-budgets-toggle``, ``aiw-budgets-table``, ``aiw-budget-scope``, ``aiw-budget-name``,
``aiw-budget-period``, ``aiw-budget-limit``, ``aiw-save-budget``, ``aiw-remove-budget``, ``aiw-budgets-message``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..models import AIAdminError, BudgetsView, NotOnGateway
from .fields import TextField
from .style import ERROR, HELP, SUCCESS, classes, show, span, text

if TYPE_CHECKING:
    from ..interface import Settings

__all__ = ["BudgetsRegion"]

HEADINGS = ("Scope", "Name", "Period", "Limit", "Used", "Resets at (UTC)")
SCOPE_OPTIONS = (("User", "user"), ("Group", "group"), ("Organization", "organization"))
PERIOD_OPTIONS = (
    ("Tokens per day (UTC)", "day"),
    ("Tokens per month (UTC)", "month"),
    ("Requests per minute", "minute"),
)


class BudgetsRegion(widgets.VBox):
    """The budgets as a table; an editor for those who may configure.

    Args:
        settings: whose budgets are shown and changed (through the Settings interface only).
        on_interaction: called when Save or Remove is pressed, before anything changes (the panel catches up).

    Attributes:
        available: False off the gateway (the region is hidden).
        table: the budgets; ``scope``, ``name``, ``period``, ``limit``: the editor's fields;
        save_button, remove_button, message: set, remove, and what came of it.
    """

    def __init__(self, settings: Settings, on_interaction: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self._on_interaction = on_interaction
        self.available: bool | None = None  # None: not known yet (the first render asks)
        self._admin = False
        self.heading = widgets.HTML("<h4>Budgets</h4>")
        self.toggle = classes(widgets.Button(description="Show budgets", tooltip="Show budgets"), "aiw-budgets-toggle")
        self.toggle.on_click(lambda _: self._flip())
        self.table = classes(widgets.HTML(""), "aiw-budgets-table")
        self.scope = classes(
            widgets.Dropdown(options=SCOPE_OPTIONS, value="user", description="Scope"), "aiw-budget-scope"
        )
        self.name = classes(
            TextField(description="Name", placeholder="a user, * for each user, or a group"), "aiw-budget-name"
        )
        self.period = classes(
            widgets.Dropdown(options=PERIOD_OPTIONS, value="day", description="Period"), "aiw-budget-period"
        )
        self.limit = classes(
            TextField(description="Limit", placeholder="tokens (or requests) per period"), "aiw-budget-limit"
        )
        self.help = widgets.HTML(
            span(
                "A call that would go over a budget is refused (HTTP 429) until its period resets. Days and months "
                "are UTC. Name: a hub user, * for each user without a budget of their own, or a hub group; none "
                "for the organization. Requests per minute are for users.",
                HELP,
            )
        )
        self.save_button = classes(widgets.Button(description="Save", tooltip="Save this budget"), "aiw-save-budget")
        self.remove_button = classes(
            widgets.Button(description="Remove", tooltip="Remove this budget", button_style="danger"),
            "aiw-remove-budget",
        )
        self.save_button.on_click(lambda _: self.save())
        self.remove_button.on_click(lambda _: self.remove())
        self.message = classes(widgets.HTML(""), "aiw-budgets-message")
        self.editor = widgets.VBox(
            [
                self.scope,
                self.name,
                self.period,
                self.limit,
                self.help,
                widgets.HBox([self.save_button, self.remove_button]),
            ]
        )
        self.body = widgets.VBox([self.table, self.editor, self.message])
        super().__init__([self.heading, self.toggle, self.body])
        classes(self, "aiw-budgets")
        show(self.body, False)

    @property
    def shown(self) -> bool:
        """True while the budgets are shown."""
        return self.body.layout.display != "none"

    def _flip(self) -> None:
        if self._on_interaction is not None:
            self._on_interaction()
        show(self.body, not self.shown)
        self.toggle.description = self.toggle.tooltip = "Hide budgets" if self.shown else "Show budgets"
        self.render(admin=self._admin)

    def render(self, *, admin: bool) -> None:
        """Draw the budgets, read anew while they are shown; the editor only for ``admin``; hidden off the gateway.

        The first render asks once whether there are budgets here at all (``NotOnGateway``: the region hides
        for good); after that nothing is read while the table is hidden.
        """
        self._admin = admin
        if self.available is False:
            return
        if self.available is not None and not self.shown:
            show(self.editor, admin)
            return
        try:
            view = self.settings.budgets()
        except NotOnGateway:
            self.available = False
            show(self, False)
            return
        except AIAdminError as error:
            self.available = True
            show(self.editor, False)
            self.table.value = span(str(error), ERROR, alert=True)
            return
        self.available = True
        show(self, True)
        show(self.editor, admin)
        self._draw(view)

    def _draw(self, view: BudgetsView) -> None:
        if not view.budgets:
            self.table.value = span("No budgets: AI calls are not capped.", HELP)
            return
        rows = []
        for budget in view.budgets:
            cells = (
                budget.scope,
                budget.name or "(everyone)",
                budget.period,
                f"{budget.limit} {budget.unit}",
                "per user" if budget.used is None else str(budget.used),
                f"{budget.resets_at:%Y-%m-%d %H:%M}" if budget.resets_at else "",
            )
            rows.append("<tr>" + "".join(f"<td>{text(cell)}</td>" for cell in cells) + "</tr>")
        header = "".join(f"<th>{text(name)}</th>" for name in HEADINGS)
        self.table.value = (
            '<table style="border-collapse: collapse; font-size: var(--jp-ui-font-size1)" cellpadding="4">'
            f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def save(self) -> None:
        """Set the budget the editor describes; the outcome (or what is wrong, by field) in the message."""
        if self._on_interaction is not None:
            self._on_interaction()
        try:
            view = self.settings.set_budget(self.scope.value, self.name.value, self.period.value, self.limit.value)
        except (AIAdminError, ValueError) as error:
            self.message.value = span(str(error), ERROR, alert=True)
            return
        self.message.value = span("Saved.", SUCCESS)
        self._draw(view)

    def remove(self) -> None:
        """Remove the budget of the editor's scope, name and period."""
        if self._on_interaction is not None:
            self._on_interaction()
        try:
            view = self.settings.remove_budget(self.scope.value, self.name.value, self.period.value)
        except (AIAdminError, ValueError) as error:
            self.message.value = span(str(error), ERROR, alert=True)
            return
        self.message.value = span("Removed.", SUCCESS)
        self._draw(view)
