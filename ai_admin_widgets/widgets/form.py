"""The "Edit OpenAI Integration" form, built from one table of its fields.

:data:`FORM_FIELDS` names each input once: the model field it edits (a dotted path into
:class:`~ai_admin_widgets.OpenAIIntegration` or :class:`~ai_admin_widgets.AzureOpenAIIntegration`),
its kind (``"choice"``, ``"text"`` or ``"key"``) and its placeholder. The label and the help text
are the pydantic field's ``title`` and ``description``, and the CSS classes follow from the path
(``aiw-<name>`` and ``aiw-<section>-<name>``, e.g. ``aiw-api-key aiw-language-api-key``). Building
the inputs, filling them from the saved fields (:class:`~ai_admin_widgets.models.OpenAIFields`,
:class:`~ai_admin_widgets.models.AzureOpenAIFields`) and reading them into an integration all walk
that table.

The form never holds a saved key: an API Key left empty on Edit is sent as
:data:`~ai_admin_widgets.models.KEEP_SAVED_KEY`, which the settings resolve (or refuse with
:class:`~ai_admin_widgets.models.SavedKeyUnavailable`, shown beside the field).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from ..models import (
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_OPENAI_BASE_URL,
    KEEP_SAVED_KEY,
    ROLE_LABELS,
    ROLES,
    AzureDeployment,
    AzureOpenAIFields,
    AzureOpenAIIntegration,
    ModelCheck,
    Notice,
    OpenAIFields,
    OpenAIIntegration,
    Provider,
    VerificationReport,
    field_errors,
    holds_key,
)
from .fields import KeyField, TextField
from .style import ERROR as _ERROR_STYLE
from .style import HELP as _HELP_STYLE
from .style import SUCCESS as _SUCCESS_STYLE
from .style import WARNING as _WARNING_STYLE
from .style import classes as _classes
from .style import element_id as _element_id
from .style import show as _show
from .style import span as _span
from .style import text as _text

__all__ = ["FORM_FIELDS", "FormField", "IntegrationForm"]

Integration = OpenAIIntegration | AzureOpenAIIntegration
SavedFields = OpenAIFields | AzureOpenAIFields

PROVIDER_OPTIONS = [(Provider.OPENAI.label, Provider.OPENAI), (Provider.AZURE_OPENAI.label, Provider.AZURE_OPENAI)]
SAME_ENDPOINT_LABEL = "Use the same endpoint URL and API key for both models"
KEEP_KEY_PLACEHOLDER = "Leave empty to keep the saved key, or type a new one"

_MODELS: dict[Provider, type[BaseModel]] = {
    Provider.OPENAI: OpenAIIntegration,
    Provider.AZURE_OPENAI: AzureOpenAIIntegration,
}


@dataclass(frozen=True)
class FormField:
    """One input of the form: which model field it edits, and how.

    Attributes:
        provider: the integration the field belongs to; None for the provider choice itself.
        path: the model field, dotted for a deployment's (``"language_model.endpoint_url"``).
        kind: ``"choice"`` (the provider), ``"text"`` or ``"key"`` (a password input, never widget state).
        placeholder: the grey text shown while the field is empty.
    """

    provider: Provider | None
    path: str
    kind: str
    placeholder: str = ""

    @property
    def model_field(self) -> FieldInfo:
        """The pydantic field this input edits (its title is the label, its description the help)."""
        model = _MODELS[self.provider or Provider.OPENAI]
        head, _, leaf = self.path.partition(".")
        return AzureDeployment.model_fields[leaf] if leaf else model.model_fields[head]

    @property
    def label(self) -> str:
        return self.model_field.title or self.path.replace("_", " ").capitalize()

    @property
    def help(self) -> str:
        return self.model_field.description or ""

    @property
    def required(self) -> bool:
        """False when the model has a default for an empty field (it is then left out, and the default applies)."""
        return self.model_field.is_required()

    @property
    def section(self) -> str:
        """Where the field is shown: ``"openai"``, ``"language"``, ``"embeddings"`` or ``"azure"`` (the shared API version)."""
        head, _, leaf = self.path.partition(".")
        if leaf:
            return head.removesuffix("_model")
        return "openai" if self.provider is Provider.OPENAI else "azure"

    @property
    def name(self) -> str:
        """The model field's own name, the last part of the path (``"endpoint_url"``)."""
        return self.path.rpartition(".")[2]

    @property
    def css_classes(self) -> tuple[str, ...]:
        """``aiw-<name>`` and ``aiw-<section>-<name>`` (``aiw-api-key``, ``aiw-openai-api-key``); the choice is ``aiw-provider``."""
        name = self.name.replace("_", "-")
        return (f"aiw-{name}",) if self.provider is None else (f"aiw-{name}", f"aiw-{self.section}-{name}")


