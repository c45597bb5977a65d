"""The AI Settings page as one view: the OpenAI row, its Add/Edit dialog, the remove confirmation, the regions.

No business logic lives here: the panel calls a :class:`~ai_admin_widgets.interface.Settings` and
renders what comes back. :class:`AISettingsPanel` is one anywidget with one synchronized trait,
``state``: the page as a tree of nodes (:mod:`~ai_admin_widgets.widgets.view`), rebuilt from one
:class:`~ai_admin_widgets.models.SettingsSnapshot` per render and drawn by ``panel.js``, a generic
renderer holding no wording. The state never holds a key: what is typed in an API Key reaches the
kernel only in custom messages (a field losing focus, and Save) and stays in the form's private store.

The front end sends ``{"event": "<prefix>.<action>", "values": {...}, ...}`` (see
:meth:`AISettingsPanel.handle`); ``panel.poll``, every 2 seconds while the page is visible, makes
the panel catch up with changes made elsewhere (another kernel, a terminal, the gateway): when
:meth:`~ai_admin_widgets.interface.Settings.fingerprint` moved, the page is drawn again.

Every node carries stable CSS classes (``aiw-add``, ``aiw-edit``, ``aiw-remove``, ``aiw-test``,
``aiw-provider``, ``aiw-api-key``, ``aiw-save``, ``aiw-cancel``, ``aiw-confirm-remove``,
``aiw-status``, …); tests, notebooks and benchmarks drive the page through :meth:`~AISettingsPanel.press`,
:meth:`~AISettingsPanel.type`, :meth:`~AISettingsPanel.choose` and :meth:`~AISettingsPanel.check`,
which send exactly what the front end sends.
"""

from __future__ import annotations

import asyncio
import html
import importlib
import logging
import uuid
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anywidget
import traitlets

from ..models import (
    ADMIN_REQUIRED,
    ROLE_LABELS,
    AIAdminError,
    AzureOpenAIFields,
    AzureOpenAIIntegration,
    IntegrationStatus,
    Notice,
    OpenAIFields,
    OpenAIIntegration,
    Provider,
    SavedKeyUnavailable,
    SettingsSnapshot,
    VerificationFailed,
    VerificationReport,
    resource_of,
)
from . import view
from .form import IntegrationForm, Line

if TYPE_CHECKING:
    from ..interface import Settings

__all__ = ["NEEDS_WIDGETS", "AISettingsPanel", "IntegrationForm", "Region"]

_log = logging.getLogger(__name__)

Integration = OpenAIIntegration | AzureOpenAIIntegration

#: What the text of the panel says where JupyterLab cannot show widgets (or before its cell has run).
NEEDS_WIDGETS = (
    "The AI Settings panel shows here when this cell runs in JupyterLab. If this text stays after running it, "
    "JupyterLab's widget support is missing: install ipywidgets>=8 in the environment that runs JupyterLab, "
    "then reload the page."
)

#: The regions under the row, in page order: ``(module of this package, class)``. A module whose
#: class is missing or is not a :class:`Region` (no ``node``) is left out of the page.
REGIONS = (
    ("access", "AccessRegion"),
    ("budgets", "BudgetsRegion"),
    ("usage", "UsageRegion"),
    ("history", "HistoryRegion"),
)

_HERE = Path(__file__).parent


class Region(Protocol):
    """A part of the page under the row (Who may use AI, Budgets, Usage, History), built as nodes.

    The panel renders again after :meth:`handle` and :meth:`blur`. A closed region reads nothing:
    its :meth:`node` returns a closed disclosure without calling the settings.
    """

    prefix: str

    def node(self, snapshot: SettingsSnapshot) -> view.Node | None:
        """The region's node for this snapshot; None: absent from the page."""
        ...

    def handle(self, action: str, content: dict[str, Any]) -> None:
        """An event ``<prefix>.<action>`` from the front end (its ``values``, ``path``, ``value``)."""
        ...

    def owns(self, path: str) -> bool:
        """Whether the field ``path`` (``"access.allowed_users"``) is one of this region's."""
        ...

    def blur(self, path: str, value: str) -> None:
        """A field of this region lost focus holding ``value`` (tidy it)."""
        ...


