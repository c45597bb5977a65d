"""The AI Settings panel, driven by simulated clicks and typing, asserting what the admin sees."""

from __future__ import annotations

import asyncio
import html
import json
import uuid
from datetime import timedelta

import ipywidgets as widgets
import pytest
from records import age_last_authentication

import ai_admin_widgets as aiw
from ai_admin_widgets.access import AccessPolicy
from ai_admin_widgets.store import SettingsStore


@pytest.fixture
def panel(sandbox):
    settings = sandbox.settings()
    shown = settings.panel()
    yield shown
    shown.close()


def one(panel, css_class):
    """The single visible widget carrying css_class."""
    found = [widget for widget in panel.find(css_class) if widget.layout.display != "none"]
    assert len(found) == 1, f"expected one visible .{css_class}, found {len(found)}"
    return found[0]


def visible(panel, css_class):
    return [widget for widget in panel.find(css_class) if _shown(panel, widget)]


def _shown(panel, target):
    def walk(widget, shown):
        shown = shown and widget.layout.display != "none"
        if widget is target:
            return shown
        for child in getattr(widget, "children", ()):
            result = walk(child, shown)
            if result is not None:
                return result
        return None

    return bool(walk(panel, True))


def fill_openai(panel, key):
    panel.form.provider.value = aiw.Provider.OPENAI
    panel.form.openai_api_key.value = key


def fill_azure_shared(panel, sandbox, key=None, language=None, embeddings=None):
    form = panel.form
    form.provider.value = aiw.Provider.AZURE_OPENAI
    form.same_endpoint.value = True
    form.language.endpoint_url.value = sandbox.azure_endpoint
    form.language.deployment_id.value = language or sandbox.azure_deployments["language"]
    form.language.api_key.value = key or sandbox.azure_api_key.get_secret_value()
    form.embeddings.deployment_id.value = embeddings or sandbox.azure_deployments["embeddings"]


def test_empty_panel_shows_add_only(panel):
    text = panel.visible_text()
    assert "AI Settings" in text
    assert "Not configured. AI functionality is disabled." in text
    assert visible(panel, "aiw-add") and not visible(panel, "aiw-edit") and not visible(panel, "aiw-remove")
    assert not visible(panel, "aiw-save")


def test_add_openai_flips_the_row_to_edit_and_remove(panel, sandbox):
    panel.row.add_button.click()
    assert "Add OpenAI Integration" in panel.visible_text()
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.save_button.click()

    text = panel.visible_text()
    assert "OpenAI · gpt-4o · text-embedding-3-small" in text
    assert "Edit OpenAI Integration" not in text and "Add OpenAI Integration" not in text
    assert visible(panel, "aiw-edit") and visible(panel, "aiw-remove") and not visible(panel, "aiw-add")
    assert panel.settings.status().provider is aiw.Provider.OPENAI


def test_wrong_key_shows_the_error_beside_the_key_and_saves_nothing(panel):
    panel.row.add_button.click()
    fill_openai(panel, "sk-wrong-" + uuid.uuid4().hex)
    panel.form.save_button.click()

    error = panel.form.openai_api_key.error.value
    assert "rejected the API Key" in error
    assert "nothing was saved" in panel.form.message.value
    assert "Add OpenAI Integration" in panel.visible_text()  # the form stays open
    assert not panel.settings.status().configured


def test_invalid_fields_are_marked_before_any_request(panel, sandbox):
    panel.row.add_button.click()
    panel.form.provider.value = aiw.Provider.AZURE_OPENAI
    panel.form.language.endpoint_url.value = "http://example.com"
    panel.form.language.deployment_id.value = "x"
    panel.form.save_button.click()

    assert "use https://" in panel.form.language.endpoint_url.error.value
    assert "2 to 64 characters" in panel.form.language.deployment_id.error.value
    assert "API Key is empty" in panel.form.language.api_key.error.value
    assert sandbox.requests == []


def test_same_endpoint_option_hides_the_embeddings_endpoint_and_key(panel):
    panel.row.add_button.click()
    panel.form.provider.value = aiw.Provider.AZURE_OPENAI
    text = panel.visible_text()
    assert text.count("Endpoint URL:") == 2 and text.count("API Key:") == 2
    panel.form.same_endpoint.value = True
    text = panel.visible_text()
    assert "[x] Use the same endpoint URL and API key for both models" in text
    assert text.count("Endpoint URL:") == 1 and text.count("API Key:") == 1
    assert text.count("Deployment ID:") == 2


