"""The gateway's operations: the usage report (``ai-admin usage``, the panel's Usage region), ``health/live`` and
``health/ready``, Prometheus ``/metrics`` and the periodic re-authentication, on a practice gateway (a real
tornado server, the sandbox as the provider, the hub stand-in) and on SQLite and a real PostgreSQL.

Usage rows are inserted into ``ai_gateway_usage_events`` directly (the columns the budgets part's recording
writes) wherever a test needs known figures. The tests that need the gateway itself to record its calls in
the database skip, naming why, until that recording (``ai_admin_widgets/gateway/usage.py``) is there.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families
from test_database import Database, database  # noqa: F401  (the fixture: SQLite, and a database in the cluster)
from test_gateway import _environment

import ai_admin_widgets as aiw
from ai_admin_widgets.client import GatewaySettings
from ai_admin_widgets.gateway import db
from ai_admin_widgets.gateway.health import REAUTH_ACTOR
from ai_admin_widgets.gateway.practice import Practice
from ai_admin_widgets.gateway.report import usage_report
from ai_admin_widgets.models import NotOnGateway, PermissionDenied
from ai_admin_widgets.widgets import view

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: The budgets part writes every forwarded call to the database (gateway/usage.py); until it is merged, only
#: inserted rows are there, and the tests of the gateway's own recording skip.
RECORDS_CALLS = importlib.util.find_spec("ai_admin_widgets.gateway.usage") is not None
NEEDS_RECORDING = pytest.mark.skipif(
    not RECORDS_CALLS, reason="the gateway's own recording of calls in the database (the budgets part) is not here yet"
)


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _at(days_ago: int, hour: int = 12) -> datetime:
    return datetime.combine(_today() - timedelta(days=days_ago), clock(hour, 0), tzinfo=timezone.utc)


def _call(
    days_ago: int,
    user: str,
    groups: list[str] | None,
    model: str | None,
    prompt: int | None,
    completion: int | None,
    *,
    outcome: str = "ok",
    hour: int = 12,
    total: int | None = None,
) -> dict[str, Any]:
    """One usage row as a forwarded call writes it (the usage event's keys, with its time)."""
    embeddings = bool(model and "embedding" in model)
    return {
        "at": _at(days_ago, hour),
        "request_id": f"req_{uuid.uuid4().hex[:16]}",
        "username": user,
        "groups": groups,
        "operation": "embeddings" if embeddings else "chat",
        "role": "embeddings" if embeddings else "language",
        "model": model,
        "stream": False,
        "outcome": outcome,
        "code": {"ok": "ok", "failed": "server_error", "refused": "budget_exceeded"}[outcome],
        "status": {"ok": 200, "failed": 502, "refused": 429}[outcome],
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total if total is not None else (None if prompt is None else prompt + (completion or 0)),
        "latency_ms": 123.4,
        "replica": "test:1",
    }


#: Calls over four days: two analysts in groups, a model-less refusal, a failure without figures, one call
#: before the report's first day and one whose provider gave only a total.
CALLS = [
    _call(0, "ann", ["analysts", "staff"], "gpt-4o", 120, 30),
    _call(0, "ann", ["analysts", "staff"], "text-embedding-3-small", 50, 0),
    _call(0, "bob", ["analysts"], "gpt-4o", 10, 5, hour=1),
    _call(1, "bob", ["analysts"], "gpt-4o", None, None, outcome="failed"),
    _call(1, "cy", [], "gpt-4o", 400, 100),
    _call(2, "cy", None, None, None, None, outcome="refused"),
    _call(2, "ann", ["analysts", "staff"], "gpt-4o", None, None, total=77),
    _call(9, "dee", ["staff"], "gpt-4o", 1000, 1000),  # before --since 8 days ago
]


def _insert(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(db.usage_table), rows)


def _expected(rows: list[dict[str, Any]], key: Any) -> dict[str, dict[str, int]]:
    """The sums a report must show, computed here from the rows."""
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        for name in key(row):
            sums = found.setdefault(
                name, dict.fromkeys(("calls", "failures", "refused", "prompt", "completion", "tokens"), 0)
            )
            sums["calls"] += 1
            sums["failures"] += row["outcome"] == "failed"
            sums["refused"] += row["outcome"] == "refused"
            sums["prompt"] += row["prompt_tokens"] or 0
            sums["completion"] += row["completion_tokens"] or 0
            sums["tokens"] += row["total_tokens"] or 0
    return found


def _sums(total: Any) -> dict[str, int]:
    return {
        "calls": total.calls,
        "failures": total.failures,
        "refused": total.refused,
        "prompt": total.prompt_tokens,
        "completion": total.completion_tokens,
        "tokens": total.tokens,
    }


KEYS = {
    "user": lambda row: [row["username"]],
    "group": lambda row: row["groups"] or ["(no group)"],
    "model": lambda row: [row["model"] or "(none)"],
}


# --------------------------------------------------------------------------- #
# The report's sums, on SQLite and PostgreSQL
# --------------------------------------------------------------------------- #


def test_the_usage_report_sums_per_day_and_per_user_group_and_model(database):  # noqa: F811
    engine = db.open_database(database.url)
    try:
        _insert(engine, CALLS)
        since = _today() - timedelta(days=8)
        counted = [row for row in CALLS if row["at"].date() >= since]
        for by, key in KEYS.items():
            report = usage_report(engine, since, by)
            assert (report.since, report.until, report.by) == (since, _today(), by)
            expected = _expected(counted, key)
            assert {total.key: _sums(total) for total in report.totals} == expected, by
            assert [total.tokens for total in report.totals] == sorted(
                (sums["tokens"] for sums in expected.values()), reverse=True
            )
            per_day: dict[tuple[date, str], dict[str, int]] = {}
            for row in counted:
                for name, sums in _expected([row], key).items():
                    day = per_day.setdefault((row["at"].date(), name), dict.fromkeys(sums, 0))
                    for measure, value in sums.items():
                        day[measure] += value
            assert {(entry.day, entry.key): _sums(entry) for entry in report.days} == per_day, by
            assert [entry.day for entry in report.days] == sorted(entry.day for entry in report.days)
            assert _sums(report.overall) == _expected(counted, lambda row: ["all"])["all"]  # each call once
        assert [user.key for user in report.top_users] == ["cy", "ann", "bob"]  # by tokens, whatever `by` is
        assert usage_report(engine, _today(), "user").overall.calls == 3  # today only
        everything = usage_report(engine, None, "user")  # the default: the last 30 days
        assert everything.since == _today() - timedelta(days=29) and everything.overall.calls == len(CALLS)
        with pytest.raises(ValueError, match="after today"):
            usage_report(engine, _today() + timedelta(days=1))
        with pytest.raises(ValueError, match="by must be one of user, group, model"):
            usage_report(engine, None, "caller")
    finally:
        engine.dispose()


def test_a_report_names_the_heaviest_users_per_day_and_sums_the_rest_as_others(tmp_path):
    from ai_admin_widgets.gateway.report import CHART_KEYS

    engine = db.open_database(f"sqlite:///{tmp_path / 'usage.sqlite'}")
    rows = [_call(0, f"user{number:02d}", [], "gpt-4o", 10 * (number + 1), 0) for number in range(CHART_KEYS + 5)]
    _insert(engine, rows)
    report = usage_report(engine, None, "user")
    keys = [entry.key for entry in report.days]
    assert len(keys) == CHART_KEYS + 1 and keys[-1] == "(others)"  # the smallest five, summed
    assert report.days[-1].tokens == sum(10 * (number + 1) for number in range(5))
    assert len(report.totals) == CHART_KEYS + 5 and sum(entry.tokens for entry in report.days) == report.overall.tokens
    engine.dispose()


# --------------------------------------------------------------------------- #
# ai-admin usage, as a subprocess against a practice gateway
# --------------------------------------------------------------------------- #


@pytest.fixture
def practice(tmp_path):
    """A practice gateway on a SQLite database of the test's, with the calls of CALLS in it and an integration saved."""
    engine = db.open_database(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    _insert(engine, CALLS)
    with Practice(engine=engine) as running:
        _save(running)
        yield running
    engine.dispose()


def _save(practice: Practice) -> None:
    sandbox = practice.sandbox
    _settings(practice, "admin").save(
        aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url)
    )


def _settings(practice: Practice, who: str) -> GatewaySettings:
    return GatewaySettings(practice.gateway_url, token=practice.tokens[who])


def _usage(practice: Practice, *arguments: str, who: str = "admin") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", "usage", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(AI_ADMIN_GATEWAY_URL=practice.gateway_url, JUPYTERHUB_API_TOKEN=practice.tokens[who]),
    )


