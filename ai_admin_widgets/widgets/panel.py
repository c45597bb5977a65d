"""The AI Settings page: the OpenAI row, the Edit OpenAI Integration form and the remove confirmation.

No business logic lives here: the panel calls a :class:`~ai_admin_widgets.interface.Settings`
and renders what comes back. Each render reads one
:class:`~ai_admin_widgets.models.SettingsSnapshot` and draws every region from it (the row, Who
may use AI, the footer) without another read; History reads the audit log only while it is
shown. Every button first catches up with changes made elsewhere (another kernel, a terminal):
when :meth:`~ai_admin_widgets.interface.Settings.fingerprint` moved, the page is drawn again.

Every interactive element carries a stable CSS class (``aiw-add``, ``aiw-edit``,
``aiw-remove``, ``aiw-test``, ``aiw-provider``, ``aiw-api-key``, ``aiw-save``,
``aiw-cancel``, ``aiw-confirm-remove``, ``aiw-status``, …) so tests and users can
find it; see :meth:`AISettingsPanel.find`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..models import (
    ADMIN_REQUIRED,
    AIAdminError,
    AzureOpenAIFields,
    AzureOpenAIIntegration,
    IntegrationStatus,
    Notice,
    OpenAIFields,
    OpenAIIntegration,
    SavedKeyUnavailable,
    SettingsSnapshot,
    VerificationFailed,
    VerificationReport,
)
from .access import AccessSettings
from .budgets import BudgetsRegion
from .fields import KeyField, TextField
from .form import IntegrationForm
from .history import History
from .style import ERROR as _ERROR_STYLE
from .style import HELP as _HELP_STYLE
from .style import PANEL_STYLE as _PANEL_STYLE
from .style import SUCCESS as _SUCCESS_STYLE
from .style import WARNING as _WARNING_STYLE
from .style import classes as _classes
from .style import show as _show
from .style import span as _span
from .style import text as _text
from .usage import Usage

if TYPE_CHECKING:
    from ..interface import Settings

__all__ = ["AISettingsPanel", "IntegrationForm", "OpenAIRow", "RemoveConfirmation"]

_log = logging.getLogger(__name__)

Integration = OpenAIIntegration | AzureOpenAIIntegration

#: What the text of the panel says where JupyterLab cannot show widgets (or before its cell has run).
NEEDS_WIDGETS = (
    "The AI Settings panel shows here when this cell runs in JupyterLab. If this text stays after running it, "
    "JupyterLab's widget support is missing: install ipywidgets>=8 in the environment that runs JupyterLab, "
    "then reload the page."
)


def _button(label: str, css_class: str, style: str = "") -> widgets.Button:
    return _classes(widgets.Button(description=label, button_style=style, tooltip=label), css_class)


class OpenAIRow(widgets.VBox):
    """The "OpenAI" row: the integration's status, and Add, or Edit, Test and Remove.

    Under it, the outcome of Test or what a Save adjusted (``aiw-test-result``) describes one
    revision of the integration; it is cleared as soon as the row shows another one (saved,
    edited or removed, here or elsewhere).
    """

    def __init__(
        self,
        on_add: Callable[[], None],
        on_edit: Callable[[], None],
        on_test: Callable[[], None],
        on_remove: Callable[[], None],
    ) -> None:
        self.name = widgets.HTML("<b>OpenAI</b>")
        self.name.layout.width = "90px"
        self.status = _classes(widgets.HTML(""), "aiw-status")
        self.status.layout.flex = "1"
        self.add_button = _button("Add", "aiw-add", "primary")
        self.edit_button = _button("Edit", "aiw-edit")
        self.test_button = _button("Test", "aiw-test")
        self.remove_button = _button("Remove", "aiw-remove", "danger")
        self.add_button.on_click(lambda _: on_add())
        self.edit_button.on_click(lambda _: on_edit())
        self.test_button.on_click(lambda _: on_test())
        self.remove_button.on_click(lambda _: on_remove())
        line = widgets.HBox(
            [self.name, self.status, self.add_button, self.edit_button, self.test_button, self.remove_button]
        )
        line.layout.align_items = "center"
        self.health = _classes(widgets.HTML(""), "aiw-health")
        self.result = _classes(widgets.HTML(""), "aiw-test-result")
        self.warnings = _classes(widgets.HTML(""), "aiw-warnings")
        self._result_revision: int | None = None  # the revision the result describes
        super().__init__([line, self.health, self.result, self.warnings])
        _classes(self, "aiw-row")

    def render(self, status: IntegrationStatus, *, admin: bool, damaged: bool = False, offer: bool = True) -> None:
        """Show ``status``; Add when nothing is configured, Edit, Test and Remove when it is (admins only).

        Args:
            status: what the service reports.
            admin: whether the current user is an admin (who may press the buttons that change things).
            damaged: the record cannot be read; only Remove (which resets it) is offered.
            offer: False hides every button (while the form or the confirmation is open).
        """
        if self._result_revision is not None and (damaged or self._result_revision != status.revision):
            self.show_result("", revision=None)  # it described an integration that is no longer the one shown
        if damaged:
            text = "The saved settings cannot be read."
        elif status.configured and status.provider is not None:
            details = [f"<b>{_text(status.provider.label)}</b>"]
            for model in status.models:
                name = model.model or model.deployment_id or ""
                where = f" (deployment {_text(model.deployment_id)})" if model.deployment_id else ""
                details.append(f"{_text(name)}{where}")
            details.append(f'<span style="white-space: nowrap">key {_text(status.key_hint or "…")}</span>')
            text = " · ".join(details)
            if status.updated_by and status.updated_at:
                text += "<br>" + _span(
                    f"Saved by {status.updated_by} on {status.updated_at:%Y-%m-%d %H:%M} UTC", _HELP_STYLE
                )
            if status.last_authentication_summary:
                text += "<br>" + _span(status.last_authentication_summary, _HELP_STYLE)
        else:
            text = "Not configured. AI functionality is disabled."
        self.status.value = text
        self._render_health(status, admin=admin and not damaged)
        self.warnings.value = "<br>".join(_span(f"⚠ {warning}", _WARNING_STYLE) for warning in status.warnings)
        admin = admin and offer
        _show(self.add_button, admin and not status.configured and not damaged)
        _show(self.edit_button, admin and status.configured and not damaged)
        _show(self.test_button, admin and status.configured and not damaged)
        _show(self.remove_button, admin and (status.configured or damaged))

    def _render_health(self, status: IntegrationStatus, *, admin: bool) -> None:
        """Flag a failing or stale integration under the row (classes ``aiw-health aiw-health-<state>``), with what to do."""
        for state in ("failing", "stale"):
            self.health.remove_class(f"aiw-health-{state}")
        problem = status.health_problem()
        _show(self.health, problem is not None)
        if problem is None:
            self.health.value = ""
            return
        failing = status.health == "failing"
        if not admin:
            remedy = "An admin can authenticate it again with Test."
        elif failing:
            remedy = "Press Test to authenticate again; if it fails again, press Edit and correct what Test reports (often the API Key)."
        else:
            remedy = "Press Test to authenticate again."
        self.health.add_class(f"aiw-health-{status.health.value}")
        self.health.value = _span(f"⚠ {problem} {remedy}", _ERROR_STYLE if failing else _WARNING_STYLE)

    def show_result(self, html: str, *, revision: int | None) -> None:
        """Show ``html`` under the row, as describing the integration's ``revision`` (None: nothing)."""
        self.result.value = html
        self._result_revision = revision if html else None

    def show_notes(self, notices: tuple[Notice, ...], *, revision: int | None = None) -> None:
        """After a Save of ``revision``, say what was adjusted in what the admin typed (never silently)."""
        seen: list[str] = []
        for notice in notices:
            if notice.message not in seen:
                seen.append(notice.message)
        self.show_result(
            "<br>".join(
                [_span("Saved. Adjusted while saving:", _HELP_STYLE)]
                + [_span(f"• {message}", _HELP_STYLE) for message in seen]
            )
            if seen
            else "",
            revision=revision,
        )

    def show_test(
        self, report: VerificationReport | None, error: str | None = None, *, revision: int | None = None
    ) -> None:
        """Show the outcome of Test of ``revision`` under the row (``report`` and ``error`` both None: clear it)."""
        if error:
            self.show_result(_span(error, _ERROR_STYLE, alert=True), revision=revision)
        elif report is None:
            self.show_result("", revision=None)
        else:
            lines = [
                _span(f"✓ {check.message}", _SUCCESS_STYLE)
                if check.ok
                else _span(f"✗ {check.message}", _ERROR_STYLE, alert=True)
                for check in report.checks
            ]
            self.show_result("<br>".join(lines), revision=revision)


