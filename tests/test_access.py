"""Who may change the OpenAI integration, and who may use AI.

On JupyterHub the hub decides: a fake JupyterHub, a real HTTP server on 127.0.0.1,
answers ``/hub/api/user`` for an admin's token, a non-admin's token and a token without
the admin field, ``/hub/api/users/{name}`` for the admin's token, and 403 for anything
else. Off a hub the store's admins list decides. Nothing but 127.0.0.1 is contacted, and
keys live in the file keyring of the test's temp folder.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import string
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import ai_admin_widgets as aiw
from ai_admin_widgets.access import ADMIN_REQUIRED, AccessPolicy, clean_names

# --------------------------------------------------------------------------- #
# A fake JupyterHub
# --------------------------------------------------------------------------- #

USERS = {
    "ada": {"kind": "user", "name": "ada", "admin": True, "groups": ["staff"]},
    "vic": {"kind": "user", "name": "vic", "admin": False, "groups": ["data-science"]},
    "nia": {"kind": "user", "name": "nia", "groups": []},  # a token without read:users: no admin field
}
TOKENS = {"ada-token": "ada", "vic-token": "vic", "nia-token": "nia"}


class FakeHub:
    """JupyterHub's REST API, the two endpoints this package asks, on 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                hub.requests.append((self.path, auth))
                owner = TOKENS.get(auth[len("token ") :]) if auth.startswith("token ") else None
                if owner is None:
                    return self._answer(403, {"status": 403, "message": "Forbidden"})
                if self.path == "/hub/api/user":
                    return self._answer(200, USERS[owner])
                name = self.path.removeprefix("/hub/api/users/")
                if self.path.startswith("/hub/api/users/") and USERS[owner].get("admin") and name in USERS:
                    return self._answer(200, USERS[name])
                return self._answer(403 if self.path.startswith("/hub/api/users/") else 404, {"message": "no"})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub():
    running = FakeHub()
    yield running
    running.stop()


