"""The "Add / Edit OpenAI Integration" dialog, built from one table of its fields.

:data:`FORM_FIELDS` names each input once: the model field it edits (a dotted path into
:class:`~ai_admin_widgets.OpenAIIntegration` or :class:`~ai_admin_widgets.AzureOpenAIIntegration`),
its kind (``"choice"``, ``"text"`` or ``"key"``) and its placeholder. The label and the help text
are the pydantic field's ``title`` and ``description``, and the CSS classes follow from the path
(``aiw-<name>`` and ``aiw-<section>-<name>``, e.g. ``aiw-api-key aiw-language-api-key``). Filling
the values from the saved fields (:class:`~ai_admin_widgets.models.OpenAIFields`,
:class:`~ai_admin_widgets.models.AzureOpenAIFields`), building the dialog's nodes
(:mod:`~ai_admin_widgets.widgets.view`), tidying a field when it loses focus and reading the
values into an integration all walk that table.

An Azure deployment's **Authentication** (a radio: API key, or Microsoft Entra ID) decides which of its
inputs show and are read: the API Key, or **Sign in as** (service principal: Tenant ID, Client ID,
Client secret, Authority host; managed identity: an optional Client ID), all under the deployment's
path (``language_model.entra_id.tenant_id``), so errors come back beside their field. The Client
secret is a key field: handled, kept on Edit and cleared exactly as an API Key is.

:class:`IntegrationForm` is a plain Python object: the panel puts its :meth:`~IntegrationForm.node`
into the page's state. It holds the text fields' values, and the typed keys privately (as
``SecretStr``, never in a node), cleared after every Save attempt and when the dialog closes. The
form never holds a saved key: an API Key (or Client secret) left empty on Edit is sent as
:data:`~ai_admin_widgets.models.KEEP_SAVED_KEY`, which the settings resolve (or refuse with
:class:`~ai_admin_widgets.models.SavedKeyUnavailable`, shown beside the field).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from ..models import (
    AUTHENTICATION_LABELS,
    AZURE_V1_API,
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_OPENAI_BASE_URL,
    ENTRA_METHOD_LABELS,
    KEEP_SAVED_KEY,
    ROLE_LABELS,
    ROLES,
    AzureDeployment,
    AzureOpenAIFields,
    AzureOpenAIIntegration,
    EntraID,
    ModelCheck,
    Notice,
    OpenAIFields,
    OpenAIIntegration,
    Provider,
    VerificationReport,
    field_errors,
    holds_key,
)
from . import view

__all__ = ["FORM_FIELDS", "FormField", "IntegrationForm"]

Integration = OpenAIIntegration | AzureOpenAIIntegration
SavedFields = OpenAIFields | AzureOpenAIFields

PROVIDER_OPTIONS = [(Provider.OPENAI.label, Provider.OPENAI), (Provider.AZURE_OPENAI.label, Provider.AZURE_OPENAI)]
SAME_ENDPOINT_LABEL = "Use the same endpoint URL and API key for both models"
KEEP_KEY_PLACEHOLDER = "Leave empty to keep the saved key, or type a new one"
KEEP_SECRET_PLACEHOLDER = "Leave empty to keep the saved client secret{hint}, or type a new one"  # noqa: S105
#: What the API version field offers beside what may be typed: Azure's v1 API, the default (GA) api-version,
#: the newest preview, and the first that serves reasoning models (o1, o3, o4-mini).
API_VERSION_SUGGESTIONS = (AZURE_V1_API, DEFAULT_AZURE_API_VERSION, "2025-04-01-preview", "2024-12-01-preview")
#: "Authentication" of an Azure deployment is no model field: it says which of ``api_key`` and ``entra_id`` is given.
_AUTHENTICATION_FIELD: FieldInfo = Field(  # type: ignore[assignment]  # Field() is typed as its default
    default="api_key",
    title="Authentication",
    description="How this model's calls authenticate: with an API key, or keyless with Microsoft Entra ID "
    "(for resources whose key authentication is turned off; the identity needs the Cognitive Services OpenAI "
    "User role on the resource).",
)
CORRECT_FIELDS = "Correct the fields marked above, then press Save again."

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
        kind: ``"choice"`` (the provider), ``"text"``, ``"key"`` (a password input, never in the state)
            or ``"radio"`` (one of ``options``).
        placeholder: the grey text shown while the field is empty.
        options: a radio's ``(value, label)`` choices, the default first.
        css_name: the name in its CSS classes, when not the field's own (``entra-method``).
    """

    provider: Provider | None
    path: str
    kind: str
    placeholder: str = ""
    options: tuple[tuple[str, str], ...] = ()
    css_name: str = ""

    @property
    def model_field(self) -> FieldInfo:
        """The pydantic field this input edits (its title is the label, its description the help).

        A deployment's ``authentication`` is not a field of the model (it is which of ``api_key`` and
        ``entra_id`` is given): its label and help are the form's own.
        """
        model = _MODELS[self.provider or Provider.OPENAI]
        head, _, rest = self.path.partition(".")
        if not rest:
            return model.model_fields[head]
        if rest == "authentication":
            return _AUTHENTICATION_FIELD
        sub, _, leaf = rest.partition(".")
        return EntraID.model_fields[leaf] if leaf else AzureDeployment.model_fields[sub]

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
    def optional(self) -> bool:
        """True when the field may stay empty with nothing in its place (Organization ID, Project ID)."""
        return not self.required and self.model_field.default is None

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
        name = self.css_name or self.name.replace("_", "-")
        return (f"aiw-{name}",) if self.provider is None else (f"aiw-{name}", f"aiw-{self.section}-{name}")

    @property
    def css_class(self) -> str:
        """The one class that names this input alone on the page (``aiw-language-endpoint-url``)."""
        return self.css_classes[-1]


