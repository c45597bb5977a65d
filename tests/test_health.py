"""Health: how long ago the saved credentials were last authenticated, with what result, and whether that is stale.

Time is controlled by the settings' injected clock, or by writing the record's
authentication time; nothing sleeps.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ai_admin_widgets as aiw
from ai_admin_widgets.health import duration_text, parse_stale_after_days, time_ago
from ai_admin_widgets.store import SettingsStore

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("elapsed", "words"),
    [
        (timedelta(seconds=0), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(seconds=-30), "just now"),  # another server's clock a little ahead
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=5, seconds=59), "5 minutes ago"),
        (timedelta(minutes=59), "59 minutes ago"),
        (timedelta(hours=1), "1 hour ago"),
        (timedelta(hours=3, minutes=59), "3 hours ago"),
        (timedelta(hours=23, minutes=59), "23 hours ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=2, hours=23), "2 days ago"),
        (timedelta(days=400), "400 days ago"),
    ],
)
def test_time_ago_in_words(elapsed, words):
    assert time_ago(NOON - elapsed, NOON) == words


def test_time_ago_takes_a_naive_time_as_utc():
    assert time_ago(datetime(2026, 3, 14, 9, 0), NOON) == "3 hours ago"


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
def test_time_ago_never_overstates_the_time(elapsed):
    words = time_ago(NOON - elapsed, NOON)
    if words == "just now":
        assert elapsed < timedelta(minutes=1)
        return
    count, unit = int(words.split()[0]), words.split()[1].rstrip("s")
    size = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}[unit]
    assert count * size <= elapsed < (count + 1) * size


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(days=7), "7 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(minutes=90), "90 minutes"),
        (timedelta(seconds=30), "30 seconds"),
    ],
)
def test_duration_in_words(delta, words):
    assert duration_text(delta) == words


def test_stale_age_is_read_in_days_and_a_typo_is_named():
    assert parse_stale_after_days(" 0.5 ") == timedelta(hours=12)
    for typo in ("seven", "-1", "0", "1e-12", "nan", "inf", ""):
        with pytest.raises(
            ValueError,
            match=re.escape(
                "AI_ADMIN_STALE_AFTER_DAYS must be a number of days from one minute (0.0007) to 36500, such as 7"
            ),
        ):
            parse_stale_after_days(typo)


def clock_at(moment):
    return lambda: moment


def save_openai(settings, sandbox):
    return settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))


def test_nothing_saved_is_not_configured_and_never_stale(settings):
    status = settings.status()
    assert status.health is aiw.Health.NOT_CONFIGURED and status.health.label == "not configured"
    assert status.stale is False and status.last_authentication_summary is None and status.health_problem() is None


def test_a_save_is_an_authentication_that_ages_into_stale(tmp_path, file_keyring, sandbox):
    settings = aiw.AISettings(home=tmp_path / "store", keyring=file_keyring)
    saved_at = save_openai(settings, sandbox).last_authenticated_at

    def status_after(elapsed, **options):
        later = aiw.AISettings(
            home=tmp_path / "store", keyring=file_keyring, clock=clock_at(saved_at + elapsed), **options
        )
        return later.status()

    fresh = status_after(timedelta(hours=3))
    assert fresh.health is aiw.Health.OK and not fresh.stale
    assert fresh.last_authentication_summary == "Last authenticated 3 hours ago: succeeded"
    assert fresh.health_problem() is None

    assert status_after(timedelta(days=7)).health is aiw.Health.OK  # exactly the age: not yet stale
    stale = status_after(timedelta(days=9))
    assert stale.health is aiw.Health.STALE and stale.stale
    assert stale.last_authentication_summary == "Last authenticated 9 days ago: succeeded"
    assert "more than 7 days ago" in stale.health_problem()

    strict = status_after(timedelta(hours=3), stale_after=timedelta(hours=2))
    assert strict.health is aiw.Health.STALE and "more than 2 hours ago" in strict.health_problem()


def test_a_failed_test_is_recorded_with_its_codes_and_flags_the_integration(settings, sandbox, file_keyring):
    save_openai(settings, sandbox)
    sandbox.stop()  # the service is gone: the next test cannot connect
    report = settings.test()
    assert not report.ok
    status = settings.status()
    assert status.health is aiw.Health.FAILING
    assert status.last_authentication_codes == ("connection_failed",)  # once, though both models failed
    assert status.last_authentication_summary == "Last authenticated just now: failed (connection_failed)"
    assert "failed (connection_failed)" in status.health_problem()
    later = aiw.AISettings(
        home=settings.home, keyring=file_keyring, clock=clock_at(status.last_authenticated_at + timedelta(days=30))
    )
    assert later.status().health is aiw.Health.FAILING  # failing wins over stale
    assert later.status().stale


def test_a_passing_test_clears_a_recorded_failure(settings, sandbox):
    status = save_openai(settings, sandbox)
    SettingsStore(settings.home, None).record_authentication(
        ok=False, revision=status.revision, codes=["invalid_api_key", "invalid_api_key"]
    )
    assert settings.status().last_authentication_summary.endswith("failed (invalid_api_key)")
    assert settings.test().ok
    assert settings.status().health is aiw.Health.OK
    assert settings.status().last_authentication_codes == ()


def test_a_record_without_an_authentication_is_stale_and_says_so(settings, sandbox):
    save_openai(settings, sandbox)
    record_path = settings.home / "settings.json"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    record.pop("last_authentication")  # as written before authentications were recorded
    record_path.write_text(json.dumps(record), encoding="utf-8")
    status = settings.status()
    assert status.health is aiw.Health.STALE
    assert status.last_authentication_summary == "Never authenticated"
    assert status.health_problem() == "The saved credentials have no authentication on record."


def test_the_stale_age_comes_from_the_environment_and_a_typo_there_is_a_warning(
    settings, sandbox, monkeypatch, file_keyring
):
    saved_at = save_openai(settings, sandbox).last_authenticated_at
    monkeypatch.setenv("AI_ADMIN_STALE_AFTER_DAYS", "1")
    one_day = aiw.AISettings(home=settings.home, keyring=file_keyring, clock=clock_at(saved_at + timedelta(days=2)))
    assert one_day.stale_after == timedelta(days=1)
    assert one_day.status().health is aiw.Health.STALE

    monkeypatch.setenv("AI_ADMIN_STALE_AFTER_DAYS", "a week")
    typo = aiw.AISettings(home=settings.home, keyring=file_keyring, clock=clock_at(saved_at + timedelta(days=2)))
    assert typo.stale_after == timedelta(days=7)
    status = typo.status()
    assert status.health is aiw.Health.OK
    assert any(
        "AI_ADMIN_STALE_AFTER_DAYS must be a number of days from one minute" in warning and "Using 7 days" in warning
        for warning in status.warnings
    )


@pytest.mark.parametrize("wrong", [timedelta(0), timedelta(days=-1), 7])
def test_a_wrong_stale_age_in_code_is_refused(tmp_path, wrong):
    with pytest.raises(ValueError, match="stale_after must be a positive timedelta"):
        aiw.AISettings(home=tmp_path, stale_after=wrong)


def test_status_json_carries_health_and_the_phrase(settings, sandbox):
    save_openai(settings, sandbox)
    shown = json.loads(settings.status().model_dump_json())
    assert shown["health"] == "ok" and shown["stale"] is False
    assert shown["last_authentication_summary"] == "Last authenticated just now: succeeded"
    assert shown["stale_after_seconds"] == 7 * 86400


def test_a_last_authentication_recorded_in_the_future_is_a_clock_problem_not_fresh_forever():
    now = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
    status = aiw.IntegrationStatus(
        configured=True,
        provider=aiw.Provider.OPENAI,
        checked_at=now,
        last_authenticated_at=now + timedelta(days=30),
        last_authentication_ok=True,
    )
    assert status.health is aiw.models.Health.STALE
    assert "recorded in the future" in status.health_problem() and "clock" in status.health_problem()
    slightly_ahead = status.model_copy(update={"last_authenticated_at": now + timedelta(minutes=2)})
    assert slightly_ahead.health is aiw.models.Health.OK  # two servers' clocks differ a little


def test_times_with_another_offset_are_shown_in_utc():
    status = aiw.IntegrationStatus(
        configured=True,
        provider=aiw.Provider.OPENAI,
        last_authenticated_at=datetime.fromisoformat("2026-11-29T23:59:00+05:00"),
        last_authentication_ok=True,
        updated_at=datetime.fromisoformat("2026-11-29T23:59:00+05:00"),
    )
    assert status.updated_at == datetime(2026, 11, 29, 18, 59, tzinfo=timezone.utc)
    assert status.last_authenticated_at.utcoffset() == timedelta(0)