@pytest.fixture
def store_folder(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def as_hub_user(monkeypatch, hub, store_folder, file_keyring):
    """Open the shared store as a hub user: sets JUPYTERHUB_API_URL, _TOKEN and _USER, returns AISettings."""

    def open_as(user: str, token: str | None, *, api_url: str | None = None) -> aiw.AISettings:
        monkeypatch.setenv("JUPYTERHUB_API_URL", api_url or hub.api_url)
        monkeypatch.setenv("JUPYTERHUB_USER", user)
        if token is None:
            monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
        else:
            monkeypatch.setenv("JUPYTERHUB_API_TOKEN", token)
        return aiw.AISettings(home=store_folder, keyring=file_keyring)

    return open_as


def openai(sandbox) -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- #
# On JupyterHub: the hub's admin flag decides
# --------------------------------------------------------------------------- #


def test_a_hub_admin_may_save_and_the_hub_is_asked_with_the_servers_token(as_hub_user, hub, sandbox):
    ada = as_hub_user("ada", "ada-token")
    assert ada.is_admin()
    status = ada.save(openai(sandbox))
    assert status.configured and status.updated_by == "ada"
    assert ("/hub/api/user", "token ada-token") in hub.requests


def test_a_hub_non_admin_cannot_save_remove_or_retest_but_sees_the_status(as_hub_user, sandbox):
    as_hub_user("ada", "ada-token").save(openai(sandbox))
    sent = len(sandbox.requests)
    vic = as_hub_user("vic", "vic-token")
    assert not vic.is_admin()
    with pytest.raises(aiw.PermissionDenied, match=ADMIN_REQUIRED):
        vic.save(openai(sandbox))
    with pytest.raises(aiw.PermissionDenied, match=ADMIN_REQUIRED):
        vic.remove()
    with pytest.raises(aiw.PermissionDenied, match=ADMIN_REQUIRED):
        vic.test()
    assert len(sandbox.requests) == sent  # no credentials were sent for the refused calls
    status = vic.status()
    assert status.configured and status.updated_by == "ada"
    assert vic.test(openai(sandbox)).ok  # checking credentials of one's own stores nothing: open to all


def test_a_hub_non_admin_sees_a_read_only_panel(as_hub_user, sandbox):
    as_hub_user("ada", "ada-token").save(openai(sandbox))
    panel = as_hub_user("vic", "vic-token").panel()
    panel.press("aiw-access-toggle")  # Who may use AI's details: who the admins are
    text = panel.visible_text()
    assert "You must be assigned the Admin account type to configure the OpenAI integration." in text
    assert "OpenAI · gpt-4o" in text
    assert "Everyone may use AI." in text and "Admins: JupyterHub's admins." in text
    for css_class in ("aiw-add", "aiw-edit", "aiw-remove", "aiw-test", "aiw-allowed-users", "aiw-apply-access"):
        assert not panel.offered(css_class), css_class
    assert not [line for line in text.splitlines() if line in ("[Add]", "[Edit]", "[Remove]", "[Apply]")]


def test_a_hub_admin_sees_the_buttons(as_hub_user, sandbox):
    panel = as_hub_user("ada", "ada-token").panel()
    assert ADMIN_REQUIRED not in panel.visible_text()
    panel.press("aiw-access-toggle")
    assert panel.offered("aiw-add") and panel.offered("aiw-apply-access")


def test_a_token_the_hub_refuses_is_a_non_admin_with_the_reason(as_hub_user, hub):
    settings = as_hub_user("ada", "stolen-or-expired")
    check = settings.admin_check()
    assert not check.admin
    assert "refused this server's API token (HTTP 403)" in check.reason
    with pytest.raises(aiw.PermissionDenied) as raised:
        settings.set_allowed(users="ada")
    assert str(raised.value).startswith(ADMIN_REQUIRED) and "HTTP 403" in str(raised.value)
    assert "stolen-or-expired" not in str(raised.value)
    panel = settings.panel()
    text = panel.visible_text()
    assert ADMIN_REQUIRED in text and "refused this server's API token" in text
    panel.press("aiw-access-toggle")  # Who may use AI says why too, as a warning beside who the admins are
    (note,) = panel.nodes("aiw-access-note")
    assert "refused this server's API token" in note["text"] and note["tone"] == "warning"


def test_an_unreachable_hub_is_said_plainly_not_a_traceback(as_hub_user):
    settings = as_hub_user("ada", "ada-token", api_url=f"http://127.0.0.1:{closed_port()}/hub/api")
    assert not settings.is_admin()
    assert "Cannot reach JupyterHub at http://127.0.0.1:" in settings.admin_check().reason
    panel = settings.panel()
    assert "Cannot reach JupyterHub" in panel.visible_text()
    assert not panel.offered("aiw-add")
    assert not settings.status().configured  # the status is still there for everyone


def test_a_missing_token_says_which_variable(as_hub_user):
    settings = as_hub_user("ada", None)
    assert not settings.is_admin()
    assert "JUPYTERHUB_API_TOKEN is not set" in settings.admin_check().reason


def test_a_hub_answer_without_the_admin_field_is_a_non_admin(as_hub_user):
    settings = as_hub_user("nia", "nia-token")
    assert not settings.is_admin()
    assert "read:users" in settings.admin_check().reason


def test_the_hub_speaks_for_the_tokens_owner_only(as_hub_user, store_folder, file_keyring):
    as_hub_user("ada", "ada-token")
    settings = aiw.AISettings(home=store_folder, keyring=file_keyring, user="mallory")  # ada's token, another name
    assert not settings.is_admin()
    assert "belongs to 'ada', not 'mallory'" in settings.admin_check().reason


def test_on_a_hub_the_user_is_the_tokens_owner_and_a_disagreeing_jupyterhub_user_is_ignored(as_hub_user, caplog):
    settings = as_hub_user("mallory", "vic-token")  # JUPYTERHUB_USER says mallory, the token is vic's
    assert settings.user == "vic"
    assert not settings.is_admin()  # vic is no hub admin, whatever the variable says
    assert "JUPYTERHUB_USER says 'mallory'" in caplog.text and "belongs to 'vic'" in caplog.text
    assert as_hub_user("ada", "ada-token").user == "ada"


def test_a_user_cannot_borrow_someone_elses_allow_list_entry_or_groups(
    as_hub_user, store_folder, file_keyring, sandbox
):
    ada = as_hub_user("ada", "ada-token")
    ada.save(openai(sandbox))
    ada.set_allowed(users=["vic"], groups=["staff"])  # vic by name, ada by group
    nia = as_hub_user("vic", "nia-token")  # nia's token, JUPYTERHUB_USER set to vic
    assert nia.user == "nia" and not nia.can_use_ai()
    as_vic = aiw.AISettings(home=store_folder, keyring=file_keyring, user="vic")  # nia's token, vic's name
    assert not as_vic.can_use_ai()
    with pytest.raises(aiw.ai.AINotAllowed):
        aiw.ai.chat("hi", settings=as_vic)
    as_ada = aiw.AISettings(home=store_folder, keyring=file_keyring, user="ada")  # nia's token, a staff member's name
    assert not as_ada.can_use_ai()
    assert not nia.can_use_ai("vic") and not nia.can_use_ai("ada")
    assert as_hub_user("vic", "vic-token").can_use_ai() and as_hub_user("ada", "ada-token").can_use_ai()


def test_an_unreachable_hub_lets_nobody_through_a_non_empty_allow_list(as_hub_user, store_folder, sandbox):
    ada = as_hub_user("ada", "ada-token")
    ada.save(openai(sandbox))
    ada.set_allowed(users=["vic"])
    vic = as_hub_user("vic", "vic-token", api_url=f"http://127.0.0.1:{closed_port()}/hub/api")
    assert not vic.can_use_ai()  # the hub cannot say who holds the token: fail closed
    as_hub_user("ada", "ada-token").set_allowed(users=[])
    vic = as_hub_user("vic", "vic-token", api_url=f"http://127.0.0.1:{closed_port()}/hub/api")
    assert vic.can_use_ai()  # no restriction: nothing to confirm


def test_on_a_hub_the_stores_admins_list_does_not_count(as_hub_user, sandbox):
    as_hub_user("ada", "ada-token").save(openai(sandbox))
    ada = as_hub_user("ada", "ada-token")
    ada.add_admin("vic")  # recorded for use off the hub ...
    assert "vic" in ada.access_lists().admins
    assert not as_hub_user("vic", "vic-token").is_admin()  # ... but JupyterHub says vic is not an admin


def test_hub_groups_decide_who_may_use_ai(as_hub_user, sandbox):
    ada = as_hub_user("ada", "ada-token")
    ada.save(openai(sandbox))
    ada.set_allowed(users=[], groups=["data-science"])
    assert as_hub_user("vic", "vic-token").can_use_ai()  # vic's own model lists data-science
    ada = as_hub_user("ada", "ada-token")
    assert not ada.can_use_ai()  # ada is in staff only: being an admin does not allow use
    assert not ada.can_use_ai("vic")  # answered for the token's owner only, even to an admin
    assert not as_hub_user("vic", "vic-token").can_use_ai("ada")


def test_the_sandbox_never_asks_a_hub(monkeypatch, hub, sandbox):
    monkeypatch.setenv("JUPYTERHUB_API_URL", hub.api_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "vic-token")
    practice = sandbox.settings()
    assert practice.is_admin()  # off-hub rule: nobody configured the sandbox's store yet
    assert hub.requests == []  # not even to learn who the user is


# --------------------------------------------------------------------------- #
# A hub that stalls or floods: an overall deadline and a cap, then fail closed
# --------------------------------------------------------------------------- #


def hub_check_guarded(call):
    """``call()`` in a daemon thread, failing the test (not hanging it) after 20 seconds."""
    done: list = []
    finished = threading.Event()

    def run() -> None:
        done.append(call())
        finished.set()

    threading.Thread(target=run, daemon=True).start()
    assert finished.wait(20), "the hub check has no overall deadline"
    return done[0]


@pytest.mark.parametrize("endpoint", ["trickling_endpoint", "trickling_headers_endpoint"])
def test_a_hub_that_trickles_its_answer_is_a_non_admin_at_the_deadline(as_hub_user, sandbox, endpoint):
    hub_url = f"{getattr(sandbox, endpoint)}/hub/api"
    started = time.monotonic()

    def open_and_check():
        settings = as_hub_user("ada", "ada-token", api_url=hub_url)
        return settings, settings.admin_check()

    settings, check = hub_check_guarded(open_and_check)
    assert time.monotonic() - started < 6  # twice the 3 seconds, for working out the user and the admin check
    assert not check.admin
    assert "did not answer in full within 3 seconds" in check.reason and "non-admin" in check.reason
    assert settings.user != "ada"  # the hub never said so: the operating system's account


@pytest.mark.parametrize("endpoint", ["huge_answer_endpoint", "huge_length_endpoint"])
def test_a_hub_that_sends_a_huge_answer_is_refused_not_buffered(as_hub_user, sandbox, endpoint):
    hub_url = f"{getattr(sandbox, endpoint)}/hub/api"
    tracemalloc.start()
    try:
        check = hub_check_guarded(lambda: as_hub_user("ada", "ada-token", api_url=hub_url).admin_check())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not check.admin
    assert "larger than 1 MiB" in check.reason and "non-admin" in check.reason
    assert peak < 100 * 1024 * 1024


# --------------------------------------------------------------------------- #
# Off a hub: the store's admins list
# --------------------------------------------------------------------------- #


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="user ids need POSIX")
def test_off_a_hub_the_user_is_the_processs_account_whatever_the_environment_says(
    monkeypatch, store_folder, file_keyring
):
    import pwd

    from ai_admin_widgets.access import current_user

    for name in ("USER", "LOGNAME", "JUPYTERHUB_USER"):
        monkeypatch.setenv(name, "mallory")
    account = pwd.getpwuid(os.getuid()).pw_name
    assert account != "mallory"
    assert current_user() == account
    assert aiw.AISettings(home=store_folder, keyring=file_keyring).user == account