def test_ai_admin_usage_prints_the_report_as_json_csv_and_a_table(practice):
    since = (_today() - timedelta(days=8)).isoformat()
    counted = [row for row in CALLS if row["at"].date().isoformat() >= since]
    done = _usage(practice, "--json", "--since", since)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["since"] == since and report["by"] == "user"
    assert {total["key"]: total["tokens"] for total in report["totals"]} == {
        name: sums["tokens"] for name, sums in _expected(counted, KEYS["user"]).items()
    }
    assert report["overall"]["calls"] == len(counted)

    done = _usage(practice, "--csv", "--by", "model", "--since", since)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == [
        "day",
        "model",
        "calls",
        "failures",
        "refused",
        "prompt_tokens",
        "completion_tokens",
        "tokens",
    ]
    per_model: dict[str, int] = {}
    for row in rows:
        per_model[row["model"]] = per_model.get(row["model"], 0) + int(row["tokens"])
    assert per_model == {name: sums["tokens"] for name, sums in _expected(counted, KEYS["model"]).items()}
    assert {row["day"] for row in rows} == {row["at"].date().isoformat() for row in counted}

    done = _usage(practice, "--by", "group")  # the table: a line per day and group, then the totals
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        f"AI usage by group, {_today() - timedelta(days=29)} to {_today()} (UTC): {len(CALLS)} calls"
    )
    assert re.search(r"^DAY \(UTC\)\s+GROUP\s+CALLS\s+FAILED\s+REFUSED\s+PROMPT\s+COMPLETION\s+TOKENS$", lines[2])
    staff = _expected(CALLS, KEYS["group"])["staff"]
    assert re.search(
        rf"^all days\s+staff\s+{staff['calls']}\s+{staff['failures']}\s+{staff['refused']}\s+", done.stdout, re.M
    )


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--since", "2026-13-01"], "argument --since: must be a day written YYYY-MM-DD"),
        (["--since", "last week"], "argument --since: must be a day written YYYY-MM-DD"),
        (["--since", "2999-01-01"], "is after today"),
        (["--since", "2001-01-01"], "a report covers at most 366 days"),
        (["--by", "caller"], "argument --by: invalid choice: 'caller'"),
        (["--json", "--csv"], "not allowed with argument"),
    ],
)
def test_ai_admin_usage_says_what_is_wrong_with_its_options_in_one_line(practice, arguments, said):
    done = _usage(practice, *arguments)
    assert done.returncode == 3 and done.stdout == "" and "Traceback" not in done.stderr
    assert said in done.stderr.splitlines()[-1], done.stderr


