"""The "Who may use AI" region of the AI Settings page: the allow-lists, and who the admins are.

Anyone sees who may use AI (the summary, always shown) and, under *Show details*, who the admins are;
an admin also edits the allowed users and groups there (comma-separated names, then Apply). The region
is drawn from the panel's :class:`~ai_admin_widgets.models.SettingsSnapshot` alone: it reads nothing of
its own, open or closed. It is collapsed until asked, so the page costs nothing more until then.

"Everyone may use AI." is said only while AI is on (an integration is configured and readable). A list
typed with a separator the product does not use (``;``, ``|``, a new line or a tab) is questioned, naming
the field and saying to separate names with commas, instead of being saved as one name; a name saved
like that before is kept as it is (and questioned beside its field).

Events: ``access.toggle`` (Show details / Hide details), ``access.apply``. Fields:
``access.allowed_users``, ``access.allowed_groups``. Stable CSS classes: ``aiw-access``,
``aiw-access-summary``, ``aiw-access-toggle``, ``aiw-admins``, ``aiw-access-note``, ``aiw-allowed-users``,
``aiw-allowed-groups``, ``aiw-access-help``, ``aiw-apply-access``, ``aiw-access-message``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..models import ADMIN_REQUIRED, AccessLists, AIAdminError, SettingsSnapshot
from . import view
from .region import Region

if TYPE_CHECKING:
    from ..interface import Settings
    from .view import Node

__all__ = ["AccessRegion", "describe", "question_separators"]

USERS, GROUPS = "access.allowed_users", "access.allowed_groups"
#: Each field: its label, the word for one of its names (for messages) and its placeholder.
FIELDS = {
    USERS: ("Allowed users", "user", "empty for everyone, or names: alice, bob"),
    GROUPS: ("Allowed groups", "group", "empty for everyone, or groups: data-science"),
}
HELP = (
    "Comma-separated names. Leave both empty to let everyone use AI. "
    "Groups are JupyterHub's on a hub, the operating system's elsewhere."
)
#: Separators an admin may type between names that the product does not use (it splits at commas only).
SEPARATORS = {";": "semicolons (;)", "|": "bars (|)", "\n": "new lines", "\r": "new lines", "\t": "tabs"}
_SPLIT = re.compile("[,;|\t\r\n]")
_LONGEST_SUGGESTION = 200


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def describe(lists: AccessLists, *, ai_on: bool = True) -> str:
    """One sentence saying who may use AI under ``lists`` (for the summary line).

    Args:
        lists: the allow-lists.
        ai_on: whether AI is on (an integration is configured); while it is off nobody may use AI,
            whatever the lists say.
    Returns:
        E.g. ``"Everyone may use AI."`` or ``"Only these may use AI: the users alice, bob; members of the groups ds."``.
    """
    parts = []
    if lists.allowed_users:
        parts.append(f"the users {_names(lists.allowed_users)}")
    if lists.allowed_groups:
        parts.append(f"members of the groups {_names(lists.allowed_groups)}")
    if not ai_on:
        then = f" Once it is on, only these may use AI: {'; '.join(parts)}." if parts else ""
        return f"Nobody may use AI: AI is off until the OpenAI integration is added.{then}"
    if lists.everyone_may_use_ai:
        return "Everyone may use AI."
    return f"Only these may use AI: {'; '.join(parts)}."


def question_separators(typed: str, label: str) -> str | None:
    """Why ``typed`` (the text of the field ``label``) is questioned, or None when it uses commas only.

    Returns:
        E.g. ``"Allowed groups: separate names with commas, not semicolons (;). Did you mean: ds, ops?"``.
    """
    found: list[str] = []
    for separator, name in SEPARATORS.items():
        if separator in typed and name not in found:
            found.append(name)
    if not found:
        return None
    message = f"{label}: separate names with commas, not {' or '.join(found)}."
    names = [name.strip() for name in _SPLIT.split(typed) if name.strip()]
    suggestion = ", ".join(dict.fromkeys(names))
    if suggestion and len(suggestion) <= _LONGEST_SUGGESTION:
        message += f" Did you mean: {suggestion}?"
    return message


def _key_message(kind: str) -> str:
    return f"One of the {kind} names looks like an API key, not a name: it was taken out of the field; type the names again."


class AccessRegion(Region):
    """Who may use AI (allowed users and groups) and who the admins are; editable by admins only.

    Args:
        settings: the settings to apply changes through; they notify their listeners (the panel,
            which renders this region from its snapshot) after a change.
        panel: the page this region is part of.

    Attributes:
        open: whether the details (admins, the editor, the outcome of Apply) are shown; False at first.
        message: the outcome of Apply as ``(text, tone)``, or None.
    """

    prefix = "access"

    def __init__(self, settings: Settings, panel: Any) -> None:
        super().__init__(settings, panel)
        self.open = False
        self.message: tuple[str, str] | None = None
        self.errors: dict[str, str] = {}
        self._shown: AccessLists | None = None  # the lists the fields were last filled from
        self._ai_on = True

    # -- drawing -------------------------------------------------------------------- #

    def node(self, snapshot: SettingsSnapshot) -> Node:
        """The region as of ``snapshot``; calls nothing on the settings.

        The fields are refilled only when the stored lists changed since they were last filled, so a
        render does not throw away what an admin is typing.
        """
        check, lists = snapshot.admin, snapshot.access
        self._ai_on = snapshot.status.configured and snapshot.problem is None
        summary = view.text("summary", describe(lists, ai_on=self._ai_on), cls="aiw-access-summary")
        details: list[Node | None] = []
        if self.open:
            if lists != self._shown:
                self._fill(lists)
            details.append(view.text("admins", _admins(snapshot), tone="help", cls="aiw-admins"))
            why = check.reason if check.source == "hub" and not check.admin and check.reason != ADMIN_REQUIRED else None
            if why:
                details.append(view.text("note", why, tone="warning", alert=True, cls="aiw-access-note"))
            if check.admin:
                details.extend(self._editor(lists))
                if self.message is not None:
                    said, tone = self.message
                    details.append(
                        view.text("message", said, tone=tone, alert=tone == "error", cls="aiw-access-message")
                    )
            else:
                self.message = None
        toggle = view.disclosure(
            "details",
            "Hide details" if self.open else "Show details",
            open=self.open,
            event="access.toggle",
            children=details,
            cls="aiw-access-toggle",
        )
        return view.region("access", "Who may use AI", summary, toggle, cls="aiw-access")

    def _editor(self, lists: AccessLists) -> list[Node | None]:
        fields = []
        for path, (label, _kind, placeholder) in FIELDS.items():
            typed = self.typed.get(path, "")
            names = lists.allowed_users if path == USERS else lists.allowed_groups
            odd = [name for name in names if question_separators(name, label)]
            notice = ""
            if odd and path not in self.errors and typed == _names(names):
                notice = (
                    f"{label}: “{odd[0]}” is saved as one name; if it is several, separate them with commas and Apply."
                )
            fields.append(
                view.field(
                    path,
                    label,
                    cls="aiw-allowed-users" if path == USERS else "aiw-allowed-groups",
                    value=typed,
                    placeholder=placeholder,
                    error=self.errors.get(path, ""),
                    notice=notice,
                )
            )
        editor = view.box(
            "editor",
            *fields,
            view.text("help", HELP, tone="help", cls="aiw-access-help"),
            view.button("Apply", "access.apply", cls="aiw-apply-access", aria_label="Apply who may use AI"),
            cls="aiw-access-editor",
        )
        editor["submit_event"] = "access.apply"  # Enter in either field applies both lists (as a dialog's fields)
        return [editor]

    def _fill(self, lists: AccessLists) -> None:
        self.typed[USERS] = _names(lists.allowed_users)
        self.typed[GROUPS] = _names(lists.allowed_groups)
        self.errors.clear()
        self.emptied.clear()
        self._shown = lists

    # -- events --------------------------------------------------------------------- #

    def handle(self, action: str, content: Mapping[str, Any]) -> None:
        """``toggle``: show or hide the details; ``apply``: save both lists as typed (in ``content["values"]``)."""
        if action == "toggle":
            self.open = not self.open
            self.message = None
            self._shown = None  # opened: filled from the lists as stored
            self.errors.clear()
        elif action == "apply" and self.open:
            self.apply(content)

    def blur(self, path: str, value: str) -> None:
        """Keep what was typed in ``path``; question a separator other than commas, refuse a key's shape."""
        if path not in FIELDS:
            return
        self._check(path, self.keep(path, value, typed=True))

    def _check(self, path: str, kept: bool) -> str | None:
        """The field's error after it was typed in (also noted in ``errors``), or None."""
        label, kind, _ = FIELDS[path]
        saved = None if self._shown is None else self._saved_text(path)
        if not kept:
            error: str | None = _key_message(kind)
        elif self.typed[path] == saved:  # as stored: nothing to question that is not already saved
            error = None
        else:
            error = question_separators(self.typed[path], label)
        if error:
            self.errors[path] = error
        else:
            self.errors.pop(path, None)
        return error

    def _saved_text(self, path: str) -> str:
        assert self._shown is not None
        return _names(self._shown.allowed_users if path == USERS else self._shown.allowed_groups)

    def apply(self, content: Mapping[str, Any]) -> None:
        """Save the allowed users and groups as typed; show the outcome (an error keeps what was typed).

        Nothing is saved while a field holds a separator other than commas or something shaped like a key.
        """
        refused = set(self.take_values(content))
        problems = [
            problem
            for path in FIELDS
            if path in self.typed and (problem := self._check(path, path not in refused)) is not None
        ]
        if problems:
            self.message = (" ".join(["Nothing was saved.", *problems]), "error")
            return
        try:
            lists = self.settings.set_allowed(self.typed.get(USERS, ""), self.typed.get(GROUPS, ""))
        except (ValueError, AIAdminError) as error:
            self.message = (str(error), "error")
            return
        self._fill(lists)  # the lists as stored (tidied)
        self.message = (f"Saved. {describe(lists, ai_on=self._ai_on)}", "success")


def _admins(snapshot: SettingsSnapshot) -> str:
    check, lists = snapshot.admin, snapshot.access
    if check.source == "gateway":  # the gateway's answer: hub admins and the hub's roles decide
        return "Admins: hub admins and holders of custom:ai-admin:configure."
    if lists.on_hub:
        return "Admins: JupyterHub's admins."
    if lists.admins:
        return f"Admins: {_names(lists.admins)}."
    return "Admins: none yet. Whoever first configures the integration becomes its admin."
