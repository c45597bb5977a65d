"""The AI Settings panel, driven as the front end drives it (its events), asserting what the admin sees."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
import uuid
from datetime import timedelta

import ipywidgets as widgets
import pytest
from records import CountingSettings, age_last_authentication

import ai_admin_widgets as aiw
from ai_admin_widgets.access import AccessPolicy
from ai_admin_widgets.store import SettingsStore
from ai_admin_widgets.widgets import view
from ai_admin_widgets.widgets.form import FORM_FIELDS, INPUTS


@pytest.fixture
def panel(sandbox):
    settings = sandbox.settings()
    shown = settings.panel()
    yield shown
    shown.close()


def node(panel, css_class):
    """The single node carrying css_class."""
    found = panel.nodes(css_class)
    assert len(found) == 1, f"expected one .{css_class}, found {len(found)}"
    return found[0]


def shown(panel, css_class):
    return bool(panel.nodes(css_class))


def text(panel, css_class):
    return panel.text_of(css_class)


def value(panel, css_class):
    return node(panel, css_class)["value"]


def error(panel, css_class):
    return node(panel, css_class)["error"]


def notice(panel, css_class):
    return node(panel, css_class)["notice"]


def needs_region(panel, prefix):
    if not any(region.prefix == prefix for region in panel.regions):
        pytest.skip(f"the {prefix} region is not on the page on this branch (the regions' Region classes)")


def fill_openai(panel, key):
    panel.choose("aiw-provider", "openai")
    panel.type("aiw-openai-api-key", key)


def fill_azure_shared(panel, sandbox, key=None, language=None, embeddings=None):
    panel.choose("aiw-provider", "azure_openai")
    panel.check("aiw-same-endpoint", True)
    panel.type("aiw-language-endpoint-url", sandbox.azure_endpoint)
    panel.type("aiw-language-deployment-id", language or sandbox.azure_deployments["language"])
    panel.type("aiw-language-api-key", key or sandbox.azure_api_key.get_secret_value())
    panel.type("aiw-embeddings-deployment-id", embeddings or sandbox.azure_deployments["embeddings"])


def new_key():
    """An OpenAI-shaped key of random capital letters, which no id or number in the state is made of."""
    return "sk-" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(48))


def pieces(secret, size=5):
    return {secret[start : start + size] for start in range(len(secret) - size + 1)}


def assert_nowhere(panel, secret):
    """No 5 characters of ``secret`` in a row are in the panel's state, its widget state or the manager's."""
    model_ids = re.compile(r"[0-9a-f]{32}|" + re.escape(panel.state["instance"]))  # widget ids, not keys
    for where, raw in (
        ("state", json.dumps(panel.state)),
        ("get_state", json.dumps({name: v for name, v in panel.get_state().items() if name not in ("_esm", "_css")})),
        ("manager state", json.dumps(widgets.Widget.get_manager_state(drop_defaults=False), default=str)),
        ("repr", repr(panel) + repr(panel.form)),
    ):
        shown_text = model_ids.sub("", raw)
        found = [piece for piece in pieces(secret) if piece in shown_text]
        assert not found, f"the {where} holds {len(found)} pieces of the key"


def test_empty_panel_shows_add_only(panel):
    shown_text = panel.visible_text()
    assert "AI Settings" in shown_text
    assert "Not configured. AI functionality is disabled." in shown_text
    assert shown(panel, "aiw-add") and not shown(panel, "aiw-edit") and not shown(panel, "aiw-remove")
    assert not shown(panel, "aiw-save")


def test_the_state_is_one_tree_of_nodes_in_page_order(panel):
    assert set(panel.state) == {"root", "revision", "instance"}
    root = panel.state["root"]
    assert root["kind"] == "box" and "aiw-panel" in root["cls"]
    order = [child["cls"].split()[0] for child in root["children"]]
    assert order[0] == "aiw-title" and order[1] == "aiw-row" and order[-1] == "aiw-footer"
    assert not shown(panel, "aiw-form") and not shown(panel, "aiw-confirmation")
    before = panel.state["revision"]
    panel.render()
    assert panel.state["revision"] == before, "a render that changes nothing sends no new state"
    panel.press("aiw-add")
    assert panel.state["revision"] > before
    other = panel.settings.panel()
    try:
        assert other.state["instance"] != panel.state["instance"]
    finally:
        other.close()


def test_add_openai_flips_the_row_to_edit_and_remove(panel, sandbox):
    panel.press("aiw-add")
    assert "Add OpenAI Integration" in panel.visible_text()
    assert node(panel, "aiw-form")["kind"] == "dialog"
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.press("aiw-save")

    shown_text = panel.visible_text()
    assert "OpenAI · gpt-4o · text-embedding-3-small" in shown_text
    assert "Edit OpenAI Integration" not in shown_text and "Add OpenAI Integration" not in shown_text
    assert shown(panel, "aiw-edit") and shown(panel, "aiw-remove") and not shown(panel, "aiw-add")
    assert panel.settings.status().provider is aiw.Provider.OPENAI


def test_a_button_not_offered_cannot_be_pressed(panel):
    with pytest.raises(LookupError, match="aiw-edit"):
        panel.press("aiw-edit")


def test_wrong_key_shows_the_error_beside_the_key_and_saves_nothing(panel):
    panel.press("aiw-add")
    fill_openai(panel, "sk-wrong-" + uuid.uuid4().hex)
    panel.press("aiw-save")

    assert "rejected the API Key" in error(panel, "aiw-openai-api-key")
    assert "nothing was saved" in text(panel, "aiw-message")
    assert "Add OpenAI Integration" in panel.visible_text()  # the form stays open
    assert not panel.settings.status().configured


def test_invalid_fields_are_marked_before_any_request(panel, sandbox):
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    panel.type("aiw-language-endpoint-url", "http://example.com")
    panel.type("aiw-language-deployment-id", "x")
    panel.press("aiw-save")

    assert "use https://" in error(panel, "aiw-language-endpoint-url")
    assert "2 to 64 characters" in error(panel, "aiw-language-deployment-id")
    assert "API Key is empty" in error(panel, "aiw-language-api-key")
    assert sandbox.requests == []


def test_same_endpoint_option_hides_the_embeddings_endpoint_and_key(panel):
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    shown_text = panel.visible_text()
    assert shown_text.count("Endpoint URL:") == 2 and shown_text.count("API Key:") == 2
    panel.check("aiw-same-endpoint", True)
    shown_text = panel.visible_text()
    assert "[x] Use the same endpoint URL and API key for both models" in shown_text
    assert shown_text.count("Endpoint URL:") == 1 and shown_text.count("API Key:") == 1
    assert shown_text.count("Deployment ID:") == 2


def test_add_azure_with_shared_endpoint(panel, sandbox):
    panel.press("aiw-add")
    fill_azure_shared(panel, sandbox)
    panel.press("aiw-save")

    status = text(panel, "aiw-status")
    assert "Azure OpenAI" in status and "chat-gpt-4o" in status and "embeddings-3-small" in status
    status = panel.settings.status()
    assert status.provider is aiw.Provider.AZURE_OPENAI
    assert [model.model for model in status.models] == ["gpt-4o-2024-08-06", "text-embedding-3-small"]


def test_unknown_deployment_error_sits_beside_the_deployment_id(panel, sandbox):
    panel.press("aiw-add")
    fill_azure_shared(panel, sandbox, language="no-such-deployment")
    panel.press("aiw-save")

    assert "no deployment named 'no-such-deployment'" in error(panel, "aiw-language-deployment-id")
    assert error(panel, "aiw-embeddings-deployment-id") == ""
    assert "✓" in text(panel, "aiw-embeddings-result")
    assert not panel.settings.status().configured


def test_edit_prefills_the_saved_fields_but_never_a_key(panel, sandbox):
    panel.press("aiw-add")
    fill_azure_shared(panel, sandbox)
    panel.press("aiw-save")

    panel.press("aiw-edit")
    assert "Edit OpenAI Integration" in panel.visible_text()
    assert node(panel, "aiw-provider")["value"] == "azure_openai"
    assert value(panel, "aiw-same-endpoint") is True
    assert value(panel, "aiw-language-endpoint-url") == sandbox.azure_endpoint
    assert value(panel, "aiw-embeddings-deployment-id") == sandbox.azure_deployments["embeddings"]
    assert value(panel, "aiw-language-api-key") == "" and panel.form.key("language_model.api_key") == ""


def test_cancel_discards_what_was_typed(panel, sandbox):
    panel.press("aiw-add")
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.press("aiw-cancel")

    shown_text = panel.visible_text()
    assert "Edit OpenAI Integration" not in shown_text and "Add OpenAI Integration" not in shown_text
    assert panel.form.key("api_key") == ""
    assert not panel.settings.status().configured
    panel.press("aiw-add")
    assert panel.form.key("api_key") == "" and "•" not in text(panel, "aiw-openai-api-key")


def test_remove_asks_first_and_cancel_keeps_the_integration(panel, sandbox):
    panel.press("aiw-add")
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.press("aiw-save")

    panel.press("aiw-remove")
    shown_text = panel.visible_text()
    assert "Remove OpenAI Integration" in shown_text
    assert "AI functionality will be disabled for your organization." in shown_text
    assert node(panel, "aiw-confirmation")["kind"] == "dialog"
    panel.press("aiw-cancel")
    assert "Remove OpenAI Integration" not in panel.visible_text()
    assert panel.settings.status().configured

    panel.press("aiw-remove")
    panel.press("aiw-confirm-remove")
    assert not panel.settings.status().configured
    assert shown(panel, "aiw-add") and not shown(panel, "aiw-edit")


def test_panel_follows_changes_made_from_cells(panel, sandbox):
    settings = panel.settings
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    assert shown(panel, "aiw-edit")
    settings.remove()
    assert shown(panel, "aiw-add")


def test_keys_are_cleared_from_the_kernel_after_save(panel, sandbox):
    key = sandbox.openai_api_key.get_secret_value()
    panel.press("aiw-add")
    fill_openai(panel, key)
    panel.press("aiw-save")

    assert panel.form.typed_keys() == {}
    assert_nowhere(panel, key)


def test_the_state_never_holds_a_typed_key(panel, sandbox):
    """Typed and left (field.blur), and before Save: the key is in the kernel's private store only."""
    key = new_key()
    panel.press("aiw-add")
    panel.type("aiw-openai-api-key", key)
    assert panel.form.key("api_key") == key
    assert "••••••••" in text(panel, "aiw-openai-api-key")
    assert_nowhere(panel, key)
    panel.choose("aiw-provider", "azure_openai")
    panel.type("aiw-language-api-key", key)
    assert_nowhere(panel, key)
    panel.press("aiw-cancel")
    assert panel.form.typed_keys() == {}