def _deployment_fields(role: str) -> tuple[FormField, ...]:
    prefix = f"{role}_model."
    return (
        FormField(Provider.AZURE_OPENAI, prefix + "endpoint_url", "text", "https://<resource>.openai.azure.com"),
        FormField(Provider.AZURE_OPENAI, prefix + "deployment_id", "text", "the deployment's name"),
        FormField(Provider.AZURE_OPENAI, prefix + "api_key", "key", "KEY 1 from Keys and Endpoint"),
    )


#: Every input of the form, in page order.
FORM_FIELDS: tuple[FormField, ...] = (
    FormField(None, "provider", "choice"),
    FormField(Provider.OPENAI, "api_key", "key", "sk-…"),
    FormField(Provider.OPENAI, "base_url", "text", DEFAULT_OPENAI_BASE_URL),
    FormField(Provider.OPENAI, "organization", "text", "optional: org-…"),
    FormField(Provider.OPENAI, "project", "text", "optional: proj_…"),
    *(spec for role in ROLES for spec in _deployment_fields(role)),
    FormField(Provider.AZURE_OPENAI, "api_version", "text", DEFAULT_AZURE_API_VERSION),
)

_INPUTS = tuple(spec for spec in FORM_FIELDS if spec.kind != "choice")
#: With "Use the same endpoint URL and API key", these are hidden and take the language model's.
_SHARED = {
    "embeddings_model.endpoint_url": "language_model.endpoint_url",
    "embeddings_model.api_key": "language_model.api_key",
}


def _value_at(source: Any, path: str) -> Any:
    for part in path.split("."):
        source = getattr(source, part, None)
    return source


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    head, _, leaf = path.partition(".")
    if leaf:
        data.setdefault(head, {})[leaf] = value
    else:
        data[head] = value


class _Field(widgets.VBox):
    """A labelled input with its help text, and the error or notice shown beside it.

    The input's ``aria-describedby`` names the help text and the error, so a screen
    reader reads both with the input; an error is announced when it appears.
    """

    def __init__(self, spec: FormField) -> None:
        self.spec = spec
        self._help_id, self._error_id = _element_id("aiw-help"), _element_id("aiw-error")
        field_class = KeyField if spec.kind == "key" else TextField
        self.input = _classes(field_class(placeholder=spec.placeholder), *spec.css_classes)
        self.input.description = spec.label
        self.input.described_by = f"{self._help_id} {self._error_id}"
        self.input.layout.width = "560px"
        self.help = widgets.HTML(_span(spec.help, _HELP_STYLE, element_id=self._help_id))
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
    """Endpoint URL, Deployment ID and API Key of one Azure OpenAI model (attributes named as the model fields)."""

    def __init__(self, role: str, fields: dict[str, _Field]) -> None:
        model_field = AzureOpenAIIntegration.model_fields[f"{role}_model"]
        self.role = role
        self.model_title = model_field.title or ROLE_LABELS[role]
        self.heading = widgets.HTML(
            f"<b>{_text(self.model_title)}</b> {_span(model_field.description or '', _HELP_STYLE)}"
        )
        self._fields = {field.spec.name: field for field in fields.values() if field.spec.section == role}
        for name, field in self._fields.items():
            setattr(self, name, field)  # self.endpoint_url, self.deployment_id, self.api_key
            field.input.context = self.model_title  # two of each label on the page: say which model
        self.check_result = _classes(widgets.HTML(""), "aiw-model-result", f"aiw-{role}-result")
        super().__init__([self.heading, *self._fields.values(), self.check_result])

    def fields(self) -> dict[str, _Field]:
        return dict(self._fields)