def _deployment_fields(role: str) -> tuple[FormField, ...]:
    prefix = f"{role}_model."
    entra = f"{prefix}entra_id."
    azure = Provider.AZURE_OPENAI
    return (
        FormField(azure, prefix + "endpoint_url", "text", "https://<resource>.openai.azure.com"),
        FormField(azure, prefix + "deployment_id", "text", "the deployment's name"),
        FormField(azure, prefix + "authentication", "radio", options=tuple(AUTHENTICATION_LABELS.items())),
        FormField(azure, prefix + "api_key", "key", "KEY 1 from Keys and Endpoint"),
        # Microsoft Entra ID (keyless): shown instead of the API Key when chosen under Authentication.
        FormField(
            azure, entra + "method", "radio", options=tuple(ENTRA_METHOD_LABELS.items()), css_name="entra-method"
        ),
        FormField(azure, entra + "tenant_id", "text", "Directory (tenant) ID"),
        FormField(azure, entra + "client_id", "text", "Application (client) ID"),
        FormField(azure, entra + "client_secret", "key", "the client secret's Value"),
        FormField(azure, entra + "authority_host", "text", DEFAULT_AUTHORITY_HOST),
    )


#: Every input of the form, in page order.
FORM_FIELDS: tuple[FormField, ...] = (
    FormField(None, "provider", "choice"),
    FormField(Provider.OPENAI, "api_key", "key", "sk-…"),
    FormField(Provider.OPENAI, "base_url", "text", DEFAULT_OPENAI_BASE_URL),
    FormField(Provider.OPENAI, "organization", "text", "org-…"),
    FormField(Provider.OPENAI, "project", "text", "proj_…"),
    *(spec for role in ROLES for spec in _deployment_fields(role)),
    FormField(Provider.AZURE_OPENAI, "api_version", "text", DEFAULT_AZURE_API_VERSION),
)

#: The inputs by path (every path is unique across both providers).
INPUTS: dict[str, FormField] = {spec.path: spec for spec in FORM_FIELDS if spec.kind != "choice"}
#: With "Use the same endpoint URL and API key", these are left out and take the language model's
#: (the endpoint, and how it authenticates: API key, or the same Microsoft Entra ID sign-in).
_SHARED = {
    path: "language_model." + path.partition(".")[2]
    for path in INPUTS
    if path.startswith("embeddings_model.") and not path.endswith(".deployment_id")
}
# What a field that is empty or wrong stands in for while another field is tidied (never saved or shown).
_STAND_INS: dict[str, Any] = {
    "api_key": "sk-aiw-tidy-0000000000000000000000000000",
    "base_url": DEFAULT_OPENAI_BASE_URL,
    "endpoint_url": "https://aiw-tidy.openai.azure.com",
    "deployment_id": "aiw-tidy",
    "api_version": DEFAULT_AZURE_API_VERSION,
    "organization": None,
    "project": None,
    "tenant_id": "00000000-0000-0000-0000-000000000000",
    "client_id": "00000000-0000-0000-0000-000000000000",
    "authority_host": DEFAULT_AUTHORITY_HOST,
}
_AZURE_STAND_IN_KEY = "0" * 32
#: What every text stand-in holds, so that a message naming one is never shown.
_STAND_IN_MARK = "aiw-tidy"
_CANNOT_TIDY = "This value cannot be used as it is: correct it, or paste it again from the portal."