def test_add_azure_with_shared_endpoint(panel, sandbox):
    panel.row.add_button.click()
    fill_azure_shared(panel, sandbox)
    panel.form.save_button.click()

    text = one(panel, "aiw-status").value
    assert "Azure OpenAI" in text and "chat-gpt-4o" in text and "embeddings-3-small" in text
    status = panel.settings.status()
    assert status.provider is aiw.Provider.AZURE_OPENAI
    assert [model.model for model in status.models] == ["gpt-4o-2024-08-06", "text-embedding-3-small"]


def test_unknown_deployment_error_sits_beside_the_deployment_id(panel, sandbox):
    panel.row.add_button.click()
    fill_azure_shared(panel, sandbox, language="no-such-deployment")
    panel.form.save_button.click()

    assert "no deployment named 'no-such-deployment'" in panel.form.language.deployment_id.error.value
    assert panel.form.embeddings.deployment_id.error.value == ""
    assert "✓" in panel.form.embeddings.check_result.value
    assert not panel.settings.status().configured


def test_edit_prefills_the_saved_fields_but_never_a_key(panel, sandbox):
    panel.row.add_button.click()
    fill_azure_shared(panel, sandbox)
    panel.form.save_button.click()

    panel.row.edit_button.click()
    form = panel.form
    assert form.provider.value is aiw.Provider.AZURE_OPENAI
    assert form.same_endpoint.value is True
    assert form.language.endpoint_url.value == sandbox.azure_endpoint
    assert form.embeddings.deployment_id.value == sandbox.azure_deployments["embeddings"]
    assert form.language.api_key.value == ""


def test_cancel_discards_what_was_typed(panel, sandbox):
    panel.row.add_button.click()
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.cancel_button.click()

    assert (
        "Edit OpenAI Integration" not in panel.visible_text() and "Add OpenAI Integration" not in panel.visible_text()
    )
    assert panel.form.openai_api_key.value == ""
    assert not panel.settings.status().configured
    panel.row.add_button.click()
    assert panel.form.openai_api_key.value == ""


def test_remove_asks_first_and_cancel_keeps_the_integration(panel, sandbox):
    panel.row.add_button.click()
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.save_button.click()

    panel.row.remove_button.click()
    text = panel.visible_text()
    assert "Remove OpenAI Integration" in text
    assert "AI functionality will be disabled for your organization." in text
    panel.confirmation.cancel_button.click()
    assert "Remove OpenAI Integration" not in panel.visible_text()
    assert panel.settings.status().configured

    panel.row.remove_button.click()
    one(panel, "aiw-confirm-remove").click()
    assert not panel.settings.status().configured
    assert visible(panel, "aiw-add") and not visible(panel, "aiw-edit")


def test_panel_follows_changes_made_from_cells(panel, sandbox):
    settings = panel.settings
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    assert visible(panel, "aiw-edit")
    settings.remove()
    assert visible(panel, "aiw-add")


def test_keys_are_cleared_from_the_widgets_after_save(panel, sandbox):
    key = sandbox.openai_api_key.get_secret_value()
    panel.row.add_button.click()
    fill_openai(panel, key)
    panel.form.save_button.click()

    state = json.dumps(widgets.Widget.get_manager_state(drop_defaults=False))
    assert key not in state
    assert key[-8:] not in state


def test_non_admin_sees_a_read_only_panel(sandbox):
    admin = sandbox.settings()
    admin.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    viewer = sandbox.settings(user="viewer", access=AccessPolicy(admin=False)).panel()
    text = viewer.visible_text()
    assert "You must be assigned the Admin account type to configure the OpenAI integration." in text
    assert "OpenAI · gpt-4o" in text
    assert not visible(viewer, "aiw-edit") and not visible(viewer, "aiw-remove") and not visible(viewer, "aiw-add")


def test_every_interactive_element_has_its_css_class(panel):
    for css_class in (
        "aiw-add",
        "aiw-edit",
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
    ):
        assert panel.find(css_class), css_class


def test_save_inside_a_running_event_loop_does_not_block_it(panel, sandbox):
    """In a kernel, Save runs on the event loop: the click returns at once and the row flips when done."""

    async def scenario():
        panel.row.add_button.click()
        fill_openai(panel, sandbox.openai_api_key.get_secret_value())
        panel.form.save_button.click()
        assert panel.form.save_button.disabled
        assert "Authenticating" in panel.form.message.value
        await panel._task
        return panel.visible_text()

    text = asyncio.run(scenario())
    assert "OpenAI · gpt-4o" in text
    assert "Edit OpenAI Integration" not in text and "Add OpenAI Integration" not in text