def test_non_admin_sees_a_read_only_panel(sandbox):
    admin = sandbox.settings()
    admin.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    viewer = sandbox.settings(user="viewer", access=AccessPolicy(admin=False)).panel()
    shown_text = viewer.visible_text()
    assert "You must be assigned the Admin account type to configure the OpenAI integration." in shown_text
    assert "OpenAI · gpt-4o" in shown_text
    assert not shown(viewer, "aiw-edit") and not shown(viewer, "aiw-remove") and not shown(viewer, "aiw-add")
    viewer.close()


def test_every_interactive_element_has_its_css_class(panel, sandbox):
    found = set()

    def note():
        for each in view.walk(panel.state["root"]):
            found.update(each["cls"].split())

    note()
    panel.press("aiw-add")
    note()
    panel.choose("aiw-provider", "azure_openai")
    note()
    fill_azure_shared(panel, sandbox)
    panel.press("aiw-save")
    note()
    panel.press("aiw-remove")
    note()
    for css_class in (
        "aiw-add",
        "aiw-edit",
        "aiw-test",
        "aiw-remove",
        "aiw-provider",
        "aiw-api-key",
        "aiw-save",
        "aiw-cancel",
        "aiw-confirm-remove",
        "aiw-status",
        "aiw-endpoint-url",
        "aiw-deployment-id",
        "aiw-same-endpoint",
        "aiw-footer",
        "aiw-row",
        "aiw-form",
        "aiw-confirmation",
    ):
        assert css_class in found, css_class


def test_save_inside_a_running_event_loop_does_not_block_it(panel, sandbox):
    """In a kernel, Save runs on the event loop: the event returns at once and the row flips when done."""

    async def scenario():
        panel.press("aiw-add")
        fill_openai(panel, sandbox.openai_api_key.get_secret_value())
        panel.press("aiw-save")
        assert not panel.offered("aiw-save") and "[Authenticating…]" in panel.visible_text()
        assert "Authenticating" in text(panel, "aiw-message")
        await panel._task
        return panel.visible_text()

    shown_text = asyncio.run(scenario())
    assert "OpenAI · gpt-4o" in shown_text
    assert "Edit OpenAI Integration" not in shown_text and "Add OpenAI Integration" not in shown_text