def _value_at(source: Any, path: str) -> Any:
    for part in path.split("."):
        source = getattr(source, part, None)
    return source


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


@dataclass(frozen=True)
class Line:
    """One line of a model's result or of the message under the fields: its text and its tone."""

    text: str
    tone: str = "plain"
    alert: bool = False


class IntegrationForm:
    """What the "Add/Edit OpenAI Integration" dialog holds: the values typed, the keys typed, errors and notices.

    Attributes:
        provider: the provider chosen.
        same_endpoint: "Use the same endpoint URL and API key for both models" (Azure OpenAI).
        values: each text field's text and each radio's choice by model path (see :data:`FORM_FIELDS`); never a key.
        errors / notices: what is said beside each field, by model path.
        message: the lines under the fields (progress, or an error not tied to one field).
        results: each model's outcome lines, by ``"openai"``, ``"language"`` or ``"embeddings"``.
        busy: True while a Save authenticates (Save and the provider are disabled; a second
            Save or Enter is ignored).
        editing: True for Edit, False for Add.
    """

    def __init__(self) -> None:
        self._saved: SavedFields | None = None
        self._keys: dict[str, SecretStr] = {}
        self._hints: dict[str, str] = {}
        self.provider = Provider.OPENAI
        self.same_endpoint = False
        self.values: dict[str, str] = {path: "" for path, spec in INPUTS.items() if spec.kind in ("text", "radio")}
        self.errors: dict[str, str] = {}
        self.notices: dict[str, list[Notice]] = {}
        self.message: list[Line] = []
        self.results: dict[str, list[Line]] = {}
        self.busy = False
        self.editing = False

    def __repr__(self) -> str:
        return f"IntegrationForm(provider={self.provider.value!r}, keys_typed={sorted(self._keys)})"

    # -- state ------------------------------------------------------------------ #

    @property
    def shared(self) -> bool:
        """True when Azure OpenAI is chosen with the same endpoint URL and key for both models."""
        return self.provider is Provider.AZURE_OPENAI and self.same_endpoint

    @property
    def keeps_saved_keys(self) -> bool:
        """True when an empty API Key means the saved one: on Edit, with the saved integration's provider chosen."""
        return self._saved is not None and self._saved.provider is self.provider

    def keeps_saved_key(self, path: str) -> bool:
        """True when the key field ``path`` left empty means the saved key (or client secret): on Edit, with the
        saved provider chosen, and a secret saved for that slot (none for an API Key where Entra ID was saved)."""
        if not self.keeps_saved_keys or self._saved is None:
            return False
        if isinstance(self._saved, AzureOpenAIFields):
            return path in self._saved.secret_slots()
        return path == "api_key"

    def choice(self, path: str) -> str:
        """What the radio ``path`` holds (routed: with the shared option, the language model's); its default if unset."""
        path = self._route(path)
        options = dict(INPUTS[path].options)
        value = self.values.get(path, "")
        return value if value in options else INPUTS[path].options[0][0]

    def applies(self, path: str) -> bool:
        """Whether the input ``path`` takes part, given Authentication and Sign in as: API Key only for an API
        key; the Microsoft Entra ID fields only for it (Tenant ID, Client secret and Authority host only for a
        service principal)."""
        head, _, rest = path.partition(".")
        if INPUTS[path].provider is not Provider.AZURE_OPENAI or rest in ("", "endpoint_url", "deployment_id"):
            return True
        if rest == "authentication":
            return True
        authentication = self.choice(f"{head}.authentication")
        if rest == "api_key":
            return authentication == "api_key"
        if authentication != "entra_id":
            return False
        if rest in ("entra_id.method", "entra_id.client_id"):
            return True
        return self.choice(f"{head}.entra_id.method") == "service_principal"

    def shown(self) -> list[FormField]:
        """The inputs the dialog shows now, in page order (the chosen provider's; shared ones left out)."""
        return [
            spec
            for spec in INPUTS.values()
            if spec.provider is self.provider and not (self.shared and spec.path in _SHARED) and self.applies(spec.path)
        ]

    def _beside(self, path: str) -> bool:
        """Whether a message about ``path`` can be shown beside its field (a text or key field shown now)."""
        spec = INPUTS.get(self._route(path))
        return spec is not None and spec.kind in ("text", "key") and spec in self.shown()

    def _route(self, path: str) -> str:
        """Where a field path is shown: with the shared option, the embeddings endpoint and key show on the language model's."""
        return _SHARED.get(path, path) if self.shared else path

    def key(self, path: str) -> str:
        """The key typed in the key field ``path`` so far (``""``: none). Kept in the kernel only."""
        typed = self._keys.get(path)
        return typed.get_secret_value() if typed is not None else ""

    def typed_keys(self) -> dict[str, str]:
        """The key fields holding text, with their text (for :func:`~ai_admin_widgets.widgets.view.text_lines`)."""
        return {path: secret.get_secret_value() for path, secret in self._keys.items()}

    def set_key(self, path: str, text: str) -> None:
        """Hold ``text`` as what is typed in the key field ``path`` (empty: nothing)."""
        if path not in INPUTS or INPUTS[path].kind != "key":
            return
        if text:
            self._keys[path] = SecretStr(text)
        else:
            self._keys.pop(path, None)

    def update(self, values: Any, keys: Any = None) -> None:
        """Take the texts the front end sent (``values`` and ``keys`` by path); anything not text is ignored."""
        if isinstance(values, dict):
            for path, value in values.items():
                if path == "provider" and value in (Provider.OPENAI.value, Provider.AZURE_OPENAI.value):
                    if Provider(value) is not self.provider:
                        self.choose(Provider(value))
                elif path == "same_endpoint" and isinstance(value, bool):
                    self.same_endpoint = value
                elif path in self.values and isinstance(value, str):
                    if INPUTS[path].kind == "radio" and value not in dict(INPUTS[path].options):
                        continue
                    self.values[path] = value
        if isinstance(keys, dict):
            for path, value in keys.items():
                if isinstance(path, str) and isinstance(value, str):
                    self.set_key(path, value)

    def set_choice(self, path: Any, value: Any) -> bool:
        """Choose ``value`` in the radio ``path`` (Authentication, Sign in as); False when it offers no such value."""
        spec = INPUTS.get(path) if isinstance(path, str) else None
        if spec is None or spec.kind != "radio" or value not in dict(spec.options):
            return False
        self.values[path] = value
        return True

    def choose(self, provider: Provider) -> None:
        """Switch the provider: the old provider's errors, results and message go."""
        self.provider = provider
        self.message = []
        self.errors = {}
        self.clear_results()

    def reset(
        self,
        saved: SavedFields | None,
        *,
        openai_base_url: str = DEFAULT_OPENAI_BASE_URL,
        key_hints: dict[str, str] | None = None,
    ) -> None:
        """Fill the form from the saved fields (never a key), or for Add; clears every error, result and key.

        Args:
            saved: the saved integration's fields, or None for Add. Fields the form does not
                show (the OpenAI model ids) are kept as saved.
            openai_base_url: the Base URL to offer when OpenAI is not what is saved.
            key_hints: the saved secrets' hints by role (``{"language": "…abcd"}``, the status's
                ``key_hint``), said in a Client secret's placeholder where it can be kept.
        """
        self._saved = saved
        self._hints = dict(key_hints or {})
        self.editing = saved is not None
        self.errors, self.notices, self.message = {}, {}, []
        self.clear_results()
        self.clear_keys()
        self.busy = False
        self.provider = saved.provider if saved is not None else Provider.OPENAI
        # What each provider's fields start from: the saved fields, else (for Add) the defaults.
        starts: dict[Provider | None, SavedFields | None] = {
            Provider.OPENAI: OpenAIFields(base_url=openai_base_url),
            Provider.AZURE_OPENAI: None,
        }
        if saved is not None:
            starts[saved.provider] = saved
        for path in self.values:
            self.values[path] = self._initial(INPUTS[path], starts[INPUTS[path].provider])
        self.same_endpoint = isinstance(saved, AzureOpenAIFields) and saved.uses_shared_endpoint

    @staticmethod
    def _initial(spec: FormField, start: SavedFields | None) -> str:
        """What a field shows when the form opens: the saved value, else the model's default, else nothing
        (a deployment saved with an API key offers the Microsoft Entra ID fields' defaults)."""
        value = _value_at(start, spec.path) if start is not None else None
        if not isinstance(value, str):
            value = spec.model_field.default
        return value if isinstance(value, str) else ""

    def keys_to_type_again(self) -> str:
        """The key fields shown, in words (``"the API Key"``, ``"the Client secret"``, ``"the API Key and the
        Client secret"``), for "type … again" after a refused Save; ``""`` when none is shown (a managed identity)."""
        labels = list(dict.fromkeys(f"the {spec.label}" for spec in self.shown() if spec.kind == "key"))
        return " and ".join(labels)

    def first(self, errors_only: bool = False) -> str:
        """The CSS class of the first shown field (with ``errors_only``, the first one marked with an error); "" if none."""
        for spec in self.shown():
            if not errors_only or self.errors.get(spec.path):
                return spec.css_class
        return ""

    def clear_keys(self) -> None:
        """Forget every typed key, and empty any other field that holds something shaped like a key
        anywhere in its text (pasted in the wrong place), so no key stays in the kernel or the state."""
        self._keys.clear()
        self.clear_keys_in_the_wrong_place()

    def clear_keys_in_the_wrong_place(self) -> None:
        """Empty the fields other than API Key that hold something shaped like a key (their error says so)."""
        for path, value in self.values.items():
            if holds_key(value):
                self.values[path] = ""

    def clear_fields(self) -> None:
        """Empty every field and forget every key (the dialog closes): nothing typed and not saved stays."""
        self._keys.clear()
        for path in self.values:
            self.values[path] = ""
        self.errors, self.notices, self.message = {}, {}, []
        self.clear_results()

    def show_errors(self, errors: dict[str, str]) -> None:
        """Show each message beside its field (by dotted path); fields not named are cleared."""
        routed: dict[str, str] = {}
        for path, message in errors.items():
            routed.setdefault(self._route(path), message)
        self.errors = routed

    def show_notices(self, notices: tuple[Notice, ...] | list[Notice]) -> None:
        """Show what normalizing changed, and what to check, beside each field."""
        routed: dict[str, list[Notice]] = {}
        for notice in notices:
            shown = routed.setdefault(self._route(notice.field), [])
            if all(notice.message != other.message for other in shown):
                shown.append(notice)
        self.notices = routed

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Show a line under the fields (progress, or an error not tied to one field); ``""`` clears it."""
        self.message = [Line(text, "error" if error else "busy" if self.busy else "plain", alert=error)] if text else []

    def _result_key(self, role: str) -> str:
        return "openai" if self.provider is Provider.OPENAI else role

    def show_progress(self, provider: Provider) -> None:
        """Say, beside each model, that it is being checked."""
        self.clear_results()
        for role in ROLES:
            self.results.setdefault(self._result_key(role), []).append(
                Line(f"… Checking the {ROLE_LABELS[role].lower()}", "busy")
            )

    def show_check(self, check: ModelCheck) -> None:
        """Show one model's outcome beside it (and a failure's message beside its field)."""
        where = self._result_key(check.role)
        label = ROLE_LABELS[check.role]
        lines: list[Line]
        if check.ok:
            lines = [Line(f"✓ {check.message}", "success")]
            if check.warning:
                lines.append(Line(f"⚠ {check.warning}", "warning"))
        elif check.field and self._beside(check.field):  # the message sits beside its field
            lines = [Line(f"✗ {label}: not authenticated (see the field marked above).", "error")]
        else:
            lines = [Line(f"✗ {check.message}", "error", alert=True)]
        if where == "openai":  # both models' lines share one place: replace this model's
            kept = [line for line in self.results.get(where, []) if label.lower() not in line.text.lower()]
            self.results[where] = kept + lines
        else:
            self.results[where] = lines
        if not check.ok and check.field:
            path = self._route(check.field)
            if self._beside(path):
                self.errors.setdefault(path, check.message)  # two models failing on one shared field: the first stays

    def show_report(self, report: VerificationReport) -> None:
        """Show each model's outcome beside its model, and each failure beside its field."""
        self.clear_results()
        self.errors = {}
        for check in report.checks:
            self.show_check(check)

    def clear_results(self) -> None:
        """Empty the per-model results (progress, ✓ and ✗ lines) beside each model."""
        self.results = {}

    def set_busy(self, busy: bool) -> None:
        """Disable Save while authentication runs (Cancel stays usable); a Save pressed meanwhile is ignored."""
        self.busy = busy

    def show_field_error(self, path: str, message: str) -> None:
        """Mark one field (by dotted path) with ``message`` and say so under the fields."""
        self.show_notices(())
        self.show_errors({path: message})
        self.show_message(CORRECT_FIELDS, error=True)

    # -- reading the fields --------------------------------------------------------- #

    def _data(self, stand_ins: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The chosen provider's fields as model input; the paths in ``stand_ins`` hold stand-in values."""
        provider = self.provider
        data: dict[str, Any] = {}
        for path, spec in INPUTS.items():
            if spec.provider is not provider or not self.applies(path) or spec.name == "authentication":
                continue  # Authentication is which of api_key and entra_id is given
            value: Any
            if spec.kind == "radio":
                value = self.choice(path)
            elif path in stand_ins:
                value = _STAND_INS.get(spec.name)
                if spec.kind == "key" and provider is Provider.AZURE_OPENAI:
                    value = _AZURE_STAND_IN_KEY
                if value is None:
                    continue
            elif spec.kind == "key":
                value = self._keys.get(path) or (KEEP_SAVED_KEY if self.keeps_saved_key(path) else "")
            else:
                value = self.values[path].strip()
                if not value and not spec.required:
                    continue  # the model's default (None for the optional ids)
            _put(data, path, value)
        if self.keeps_saved_keys and self._saved is not None:  # fields the form does not show stay as saved
            shown = {spec.path.partition(".")[0] for spec in FORM_FIELDS if spec.provider in (provider, None)}
            for name, value in self._saved.model_dump(mode="json").items():
                if name not in shown:
                    data[name] = value
        return data

    def _integration(self, data: dict[str, Any]) -> Integration:
        if self.provider is Provider.OPENAI:
            return OpenAIIntegration(**data)
        if self.same_endpoint:
            language = data["language_model"]
            return AzureOpenAIIntegration.shared(
                endpoint_url=language["endpoint_url"],
                api_key=language.get("api_key"),
                entra_id=language.get("entra_id"),
                language_deployment_id=language["deployment_id"],
                embeddings_deployment_id=data["embeddings_model"]["deployment_id"],
                api_version=data.get("api_version"),
            )
        return AzureOpenAIIntegration(**data)

    def build(self) -> Integration:
        """The integration the fields describe, normalized; an empty API Key on Edit is :data:`KEEP_SAVED_KEY`.

        Raises:
            pydantic.ValidationError: a field breaks its rule.
        """
        return self._integration(self._data())

    def show_normalized(self, integration: Integration) -> None:
        """Put the normalized values back into the fields, so every change is visible, with its notice.

        What was tidied when a field was left is said still (Save then finds nothing left to change).
        """
        for path, spec in INPUTS.items():
            if spec.provider is integration.provider and spec.kind == "text" and self.applies(path):
                value = _value_at(integration, path)
                self.values[path] = value if isinstance(value, str) else ""
        self.show_notices([*self.all_notices(), *integration.notices])

    def all_notices(self) -> list[Notice]:
        """Every notice shown beside a field of the chosen provider, in page order."""
        return [notice for spec in self.shown() for notice in self.notices.get(spec.path, [])]

    def check(self) -> Integration | None:
        """Save's first step: the integration, or None with each field's error shown (keys in wrong places emptied)."""
        self.show_message("")
        self.clear_results()
        try:
            integration = self.build()
        except ValidationError as error:
            errors = field_errors(error)
            self.show_errors(errors)
            self.clear_keys_in_the_wrong_place()
            # An error no field shows (about a choice, or the whole model) is said under the fields.
            elsewhere = list(dict.fromkeys(message for path, message in errors.items() if not self._beside(path)))
            self.message = [Line(CORRECT_FIELDS, "error", alert=True)] if len(elsewhere) < len(errors) else []
            self.message += [Line(message, "error", alert=True) for message in elsewhere]
            return None
        self.show_errors({})
        self.show_normalized(integration)
        return integration

    # -- tidy as the admin types -------------------------------------------------- #

    def blur(self, path: str, value: str) -> str | None:
        """Field ``path`` lost focus holding ``value``: tidy it as Save would, and say each change beside its field.

        The models' own normalizers run (a pasted target URI fills the Deployment ID and the API
        version, ``Bearer `` and quotes leave a key, ``https://`` is added to a host); the other
        fields stand in where they are empty or wrong, so only what this field holds is judged.

        Returns:
            For a key field whose text was tidied, the tidied key (to send back to its input); else None.
        """
        spec = INPUTS.get(path)
        if spec is None or spec.provider is not self.provider or spec.kind == "radio":
            return None
        if spec.kind == "key":
            self.set_key(path, value)
        else:
            self.values[path] = value
        own = {path, self._route(path)}
        if not value.strip():  # nothing typed yet: nothing to tidy, and no "is empty" while moving on
            for each in own:
                self.errors.pop(each, None)
                self.notices.pop(each, None)
            return None
        # Empty keys stand in at once (a key is never filled from another field); other fields found wrong, below.
        stand_ins: set[str] = {
            other
            for other, other_spec in INPUTS.items()
            if other_spec.provider is self.provider
            and other_spec.kind == "key"
            and other not in own
            and not self._keys.get(other)
            and not self.keeps_saved_key(other)
        }
        integration: Integration | None = None
        first: dict[str, str] = {}  # what the first round found, before any stand-in could be named
        for _attempt in range(4):  # each round stands in for the other fields found wrong
            try:
                integration = self._integration(self._data(frozenset(stand_ins)))
                break
            except ValidationError as error:
                problems = {self._route(where): message for where, message in field_errors(error).items()}
                first = first or problems
                mine = next((problems[each] for each in own if each in problems), None)
                if mine is not None or not set(problems) - stand_ins - own:
                    said = mine or next(iter(problems.values()))
                    if _STAND_IN_MARK in said:  # a stand-in is no value of the admin's: say what was wrong first
                        said = next((m for m in first.values() if _STAND_IN_MARK not in m), _CANNOT_TIDY)
                    self.errors[self._route(path)] = said
                    self.notices.pop(self._route(path), None)
                    if spec.kind != "key" and holds_key(value):
                        self.values[path] = ""
                    return None
                stand_ins |= set(problems)
                stand_ins |= {where for where in problems if where in _SHARED.values()} | {
                    other for other, shown in _SHARED.items() if shown in problems
                }
        if integration is None:
            return None
        tidied_key: str | None = None
        changed: set[str] = set(own)
        for other, other_spec in INPUTS.items():
            if (
                other_spec.provider is not self.provider
                or other_spec.kind == "radio"
                or not self.applies(other)
                or other in stand_ins
                or self._route(other) != other
            ):
                continue
            now = _value_at(integration, other)
            if other_spec.kind == "key":
                if other in own and isinstance(now, SecretStr) and now.get_secret_value() != value:
                    tidied_key = now.get_secret_value()
                    self.set_key(path, tidied_key)
            elif isinstance(now, str) and now != self.values[other].strip():
                self.values[other] = now
                changed.add(other)
            elif other in own and isinstance(now, str):
                self.values[other] = now
        notices: dict[str, list[Notice]] = {}
        for notice in integration.notices:
            where = self._route(notice.field)
            if where in stand_ins or where not in INPUTS:
                continue
            shown = notices.setdefault(where, [])
            if all(notice.message != other.message for other in shown):
                shown.append(notice)
        for each in changed | set(notices) | own:
            where = self._route(each)
            self.errors.pop(where, None)
            if notices.get(where):
                self.notices[where] = notices[where]
            else:
                self.notices.pop(where, None)
        return tidied_key

    # -- the dialog's nodes ------------------------------------------------------ #

    def _field(self, spec: FormField) -> view.Node:
        if spec.kind == "radio":  # the choice, and what it means under it
            return view.box(
                f"{spec.path}-choice",
                view.radio(
                    spec.path,
                    spec.label,
                    spec.options,
                    self.choice(spec.path),
                    event="form.choice",
                    cls=" ".join(spec.css_classes),
                    disabled=self.busy,
                ),
                view.text(f"{spec.path}-help", spec.help, tone="help", cls="aiw-choice-help"),
                cls="aiw-choice",
            )
        placeholder = spec.placeholder
        if spec.kind == "key" and self.keeps_saved_key(spec.path):  # offered only where the saved key can be kept
            if spec.name == "client_secret":
                hint = self._hints.get(spec.section, "")
                placeholder = KEEP_SECRET_PLACEHOLDER.format(hint=f" ({hint})" if hint else "")
            else:
                placeholder = KEEP_KEY_PLACEHOLDER
        optional = spec.optional and spec.kind != "key"  # a key shown is needed (API Key: None means Entra ID)
        if ".entra_id." in spec.path:  # only a managed identity's Client ID may stay empty
            optional = spec.name == "client_id" and self.choice(spec.path.replace("client_id", "method")) == (
                "managed_identity"
            )
        notices = self.notices.get(spec.path, [])
        return view.field(
            spec.path,
            spec.label,
            cls=" ".join(spec.css_classes),
            input="key" if spec.kind == "key" else "text",
            value=self.values.get(spec.path, ""),
            placeholder=placeholder,
            help=spec.help,
            error=self.errors.get(spec.path, ""),
            notice="\n".join(("⚠ " if notice.level == "warning" else "ℹ ") + notice.message for notice in notices),
            optional=optional,
            disabled=False,
            suggestions=API_VERSION_SUGGESTIONS if spec.name == "api_version" else (),
        )

    def _result(self, where: str) -> view.Node:
        lines = self.results.get(where, [])
        tone = next((line.tone for line in lines if line.tone == "error"), lines[-1].tone if lines else "plain")
        return view.text(
            f"{where}-result",
            "\n".join(line.text for line in lines),
            tone=tone,
            alert=any(line.alert for line in lines),
            cls=f"aiw-model-result aiw-{where}-result",
        )

    def node(self, *, focus: str = "") -> view.Node:
        """The dialog: provider, the chosen provider's fields, each model's result, the message, Save and Cancel.

        Args:
            focus: the CSS class of the input that gets the keyboard when the dialog opens
                (default: the first field).
        """
        shown = {spec.path for spec in self.shown()}
        fields = {path: self._field(spec) for path, spec in INPUTS.items() if path in shown}
        provider_spec = FORM_FIELDS[0]
        children: list[view.Node | None] = [
            view.radio(
                "provider",
                provider_spec.label,
                [(value.value, label) for label, value in PROVIDER_OPTIONS],
                self.provider.value,
                event="form.provider",
                cls=" ".join(provider_spec.css_classes),
                disabled=self.busy,
            )
        ]
        if self.provider is Provider.OPENAI:
            children.append(
                view.box(
                    "openai",
                    *(node for path, node in fields.items() if INPUTS[path].section == "openai"),
                    self._result("openai"),
                    cls="aiw-openai-section",
                )
            )
        else:
            models = []
            for role in ROLES:
                model_field = AzureOpenAIIntegration.model_fields[f"{role}_model"]
                title = model_field.title or ROLE_LABELS[role]
                models.append(
                    view.box(
                        role,
                        view.heading(f"{role}-title", title, level=5),
                        view.text(f"{role}-help", model_field.description or "", tone="help"),
                        *(node for path, node in fields.items() if INPUTS[path].section == role),
                        self._result(role),
                        cls=f"aiw-model aiw-{role}-model",
                        role="group",
                        label=title,  # two of each label in the dialog: the group says which model
                    )
                )
            children.append(
                view.box(
                    "azure",
                    models[0],
                    view.checkbox(
                        "same_endpoint",
                        SAME_ENDPOINT_LABEL,
                        self.same_endpoint,
                        event="form.same_endpoint",
                        cls="aiw-same-endpoint",
                    ),
                    models[1],
                    *(node for path, node in fields.items() if INPUTS[path].section == "azure"),
                    cls="aiw-azure-section",
                )
            )
        children.append(
            view.text(
                "message",
                "\n".join(line.text for line in self.message),
                tone=self.message[0].tone if self.message else "plain",
                alert=any(line.alert for line in self.message),
                cls="aiw-message",
            )
        )
        children.append(
            view.box(
                "buttons",
                view.button(
                    "Authenticating…" if self.busy else "Save",
                    "form.save",
                    cls="aiw-save",
                    tone="primary",
                    disabled=self.busy,
                    keys=True,
                ),
                view.button("Cancel", "form.cancel", cls="aiw-cancel"),
                cls="aiw-buttons",
            )
        )
        return view.dialog(
            "form",
            f"{'Edit' if self.editing else 'Add'} OpenAI Integration",
            *children,
            cancel_event="form.cancel",
            submit_event="form.save",
            focus=focus or self.first(),
            busy=self.busy,
            cls="aiw-form",
        )
