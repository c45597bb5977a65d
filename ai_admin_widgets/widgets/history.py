"""The History region of the AI Settings page: the audit log, newest first.

Stable CSS classes: ``aiw-history``, ``aiw-history-toggle`` (Show history / Hide history)
and ``aiw-history-table``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..models import AIAdminError
from ..store import AUDIT_ACTIONS
from .style import ERROR, HELP, classes, show, span, text

if TYPE_CHECKING:
    from ..service import AISettings

__all__ = ["History"]

#: What each audit action is called in the table (the same words as ``ai-admin history``).
ACTIONS = AUDIT_ACTIONS
PROVIDERS = {"openai": "OpenAI", "azure_openai": "Azure OpenAI"}


def _when(value: Any) -> str:
    try:
        return f"{datetime.fromisoformat(str(value)):%Y-%m-%d %H:%M} UTC"
    except ValueError:
        return str(value)


def _row(event: dict[str, Any]) -> str:
    action = ACTIONS.get(str(event.get("action")), str(event.get("action", "")).replace("_", " ").capitalize())
    outcome = event.get("outcome", "")
    details = ", ".join(str(name) for name in event.get("changed") or [])
    if outcome == "failed" and event.get("codes"):
        details = ", ".join(str(code) for code in event["codes"] if code != "ok")
    cells = [
        _when(event.get("at", "")),
        str(event.get("actor", "")),
        action,
        PROVIDERS.get(str(event.get("provider")), str(event.get("provider") or "")),
        str(outcome),
        details,
    ]
    return "<tr>" + "".join(f"<td>{text(cell)}</td>" for cell in cells) + "</tr>"


class History(widgets.VBox):
    """The audit log as a table, newest first, shown on request (its reading costs a file read).

    Args:
        settings: the service whose :meth:`~ai_admin_widgets.AISettings.audit_log` is shown.
        limit: how many events the table shows at the most (the newest).
    """

    def __init__(self, settings: AISettings, *, limit: int = 50) -> None:
        self.settings = settings
        self.limit = limit
        self.toggle = classes(widgets.Button(description="Show history", tooltip="Show history"), "aiw-history-toggle")
        self.table = classes(widgets.HTML(""), "aiw-history-table")
        self.toggle.on_click(lambda _: self._flip())
        super().__init__([self.toggle, self.table])
        classes(self, "aiw-history")
        show(self.table, False)

    @property
    def shown(self) -> bool:
        """True while the table is shown."""
        return self.table.layout.display != "none"

    def _flip(self) -> None:
        show(self.table, not self.shown)
        self.toggle.description = "Hide history" if self.shown else "Show history"
        self.render()

    def render(self) -> None:
        """Re-read the audit log into the table, if it is shown."""
        if not self.shown:
            return
        try:
            events = self.settings.audit_log()
        except AIAdminError as error:
            self.table.value = span(str(error), ERROR, alert=True)
            return
        if not events:
            self.table.value = span("Nothing has happened yet.", HELP)
            return
        newest = list(reversed(events))[: self.limit]
        header = "".join(
            f"<th>{name}</th>"
            for name in ("When", "Who", "What", "Provider", "Outcome", "Fields changed or failure codes")
        )
        more = span(f"The {self.limit} newest of {len(events)} events.", HELP) if len(events) > self.limit else ""
        self.table.value = (
            '<table style="border-collapse: collapse; font-size: var(--jp-ui-font-size1)" cellpadding="4">'
            f"<thead><tr>{header}</tr></thead><tbody>{''.join(_row(event) for event in newest)}</tbody></table>{more}"
        )
