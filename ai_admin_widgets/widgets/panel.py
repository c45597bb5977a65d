"""The AI Settings page: the OpenAI row, the Edit OpenAI Integration form and the remove confirmation.

No business logic lives here: the panel calls :class:`~ai_admin_widgets.AISettings`
and renders what comes back. Each region is one class, and each is rendered from
one state: the panel's ``view`` (``"row"``, ``"form"`` or ``"confirm"``) plus the
service's :class:`~ai_admin_widgets.IntegrationStatus`.

Every interactive element carries a stable CSS class (``aiw-add``, ``aiw-edit``,
``aiw-remove``, ``aiw-test``, ``aiw-provider``, ``aiw-api-key``, ``aiw-save``,
``aiw-cancel``, ``aiw-confirm-remove``, ``aiw-status``, …) so tests and users can
find it; see :meth:`AISettingsPanel.find`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from pydantic import ValidationError

from ..health import Health
from ..models import (
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_OPENAI_BASE_URL,
    ROLE_LABELS,
    AIAdminError,
    AzureDeployment,
    AzureOpenAIIntegration,
    IntegrationStatus,
    ModelCheck,
    Notice,
    OpenAIIntegration,
    Provider,
    StoreError,
    VerificationFailed,
    VerificationReport,
    field_errors,
    holds_key,
)
from .access import AccessSettings
from .fields import KeyField, TextField
from .history import History
from .style import ERROR as _ERROR_STYLE
from .style import HELP as _HELP_STYLE
from .style import PANEL_STYLE as _PANEL_STYLE
from .style import SUCCESS as _SUCCESS_STYLE
from .style import WARNING as _WARNING_STYLE
from .style import classes as _classes
from .style import element_id as _element_id
from .style import show as _show
from .style import span as _span
from .style import text as _text

if TYPE_CHECKING:
    from ..service import AISettings

__all__ = ["AISettingsPanel", "IntegrationForm", "OpenAIRow", "RemoveConfirmation"]

_log = logging.getLogger(__name__)

_PROVIDER_OPTIONS = [(Provider.OPENAI.label, Provider.OPENAI), (Provider.AZURE_OPENAI.label, Provider.AZURE_OPENAI)]
_SAME_ENDPOINT_LABEL = "Use the same endpoint URL and API key for both models"

Integration = OpenAIIntegration | AzureOpenAIIntegration


class _KeyNeeded(Exception):
    """On Edit, the API Key was left empty but the saved key may not go to the endpoint now typed."""

    def __init__(self, slot: str) -> None:
        super().__init__(slot)
        self.slot = slot


def _button(label: str, css_class: str, style: str = "") -> widgets.Button:
    return _classes(widgets.Button(description=label, button_style=style, tooltip=label), css_class)


class _Field(widgets.VBox):
    """A labelled input with its help text, and the error or notice shown beside it.

    The input's ``aria-describedby`` names the help text and the error, so a screen
    reader reads both with the input; an error is announced when it appears.
    """

    def __init__(
        self, label: str, input_widget: TextField | KeyField, help_text: str, css_class: str, *more_classes: str
    ) -> None:
        self._help_id, self._error_id = _element_id("aiw-help"), _element_id("aiw-error")
        self.input = _classes(input_widget, css_class, *more_classes)
        self.input.description = label
        self.input.described_by = f"{self._help_id} {self._error_id}"
        self.input.layout.width = "560px"
        self.help = widgets.HTML(_span(help_text, _HELP_STYLE, element_id=self._help_id))
        self.help.layout.margin = "0 0 0 136px"
        self.error = _classes(widgets.HTML(""), "aiw-field-error")
        self.error.layout.margin = "0 0 0 136px"
        self.notice = _classes(widgets.HTML(""), "aiw-field-notice")
        self.notice.layout.margin = "0 0 0 136px"
        super().__init__([self.input, self.help, self.error, self.notice])

    @property
    def value(self) -> str:
        return self.input.value

    @value.setter
    def value(self, text: str) -> None:
        self.input.value = text

    def show_error(self, message: str | None) -> None:
        self.error.value = _span(message, _ERROR_STYLE, alert=True, element_id=self._error_id) if message else ""
        self.input.invalid = bool(message)

    def show_notices(self, notices: list[Notice]) -> None:
        self.notice.value = "<br>".join(
            _span(
                ("⚠ " if notice.level == "warning" else "ℹ ") + notice.message,
                _WARNING_STYLE if notice.level == "warning" else _HELP_STYLE,
            )
            for notice in notices
        )


class _DeploymentFields(widgets.VBox):
    """Endpoint URL, Deployment ID and API Key of one Azure OpenAI model."""

    def __init__(self, role: str, title: str, description: str) -> None:
        fields = AzureDeployment.model_fields
        self.role = role
        self.heading = widgets.HTML(f"<b>{_text(title)}</b> {_span(description, _HELP_STYLE)}")
        self.endpoint_url = _Field(
            "Endpoint URL",
            TextField(placeholder="https://<resource>.openai.azure.com"),
            fields["endpoint_url"].description or "",
            "aiw-endpoint-url",
            f"aiw-{role}-endpoint-url",
        )
        self.deployment_id = _Field(
            "Deployment ID",
            TextField(placeholder="the deployment's name"),
            fields["deployment_id"].description or "",
            "aiw-deployment-id",
            f"aiw-{role}-deployment-id",
        )
        self.api_key = _Field(
            "API Key",
            KeyField(placeholder="KEY 1 from Keys and Endpoint"),
            fields["api_key"].description or "",
            "aiw-api-key",
            f"aiw-{role}-api-key",
        )
        for field in (self.endpoint_url, self.deployment_id, self.api_key):  # two of each label: say which model
            field.input.context = title
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

    def __init__(
        self,
        on_save: Callable[[Integration], None],
        on_cancel: Callable[[], None],
        saved_key: Callable[[str, str], Any] | None = None,
    ) -> None:
        self._on_save = on_save
        self._on_cancel = on_cancel
        self._saved_key = saved_key
        self._saved: dict[str, Any] | None = None
        self.heading = widgets.HTML("<h4>Edit OpenAI Integration</h4>")
        self.provider = _classes(
            widgets.ToggleButtons(
                options=_PROVIDER_OPTIONS,
                value=Provider.OPENAI,
                description="Provider",
                style={"description_width": "130px"},
            ),
            "aiw-provider",
        )
        openai_fields = OpenAIIntegration.model_fields
        self.openai_api_key = _Field(
            "API Key",
            KeyField(placeholder="sk-…"),
            openai_fields["api_key"].description or "",
            "aiw-api-key",
            "aiw-openai-api-key",
        )
        self.openai_base_url = _Field(
            "Base URL",
            TextField(placeholder=DEFAULT_OPENAI_BASE_URL),
            openai_fields["base_url"].description or "",
            "aiw-base-url",
        )
        self.openai_organization = _Field(
            "Organization ID",
            TextField(placeholder="optional: org-…"),
            openai_fields["organization"].description or "",
            "aiw-organization",
        )
        self.openai_project = _Field(
            "Project ID",
            TextField(placeholder="optional: proj_…"),
            openai_fields["project"].description or "",
            "aiw-project",
        )
        self.openai_result = _classes(widgets.HTML(""), "aiw-model-result", "aiw-openai-result")
        self.openai_section = _classes(
            widgets.VBox(
                [
                    self.openai_api_key,
                    self.openai_base_url,
                    self.openai_organization,
                    self.openai_project,
                    self.openai_result,
                ]
            ),
            "aiw-openai-section",
        )
        azure_fields = AzureOpenAIIntegration.model_fields
        self.language = _DeploymentFields(
            "language", "Language model", azure_fields["language_model"].description or ""
        )
        self.embeddings = _DeploymentFields(
            "embeddings", "Embeddings model", azure_fields["embeddings_model"].description or ""
        )
        self.same_endpoint = _classes(
            widgets.Checkbox(value=False, description=_SAME_ENDPOINT_LABEL, indent=False), "aiw-same-endpoint"
        )
        self.same_endpoint.layout.width = "auto"  # the whole label, not cut short with "…"
        self.same_endpoint.layout.margin = "8px 0 8px 136px"  # under the fields' inputs, like their help
        self.api_version = _Field(
            "API version",
            TextField(placeholder=DEFAULT_AZURE_API_VERSION),
            azure_fields["api_version"].description or "",
            "aiw-api-version",
        )
        self.azure_section = _classes(
            widgets.VBox([self.language, self.same_endpoint, self.embeddings, self.api_version]), "aiw-azure-section"
        )
        self.message = _classes(widgets.HTML(""), "aiw-message")
        self.save_button = _button("Save", "aiw-save", "primary")
        self.cancel_button = _button("Cancel", "aiw-cancel")
        self.save_button.on_click(lambda _: self._save())
        self.cancel_button.on_click(lambda _: self._on_cancel())
        self.provider.observe(lambda _: (self._layout(), self.show_message(""), self.show_errors({})), names="value")
        self.same_endpoint.observe(lambda _: self._layout(), names="value")
        super().__init__(
            [
                self.heading,
                self.provider,
                self.openai_section,
                self.azure_section,
                self.message,
                widgets.HBox([self.save_button, self.cancel_button]),
            ]
        )
        _classes(self, "aiw-form")
        for field in self._all_fields().values():  # Enter in any field saves, Escape cancels
            field.input.on_submit(self._submit)
            field.input.on_cancel(self._on_cancel)
        self._layout()

    # -- state ------------------------------------------------------------------ #

    @property
    def shared(self) -> bool:
        """True when Azure OpenAI is chosen with the same endpoint URL and key for both models."""
        return self.provider.value is Provider.AZURE_OPENAI and self.same_endpoint.value

    def _layout(self) -> None:
        azure = self.provider.value is Provider.AZURE_OPENAI
        _show(self.openai_section, not azure)
        _show(self.azure_section, azure)
        _show(self.embeddings.endpoint_url, not self.same_endpoint.value)
        _show(self.embeddings.api_key, not self.same_endpoint.value)

    def _all_fields(self) -> dict[str, _Field]:
        fields = {
            "api_key": self.openai_api_key,
            "base_url": self.openai_base_url,
            "organization": self.openai_organization,
            "project": self.openai_project,
            "api_version": self.api_version,
        }
        for section in (self.language, self.embeddings):
            for name, field in section.fields().items():
                fields[f"{section.role}_model.{name}"] = field
        return fields

    def _route(self, path: str) -> str:
        """Where a field path is shown: with the shared option, the embeddings endpoint and key show on the language model's."""
        if self.shared and path in ("embeddings_model.endpoint_url", "embeddings_model.api_key"):
            return path.replace("embeddings_model.", "language_model.")
        return path

    def reset(self, saved: dict[str, Any] | None, *, openai_base_url: str = DEFAULT_OPENAI_BASE_URL) -> None:
        """Fill the form from saved fields (no keys), or empty it for Add; clears every error.

        Args:
            saved: the saved integration's fields without keys, or None for Add. Fields the
                form does not show (the OpenAI model ids) are kept as saved.
            openai_base_url: the Base URL to offer when OpenAI is not what is saved.
        """
        self._saved = saved
        for path, field in self._all_fields().items():
            field.value = ""
            if path.endswith("api_key"):
                field.input.placeholder = "sk-…" if path == "api_key" else "KEY 1 from Keys and Endpoint"
        self.openai_base_url.value = openai_base_url
        self.api_version.value = DEFAULT_AZURE_API_VERSION
        self.show_errors({})
        self.show_notices(())
        self.show_message("")
        self.clear_results()
        self.set_busy(False)
        self.provider.value = Provider(saved["provider"]) if saved else Provider.OPENAI
        self.same_endpoint.value = False
        if saved is None:
            return
        for path, field in self._all_fields().items():
            if path.endswith("api_key"):
                field.input.placeholder = "Leave empty to keep the saved key, or type a new one"
        if self.provider.value is Provider.OPENAI:
            self.openai_base_url.value = saved.get("base_url") or openai_base_url
            self.openai_organization.value = saved.get("organization") or ""
            self.openai_project.value = saved.get("project") or ""
        else:
            for section in (self.language, self.embeddings):
                deployment = saved[f"{section.role}_model"]
                section.endpoint_url.value = deployment["endpoint_url"]
                section.deployment_id.value = deployment["deployment_id"]
            self.api_version.value = saved.get("api_version") or DEFAULT_AZURE_API_VERSION
            self.same_endpoint.value = (
                saved["language_model"]["endpoint_url"] == saved["embeddings_model"]["endpoint_url"]
            )

    def focus_first(self, errors_only: bool = False) -> None:
        """Move the keyboard focus to the first visible field (with ``errors_only``, the first one marked with an error)."""
        section = self.azure_section if self.provider.value is Provider.AZURE_OPENAI else self.openai_section
        for field in self._all_fields().values():
            if errors_only and not field.error.value:
                continue
            if _shown_in(section, field):
                field.input.focus()
                return

    def clear_keys(self) -> None:
        """Empty every API Key field, and any other field that holds something shaped like a key
        anywhere in its text (pasted in the wrong place), so no key stays in the widgets or their saved state."""
        for path, field in self._all_fields().items():
            if path.endswith("api_key") or holds_key(field.value):
                field.value = ""

    def clear_keys_in_the_wrong_place(self) -> None:
        """Empty the fields other than API Key that hold something shaped like a key (their error says so)."""
        for path, field in self._all_fields().items():
            if not path.endswith("api_key") and holds_key(field.value):
                field.value = ""

    def clear_fields(self) -> None:
        """Empty every field (the form closes): what was typed and not saved does not stay in the widget state."""
        for field in self._all_fields().values():
            field.value = ""

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show each message beside its field (by dotted path); fields not named are cleared."""
        routed: dict[str, str] = {}
        for path, message in errors.items():
            routed.setdefault(self._route(path), message)
        for path, field in self._all_fields().items():
            field.show_error(routed.get(path))

    def show_notices(self, notices: tuple[Notice, ...] | list[Notice]) -> None:
        """Show what normalizing changed, and what to check, beside each field."""
        routed: dict[str, list[Notice]] = {}
        for notice in notices:
            shown = routed.setdefault(self._route(notice.field), [])
            if all(notice.message != other.message for other in shown):
                shown.append(notice)
        for path, field in self._all_fields().items():
            field.show_notices(routed.get(path, []))

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show a line under the fields (progress, or an error not tied to one field)."""
        if not text:
            self.message.value = ""
        elif error:
            self.message.value = _span(text, _ERROR_STYLE, alert=True)
        else:
            self.message.value = f'<span aria-live="polite">{_text(text)}</span>'

    def _result_widget(self, role: str) -> widgets.HTML:
        if self.provider.value is Provider.OPENAI:
            return self.openai_result
        return self.language.check_result if role == "language" else self.embeddings.check_result

    def show_progress(self, provider: Provider) -> None:
        """Say, beside each model, that it is being checked."""
        self.clear_results()
        for role in ("language", "embeddings"):
            widget = self._result_widget(role)
            line = _span(f"… Checking the {ROLE_LABELS[role].lower()}", _HELP_STYLE)
            widget.value = f"{widget.value}<br>{line}" if widget.value else line

    def show_check(self, check: ModelCheck) -> None:
        """Show one model's outcome beside it (and a failure's message beside its field)."""
        widget = self._result_widget(check.role)
        label = ROLE_LABELS[check.role]
        if check.ok:
            line = _span(f"✓ {check.message}", _SUCCESS_STYLE)
            if check.warning:
                line += "<br>" + _span(f"⚠ {check.warning}", _WARNING_STYLE)
        elif check.field and self._route(check.field) in self._all_fields():  # the message sits beside its field
            line = _span(f"✗ {label}: not authenticated (see the field marked above).", _ERROR_STYLE)
        else:
            line = _span(f"✗ {check.message}", _ERROR_STYLE, alert=True)
        if self.provider.value is Provider.OPENAI:
            lines = (
                [part for part in widget.value.split("<br>") if label.lower() not in part.lower()]
                if widget.value
                else []
            )
            widget.value = "<br>".join([*lines, line])
        else:
            widget.value = line
        field = self._all_fields().get(self._route(check.field)) if check.field else None
        if not check.ok and field is not None:
            if not field.error.value:  # two models failing on one shared field: the first message stays
                field.show_error(check.message)
        elif not check.ok:  # a field the form does not show: the message goes beside the model
            widget.value = _span(f"✗ {check.message}", _ERROR_STYLE, alert=True)

    def show_report(self, report: VerificationReport) -> None:
        """Show each model's outcome beside its model, and each failure beside its field."""
        self.clear_results()
        self.show_errors({})
        for check in report.checks:
            self.show_check(check)

    def clear_results(self) -> None:
        """Empty the per-model results (progress, ✓ and ✗ lines) beside each model."""
        for widget in (self.openai_result, self.language.check_result, self.embeddings.check_result):
            widget.value = ""

    def set_busy(self, busy: bool) -> None:
        """Disable Save while authentication runs (Cancel stays usable)."""
        self.save_button.disabled = busy
        self.save_button.description = "Authenticating…" if busy else "Save"
        self.provider.disabled = busy

    # -- Save --------------------------------------------------------------------- #

    def build(self) -> Integration:
        """The integration the fields describe, normalized.

        Raises:
            pydantic.ValidationError: a field breaks its rule.
        """
        saved = self._saved or {}
        if self.provider.value is Provider.OPENAI:
            data: dict[str, Any] = {
                "api_key": self._key("api_key", self.openai_api_key, self.openai_base_url.value),
                "base_url": self.openai_base_url.value or DEFAULT_OPENAI_BASE_URL,
                "organization": self.openai_organization.value.strip() or None,
                "project": self.openai_project.value.strip() or None,
            }
            if saved.get("provider") == Provider.OPENAI.value:  # model ids the form does not show stay as saved
                for name in ("language_model", "embeddings_model"):
                    if saved.get(name):
                        data[name] = saved[name]
            return OpenAIIntegration(**data)
        api_version = self.api_version.value.strip() or DEFAULT_AZURE_API_VERSION
        keys = {
            section.role: self._key(
                f"{section.role}_model.api_key",
                self.language.api_key if self.same_endpoint.value else section.api_key,
                (self.language if self.same_endpoint.value else section).endpoint_url.value,
            )
            for section in (self.language, self.embeddings)
        }
        if self.same_endpoint.value:
            return AzureOpenAIIntegration.shared(
                endpoint_url=self.language.endpoint_url.value,
                api_key=keys["language"],
                language_deployment_id=self.language.deployment_id.value,
                embeddings_deployment_id=self.embeddings.deployment_id.value,
                api_version=api_version,
            )
        return AzureOpenAIIntegration(
            language_model={name: field.value for name, field in self.language.fields().items()}
            | {"api_key": keys["language"]},
            embeddings_model={name: field.value for name, field in self.embeddings.fields().items()}
            | {"api_key": keys["embeddings"]},
            api_version=api_version,
        )

    def _key(self, slot: str, field: _Field, endpoint_url: str) -> Any:
        """The typed key; on Edit, an empty field means the saved key, if it may go to ``endpoint_url``."""
        if field.value or self._saved is None or self._saved_key is None:
            return field.value
        if self._saved.get("provider") != self.provider.value.value:
            return field.value
        kept = self._saved_key(slot, endpoint_url)
        if kept is None:
            raise _KeyNeeded(slot)
        return kept

    def show_normalized(self, integration: Integration) -> None:
        """Put the normalized values back into the fields, so every change is visible, with its notice."""
        if isinstance(integration, OpenAIIntegration):
            self.openai_base_url.value = integration.base_url
        else:
            for section in (self.language, self.embeddings):
                deployment = integration.deployment(section.role)
                section.endpoint_url.value = deployment.endpoint_url
                section.deployment_id.value = deployment.deployment_id
            self.api_version.value = integration.api_version
        self.show_notices(integration.notices)

    def _submit(self) -> None:
        """Enter in a field: Save, unless an authentication is already under way."""
        if not self.save_button.disabled:
            self._save()

    def _save(self) -> None:
        self.show_message("")
        self.clear_results()
        try:
            integration = self.build()
        except AIAdminError as error:  # the saved key could not be read (keyring, store, permission)
            self.show_message(f"{error} Type the API Key again to save without the saved key.", error=True)
            return
        except _KeyNeeded as needed:
            self.show_notices(())
            self.show_errors(
                {
                    needed.slot: (
                        "Type the API Key again: the endpoint's host changed, and a saved key is only sent to the host it was entered for."
                    )
                }
            )
            self.show_message("Correct the fields marked above, then press Save again.", error=True)
            self.focus_first(errors_only=True)
            return
        except ValidationError as error:
            self.show_notices(())
            self.show_errors(field_errors(error))
            self.clear_keys_in_the_wrong_place()
            self.show_message("Correct the fields marked above, then press Save again.", error=True)
            self.focus_first(errors_only=True)
            return
        self.show_errors({})
        self.show_normalized(integration)
        self._on_save(integration)