def test_usage_is_for_those_who_may_configure_and_only_on_a_hub(practice, tmp_path):
    from ai_admin_widgets.gateway import CONFIGURE_SCOPE

    done = _usage(practice, who="analyst")
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1 and CONFIGURE_SCOPE in done.stderr
    assert "ann" not in done.stderr and done.stdout == ""
    with pytest.raises(PermissionDenied, match="usage report"):
        _settings(practice, "analyst").usage_report()
    answer = httpx.get(f"{practice.gateway_url}/api/usage-report", timeout=10)
    assert answer.status_code == 401
    answer = httpx.get(
        f"{practice.gateway_url}/api/usage-report",
        params={"since": "soon"},
        headers={"authorization": f"token {practice.tokens['admin']}"},
        timeout=10,
    )
    assert answer.status_code == 422 and "since must be a day written YYYY-MM-DD" in answer.json()["error"]["message"]

    (tmp_path / "store").mkdir()
    done = subprocess.run(  # one machine: no gateway, no usage
        [sys.executable, "-m", "ai_admin_widgets", "usage", "--home", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
    )
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1 and "AI gateway on JupyterHub" in done.stderr
    with pytest.raises(NotOnGateway):
        aiw.AISettings(home=tmp_path / "store").usage_report()


@NEEDS_RECORDING
def test_the_calls_made_through_the_gateway_are_in_ai_admin_usage(practice):
    """Every forwarded call is in ai_gateway_usage_events: ai-admin usage and the panel's chart show them."""
    before = json.loads(_usage(practice, "--json", "--since", _today().isoformat()).stdout)["overall"]
    client = OpenAI(base_url=practice.gateway_url + "/v1", api_key=practice.tokens["analyst"], max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "count me"}])
    client.embeddings.create(model="text-embedding-3-small", input=["count me too"])
    done = _usage(practice, "--json", "--since", _today().isoformat())
    report = json.loads(done.stdout)
    assert report["overall"]["calls"] == before["calls"] + 2
    analyst = next(total for total in report["totals"] if total["key"] == "practice-analyst")
    assert analyst["calls"] == 2 and analyst["prompt_tokens"] >= answer.usage.prompt_tokens > 0
    panel = _settings(practice, "admin").panel()
    try:
        panel.press("aiw-usage-toggle")
        svg, table = _chart(panel), _top(panel)
        assert f'data-day="{_today()}"' in svg and 'data-key="practice-analyst"' in svg
        assert "practice-analyst" in [row[0] for row in table["rows"]]
    finally:
        panel.close()


