"""Keys stay secret: the key field, Edit without retyping, and a leak hunt through every flow."""

from __future__ import annotations

import json
import uuid

import ipywidgets as widgets
import nbformat
import pytest
from nbclient import NotebookClient

import ai_admin_widgets as aiw


def widget_state() -> str:
    return json.dumps(widgets.Widget.get_manager_state(drop_defaults=False))


def test_a_typed_key_reaches_the_kernel_but_never_the_widget_state(sandbox):
    panel = sandbox.settings().panel()
    marker = f"sk-LEAKMARKER-{uuid.uuid4().hex}"
    panel.press("aiw-add")
    panel.handle({"event": "field.blur", "path": "api_key", "value": marker, "values": panel.values()})
    assert panel.form.key("api_key") == marker
    assert marker not in widget_state() and marker not in json.dumps(panel.state)
    assert marker not in repr(panel) + repr(panel.form)
    panel.close()
    assert panel.form.key("api_key") == "", "closing the panel forgets the typed key"


def test_enter_saves_and_escape_cancels(sandbox):
    panel = sandbox.settings().panel()
    panel.press("aiw-add")
    panel.type("aiw-openai-api-key", sandbox.openai_api_key.get_secret_value())
    panel.enter()
    assert panel.settings.status().configured

    panel.press("aiw-edit")
    panel.escape()
    assert (
        "Edit OpenAI Integration" not in panel.visible_text() and "Add OpenAI Integration" not in panel.visible_text()
    )
    panel.close()


def test_edit_with_an_empty_key_keeps_the_saved_key(sandbox):
    settings = sandbox.settings()
    settings.save(
        aiw.AzureOpenAIIntegration.shared(
            endpoint_url=sandbox.azure_endpoint,
            api_key=sandbox.azure_api_key,
            language_deployment_id="chat-gpt-4",
            embeddings_deployment_id="embeddings-3-small",
        )
    )
    panel = settings.panel()
    panel.press("aiw-edit")
    assert "Leave empty to keep the saved key" in panel.nodes("aiw-language-api-key")[0]["placeholder"]
    panel.type("aiw-language-deployment-id", "chat-gpt-4o")
    panel.press("aiw-save")

    status = settings.status()
    assert status.models[0].deployment_id == "chat-gpt-4o"
    assert status.key_hint == "…" + sandbox.azure_api_key.get_secret_value()[-4:]


def test_a_saved_key_is_never_sent_to_another_host(sandbox):
    settings = sandbox.settings()
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    with aiw.Sandbox() as elsewhere:
        panel = settings.panel()
        panel.press("aiw-edit")
        panel.type("aiw-openai-base-url", elsewhere.openai_base_url)
        panel.press("aiw-save")
        assert "Type the API Key again: the endpoint's host changed" in panel.nodes("aiw-openai-api-key")[0]["error"]
        assert elsewhere.requests == []
    assert settings.status().models[0].endpoint_url == sandbox.openai_base_url


def test_the_saved_key_is_only_offered_to_admins(sandbox):
    from ai_admin_widgets.access import AccessPolicy

    settings = sandbox.settings()
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    viewer = sandbox.settings(user="viewer", access=AccessPolicy(admin=False))
    with pytest.raises(aiw.PermissionDenied):
        viewer.saved_key("api_key", sandbox.openai_base_url)


