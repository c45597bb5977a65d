"""What the regions of the AI Settings page (Who may use AI, Budgets, Usage, History) have in common.

A region builds its part of the panel's one state as :mod:`~ai_admin_widgets.widgets.view` nodes and
handles the events whose prefix is its own (``access.apply`` goes to the region whose ``prefix`` is
``"access"``); the panel draws the page again after each. Its fields' paths start with the prefix
(``access.allowed_users``), so they never clash with the form's model paths. A region that is closed
reads nothing: its :meth:`Region.node` answers from the snapshot it is given, without a call on the
settings. An open region reads once per snapshot: the panel draws the page again without a new
snapshot (after a field's blur, say) and the region shows what it read; a new render reads anew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..models import holds_key

if TYPE_CHECKING:
    from ..interface import Settings
    from ..models import SettingsSnapshot
    from .view import Node

__all__ = ["Region"]

T = TypeVar("T")


class Region:
    """One region of the page: its node, its events and its fields' text as typed.

    Args:
        settings: what the region reads and changes (through the Settings interface only).
        panel: the page it is part of (the ``AISettingsPanel``), which calls :meth:`node` on every
            render and :meth:`handle` for every event of the region.

    Attributes:
        prefix: the events' prefix and the fields' path prefix (``"access"``, ``"budgets"``, ...).
        typed: the text of each of the region's fields as last typed, by path (shown again by the next
            render, so a render never throws away what is being typed). Text that holds something shaped
            like an API key is never kept here (it would be in the panel's state).
        emptied: the paths of fields emptied because they held a key's shape, until typed in again.
    """

    prefix = ""

    def __init__(self, settings: Settings, panel: Any) -> None:
        self.settings = settings
        self.panel = panel
        self.typed: dict[str, str] = {}
        self.emptied: set[str] = set()
        self._read: tuple[object | None, Any] | None = None  # (the snapshot it was read for, what was read)

    def node(self, snapshot: SettingsSnapshot) -> Node | None:
        """The region as of ``snapshot``, or None when it is absent from the page."""
        raise NotImplementedError

    def handle(self, action: str, content: Mapping[str, Any]) -> None:
        """Act on ``<prefix>.<action>`` (the panel renders again after it); ``content`` is the front end's message."""

    def read_once(self, snapshot: SettingsSnapshot, read: Callable[[], T]) -> T:
        """``read()`` once for ``snapshot``: drawn again from the same snapshot, what was read is shown again."""
        kept = self._read
        if kept is None or (kept[0] is not None and kept[0] is not snapshot):
            kept = (snapshot, read())
        elif kept[0] is None:  # an answer handed over by :meth:`adopt`: it stands for this snapshot
            kept = (snapshot, kept[1])
        self._read = kept
        return kept[1]

    def adopt(self, answer: Any) -> None:
        """Show ``answer`` (what a change returned, as :meth:`read_once` would read it) at the next draw."""
        self._read = (None, answer)

    def forget(self) -> None:
        """Read anew at the next draw (the region was opened, or what it shows was chosen anew)."""
        self._read = None

    def owns(self, path: str) -> bool:
        """True for the paths of this region's fields (``"access.allowed_users"`` for ``prefix="access"``)."""
        return bool(self.prefix) and path.startswith(f"{self.prefix}.")

    def blur(self, path: str, value: str) -> None:
        """A field of the region lost focus with ``value`` as its text: keep it (tidying is the region's)."""
        self.keep(path, value, typed=True)

    def keep(self, path: str, value: Any, *, typed: bool = False) -> bool:
        """Note ``value`` as the text of field ``path``; False (and an empty field) when it holds a key's shape.

        Args:
            typed: the text comes from the field itself losing focus (not from another event's ``values``):
                text without a key's shape then clears the field's refusal (see :attr:`emptied`).
        """
        text = value if isinstance(value, str) else "" if value is None else str(value)
        if holds_key(text):
            self.typed[path] = ""
            self.emptied.add(path)
            return False
        self.typed[path] = text
        if typed:
            self.emptied.discard(path)
        return True

    def take_values(self, content: Mapping[str, Any]) -> list[str]:
        """Note the text of every field of this region that the event carries (``content["values"]``).

        Returns:
            The paths emptied because they held something shaped like an API key, and not typed in since:
            an action must not go ahead on them (the field shows empty, not what the admin meant).
        """
        values = content.get("values")
        if isinstance(values, Mapping):
            for path, value in values.items():
                if isinstance(path, str) and self.owns(path):
                    self.keep(path, value)
        return sorted(self.emptied)
