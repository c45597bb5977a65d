"""The ai-admin command line, run as a subprocess against a sandbox-backed store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from keyrings.alt.file import PlaintextKeyring

import ai_admin_widgets as aiw


@pytest.fixture
def environment(tmp_path):
    """A store folder and a file keyring that both this process and the subprocess use."""
    env = dict(os.environ)
    env.update(
        AI_ADMIN_HOME=str(tmp_path / "store"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        AI_ADMIN_ALLOW_PLAINTEXT_KEYRING="1",
    )
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "data" / "python_keyring" / "keyring_pass.cfg")
    return env, aiw.AISettings(home=tmp_path / "store", keyring=backend)


def ai_admin(env, *arguments):
    return subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", *arguments], env=env, capture_output=True, text=True, timeout=60
    )


def test_status_test_and_remove_with_their_exit_codes(environment):
    env, settings = environment
    assert ai_admin(env, "status").returncode == 1

    with aiw.Sandbox() as sandbox:
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
        status = ai_admin(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["provider"] == "openai"

        tested = ai_admin(env, "test")
        assert tested.returncode == 0, tested.stderr
        assert "OpenAI authenticated" in tested.stdout

    failed = ai_admin(env, "test", "--json")  # the sandbox is gone: the endpoint refuses connections
    assert failed.returncode == 2
    assert {check["code"] for check in json.loads(failed.stdout)["checks"]} == {"connection_failed"}
    assert ai_admin(env, "status").returncode == 2

    refused = ai_admin(env, "remove")
    assert refused.returncode == 3 and "--yes" in refused.stderr
    assert ai_admin(env, "remove", "--yes").returncode == 0
    assert ai_admin(env, "status").returncode == 1
    assert ai_admin(env, "remove", "--yes").returncode == 1


def test_home_may_follow_the_command_and_status_says_who_and_where(environment, tmp_path):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        settings.save(aiw.AzureOpenAIIntegration.shared(
            endpoint_url=sandbox.azure_endpoint, api_key=sandbox.azure_api_key,
            language_deployment_id="chat-gpt-4o", embeddings_deployment_id="embeddings-3-small",
        ))
    home = env.pop("AI_ADMIN_HOME")
    shown = ai_admin(env, "status", "--home", home)
    assert shown.returncode == 0, shown.stderr
    assert "deployment chat-gpt-4o" in shown.stdout
    assert f"Saved by {settings.user}" in shown.stdout
    assert "Keyring: " in shown.stdout


def test_a_missing_home_folder_is_pointed_out(environment, tmp_path):
    env, _ = environment
    missing = ai_admin(env, "--home", str(tmp_path / "typo"), "status")
    assert missing.returncode == 1
    assert "is not a folder yet" in missing.stderr


def test_a_damaged_store_is_one_line_and_exit_3(environment):
    env, settings = environment
    settings.home.mkdir(parents=True)
    (settings.home / "settings.json").write_text("{ damaged", encoding="utf-8")
    shown = ai_admin(env, "status")
    assert shown.returncode == 3
    assert "Traceback" not in shown.stderr and "is damaged" in shown.stderr


def test_a_mistyped_command_exits_3_not_the_authentication_code(environment):
    env, _ = environment
    mistyped = ai_admin(env, "stauts")
    assert mistyped.returncode == 3
    assert "invalid choice" in mistyped.stderr
