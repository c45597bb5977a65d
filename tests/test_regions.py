"""The regions under the OpenAI row (Who may use AI, Budgets, Usage, History) on one machine, through the panel.

Driven as the front end would (``panel.press`` / ``type`` / ``choose``), read as the admin would
(``panel.visible_text``, ``panel.nodes``). The settings are real (a store in the test's folder, the file
keyring, the sandbox); a wrapper that notes every call on the Settings interface shows what a render
reads. The gateway's side of Budgets and Usage is in test_budgets.py and test_ops.py.
"""

from __future__ import annotations

import pytest
from records import CountingSettings

import ai_admin_widgets as aiw


def openai(sandbox) -> aiw.OpenAIIntegration:
    return aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)


@pytest.fixture
def alice(tmp_path, file_keyring, sandbox):
    """The admin of a store with an OpenAI integration (AI on)."""
    settings = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring, user="alice")
    settings.save(openai(sandbox))
    return settings


@pytest.fixture
def panel(alice):
    shown = alice.panel()
    yield shown
    shown.close()


def _one(panel, css_class):
    (node,) = panel.nodes(css_class)
    return node


# --------------------------------------------------------------------------- #
# Nothing is read for a closed region
# --------------------------------------------------------------------------- #


def test_closed_regions_read_nothing_and_history_reads_the_audit_log_only_while_open(alice):
    counting = CountingSettings(alice)
    panel = aiw.AISettingsPanel(counting)
    try:
        assert "Everyone may use AI." in panel.visible_text() and "[▸ Show history]" in panel.visible_text()
        assert not panel.nodes("aiw-allowed-users") and not panel.nodes("aiw-history-table")
        counting.calls.clear()
        panel.render()
        assert counting.calls == ["snapshot"], "a closed region read the settings"
        panel.press("aiw-access-toggle")  # Who may use AI, open, is drawn from the snapshot alone
        counting.calls.clear()
        panel.render()
        assert counting.calls == ["snapshot"] and panel.nodes("aiw-allowed-users")
        panel.press("aiw-history-toggle")
        counting.calls.clear()
        panel.render()
        assert counting.calls == ["snapshot", "history"]
        panel.press("aiw-history-toggle")
        counting.calls.clear()
        panel.render()
        assert counting.calls == ["snapshot"] and not panel.nodes("aiw-history-table")
    finally:
        panel.close()


def test_off_the_gateway_there_is_no_budgets_or_usage_region_and_neither_is_read(alice):
    counting = CountingSettings(alice)
    panel = aiw.AISettingsPanel(counting)
    try:
        text = panel.visible_text()
        assert "Budgets" not in text and "Show usage" not in text and "Show budgets" not in text
        assert not panel.nodes("aiw-budgets") and not panel.nodes("aiw-usage")
        assert "budgets" not in counting.calls and "usage_report" not in counting.calls
    finally:
        panel.close()


# --------------------------------------------------------------------------- #
# Who may use AI
# --------------------------------------------------------------------------- #


def test_who_may_use_ai_is_collapsed_at_first_and_its_summary_always_shown(panel):
    text = panel.visible_text()
    assert "Who may use AI" in text and "Everyone may use AI." in text and "[▸ Show details]" in text
    assert "Admins:" not in text and "[Apply]" not in text
    panel.press("aiw-access-toggle")
    text = panel.visible_text()
    assert "Admins: alice." in text and "Allowed users: " in text and "[Apply]" in text and "[▾ Hide details]" in text
    panel.press("aiw-access-toggle")
    assert "[Apply]" not in panel.visible_text()


