"""The AI Settings page: the OpenAI row, the Edit OpenAI Integration form and the remove confirmation.

No business logic lives here: the panel calls :class:`~ai_admin_widgets.AISettings`
and renders what comes back. Each region is one class, and each is rendered from
one state: the panel's ``view`` (``"row"``, ``"form"`` or ``"confirm"``) plus the
service's :class:`~ai_admin_widgets.IntegrationStatus`.

Every interactive element carries a stable CSS class (``aiw-add``, ``aiw-edit``,
``aiw-remove``, ``aiw-provider``, ``aiw-api-key``, ``aiw-save``, ``aiw-cancel``,
``aiw-confirm-remove``, ``aiw-status``, …) so tests and users can find it; see
:meth:`AISettingsPanel.find`.
"""

from __future__ import annotations

import asyncio
import html
import logging
from typing import TYPE_CHECKING, Any, Callable

import ipywidgets as widgets
from pydantic import ValidationError

from ..models import (
    DEFAULT_OPENAI_BASE_URL,
    ROLE_LABELS,
    AIAdminError,
    AzureDeployment,
    AzureOpenAIIntegration,
    IntegrationStatus,
    OpenAIIntegration,
    Provider,
    VerificationFailed,
    VerificationReport,
    field_errors,
)

if TYPE_CHECKING:
    from ..service import AISettings

__all__ = ["AISettingsPanel", "IntegrationForm", "RemoveConfirmation", "OpenAIRow"]

_log = logging.getLogger(__name__)

_PROVIDER_OPTIONS = [(Provider.OPENAI.label, Provider.OPENAI), (Provider.AZURE_OPENAI.label, Provider.AZURE_OPENAI)]
_SAME_ENDPOINT_LABEL = "Use the same endpoint URL and API key for both models"
_ERROR_STYLE = "color: var(--jp-error-color1, #d32f2f)"
_HELP_STYLE = "color: var(--jp-ui-font-color2, #616161); font-size: var(--jp-ui-font-size0, 11px)"


def _classes(widget: widgets.DOMWidget, *names: str) -> widgets.DOMWidget:
    for name in names:
        widget.add_class(name)
    return widget