def test_cancel_stops_an_authentication_under_way():
    async def scenario(sandbox):
        panel = sandbox.settings().panel()
        panel.press("aiw-add")
        fill_openai(panel, sandbox.openai_api_key.get_secret_value())
        panel.press("aiw-save")
        task = panel._task
        panel.press("aiw-cancel")
        with pytest.raises(asyncio.CancelledError):
            await task
        return panel

    with aiw.Sandbox(latency_ms=2000) as slow:
        panel = asyncio.run(scenario(slow))
        assert not panel.settings.status().configured
        shown_text = panel.visible_text()
        assert "Edit OpenAI Integration" not in shown_text and "Add OpenAI Integration" not in shown_text
        panel.press("aiw-add")
        assert panel.offered("aiw-save")
        panel.close()


# --------------------------------------------------------------------------- #
# Issue 3: what the admin is told, in the panel
# --------------------------------------------------------------------------- #


def test_pasted_target_uri_is_split_into_the_fields_and_each_change_is_said(panel, sandbox):
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    panel.type(
        "aiw-language-endpoint-url",
        f"{sandbox.azure_endpoint}/openai/deployments/chat-gpt-4o/chat/completions?api-version=2024-06-01",
    )
    panel.type("aiw-language-api-key", sandbox.azure_api_key.get_secret_value())
    panel.type("aiw-embeddings-endpoint-url", sandbox.azure_endpoint + "/openai/")
    panel.type("aiw-embeddings-deployment-id", "embeddings-3-small")
    # Authentication fails on purpose (a bad embeddings key), so the form stays open.
    panel.type("aiw-embeddings-api-key", "sandbox-wrong-key-000000")
    panel.press("aiw-save")

    assert value(panel, "aiw-language-endpoint-url") == sandbox.azure_endpoint
    assert value(panel, "aiw-language-deployment-id") == "chat-gpt-4o"
    assert value(panel, "aiw-azure-api-version") == "2024-06-01"
    assert value(panel, "aiw-embeddings-endpoint-url") == sandbox.azure_endpoint
    assert "whole target URI" in notice(panel, "aiw-language-endpoint-url")
    assert "taken from the target URI" in notice(panel, "aiw-language-deployment-id")
    assert "ended in /openai" in notice(panel, "aiw-embeddings-endpoint-url")
    assert "rejected the API Key" in error(panel, "aiw-embeddings-api-key")


def test_a_pasted_target_uri_fills_the_fields_when_it_is_left_before_any_save(panel, sandbox):
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    panel.type(
        "aiw-language-endpoint-url",
        "https://myresource.openai.azure.com/openai/deployments/chat-gpt-4o/chat/completions?api-version=2024-06-01",
    )
    assert value(panel, "aiw-language-endpoint-url") == "https://myresource.openai.azure.com"
    assert value(panel, "aiw-language-deployment-id") == "chat-gpt-4o"
    assert value(panel, "aiw-azure-api-version") == "2024-06-01"
    assert "whole target URI" in notice(panel, "aiw-language-endpoint-url")
    assert "taken from the target URI" in notice(panel, "aiw-language-deployment-id")
    assert "taken from the target URI" in notice(panel, "aiw-azure-api-version")
    assert error(panel, "aiw-language-endpoint-url") == "" and error(panel, "aiw-language-deployment-id") == ""
    assert sandbox.requests == [] and panel.view == "form"


def test_a_foundry_url_or_a_host_without_https_is_tidied_when_left(panel):
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    panel.type("aiw-language-endpoint-url", "myresource.openai.azure.com")
    assert value(panel, "aiw-language-endpoint-url") == "https://myresource.openai.azure.com"
    assert "no https:// in front; it was added" in notice(panel, "aiw-language-endpoint-url")
    panel.type("aiw-embeddings-endpoint-url", "https://myresource.services.ai.azure.com/openai/v1/")
    assert value(panel, "aiw-embeddings-endpoint-url") == "https://myresource.services.ai.azure.com"
    assert "API path /openai/v1" in notice(panel, "aiw-embeddings-endpoint-url")
    panel.choose("aiw-provider", "openai")
    panel.type("aiw-openai-base-url", "https://api.openai.com/v1/chat/completions")
    assert value(panel, "aiw-openai-base-url") == "https://api.openai.com/v1"
    assert "ended in /chat/completions" in notice(panel, "aiw-openai-base-url")


def test_bearer_and_quotes_leave_a_key_when_it_is_left_and_the_tidy_key_goes_back_to_its_input(panel, sandbox):
    sent = []
    panel.send = lambda content, buffers=None: sent.append(content)
    key = sandbox.openai_api_key.get_secret_value()
    panel.press("aiw-add")
    panel.type("aiw-openai-api-key", f"Bearer '{key}'")
    assert panel.form.key("api_key") == key
    said = notice(panel, "aiw-openai-api-key")
    assert "'Bearer ' in front of the API Key was removed." in said and "Quotes around the API Key" in said
    assert {"event": "key", "path": "api_key", "value": key} in sent
    assert_nowhere(panel, key)
    panel.press("aiw-save")
    assert panel.settings.status().configured


def test_a_host_name_too_long_to_be_one_is_said_to_be_invalid_at_once(panel, sandbox):
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    panel.type("aiw-language-endpoint-url", "https://" + "a" * 64 + ".openai.azure.com")
    assert "too long to be one" in error(panel, "aiw-language-endpoint-url")
    panel.type("aiw-language-endpoint-url", "https://" + ".".join(["abcdefghij"] * 24) + ".openai.azure.com")
    assert "too long to be one" in error(panel, "aiw-language-endpoint-url")
    for not_a_host in ("https://my..resource.openai.azure.com", "https://-myresource.openai.azure.com"):
        panel.type("aiw-language-endpoint-url", not_a_host)
        assert "host name that cannot be one" in error(panel, "aiw-language-endpoint-url"), not_a_host
    assert "could not be found" not in panel.visible_text()
    panel.type("aiw-language-endpoint-url", sandbox.azure_endpoint)
    assert error(panel, "aiw-language-endpoint-url") == ""


