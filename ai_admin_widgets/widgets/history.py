"""The History region of the AI Settings page: the audit log, newest first, shown on request.

Each row is :meth:`~ai_admin_widgets.models.AuditEvent.row`, the same cells ``ai-admin history``
prints; the table holds the ``limit`` newest events (one more is read, to say when there are older
ones). Nothing is read while the table is closed. Event: ``history.toggle`` (Show history / Hide
history). Stable CSS classes: ``aiw-history``, ``aiw-history-toggle``, ``aiw-history-table`` (the table,
or what is said in its place) and ``aiw-history-more``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..models import AIAdminError, HistoryRow, PermissionDenied
from . import view
from .region import Region

if TYPE_CHECKING:
    from ..interface import Settings
    from ..models import SettingsSnapshot
    from .view import Node

__all__ = ["HistoryRegion"]

#: The column headings (those of ``ai-admin history``), in the order of :class:`~ai_admin_widgets.models.HistoryRow`'s cells.
HEADINGS = HistoryRow(
    when="When (UTC)",
    who="Who",
    what="What",
    provider="Provider",
    outcome="Outcome",
    details="Details",
)


class HistoryRegion(Region):
    """The audit log as a table, newest first, shown on request (reading it costs a file read or a gateway call).

    Args:
        settings: whose :meth:`~ai_admin_widgets.interface.Settings.history` is shown.
        panel: the page this region is part of.
        limit: how many events the table shows at the most (the newest).

    Attributes:
        open: whether the table is shown.
    """

    prefix = "history"

    def __init__(self, settings: Settings, panel: Any, *, limit: int = 50) -> None:
        super().__init__(settings, panel)
        self.limit = limit
        self.open = False

    @property
    def shown(self) -> bool:
        """True while the table is shown."""
        return self.open

    def node(self, snapshot: SettingsSnapshot) -> Node:
        """The toggle and, while open, the newest events (read once per snapshot); closed, it reads nothing."""
        toggle = view.disclosure(
            "toggle",
            "Hide history" if self.open else "Show history",
            open=self.open,
            event="history.toggle",
            children=self.read_once(snapshot, self._table) if self.open else [],
            cls="aiw-history-toggle",
        )
        return view.box("history", toggle, cls="aiw-history")

    def _table(self) -> list[Node | None]:
        try:
            events = self.settings.history(self.limit + 1)  # one more than shown: are there older ones?
        except PermissionDenied as error:  # on a hub the history is for those who may configure: the reason, calmly
            return [view.text("table", str(error), tone="help", cls="aiw-history-table")]
        except AIAdminError as error:
            return [view.text("table", str(error), tone="error", alert=True, cls="aiw-history-table")]
        if not events:
            return [view.text("table", "Nothing has happened yet.", tone="help", cls="aiw-history-table")]
        newest = list(reversed(events))[: self.limit]
        return [
            view.table("table", HEADINGS, (event.row() for event in newest), cls="aiw-history-table"),
            view.text("more", f"The {self.limit} newest events.", tone="help", cls="aiw-history-more")
            if len(events) > self.limit
            else None,
        ]

    def handle(self, action: str, content: Mapping[str, Any]) -> None:
        """``toggle``: show or hide the table."""
        if action == "toggle":
            self.open = not self.open
            self.forget()