# --------------------------------------------------------------------------- #
# The Usage region of the panel
# --------------------------------------------------------------------------- #


def _day_groups(svg: str) -> list[str]:
    return re.findall(r'<g class="aiw-usage-day" data-day="([0-9-]+)"', svg)


def _chart(panel: Any) -> str:
    (chart,) = panel.nodes("aiw-usage-chart")
    assert chart["kind"] == "svg"
    return chart["markup"]


def _top(panel: Any) -> dict:
    (table,) = panel.nodes("aiw-usage-top")
    assert table["kind"] == "table"
    return table


def test_the_usage_region_charts_tokens_per_day_by_user_or_model_and_lists_the_top_users(practice):
    panel = _settings(practice, "admin").panel()
    try:
        assert panel.offered("aiw-usage-toggle") and not panel.nodes("aiw-usage-chart")  # offered, closed
        panel.press("aiw-usage-toggle")
        svg = _chart(panel)
        days = sorted({row["at"].date().isoformat() for row in CALLS})
        assert svg.startswith("<svg") and svg.endswith("</svg>") and _day_groups(svg) == days  # oldest first
        assert "var(--jp-brand-color1" in svg and "var(--jp-ui-font-color" in svg
        users = set(re.findall(r'data-key="([^"]+)"', svg))
        assert users == {"ann", "bob", "cy", "dee"}
        today = _expected([row for row in CALLS if row["at"].date() == _today()], KEYS["user"])
        assert f'data-day="{_today()}" data-tokens="{sum(sums["tokens"] for sums in today.values())}"' in svg
        legend = re.search(r'<g class="aiw-usage-legend".*?</g>', svg)
        assert legend and set(re.findall(r">([a-z]+)</text>", legend.group())) == users  # the legend, in the SVG
        table = _top(panel)
        assert [row[0] for row in table["rows"]] == ["dee", "cy", "ann", "bob"]  # most tokens first
        assert "Prompt tokens" in table["columns"] and "Completion tokens" in table["columns"]
        text = panel.visible_text()
        assert "Tokens per day: (By user) | By model" in text and f"{len(CALLS)} calls" in text
        assert "Tokens per day by user" in text  # the chart's text alternative

        panel.choose("aiw-usage-by", "model")
        svg = _chart(panel)
        assert set(re.findall(r'data-key="([^"]+)"', svg)) == {"gpt-4o", "text-embedding-3-small", "(none)"}
        assert _day_groups(svg) == days
        assert "Tokens per day: By user | (By model)" in panel.visible_text()
        kept = json.loads(json.dumps(panel.state))  # the synced state, as a saved notebook keeps it
        assert [node["markup"] for node in view.find(kept["root"], "aiw-usage-chart")] == [svg]
        panel.press("aiw-usage-toggle")
        assert not panel.nodes("aiw-usage-chart") and "[▸ Show usage]" in panel.visible_text()
    finally:
        panel.close()