LEAK_NOTEBOOK = '''
import logging, json, subprocess, sys, os
import ai_admin_widgets as aiw
from keyrings.alt.file import PlaintextKeyring

logging.basicConfig(filename=LOG, level=logging.DEBUG, force=True)
sandbox = aiw.Sandbox().start()
keyring = PlaintextKeyring()
keyring.file_path = KEYRING_FILE
settings = aiw.AISettings(home=HOME, keyring=keyring, openai_base_url=sandbox.openai_base_url)
panel = settings.panel()
display(panel)

def type_key(path, text):
    """What the browser sends when the admin types a key and leaves the field: a custom message."""
    panel.handle({"event": "field.blur", "path": path, "value": text, "values": panel.values()})

async def settle():
    """In a kernel, Save runs on the event loop: wait for it."""
    if panel._task is not None:
        await panel._task

# Add by the panel, after a failed Save with a wrong key.
panel.press("aiw-add")
type_key("api_key", "sk-wrong-" + MARKER)
panel.press("aiw-save")
await settle()
print(panel.visible_text())
type_key("api_key", MARKER)
panel.press("aiw-save")
await settle()
print(panel.visible_text())

# Edit, type a key, Cancel.
panel.press("aiw-edit")
type_key("api_key", MARKER)
panel.press("aiw-cancel")

# Switch to Azure OpenAI from a cell, with a failed save first.
try:
    settings.save(aiw.AzureOpenAIIntegration.shared(endpoint_url=sandbox.azure_endpoint, api_key=AZURE_MARKER,
        language_deployment_id="no-such", embeddings_deployment_id="embeddings-3-small"))
except aiw.VerificationFailed as failure:
    print(failure); print(repr(failure.report))
status = settings.save(aiw.AzureOpenAIIntegration.shared(endpoint_url=sandbox.azure_endpoint, api_key=AZURE_MARKER,
    language_deployment_id="chat-gpt-4o", embeddings_deployment_id="embeddings-3-small"))
print(status); print(settings.test()); print(settings.audit_log())

# A typed key left in the field, then the notebook is saved with its widget state.
panel.press("aiw-edit")
type_key("language_model.api_key", AZURE_MARKER)
panel.choose("aiw-provider", "azure_openai")
print(repr(panel.form))

# The command line.
env = dict(os.environ, AI_ADMIN_HOME=HOME, XDG_DATA_HOME=XDG, PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
           AI_ADMIN_ALLOW_PLAINTEXT_KEYRING="1")
for arguments in (["status", "--json"], ["test", "--json"]):
    done = subprocess.run([sys.executable, "-m", "ai_admin_widgets", *arguments], env=env, capture_output=True, text=True)
    print(done.stdout, done.stderr)

# Remove.
panel.escape()
panel.press("aiw-remove")
panel.press("aiw-confirm-remove")
print(panel.visible_text())

# Add again, a key typed and left in its field when the notebook is saved with its widget state.
panel.press("aiw-add")
panel.choose("aiw-provider", "azure_openai")
type_key("language_model.api_key", AZURE_MARKER)
sandbox.stop()
'''


def test_no_flow_leaves_a_key_in_any_file_output_log_or_widget_state(tmp_path, monkeypatch):
    marker = f"sk-sandbox-LEAK{uuid.uuid4().hex}"
    azure_marker = f"sandbox-azure-LEAK{uuid.uuid4().hex}"
    home, xdg = tmp_path / "store", tmp_path / "xdg"
    keyring_file = xdg / "python_keyring" / "keyring_pass.cfg"  # the CLI's plaintext keyring: where keys belong
    log = tmp_path / "kernel.log"
    # The keys reach the kernel through its environment, so that not even the notebook's source holds them.
    monkeypatch.setenv("LEAK_MARKER", marker)
    monkeypatch.setenv("LEAK_AZURE_MARKER", azure_marker)
    setup = (
        "import os\nMARKER = os.environ['LEAK_MARKER']\nAZURE_MARKER = os.environ['LEAK_AZURE_MARKER']\n"
        + "\n".join(
            f"{name} = {value!r}"
            for name, value in dict(HOME=str(home), XDG=str(xdg), KEYRING_FILE=str(keyring_file), LOG=str(log)).items()
        )
    )
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(LEAK_NOTEBOOK)]
    )
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    saved = tmp_path / "leak.ipynb"
    nbformat.write(notebook, saved)

    outputs = json.dumps([cell.get("outputs", []) for cell in notebook.cells], ensure_ascii=False)
    assert "OpenAI · gpt-4o" in outputs and "Azure OpenAI" in outputs, "the flows did not run"
    assert "widgets" in notebook.metadata, "the widget state was not stored"
    secrets = [marker, azure_marker, "sk-wrong-" + marker]
    needles = [secret[:-4] for secret in secrets] + [secret[4:-4] for secret in secrets]
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path != keyring_file]
    assert log in written and saved in written
    for path in written:
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in needles:
            assert needle not in text, f"a key leaked into {path.relative_to(tmp_path)}"
    assert marker not in outputs