def _show(widget: widgets.Widget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


def _button(label: str, css_class: str, style: str = "") -> widgets.Button:
    button = widgets.Button(description=label, button_style=style, tooltip=label)
    return _classes(button, css_class)


class _Field(widgets.VBox):
    """A labelled input with its help text and the error shown beside it."""

    def __init__(self, label: str, input_widget: widgets.DOMWidget, help_text: str, css_class: str, *more_classes: str) -> None:
        self.input = _classes(input_widget, css_class, *more_classes)
        self.input.description = label
        self.input.style.description_width = "130px"
        self.input.layout.width = "560px"
        self.help = widgets.HTML(f'<span style="{_HELP_STYLE}">{html.escape(help_text)}</span>')
        self.help.layout.margin = "0 0 0 136px"
        self.error = _classes(widgets.HTML(""), "aiw-field-error")
        self.error.layout.margin = "0 0 0 136px"
        super().__init__([self.input, self.help, self.error])

    @property
    def value(self) -> str:
        return self.input.value

    @value.setter
    def value(self, text: str) -> None:
        self.input.value = text

    def show_error(self, message: str | None) -> None:
        self.error.value = f'<span role="alert" style="{_ERROR_STYLE}">{html.escape(message, quote=False)}</span>' if message else ""


class _DeploymentFields(widgets.VBox):
    """Endpoint URL, Deployment ID and API Key of one Azure OpenAI model."""

    def __init__(self, role: str, title: str, description: str) -> None:
        fields = AzureDeployment.model_fields
        self.role = role
        self.heading = widgets.HTML(f"<b>{html.escape(title)}</b> <span style=\"{_HELP_STYLE}\">{html.escape(description)}</span>")
        self.endpoint_url = _Field(
            "Endpoint URL", widgets.Text(placeholder="https://<resource>.openai.azure.com"),
            fields["endpoint_url"].description or "", "aiw-endpoint-url", f"aiw-{role}-endpoint-url",
        )
        self.deployment_id = _Field(
            "Deployment ID", widgets.Text(placeholder="the deployment's name"),
            fields["deployment_id"].description or "", "aiw-deployment-id", f"aiw-{role}-deployment-id",
        )
        self.api_key = _Field(
            "API Key", widgets.Password(placeholder="KEY 1 from Keys and Endpoint"),
            fields["api_key"].description or "", "aiw-api-key", f"aiw-{role}-api-key",
        )
        self.check_result = _classes(widgets.HTML(""), "aiw-model-result", f"aiw-{role}-result")
        super().__init__([self.heading, self.endpoint_url, self.deployment_id, self.api_key, self.check_result])

    def fields(self) -> dict[str, _Field]:
        return {"endpoint_url": self.endpoint_url, "deployment_id": self.deployment_id, "api_key": self.api_key}


class IntegrationForm(widgets.VBox):
    """The "Edit OpenAI Integration" form: provider toggle, credential fields, Save and Cancel.

    Args:
        on_save: called with the built integration when Save is pressed and the fields are valid.
        on_cancel: called when Cancel is pressed.
    """

    def __init__(self, on_save: Callable[[OpenAIIntegration | AzureOpenAIIntegration], None], on_cancel: Callable[[], None]) -> None:
        self._on_save = on_save
        self._on_cancel = on_cancel
        self.heading = widgets.HTML("<h4>Edit OpenAI Integration</h4>")
        self.provider = _classes(
            widgets.ToggleButtons(options=_PROVIDER_OPTIONS, value=Provider.OPENAI, description="Provider"),
            "aiw-provider",
        )
        self.openai_api_key = _Field(
            "API Key", widgets.Password(placeholder="sk-…"),
            OpenAIIntegration.model_fields["api_key"].description or "", "aiw-api-key", "aiw-openai-api-key",
        )
        self.openai_base_url = _Field(
            "Base URL", widgets.Text(placeholder=DEFAULT_OPENAI_BASE_URL),
            OpenAIIntegration.model_fields["base_url"].description or "", "aiw-base-url",
        )
        self.openai_result = _classes(widgets.HTML(""), "aiw-model-result", "aiw-openai-result")
        self.openai_section = _classes(
            widgets.VBox([self.openai_api_key, self.openai_base_url, self.openai_result]), "aiw-openai-section"
        )
        fields = AzureOpenAIIntegration.model_fields
        self.language = _DeploymentFields("language", "Language model", fields["language_model"].description or "")
        self.embeddings = _DeploymentFields("embeddings", "Embeddings model", fields["embeddings_model"].description or "")
        self.same_endpoint = _classes(
            widgets.Checkbox(value=False, description=_SAME_ENDPOINT_LABEL, indent=False), "aiw-same-endpoint"
        )
        self.azure_section = _classes(
            widgets.VBox([self.language, self.same_endpoint, self.embeddings]), "aiw-azure-section"
        )
        self.message = _classes(widgets.HTML(""), "aiw-message")
        self.save_button = _button("Save", "aiw-save", "primary")
        self.cancel_button = _button("Cancel", "aiw-cancel")
        self.save_button.on_click(lambda _: self._save())
        self.cancel_button.on_click(lambda _: self._on_cancel())
        self.provider.observe(lambda _: self._layout(), names="value")
        self.same_endpoint.observe(lambda _: self._layout(), names="value")
        super().__init__(
            [self.heading, self.provider, self.openai_section, self.azure_section, self.message,
             widgets.HBox([self.save_button, self.cancel_button])]
        )
        _classes(self, "aiw-form")
        self._layout()

    # -- state ------------------------------------------------------------------ #

    def _layout(self) -> None:
        azure = self.provider.value is Provider.AZURE_OPENAI
        _show(self.openai_section, not azure)
        _show(self.azure_section, azure)
        shared = self.same_endpoint.value
        _show(self.embeddings.endpoint_url, not shared)
        _show(self.embeddings.api_key, not shared)

    def _all_fields(self) -> dict[str, _Field]:
        fields = {"api_key": self.openai_api_key, "base_url": self.openai_base_url}
        for section in (self.language, self.embeddings):
            for name, field in section.fields().items():
                fields[f"{section.role}_model.{name}"] = field
        return fields

    def reset(self, saved: dict[str, Any] | None, *, openai_base_url: str = DEFAULT_OPENAI_BASE_URL) -> None:
        """Fill the form from saved fields (no keys), or empty it for Add; clears every error.

        Args:
            saved: the saved integration's fields without keys, or None for Add.
            openai_base_url: the Base URL to offer when OpenAI is not what is saved.
        """
        for field in self._all_fields().values():
            field.value = ""
        self.openai_base_url.value = openai_base_url
        self.show_errors({})
        self.show_message("")
        self.clear_results()
        self.set_busy(False)
        if saved is None:
            self.provider.value = Provider.OPENAI
            self.same_endpoint.value = False
            return
        self.provider.value = Provider(saved["provider"])
        if self.provider.value is Provider.OPENAI:
            self.openai_base_url.value = saved["base_url"]
        else:
            for section in (self.language, self.embeddings):
                deployment = saved[f"{section.role}_model"]
                section.endpoint_url.value = deployment["endpoint_url"]
                section.deployment_id.value = deployment["deployment_id"]
            self.same_endpoint.value = saved["language_model"]["endpoint_url"] == saved["embeddings_model"]["endpoint_url"]

    def clear_keys(self) -> None:
        """Empty every API Key field, so no typed key stays in the widgets."""
        for path, field in self._all_fields().items():
            if path.endswith("api_key"):
                field.value = ""

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show each message beside its field (by dotted path); fields not named are cleared."""
        shared = self.same_endpoint.value and self.provider.value is Provider.AZURE_OPENAI
        routed: dict[str, str] = {}
        for path, message in errors.items():
            if shared and path in ("embeddings_model.endpoint_url", "embeddings_model.api_key"):
                path = path.replace("embeddings_model.", "language_model.")
            routed.setdefault(path, message)
        for path, field in self._all_fields().items():
            field.show_error(routed.get(path))

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show a line under the fields (progress, or an error not tied to one field)."""
        if not text:
            self.message.value = ""
        elif error:
            self.message.value = f'<span role="alert" style="{_ERROR_STYLE}">{html.escape(text, quote=False)}</span>'
        else:
            self.message.value = f'<span aria-live="polite">{html.escape(text, quote=False)}</span>'

    def show_report(self, report: VerificationReport) -> None:
        """Show each model's outcome beside its model, and each failure beside its field."""
        results = (
            {"language": self.openai_result, "embeddings": self.openai_result}
            if report.provider is Provider.OPENAI
            else {"language": self.language.check_result, "embeddings": self.embeddings.check_result}
        )
        lines: dict[int, list[str]] = {}
        for check in report.checks:
            widget = results[check.role]
            if check.ok:
                text = f'<span style="color: var(--jp-success-color1, #388e3c)">✓ {html.escape(check.message, quote=False)}</span>'
            elif check.field:  # the message itself sits beside its field
                text = f'<span style="{_ERROR_STYLE}">✗ {ROLE_LABELS[check.role]}: not authenticated.</span>'
            else:
                text = f'<span role="alert" style="{_ERROR_STYLE}">✗ {html.escape(check.message, quote=False)}</span>'
            lines.setdefault(id(widget), []).append(text)
            widget.value = "<br>".join(lines[id(widget)])
        self.show_errors({check.field: check.message for check in report.failures if check.field})

    def clear_results(self) -> None:
        for widget in (self.openai_result, self.language.check_result, self.embeddings.check_result):
            widget.value = ""

    def set_busy(self, busy: bool) -> None:
        """Disable Save and the inputs while authentication runs (Cancel stays usable)."""
        self.save_button.disabled = busy
        self.save_button.description = "Authenticating…" if busy else "Save"
        self.provider.disabled = busy

    # -- Save --------------------------------------------------------------------- #

    def build(self) -> OpenAIIntegration | AzureOpenAIIntegration:
        """The integration the fields describe.

        Raises:
            pydantic.ValidationError: a field breaks its rule.
        """
        if self.provider.value is Provider.OPENAI:
            return OpenAIIntegration(api_key=self.openai_api_key.value, base_url=self.openai_base_url.value)
        language = {name: field.value for name, field in self.language.fields().items()}
        embeddings = {name: field.value for name, field in self.embeddings.fields().items()}
        if self.same_endpoint.value:
            embeddings["endpoint_url"] = language["endpoint_url"]
            embeddings["api_key"] = language["api_key"]
        return AzureOpenAIIntegration(language_model=language, embeddings_model=embeddings)

    def _save(self) -> None:
        self.show_message("")
        self.clear_results()
        try:
            integration = self.build()
        except ValidationError as error:
            self.show_errors(field_errors(error))
            self.show_message("Correct the fields marked above, then press Save again.", error=True)
            return
        self.show_errors({})
        self._on_save(integration)


class OpenAIRow(widgets.HBox):
    """The "OpenAI" row: the integration's status, and Add, or Edit and Remove."""

    def __init__(self, on_add: Callable[[], None], on_edit: Callable[[], None], on_remove: Callable[[], None]) -> None:
        self.name = widgets.HTML("<b>OpenAI</b>")
        self.name.layout.width = "90px"
        self.status = _classes(widgets.HTML(""), "aiw-status")
        self.add_button = _button("Add", "aiw-add", "primary")
        self.edit_button = _button("Edit", "aiw-edit")
        self.remove_button = _button("Remove", "aiw-remove", "danger")
        self.add_button.on_click(lambda _: on_add())
        self.edit_button.on_click(lambda _: on_edit())
        self.remove_button.on_click(lambda _: on_remove())
        super().__init__([self.name, self.status, self.add_button, self.edit_button, self.remove_button])
        _classes(self, "aiw-row")
        self.layout.align_items = "center"

    def render(self, status: IntegrationStatus, *, admin: bool) -> None:
        """Show ``status``; Add when nothing is configured, Edit and Remove when it is (admins only)."""
        if status.configured and status.provider is not None:
            details = [f"<b>{html.escape(status.provider.label)}</b>"]
            for model in status.models:
                name = model.model or model.deployment_id or ""
                where = f" (deployment {html.escape(model.deployment_id)})" if model.deployment_id else ""
                details.append(f"{html.escape(name)}{where}")
            details.append(f"key {html.escape(status.key_hint or '…')}")
            text = " · ".join(details)
            if status.updated_by and status.updated_at:
                text += f'<br><span style="{_HELP_STYLE}">Saved by {html.escape(status.updated_by)} on {status.updated_at:%Y-%m-%d %H:%M} UTC</span>'
        else:
            text = "Not configured. AI functionality is disabled."
        self.status.value = text
        _show(self.add_button, admin and not status.configured)
        _show(self.edit_button, admin and status.configured)
        _show(self.remove_button, admin and status.configured)


class RemoveConfirmation(widgets.VBox):
    """"Remove OpenAI Integration": the confirmation before AI functionality is disabled."""

    def __init__(self, on_confirm: Callable[[], None], on_cancel: Callable[[], None]) -> None:
        self.heading = widgets.HTML("<h4>Remove OpenAI Integration</h4>")
        self.text = widgets.HTML("AI functionality will be disabled for your organization.")
        self.message = _classes(widgets.HTML(""), "aiw-message")
        self.cancel_button = _button("Cancel", "aiw-cancel")
        self.remove_button = _button("Remove", "aiw-confirm-remove", "danger")
        self.cancel_button.on_click(lambda _: on_cancel())
        self.remove_button.on_click(lambda _: on_confirm())
        super().__init__([self.heading, self.text, self.message, widgets.HBox([self.cancel_button, self.remove_button])])
        _classes(self, "aiw-confirmation")


class AISettingsPanel(widgets.VBox):
    """The AI Settings page for one :class:`~ai_admin_widgets.AISettings`.

    Args:
        settings: the service the panel calls; the panel re-renders when it changes.

    Attributes:
        view: ``"row"``, ``"form"`` (Add or Edit open) or ``"confirm"`` (Remove asked).
        row, form, confirmation: the three regions.
    """

    def __init__(self, settings: AISettings) -> None:
        self.settings = settings
        self.view = "row"
        self._task: asyncio.Task[Any] | None = None
        self.title = widgets.HTML("<h3>AI Settings</h3>")
        self.notice = _classes(widgets.HTML(""), "aiw-notice")
        self.row = OpenAIRow(self._open_add, self._open_edit, self._ask_remove)
        self.form = IntegrationForm(self._save, self._close)
        self.confirmation = RemoveConfirmation(self._remove, self._close)
        super().__init__([self.title, self.notice, self.row, self.form, self.confirmation])
        _classes(self, "aiw-panel")
        self._unsubscribe = settings.on_change(self.render)
        self.render()

    def __repr__(self) -> str:
        try:
            status = self.settings.status()
        except AIAdminError:
            return "AISettingsPanel(status unavailable)"
        provider = status.provider.label if status.provider else None
        return f"AISettingsPanel(configured={status.configured}, provider={provider!r}, view={self.view!r})"

    def close(self) -> None:
        """Stop following the settings and close every widget of the panel."""
        self._unsubscribe()
        self.form.clear_keys()
        super().close()

    # -- rendering ----------------------------------------------------------------- #

    def render(self) -> None:
        """Draw the panel from the service's status and the current view."""
        admin = self.settings.is_admin()
        try:
            status = self.settings.status()
        except AIAdminError as error:
            self.notice.value = f'<span role="alert" style="{_ERROR_STYLE}">{html.escape(str(error), quote=False)}</span>'
            status = IntegrationStatus(configured=False)
        else:
            self.notice.value = (
                ""
                if admin
                else "You must be assigned the Admin account type to configure the OpenAI integration."
            )
        self.row.render(status, admin=admin)
        _show(self.form, self.view == "form")
        _show(self.confirmation, self.view == "confirm")

    def _set_view(self, view: str) -> None:
        self.view = view
        self.render()

    def _open_add(self) -> None:
        self.form.reset(None, openai_base_url=self.settings.openai_base_url)
        self._set_view("form")

    def _open_edit(self) -> None:
        self.form.reset(self.settings.saved_fields(), openai_base_url=self.settings.openai_base_url)
        self._set_view("form")

    def _ask_remove(self) -> None:
        self.confirmation.message.value = ""
        self._set_view("confirm")

    def _close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self.form.clear_keys()
        self.form.set_busy(False)
        self._set_view("row")

    # -- actions ------------------------------------------------------------------- #

    def _save(self, integration: OpenAIIntegration | AzureOpenAIIntegration) -> None:
        self.form.clear_keys()
        self.form.set_busy(True)
        self.form.show_message(f"Authenticating the language model and the embeddings model with {integration.provider.label}…")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            try:
                self.settings.save(integration)
            except AIAdminError as error:
                self._save_failed(error)
            else:
                self._saved()
        else:  # in a kernel: authenticate on its event loop, so the kernel stays responsive
            self._task = loop.create_task(self._save_async(integration))

    async def _save_async(self, integration: OpenAIIntegration | AzureOpenAIIntegration) -> None:
        try:
            await self.settings.save_async(integration)
        except AIAdminError as error:
            self._save_failed(error)
        except Exception as error:  # a bug: say so in the form rather than lose it in the event loop
            _log.exception("Save failed unexpectedly")
            self._save_failed(error)
        else:
            self._saved()

    def _saved(self) -> None:
        self._task = None
        self.form.set_busy(False)
        self.form.show_message("")
        self._set_view("row")

    def _save_failed(self, error: Exception) -> None:
        self._task = None
        self.form.set_busy(False)
        if isinstance(error, VerificationFailed):
            self.form.show_report(error.report)
            self.form.show_message(
                "Authentication failed, so nothing was saved. Correct the fields marked above and type the API Key again.",
                error=True,
            )
        elif isinstance(error, AIAdminError):
            self.form.show_message(str(error), error=True)
        else:
            self.form.show_message(
                f"Save failed unexpectedly ({type(error).__name__}); nothing was saved. The kernel's log has the details.",
                error=True,
            )

    def _remove(self) -> None:
        try:
            self.settings.remove()
        except AIAdminError as error:
            self.confirmation.message.value = f'<span role="alert" style="{_ERROR_STYLE}">{html.escape(str(error), quote=False)}</span>'
            return
        self._set_view("row")

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

            def handle_data(self, data: str) -> None:
                self.parts.append(data)

            def handle_starttag(self, tag: str, attrs: Any) -> None:
                if tag == "br":
                    self.parts.append("\n")

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
                options = " | ".join(f"({label})" if value == widget.value else label for label, value in _PROVIDER_OPTIONS)
                lines.append(f"{widget.description}: {options}")
            elif isinstance(widget, widgets.Checkbox):
                lines.append(f"[{'x' if widget.value else ' '}] {widget.description}")
            elif isinstance(widget, widgets.Password):
                lines.append(f"{widget.description}: {'•' * min(len(widget.value), 8)}")
            elif isinstance(widget, widgets.Text):
                lines.append(f"{widget.description}: {widget.value}")
            for child in getattr(widget, "children", ()):
                walk(child)

        walk(self)
        return "\n".join(lines)