def test_after_a_save_the_row_says_what_was_adjusted(panel, sandbox):
    panel.press("aiw-add")
    panel.choose("aiw-provider", "openai")
    key = sandbox.openai_api_key.get_secret_value()
    panel.handle(  # Enter pressed in the key field before it was left: no tidy on the way
        {"event": "form.save", "values": panel.values(), "keys": {"api_key": f'  "{key}"\n'}}
    )

    shown_text = panel.visible_text()
    assert "Saved. Adjusted while saving:" in shown_text
    assert "Quotes around the API Key were removed." in shown_text


def test_model_version_as_api_version_is_marked_beside_the_api_version(panel, sandbox):
    panel.press("aiw-add")
    fill_azure_shared(panel, sandbox)
    panel.type("aiw-azure-api-version", "2024-05-13")
    assert "version of the gpt-4o model, not an API version" in error(panel, "aiw-azure-api-version")
    panel.press("aiw-save")

    assert "version of the gpt-4o model, not an API version" in error(panel, "aiw-azure-api-version")
    assert sandbox.requests == []


def test_openai_key_given_to_azure_gets_a_warning_beside_the_key(panel, sandbox):
    panel.press("aiw-add")
    fill_azure_shared(panel, sandbox, key="sk-" + "a" * 40)
    assert "like an OpenAI key" in notice(panel, "aiw-language-api-key")
    panel.press("aiw-save")

    assert "like an OpenAI key" in notice(panel, "aiw-language-api-key")
    assert "rejected the API Key" in error(panel, "aiw-language-api-key")


def test_ambiguous_gpt4_is_saved_with_a_warning_in_the_row(panel, sandbox):
    panel.press("aiw-add")
    fill_azure_shared(panel, sandbox, language="chat-gpt-4")
    panel.press("aiw-save")

    assert panel.settings.status().configured
    assert "turbo-2024-04-09" in text(panel, "aiw-warnings")


def test_model_behind_the_deployment_is_checked_not_its_name(panel, sandbox):
    panel.press("aiw-add")
    fill_azure_shared(panel, sandbox, language="chat-gpt-35-turbo")
    panel.press("aiw-save")

    assert "answers as gpt-35-turbo" in error(panel, "aiw-language-deployment-id")
    assert not panel.settings.status().configured


def test_edit_keeps_what_the_form_does_not_show_and_shows_the_rest(panel, sandbox):
    settings = panel.settings
    settings.save(
        aiw.OpenAIIntegration(
            api_key=sandbox.openai_api_key,
            base_url=sandbox.openai_base_url,
            language_model="gpt-4.1",
            organization=sandbox.openai_organization,
            project=sandbox.openai_project,
        )
    )
    panel.press("aiw-edit")
    assert value(panel, "aiw-openai-organization") == sandbox.openai_organization
    assert value(panel, "aiw-openai-project") == sandbox.openai_project
    panel.type("aiw-openai-api-key", sandbox.openai_api_key.get_secret_value())
    panel.press("aiw-save")

    saved = settings.saved_fields()
    assert saved.language_model == "gpt-4.1"
    assert saved.organization == sandbox.openai_organization and saved.project == sandbox.openai_project


def test_edit_keeps_the_saved_api_version(panel, sandbox):
    panel.settings.save(
        aiw.AzureOpenAIIntegration.shared(
            endpoint_url=sandbox.azure_endpoint,
            api_key=sandbox.azure_api_key,
            language_deployment_id="chat-gpt-4o",
            embeddings_deployment_id="embeddings-3-small",
            api_version="2024-06-01",
        )
    )
    panel.press("aiw-edit")
    assert value(panel, "aiw-azure-api-version") == "2024-06-01"
    panel.type("aiw-language-api-key", sandbox.azure_api_key.get_secret_value())
    panel.press("aiw-save")
    assert panel.settings.saved_fields().api_version == "2024-06-01"


def test_progress_then_each_model_result_while_authenticating(sandbox):
    seen = []

    async def scenario():
        panel = sandbox.settings().panel()
        panel.press("aiw-add")
        fill_azure_shared(panel, sandbox, language="no-such-deployment")
        panel.press("aiw-save")
        seen.append(text(panel, "aiw-language-result"))
        await panel._task
        return panel

    panel = asyncio.run(scenario())
    assert "Checking the language model" in seen[0]
    assert "✓" in text(panel, "aiw-embeddings-result")
    assert "no deployment named 'no-such-deployment'" in error(panel, "aiw-language-deployment-id")
    panel.close()