@pytest.fixture
def open_as(store_folder, file_keyring):
    return lambda user: aiw.AISettings(home=store_folder, keyring=file_keyring, user=user)


def test_the_first_user_who_configures_becomes_the_admin(open_as, sandbox):
    alice, bob = open_as("alice"), open_as("bob")
    assert alice.is_admin() and bob.is_admin()  # nobody yet: anyone may be first
    assert "first configures" in alice.admin_check().reason
    alice.save(openai(sandbox))
    assert alice.is_admin() and not bob.is_admin()
    assert alice.access_lists().admins == ("alice",)
    with pytest.raises(aiw.PermissionDenied, match="Admins here: alice"):
        bob.save(openai(sandbox))
    with pytest.raises(aiw.PermissionDenied):
        bob.remove()
    assert bob.status().configured and bob.status().updated_by == "alice"
    panel = bob.panel()
    panel.press("aiw-access-toggle")
    assert "Admins: alice." in panel.visible_text()


def test_the_settings_fixture_user_becomes_the_admin(settings, sandbox, store_folder, file_keyring):
    settings.save(openai(sandbox))
    assert settings.access_lists().admins == (settings.user,)
    assert settings.is_admin()


def test_a_failed_save_makes_nobody_admin(open_as, sandbox):
    alice = open_as("alice")
    with pytest.raises(aiw.VerificationFailed):
        alice.save(aiw.OpenAIIntegration(api_key="sk-wrong-key-0000", base_url=sandbox.openai_base_url))
    assert alice.access_lists().admins == ()
    assert open_as("bob").is_admin()