class IntegrationForm(widgets.VBox):
    """The "Edit OpenAI Integration" form: provider toggle, credential fields, Save and Cancel.

    Args:
        on_save: called with the built integration when Save is pressed (or Enter in a field)
            and the fields are valid; not while :attr:`busy`.
        on_cancel: called when Cancel is pressed (or Escape in a field).

    Attributes:
        fields: every input by model field path, in page order (see :data:`FORM_FIELDS`).
        openai_api_key, openai_base_url, openai_organization, openai_project, api_version: the
            fields by name; ``language`` and ``embeddings`` hold each deployment's fields.
        busy: True while a Save authenticates (Save and the provider are disabled; a second
            click or Enter is ignored).
    """

    def __init__(self, on_save: Callable[[Integration], None], on_cancel: Callable[[], None]) -> None:
        self._on_save = on_save
        self._on_cancel = on_cancel
        self._saved: SavedFields | None = None
        self.busy = False
        self.heading = widgets.HTML("<h4>Edit OpenAI Integration</h4>")
        choice = FORM_FIELDS[0]
        self.provider = _classes(
            widgets.ToggleButtons(
                options=PROVIDER_OPTIONS,
                value=Provider.OPENAI,
                description=choice.label,
                style={"description_width": "130px"},
            ),
            *choice.css_classes,
        )
        self.fields: dict[str, _Field] = {spec.path: _Field(spec) for spec in _INPUTS}
        for path, field in self.fields.items():
            if field.spec.section in ("openai", "azure"):  # openai_api_key, ..., api_version
                setattr(self, path if field.spec.section == "azure" else f"openai_{path}", field)
        self.openai_result = _classes(widgets.HTML(""), "aiw-model-result", "aiw-openai-result")
        self.openai_section = _classes(
            widgets.VBox(
                [field for field in self.fields.values() if field.spec.section == "openai"] + [self.openai_result]
            ),
            "aiw-openai-section",
        )
        self.language = _DeploymentFields("language", self.fields)
        self.embeddings = _DeploymentFields("embeddings", self.fields)
        self.same_endpoint = _classes(
            widgets.Checkbox(value=False, description=SAME_ENDPOINT_LABEL, indent=False), "aiw-same-endpoint"
        )
        self.same_endpoint.layout.width = "auto"  # the whole label, not cut short with "…"
        self.same_endpoint.layout.margin = "8px 0 8px 136px"  # under the fields' inputs, like their help
        self.azure_section = _classes(
            widgets.VBox(
                [self.language, self.same_endpoint, self.embeddings]
                + [field for field in self.fields.values() if field.spec.section == "azure"]
            ),
            "aiw-azure-section",
        )
        self.message = _classes(widgets.HTML(""), "aiw-message")
        self.save_button = _classes(
            widgets.Button(description="Save", button_style="primary", tooltip="Save"), "aiw-save"
        )
        self.cancel_button = _classes(widgets.Button(description="Cancel", tooltip="Cancel"), "aiw-cancel")
        self.save_button.on_click(lambda _: self._save())
        self.cancel_button.on_click(lambda _: self._on_cancel())
        self.provider.observe(lambda _: self._provider_changed(), names="value")
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
        for field in self.fields.values():  # Enter in any field saves, Escape cancels
            field.input.on_submit(self._save)
            field.input.on_cancel(self._on_cancel)
        self._layout()

    # -- state ------------------------------------------------------------------ #

    @property
    def shared(self) -> bool:
        """True when Azure OpenAI is chosen with the same endpoint URL and key for both models."""
        return self.provider.value is Provider.AZURE_OPENAI and self.same_endpoint.value

    @property
    def keeps_saved_keys(self) -> bool:
        """True when an empty API Key means the saved one: on Edit, with the saved integration's provider chosen."""
        return self._saved is not None and self._saved.provider is self.provider.value

    def _provider_changed(self) -> None:
        self._layout()
        self.show_message("")
        self.show_errors({})
        self._show_key_placeholders()

    def _layout(self) -> None:
        azure = self.provider.value is Provider.AZURE_OPENAI
        _show(self.openai_section, not azure)
        _show(self.azure_section, azure)
        for path in _SHARED:
            _show(self.fields[path], not self.same_endpoint.value)

    def _show_key_placeholders(self) -> None:
        """Offer to keep the saved key only where it can be kept (the saved integration's provider)."""
        for field in self.fields.values():
            if field.spec.kind == "key":
                field.input.placeholder = KEEP_KEY_PLACEHOLDER if self.keeps_saved_keys else field.spec.placeholder

    def _all_fields(self) -> dict[str, _Field]:
        return dict(self.fields)

    def _route(self, path: str) -> str:
        """Where a field path is shown: with the shared option, the embeddings endpoint and key show on the language model's."""
        return _SHARED.get(path, path) if self.shared else path

    def reset(self, saved: SavedFields | None, *, openai_base_url: str = DEFAULT_OPENAI_BASE_URL) -> None:
        """Fill the form from the saved fields (never a key), or for Add; clears every error and result.

        Args:
            saved: the saved integration's fields, or None for Add. Fields the form does not
                show (the OpenAI model ids) are kept as saved.
            openai_base_url: the Base URL to offer when OpenAI is not what is saved.
        """
        self._saved = saved
        self.heading.value = f"<h4>{'Edit' if saved is not None else 'Add'} OpenAI Integration</h4>"
        self.show_errors({})
        self.show_notices(())
        self.show_message("")
        self.clear_results()
        self.set_busy(False)
        self.provider.value = saved.provider if saved is not None else Provider.OPENAI
        # What each provider's fields start from: the saved fields, else (for Add) the defaults.
        starts: dict[Provider | None, SavedFields | None] = {
            Provider.OPENAI: OpenAIFields(base_url=openai_base_url),
            Provider.AZURE_OPENAI: None,
        }
        if saved is not None:
            starts[saved.provider] = saved
        for field in self.fields.values():
            field.value = "" if field.spec.kind == "key" else self._initial(field.spec, starts[field.spec.provider])
        self.same_endpoint.value = isinstance(saved, AzureOpenAIFields) and saved.uses_shared_endpoint
        self._show_key_placeholders()
        self._layout()

    @staticmethod
    def _initial(spec: FormField, start: SavedFields | None) -> str:
        """What a field shows when the form opens: the saved value, else the model's default, else nothing."""
        value = _value_at(start, spec.path) if start is not None else spec.model_field.default
        return value if isinstance(value, str) else ""

    def focus_first(self, errors_only: bool = False) -> None:
        """Move the keyboard focus to the first visible field (with ``errors_only``, the first one marked with an error)."""
        section = self.azure_section if self.provider.value is Provider.AZURE_OPENAI else self.openai_section
        for field in self.fields.values():
            if errors_only and not field.error.value:
                continue
            if _shown_in(section, field):
                field.input.focus()
                return

    def clear_keys(self) -> None:
        """Empty every API Key field, and any other field that holds something shaped like a key
        anywhere in its text (pasted in the wrong place), so no key stays in the widgets or their saved state."""
        for field in self.fields.values():
            if field.spec.kind == "key" or holds_key(field.value):
                field.value = ""

    def clear_keys_in_the_wrong_place(self) -> None:
        """Empty the fields other than API Key that hold something shaped like a key (their error says so)."""
        for field in self.fields.values():
            if field.spec.kind != "key" and holds_key(field.value):
                field.value = ""

    def clear_fields(self) -> None:
        """Empty every field (the form closes): what was typed and not saved does not stay in the widget state."""
        for field in self.fields.values():
            field.value = ""

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show each message beside its field (by dotted path); fields not named are cleared."""
        routed: dict[str, str] = {}
        for path, message in errors.items():
            routed.setdefault(self._route(path), message)
        for path, field in self.fields.items():
            field.show_error(routed.get(path))

    def show_notices(self, notices: tuple[Notice, ...] | list[Notice]) -> None:
        """Show what normalizing changed, and what to check, beside each field."""
        routed: dict[str, list[Notice]] = {}
        for notice in notices:
            shown = routed.setdefault(self._route(notice.field), [])
            if all(notice.message != other.message for other in shown):
                shown.append(notice)
        for path, field in self.fields.items():
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
        for role in ROLES:
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
        elif check.field and self._route(check.field) in self.fields:  # the message sits beside its field
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
        field = self.fields.get(self._route(check.field)) if check.field else None
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
        """Disable Save while authentication runs (Cancel stays usable); a Save pressed meanwhile is ignored."""
        self.busy = busy
        self.save_button.disabled = busy
        self.save_button.description = "Authenticating…" if busy else "Save"
        self.provider.disabled = busy

    # -- Save --------------------------------------------------------------------- #

    def build(self) -> Integration:
        """The integration the fields describe, normalized; an empty API Key on Edit is :data:`KEEP_SAVED_KEY`.

        Raises:
            pydantic.ValidationError: a field breaks its rule.
        """
        provider = self.provider.value
        data: dict[str, Any] = {}
        for field in self.fields.values():
            spec = field.spec
            if spec.provider is not provider:
                continue
            if spec.kind == "key":
                value: Any = field.value or (KEEP_SAVED_KEY if self.keeps_saved_keys else "")
            else:
                value = field.value.strip()
                if not value and not spec.required:
                    continue  # the model's default (None for the optional ids)
            _put(data, spec.path, value)
        if self.keeps_saved_keys and self._saved is not None:  # fields the form does not show stay as saved
            shown = {spec.path.partition(".")[0] for spec in FORM_FIELDS if spec.provider in (provider, None)}
            for name, value in self._saved.model_dump(mode="json").items():
                if name not in shown:
                    data[name] = value
        if provider is Provider.OPENAI:
            return OpenAIIntegration(**data)
        if self.same_endpoint.value:
            language = data["language_model"]
            return AzureOpenAIIntegration.shared(
                endpoint_url=language["endpoint_url"],
                api_key=language["api_key"],
                language_deployment_id=language["deployment_id"],
                embeddings_deployment_id=data["embeddings_model"]["deployment_id"],
                api_version=data.get("api_version"),
            )
        return AzureOpenAIIntegration(**data)

    def show_normalized(self, integration: Integration) -> None:
        """Put the normalized values back into the fields, so every change is visible, with its notice."""
        for field in self.fields.values():
            if field.spec.provider is integration.provider and field.spec.kind != "key":
                value = _value_at(integration, field.spec.path)
                field.value = value if isinstance(value, str) else ""
        self.show_notices(integration.notices)

    def _save(self) -> None:
        """Save (the button, or Enter in a field): build and hand over, unless an authentication is under way."""
        if self.busy:
            return
        self.show_message("")
        self.clear_results()
        try:
            integration = self.build()
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

    def show_field_error(self, path: str, message: str) -> None:
        """Mark one field (by dotted path) with ``message``, say so under the fields, and move the focus there."""
        self.show_notices(())
        self.show_errors({path: message})
        self.show_message("Correct the fields marked above, then press Save again.", error=True)
        self.focus_first(errors_only=True)


def _shown_in(container: widgets.Widget, widget: widgets.Widget) -> bool:
    """Whether ``widget`` is inside ``container`` with neither it nor any box between them hidden."""
    if getattr(container, "layout", None) is not None and container.layout.display == "none":
        return False
    if container is widget:
        return True
    return any(_shown_in(child, widget) for child in getattr(container, "children", ()))