def test_test_button_reauthenticates_and_shows_each_model(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    panel.press("aiw-test")
    result = text(panel, "aiw-test-result")
    assert "✓ Language model: authenticated (gpt-4o)." in result
    assert "✓ Embeddings model: authenticated (text-embedding-3-small)." in result


def test_a_damaged_record_is_shown_and_remove_resets_it(panel):
    store_file = panel.settings.home / "settings.json"
    store_file.parent.mkdir(parents=True, exist_ok=True)
    store_file.write_text("{ not json", encoding="utf-8")
    panel.render()
    assert "is damaged" in text(panel, "aiw-notice")
    assert shown(panel, "aiw-remove") and not shown(panel, "aiw-add")

    panel.press("aiw-remove")
    panel.press("aiw-confirm-remove")
    assert "Not configured" in text(panel, "aiw-status")
    assert shown(panel, "aiw-add")
    assert list(panel.settings.home.glob("settings.json.damaged-*"))


def test_the_footer_names_the_keyring_in_words_once(panel, sandbox):
    assert text(panel, "aiw-footer") == "Keys are kept in: Plain-text file keyring"
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    assert text(panel, "aiw-footer") == "Keys are kept in: Plain-text file keyring"  # where the saved keys are
    assert panel.visible_text().count("Plain-text file keyring") == 1
    assert "PlaintextKeyring" not in panel.visible_text()


def test_the_row_shows_the_endpoints_resource_as_well_as_the_models(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    host = sandbox.openai_base_url.split("//")[1].split("/")[0]
    assert f"OpenAI · gpt-4o · text-embedding-3-small · at {host} · key …" in text(panel, "aiw-status")
    from ai_admin_widgets.models import resource_of

    assert resource_of("https://myresource.openai.azure.com") == "myresource"
    assert resource_of("https://other.cognitiveservices.azure.us/") == "other"
    assert resource_of("https://api.openai.com/v1") == "api.openai.com"


def test_optional_fields_say_optional_once(panel):
    panel.press("aiw-add")
    for css_class in ("aiw-openai-organization", "aiw-openai-project"):
        field = node(panel, css_class)
        assert field["optional"]
        line = text(panel, css_class)
        seen = " ".join([line, field["placeholder"], field["help"]]).lower()
        assert seen.count("optional") == 1, seen
    assert not node(panel, "aiw-openai-base-url")["optional"]


def test_a_bad_port_is_a_field_error_not_a_stuck_form(panel, sandbox):
    panel.press("aiw-add")
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.type("aiw-openai-base-url", "http://127.0.0.1:99999/v1")
    panel.press("aiw-save")
    assert "port" in error(panel, "aiw-openai-base-url")
    assert panel.offered("aiw-save")


def test_wrong_organization_is_marked_beside_the_organization_field(panel, sandbox):
    panel.press("aiw-add")
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.type("aiw-openai-organization", "org-SomeoneElse")
    panel.press("aiw-save")
    assert "does not match the API Key" in error(panel, "aiw-openai-organization")
    assert error(panel, "aiw-openai-api-key") == ""


def test_while_the_form_is_open_the_row_offers_nothing_to_cross_a_save(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    panel.press("aiw-edit")
    assert not shown(panel, "aiw-edit") and not shown(panel, "aiw-remove") and not shown(panel, "aiw-test")
    panel.press("aiw-cancel")
    assert shown(panel, "aiw-edit") and shown(panel, "aiw-remove") and shown(panel, "aiw-test")


def test_switching_provider_clears_the_old_errors(panel):
    panel.press("aiw-add")
    panel.press("aiw-save")
    assert "Correct the fields" in text(panel, "aiw-message")
    panel.choose("aiw-provider", "azure_openai")
    assert text(panel, "aiw-message") == ""
    panel.choose("aiw-provider", "openai")
    assert error(panel, "aiw-openai-api-key") == ""


def test_a_save_over_a_change_made_elsewhere_meanwhile_is_refused_with_who_and_when(panel, sandbox):
    panel.press("aiw-add")
    other_kernel = sandbox.settings()  # the same admin, in another kernel
    other_kernel.save(
        aiw.OpenAIIntegration(
            api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url, language_model="gpt-4.1"
        )
    )
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.press("aiw-save")
    message = text(panel, "aiw-message")
    assert f"changed by {other_kernel.user} at " in message and "Reload" in message
    assert panel.settings.saved_fields().language_model == "gpt-4.1"


def test_history_shows_every_change_newest_first_on_request(panel, sandbox):
    needs_region(panel, "history")
    settings = panel.settings
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    settings.test()
    settings.remove()
    assert not shown(panel, "aiw-history-table")
    panel.press("aiw-history-toggle")
    table = text(panel, "aiw-history-table")
    assert table.index("Removed") < table.index("Tested") < table.index("Added")
    assert settings.user in table and "OpenAI" in table
    assert sandbox.openai_api_key.get_secret_value()[-12:] not in table
    panel.press("aiw-history-toggle")
    assert not shown(panel, "aiw-history-table")


def test_a_key_pasted_into_another_field_does_not_stay_in_the_panel(panel, sandbox):
    key = sandbox.openai_api_key.get_secret_value() + "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
    panel.press("aiw-add")
    panel.type("aiw-openai-project", key)  # left: it is said at once, and emptied
    assert "looks like an API key" in error(panel, "aiw-openai-project")
    assert value(panel, "aiw-openai-project") == ""
    assert_nowhere(panel, key)
    panel.handle({"event": "form.save", "values": {**panel.values(), "project": key}, "keys": {}})
    assert "looks like an API key" in error(panel, "aiw-openai-project")
    assert value(panel, "aiw-openai-project") == ""
    assert_nowhere(panel, key)


def test_enter_in_any_field_saves_and_escape_cancels(panel, sandbox):
    panel.press("aiw-add")
    fill_azure_shared(panel, sandbox)
    panel.enter()  # Enter in any field saves
    assert panel.view == "row"
    assert "Azure OpenAI" in text(panel, "aiw-status")

    panel.press("aiw-edit")
    panel.type("aiw-language-deployment-id", "something-else")
    panel.escape()
    assert panel.view == "row"
    assert panel.settings.saved_fields().language_model.deployment_id == sandbox.azure_deployments["language"]
    panel.press("aiw-remove")
    panel.escape()
    assert panel.view == "row" and panel.settings.status().configured
    form = node(panel, "aiw-row")  # the dialogs name their events: Escape and Enter do what Cancel and Save do
    assert form is not None


def test_the_dialogs_name_what_escape_enter_and_the_keyboard_do(panel, sandbox):
    panel.press("aiw-add")
    dialog = node(panel, "aiw-form")
    assert (dialog["cancel_event"], dialog["submit_event"], dialog["focus"]) == (
        "form.cancel",
        "form.save",
        "aiw-openai-api-key",
    )
    panel.press("aiw-cancel")
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    panel.press("aiw-remove")
    dialog = node(panel, "aiw-confirmation")
    assert (dialog["cancel_event"], dialog["submit_event"], dialog["focus"]) == ("confirm.cancel", "", "aiw-cancel")


def test_enter_while_authenticating_does_not_save_twice(panel, sandbox):
    saves = []
    panel.press("aiw-add")
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.set_busy(True)  # as while a Save is authenticating
    before = len(sandbox.requests)
    panel.enter()
    assert panel.view == "form" and len(sandbox.requests) == before and saves == []
    panel.form.set_busy(False)
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.enter()
    assert panel.view == "row" and panel.settings.status().configured


def test_each_field_carries_its_help_and_its_error(panel):
    panel.press("aiw-add")
    panel.press("aiw-save")  # OpenAI with an empty key: the key is marked
    key_field = node(panel, "aiw-openai-api-key")
    assert key_field["help"] and "API Key is empty" in key_field["error"]
    assert key_field["input"] == "key" and key_field["value"] == ""
    base_url = node(panel, "aiw-openai-base-url")
    assert base_url["error"] == "" and base_url["help"]


def test_the_keyboard_lands_on_the_first_field_and_back_on_the_row(panel, sandbox):
    panel.press("aiw-add")
    assert panel.focused == "aiw-openai-api-key" and node(panel, "aiw-form")["focus"] == "aiw-openai-api-key"
    panel.choose("aiw-provider", "azure_openai")
    panel.type("aiw-language-endpoint-url", "https://contoso.openai.azure.com")
    panel.press("aiw-save")  # the deployment ids and the key are missing
    assert panel.focused == "aiw-language-deployment-id"
    panel.press("aiw-cancel")
    assert panel.focused == "aiw-add"
    panel.press("aiw-add")
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.press("aiw-save")
    assert panel.focused == "aiw-edit"
    panel.press("aiw-remove")
    assert panel.focused == "aiw-cancel", "Remove puts the keyboard on the safe choice"


def test_the_row_says_when_it_was_last_authenticated(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    assert "Last authenticated just now: succeeded" in panel.visible_text()
    assert not shown(panel, "aiw-health")


def test_the_last_authentication_is_an_ago_node_the_front_end_keeps_current(panel, sandbox):
    status = panel.settings.save(
        aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
    )
    ago = node(panel, "aiw-authenticated")
    assert ago["kind"] == "ago" and ago["template"] == "Last authenticated {ago}: succeeded"
    assert ago["iso"] == status.last_authenticated_at.isoformat()


def test_a_stale_integration_is_flagged_with_what_to_do_and_test_clears_it(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    age_last_authentication(panel.settings, timedelta(days=10, hours=2))
    panel.render()
    shown_text = panel.visible_text()
    assert "Last authenticated 10 days ago: succeeded" in shown_text
    assert "aiw-health-stale" in node(panel, "aiw-health")["cls"]
    assert "last authenticated more than 7 days ago" in shown_text and "Press Test to authenticate again." in shown_text

    panel.press("aiw-test")
    assert "Last authenticated just now: succeeded" in panel.visible_text()
    assert not shown(panel, "aiw-health")


def test_the_stale_age_is_the_settings_own(sandbox):
    settings = sandbox.settings(stale_after=timedelta(hours=1))
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    age_last_authentication(settings, timedelta(hours=3))
    panel = settings.panel()
    try:
        assert "last authenticated more than 1 hour ago" in panel.visible_text()
        assert "aiw-health-stale" in node(panel, "aiw-health")["cls"]
    finally:
        panel.close()


def test_a_failing_integration_is_flagged_and_a_passing_test_clears_it(panel, sandbox):
    status = panel.settings.save(
        aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
    )
    # a nightly `ai-admin test` found the key rejected
    SettingsStore(panel.settings.home, None).record_authentication(
        ok=False, revision=status.revision, codes=["invalid_api_key"]
    )
    panel.render()
    shown_text = panel.visible_text()
    assert "Last authenticated just now: failed (invalid_api_key)" in shown_text
    assert "aiw-health-failing" in node(panel, "aiw-health")["cls"]
    assert "The last authentication of the saved credentials failed (invalid_api_key)" in shown_text
    assert "press Edit and correct what Test reports" in shown_text

    panel.press("aiw-test")
    assert "Last authenticated just now: succeeded" in panel.visible_text()
    assert not shown(panel, "aiw-health")


def test_a_test_that_fails_flags_the_row_with_its_code(settings):
    with aiw.Sandbox() as gone:
        settings.save(aiw.OpenAIIntegration(api_key=gone.openai_api_key, base_url=gone.openai_base_url))
    panel = settings.panel()
    try:
        panel.press("aiw-test")
        assert "Last authenticated just now: failed (connection_failed)" in panel.visible_text()
        assert "aiw-health-failing" in node(panel, "aiw-health")["cls"]
    finally:
        panel.close()


def test_a_non_admin_is_told_an_admin_can_test(sandbox):
    settings = sandbox.settings()
    status = settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    SettingsStore(settings.home, None).record_authentication(
        ok=False, revision=status.revision, codes=["invalid_api_key"]
    )
    viewer = sandbox.settings(user="viewer", access=AccessPolicy(admin=False)).panel()
    try:
        shown_text = viewer.visible_text()
        assert (
            "failed (invalid_api_key)" in shown_text and "An admin can authenticate it again with Test." in shown_text
        )
        assert "Press Test" not in shown_text
    finally:
        viewer.close()


def test_an_admin_with_the_form_open_is_still_told_what_an_admin_can_do(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    age_last_authentication(panel.settings, timedelta(days=10))
    panel.press("aiw-edit")  # the row's buttons leave while the form is open; the advice stays the admin's
    shown_text = panel.visible_text()
    assert "Press Test to authenticate again." in shown_text
    assert "An admin can authenticate it again" not in shown_text
    assert not shown(panel, "aiw-test") and not shown(panel, "aiw-edit")


@pytest.mark.parametrize(
    ("css_class", "pasted"),
    [
        ("aiw-openai-project", '"{key}"'),
        ("aiw-openai-organization", "Bearer {key}"),
        ("aiw-openai-base-url", "https://api.openai.com/v1?api-key={key}"),
    ],
)
def test_a_key_pasted_inside_another_field_is_cleared_on_a_refused_save_and_on_cancel(panel, css_class, pasted):
    key = new_key()
    panel.press("aiw-add")
    path = node(panel, css_class)["path"]
    values = {**panel.values(), path: pasted.format(key=key)}
    panel.handle({"event": "form.save", "values": values, "keys": {}})  # refused: the key field is empty
    assert_nowhere(panel, key)
    assert all(key not in text_value for text_value in panel.form.values.values())
    panel.type(css_class, pasted.format(key=key))
    assert_nowhere(panel, key)
    panel.handle({"event": "form.cancel", "values": {**panel.values(), path: pasted.format(key=key)}})
    assert all(text_value == "" for text_value in panel.form.values.values()), "Cancel leaves nothing typed in the form"


def test_a_key_typed_while_authenticating_does_not_stay_in_the_kernel(panel, sandbox):
    integration = aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
    for outcome in ("saved", "refused"):
        panel.press("aiw-add") if outcome == "saved" else panel.press("aiw-edit")
        panel.form.set_busy(True)  # as while both models are being checked
        typed = "sk-typed-while-checking-" + "x" * 30
        panel.type("aiw-openai-api-key", typed)
        panel.enter()  # a second Enter: ignored while the checks run
        if outcome == "saved":
            panel.settings.save(integration)
            panel._saved(integration)
        else:
            panel._save_failed(aiw.AIAdminError("refused"))
        assert panel.form.key("api_key") == "", f"after the Save {outcome}, a key typed meanwhile stayed in the kernel"


# --------------------------------------------------------------------------- #
# Issue 11: what a new admin noticed
# --------------------------------------------------------------------------- #


def test_the_first_openai_add_lists_only_the_fields_it_set_as_changed(panel, sandbox):
    panel.press("aiw-add")
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())  # Organization ID and Project ID left empty
    panel.press("aiw-save")

    added = panel.settings.history()[-1]
    assert added.action is aiw.models.AuditAction.ADD
    assert "organization" not in added.changed and "project" not in added.changed
    assert {"base_url", "api_key"} <= set(added.changed)
    needs_region(panel, "history")
    panel.press("aiw-history-toggle")
    table = text(panel, "aiw-history-table")
    assert "Base URL" in table and "Organization ID" not in table and "Project ID" not in table


def test_one_render_reads_one_snapshot_and_nothing_else(sandbox):
    settings = sandbox.settings()
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    counting = CountingSettings(settings)
    panel = aiw.AISettingsPanel(counting)
    try:
        assert "OpenAI · gpt-4o" in panel.visible_text()
        counting.calls.clear()
        panel.render()
        assert counting.calls == ["snapshot"]
        counting.calls.clear()
        panel.handle({"event": "panel.poll", "values": {}})
        assert counting.calls == ["fingerprint"], "a poll with nothing changed reads only the fingerprint"
        if any(region.prefix == "history" for region in panel.regions):
            panel.press("aiw-history-toggle")
            counting.calls.clear()
            panel.render()
            assert counting.calls == ["snapshot", "history"], "History reads the audit log only while it is shown"
    finally:
        panel.close()


def openai_at(sandbox, **fields):
    return aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url, **fields)


def test_test_results_are_cleared_when_the_integration_they_describe_changes(panel, sandbox):
    settings = panel.settings
    settings.save(openai_at(sandbox))
    for change in ("access", "save", "remove"):
        if change == "remove":
            settings.save(openai_at(sandbox))
        panel.press("aiw-test")
        assert "✓ Language model: authenticated (gpt-4o)." in text(panel, "aiw-test-result")
        if change == "access":  # who may use AI is not the integration: its results stay
            settings.set_allowed(users=settings.user)
            assert "✓ Language model: authenticated" in text(panel, "aiw-test-result")
        elif change == "save":
            settings.save(openai_at(sandbox, language_model="gpt-4.1"))
            assert not shown(panel, "aiw-test-result"), "the results of the integration before the save stayed"
        else:
            settings.remove()
            assert not shown(panel, "aiw-test-result"), "the results of a removed integration stayed"


def test_a_change_made_elsewhere_shows_on_the_next_poll_with_the_time_recomputed(panel, sandbox):
    panel.settings.save(openai_at(sandbox))
    panel.press("aiw-test")
    assert "✓ Language model: authenticated (gpt-4o)." in text(panel, "aiw-test-result")
    elsewhere = sandbox.settings()  # another kernel, or ai-admin in a terminal: this panel is not told
    elsewhere.save(openai_at(sandbox, language_model="gpt-4.1"))
    age_last_authentication(elsewhere, timedelta(days=3))
    assert "gpt-4.1" not in text(panel, "aiw-status")

    panel.handle({"event": "panel.poll", "values": {}})  # what the front end sends every 2 s while visible
    status = text(panel, "aiw-status")
    assert "gpt-4.1" in status and "Last authenticated 3 days ago: succeeded" in status
    assert not shown(panel, "aiw-test-result"), "the Test results of the integration replaced elsewhere stayed"

    elsewhere.remove()
    panel.handle({"event": "panel.poll", "values": {}})
    assert "Not configured" in text(panel, "aiw-status") and shown(panel, "aiw-add")


def test_the_poll_catches_a_change_made_by_another_aisettings_on_the_same_store(tmp_path, sandbox, file_keyring):
    """Two AISettings objects on one folder (two kernels): the poll alone brings the other's save to the page."""
    here = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring)
    there = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring)
    panel = here.panel()
    try:
        assert shown(panel, "aiw-add")
        there.save(openai_at(sandbox))
        assert shown(panel, "aiw-add"), "nothing told this panel yet"
        revision = panel.state["revision"]
        panel.handle({"event": "panel.poll", "values": {}})
        assert shown(panel, "aiw-edit") and "OpenAI · gpt-4o" in text(panel, "aiw-status")
        assert panel.state["revision"] > revision
        revision = panel.state["revision"]
        panel.handle({"event": "panel.poll", "values": {}})
        assert panel.state["revision"] == revision, "a poll with nothing changed sends no new state"
    finally:
        panel.close()


def test_a_button_of_a_page_that_was_out_of_date_does_not_act(panel, sandbox):
    sandbox.settings().save(openai_at(sandbox))  # elsewhere: the panel still offers Add
    panel.press("aiw-add")
    assert panel.view == "row" and shown(panel, "aiw-edit") and not shown(panel, "aiw-add")


def test_after_switching_provider_the_key_placeholder_no_longer_offers_the_saved_key(panel, sandbox):
    panel.settings.save(openai_at(sandbox))
    panel.press("aiw-edit")
    assert "Leave empty to keep the saved key" in node(panel, "aiw-openai-api-key")["placeholder"]
    panel.choose("aiw-provider", "azure_openai")
    for css_class in ("aiw-language-api-key", "aiw-embeddings-api-key"):
        assert "keep the saved key" not in node(panel, css_class)["placeholder"]
    panel.check("aiw-same-endpoint", True)
    panel.type("aiw-language-endpoint-url", sandbox.azure_endpoint)
    panel.type("aiw-language-deployment-id", sandbox.azure_deployments["language"])
    panel.type("aiw-embeddings-deployment-id", sandbox.azure_deployments["embeddings"])
    panel.press("aiw-save")
    assert "API Key is empty" in error(panel, "aiw-language-api-key")
    panel.choose("aiw-provider", "openai")
    assert "Leave empty to keep the saved key" in node(panel, "aiw-openai-api-key")["placeholder"]


def test_a_saved_key_that_cannot_be_kept_is_said_beside_its_field(panel, sandbox):
    panel.settings.save(
        aiw.AzureOpenAIIntegration.shared(
            endpoint_url=sandbox.azure_endpoint,
            api_key=sandbox.azure_api_key,
            language_deployment_id=sandbox.azure_deployments["language"],
            embeddings_deployment_id=sandbox.azure_deployments["embeddings"],
        )
    )
    requests = len(sandbox.requests)
    panel.press("aiw-edit")
    panel.check("aiw-same-endpoint", False)
    panel.type("aiw-embeddings-endpoint-url", "https://contoso.openai.azure.com")  # the saved key was for the sandbox
    panel.press("aiw-save")
    assert "Type the API Key" in error(panel, "aiw-embeddings-api-key")
    assert error(panel, "aiw-language-api-key") == ""
    assert "Correct the fields marked above" in text(panel, "aiw-message")
    assert len(sandbox.requests) == requests, "the saved key was sent somewhere"
    assert panel.view == "form" and panel.offered("aiw-save")


@pytest.mark.parametrize("in_a_kernel", [True, False], ids=["event loop", "no event loop"])
def test_a_double_clicked_save_saves_once_and_writes_no_refused_event(panel, sandbox, in_a_kernel):
    settings = panel.settings
    settings.save(openai_at(sandbox))
    before = len(settings.history())
    panel.press("aiw-edit")
    panel.type("aiw-openai-project", sandbox.openai_project)  # the API Key left empty: the saved one is kept
    save = {"event": "form.save", "values": panel.values(), "keys": {}}

    async def double_click():
        panel.handle(save)
        first = panel._task
        panel.handle(save)  # the second click of the double click, while authenticating
        await asyncio.gather(*{task for task in (first, panel._task) if task is not None})

    if in_a_kernel:
        asyncio.run(double_click())
    else:  # the kernel is busy with the first click; the second one arrives when it is done
        panel.handle(save)
        panel.handle(save)
    events = settings.history()[before:]
    assert [(event.action.value, event.outcome) for event in events] == [("edit", "ok")]
    assert settings.saved_fields().project == sandbox.openai_project
    assert panel.view == "row" and "Correct the fields" not in panel.visible_text()


def test_a_save_refused_because_of_a_change_elsewhere_is_in_the_history_in_words(panel, sandbox):
    panel.press("aiw-add")
    sandbox.settings().save(openai_at(sandbox, language_model="gpt-4.1"))  # another kernel, meanwhile
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.press("aiw-save")
    assert "Reload" in text(panel, "aiw-message")
    panel.press("aiw-cancel")
    needs_region(panel, "history")
    panel.press("aiw-history-toggle")
    table = text(panel, "aiw-history-table")
    assert "Save refused" in table and "someone else changed it meanwhile" in table
    assert "ConcurrentChange" not in table


def test_each_input_of_the_form_is_labelled_and_explained_by_its_model_field(panel):
    models = {aiw.Provider.OPENAI: aiw.OpenAIIntegration, aiw.Provider.AZURE_OPENAI: aiw.AzureOpenAIIntegration}
    panel.press("aiw-add")
    fields = {}

    def seen():
        fields.update(
            {each["path"]: each for each in view.walk(panel.state["root"]) if each["kind"] in ("field", "radio")}
        )

    panel.choose("aiw-provider", "azure_openai")
    seen()
    for role in ("language", "embeddings"):  # Microsoft Entra ID's fields show once chosen
        panel.choose(f"aiw-{role}-authentication", "entra_id")
        seen()
    panel.choose("aiw-provider", "openai")
    seen()
    assert set(fields) == set(INPUTS) | {"provider"}
    for path, field in fields.items():
        if path == "provider":
            continue
        head, _, rest = path.partition(".")
        sub, _, leaf = rest.partition(".")
        if rest == "authentication":  # which of API Key and Microsoft Entra ID: the form's own words
            assert field["label"] == "Authentication"
            assert [option["label"] for option in field["options"]] == ["API key", "Microsoft Entra ID (keyless)"]
            continue
        model_field = (
            aiw.EntraID.model_fields[leaf]
            if leaf
            else aiw.AzureDeployment.model_fields[sub]
            if sub
            else models[INPUTS[path].provider].model_fields[head]
        )
        assert field["label"] == model_field.title
        if field["kind"] == "field":
            assert field["help"] == model_field.description
    edited = {spec.path.partition(".")[0] for spec in FORM_FIELDS if spec.kind != "choice"}
    assert edited == {
        "api_key",
        "base_url",
        "organization",
        "project",
        "language_model",
        "embeddings_model",
        "api_version",
    }


def test_where_widgets_cannot_be_shown_the_panel_says_what_to_do(panel):
    import html

    bundle, _metadata = panel._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    for shown_text in (bundle["text/plain"], html.unescape(bundle["text/html"])):
        assert "install ipywidgets>=8 in the environment that runs JupyterLab" in shown_text
        assert "AISettingsPanel(" not in shown_text


def test_edit_keeps_the_saved_key_without_the_panel_ever_reading_it(sandbox):
    settings = sandbox.settings()
    settings.save(openai_at(sandbox))
    counting = CountingSettings(settings)
    panel = aiw.AISettingsPanel(counting)
    try:
        panel.press("aiw-edit")
        panel.type("aiw-openai-project", sandbox.openai_project)  # the API Key left empty
        panel.press("aiw-save")
        assert panel.view == "row" and settings.saved_fields().project == sandbox.openai_project
        assert settings.status().key_hint == "…" + sandbox.openai_api_key.get_secret_value()[-4:]
        assert "save" in counting.calls and "saved_key" not in counting.calls
    finally:
        panel.close()


def test_a_read_only_panel_says_why_with_the_admin_checks_reason(tmp_path, file_keyring):
    """Not an admin: the notice gives the admin check's reason too (here, who the admins are; on a hub, which role)."""
    aiw.AISettings(home=tmp_path / "store", keyring=file_keyring, user="alice").add_admin("alice")
    viewer = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring, user="bob").panel()
    shown_text = text(viewer, "aiw-notice")
    assert (
        "You must be assigned the Admin account type to configure the OpenAI integration. Admins here: alice."
        in shown_text
    )
    assert viewer.visible_text().count("You must be assigned the Admin account type") == 1
    viewer.close()


def test_malformed_messages_from_the_front_end_are_ignored(panel):
    revision = panel.state["revision"]
    for content in (None, "row.add", {"event": 3}, {"event": "no.such"}, {"event": "field.blur", "path": 1}):
        panel.handle(content)
    assert panel.view == "row" and panel.state["revision"] == revision


def test_enter_in_a_field_sends_the_submit_event_of_the_box_around_it(panel):
    """A box naming a submit event (Who may use AI's editor: ``access.apply``) is submitted by Enter in its fields,
    as a dialog is (panel.js finds the nearest such box or dialog; ``panel.enter(field)`` does as it does)."""
    needs_region(panel, "access")
    panel.press("aiw-access-toggle")
    with pytest.raises(LookupError, match="aiw-allowed-people"):
        panel.enter("aiw-allowed-people")
    panel.type("aiw-allowed-users", " carol, dave ,carol")
    panel.enter("aiw-allowed-users")
    assert "Allowed users: carol, dave" in panel.visible_text()  # applied and tidied as stored
    assert panel.settings.access_lists().allowed_users == ("carol", "dave")