def test_an_admin_adds_and_removes_admins_and_one_always_remains(open_as, sandbox):
    alice, bob, carol = open_as("alice"), open_as("bob"), open_as("carol")
    alice.save(openai(sandbox))
    with pytest.raises(aiw.PermissionDenied):
        bob.add_admin("bob")
    alice.add_admin("bob")
    assert bob.is_admin() and not carol.is_admin()
    bob.save(openai(sandbox))  # a second admin may edit; the list stays as it is
    assert bob.access_lists().admins == ("alice", "bob")
    bob.remove_admin("alice")
    assert not alice.is_admin()
    with pytest.raises(ValueError, match="last admin"):
        bob.remove_admin("bob")
    with pytest.raises(ValueError, match="not on the admins list"):
        bob.remove_admin("carol")
    assert bob.access_lists().admins == ("bob",)
    actions = [(event["action"], event.get("user")) for event in bob.audit_log()]
    assert ("add-admin", "bob") in actions and ("remove-admin", "alice") in actions


def test_the_admins_and_allow_lists_survive_remove(open_as, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    alice.add_admin("bob")
    alice.set_allowed(users="carol", groups="ds")
    alice.remove()
    assert not alice.status().configured
    lists = alice.access_lists()
    assert lists.admins == ("alice", "bob") and lists.allowed_users == ("carol",) and lists.allowed_groups == ("ds",)
    assert not open_as("carol").is_admin()
    with pytest.raises(aiw.PermissionDenied):
        open_as("carol").save(openai(sandbox))
    open_as("bob").save(openai(sandbox))
    assert open_as("bob").access_lists().allowed_users == ("carol",)


def test_a_store_from_before_the_admins_list_counts_who_saved_it(open_as, store_folder, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    path = store_folder / "settings.json"
    record = json.loads(path.read_text())
    for name in ("admins", "allowed_users", "allowed_groups"):
        del record[name]
    path.write_text(json.dumps(record))
    assert alice.is_admin() and not open_as("bob").is_admin()
    alice.set_allowed(users="bob")  # the first change writes the list down
    assert "alice" in json.loads(path.read_text())["admins"]


def test_a_damaged_record_keeps_its_admins_when_they_can_be_read(open_as, store_folder, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    path = store_folder / "settings.json"
    record = json.loads(path.read_text())
    record["key_slots"] = []  # damaged: a provider without keys
    path.write_text(json.dumps(record))
    with pytest.raises(aiw.PermissionDenied):
        open_as("bob").remove()
    alice.remove()
    assert alice.access_lists().admins == ("alice",)
    assert not open_as("bob").is_admin()


def test_a_record_too_damaged_to_read_lets_anyone_who_may_write_switch_ai_off(open_as, store_folder, sandbox):
    open_as("alice").save(openai(sandbox))
    (store_folder / "settings.json").write_text('{"admins": ["ali')
    bob = open_as("bob")
    assert bob.is_admin()
    undone = bob.remove()
    assert not bob.status().configured
    assert not bob.can_use_ai()
    # Nothing of the damaged record could be read: the removal says what it could not do.
    assert len(undone) == 1 and "keys saved before stay in the keyring" in undone[0]
    assert "admins list starts again with bob" in undone[0]
    assert bob.access_lists().admins == ("bob",)


# --------------------------------------------------------------------------- #
# Who may use AI
# --------------------------------------------------------------------------- #


def test_nobody_may_use_ai_without_an_integration(open_as):
    assert not open_as("alice").can_use_ai()
    assert not open_as("alice").can_use_ai("bob")


def test_empty_allow_lists_let_everyone_use_ai(open_as, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    assert alice.access_lists().everyone_may_use_ai
    assert alice.can_use_ai() and alice.can_use_ai("anyone") and open_as("bob").can_use_ai()


def test_listed_users_may_use_ai_and_others_may_not(open_as, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    lists = alice.set_allowed(users=" carol , dave,carol,, ")
    assert lists.allowed_users == ("carol", "dave")
    assert alice.can_use_ai("carol") and open_as("dave").can_use_ai()
    assert not alice.can_use_ai("erin") and not alice.can_use_ai()  # the admin is not listed
    alice.set_allowed(users="")
    assert alice.can_use_ai("erin")


@pytest.mark.skipif(not hasattr(os, "getgrouplist"), reason="operating-system groups need POSIX")
def test_members_of_a_listed_os_group_may_use_ai(settings, sandbox):
    import grp
    import pwd

    try:
        group = grp.getgrgid(pwd.getpwnam(settings.user).pw_gid).gr_name
    except KeyError:
        pytest.skip("the current user has no passwd entry")
    settings.save(openai(sandbox))
    settings.set_allowed(users=[], groups=[group])
    assert settings.can_use_ai()  # the current user belongs to their primary group
    assert not settings.can_use_ai("no-such-user-on-this-system")
    settings.set_allowed(groups=["no-such-group-here"])
    assert not settings.can_use_ai()


def test_only_admins_set_the_allow_lists_and_each_change_is_audited_without_secrets(open_as, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    with pytest.raises(aiw.PermissionDenied):
        open_as("bob").set_allowed(users="bob")
    alice.set_allowed(users="carol", groups=["data-science"])
    event = alice.audit_log()[-1]
    assert event["action"] == "allow" and event["actor"] == "alice"
    assert event["allowed_users"] == ["carol"] and event["allowed_groups"] == ["data-science"]
    assert sorted(event["changed"]) == ["allowed_groups", "allowed_users"]
    key = sandbox.openai_api_key.get_secret_value()
    assert key not in (alice.home / "audit.jsonl").read_text()
    assert key not in (alice.home / "settings.json").read_text()


def test_names_are_tidied_and_odd_ones_refused():
    assert clean_names("alice, bob ,,alice") == ["alice", "bob"]
    assert clean_names(["Data Science", " ops "], kind="group") == ["Data Science", "ops"]
    with pytest.raises(ValueError, match="comma"):
        clean_names(["a,b"])
    with pytest.raises(ValueError, match="control"):
        clean_names("ali\x07ce")


# --------------------------------------------------------------------------- #
# The panel's "Who may use AI" region, by clicks
# --------------------------------------------------------------------------- #


def _one(panel, css_class):
    (node,) = panel.nodes(css_class)
    return node


def test_an_admin_edits_the_allow_lists_in_the_panel(open_as, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    panel = alice.panel()
    assert "Everyone may use AI." in panel.visible_text()
    panel.press("aiw-access-toggle")
    panel.type("aiw-allowed-users", " carol, dave ,carol")
    panel.type("aiw-allowed-groups", "data-science")
    panel.press("aiw-apply-access")
    text = panel.visible_text()
    assert "Only these may use AI: the users carol, dave; members of the groups data-science." in text
    assert "Allowed users: carol, dave" in text  # tidied as stored
    assert alice.can_use_ai("carol") and not alice.can_use_ai("erin")

    panel.type("access.allowed_users", "")
    panel.type("access.allowed_groups", "")
    panel.press("aiw-apply-access")
    assert "Everyone may use AI." in panel.visible_text()
    assert alice.can_use_ai("erin")


def test_a_bad_name_in_the_panel_is_explained_and_nothing_changes(open_as, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    panel = alice.panel()
    panel.press("aiw-access-toggle")
    panel.type("aiw-allowed-users", "carol, da\x07ve")
    panel.press("aiw-apply-access")
    assert "control or invisible character" in _one(panel, "aiw-access-message")["text"]
    assert _one(panel, "aiw-allowed-users")["value"] == "carol, da\x07ve"  # what was typed stays, to be corrected
    assert alice.access_lists().everyone_may_use_ai


def test_another_panel_on_the_same_settings_follows_a_change(open_as, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    first, second = alice.panel(), alice.panel()
    first.press("aiw-access-toggle")
    first.type("aiw-allowed-groups", "ops")
    first.press("aiw-apply-access")
    assert "members of the groups ops" in second.visible_text()


def test_a_non_admin_sees_the_allow_lists_read_only(open_as, sandbox):
    alice = open_as("alice")
    alice.save(openai(sandbox))
    alice.set_allowed(users="carol")
    panel = open_as("bob").panel()
    panel.press("aiw-access-toggle")
    text = panel.visible_text()
    assert ADMIN_REQUIRED in text
    assert "Only these may use AI: the users carol." in text and "Admins: alice." in text
    assert not panel.offered("aiw-allowed-users") and not panel.offered("aiw-apply-access")
    with pytest.raises(LookupError, match="aiw-apply-access"):
        panel.press("aiw-apply-access")
    panel.handle({"event": "access.apply", "values": {"access.allowed_users": "bob"}})  # sent anyway: refused
    assert alice.access_lists().allowed_users == ("carol",)


def test_a_forced_policy_still_works(store_folder, file_keyring):
    viewer = aiw.AISettings(home=store_folder, keyring=file_keyring, user="x", access=AccessPolicy(admin=False))
    assert not viewer.is_admin()
    with pytest.raises(aiw.PermissionDenied, match=ADMIN_REQUIRED):
        viewer.set_allowed(users="x")


def test_a_key_pasted_as_a_user_name_is_refused_and_never_stored(settings, sandbox):
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    pasted = sandbox.openai_api_key.get_secret_value() + "".join(
        secrets.choice(string.ascii_uppercase) for _ in range(8)
    )
    with pytest.raises(ValueError, match="looks like an API key") as caught:
        settings.set_allowed(users=f"alice, {pasted}")
    assert pasted not in str(caught.value)
    assert pasted not in (settings.home / "settings.json").read_text()
    assert pasted not in (settings.home / "audit.jsonl").read_text()


def test_a_key_pasted_into_the_allowed_users_field_never_enters_the_panels_state(settings, sandbox):
    settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    settings.set_allowed(users="carol")
    panel = settings.panel()
    pasted = sandbox.openai_api_key.get_secret_value() + "".join(
        secrets.choice(string.ascii_uppercase) for _ in range(8)
    )
    panel.press("aiw-access-toggle")
    panel.type("aiw-allowed-users", f"alice, {pasted}")
    assert "looks like an API key" in _one(panel, "aiw-allowed-users")["error"]
    assert pasted not in json.dumps(panel.state) and _one(panel, "aiw-allowed-users")["value"] == ""
    # Apply on the emptied field does not save it empty (which would let everyone use AI): refused
    panel.press("aiw-apply-access")
    assert "looks like an API key" in _one(panel, "aiw-access-message")["text"]
    assert settings.access_lists().allowed_users == ("carol",)
    # Apply sent before the emptied field came back: the key arrives with the event's values
    panel.handle({"event": "access.apply", "values": {"access.allowed_users": f"alice, {pasted}"}})
    assert "looks like an API key" in _one(panel, "aiw-access-message")["text"]
    assert pasted not in json.dumps(panel.state) and settings.access_lists().allowed_users == ("carol",)
    assert pasted not in (settings.home / "audit.jsonl").read_text()
    panel.type("aiw-allowed-users", "alice")  # typed again: applied
    panel.press("aiw-apply-access")
    assert settings.access_lists().allowed_users == ("alice",) and not _one(panel, "aiw-allowed-users")["error"]