def test_the_usage_region_is_only_for_those_who_may_configure_and_only_on_a_hub(practice, sandbox):
    panel = _settings(practice, "analyst").panel()
    assert not panel.nodes("aiw-usage") and "Show usage" not in panel.visible_text()
    panel.close()
    read = []
    local = sandbox.settings()
    local.usage_report = lambda *args, **kwargs: read.append(args) or pytest.fail("read off a hub")  # type: ignore[method-assign]
    panel = local.panel()
    assert not panel.nodes("aiw-usage") and "Show usage" not in panel.visible_text() and read == []
    panel.close()


def test_a_closed_usage_region_reads_nothing(practice):
    admin = _settings(practice, "admin")
    read: list[str] = []
    report = admin.usage_report
    admin.usage_report = lambda *args, **kwargs: read.append(kwargs.get("by", "user")) or report(*args, **kwargs)  # type: ignore[method-assign]
    panel = admin.panel()
    try:
        panel.render()
        assert read == [] and panel.offered("aiw-usage-toggle")
        panel.press("aiw-usage-toggle")
        panel.choose("aiw-usage-by", "model")
        assert read[0] == "user" and read[-1] == "model"  # read while open, by the choice
        panel.press("aiw-usage-toggle")
        before = len(read)
        panel.render()
        assert len(read) == before
    finally:
        panel.close()


# --------------------------------------------------------------------------- #
# health/live and health/ready
# --------------------------------------------------------------------------- #


def _ready(practice: Practice) -> httpx.Response:
    return httpx.get(f"{practice.gateway_url}/health/ready", timeout=30)


def _wait_for(predicate: Any, what: str, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"{what} within {seconds:g} s")