def _shown_in(container: widgets.Widget, widget: widgets.Widget) -> bool:
    """Whether ``widget`` is inside ``container`` with neither it nor any box between them hidden."""
    if getattr(container, "layout", None) is not None and container.layout.display == "none":
        return False
    if container is widget:
        return True
    return any(_shown_in(child, widget) for child in getattr(container, "children", ()))


class OpenAIRow(widgets.VBox):
    """The "OpenAI" row: the integration's status, and Add, or Edit, Test and Remove."""

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
        failing = status.health is Health.FAILING
        if not admin:
            remedy = "An admin can authenticate it again with Test."
        elif failing:
            remedy = "Press Test to authenticate again; if it fails again, press Edit and correct what Test reports (often the API Key)."
        else:
            remedy = "Press Test to authenticate again."
        self.health.add_class(f"aiw-health-{status.health.value}")
        self.health.value = _span(f"⚠ {problem} {remedy}", _ERROR_STYLE if failing else _WARNING_STYLE)

    def show_notes(self, notices: tuple[Notice, ...]) -> None:
        """After a Save, say what was adjusted in what the admin typed (never silently)."""
        seen: list[str] = []
        for notice in notices:
            if notice.message not in seen:
                seen.append(notice.message)
        self.result.value = (
            "<br>".join(
                [_span("Saved. Adjusted while saving:", _HELP_STYLE)]
                + [_span(f"• {message}", _HELP_STYLE) for message in seen]
            )
            if seen
            else ""
        )

    def show_test(self, report: VerificationReport | None, error: str | None = None) -> None:
        """Show the outcome of Test under the row."""
        if error:
            self.result.value = _span(error, _ERROR_STYLE, alert=True)
        elif report is None:
            self.result.value = ""
        else:
            lines = [
                _span(f"✓ {check.message}", _SUCCESS_STYLE)
                if check.ok
                else _span(f"✗ {check.message}", _ERROR_STYLE, alert=True)
                for check in report.checks
            ]
            self.result.value = "<br>".join(lines)


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
    """The AI Settings page for one :class:`~ai_admin_widgets.AISettings`.

    Args:
        settings: the service the panel calls; the panel re-renders when it changes.

    Attributes:
        view: ``"row"``, ``"form"`` (Add or Edit open) or ``"confirm"`` (Remove asked).
        row, form, confirmation: the three regions; ``footer`` names the keyring.
        history: the audit log (:class:`~ai_admin_widgets.widgets.history.History`), shown on request.
        access: who may use AI and who the admins are (:class:`~ai_admin_widgets.widgets.access.AccessSettings`).
    """

    def __init__(self, settings: AISettings) -> None:
        self.settings = settings
        self.view = "row"
        self._opened_at: int | None = None
        self._task: asyncio.Task[Any] | None = None
        self.title = widgets.HTML(f"{_PANEL_STYLE}<h3>AI Settings</h3>")
        self.notice = _classes(widgets.HTML(""), "aiw-notice")
        self.row = OpenAIRow(self._open_add, self._open_edit, self._test, self._ask_remove)
        self.form = IntegrationForm(self._save, self._close, saved_key=self.settings.saved_key)
        self.confirmation = RemoveConfirmation(self._remove, self._close)
        self.footer = _classes(widgets.HTML(""), "aiw-footer")
        self.access = AccessSettings(settings)
        self.history = History(settings)
        super().__init__(
            [self.title, self.notice, self.row, self.form, self.confirmation, self.access, self.history, self.footer]
        )
        _classes(self, "aiw-panel")
        self._unsubscribe = settings.on_change(self.render)
        self.render()

    def __repr__(self) -> str:
        try:
            status = self.settings.status()
        except AIAdminError:
            return f"AISettingsPanel(status unavailable, view={self.view!r})"
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
        damaged = False
        try:
            status = self.settings.status()
        except StoreError as error:
            damaged = True
            self.notice.value = _span(str(error), _ERROR_STYLE, alert=True)
            status = IntegrationStatus(configured=False)
        else:
            self.notice.value = (
                ""
                if admin
                else _text("You must be assigned the Admin account type to configure the OpenAI integration.")
            )
        # While the form or the confirmation is open, the row offers nothing else to press,
        # so a Save under way cannot be crossed by a Remove, a Test or another Edit.
        self.row.render(status, admin=admin, damaged=damaged, offer=self.view == "row")
        if self.view != "row":
            _show(self.row.test_button, False)
        self.access.render(admin=admin)
        self.history.render()
        keyring_problem = self.settings.keyring_problem()
        self.footer.value = (
            _span(f"Keys cannot be saved here. {keyring_problem}", _ERROR_STYLE)
            if keyring_problem
            else _span(
                f"Keys are kept in: {status.keyring_backend or self.settings.keyring_backend_name()}", _HELP_STYLE
            )
        )
        _show(self.form, self.view == "form")
        _show(self.confirmation, self.view == "confirm")

    def _set_view(self, view: str) -> None:
        self.view = view
        self.render()

    def _open_add(self) -> None:
        self._opened_at = self._revision()
        self.form.reset(None, openai_base_url=self.settings.openai_base_url)
        self.row.show_test(None)
        self._set_view("form")
        self.form.focus_first()

    def _open_edit(self) -> None:
        self._opened_at = self._revision()
        saved = self.settings.saved_fields()
        self.form.reset(saved.model_dump(mode="json") if saved else None, openai_base_url=self.settings.openai_base_url)
        self.row.show_test(None)
        self._set_view("form")
        self.form.focus_first()

    def _revision(self) -> int | None:
        """The settings revision the form starts from: a Save fails if another kernel changed it meanwhile."""
        try:
            return self.settings.status().revision
        except AIAdminError:
            return None

    def _ask_remove(self) -> None:
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

    # -- actions ------------------------------------------------------------------- #

    def _save(self, integration: Integration) -> None:
        self.form.clear_keys()
        self.form.set_busy(True)
        self.form.show_message(f"Authenticating both models with {integration.provider.label}…")
        self.form.show_progress(integration.provider)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            try:
                self.settings.save(integration, expected_revision=self._opened_at)
            except Exception as error:  # shown in the form; a bug is logged too
                self._save_failed(error)
            else:
                self._saved(integration)
        else:  # in a kernel: authenticate on its event loop, so the kernel stays responsive
            self._task = loop.create_task(self._save_async(integration))

    async def _save_async(self, integration: Integration) -> None:
        try:
            await self.settings.save_async(
                integration, on_check=self.form.show_check, expected_revision=self._opened_at
            )
        except Exception as error:  # shown in the form; a bug is logged too
            self._save_failed(error)
        else:
            self._saved(integration)

    def _saved(self, integration: Integration) -> None:
        self._task = None
        self.form.clear_keys()  # a key typed (or Enter pressed again) while authenticating does not stay
        self.form.set_busy(False)
        self.form.show_message("")
        self.row.show_notes(integration.notices)
        self._set_view("row")
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
        self.row.result.value = _span("Authenticating the saved credentials…", _HELP_STYLE)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            self._finish_test(self.settings.test)
        else:
            self._task = loop.create_task(self._test_async())

    async def _test_async(self) -> None:
        try:
            report = await self.settings.test_async()
        except Exception as error:  # shown under the row; a bug is logged too
            self._test_failed(error)
        else:
            self.row.show_test(report)
        self._task = None
        self.render()

    def _finish_test(self, run: Callable[[], VerificationReport]) -> None:
        try:
            report = run()
        except Exception as error:  # shown under the row; a bug is logged too
            self._test_failed(error)
        else:
            self.row.show_test(report)
        self.render()

    def _test_failed(self, error: Exception) -> None:
        if isinstance(error, AIAdminError):
            self.row.show_test(None, str(error))
        else:
            _log.error("Test failed unexpectedly", exc_info=error)
            self.row.show_test(
                None, f"Test failed unexpectedly ({type(error).__name__}). The kernel's log has the details."
            )

    def _remove(self) -> None:
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
                options = " | ".join(
                    f"({label})" if value == widget.value else label for label, value in _PROVIDER_OPTIONS
                )
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