def _load_regions() -> list[Callable[[Settings, AISettingsPanel], Region]]:
    classes = []
    for module_name, class_name in REGIONS:
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ImportError:  # pragma: no cover - every module ships with the package
            continue
        found = getattr(module, class_name, None)
        if (
            found is not None
            and callable(getattr(found, "node", None))
            and isinstance(getattr(found, "prefix", None), str)
        ):
            classes.append(found)
    return classes


def _not_admin(reason: str | None) -> str:
    """Why the panel is read-only: the admin check's reason (on a hub, which role grants it), led by ADMIN_REQUIRED."""
    if not reason:
        return ADMIN_REQUIRED
    return reason if reason.startswith(ADMIN_REQUIRED) else f"{ADMIN_REQUIRED} {reason}"


class AISettingsPanel(anywidget.AnyWidget):
    """The AI Settings page for one :class:`~ai_admin_widgets.interface.Settings`, as one anywidget.

    Args:
        settings: what the panel reads and changes, only through the ``Settings`` interface;
            the panel draws itself again when they change (through this object at once,
            elsewhere within a poll, every 2 seconds while the page is visible, or on the next event).

    Attributes:
        state: the synchronized page (``{"root": node, "revision": int, "instance": str}``); never a key.
        view: ``"row"``, ``"form"`` (Add or Edit open) or ``"confirm"`` (Remove asked).
        snapshot: what the last render showed (:class:`~ai_admin_widgets.models.SettingsSnapshot`).
        form: the Add/Edit dialog's values, errors and (privately) typed keys.
        regions: the regions under the row (:class:`Region`), in page order.
        focused: the CSS class the keyboard focus was last sent to (``""``: none yet).
    """

    _esm = _HERE / "panel.js"
    _css = _HERE / "panel.css"
    state = traitlets.Dict().tag(sync=True)

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.view = "row"
        self.snapshot: SettingsSnapshot | None = None
        self.form = IntegrationForm()
        self.focused = ""
        self._instance = uuid.uuid4().hex[:12]
        self._revision = 0
        self._seen: Hashable = None  # the settings' fingerprint when they were last drawn
        self._opened_at: int | None = None
        self._task: asyncio.Task[Any] | None = None
        self._result: list[Line] = []  # under the row: Test's outcome, or what a Save adjusted
        self._result_revision: int | None = None  # the revision the result describes
        self._confirm_message = ""
        self.regions: list[Region] = [factory(settings, self) for factory in _load_regions()]
        self.on_msg(self._receive)
        self._unsubscribe = settings.on_change(self._refresh)
        self._refresh()

    def __repr__(self) -> str:
        shown = self.snapshot
        if shown is None:
            return f"AISettingsPanel(view={self.view!r})"
        if shown.problem is not None:
            return f"AISettingsPanel(status unavailable, view={self.view!r})"
        provider = shown.status.provider.label if shown.status.provider else None
        return f"AISettingsPanel(configured={shown.status.configured}, provider={provider!r}, view={self.view!r})"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The widget, and in its place where JupyterLab cannot show it, what to do (not the repr)."""
        shown = super()._repr_mimebundle_(**kwargs)
        if shown is None:
            return None
        data, metadata = shown
        data = dict(data)
        data["text/plain"] = NEEDS_WIDGETS
        # An output saved in a notebook is shown as its text/html until its cell runs again (JupyterLab
        # renders widgets only for trusted outputs); so is one where widget support is missing.
        data["text/html"] = f"<p>{html.escape(NEEDS_WIDGETS, quote=False)}</p>"
        return data, metadata

    def close(self) -> None:
        """Stop following the settings, forget every typed key and close the widget."""
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
        task = getattr(self, "_task", None)
        if task is not None and not task.done():
            task.cancel()
        if hasattr(self, "form"):
            self.form.clear_fields()
        super().close()

    # -- rendering ----------------------------------------------------------------- #

    def render(self) -> None:
        """Draw the page from one :meth:`~ai_admin_widgets.interface.Settings.snapshot` and the current view.

        Nothing else is read, except what an open region shows (History's audit log, Usage's report).
        """
        self.snapshot = self.settings.snapshot()
        self._draw()

    def _refresh(self) -> None:
        """Note the settings' fingerprint, then render (the fingerprint first: a change in between is caught later)."""
        self._seen = self.settings.fingerprint()
        self.render()

    def _catch_up(self) -> None:
        """Draw the page again if the settings changed elsewhere since it was drawn (every event does this first)."""
        seen = self.settings.fingerprint()
        if seen != self._seen:
            self._seen = seen
            self.render()

    def _draw(self, *, force: bool = False) -> None:
        """Build the state from the last snapshot (no read) and hand it to the front end.

        ``force``: send it even when it is the same as the last one (after a field is left, so that the front end
        puts the field's tidied text back even when it equals what the state said before).
        """
        snapshot = self.snapshot
        assert snapshot is not None  # rendered in __init__
        damaged = snapshot.problem is not None
        status = snapshot.status if not damaged else IntegrationStatus(configured=False)
        if self._result_revision is not None and (damaged or self._result_revision != status.revision):
            self._set_result([], revision=None)  # it described an integration that is no longer the one shown
        admin = snapshot.admin.admin
        if damaged:
            notice = view.text("notice", snapshot.problem or "", tone="error", alert=True, cls="aiw-notice")
        elif not admin:
            notice = view.text("notice", _not_admin(snapshot.admin.reason), cls="aiw-notice")
        else:
            notice = None
        dialog: view.Node | None = None
        if self.view == "form":
            dialog = self.form.node()
        elif self.view == "confirm":
            dialog = self._confirmation()
        regions: list[view.Node | None] = []
        for region in self.regions:
            try:
                regions.append(region.node(snapshot))
            except AIAdminError as error:  # a region that cannot be read says so in its place
                regions.append(view.text(region.prefix, str(error), tone="error", cls=f"aiw-{region.prefix}"))
        keyring = snapshot.keyring
        if keyring.problem:
            footer = view.text(
                "footer", f"Keys cannot be saved here. {keyring.problem}", tone="error", cls="aiw-footer"
            )
        else:
            where = status.keyring_backend or keyring.backend
            footer = view.text("footer", f"Keys are kept in: {where}", tone="help", cls="aiw-footer")
        root = view.box(
            "panel",
            view.heading("title", "AI Settings", level=3, cls="aiw-title"),
            notice,
            self._row(status, admin=admin, damaged=damaged),
            dialog,
            *regions,
            footer,
            cls="aiw-panel",
            role="region",
            label="AI Settings",
        )
        if not force and self.state and self.state.get("root") == root:
            return  # nothing the admin would see changed: no new state to send
        self._revision += 1
        self.state = {"root": root, "revision": self._revision, "instance": self._instance}

    def _row(self, status: IntegrationStatus, *, admin: bool, damaged: bool) -> view.Node:
        """The "OpenAI" row: the status, its health, Test's outcome, warnings, and the buttons the user may press."""
        lines: list[view.Node | None] = []
        if damaged:
            lines.append(view.text("summary", "The saved settings cannot be read."))
        elif status.configured and status.provider is not None:
            details = [status.provider.label]
            for model in status.models:
                name = model.model or model.deployment_id or ""
                where = f" (deployment {model.deployment_id})" if model.deployment_id else ""
                details.append(f"{name}{where}")
            resources = list(dict.fromkeys(filter(None, (resource_of(model.endpoint_url) for model in status.models))))
            if resources:
                kind = "resource" if status.provider is Provider.AZURE_OPENAI else "at"
                details.append(f"{kind} {', '.join(resources)}")
            details.append(self._signs_in(status))
            lines.append(view.text("summary", " · ".join(details), cls="aiw-summary"))
            if status.updated_by and status.updated_at:
                lines.append(
                    view.text(
                        "saved", f"Saved by {status.updated_by} on {status.updated_at:%Y-%m-%d %H:%M} UTC", tone="help"
                    )
                )
            summary = status.last_authentication_summary
            if summary and status.last_authenticated_at is not None:
                ok = "succeeded" if status.last_authentication_ok else summary.rpartition(": ")[2]
                lines.append(
                    view.ago(
                        "authenticated",
                        status.last_authenticated_at.isoformat(),
                        "Last authenticated {ago}: " + ok.replace("{", "{{").replace("}", "}}"),
                        summary,
                        cls="aiw-authenticated",
                    )
                )
            elif summary:
                lines.append(view.text("authenticated", summary, tone="help", cls="aiw-authenticated"))
        else:
            lines.append(view.text("summary", "Not configured. AI functionality is disabled."))
        health = self._health(status, admin=admin and not damaged)
        warnings = (
            view.text(
                "warnings", "\n".join(f"⚠ {warning}" for warning in status.warnings), tone="warning", cls="aiw-warnings"
            )
            if status.warnings and not damaged
            else None
        )
        result = None
        if self._result:
            tone = next((line.tone for line in self._result if line.tone == "error"), self._result[-1].tone)
            result = view.text(
                "result",
                "\n".join(line.text for line in self._result),
                tone=tone,
                alert=any(line.alert for line in self._result),
                cls="aiw-test-result",
            )
        # While the form or the confirmation is open, the row offers nothing else to press,
        # so a Save under way cannot be crossed by a Remove, a Test or another Edit.
        offer = admin and self.view == "row"
        buttons = view.box(
            "buttons",
            view.button("Add", "row.add", cls="aiw-add", tone="primary")
            if offer and not status.configured and not damaged
            else None,
            view.button("Edit", "row.edit", cls="aiw-edit") if offer and status.configured and not damaged else None,
            view.button("Test", "row.test", cls="aiw-test", disabled=self._busy())
            if offer and status.configured and not damaged
            else None,
            view.button("Remove", "row.remove", cls="aiw-remove", tone="danger")
            if offer and (status.configured or damaged)
            else None,
            cls="aiw-row-buttons",
        )
        return view.box(
            "row",
            view.box(
                "line",
                view.text("name", "OpenAI", cls="aiw-row-name"),
                view.box("status", *lines, cls="aiw-status"),
                buttons,
                cls="aiw-row-line",
            ),
            health,
            result,
            warnings,
            cls="aiw-row",
            role="group",
            label="OpenAI",
        )

    @staticmethod
    def _signs_in(status: IntegrationStatus) -> str:
        """How the models sign in, where the row says the key: ``key …abcd``, or Microsoft Entra ID in words
        (once when both models sign in alike, else each model's)."""
        keyless = [model for model in status.models if model.authentication.startswith("Microsoft Entra ID")]
        if not keyless:
            return f"key {status.key_hint or '…'}"
        ways = list(dict.fromkeys(model.authentication for model in status.models))
        if len(ways) == 1:
            return ways[0]
        return "; ".join(f"{ROLE_LABELS[model.role].lower()}: {model.authentication}" for model in status.models)

    @staticmethod
    def _health(status: IntegrationStatus, *, admin: bool) -> view.Node | None:
        """Flag a failing or stale integration under the row (``aiw-health aiw-health-<state>``), with what to do."""
        problem = status.health_problem()
        if problem is None:
            return None
        failing = status.health == "failing"
        if not admin:
            remedy = "An admin can authenticate it again with Test."
        elif failing:
            remedy = "Press Test to authenticate again; if it fails again, press Edit and correct what Test reports (often the API Key)."
        else:
            remedy = "Press Test to authenticate again."
        return view.text(
            "health",
            f"⚠ {problem} {remedy}",
            tone="error" if failing else "warning",
            cls=f"aiw-health aiw-health-{status.health.value}",
        )

    def _confirmation(self) -> view.Node:
        """ "Remove OpenAI Integration": the confirmation before AI functionality is disabled; it lands on Cancel."""
        return view.dialog(
            "confirm",
            "Remove OpenAI Integration",
            view.text("explain", "AI functionality will be disabled for your organization."),
            view.text("message", self._confirm_message, tone="error", alert=True, cls="aiw-message")
            if self._confirm_message
            else None,
            view.box(
                "buttons",
                view.button("Cancel", "confirm.cancel", cls="aiw-cancel"),
                view.button("Remove", "confirm.remove", cls="aiw-confirm-remove", tone="danger"),
                cls="aiw-buttons",
            ),
            cancel_event="confirm.cancel",
            focus="aiw-cancel",  # the safe choice is where the keyboard lands
            cls="aiw-confirmation",
        )

    def _set_result(self, lines: list[Line], *, revision: int | None) -> None:
        """Show ``lines`` under the row, as describing the integration's ``revision`` (empty: nothing)."""
        self._result = lines
        self._result_revision = revision if lines else None

    def _show_notes(self, notices: tuple[Notice, ...], *, revision: int | None) -> None:
        """After a Save of ``revision``, say what was adjusted in what the admin typed (never silently)."""
        seen = list(dict.fromkeys(notice.message for notice in notices))
        lines = [Line("Saved. Adjusted while saving:", "help")] + [Line(f"• {message}", "help") for message in seen]
        self._set_result(lines if seen else [], revision=revision)

    def _show_test(
        self, report: VerificationReport | None, error: str | None = None, *, revision: int | None = None
    ) -> None:
        """Show the outcome of Test of ``revision`` under the row (``report`` and ``error`` both None: clear it)."""
        if error:
            self._set_result([Line(error, "error", alert=True)], revision=revision)
        elif report is None:
            self._set_result([], revision=None)
        else:
            self._set_result(
                [
                    Line(f"✓ {check.message}", "success")
                    if check.ok
                    else Line(f"✗ {check.message}", "error", alert=True)
                    for check in report.checks
                ],
                revision=revision,
            )

    # -- the driver API ------------------------------------------------------------- #

    def nodes(self, css_class: str) -> list[view.Node]:
        """Every node in the current state that carries ``css_class``, in page order."""
        return view.find(self.state["root"], css_class)

    def offered(self, css_class: str) -> bool:
        """Whether a node with ``css_class`` is on the page and not disabled."""
        return any(not node.get("disabled") for node in self.nodes(css_class))

    def text_of(self, css_class: str) -> str:
        """What the admin reads in the nodes with ``css_class``, as lines (keys as bullets)."""
        typed = self.form.typed_keys()
        return "\n".join(line for node in self.nodes(css_class) for line in view.text_lines(node, typed))

    def visible_text(self) -> str:
        """What the admin sees, as plain lines: text, labels, field values (keys as bullets) and buttons."""
        return "\n".join(view.text_lines(self.state["root"], self.form.typed_keys()))

    def values(self) -> dict[str, Any]:
        """What the front end sends as ``values``: every rendered text field, radio and checkbox by path."""
        found: dict[str, Any] = {}
        for node in view.walk(self.state["root"]):
            if (node["kind"] == "field" and node["input"] != "key") or node["kind"] in ("radio", "checkbox"):
                found[node["path"]] = node["value"]
        return found

    def _one(self, css_class: str, kinds: tuple[str, ...]) -> view.Node:
        found = [node for node in self.nodes(css_class) if node["kind"] in kinds]
        if not found:
            raise LookupError(f"no {' or '.join(kinds)} with class {css_class!r} is on the page")
        return found[0]

    def press(self, css_class: str) -> None:
        """Press the button (or disclosure) with ``css_class`` as the front end would.

        Raises:
            LookupError: no such button is on the page, or it is disabled (naming the class).
        """
        node = self._one(css_class, ("button", "disclosure"))
        if node.get("disabled"):
            raise LookupError(f"the button with class {css_class!r} is disabled")
        content: dict[str, Any] = {"event": node["event"], "values": self.values()}
        if node.get("keys"):
            content["keys"] = self.form.typed_keys()
        self.handle(content)

    def type(self, css_class_or_path: str, text: str) -> None:
        """Type ``text`` into a field (by class or path) and leave it: its text is set and ``field.blur`` sent.

        A key field's text goes to the form's private key store, never to the state.

        Raises:
            LookupError: no such field is on the page.
        """
        found = [
            node
            for node in view.walk(self.state["root"])
            if node["kind"] == "field"
            and (node["path"] == css_class_or_path or css_class_or_path in node["cls"].split())
        ]
        if not found:
            raise LookupError(f"no field with class or path {css_class_or_path!r} is on the page")
        node = found[0]
        values = self.values()
        if node["input"] != "key":
            values[node["path"]] = text
        self.handle({"event": "field.blur", "path": node["path"], "value": text, "values": values})

    def choose(self, css_class: str, value: str) -> None:
        """Choose ``value`` in the radio group with ``css_class`` (e.g. ``choose("aiw-provider", "azure_openai")``)."""
        node = self._one(css_class, ("radio",))
        if node.get("disabled"):
            raise LookupError(f"the choice with class {css_class!r} is disabled")
        if value not in [option["value"] for option in node["options"]]:
            raise LookupError(f"{css_class!r} offers no {value!r}")
        values = {**self.values(), node["path"]: value}
        self.handle({"event": node["event"], "path": node["path"], "value": value, "values": values})

    def check(self, css_class: str, checked: bool) -> None:
        """Tick (or untick) the checkbox with ``css_class``."""
        node = self._one(css_class, ("checkbox",))
        values = {**self.values(), node["path"]: bool(checked)}
        self.handle({"event": node["event"], "path": node["path"], "value": bool(checked), "values": values})

    def enter(self, css_class_or_path: str = "") -> None:
        """Press Enter in a field: the submit event of the nearest dialog or box around it that has one, with
        the keys (as Save). Without a field, in the open dialog.

        Raises:
            LookupError: no such field is on the page, or nothing around it (or no open dialog) is submitted by Enter.
        """
        if not css_class_or_path:
            dialogs = [
                node for node in view.walk(self.state["root"]) if node["kind"] == "dialog" and node["submit_event"]
            ]
            if not dialogs:
                raise LookupError("no dialog that Enter submits is open")
            event = dialogs[0]["submit_event"]
        else:
            event = self._submit_around(self.state["root"], css_class_or_path, "")
            if event is None:
                raise LookupError(f"no field with class or path {css_class_or_path!r} is on the page")
            if not event:
                raise LookupError(f"Enter in the field {css_class_or_path!r} submits nothing")
        self.handle({"event": event, "values": self.values(), "keys": self.form.typed_keys()})

    @classmethod
    def _submit_around(cls, node: view.Node, css_class_or_path: str, around: str) -> str | None:
        """The submit event Enter in the field sends (``""``: none), as panel.js finds it; None: no such field."""
        if node["kind"] == "dialog" or (node["kind"] == "box" and node.get("submit_event")):
            around = node.get("submit_event") or ""
        if node["kind"] == "field" and (node["path"] == css_class_or_path or css_class_or_path in node["cls"].split()):
            return around
        for child in node.get("children", ()):
            found = cls._submit_around(child, css_class_or_path, around)
            if found is not None:
                return found
        return None

    def escape(self) -> None:
        """Press Escape in the open dialog: its cancel event.

        Raises:
            LookupError: no dialog is open.
        """
        dialogs = [node for node in view.walk(self.state["root"]) if node["kind"] == "dialog"]
        if not dialogs:
            raise LookupError("no dialog is open")
        self.handle({"event": dialogs[0]["cancel_event"], "values": self.values()})

    # -- events ------------------------------------------------------------------- #

    def _receive(self, _widget: Any, content: Any, _buffers: Any) -> None:
        self.handle(content)

    def _focus(self, css_class: str) -> None:
        """Ask the front end to move the keyboard focus to the first element with ``css_class``."""
        if css_class:
            self.focused = css_class
            self._tell({"event": "focus", "cls": css_class})

    def _tell(self, content: dict[str, Any]) -> None:
        if self.comm is not None:
            self.send(content)

    def handle(self, content: Any) -> None:
        """Act on one message from the front end (``{"event": "<prefix>.<action>", "values": {...}, ...}``).

        Unknown or malformed messages are ignored (logged without their content, which may hold a key).
        """
        if not isinstance(content, dict) or not isinstance(content.get("event"), str):
            return
        event: str = content["event"]
        try:
            self._dispatch(event, content)
        except AIAdminError as error:  # a region's or the settings' refusal: said on the page, not raised
            _log.warning("%s was refused: %s", event, error)
            self._draw()
        except Exception:  # a bug: logged (never the content) and the page stays usable
            _log.exception("The AI Settings panel could not handle %s", event)
            self._draw()

    def _dispatch(self, event: str, content: dict[str, Any]) -> None:
        prefix, _, action = event.partition(".")
        if self.view == "form" and event != "panel.poll":  # a poll carries nothing typed
            # A key typed while a Save authenticates is not taken: that Save clears the keys when it ends.
            self.form.update(content.get("values"), None if self.form.busy else content.get("keys"))
        if event == "panel.poll":
            self._catch_up()
            self._tell({"event": "alive"})
            return
        if event == "field.blur":
            path, value = content.get("path"), content.get("value")
            if not isinstance(path, str) or not isinstance(value, str):
                return
            for region in self.regions:
                if region.owns(path):
                    region.blur(path, value)
                    self._draw(force=True)
                    return
            if self.view == "form" and not self.form.busy:
                tidied = self.form.blur(path, value)
                if tidied is not None:
                    self._tell({"event": "key", "path": path, "value": tidied})
                self._draw(force=True)
            return
        handlers: dict[str, Callable[[], None]] = {
            "row.add": self._open_add,
            "row.edit": self._open_edit,
            "row.test": self._test,
            "row.remove": self._ask_remove,
            "form.save": self._save,
            "form.cancel": self._close,
            "form.provider": lambda: self._choose_provider(content.get("value")),
            "form.same_endpoint": lambda: self._same_endpoint(content.get("value")),
            "form.choice": lambda: self._choice(content.get("path"), content.get("value")),
            "confirm.remove": self._remove,
            "confirm.cancel": self._close,
        }
        if event in handlers:
            handlers[event]()
            return
        for region in self.regions:
            if region.prefix == prefix:
                self._catch_up()
                region.handle(action, content)
                self._draw()
                return

    def _choose_provider(self, value: Any) -> None:
        if self.view != "form" or self.form.busy:
            return
        if value in (Provider.OPENAI.value, Provider.AZURE_OPENAI.value) and Provider(value) is not self.form.provider:
            self.form.choose(Provider(value))
        self._draw()

    def _choice(self, path: Any, value: Any) -> None:
        """Authentication or Sign in as changed: the fields it brings are shown (and those it hides are left out)."""
        if self.view == "form" and not self.form.busy and self.form.set_choice(path, value):
            self._draw()

    def _same_endpoint(self, value: Any) -> None:
        if self.view == "form" and isinstance(value, bool):
            self.form.same_endpoint = value
            self._draw()

    def _still_offered(self, css_class: str) -> bool:
        """Catch up, then whether the button ``css_class`` is still offered (Add on a page that was out of date is not)."""
        self._catch_up()
        return self.offered(css_class)

    def _set_view(self, view_name: str) -> None:
        self.view = view_name
        self._refresh()

    def _open_add(self) -> None:
        if self._still_offered("aiw-add"):
            self._open_form(None)

    def _open_edit(self) -> None:
        if self._still_offered("aiw-edit"):
            assert self.snapshot is not None  # drawn in __init__
            self._open_form(self.snapshot.saved)

    def _open_form(self, saved: OpenAIFields | AzureOpenAIFields | None) -> None:
        snapshot = self.snapshot
        assert snapshot is not None
        # The revision the form starts from: a Save fails if another kernel changed it meanwhile.
        self._opened_at = snapshot.status.revision if snapshot.problem is None else None
        hints: dict[str, str] = {model.role: model.key_hint for model in snapshot.status.models if model.key_hint}
        self.form.reset(saved, openai_base_url=snapshot.openai_base_url, key_hints=hints)
        self._show_test(None)
        self._set_view("form")
        self._focus(self.form.first())

    def _ask_remove(self) -> None:
        if self._still_offered("aiw-remove"):
            self._confirm_message = ""
            self._set_view("confirm")
            self._focus("aiw-cancel")  # the safe choice is where the keyboard lands

    def _close(self) -> None:
        if self.view == "row":
            return
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self.form.clear_fields()  # the keys included
        self.form.set_busy(False)
        self._tell({"event": "clear-keys"})
        self._set_view("row")
        self._focus_row()

    def _focus_row(self) -> None:
        """Give the keyboard focus back to the row's first button (Edit, or Add, or Remove)."""
        for css_class in ("aiw-edit", "aiw-add", "aiw-remove"):
            if self.nodes(css_class):
                self._focus(css_class)
                return

    def _busy(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- actions ------------------------------------------------------------------- #

    def _save(self) -> None:
        if self.view != "form" or self._busy() or self.form.busy:  # a second click, or Enter while authenticating
            return
        integration = self.form.check()
        self.form.clear_keys()  # held only until here: a refused Save asks for the key again
        self._tell({"event": "clear-keys"})
        if integration is None:
            self._draw()
            self._focus(self.form.first(errors_only=True))
            return
        self.form.set_busy(True)
        self._catch_up()
        self.form.show_message(f"Authenticating both models with {integration.provider.label}…")
        self.form.show_progress(integration.provider)
        self._draw()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            try:
                status = self.settings.save(integration, expected_revision=self._opened_at)
            except Exception as error:  # shown in the form; a bug is logged too
                self._save_failed(error)
            else:
                self._saved(integration, status)
        else:  # in a kernel: authenticate on its event loop, so the kernel stays responsive
            self._task = loop.create_task(self._save_async(integration))

    async def _save_async(self, integration: Integration) -> None:
        def progress(check: Any) -> None:
            self.form.show_check(check)
            self._draw()

        try:
            status = await self.settings.save_async(integration, on_check=progress, expected_revision=self._opened_at)
        except Exception as error:  # shown in the form; a bug is logged too
            self._save_failed(error)
        else:
            self._saved(integration, status)

    def _saved(self, integration: Integration, status: IntegrationStatus | None = None) -> None:
        self._task = None
        # What was adjusted, when a field was left or by Save, said once more under the row (the dialog closes).
        notices = (*self.form.all_notices(), *integration.notices)
        self.form.clear_fields()  # a key typed (or Enter pressed again) while authenticating does not stay
        self.form.set_busy(False)
        self._tell({"event": "clear-keys"})
        revision = status.revision if status is not None else self.snapshot.status.revision if self.snapshot else None
        self._show_notes(notices, revision=revision)
        self._set_view("row")
        self._focus_row()

    def _save_failed(self, error: Exception) -> None:
        self._task = None
        self.form.clear_keys()  # a key typed (or Enter pressed again) while authenticating does not stay
        self._tell({"event": "clear-keys"})
        self.form.set_busy(False)
        if isinstance(error, VerificationFailed):
            self.form.show_report(error.report)
            again = self.form.keys_to_type_again()
            self.form.show_message(
                "Authentication failed, so nothing was saved. Correct what is marked above"
                + (f" and type {again} again." if again else "."),
                error=True,
            )
        elif isinstance(error, SavedKeyUnavailable):
            self.form.clear_results()
            self.form.show_field_error(error.field, str(error))
        elif isinstance(error, AIAdminError):
            self.form.clear_results()
            self.form.show_message(str(error), error=True)
        else:
            _log.error("Save failed unexpectedly", exc_info=error)
            self.form.clear_results()
            self.form.show_message(
                f"Save failed unexpectedly ({type(error).__name__}); nothing was saved. The kernel's log has the details.",
                error=True,
            )
        if self.view == "form":
            self._draw()
            self._focus(self.form.first(errors_only=True))

    def _test(self) -> None:
        if self._busy() or not self._still_offered("aiw-test"):
            return
        revision = self.snapshot.status.revision if self.snapshot is not None else None
        self._set_result([Line("Authenticating the saved credentials…", "busy")], revision=revision)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            self._draw()
            self._finish_test(self.settings.test, revision)
        else:
            self._task = loop.create_task(self._test_async(revision))
            self._draw()

    async def _test_async(self, revision: int | None) -> None:
        try:
            report = await self.settings.test_async()
        except Exception as error:  # shown under the row; a bug is logged too
            self._test_failed(error, revision)
        else:
            self._show_test(report, revision=revision)
        self._task = None
        self._refresh()

    def _finish_test(self, run: Callable[[], VerificationReport], revision: int | None) -> None:
        try:
            report = run()
        except Exception as error:  # shown under the row; a bug is logged too
            self._test_failed(error, revision)
        else:
            self._show_test(report, revision=revision)
        self._refresh()

    def _test_failed(self, error: Exception, revision: int | None) -> None:
        if isinstance(error, AIAdminError):
            self._show_test(None, str(error), revision=revision)
        else:
            _log.error("Test failed unexpectedly", exc_info=error)
            self._show_test(
                None,
                f"Test failed unexpectedly ({type(error).__name__}). The kernel's log has the details.",
                revision=revision,
            )

    def _remove(self) -> None:
        if self.view != "confirm":
            return
        self._catch_up()
        try:
            self.settings.remove()
        except AIAdminError as error:
            self._confirm_message = str(error)
            self._draw()
            return
        self._show_test(None)
        self._set_view("row")
        self._focus_row()
