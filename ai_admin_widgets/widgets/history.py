"""The History region of the AI Settings page: the audit log, newest first.

Each row is :meth:`~ai_admin_widgets.models.AuditEvent.row`, the same cells ``ai-admin history``
prints. Stable CSS classes: ``aiw-history``, ``aiw-history-toggle`` (Show history / Hide history)
and ``aiw-history-table``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..models import AIAdminError, AuditEvent, HistoryRow, PermissionDenied
from .style import ERROR, HELP, classes, show, span, text

if TYPE_CHECKING:
    from ..interface import Settings

__all__ = ["History"]

#: The column headings (those of ``ai-admin history``), in the order of :class:`~ai_admin_widgets.models.HistoryRow`'s cells.
HEADINGS = HistoryRow(
    when="When (UTC)",
    who="Who",
    what="What",
    provider="Provider",
    outcome="Outcome",
    details="Details",
)


def _row(event: AuditEvent) -> str:
    return "<tr>" + "".join(f"<td>{text(cell)}</td>" for cell in event.row()) + "</tr>"


class History(widgets.VBox):
    """The audit log as a table, newest first, shown on request (reading it costs a file read).

    Args:
        settings: whose :meth:`~ai_admin_widgets.interface.Settings.history` is shown.
        limit: how many events the table shows at the most (the newest).
        on_toggle: called before the table is shown or hidden (the panel catches up with
            changes made elsewhere on every interaction).
    """

    def __init__(self, settings: Settings, *, limit: int = 50, on_toggle: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.limit = limit
        self._on_toggle = on_toggle
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
        if self._on_toggle is not None:
            self._on_toggle()
        show(self.table, not self.shown)
        self.toggle.description = "Hide history" if self.shown else "Show history"
        self.render()

    def render(self) -> None:
        """Read the newest events into the table, if it is shown (nothing is read while it is hidden)."""
        if not self.shown:
            return
        try:
            # One more than shown, to know whether there are older ones.
            events = self.settings.history(self.limit + 1)
        except PermissionDenied as error:  # on a hub the history is for those who may configure: the reason, calmly
            self.table.value = span(str(error), HELP)
            return
        except AIAdminError as error:
            self.table.value = span(str(error), ERROR, alert=True)
            return
        if not events:
            self.table.value = span("Nothing has happened yet.", HELP)
            return
        newest = list(reversed(events))[: self.limit]
        header = "".join(f"<th>{text(name)}</th>" for name in HEADINGS)
        more = span(f"The {self.limit} newest events.", HELP) if len(events) > self.limit else ""
        self.table.value = (
            '<table style="border-collapse: collapse; font-size: var(--jp-ui-font-size1)" cellpadding="4">'
            f"<thead><tr>{header}</tr></thead><tbody>{''.join(_row(event) for event in newest)}</tbody></table>{more}"
        )
