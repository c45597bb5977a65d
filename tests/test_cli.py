"""The ai-admin command line, run as a subprocess against a sandbox-backed store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from keyrings.alt.file import PlaintextKeyring
from records import age_last_authentication

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


#: The two ways to start the command: the console script pip installs, and the module.
ENTRY_POINTS = {
    "ai-admin": [str(Path(sys.executable).with_name("ai-admin"))],
    "python -m ai_admin_widgets": [sys.executable, "-m", "ai_admin_widgets"],
}


def ai_admin(env, *arguments, entry_point="python -m ai_admin_widgets"):
    return subprocess.run([*ENTRY_POINTS[entry_point], *arguments], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_status_test_remove_and_history_with_their_exit_codes(environment, entry_point):
    env, settings = environment

    def ai_admin(*arguments):
        return globals()["ai_admin"](env, *arguments, entry_point=entry_point)

    assert ai_admin("status").returncode == 1
    empty = ai_admin("history")
    assert empty.returncode == 0 and "Nothing has happened yet" in empty.stdout

    with aiw.Sandbox() as sandbox:
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
        status = ai_admin("status", "--json")
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert shown["provider"] == "openai" and shown["health"] == "ok"
        assert shown["last_authentication_summary"] == "Last authenticated just now: succeeded"

        tested = ai_admin("test")
        assert tested.returncode == 0, tested.stderr
        assert "OpenAI authenticated" in tested.stdout

    failed = ai_admin("test", "--json")  # the sandbox is gone: the endpoint refuses connections
    assert failed.returncode == 2
    assert {check["code"] for check in json.loads(failed.stdout)["checks"]} == {"connection_failed"}
    status = ai_admin("status")
    assert status.returncode == 2
    assert "Last authenticated just now: failed (connection_failed)" in status.stdout
    assert "Health: failing" in status.stdout and "Run 'ai-admin test' to authenticate again." in status.stdout
    assert json.loads(ai_admin("status", "--json").stdout)["last_authentication_codes"] == ["connection_failed"]

    refused = ai_admin("remove")
    assert refused.returncode == 3 and "--yes" in refused.stderr
    assert ai_admin("remove", "--yes").returncode == 0
    assert ai_admin("status").returncode == 1
    assert ai_admin("remove", "--yes").returncode == 1

    history = ai_admin("history")
    assert history.returncode == 0, history.stderr
    rows = history.stdout.splitlines()
    assert rows[0].split() == ["WHEN", "(UTC)", "WHO", "WHAT", "PROVIDER", "OUTCOME", "DETAILS"]
    assert [row.split()[3] for row in rows[1:]] == ["Added", "Tested", "Tested", "Removed"]  # oldest first
    assert rows[3].split()[5] == "failed"
    assert rows[3].endswith("Language model: connection_failed, Embeddings model: connection_failed")
    assert all(settings.user == row.split()[2] for row in rows[1:])


def test_home_may_follow_the_command_and_status_says_who_and_where(environment, tmp_path):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        settings.save(
            aiw.AzureOpenAIIntegration.shared(
                endpoint_url=sandbox.azure_endpoint,
                api_key=sandbox.azure_api_key,
                language_deployment_id="chat-gpt-4o",
                embeddings_deployment_id="embeddings-3-small",
            )
        )
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


def test_history_lists_the_newest_events_as_json_and_never_a_key(environment):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
        try:
            settings.save(
                aiw.OpenAIIntegration(api_key="sk-proj-not-the-right-key-0000", base_url=sandbox.openai_base_url)
            )
        except aiw.VerificationFailed:
            pass
        settings.set_allowed(users="alice, bob")
        key = sandbox.openai_api_key.get_secret_value()

    newest = ai_admin(env, "history", "--json", "--limit", "2", entry_point="ai-admin")
    assert newest.returncode == 0, newest.stderr
    events = json.loads(newest.stdout)
    assert [event["action"] for event in events] == ["save", "allow"]
    assert events[0]["outcome"] == "failed" and "invalid_api_key" in events[0]["codes"]

    table = ai_admin(env, "history", entry_point="ai-admin").stdout
    assert "Save refused" in table and "invalid_api_key" in table
    assert "Allow-lists changed" in table and "users: alice, bob" in table
    assert "API Key" in table.splitlines()[1]  # the Added row names the fields by title, never their values
    for output in (newest.stdout, table):
        assert key not in output and key[-12:] not in output


def test_a_stale_integration_exits_0_with_a_warning_and_the_age_is_adjustable(environment):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    age_last_authentication(settings, timedelta(days=9, hours=1))

    stale = ai_admin(env, "status", entry_point="ai-admin")
    assert stale.returncode == 0, stale.stderr  # it worked when last checked
    assert "Last authenticated 9 days ago: succeeded" in stale.stdout
    assert "Health: stale" in stale.stdout
    assert "Warning: The saved credentials were last authenticated more than 7 days ago" in stale.stdout

    assert json.loads(ai_admin(env, "status", "--json").stdout)["health"] == "stale"
    patient = ai_admin(env, "status", "--json", "--stale-after-days", "30")
    assert patient.returncode == 0 and json.loads(patient.stdout)["health"] == "ok"
    assert json.loads(ai_admin(env | {"AI_ADMIN_STALE_AFTER_DAYS": "30"}, "status", "--json").stdout)["health"] == "ok"

    typo = ai_admin(env | {"AI_ADMIN_STALE_AFTER_DAYS": "a week"}, "status")
    assert typo.returncode == 0 and "Health: stale" in typo.stdout
    assert (
        "AI_ADMIN_STALE_AFTER_DAYS must be a number of days from one minute (0.0007) to 36500, such as 7 or 0.5 (it is 'a week'). Using 7 days."
        in typo.stdout
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("history", "--limit", "0"), "argument --limit: must be a whole number of events, 1 or more (it is '0')"),
        (("history", "--limit", "ten"), "argument --limit: must be a whole number of events"),
        (
            ("status", "--stale-after-days", "-2"),
            "argument --stale-after-days: must be a number of days from one minute (0.0007) to 36500, such as 7",
        ),
        (
            ("status", "--stale-after-days", "1e-12"),
            "argument --stale-after-days: must be a number of days from one minute",
        ),
    ],
)
def test_a_mistyped_option_value_is_named_and_exits_3(environment, arguments, message):
    env, _ = environment
    mistyped = ai_admin(env, *arguments)
    assert mistyped.returncode == 3
    assert message in mistyped.stderr and "Traceback" not in mistyped.stderr


def test_help_names_every_command_and_what_stale_means(environment):
    env, _ = environment
    overview = ai_admin(env, "--help", entry_point="ai-admin")
    assert overview.returncode == 0
    for command in ("status", "test", "remove", "history"):
        assert command in overview.stdout
    status_help = " ".join(ai_admin(env, "status", "--help").stdout.split())
    assert (
        "Stale means the last authentication succeeded but is older than the stale age: status still exits 0"
        in status_help
    )


def test_a_settings_file_saved_in_another_encoding_is_damaged_and_remove_still_works(environment):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    record = settings.home / "settings.json"
    record.write_bytes(
        record.read_bytes().replace(b'"revision"', b'"Jos\xe9": 1, "revision"', 1)
    )  # a Latin-1 hand edit
    shown = ai_admin(env, "status")
    assert shown.returncode == 3 and "is damaged" in shown.stderr and "Traceback" not in shown.stderr
    removed = ai_admin(env, "remove", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert ai_admin(env, "status").returncode == 1


def test_a_line_of_the_audit_log_cut_short_or_in_another_encoding_is_skipped(environment):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    with open(settings.home / "audit.jsonl", "ab") as log:
        log.write(b'{"actor": "Jos\xc3\n{"actor": "Jos\xe9", "action": "saved"}\n')
    shown = ai_admin(env, "history")
    assert shown.returncode == 0, shown.stderr
    assert len(settings.audit_log()) == 1


def test_history_into_a_pipe_closed_early_is_quiet(environment):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        for _ in range(3):
            settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    command = [sys.executable, "-m", "ai_admin_widgets", "history"]
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    writer = subprocess.run(command, env=env, stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=60)
    reader.stdin.close()
    reader.wait(timeout=30)
    assert "Traceback" not in writer.stderr and "unexpected error" not in writer.stderr


def test_ctrl_c_during_a_test_is_one_line_not_a_traceback(environment):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    # the sandbox has stopped: its port now refuses; a listener that never answers keeps the test waiting
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        record = json.loads((settings.home / "settings.json").read_text(encoding="utf-8"))
        record["integration"]["base_url"] = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        (settings.home / "settings.json").write_text(json.dumps(record), encoding="utf-8")
        before = (settings.home / "settings.json").read_bytes()
        process = subprocess.Popen(
            [sys.executable, "-m", "ai_admin_widgets", "test"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        silent.settimeout(60)
        connection, _ = silent.accept()  # the command is now waiting for an answer that never comes
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        connection.close()
    finally:
        silent.close()
    assert process.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert (settings.home / "settings.json").read_bytes() == before


def test_practising_against_a_sandbox_uses_its_store_and_never_the_admins_own(environment):
    env, settings = environment
    with aiw.Sandbox() as sandbox:
        sandbox.settings().save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
        command = sandbox.cli_command("status")
        assert command.startswith("ai-admin --sandbox ")
        arguments = command.split()[1:]  # the folder has no space in it
        status = ai_admin(env, *arguments, entry_point="ai-admin")
        assert status.returncode == 0, status.stderr
        assert sandbox.openai_base_url in status.stdout
        tested = ai_admin(env, *arguments[:2], "test")
        assert tested.returncode == 0 and "Language model: ok" in tested.stdout
    assert not settings.status().configured  # the admin's own store (AI_ADMIN_HOME) was never touched
    stopped = ai_admin(env, *arguments)  # the sandbox's folder is gone with it
    assert stopped.returncode == 3 and "not a running sandbox's folder" in stopped.stderr
    both = ai_admin(env, *arguments, "--home", str(settings.home))
    assert both.returncode == 3


def test_a_file_given_as_home_is_one_clear_line(environment, tmp_path):
    env, _ = environment
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x", encoding="utf-8")
    answer = ai_admin(env, "--home", str(a_file), "status")
    assert answer.returncode == 3
    assert answer.stderr.strip().splitlines() == [
        f"ai-admin: {a_file} is a file, not a folder: give the store's folder to --home."
    ]


def test_testing_nothing_configured_says_so_even_without_a_keyring(environment):
    env, _ = environment
    env = env | {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    answer = ai_admin(env, "test")
    assert answer.returncode == 1 and "No OpenAI integration is configured" in answer.stderr