def test_health_answers_without_a_token_and_ready_names_each_check(tmp_path):
    engine = db.open_database(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    with Practice(engine=engine) as practice:
        live = httpx.get(f"{practice.gateway_url}/health/live", timeout=10)
        assert live.status_code == 200 and live.json() == {"live": True}
        answer = _ready(practice)
        assert answer.status_code == 503 and answer.headers["cache-control"] == "no-store"
        assert answer.json() == {
            "ready": False,
            "checks": {
                "database": {"ok": True, "detail": "reachable"},
                "integration": {"ok": False, "detail": "not configured"},
                "authentication": {"ok": False, "detail": "nothing to authenticate"},
            },
        }
        _save(practice)
        answer = _ready(practice)
        assert answer.status_code == 200, answer.text
        checks = answer.json()["checks"]
        assert checks["authentication"] == {"ok": True, "detail": "passed just now"}
        key = practice.sandbox.openai_api_key.get_secret_value()
        for secretish in (key, key[-8:], practice.sandbox.url, "practice-admin", "gpt-4o", str(tmp_path)):
            assert secretish not in answer.text  # fixed words only

        _settings(practice, "admin").remove()
        answer = _ready(practice)
        assert answer.status_code == 503 and answer.json()["checks"]["integration"] == {
            "ok": False,
            "detail": "not configured",
        }
    engine.dispose()


def test_ready_is_503_when_the_postgresql_database_is_gone(cluster):
    name = f"t_{uuid.uuid4().hex[:12]}"
    cluster.admin(f"CREATE DATABASE {name}")
    engine = db.open_database(cluster.url(name))
    try:
        with Practice(engine=engine) as practice:
            _save(practice)
            assert _ready(practice).status_code == 200
            cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")
            answer = _ready(practice)
            assert answer.status_code == 503
            assert answer.json()["checks"]["database"] == {"ok": False, "detail": "unreachable"}
            assert name not in answer.text and "127.0.0.1" not in answer.text
            cluster.admin(f"CREATE DATABASE {name}")
            db.upgrade(engine)  # the operator restores it: ready again, without a restart
            _wait_for(lambda: _ready(practice).json()["checks"]["database"]["ok"], "the database check passing again")
    finally:
        engine.dispose()
        cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _usage_event(number: int) -> dict[str, Any]:
    return {
        "at": datetime.now(timezone.utc),
        "username": f"user-{number}",
        "operation": "chat",
        "role": "language",
        "model": "gpt-4o",
        "outcome": "ok",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "request_id": f"req-{number}",
    }


def _recorded(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(sa.select(db.usage_table.c.request_id)).scalars())


#: How long the database refuses connections in the outage tests: longer than the old writer's retries (3, 1 s apart).
OUTAGE_SECONDS = 6.0


def _outage(cluster: Any, name: str) -> None:
    cluster.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    cluster.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


def test_calls_recorded_while_the_database_does_not_answer_are_written_once_it_does(cluster, caplog):
    from ai_admin_widgets.gateway.usage import UsageWriter

    name = f"t_{uuid.uuid4().hex[:12]}"
    cluster.admin(f"CREATE DATABASE {name}")
    engine = db.open_database(cluster.url(name))
    writer = UsageWriter(engine)
    try:
        writer.put(_usage_event(0))
        assert writer.flush() and _recorded(engine) == ["req-0"]
        _outage(cluster, name)
        for number in range(1, 201):
            writer.put(_usage_event(number))
        assert not writer.flush(timeout=1.0)  # nothing can be committed now
        time.sleep(OUTAGE_SECONDS)  # the outage itself: the database stays unreachable this long
        cluster.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert writer.flush(timeout=60.0)
        assert _recorded(engine) == sorted(f"req-{number}" for number in range(201))
        assert "not recorded" not in caplog.text and "dropped" not in caplog.text
        assert "keeping them and trying again" in caplog.text
    finally:
        writer.close()
        engine.dispose()
        cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_while_the_database_does_not_answer_at_most_max_waiting_calls_wait_the_oldest_dropped(cluster, caplog):
    from ai_admin_widgets.gateway.usage import UsageWriter

    name = f"t_{uuid.uuid4().hex[:12]}"
    cluster.admin(f"CREATE DATABASE {name}")
    engine = db.open_database(cluster.url(name))
    writer = UsageWriter(engine, max_waiting=10)
    try:
        _outage(cluster, name)
        for number in range(30):
            writer.put(_usage_event(number))
        _wait_for(lambda: "were dropped" in caplog.text, "the line saying what was dropped")
        cluster.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert writer.flush(timeout=60.0)
        assert _recorded(engine) == sorted(f"req-{number}" for number in range(20, 30))  # the newest ten
        dropped = [
            int(found) for found in re.findall(r"(\d+) AI call\(s\) waiting to be recorded were dropped", caplog.text)
        ]
        assert sum(dropped) == 20
    finally:
        writer.close()
        engine.dispose()
        cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --------------------------------------------------------------------------- #
# /metrics
# --------------------------------------------------------------------------- #


def _metrics(practice: Practice, token: str | None) -> httpx.Response:
    headers = {"authorization": f"token {token}"} if token else {}
    return httpx.get(f"{practice.gateway_url}/metrics", headers=headers, timeout=10)


def _prometheus_token(practice: Practice) -> str:
    """A hub service's token with read:metrics, as a Prometheus scraping the hub holds."""
    token = f"practice-prometheus-{uuid.uuid4().hex}"
    practice.users[token] = {"kind": "service", "name": "prometheus", "scopes": ["read:metrics"]}
    return token


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_the_calls_by_role_and_outcome_for_a_token_with_read_metrics(practice):
    client = OpenAI(base_url=practice.gateway_url + "/v1", api_key=practice.tokens["analyst"], max_retries=0)
    failing = []
    practice.gateway.observers.insert(0, lambda event: failing.append(1) or 1 / 0)  # a broken observer: logged only
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "one"}])
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "two"}], stream=True).close()
    client.embeddings.create(model="text-embedding-3-small", input=["three"])
    with pytest.raises(Exception, match="not one of the organization's models"):
        client.chat.completions.create(model="someone-elses-model", messages=[{"role": "user", "content": "four"}])
    assert len(failing) == 4

    assert _metrics(practice, None).status_code == 401
    refused = _metrics(practice, practice.tokens["admin"])  # may configure, but no read:metrics
    assert refused.status_code == 403 and "read:metrics" in refused.json()["error"]["message"]
    answer = _metrics(practice, _prometheus_token(practice))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    requests = {labels: value for (name, labels), value in samples.items() if name == "ai_gateway_requests_total"}
    assert (
        requests[(("outcome", "ok"), ("role", "language"))] >= 1
    )  # a streamed call cancelled early may count as cancelled
    assert requests[(("outcome", "ok"), ("role", "embeddings"))] == 1
    assert requests[(("outcome", "refused"), ("role", "language"))] == 1
    assert sum(requests.values()) == 4
    count = samples[("ai_gateway_request_duration_seconds_count", (("outcome", "ok"), ("role", "embeddings")))]
    assert count == 1
    labels = {value for (_, pairs) in samples for _, value in pairs}
    assert labels <= {
        "language",
        "embeddings",
        "other",
        "ok",
        "refused",
        "failed",
        "cancelled",
        "prompt",
        "completion",
        "error",
    } | {
        value for value in labels if re.fullmatch(r"[0-9.]+|\+Inf", value)
    }  # bounded: no user, no model the caller named
    assert "practice-analyst" not in answer.text and "someone-elses-model" not in answer.text