def test_cancel_stops_an_authentication_under_way():
    async def scenario(sandbox):
        panel = sandbox.settings().panel()
        panel.row.add_button.click()
        fill_openai(panel, sandbox.openai_api_key.get_secret_value())
        panel.form.save_button.click()
        task = panel._task
        panel.form.cancel_button.click()
        with pytest.raises(asyncio.CancelledError):
            await task
        return panel

    with aiw.Sandbox(latency_ms=2000) as slow:
        panel = asyncio.run(scenario(slow))
        assert not panel.settings.status().configured
        assert (
            "Edit OpenAI Integration" not in panel.visible_text()
            and "Add OpenAI Integration" not in panel.visible_text()
        )
        assert not panel.form.save_button.disabled


# --------------------------------------------------------------------------- #
# Issue 3: what the admin is told, in the panel
# --------------------------------------------------------------------------- #


def test_pasted_target_uri_is_split_into_the_fields_and_each_change_is_said(panel, sandbox):
    panel.row.add_button.click()
    form = panel.form
    form.provider.value = aiw.Provider.AZURE_OPENAI
    form.language.endpoint_url.value = (
        f"{sandbox.azure_endpoint}/openai/deployments/chat-gpt-4o/chat/completions?api-version=2024-06-01"
    )
    form.language.api_key.value = sandbox.azure_api_key.get_secret_value()
    form.embeddings.endpoint_url.value = sandbox.azure_endpoint + "/openai/"
    form.embeddings.deployment_id.value = "embeddings-3-small"
    form.embeddings.api_key.value = sandbox.azure_api_key.get_secret_value()
    # Authentication fails on purpose (unknown api-version is not it; a bad embeddings key is), so the form stays open.
    form.embeddings.api_key.value = "sandbox-wrong-key-000000"
    form.save_button.click()

    assert form.language.endpoint_url.value == sandbox.azure_endpoint
    assert form.language.deployment_id.value == "chat-gpt-4o"
    assert form.api_version.value == "2024-06-01"
    assert form.embeddings.endpoint_url.value == sandbox.azure_endpoint
    assert "whole target URI" in form.language.endpoint_url.notice.value
    assert "taken from the target URI" in form.language.deployment_id.notice.value
    assert "ended in /openai" in form.embeddings.endpoint_url.notice.value
    assert "rejected the API Key" in form.embeddings.api_key.error.value


def test_after_a_save_the_row_says_what_was_adjusted(panel, sandbox):
    panel.row.add_button.click()
    fill_openai(panel, f'  "{sandbox.openai_api_key.get_secret_value()}"\n')
    panel.form.save_button.click()

    text = panel.visible_text()
    assert "Saved. Adjusted while saving:" in text
    assert "Quotes around the API Key were removed." in text


def test_model_version_as_api_version_is_marked_beside_the_api_version(panel, sandbox):
    panel.row.add_button.click()
    fill_azure_shared(panel, sandbox)
    panel.form.api_version.value = "2024-05-13"
    panel.form.save_button.click()

    assert "version of the gpt-4o model, not an API version" in panel.form.api_version.error.value
    assert sandbox.requests == []


def test_openai_key_given_to_azure_gets_a_warning_beside_the_key(panel, sandbox):
    panel.row.add_button.click()
    fill_azure_shared(panel, sandbox, key="sk-" + "a" * 40)
    panel.form.save_button.click()

    assert "like an OpenAI key" in panel.form.language.api_key.notice.value
    assert "rejected the API Key" in panel.form.language.api_key.error.value


def test_ambiguous_gpt4_is_saved_with_a_warning_in_the_row(panel, sandbox):
    panel.row.add_button.click()
    fill_azure_shared(panel, sandbox, language="chat-gpt-4")
    panel.form.save_button.click()

    assert panel.settings.status().configured
    assert "turbo-2024-04-09" in one(panel, "aiw-warnings").value