class RemoveConfirmation(widgets.VBox):
    """ "Remove OpenAI Integration": the confirmation before AI functionality is disabled."""

    def __init__(self, on_confirm: Callable[[], None], on_cancel: Callable[[], None]) -> None:
        self.heading = widgets.HTML("<h4>Remove OpenAI Integration</h4>")
        self.text = widgets.HTML("AI functionality will be disabled for your organization.")
        self.message = _classes(widgets.HTML(""), "aiw-message")
        self.cancel_button = _button("Cancel", "aiw-cancel")
        self.remove_button = _button("Remove", "aiw-confirm-remove", "danger")
        self.cancel_button.on_click(lambda _: on_cancel())
        self.remove_button.on_click(lambda _: on_confirm())
        super().__init__(
            [self.heading, self.text, self.message, widgets.HBox([self.cancel_button, self.remove_button])]
        )
        _classes(self, "aiw-confirmation")


class AISettingsPanel(widgets.VBox):
    """The AI Settings page for one :class:`~ai_admin_widgets.interface.Settings`.

    Args:
        settings: what the panel reads and changes, only through the ``Settings`` interface;
            the panel draws itself again when they change (through this object at once,
            elsewhere at the latest on the next button pressed).

    Attributes:
        view: ``"row"``, ``"form"`` (Add or Edit open) or ``"confirm"`` (Remove asked).
        snapshot: what the last render showed (:class:`~ai_admin_widgets.models.SettingsSnapshot`).
        row, form, confirmation: the three regions; ``footer`` names the keyring.
        history: the audit log (:class:`~ai_admin_widgets.widgets.history.History`), shown on request.
        usage: tokens per day and the top users (:class:`~ai_admin_widgets.widgets.usage.Usage`), on a hub's
            gateway for those who may configure, shown on request.
        access: who may use AI and who the admins are (:class:`~ai_admin_widgets.widgets.access.AccessSettings`).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.view = "row"
        self.snapshot: SettingsSnapshot | None = None
        self._seen: Hashable = None  # the settings' fingerprint when they were last drawn
        self._opened_at: int | None = None
        self._task: asyncio.Task[Any] | None = None
        self.title = widgets.HTML(f"{_PANEL_STYLE}<h3>AI Settings</h3>")
        self.notice = _classes(widgets.HTML(""), "aiw-notice")
        self.row = OpenAIRow(self._open_add, self._open_edit, self._test, self._ask_remove)
        self.form = IntegrationForm(self._save, self._close)
        self.confirmation = RemoveConfirmation(self._remove, self._close)
        self.footer = _classes(widgets.HTML(""), "aiw-footer")
        self.access = AccessSettings(settings, on_interaction=self._catch_up)
        self.history = History(settings, on_toggle=self._catch_up)
        self.usage = Usage(settings, on_toggle=self._catch_up)
        #: The AI gateway's budgets (hidden off the gateway): :class:`~ai_admin_widgets.widgets.budgets.BudgetsRegion`.
        self.budgets = BudgetsRegion(settings, on_interaction=self._catch_up)
        super().__init__(
            [
                self.title,
                self.notice,
                self.row,
                self.form,
                self.confirmation,
                self.access,
                self.budgets,
                self.usage,
                self.history,
                self.footer,
            ]
        )
        _classes(self, "aiw-panel")
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

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget, and in its place where JupyterLab cannot show it, what to do (not the repr)."""
        bundle = dict(super()._repr_mimebundle_(**kwargs))
        bundle["text/plain"] = NEEDS_WIDGETS
        # An output saved in a notebook is shown as its text/html until its cell runs again (JupyterLab
        # renders widgets only for trusted outputs); so is one where widget support is missing.
        bundle["text/html"] = f"<p>{_text(NEEDS_WIDGETS)}</p>"
        return bundle

    def close(self) -> None:
        """Stop following the settings and close every widget of the panel."""
        self._unsubscribe()
        self.form.clear_keys()
        super().close()

    # -- rendering ----------------------------------------------------------------- #

    def render(self) -> None:
        """Draw the panel from one :meth:`~ai_admin_widgets.interface.Settings.snapshot` and the current view.

        Nothing else is read, except the audit log while History is shown and the usage report while Usage is.
        """
        snapshot = self.settings.snapshot()
        self.snapshot = snapshot
        admin = snapshot.admin.admin
        damaged = snapshot.problem is not None
        status = snapshot.status if not damaged else IntegrationStatus(configured=False)
        if damaged:
            self.notice.value = _span(snapshot.problem or "", _ERROR_STYLE, alert=True)
        else:
            self.notice.value = "" if admin else _text(_not_admin(snapshot.admin.reason))
        # While the form or the confirmation is open, the row offers nothing else to press,
        # so a Save under way cannot be crossed by a Remove, a Test or another Edit.
        self.row.render(status, admin=admin, damaged=damaged, offer=self.view == "row")
        if self.view != "row":
            _show(self.row.test_button, False)
        self.access.render(snapshot)
        self.budgets.render(admin=admin and not damaged)
        self.history.render()
        self.usage.offer(snapshot)
        keyring = snapshot.keyring
        self.footer.value = (
            _span(f"Keys cannot be saved here. {keyring.problem}", _ERROR_STYLE)
            if keyring.problem
            else _span(f"Keys are kept in: {status.keyring_backend or keyring.backend}", _HELP_STYLE)
        )
        _show(self.form, self.view == "form")
        _show(self.confirmation, self.view == "confirm")

    def _refresh(self) -> None:
        """Note the settings' fingerprint, then render (the fingerprint first: a change in between is caught later)."""
        self._seen = self.settings.fingerprint()
        self.render()

    def _catch_up(self) -> None:
        """Draw the page again if the settings changed elsewhere since it was drawn (every button calls this first)."""
        seen = self.settings.fingerprint()
        if seen != self._seen:
            self._seen = seen
            self.render()

    def _still_offered(self, button: widgets.Button) -> bool:
        """Catch up, then whether ``button`` is still offered (Add pressed on a page that was out of date is not)."""
        self._catch_up()
        return button.layout.display != "none"

    def _set_view(self, view: str) -> None:
        self.view = view
        self._refresh()

    def _open_add(self) -> None:
        if not self._still_offered(self.row.add_button):
            return
        self._open_form(None)

    def _open_edit(self) -> None:
        if not self._still_offered(self.row.edit_button):
            return
        assert self.snapshot is not None  # drawn in __init__
        self._open_form(self.snapshot.saved)

    def _open_form(self, saved: OpenAIFields | AzureOpenAIFields | None) -> None:
        snapshot = self.snapshot
        assert snapshot is not None
        # The revision the form starts from: a Save fails if another kernel changed it meanwhile.
        self._opened_at = snapshot.status.revision if snapshot.problem is None else None
        self.form.reset(saved, openai_base_url=snapshot.openai_base_url)
        self.row.show_test(None)
        self._set_view("form")
        self.form.focus_first()

    def _ask_remove(self) -> None:
        if not self._still_offered(self.row.remove_button):
            return
        self.confirmation.message.value = ""
        self._set_view("confirm")
        self.confirmation.cancel_button.focus()  # the safe choice is where the keyboard lands

    def _close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self.form.clear_fields()  # the keys included
        self.form.set_busy(False)
        self._set_view("row")
        self._focus_row()

    def _focus_row(self) -> None:
        """Give the keyboard focus back to the row's first button (Edit, or Add)."""
        for button in (self.row.edit_button, self.row.add_button, self.row.remove_button):
            if button.layout.display != "none":
                button.focus()
                return

    def _busy(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- actions ------------------------------------------------------------------- #

    def _save(self, integration: Integration) -> None:
        if self.view != "form" or self._busy():  # a second click, or one queued after the form closed
            return
        self.form.clear_keys()
        self.form.set_busy(True)
        self._catch_up()
        self.form.show_message(f"Authenticating both models with {integration.provider.label}…")
        self.form.show_progress(integration.provider)
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
        try:
            status = await self.settings.save_async(
                integration, on_check=self.form.show_check, expected_revision=self._opened_at
            )
        except Exception as error:  # shown in the form; a bug is logged too
            self._save_failed(error)
        else:
            self._saved(integration, status)

    def _saved(self, integration: Integration, status: IntegrationStatus | None = None) -> None:
        self._task = None
        self.form.clear_keys()  # a key typed (or Enter pressed again) while authenticating does not stay
        self.form.set_busy(False)
        self.form.show_message("")
        self._set_view("row")
        revision = status.revision if status is not None else self.snapshot.status.revision if self.snapshot else None
        self.row.show_notes(integration.notices, revision=revision)
        self._focus_row()

    def _save_failed(self, error: Exception) -> None:
        self._task = None
        self.form.clear_keys()  # a key typed (or Enter pressed again) while authenticating does not stay
        self.form.set_busy(False)
        if isinstance(error, VerificationFailed):
            self.form.show_report(error.report)
            self.form.show_message(
                "Authentication failed, so nothing was saved. Correct what is marked above and type the API Key again.",
                error=True,
            )
            self.form.focus_first(errors_only=True)
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

    def _test(self) -> None:
        if self._busy() or not self._still_offered(self.row.test_button):
            return
        revision = self.snapshot.status.revision if self.snapshot is not None else None
        self.row.show_result(_span("Authenticating the saved credentials…", _HELP_STYLE), revision=revision)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            self._finish_test(self.settings.test, revision)
        else:
            self._task = loop.create_task(self._test_async(revision))

    async def _test_async(self, revision: int | None) -> None:
        try:
            report = await self.settings.test_async()
        except Exception as error:  # shown under the row; a bug is logged too
            self._test_failed(error, revision)
        else:
            self.row.show_test(report, revision=revision)
        self._task = None
        self._refresh()

    def _finish_test(self, run: Callable[[], VerificationReport], revision: int | None) -> None:
        try:
            report = run()
        except Exception as error:  # shown under the row; a bug is logged too
            self._test_failed(error, revision)
        else:
            self.row.show_test(report, revision=revision)
        self._refresh()

    def _test_failed(self, error: Exception, revision: int | None) -> None:
        if isinstance(error, AIAdminError):
            self.row.show_test(None, str(error), revision=revision)
        else:
            _log.error("Test failed unexpectedly", exc_info=error)
            self.row.show_test(
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
            self.confirmation.message.value = _span(str(error), _ERROR_STYLE, alert=True)
            return
        self.row.show_test(None)
        self._set_view("row")
        self._focus_row()

    # -- finding and reading ------------------------------------------------------- #

    def find(self, css_class: str) -> list[widgets.DOMWidget]:
        """Every widget of the panel that carries ``css_class`` (e.g. ``"aiw-save"``), in page order."""
        found: list[widgets.DOMWidget] = []

        def walk(widget: widgets.Widget) -> None:
            if css_class in getattr(widget, "_dom_classes", ()):
                found.append(widget)
            for child in getattr(widget, "children", ()):
                walk(child)

        walk(self)
        return found

    def visible_text(self) -> str:
        """What the admin sees, as plain lines: text, labels, field values (keys masked) and buttons."""
        from html.parser import HTMLParser

        class _Text(HTMLParser):
            def __init__(self) -> None:
                super().__init__()
                self.parts: list[str] = []
                self.in_style = False

            def handle_data(self, data: str) -> None:
                if not self.in_style:  # a <style> is not text the admin sees
                    self.parts.append(data)

            def handle_starttag(self, tag: str, attrs: Any) -> None:
                if tag == "br":
                    self.parts.append("\n")
                self.in_style = self.in_style or tag == "style"

            def handle_endtag(self, tag: str) -> None:
                if tag == "style":
                    self.in_style = False

        lines: list[str] = []

        def walk(widget: widgets.Widget) -> None:
            if getattr(widget, "layout", None) is not None and widget.layout.display == "none":
                return
            if isinstance(widget, widgets.HTML):
                parser = _Text()
                parser.feed(widget.value)
                text = "".join(parser.parts).strip()
                if text:
                    lines.extend(line.strip() for line in text.splitlines() if line.strip())
            elif isinstance(widget, widgets.Button):
                lines.append(f"[{widget.description}]")
            elif isinstance(widget, widgets.ToggleButtons):
                choices = zip(widget._options_labels, widget._options_values, strict=True)
                options = " | ".join(f"({label})" if value == widget.value else label for label, value in choices)
                lines.append(f"{widget.description}: {options}")
            elif isinstance(widget, widgets.Checkbox):
                lines.append(f"[{'x' if widget.value else ' '}] {widget.description}")
            elif isinstance(widget, KeyField):
                shown = "•" * min(len(widget.value), 8) or widget.placeholder
                lines.append(f"{widget.description}: {shown}")
            elif isinstance(widget, (widgets.Text, TextField)):
                lines.append(f"{widget.description}: {widget.value}")
            for child in getattr(widget, "children", ()):
                walk(child)

        walk(self)
        return "\n".join(lines)


def _not_admin(reason: str | None) -> str:
    """Why the panel is read-only: the admin check's reason (on a hub, which role grants it), led by ADMIN_REQUIRED."""
    if not reason:
        return ADMIN_REQUIRED
    return reason if reason.startswith(ADMIN_REQUIRED) else f"{ADMIN_REQUIRED} {reason}"