@NEEDS_RECORDING
def test_metrics_count_the_tokens_the_provider_counted(practice):
    """Depends on the budgets part's recording: the usage event carries the provider's token figures."""
    client = OpenAI(base_url=practice.gateway_url + "/v1", api_key=practice.tokens["analyst"], max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "count the tokens"}])
    samples = _samples(_metrics(practice, _prometheus_token(practice)).text)
    assert (
        samples[("ai_gateway_tokens_total", (("kind", "prompt"), ("role", "language")))] == answer.usage.prompt_tokens
    )
    assert (
        samples[("ai_gateway_tokens_total", (("kind", "completion"), ("role", "language")))]
        == answer.usage.completion_tokens
    )


def test_two_gateways_in_one_process_count_apart(practice):
    with Practice() as other:
        client = OpenAI(base_url=practice.gateway_url + "/v1", api_key=practice.tokens["analyst"], max_retries=0)
        client.embeddings.create(model="text-embedding-3-small", input=["only here"])
        mine = _samples(_metrics(practice, _prometheus_token(practice)).text)
        theirs = _samples(_metrics(other, _prometheus_token(other)).text)
    assert mine[("ai_gateway_requests_total", (("outcome", "ok"), ("role", "embeddings")))] == 1
    assert sum(value for (name, _), value in theirs.items() if name == "ai_gateway_requests_total") == 0


# --------------------------------------------------------------------------- #
# The periodic re-authentication
# --------------------------------------------------------------------------- #


def _reauthentications(practice: Practice, token: str, outcome: str) -> float:
    return _samples(_metrics(practice, token).text)[("ai_gateway_reauthentications_total", (("outcome", outcome),))]


