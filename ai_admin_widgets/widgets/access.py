"""The "Who may use AI" region of the AI Settings page: the allow-lists, and who the admins are.

Anyone sees who may use AI and who the admins are; an admin also edits the allowed users
and groups (comma-separated names, then Apply). The region renders the lists
of the panel's :class:`~ai_admin_widgets.models.SettingsSnapshot` (no read of its own). Stable CSS classes: ``aiw-access``,
``aiw-access-summary``, ``aiw-admins``, ``aiw-access-note``, ``aiw-allowed-users``,
``aiw-allowed-groups``, ``aiw-apply-access``, ``aiw-access-message``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..models import ADMIN_REQUIRED, AccessLists, AIAdminError, SettingsSnapshot, holds_key
from .fields import TextField
from .style import ERROR as _ERROR_STYLE
from .style import HELP as _HELP_STYLE
from .style import SUCCESS as _SUCCESS_STYLE
from .style import WARNING as _WARNING_STYLE
from .style import element_id as _element_id
from .style import span as _span

if TYPE_CHECKING:
    from ..interface import Settings

__all__ = ["AccessSettings"]

#: What a user who may not configure is told (the service's reason when no other one applies).


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def describe(lists: AccessLists) -> str:
    """One sentence saying who may use AI under ``lists`` (for the summary line).

    Args:
        lists: the allow-lists.
    Returns:
        E.g. ``"Everyone may use AI."`` or ``"Only these may use AI: the users alice, bob; members of the groups ds."``.
    """
    if lists.everyone_may_use_ai:
        return "Everyone may use AI."
    parts = []
    if lists.allowed_users:
        parts.append(f"the users {_names(lists.allowed_users)}")
    if lists.allowed_groups:
        parts.append(f"members of the groups {_names(lists.allowed_groups)}")
    return f"Only these may use AI: {'; '.join(parts)}."


class AccessSettings(widgets.VBox):
    """Who may use AI (allowed users and groups) and who the admins are; editable by admins only.

    Args:
        settings: the settings to apply changes through; they notify their listeners (the
            panel, which renders this region from its snapshot) after a change.
        on_interaction: called when Apply is pressed, before anything is applied (the panel
            catches up with changes made elsewhere).

    Attributes:
        summary: who may use AI, in one sentence.
        admins: who the admins are (through the AI gateway: hub admins and holders of custom:ai-admin:configure;
            on a hub without it, JupyterHub's admins; else the store's list).
        note: why the current user is not an admin, when JupyterHub could not say.
        users, groups: the allowed users and groups as comma-separated text (admins only).
        apply_button: saves both lists.
        message: the outcome of Apply.
    """

    def __init__(self, settings: Settings, on_interaction: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self._on_interaction = on_interaction
        self._shown: AccessLists | None = None
        self.heading = widgets.HTML("<h4>Who may use AI</h4>")
        self.summary = _with_class(widgets.HTML(""), "aiw-access-summary")
        self.admins = _with_class(widgets.HTML(""), "aiw-admins")
        self.note = _with_class(widgets.HTML(""), "aiw-access-note")
        self.users = _with_class(
            TextField(description="Allowed users", placeholder="everyone; or names: alice, bob"), "aiw-allowed-users"
        )
        self.groups = _with_class(
            TextField(description="Allowed groups", placeholder="everyone; or groups: data-science"),
            "aiw-allowed-groups",
        )
        help_id = _element_id("aiw-access-help")
        self.help = widgets.HTML(
            _span(
                "Comma-separated names. Leave both empty to let everyone use AI. "
                "Groups are JupyterHub's on a hub, the operating system's elsewhere.",
                _HELP_STYLE,
                element_id=help_id,
            )
        )
        for field in (self.users, self.groups):  # Enter in either field applies both lists
            field.layout.width = "560px"
            field.described_by = help_id
            field.on_submit(self.apply)
        self.apply_button = _with_class(widgets.Button(description="Apply", tooltip="Apply"), "aiw-apply-access")
        self.apply_button.on_click(lambda _: self.apply())
        self.message = _with_class(widgets.HTML(""), "aiw-access-message")
        self.editor = widgets.VBox([self.users, self.groups, self.help, self.apply_button])
        super().__init__([self.heading, self.summary, self.admins, self.note, self.editor, self.message])
        _with_class(self, "aiw-access")

    def render(self, snapshot: SettingsSnapshot) -> None:
        """Draw the lists of ``snapshot``; the editor only for admins. Reads nothing.

        The text fields are refilled only when the stored lists changed since the last
        render, so a render does not throw away what an admin is typing.
        """
        check, lists = snapshot.admin, snapshot.access
        self.summary.value = html.escape(describe(lists), quote=False)
        if check.source == "gateway":  # the gateway's answer: hub admins and the hub's roles decide
            admins = "Admins: hub admins and holders of custom:ai-admin:configure."
        elif lists.on_hub:
            admins = "Admins: JupyterHub's admins."
        elif lists.admins:
            admins = f"Admins: {_names(lists.admins)}."
        else:
            admins = "Admins: none yet. Whoever first configures the integration becomes its admin."
        self.admins.value = _span(admins, _HELP_STYLE)
        why = check.reason if check.source == "hub" and not check.admin and check.reason != ADMIN_REQUIRED else None
        self.note.value = _span(why, _WARNING_STYLE, alert=True) if why else ""
        if lists != self._shown:
            self._fill(lists)
        self.editor.layout.display = None if check.admin else "none"
        if not check.admin:
            self.message.value = ""

    def _fill(self, lists: AccessLists) -> None:
        self.users.value = _names(lists.allowed_users)
        self.groups.value = _names(lists.allowed_groups)
        self._shown = lists

    def apply(self) -> None:
        """Save the allowed users and groups as typed; show the outcome (an error keeps what was typed)."""
        users, groups = self.users.value, self.groups.value  # what was typed, before catching up could refill it
        if self._on_interaction is not None:
            self._on_interaction()
        try:
            lists = self.settings.set_allowed(users, groups)
        except (ValueError, AIAdminError) as error:
            self.message.value = _span(str(error), _ERROR_STYLE, alert=True)
            for field, typed in ((self.users, users), (self.groups, groups)):
                field.value = "" if holds_key(typed) else typed  # a key pasted here must not stay in the widget state
            return
        self._fill(lists)  # the lists as stored (tidied)
        self.message.value = _span(f"Saved. {describe(lists)}", _SUCCESS_STYLE)


def _with_class(widget: widgets.DOMWidget, css_class: str) -> widgets.DOMWidget:
    widget.add_class(css_class)
    return widget