def test_model_behind_the_deployment_is_checked_not_its_name(panel, sandbox):
    panel.row.add_button.click()
    fill_azure_shared(panel, sandbox, language="chat-gpt-35-turbo")
    panel.form.save_button.click()

    assert "answers as gpt-35-turbo" in panel.form.language.deployment_id.error.value
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
    panel.row.edit_button.click()
    assert panel.form.openai_organization.value == sandbox.openai_organization
    assert panel.form.openai_project.value == sandbox.openai_project
    panel.form.openai_api_key.value = sandbox.openai_api_key.get_secret_value()
    panel.form.save_button.click()

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
    panel.row.edit_button.click()
    assert panel.form.api_version.value == "2024-06-01"
    panel.form.language.api_key.value = sandbox.azure_api_key.get_secret_value()
    panel.form.save_button.click()
    assert panel.settings.saved_fields().api_version == "2024-06-01"


def test_progress_then_each_model_result_while_authenticating(sandbox):
    seen = []

    async def scenario():
        panel = sandbox.settings().panel()
        panel.row.add_button.click()
        fill_azure_shared(panel, sandbox, language="no-such-deployment")
        panel.form.save_button.click()
        seen.append(panel.form.language.check_result.value)
        await panel._task
        return panel

    panel = asyncio.run(scenario())
    assert "Checking the language model" in seen[0]
    assert "✓" in panel.form.embeddings.check_result.value
    assert "no deployment named 'no-such-deployment'" in panel.form.language.deployment_id.error.value


