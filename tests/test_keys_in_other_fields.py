"""A key pasted into any field but API Key is refused without ever being repeated: not in a message, a field
error, a notice, settings.json or the audit log."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import ai_admin_widgets as aiw

#: One key of each shape the tool recognizes: OpenAI (classic and project), Azure (32 hex, 84 characters).
KEYS = {
    "openai": "sk-" + "Q7x" * 16,
    "openai-project": "sk-proj-" + "Zk9" * 20,
    "azure-hex": "8f3a" * 8,
    "azure-84": "Ab3" * 28,
    "sandbox-azure": "sandbox-azure-" + "5e" * 16,
}


def _text_of(outcome: object) -> str:
    """Everything an admin could be shown of an outcome: its text, its repr, field errors and notices."""
    if isinstance(outcome, ValidationError):
        return f"{outcome} {aiw.field_errors(outcome)}"
    if isinstance(outcome, Exception):
        return f"{outcome} {outcome!r}"
    notices = getattr(outcome, "notices", ())
    public = outcome.public_fields() if hasattr(outcome, "public_fields") else ""
    return f"{outcome!r} {public} {[notice.message for notice in notices]}"


def _attempt(build) -> object:
    try:
        return build()
    except (ValidationError, ValueError, aiw.AIAdminError) as error:
        return error


def _integrations(sandbox, key):
    endpoint = sandbox.azure_endpoint
    azure_key = sandbox.azure_api_key

    def azure(endpoint_url=endpoint, deployment="chat-gpt-4o", api_version=None):
        options = {} if api_version is None else {"api_version": api_version}
        return aiw.AzureOpenAIIntegration.shared(
            endpoint_url=endpoint_url,
            api_key=azure_key,
            language_deployment_id=deployment,
            embeddings_deployment_id="embeddings-3-small",
            **options,
        )

    def openai(**fields):
        return aiw.OpenAIIntegration(
            **({"api_key": sandbox.openai_api_key, "base_url": sandbox.openai_base_url} | fields)
        )

    return {
        "base URL path": lambda: openai(base_url=f"{sandbox.openai_base_url}/{key}"),
        "base URL host": lambda: openai(base_url=f"https://{key}.example.com/v1"),
        "base URL query": lambda: openai(base_url=f"{sandbox.openai_base_url}?api-key={key}"),
        "organization": lambda: openai(organization=key),
        "project": lambda: openai(project=key),
        "language model id": lambda: openai(language_model=key),
        "endpoint path": lambda: azure(endpoint_url=f"{endpoint}/{key}"),
        "endpoint host": lambda: azure(endpoint_url=f"https://{key}.openai.azure.com"),
        "endpoint query": lambda: azure(endpoint_url=f"{endpoint}?api-key={key}"),
        "target URI deployment": lambda: azure(
            endpoint_url=f"{endpoint}/openai/deployments/{key}/chat/completions?api-version=2024-10-21",
            deployment="other",
        ),
        "deployment ID": lambda: azure(deployment=key),
        "api-version": lambda: azure(api_version=key),
    }


@pytest.mark.parametrize("shape", sorted(KEYS))
def test_a_key_in_an_integration_field_is_refused_and_never_repeated(sandbox, settings, shape):
    key = KEYS[shape]
    for where, build in _integrations(sandbox, key).items():
        outcome = _attempt(build)
        assert isinstance(outcome, ValidationError), f"{where}: accepted"
        assert key not in _text_of(outcome), f"{where}: repeated the key"
        assert key[:12] not in _text_of(outcome), f"{where}: repeated part of the key"
    for path in settings.home.glob("*") if settings.home.exists() else ():
        assert key not in path.read_text(encoding="utf-8", errors="replace")


@pytest.mark.parametrize("shape", sorted(KEYS))
def test_a_key_as_a_user_group_or_admin_name_is_refused_and_never_repeated(sandbox, settings, shape):
    key = KEYS[shape]
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    for where, build in {
        "allowed users": lambda: settings.set_allowed(users=f"alice, {key}"),
        "allowed groups": lambda: settings.set_allowed(groups=key),
        "new admin": lambda: settings.add_admin(key),
        "admin to remove": lambda: settings.remove_admin(key),
    }.items():
        outcome = _attempt(build)
        assert isinstance(outcome, ValueError), f"{where}: accepted"
        assert key not in _text_of(outcome) and key[:12] not in _text_of(outcome), f"{where}: repeated the key"
    stored = "".join(path.read_text(encoding="utf-8") for path in settings.home.glob("*.json*"))
    assert stored and key not in stored and key[:12] not in stored