def test_everyone_may_use_ai_is_said_only_while_ai_is_on(tmp_path, file_keyring, sandbox):
    settings = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring, user="alice")
    panel = settings.panel()
    try:
        text = panel.visible_text()
        assert "Everyone may use AI" not in text
        assert "Nobody may use AI: AI is off until the OpenAI integration is added." in text
        settings.save(openai(sandbox))
        assert "Everyone may use AI." in panel.visible_text()
        settings.set_allowed(users="carol")
        settings.remove()
        text = panel.visible_text()
        assert "Everyone may use AI" not in text
        assert "Nobody may use AI: AI is off until the OpenAI integration is added." in text
        assert "Once it is on, only these may use AI: the users carol." in text
    finally:
        panel.close()


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("data-science; ops", "not semicolons (;). Did you mean: data-science, ops?"),
        ("data-science | ops", "not bars (|). Did you mean: data-science, ops?"),
        ("data-science\nops", "not new lines. Did you mean: data-science, ops?"),
    ],
)
def test_a_group_list_with_another_separator_is_questioned_and_nothing_saved_is_lost(panel, alice, typed, said):
    alice.set_allowed(users="carol", groups="staff")
    panel.press("aiw-access-toggle")
    panel.type("aiw-allowed-groups", typed)
    field = _one(panel, "aiw-allowed-groups")
    assert field["error"] == f"Allowed groups: separate names with commas, {said}"
    panel.type("aiw-allowed-users", "carol, dave")
    panel.press("aiw-apply-access")
    message = _one(panel, "aiw-access-message")
    assert message["tone"] == "error" and message["text"].startswith("Nothing was saved. Allowed groups: separate")
    assert alice.access_lists().allowed_users == ("carol",) and alice.access_lists().allowed_groups == ("staff",)
    assert _one(panel, "aiw-allowed-groups")["value"] == typed  # what was typed stays, to be corrected
    assert _one(panel, "aiw-allowed-users")["value"] == "carol, dave"
    panel.type("aiw-allowed-groups", "data-science, ops")
    assert _one(panel, "aiw-allowed-groups")["error"] == ""
    panel.press("aiw-apply-access")
    assert alice.access_lists().allowed_groups == ("data-science", "ops")
    assert alice.access_lists().allowed_users == ("carol", "dave")


def test_a_user_list_with_a_semicolon_is_questioned_too(panel, alice):
    panel.press("aiw-access-toggle")
    panel.type("aiw-allowed-users", "carol;dave")
    panel.press("aiw-apply-access")
    assert "Allowed users: separate names with commas, not semicolons (;)" in panel.visible_text()
    assert alice.access_lists().everyone_may_use_ai


def test_a_name_saved_with_a_semicolon_before_is_kept_and_questioned_beside_its_field(panel, alice):
    alice.set_allowed(groups=["ops;qa"])  # as the Python API may still store it: one name
    panel.press("aiw-access-toggle")
    groups = _one(panel, "aiw-allowed-groups")
    assert groups["value"] == "ops;qa" and groups["error"] == ""
    assert groups["notice"].startswith("Allowed groups: “ops;qa” is saved as one name")
    panel.type("aiw-allowed-users", "carol")
    panel.press("aiw-apply-access")  # the groups as saved: applied as they are, nothing lost
    assert alice.access_lists().allowed_users == ("carol",) and alice.access_lists().allowed_groups == ("ops;qa",)


# --------------------------------------------------------------------------- #
# History
# --------------------------------------------------------------------------- #


def test_history_shows_the_newest_events_first_on_request(panel, alice):
    alice.test()
    alice.remove()
    assert not panel.nodes("aiw-history-table")
    panel.press("aiw-history-toggle")
    table = _one(panel, "aiw-history-table")
    assert table["kind"] == "table" and table["columns"][:3] == ["When (UTC)", "Who", "What"]
    assert [row[2] for row in table["rows"]][:3] == ["Removed", "Tested", "Added"]
    assert all(row[1] == "alice" for row in table["rows"]) and not panel.nodes("aiw-history-more")
    panel.press("aiw-history-toggle")
    assert not panel.nodes("aiw-history-table") and "[▸ Show history]" in panel.visible_text()


def test_history_shows_the_fifty_newest_and_says_so(panel, alice):
    for index in range(51):  # 52 events with the add
        alice.set_allowed(users=f"user{index}")
    panel.press("aiw-history-toggle")
    table = _one(panel, "aiw-history-table")
    assert len(table["rows"]) == 50 and "user50" in " ".join(table["rows"][0])
    assert "The 50 newest events." in panel.visible_text()


def test_an_empty_history_says_so(tmp_path, file_keyring):
    panel = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring).panel()
    try:
        panel.press("aiw-history-toggle")
        assert _one(panel, "aiw-history-table")["text"] == "Nothing has happened yet."
    finally:
        panel.close()