def test_test_button_reauthenticates_and_shows_each_model(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    one(panel, "aiw-test").click()
    text = one(panel, "aiw-test-result").value
    assert "✓ Language model: authenticated (gpt-4o)." in text
    assert "✓ Embeddings model: authenticated (text-embedding-3-small)." in text


def test_a_damaged_record_is_shown_and_remove_resets_it(panel):
    store_file = panel.settings.home / "settings.json"
    store_file.parent.mkdir(parents=True, exist_ok=True)
    store_file.write_text("{ not json", encoding="utf-8")
    panel.render()
    assert "is damaged" in panel.notice.value
    assert visible(panel, "aiw-remove") and not visible(panel, "aiw-add")

    panel.row.remove_button.click()
    one(panel, "aiw-confirm-remove").click()
    assert "Not configured" in one(panel, "aiw-status").value
    assert visible(panel, "aiw-add")
    assert list(panel.settings.home.glob("settings.json.damaged-*"))


def test_footer_names_the_keyring(panel):
    assert "PlaintextKeyring" in one(panel, "aiw-footer").value


def test_a_bad_port_is_a_field_error_not_a_stuck_form(panel, sandbox):
    panel.row.add_button.click()
    panel.form.openai_base_url.value = "http://127.0.0.1:99999/v1"
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.save_button.click()
    assert "port" in panel.form.openai_base_url.error.value
    assert not panel.form.save_button.disabled


def test_wrong_organization_is_marked_beside_the_organization_field(panel, sandbox):
    panel.row.add_button.click()
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.openai_organization.value = "org-SomeoneElse"
    panel.form.save_button.click()
    assert "does not match the API Key" in panel.form.openai_organization.error.value
    assert panel.form.openai_api_key.error.value == ""


def test_while_the_form_is_open_the_row_offers_nothing_to_cross_a_save(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    panel.row.edit_button.click()
    assert not visible(panel, "aiw-edit") and not visible(panel, "aiw-remove") and not visible(panel, "aiw-test")
    panel.form.cancel_button.click()
    assert visible(panel, "aiw-edit") and visible(panel, "aiw-remove") and visible(panel, "aiw-test")


def test_switching_provider_clears_the_old_errors(panel):
    panel.row.add_button.click()
    panel.form.save_button.click()
    assert "Correct the fields" in panel.form.message.value
    panel.form.provider.value = aiw.Provider.AZURE_OPENAI
    assert panel.form.message.value == "" and panel.form.openai_api_key.error.value == ""


def test_a_save_over_a_change_made_elsewhere_meanwhile_is_refused_with_who_and_when(panel, sandbox):
    panel.row.add_button.click()
    other_kernel = sandbox.settings()  # the same admin, in another kernel
    other_kernel.save(
        aiw.OpenAIIntegration(
            api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url, language_model="gpt-4.1"
        )
    )
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.save_button.click()
    message = panel.form.message.value
    assert f"changed by {other_kernel.user} at " in message and "Reload" in message
    assert panel.settings.saved_fields().language_model == "gpt-4.1"


def test_history_shows_every_change_newest_first_on_request(panel, sandbox):
    settings = panel.settings
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    settings.test()
    settings.remove()
    assert not visible(panel, "aiw-history-table")
    one(panel, "aiw-history-toggle").click()
    table = one(panel, "aiw-history-table").value
    assert table.index("Removed") < table.index("Tested") < table.index("Added")
    assert settings.user in table and "OpenAI" in table
    assert sandbox.openai_api_key.get_secret_value()[-12:] not in table
    one(panel, "aiw-history-toggle").click()
    assert not visible(panel, "aiw-history-table")


def test_a_key_pasted_into_another_field_does_not_stay_in_the_widgets(panel, sandbox):
    key = sandbox.openai_api_key.get_secret_value() + "0" * 8
    panel.row.add_button.click()
    fill_openai(panel, "")
    panel.form.openai_project.value = key
    panel.form.save_button.click()
    assert "looks like an API key" in panel.form.openai_project.error.value
    assert panel.form.openai_project.value == ""
    assert key not in json.dumps(widgets.Widget.get_manager_state(drop_defaults=False))


def press(field_widget, key):
    """What the browser sends when Enter or Escape is pressed in a field's input."""
    field_widget._receive(field_widget, {"type": {"Enter": "submit", "Escape": "cancel"}[key]}, [])


def test_enter_in_any_field_saves_and_escape_cancels(panel, sandbox):
    panel.row.add_button.click()
    fill_azure_shared(panel, sandbox)
    press(panel.form.embeddings.deployment_id.input, "Enter")  # not the key field: any field saves
    assert panel.view == "row"
    assert "Azure OpenAI" in one(panel, "aiw-status").value

    panel.row.edit_button.click()
    panel.form.language.deployment_id.value = "something-else"
    press(panel.form.language.deployment_id.input, "Escape")
    assert panel.view == "row"
    assert panel.settings.saved_fields().language_model.deployment_id == sandbox.azure_deployments["language"]


def test_enter_while_authenticating_does_not_save_twice(panel, sandbox):
    saves = []
    panel.form._on_save = saves.append
    panel.row.add_button.click()
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.set_busy(True)  # as while a Save is authenticating
    press(panel.form.openai_base_url.input, "Enter")
    assert saves == []
    panel.form.set_busy(False)
    press(panel.form.openai_base_url.input, "Enter")
    assert len(saves) == 1


def test_each_field_is_described_by_its_help_and_its_error_for_screen_readers(panel):
    panel.row.add_button.click()
    panel.form.save_button.click()  # OpenAI with an empty key: the key is marked
    key_field = panel.form.openai_api_key
    help_id, error_id = key_field.input.described_by.split()
    assert f'id="{help_id}"' in key_field.help.value
    assert f'id="{error_id}"' in key_field.error.value and 'role="alert"' in key_field.error.value
    assert key_field.input.invalid
    base_url = panel.form.openai_base_url
    assert not base_url.input.invalid and base_url.error.value == ""
    ids = [field.input.described_by for field in panel.form._all_fields().values()]
    assert len(set(ids)) == len(ids), "two fields share a help or error id"


def test_the_keyboard_lands_on_the_first_field_and_back_on_the_row(panel, sandbox, monkeypatch):
    focused = []
    monkeypatch.setattr(aiw.widgets.fields.TextField, "focus", lambda self: focused.append(self.description))
    monkeypatch.setattr(aiw.widgets.fields.KeyField, "focus", lambda self: focused.append(self.description))
    monkeypatch.setattr(widgets.Button, "focus", lambda self: focused.append(self.description))
    panel.row.add_button.click()
    assert focused[-1] == "API Key"
    panel.form.provider.value = aiw.Provider.AZURE_OPENAI
    panel.form.language.endpoint_url.value = "https://contoso.openai.azure.com"
    panel.form.save_button.click()  # the deployment ids and the key are missing
    assert focused[-1] == "Deployment ID"
    panel.form.cancel_button.click()
    assert focused[-1] == "Add"
    panel.row.add_button.click()
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.save_button.click()
    assert focused[-1] == "Edit"
    panel.row.remove_button.click()
    assert focused[-1] == "Cancel", "Remove puts the keyboard on the safe choice"


def test_the_row_says_when_it_was_last_authenticated(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    assert "Last authenticated just now: succeeded" in panel.visible_text()
    assert not visible(panel, "aiw-health")


def test_a_stale_integration_is_flagged_with_what_to_do_and_test_clears_it(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    age_last_authentication(panel.settings, timedelta(days=10, hours=2))
    panel.render()
    text = panel.visible_text()
    assert "Last authenticated 10 days ago: succeeded" in text
    flag = one(panel, "aiw-health")
    assert "aiw-health-stale" in flag._dom_classes
    assert "last authenticated more than 7 days ago" in text and "Press Test to authenticate again." in text

    one(panel, "aiw-test").click()
    assert "Last authenticated just now: succeeded" in panel.visible_text()
    assert not visible(panel, "aiw-health") and "aiw-health-stale" not in flag._dom_classes


def test_the_stale_age_is_the_settings_own(sandbox):
    settings = sandbox.settings(stale_after=timedelta(hours=1))
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    age_last_authentication(settings, timedelta(hours=3))
    panel = settings.panel()
    try:
        assert "last authenticated more than 1 hour ago" in panel.visible_text()
        assert "aiw-health-stale" in one(panel, "aiw-health")._dom_classes
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
    text = panel.visible_text()
    assert "Last authenticated just now: failed (invalid_api_key)" in text
    flag = one(panel, "aiw-health")
    assert "aiw-health-failing" in flag._dom_classes
    assert "The last authentication of the saved credentials failed (invalid_api_key)" in text
    assert "press Edit and correct what Test reports" in text

    one(panel, "aiw-test").click()
    text = panel.visible_text()
    assert "Last authenticated just now: succeeded" in text
    assert not visible(panel, "aiw-health")
    assert "aiw-health-failing" not in flag._dom_classes


def test_a_test_that_fails_flags_the_row_with_its_code(settings):
    with aiw.Sandbox() as gone:
        settings.save(aiw.OpenAIIntegration(api_key=gone.openai_api_key, base_url=gone.openai_base_url))
    panel = settings.panel()
    try:
        one(panel, "aiw-test").click()
        text = panel.visible_text()
        assert "Last authenticated just now: failed (connection_failed)" in text
        assert "aiw-health-failing" in one(panel, "aiw-health")._dom_classes
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
        text = viewer.visible_text()
        assert "failed (invalid_api_key)" in text and "An admin can authenticate it again with Test." in text
        assert "Press Test" not in text
    finally:
        viewer.close()


def test_an_admin_with_the_form_open_is_still_told_what_an_admin_can_do(panel, sandbox):
    panel.settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    age_last_authentication(panel.settings, timedelta(days=10))
    panel.row.edit_button.click()  # the row's buttons hide while the form is open; the advice stays the admin's
    text = panel.visible_text()
    assert "Press Test to authenticate again." in text
    assert "An admin can authenticate it again" not in text
    assert not visible(panel, "aiw-test") and not visible(panel, "aiw-edit")


@pytest.mark.parametrize(
    ("field_name", "pasted"),
    [
        ("openai_project", '"{key}"'),
        ("openai_organization", "Bearer {key}"),
        ("openai_base_url", "https://api.openai.com/v1?api-key={key}"),
    ],
)
def test_a_key_pasted_inside_another_field_is_cleared_on_a_refused_save_and_on_cancel(
    panel, sandbox, field_name, pasted
):
    key = "sk-" + uuid.uuid4().hex + uuid.uuid4().hex
    panel.row.add_button.click()
    getattr(panel.form, field_name).value = pasted.format(key=key)
    panel.form.save_button.click()  # refused: the key field is empty, or the field is wrong
    assert key not in json.dumps(panel.get_state()) and all(
        key not in field.value for field in panel.form._all_fields().values()
    )
    getattr(panel.form, field_name).value = pasted.format(key=key)
    panel.form.cancel_button.click()
    assert all(field.value == "" for field in panel.form._all_fields().values()), (
        "Cancel leaves nothing typed in the form"
    )


def test_a_key_typed_while_authenticating_does_not_stay_in_the_kernel(panel, sandbox):
    integration = aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
    for outcome in ("saved", "refused"):
        panel.row.add_button.click() if outcome == "saved" else panel.row.edit_button.click()
        panel.form.set_busy(True)  # as while both models are being checked
        key_input = panel.form.openai_api_key.input
        key_input._receive(None, {"type": "key", "value": "sk-typed-while-checking-" + "x" * 30}, [])
        press(key_input, "Enter")  # a second Enter: ignored while the checks run
        if outcome == "saved":
            panel.settings.save(integration)
            panel._saved(integration)
        else:
            panel._save_failed(aiw.AIAdminError("refused"))
        assert key_input.value == "", f"after the Save {outcome}, a key typed meanwhile stayed in the kernel"


# --------------------------------------------------------------------------- #
# Issue 11: what a new admin noticed
# --------------------------------------------------------------------------- #


def test_the_first_openai_add_lists_only_the_fields_it_set_as_changed(panel, sandbox):
    panel.row.add_button.click()
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())  # Organization ID and Project ID left empty
    panel.form.save_button.click()

    added = panel.settings.history()[-1]
    assert added.action is aiw.models.AuditAction.ADD
    assert "organization" not in added.changed and "project" not in added.changed
    assert {"base_url", "api_key"} <= set(added.changed)
    one(panel, "aiw-history-toggle").click()
    table = one(panel, "aiw-history-table").value
    assert "Base URL" in table and "Organization ID" not in table and "Project ID" not in table


class CountingSettings:
    """Real AISettings behind the Settings interface, noting the name of every method called on them."""

    def __init__(self, settings):
        self._settings = settings
        self.calls = []

    def __getattr__(self, name):
        value = getattr(self._settings, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            self.calls.append(name)
            return value(*args, **kwargs)

        return call


def test_one_render_reads_one_snapshot_and_nothing_else(sandbox):
    settings = sandbox.settings()
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    counting = CountingSettings(settings)
    panel = aiw.AISettingsPanel(counting)
    try:
        assert "OpenAI · gpt-4o" in panel.visible_text() and "Everyone may use AI." in panel.visible_text()
        counting.calls.clear()
        panel.render()
        assert counting.calls == ["snapshot"]
        one(panel, "aiw-history-toggle").click()
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
        one(panel, "aiw-test").click()
        assert "✓ Language model: authenticated (gpt-4o)." in panel.row.result.value
        if change == "access":  # who may use AI is not the integration: its results stay
            settings.set_allowed(users=settings.user)
            assert "✓ Language model: authenticated" in panel.row.result.value
        elif change == "save":
            settings.save(openai_at(sandbox, language_model="gpt-4.1"))
            assert panel.row.result.value == "", "the results of the integration before the save stayed"
        else:
            settings.remove()
            assert panel.row.result.value == "", "the results of a removed integration stayed"


def test_a_change_made_elsewhere_shows_on_the_next_button_with_the_time_recomputed(panel, sandbox):
    panel.settings.save(openai_at(sandbox))
    one(panel, "aiw-test").click()
    assert "✓ Language model: authenticated (gpt-4o)." in panel.row.result.value
    elsewhere = sandbox.settings()  # another kernel, or ai-admin in a terminal: this panel is not told
    elsewhere.save(openai_at(sandbox, language_model="gpt-4.1"))
    age_last_authentication(elsewhere, timedelta(days=3))
    assert "gpt-4.1" not in one(panel, "aiw-status").value

    one(panel, "aiw-history-toggle").click()  # any button
    status = one(panel, "aiw-status").value
    assert "gpt-4.1" in status and "Last authenticated 3 days ago: succeeded" in status
    assert panel.row.result.value == "", "the Test results of the integration replaced elsewhere stayed"

    elsewhere.remove()
    one(panel, "aiw-apply-access").click()
    assert "Not configured" in one(panel, "aiw-status").value and visible(panel, "aiw-add")


def test_a_button_of_a_page_that_was_out_of_date_does_not_act(panel, sandbox):
    sandbox.settings().save(openai_at(sandbox))  # elsewhere: the panel still offers Add
    panel.row.add_button.click()
    assert panel.view == "row" and visible(panel, "aiw-edit") and not visible(panel, "aiw-add")


def test_after_switching_provider_the_key_placeholder_no_longer_offers_the_saved_key(panel, sandbox):
    panel.settings.save(openai_at(sandbox))
    panel.row.edit_button.click()
    form = panel.form
    assert "Leave empty to keep the saved key" in form.openai_api_key.input.placeholder
    form.provider.value = aiw.Provider.AZURE_OPENAI
    for field in (form.language.api_key, form.embeddings.api_key):
        assert "keep the saved key" not in field.input.placeholder
    fill_azure_shared(panel, sandbox, key=" ")
    form.language.api_key.value = ""
    form.save_button.click()
    assert "API Key is empty" in form.language.api_key.error.value
    form.provider.value = aiw.Provider.OPENAI
    assert "Leave empty to keep the saved key" in form.openai_api_key.input.placeholder


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
    panel.row.edit_button.click()
    form = panel.form
    form.same_endpoint.value = False
    form.embeddings.endpoint_url.value = "https://contoso.openai.azure.com"  # the saved key was entered for the sandbox
    form.save_button.click()
    assert "Type the API Key" in form.embeddings.api_key.error.value
    assert form.language.api_key.error.value == ""
    assert "Correct the fields marked above" in form.message.value
    assert len(sandbox.requests) == requests, "the saved key was sent somewhere"
    assert panel.view == "form" and not form.save_button.disabled


@pytest.mark.parametrize("in_a_kernel", [True, False], ids=["event loop", "no event loop"])
def test_a_double_clicked_save_saves_once_and_writes_no_refused_event(panel, sandbox, in_a_kernel):
    settings = panel.settings
    settings.save(openai_at(sandbox))
    before = len(settings.history())
    panel.row.edit_button.click()
    panel.form.openai_project.value = sandbox.openai_project  # the API Key left empty: the saved one is kept

    async def double_click():
        panel.form.save_button.click()
        first = panel._task
        panel.form.save_button.click()  # the second click of the double click, while authenticating
        await asyncio.gather(*{task for task in (first, panel._task) if task is not None})

    if in_a_kernel:
        asyncio.run(double_click())
    else:  # the kernel is busy with the first click; the second one arrives when it is done
        panel.form.save_button.click()
        panel.form.save_button.click()
    events = settings.history()[before:]
    assert [(event.action.value, event.outcome) for event in events] == [("edit", "ok")]
    assert settings.saved_fields().project == sandbox.openai_project
    assert panel.view == "row" and "Correct the fields" not in panel.form.message.value


def test_a_save_refused_because_of_a_change_elsewhere_is_in_the_history_in_words(panel, sandbox):
    panel.row.add_button.click()
    sandbox.settings().save(openai_at(sandbox, language_model="gpt-4.1"))  # another kernel, meanwhile
    fill_openai(panel, sandbox.openai_api_key.get_secret_value())
    panel.form.save_button.click()
    assert "Reload" in panel.form.message.value
    panel.form.cancel_button.click()
    one(panel, "aiw-history-toggle").click()
    table = one(panel, "aiw-history-table").value
    assert "Save refused" in table and "someone else changed it meanwhile" in table
    assert "ConcurrentChange" not in table


def test_each_input_of_the_form_is_labelled_and_explained_by_its_model_field(panel):
    panel.row.add_button.click()
    models = {aiw.Provider.OPENAI: aiw.OpenAIIntegration, aiw.Provider.AZURE_OPENAI: aiw.AzureOpenAIIntegration}
    for path, field in panel.form.fields.items():
        head, _, leaf = path.partition(".")
        model_field = aiw.AzureDeployment.model_fields[leaf] if leaf else models[field.spec.provider].model_fields[head]
        assert field.input.description == model_field.title
        assert model_field.description in html.unescape(field.help.value)
    edited = {path.partition(".")[0] for path in panel.form.fields}
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
    bundle = panel._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    for text in (bundle["text/plain"], html.unescape(bundle["text/html"])):
        assert "install ipywidgets>=8 in the environment that runs JupyterLab" in text
        assert "AISettingsPanel(" not in text


def test_edit_keeps_the_saved_key_without_the_panel_ever_reading_it(sandbox):
    settings = sandbox.settings()
    settings.save(openai_at(sandbox))
    counting = CountingSettings(settings)
    panel = aiw.AISettingsPanel(counting)
    try:
        panel.row.edit_button.click()
        panel.form.openai_project.value = sandbox.openai_project  # the API Key left empty
        panel.form.save_button.click()
        assert panel.view == "row" and settings.saved_fields().project == sandbox.openai_project
        assert settings.status().key_hint == "…" + sandbox.openai_api_key.get_secret_value()[-4:]
        assert "save" in counting.calls and "saved_key" not in counting.calls
    finally:
        panel.close()


def test_a_read_only_panel_says_why_with_the_admin_checks_reason(tmp_path, file_keyring):
    """Not an admin: the notice gives the admin check's reason too (here, who the admins are; on a hub, which role)."""
    aiw.AISettings(home=tmp_path / "store", keyring=file_keyring, user="alice").add_admin("alice")
    viewer = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring, user="bob").panel()
    text = viewer.visible_text()
    assert (
        "You must be assigned the Admin account type to configure the OpenAI integration. Admins here: alice." in text
    )
    assert text.count("You must be assigned the Admin account type") == 1