def test_the_gateway_reauthenticates_on_its_interval_and_a_revoked_key_turns_ready_to_503(tmp_path):
    engine = db.open_database(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    with Practice(engine=engine, reauth_seconds=1.0) as practice:
        token = _prometheus_token(practice)
        assert _reauthentications(practice, token, "ok") == 0  # nothing saved: nothing to re-authenticate
        _save(practice)
        started = time.monotonic()
        _wait_for(lambda: _reauthentications(practice, token, "ok") >= 3, "three re-authentications")
        elapsed = time.monotonic() - started
        assert elapsed >= 2.0  # at most one an interval, each when the last one on record is an interval old
        admin = _settings(practice, "admin")
        history = admin.history()
        assert [event.actor for event in history if event.action.value == "authenticate"][:3] == [REAUTH_ACTOR] * 3
        assert all(event.outcome == "ok" for event in history)
        checked = [request for request in practice.sandbox.requests if request["path"].startswith("/v1/")]
        assert len(checked) >= 2 * 4  # both models, at the Save and at each re-authentication

        practice.sandbox.revoke(practice.sandbox.openai_api_key)
        answer = _wait_for(lambda: (found := _ready(practice)).status_code == 503 and found, "ready turning 503")
        assert answer.json()["checks"]["authentication"]["ok"] is False
        assert answer.json()["checks"]["authentication"]["detail"].startswith("the last authentication failed")
        status = admin.status()  # what the panel's row shows as the last authentication
        assert status.last_authentication_ok is False and "invalid_api_key" in status.last_authentication_codes
        assert _reauthentications(practice, token, "failed") >= 1
        panel = admin.panel()
        assert "failed" in panel.text_of("aiw-status").lower() and panel.nodes("aiw-health")
        panel.close()

        practice.sandbox.reinstate(practice.sandbox.openai_api_key)  # the admin fixed it: ready again, by itself
        _wait_for(lambda: _ready(practice).status_code == 200, "ready again after the key works again")
    engine.dispose()


def test_after_a_failed_authentication_ready_comes_back_soon_not_an_interval_later(tmp_path):
    """One failure on record (here a Test while the key was revoked) is tried again after the retry, not the interval."""
    engine = db.open_database(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    with Practice(engine=engine, reauth_seconds=600.0, reauth_retry_seconds=1.0) as practice:
        token = _prometheus_token(practice)
        _save(practice)
        _wait_for(lambda: _ready(practice).status_code == 200, "ready after the save")
        admin = _settings(practice, "admin")
        practice.sandbox.revoke(practice.sandbox.openai_api_key)
        assert not admin.test().ok
        assert _ready(practice).status_code == 503
        practice.sandbox.reinstate(practice.sandbox.openai_api_key)  # the provider's outage is over
        _wait_for(lambda: _ready(practice).status_code == 200, "ready again well before the 600 s interval")
        assert _reauthentications(practice, token, "ok") >= 1
        assert admin.status().last_authentication_ok is True
    engine.dispose()


def test_serve_refuses_a_reauthentication_interval_it_cannot_keep(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ai_admin_widgets",
            "gateway",
            "serve",
            "--home",
            str(tmp_path),
            "--reauth-minutes",
            "-5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(
            JUPYTERHUB_SERVICE_URL="http://127.0.0.1:10101",
            JUPYTERHUB_API_URL="http://127.0.0.1:8081/hub/api",
            KEYRING_CRYPTFILE_PASSWORD="practice-password",
        ),
    )
    assert done.returncode == 3 and len(done.stderr.splitlines()) == 1 and "--reauth-minutes" in done.stderr


SERVE = (sys.executable, "-m", "ai_admin_widgets", "gateway", "serve")


def test_serve_reauthenticates_on_its_interval_and_serves_metrics_without_a_token_when_told(tmp_path):
    """``ai-admin gateway serve --reauth-minutes 0.02 --metrics-without-token`` as the hub starts it."""
    import signal
    import socket
    import threading

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Practice() as practice:  # its hub stand-in and its sandbox; its own gateway is not used
        process = subprocess.Popen(
            [*SERVE, "--home", str(tmp_path / "gateway"), "--reauth-minutes", "0.02", "--metrics-without-token"],
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(
                JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
                JUPYTERHUB_SERVICE_PREFIX="/services/ai-gateway/",
                JUPYTERHUB_API_URL=practice.hub_api_url,
                JUPYTERHUB_API_TOKEN="service-token",
                KEYRING_CRYPTFILE_PASSWORD="a service password",
                AI_ADMIN_GATEWAY_ALLOW_HOSTS="127.0.0.1",
            ),
        )
        lines: list[str] = []
        listening = threading.Event()

        def drain() -> None:  # the gateway logs every request: read its stderr as it comes
            for line in process.stderr:  # type: ignore[union-attr]
                lines.append(line)
                if "AI gateway on" in line:
                    listening.set()

        threading.Thread(target=drain, daemon=True).start()
        try:
            assert listening.wait(60), lines
            url = f"http://127.0.0.1:{port}/services/ai-gateway"
            sandbox = practice.sandbox
            admin = GatewaySettings(url, token=practice.tokens["admin"])
            admin.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))

            def reauthentications() -> float:
                answer = httpx.get(f"{url}/metrics", timeout=10)  # no token: --metrics-without-token
                assert answer.status_code == 200
                return _samples(answer.text)[("ai_gateway_reauthentications_total", (("outcome", "ok"),))]

            _wait_for(lambda: reauthentications() >= 2, "two re-authentications by the served gateway")
            assert httpx.get(f"{url}/health/ready", timeout=10).status_code == 200
            sandbox.revoke(sandbox.openai_api_key)
            _wait_for(lambda: httpx.get(f"{url}/health/ready", timeout=10).status_code == 503, "ready turning 503")
            assert [event.actor for event in admin.history()].count(REAUTH_ACTOR) >= 3
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert process.returncode == 0
    said = "".join(lines)
    assert "Traceback" not in said and sandbox.openai_api_key.get_secret_value() not in said
    assert "Re-authentication of the saved integration: failed (invalid_api_key" in said
