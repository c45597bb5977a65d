"""The Budgets region of the AI Settings page: the AI gateway's token budgets and requests-per-minute limits.

Offered only where the settings are the AI gateway's (on JupyterHub: the snapshot's admin check came
from the gateway); elsewhere the region is absent. Like History, the table is read only while it is
shown (*Show budgets*), so a render of the page reads nothing for it while it is closed; a gateway that
says it keeps no budgets (``NotOnGateway``) takes the region off the page for good. Anyone sees the
budgets that count their calls (those who may configure see them all), with what the current period
used and when it resets (UTC); those who may configure also set one (scope, name, period, limit, then
Save) or remove one (the same scope, name and period, then Remove).

Events: ``budgets.toggle``, ``budgets.choose`` (scope or period), ``budgets.save``, ``budgets.remove``.
Fields: ``budgets.scope``, ``budgets.name``, ``budgets.period``, ``budgets.limit``. Stable CSS classes:
``aiw-budgets``, ``aiw-budgets-toggle``, ``aiw-budgets-table``, ``aiw-budget-scope``, ``aiw-budget-name``,
``aiw-budget-period``, ``aiw-budget-limit``, ``aiw-save-budget``, ``aiw-remove-budget``, ``aiw-budgets-message``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..models import AIAdminError, BudgetsView, NotOnGateway
from . import view
from .region import Region

if TYPE_CHECKING:
    from ..interface import Settings
    from ..models import SettingsSnapshot
    from .view import Node

__all__ = ["BudgetsRegion"]

HEADINGS = ("Scope", "Name", "Period", "Limit", "Used", "Resets at (UTC)")
SCOPE_OPTIONS = (("User", "user"), ("Group", "group"), ("Organization", "organization"))
PERIOD_OPTIONS = (
    ("Tokens per day (UTC)", "day"),
    ("Tokens per month (UTC)", "month"),
    ("Requests per minute", "minute"),
)
HELP = (
    "A call that would go over a budget is refused (HTTP 429) until its period resets. Days and months "
    "are UTC. Name: a hub user, * for each user without a budget of their own, or a hub group; none "
    "for the organization. Requests per minute are for users."
)
SCOPE, NAME, PERIOD, LIMIT = "budgets.scope", "budgets.name", "budgets.period", "budgets.limit"
_KEY_MESSAGE = "That looked like an API key, not a name or a limit: it was taken out of the field; type it again."
_CHOICES = {SCOPE: dict(SCOPE_OPTIONS).values(), PERIOD: dict(PERIOD_OPTIONS).values()}


class BudgetsRegion(Region):
    """The budgets as a table; an editor for those who may configure.

    Args:
        settings: whose budgets are shown and changed (through the Settings interface only).
        panel: the page this region is part of.

    Attributes:
        available: False once the settings said they keep no budgets (the region is then absent).
        open: whether the budgets are shown (*Show budgets* / *Hide budgets*).
        message: the outcome of Save or Remove as ``(text, tone)``, or None.
    """

    prefix = "budgets"

    def __init__(self, settings: Settings, panel: Any) -> None:
        super().__init__(settings, panel)
        self.available = True
        self.open = False
        self.message: tuple[str, str] | None = None
        self.typed.update({SCOPE: "user", NAME: "", PERIOD: "day", LIMIT: ""})

    @property
    def shown(self) -> bool:
        """True while the budgets are shown."""
        return self.open

    def node(self, snapshot: SettingsSnapshot) -> Node | None:
        """The region as of ``snapshot``: absent off the gateway; closed, it reads nothing; open, the budgets (once a snapshot).

        The editor is offered to those who may configure when the settings could be read.
        """
        if not self.available or snapshot.admin.source != "gateway":
            return None
        children: list[Node | None] = []
        if self.open:
            view_: BudgetsView | str | None = self.read_once(snapshot, self._budgets)
            if view_ is None:  # the settings keep no budgets
                self.available = self.open = False
                return None
            if isinstance(view_, str):  # what kept them from being read
                children.append(view.text("table", view_, tone="error", alert=True, cls="aiw-budgets-table"))
            else:
                children.append(_table(view_))
                if snapshot.admin.admin and snapshot.problem is None:
                    children.extend(self._editor())
            if self.message is not None:
                said, tone = self.message
                children.append(view.text("message", said, tone=tone, alert=tone == "error", cls="aiw-budgets-message"))
        toggle = view.disclosure(
            "toggle",
            "Hide budgets" if self.open else "Show budgets",
            open=self.open,
            event="budgets.toggle",
            children=children,
            cls="aiw-budgets-toggle",
        )
        return view.region("budgets", "Budgets", toggle, cls="aiw-budgets")

    def _budgets(self) -> BudgetsView | str | None:
        """The budgets; what is wrong instead (a message); None when the settings keep no budgets."""
        try:
            return self.settings.budgets()
        except NotOnGateway:
            return None
        except AIAdminError as problem:
            return str(problem)

    def _editor(self) -> list[Node | None]:
        return [
            view.radio(
                SCOPE,
                "Scope",
                ((value, label) for label, value in SCOPE_OPTIONS),
                self.typed[SCOPE],
                event="budgets.choose",
                cls="aiw-budget-scope",
            ),
            view.field(
                NAME,
                "Name",
                value=self.typed[NAME],
                placeholder="a user, * for each user, or a group",
                cls="aiw-budget-name",
            ),
            view.radio(
                PERIOD,
                "Period",
                ((value, label) for label, value in PERIOD_OPTIONS),
                self.typed[PERIOD],
                event="budgets.choose",
                cls="aiw-budget-period",
            ),
            view.field(
                LIMIT,
                "Limit",
                value=self.typed[LIMIT],
                placeholder="tokens (or requests) per period",
                cls="aiw-budget-limit",
            ),
            view.text("help", HELP, tone="help", cls="aiw-budgets-help"),
            view.box(
                "buttons",
                view.button("Save", "budgets.save", cls="aiw-save-budget", aria_label="Save this budget"),
                view.button(
                    "Remove", "budgets.remove", cls="aiw-remove-budget", tone="danger", aria_label="Remove this budget"
                ),
                cls="aiw-budgets-buttons",
            ),
        ]

    def keep(self, path: str, value: Any, *, typed: bool = False) -> bool:
        """As :meth:`Region.keep`; a scope or period that is not one of the choices is not taken."""
        if path in _CHOICES:
            if value in _CHOICES[path]:
                self.typed[path] = value
            return True
        return super().keep(path, value, typed=typed)

    def blur(self, path: str, value: str) -> None:
        """Keep what was typed in ``path``; text shaped like an API key is taken out of the field, and said so."""
        if path in (NAME, LIMIT) and not self.keep(path, value, typed=True):
            self.message = (_KEY_MESSAGE, "error")

    def handle(self, action: str, content: Mapping[str, Any]) -> None:
        """``toggle``: show or hide the budgets; ``choose``: a scope or period; ``save`` / ``remove``: the editor's budget."""
        refused = self.take_values(content)
        if action == "toggle":
            self.open = not self.open
            self.message = None
            self.forget()
        elif action == "choose":
            path = content.get("path")
            if isinstance(path, str) and path in _CHOICES:
                self.keep(path, content.get("value"))
        elif action in ("save", "remove") and self.open:
            if refused:
                self.message = (_KEY_MESSAGE, "error")
                return
            self._change(action)

    def _change(self, action: str) -> None:
        scope, name, period = self.typed[SCOPE], self.typed[NAME], self.typed[PERIOD]
        try:
            if action == "save":
                answer = self.settings.set_budget(scope, name, period, self.typed[LIMIT])  # type: ignore[arg-type]
            else:
                answer = self.settings.remove_budget(scope, name, period)
        except (AIAdminError, ValueError) as error:
            self.message = (str(error), "error")
            return
        self.message = ("Saved." if action == "save" else "Removed.", "success")
        self.adopt(answer)


def _table(budgets: BudgetsView) -> Node:
    if not budgets.budgets:
        return view.text("table", "No budgets: AI calls are not capped.", tone="help", cls="aiw-budgets-table")
    rows = [
        (
            budget.scope,
            budget.name or "(everyone)",
            budget.period,
            f"{budget.limit} {budget.unit}",
            "per user" if budget.used is None else str(budget.used),
            f"{budget.resets_at:%Y-%m-%d %H:%M}" if budget.resets_at else "",
        )
        for budget in budgets.budgets
    ]
    return view.table("table", HEADINGS, rows, cls="aiw-budgets-table")
