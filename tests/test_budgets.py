"""Usage and budgets on the gateway's database, SQLite and a real PostgreSQL: every forwarded call a row of
``ai_gateway_usage_events`` with the service's own token counts (streams included), never the prompt; budgets per
user, group and organization, per UTC day and month, requests per minute, refused with OpenAI's 429; the bound
on spend with two replicas on one PostgreSQL database and 200 concurrent calls; ``ai-admin budgets``; the panel's
Budgets region; a database at schema 0001 refused by serve and upgraded by ``upgrade-db``.

Practice gateways (a real tornado server, a stand-in hub, the sandbox) on ``engine=`` the test's database.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from openai import OpenAI
from postgres import PG_PASSWORD
from test_database import Database, _environment, _key, _serve_refusal, database  # noqa: F401 (a fixture)

import ai_admin_widgets as aiw
from ai_admin_widgets.client import GatewaySettings
from ai_admin_widgets.gateway import db
from ai_admin_widgets.gateway.auth import USE_SCOPE
from ai_admin_widgets.gateway.crypt import multi_fernet, parse_crypt_keys
from ai_admin_widgets.gateway.dbkeyring import DatabaseKeyring
from ai_admin_widgets.gateway.practice import Practice
from ai_admin_widgets.models import NotOnGateway, PermissionDenied, checked_budget

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CHAT = "gpt-4o"
EMBEDDINGS = "text-embedding-3-small"


@pytest.fixture
def gateway(database):  # noqa: F811 (the imported fixture)
    """A practice gateway on the test's database (its own sandbox), the OpenAI integration saved."""
    engine = db.open_database(database.url)
    try:
        with Practice(engine=engine) as practice:
            _save(practice)
            yield practice
    finally:
        engine.dispose()


def _save(practice: Practice) -> None:
    sandbox = practice.sandbox
    _admin(practice).save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))


def _admin(practice: Practice) -> GatewaySettings:
    return GatewaySettings(practice.gateway_url, token=practice.tokens["admin"])


def _client(practice: Practice, who: str = "analyst") -> OpenAI:
    return OpenAI(base_url=practice.gateway_url + "/v1", api_key=practice.tokens[who], max_retries=0)


def _rows(practice: Practice) -> list[dict]:
    """Every usage row, oldest first, read straight from the table once the writer has written what it was given."""
    assert practice.gateway.usage_writer.flush()
    with practice.gateway.engine.connect() as connection:
        rows = connection.execute(sa.select(db.usage_table).order_by(db.usage_table.c.id)).all()
    return [dict(row._mapping) for row in rows]


def _chat(client: OpenAI, text: str = "hello there", **options):
    return client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": text}], **options)


# --------------------------------------------------------------------------- #
# Usage
# --------------------------------------------------------------------------- #


def test_every_call_is_a_row_with_the_services_token_counts_and_never_the_prompt(gateway, database):  # noqa: F811 (the imported fixture)
    client = _client(gateway)
    answer = _chat(client, "secret prompt alpha")
    plain = list(_chat(client, "secret prompt bravo", stream=True))
    asked = list(_chat(client, "secret prompt charlie", stream=True, stream_options={"include_usage": True}))
    vectors = client.embeddings.create(model=EMBEDDINGS, input=["secret prompt delta echo"])
    with pytest.raises(openai.BadRequestError):  # refused by the gateway: a model that is not the organization's
        client.chat.completions.create(
            model="gpt-nope", messages=[{"role": "user", "content": "secret prompt foxtrot"}]
        )
    with pytest.raises(openai.BadRequestError):  # failed at the provider: an empty text to embed
        client.embeddings.create(model=EMBEDDINGS, input=[""])

    # The caller who did not ask for usage gets the stream without the usage chunk; the one who asked gets it.
    assert all(chunk.choices and chunk.usage is None for chunk in plain)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in plain) == "Sandbox reply to: secret prompt bravo"
    assert asked[-1].choices == [] and asked[-1].usage is not None
    assert sum(1 for chunk in asked if chunk.usage is not None) == 1
    forwarded = [request["body"] for request in gateway.sandbox.requests if request["path"].endswith("/completions")]
    assert all(body["stream_options"] == {"include_usage": True} for body in forwarded if body.get("stream"))

    rows = _rows(gateway)
    seen = [(row["operation"], row["role"], row["stream"], row["outcome"], row["status"]) for row in rows]
    assert seen == [
        ("chat", "language", False, "ok", 200),
        ("chat", "language", True, "ok", 200),
        ("chat", "language", True, "ok", 200),
        ("embeddings", "embeddings", False, "ok", 200),
        ("chat", "language", False, "refused", 400),
        ("embeddings", "embeddings", False, "failed", 400),
    ]
    usage = answer.usage
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"], rows[0]["total_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
    )
    for row, text in ((rows[1], "secret prompt bravo"), (rows[2], "secret prompt charlie")):  # streams: the usage chunk
        assert row["prompt_tokens"] == 3 and row["completion_tokens"] == len(f"Sandbox reply to: {text}".split())
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    assert rows[2]["total_tokens"] == asked[-1].usage.total_tokens
    assert (rows[3]["prompt_tokens"], rows[3]["completion_tokens"], rows[3]["total_tokens"]) == (
        vectors.usage.prompt_tokens,
        None,
        vectors.usage.total_tokens,
    )
    assert all(row["total_tokens"] is None for row in rows[4:])
    assert rows[4]["code"] == "model_not_found" and rows[5]["code"] == "unexpected_response"
    assert {row["username"] for row in rows} == {"practice-analyst"} and rows[0]["groups"] == ["analysts"]
    assert [row["model"] for row in rows] == [CHAT, CHAT, CHAT, EMBEDDINGS, None, EMBEDDINGS]  # never a caller's text
    assert all(row["request_id"] and row["request_id"].startswith("req_") for row in rows[:4])
    assert all(isinstance(row["latency_ms"], float) and row["latency_ms"] > 0 for row in rows)
    assert all(row["at"] is not None for row in rows)

    stored = database.stored_bytes()  # the SQLite file, or pg_dump of the PostgreSQL database
    assert b"secret prompt" not in stored and b"Sandbox reply" not in stored
    assert gateway.gateway.usage(2)[-1]["code"] == "unexpected_response"  # api/usage reads the table


def test_a_stream_to_an_azure_api_version_without_stream_options_is_not_broken(database):  # noqa: F811 (the imported fixture)
    """Azure takes stream_options from 2024-09-01-preview on, and on the v1 API: before it nothing is added; from it, it is."""
    engine = db.open_database(database.url)
    try:
        with Practice(engine=engine) as practice:
            sandbox = practice.sandbox
            for version, asked in (("2024-06-01", False), ("2024-10-21", True), ("v1", True)):
                _admin(practice).save(
                    aiw.AzureOpenAIIntegration.shared(
                        endpoint_url=sandbox.azure_endpoint,
                        api_key=sandbox.azure_api_key,
                        language_deployment_id="chat-gpt-4o",
                        embeddings_deployment_id="embeddings-3-small",
                        api_version=version,
                    )
                )
                chunks = list(
                    _client(practice).chat.completions.create(
                        model="chat-gpt-4o", messages=[{"role": "user", "content": "azure stream"}], stream=True
                    )
                )
                assert (
                    "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                    == "Sandbox reply to: azure stream"
                )
                assert all(chunk.usage is None for chunk in chunks)
                body = [r["body"] for r in sandbox.requests if r["path"].endswith("/chat/completions")][-1]
                assert ("stream_options" in body) is asked, version
                row = _rows(practice)[-1]
                assert row["outcome"] == "ok" and row["total_tokens"] > 0  # counted even without the usage chunk
                assert bool((row["details"] or {}).get("estimated")) is not asked, version
    finally:
        engine.dispose()


def test_with_record_usage_off_no_row_is_written_and_no_budget_checked(database):  # noqa: F811 (the imported fixture)
    """GatewayConfig.record_usage=False (the benchmarks' "without"): calls pass a budget they would break, unrecorded;
    the observers still see every call."""
    engine = db.open_database(database.url)
    try:
        with Practice(engine=engine, record_usage=False) as practice:
            _save(practice)
            seen: list[dict] = []
            practice.gateway.observers.append(seen.append)
            _admin(practice).set_budget("user", "practice-analyst", "day", 1)
            for _ in range(3):
                assert _chat(_client(practice)).usage.total_tokens == 7
            assert _rows(practice) == [] and practice.gateway.usage(10) == []
            assert [(event["outcome"], event["total_tokens"]) for event in seen] == [("ok", 7)] * 3
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- #
# Budgets
# --------------------------------------------------------------------------- #


def _refusal(call, practice: Practice) -> openai.RateLimitError:
    """The 429 of ``call``, made once every call before it is counted (the writer counts within milliseconds)."""
    assert practice.gateway.usage_writer.flush()
    with pytest.raises(openai.RateLimitError) as refused:
        call()
    return refused.value


def test_budgets_per_user_group_and_organization_refuse_with_openais_429(gateway):
    admin, client = _admin(gateway), _client(gateway)
    _chat(client)  # 7 tokens before any budget: a budget set now starts from them
    view = admin.set_budget("user", "practice-analyst", "day", 20)
    assert [(b.scope, b.name, b.period, b.limit, b.used) for b in view.budgets] == [
        ("user", "practice-analyst", "day", 20, 7)
    ]
    _chat(client)
    _chat(client)  # 21 tokens: over from now on (admitted at 14)
    error = _refusal(lambda: _chat(client), gateway)
    assert error.status_code == 429 and set(error.body) == {"message", "type", "param", "code"}
    assert error.body["code"] == "budget_exceeded" and error.body["type"] == "rate_limit_error"
    message = error.body["message"]
    midnight = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = midnight + timedelta(days=1)
    assert "user 'practice-analyst'" in message and "20 tokens per day (UTC)" in message
    assert "period day" in message and "limit 20" in message and tomorrow.isoformat() in message
    retry = int(error.response.headers["retry-after"])
    assert 0 < retry <= 86400 and abs((tomorrow - datetime.now(timezone.utc)).total_seconds() - retry) < 60
    assert _chat(_client(gateway, "admin")).usage.total_tokens == 7  # another user is not counted
    assert _rows(gateway)[-2]["outcome"] == "refused" and _rows(gateway)[-2]["code"] == "budget_exceeded"

    # Each user (*), unless they have their own: the admin is now capped, the analyst keeps its own budget.
    admin.set_budget("user", "*", "day", 10)
    _chat(_client(gateway, "admin"))  # 14 tokens
    assert (
        "each user (*), counted for 'practice-admin'"
        in _refusal(lambda: _chat(_client(gateway, "admin")), gateway).body["message"]
    )
    admin.remove_budget("user", "*", "day")
    admin.remove_budget("user", "practice-analyst", "day")
    _chat(client)

    # A group's members together, per month; then the organization's.
    admin.set_budget("group", "analysts", "month", 10)  # the analyst has 28 this month already
    error = _refusal(lambda: _chat(client), gateway)
    assert "group 'analysts'" in error.body["message"] and "per month (UTC)" in error.body["message"]
    first = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    assert following.isoformat() in error.body["message"]
    assert _chat(_client(gateway, "admin")).usage  # not in the group
    admin.remove_budget("group", "analysts", "month")
    admin.set_budget("organization", "", "day", 30)
    for who in ("admin", "analyst"):
        error = _refusal(lambda who=who: _chat(_client(gateway, who)), gateway)
        assert "The token budget of the organization is used up" in error.body["message"]
    admin.remove_budget("organization", "", "day")
    assert _chat(client).usage and admin.budgets().budgets == ()


def test_requests_per_minute_per_user(gateway):
    admin, client = _admin(gateway), _client(gateway)
    waited = threading.Event()
    while datetime.now(timezone.utc).second >= 50:  # not across a minute's end (polling, a deadline of 11 s)
        waited.wait(0.2)
    admin.set_budget("user", "practice-analyst", "minute", 3)
    for _ in range(3):
        client.embeddings.create(model=EMBEDDINGS, input=["x"])
    error = _refusal(lambda: _chat(client), gateway)
    assert error.body["code"] == "rate_limit_exceeded"
    assert "3 requests per minute" in error.body["message"] and "period minute" in error.body["message"]
    assert 1 <= int(error.response.headers["retry-after"]) <= 60
    assert _chat(_client(gateway, "admin")).usage  # per user


def test_a_refused_budget_raised_admits_at_once_and_another_budget_still_refuses(gateway):
    """A refusal is remembered for its window (no round trip), but only for that budget at that limit."""
    admin, client = _admin(gateway), _client(gateway)
    admin.set_budget("user", "practice-analyst", "day", 5)
    _chat(client)  # 7 tokens: over from now on
    for _ in range(2):  # the second refusal answered from what the first one learned: the same 429
        error = _refusal(lambda: _chat(client), gateway)
        assert error.body["code"] == "budget_exceeded" and "limit 5" in error.body["message"]
    assert _chat(_client(gateway, "admin")).usage  # another user is not refused
    admin.set_budget("user", "practice-analyst", "day", 1000)
    assert _chat(client).usage.total_tokens == 7  # raised: admitted at once, nothing remembered holds it back
    admin.set_budget("organization", "", "day", 10)  # the organization has 21 today
    assert "organization" in _refusal(lambda: _chat(client), gateway).body["message"]


def test_a_dropped_database_connection_is_reconnected_and_the_call_admitted(database):  # noqa: F811 (the imported fixture)
    """The server ends every connection of the gateway (a restart, a failover): the next call is admitted, not 503."""
    if database.cluster is None:
        pytest.skip("a server that ends connections: PostgreSQL")
    engine = db.open_database(database.url)
    try:
        with Practice(engine=engine) as practice:
            _save(practice)
            _admin(practice).set_budget("user", "practice-analyst", "day", 10**9)
            client = _client(practice)
            assert _chat(client).usage
            assert practice.gateway.usage_writer.flush()
            database.cluster.admin(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database.name}'"
            )
            assert _chat(client).usage.total_tokens == 7
            assert _chat(client).usage.total_tokens == 7
            assert practice.gateway.usage_writer.flush()
            rows = [row for row in _rows(practice) if row["outcome"] == "ok"]
            assert len(rows) == 3 and all(row["details"]["budgets"] for row in rows)
    finally:
        engine.dispose()


def test_budgets_are_changed_only_by_those_who_may_configure_and_checked_by_field(gateway):
    analyst = GatewaySettings(gateway.gateway_url, token=gateway.tokens["analyst"])
    with pytest.raises(PermissionDenied):
        analyst.set_budget("user", "practice-analyst", "day", 1000)
    for arguments, field in (
        (("team", "x", "day", 5), "scope"),
        (("user", "", "day", 5), "name"),
        (("user", "x", "week", 5), "period"),
        (("user", "x", "day", 0), "limit"),
        (("group", "x", "minute", 5), "period"),
        (("organization", "x", "day", 5), "name"),
    ):
        answer = httpx.post(
            f"{gateway.gateway_url}/api/budgets",
            headers={"authorization": f"token {gateway.tokens['admin']}"},
            json={"set": dict(zip(("scope", "name", "period", "limit"), arguments, strict=True))},
            timeout=30,
        )
        assert answer.status_code == 422 and answer.json()["error"]["message"].startswith(field), answer.text
    admin = _admin(gateway)
    admin.set_budget("user", "someone-else", "day", 5)
    admin.set_budget("group", "analysts", "day", 500)
    assert {(b.scope, b.name) for b in admin.budgets().budgets} == {("user", "someone-else"), ("group", "analysts")}
    assert [(b.scope, b.name) for b in analyst.budgets().budgets] == [("group", "analysts")]  # only theirs


# --------------------------------------------------------------------------- #
# The bound, with two replicas on one PostgreSQL database
# --------------------------------------------------------------------------- #

USERS = [f"user-{number}" for number in range(5)]


def _add_users(practice: Practice) -> dict[str, str]:
    """The five users on this practice's stand-in hub (same names on both replicas, tokens of their own)."""
    tokens = {}
    for name in USERS:
        token = f"{name}-{practice.tokens['analyst']}"
        practice.users[token] = {
            "kind": "user",
            "name": name,
            "admin": False,
            "groups": ["analysts"],
            "scopes": [USE_SCOPE, "access:services!service=ai-gateway"],
        }
        tokens[name] = token
    return tokens


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_two_replicas_never_overspend_more_than_the_calls_in_flight_when_the_limit_was_reached(database):  # noqa: F811 (the imported fixture)
    """200 concurrent callers, 40 for each of 5 users, half through each of two gateways on one PostgreSQL database,
    each calling again and again until it is refused (so the limit is reached while calls are in flight).

    Per user a budget of LIMIT tokens a day. Every admission saw the counted spend under the limit; at the end
    the counted spend is exactly the tokens of the calls admitted (no admission or count lost between replicas),
    and it is below LIMIT + k x T, where k is the number of calls in flight (admitted, not yet counted) when the
    last call was admitted, and T the tokens of one call.
    """
    limit, callers_per_user = 700, 40
    sandbox = aiw.Sandbox(latency_ms=5).start()
    engines = [db.open_database(database.url), db.open_database(database.url)]
    fernet = multi_fernet(parse_crypt_keys(secrets.token_hex(32)))
    keyrings = [DatabaseKeyring(engine, fernet) for engine in engines]  # as real replicas: the keys in the database
    try:
        with (
            Practice(sandbox=sandbox, engine=engines[0], keyring=keyrings[0]) as one,
            Practice(sandbox=sandbox, engine=engines[1], keyring=keyrings[1]) as two,
        ):
            replicas = [one, two]
            _save(one)  # one save, in force on both replicas
            tokens = [_add_users(practice) for practice in replicas]
            deadline = time.monotonic() + 10  # the other replica reads the record within its poll (0.25 s)
            while (
                not httpx.get(
                    f"{two.gateway_url}/v1/models", headers={"authorization": f"Bearer {tokens[1][USERS[0]]}"}
                )
                .json()
                .get("data")
            ):
                assert time.monotonic() < deadline, "the save through one replica never reached the other"
                time.sleep(0.05)
            _admin(one).set_budget("user", "*", "day", limit)
            for user in USERS:  # one call each on both replicas first: the hub's answers and the budgets cached
                for practice, known in zip(replicas, tokens, strict=True):
                    assert _chat(OpenAI(base_url=practice.gateway_url + "/v1", api_key=known[user], max_retries=0))

            async def caller(client: httpx.AsyncClient, url: str, token: str) -> list[int]:
                statuses: list[int] = []
                while not statuses or statuses[-1] == 200:
                    answer = await client.post(
                        f"{url}/v1/chat/completions",
                        headers={"authorization": f"Bearer {token}"},
                        json={"model": CHAT, "messages": [{"role": "user", "content": "hello there"}]},
                    )
                    statuses.append(answer.status_code)
                    assert answer.status_code in (200, 429), answer.text
                    assert len(statuses) < 1000
                return statuses

            async def everyone() -> list[list[int]]:
                limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
                async with httpx.AsyncClient(timeout=120, limits=limits) as client:
                    callers = [
                        caller(client, replicas[n % 2].gateway_url, tokens[n % 2][user])
                        for n in range(callers_per_user)
                        for user in USERS
                    ]
                    return await asyncio.gather(*callers)

            answers = asyncio.run(everyone())
            assert len(answers) == 200 and all(statuses[-1] == 429 for statuses in answers), {s[-1] for s in answers}
            for practice in replicas:
                assert practice.gateway.usage_writer.flush()
            with engines[0].connect() as connection:
                rows = [dict(row._mapping) for row in connection.execute(sa.select(db.usage_table))]
                spend = {
                    row.name: row
                    for row in connection.execute(sa.select(db.spend_table).where(db.spend_table.c.period == "day"))
                }
    finally:
        for engine in engines:
            engine.dispose()
        sandbox.stop()
    per_call = 7  # "hello there" -> 2 prompt tokens + "Sandbox reply to: hello there" (5 words)
    for user in USERS:
        mine = [row for row in rows if row["username"] == user]
        ok = [row for row in mine if row["outcome"] == "ok"]
        refused = [row for row in mine if row["outcome"] == "refused"]
        assert len(ok) + len(refused) == len(mine) and len(refused) == callers_per_user
        assert all(row["code"] == "budget_exceeded" and row["status"] == 429 for row in refused)
        assert all(row["total_tokens"] == per_call for row in ok)
        counted = spend[user]
        assert counted.admitted == counted.settled == len(ok)  # every admission counted once, none lost
        assert counted.tokens == sum(row["total_tokens"] for row in ok) >= limit  # the limit was reached
        admissions = [row["details"]["budgets"][0] for row in ok]
        assert all(seen["counted"] < limit for seen in admissions)  # no call admitted at or over the limit
        last = max(admissions, key=lambda seen: (seen["counted"], seen["in_flight"]))
        assert counted.tokens == last["counted"] + last["in_flight"] * per_call  # exactly the calls then in flight
        assert counted.tokens < limit + last["in_flight"] * per_call  # the bound, as the README states it
        assert last["in_flight"] <= callers_per_user


# --------------------------------------------------------------------------- #
# ai-admin budgets, the panel, the schema
# --------------------------------------------------------------------------- #


def _ai_admin(practice: Practice | None, *arguments: str, who: str = "admin") -> subprocess.CompletedProcess[str]:
    extra = {} if practice is None else {"AI_ADMIN_GATEWAY_URL": practice.gateway_url}
    if practice is not None:
        extra["JUPYTERHUB_API_TOKEN"] = practice.tokens[who]
    return subprocess.run(
        [sys.executable, "-m", "ai_admin_widgets", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(**extra),
    )


def test_ai_admin_budgets_lists_sets_and_removes_with_clear_refusals(gateway, tmp_path):
    empty = _ai_admin(gateway, "budgets")
    assert empty.returncode == 0 and "No budgets" in empty.stdout
    done = _ai_admin(gateway, "budgets", "set", "--scope", "user", "--name", "*", "--period", "day", "--limit", "1,000")
    assert done.returncode == 0, done.stderr
    assert "user" in done.stdout and "1000 tokens" in done.stdout
    done = _ai_admin(
        gateway, "budgets", "set", "--scope", "group", "--name", "analysts", "--period", "month", "--limit", "5000"
    )
    done = _ai_admin(
        gateway, "budgets", "set", "--scope", "group", "--name", "big", "--period", "day", "--limit", "1_000_000"
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(_ai_admin(gateway, "budgets", "list", "--json").stdout)
    assert [(b["scope"], b["name"], b["period"], b["limit"]) for b in listed] == [
        ("user", "*", "day", 1000),
        ("group", "analysts", "month", 5000),
        ("group", "big", "day", 1_000_000),
    ]
    for arguments, field in (
        (("--scope", "team", "--period", "day", "--limit", "5"), "scope"),
        (("--scope", "user", "--name", "bob", "--period", "week", "--limit", "5"), "period"),
        (("--scope", "user", "--name", "bob", "--period", "day", "--limit", "-5"), "--limit"),
        (("--scope", "user", "--name", "bob", "--period", "day", "--limit", " 1,0,0 "), "--limit"),
        (("--scope", "user", "--name", "bob", "--period", "day", "--limit", "1,000_000"), "--limit"),
        (("--scope", "user", "--name", "bob", "--period", "day", "--limit", "1.5"), "--limit"),
        (("--scope", "user", "--name", "bob", "--period", "day", "--limit", "١٠"), "--limit"),
        (("--scope", "user", "--name", "bob", "--period", "day", "--limit", "0"), "limit"),
        (("--scope", "organization", "--period", "minute", "--limit", "5"), "period"),
    ):
        refused = _ai_admin(gateway, "budgets", "set", *arguments)
        assert refused.returncode == 3 and len(refused.stderr.splitlines()) == 1, refused.stderr
        assert refused.stderr.startswith(f"ai-admin: {field}") and "Traceback" not in refused.stderr
    denied = _ai_admin(gateway, "budgets", "remove", "--scope", "user", "--name", "*", "--period", "day", who="analyst")
    assert denied.returncode == 3 and "custom:ai-admin:configure" in denied.stderr
    removed = _ai_admin(gateway, "budgets", "remove", "--scope", "user", "--name", "*", "--period", "day")
    assert removed.returncode == 0 and "Removed." in removed.stdout and "*" not in removed.stdout
    again = _ai_admin(gateway, "budgets", "remove", "--scope", "user", "--name", "*", "--period", "day")
    assert again.returncode == 3 and "There is no budget for each user per day" in again.stderr
    local = _ai_admin(None, "--home", str(tmp_path / "store"), "budgets")
    assert local.returncode == 3 and "kept by the AI gateway" in local.stderr


def _counting(settings: Any) -> tuple[Any, list[str]]:
    """``settings`` behind the Settings interface, and the names of the methods called on them, in order."""
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            value = getattr(settings, name)
            if not callable(value):
                return value

            def call(*args: Any, **kwargs: Any) -> Any:
                calls.append(name)
                return value(*args, **kwargs)

            return call

    return Counting(), calls


def admin_budgets(practice: Practice) -> tuple:
    return _admin(practice).budgets().budgets


def test_the_panels_budgets_region_on_the_gateway_only(gateway, sandbox):
    counting, calls = _counting(_admin(gateway))
    panel = aiw.AISettingsPanel(counting)
    try:
        assert panel.offered("aiw-budgets-toggle") and not panel.nodes("aiw-budgets-table")
        assert "Show budgets" in panel.visible_text() and "No budgets" not in panel.visible_text()
        assert "budgets" not in calls  # offered, closed: nothing read for it
        panel.press("aiw-budgets-toggle")
        assert panel.offered("aiw-save-budget") and "No budgets" in panel.visible_text()
        panel.choose("aiw-budget-scope", "user")
        panel.type("aiw-budget-name", "practice-analyst")
        panel.choose("aiw-budget-period", "day")
        calls.clear()
        panel.type("aiw-budget-limit", "five")
        assert "budgets" not in calls  # drawn again from the same snapshot: read once, not at every field
        panel.press("aiw-save-budget")
        (message,) = panel.nodes("aiw-budgets-message")
        assert message["text"].count("limit must be a whole number") == 1 and message["tone"] == "error"
        pasted = gateway.sandbox.openai_api_key.get_secret_value()
        panel.type("aiw-budget-name", pasted)  # a key pasted in the wrong place: out of the field, and said
        panel.type("aiw-budget-limit", "12000")
        panel.press("aiw-save-budget")
        assert "looked like an API key" in panel.text_of("aiw-budgets-message") and pasted not in json.dumps(
            panel.state
        )
        assert admin_budgets(gateway) == ()
        panel.type("aiw-budget-name", "practice-analyst")
        panel.press("aiw-save-budget")
        text = panel.visible_text()
        assert "Saved." in text and "practice-analyst" in text and "12000 tokens" in text
        (table,) = panel.nodes("aiw-budgets-table")
        assert table["kind"] == "table" and table["columns"][0] == "Scope"
        assert table["rows"][0][:4] == ["user", "practice-analyst", "day", "12000 tokens"]
        panel.press("aiw-budgets-toggle")
        calls.clear()
        panel.render()
        assert "budgets" not in calls and not panel.nodes("aiw-budgets-table")
    finally:
        panel.close()
    analyst = GatewaySettings(gateway.gateway_url, token=gateway.tokens["analyst"]).panel()
    try:
        analyst.press("aiw-budgets-toggle")
        assert "12000 tokens" in analyst.visible_text() and "practice-analyst" in analyst.visible_text()
        assert not analyst.offered("aiw-save-budget") and not analyst.nodes("aiw-budget-limit")  # read-only
    finally:
        analyst.close()
    local = sandbox.settings().panel()  # one machine, no gateway: no Budgets region
    try:
        assert not local.nodes("aiw-budgets") and "Budgets" not in local.visible_text()
        with pytest.raises(NotOnGateway):
            local.settings.budgets()
    finally:
        local.close()


def test_the_panel_removes_a_budget_by_scope_name_and_period(gateway):
    admin = _admin(gateway)
    admin.set_budget("group", "analysts", "month", 500000)
    panel = admin.panel()
    try:
        panel.press("aiw-budgets-toggle")
        assert "analysts" in panel.visible_text()
        panel.choose("aiw-budget-scope", "group")
        panel.type("aiw-budget-name", "analysts")
        panel.press("aiw-remove-budget")  # the period is still "day": there is none such
        (message,) = panel.nodes("aiw-budgets-message")
        assert message["tone"] == "error" and admin.budgets().budgets
        panel.choose("aiw-budget-period", "month")
        panel.press("aiw-remove-budget")
        text = panel.visible_text()
        assert "Removed." in text and "No budgets: AI calls are not capped." in text and not admin.budgets().budgets
    finally:
        panel.close()


def test_a_database_at_schema_0001_is_refused_by_serve_and_upgraded_by_upgrade_db(database: Database):  # noqa: F811 (the imported fixture)
    from alembic import command

    engine = database.engine()
    database.home.mkdir(parents=True, exist_ok=True)
    with engine.begin() as connection:
        command.upgrade(db._alembic_config(connection), "0001")
    assert db.schema_revision(engine) == "0001" and db.head_revision() == "0002"
    said = _serve_refusal(database, AI_ADMIN_CRYPT_KEY=_key())
    assert "at schema 0001" in said and "needs 0002" in said and "upgrade-db" in said
    done = _ai_admin(None, "gateway", "upgrade-db", "--db-url", database.url)
    assert done.returncode == 0, done.stderr
    assert "from schema 0001 to 0002" in done.stdout and PG_PASSWORD not in done.stdout
    assert {"ai_gateway_budgets", "ai_gateway_spend"} <= set(sa.inspect(engine).get_table_names())
    assert db.check_schema(engine) == "0002"
    engine.dispose()


def test_a_stream_is_counted_whatever_the_caller_says_of_usage_and_however_early_it_hangs_up(gateway):
    """``include_usage: false`` (or null, or not an object) cannot keep a stream's tokens from the budget, and a
    caller who leaves after the answer but before the usage chunk is charged an estimate (never 0)."""
    admin = _admin(gateway)
    for options in ({"include_usage": False}, {"include_usage": None}, "yes"):
        chunks = list(_chat(_client(gateway), "one two three four five", stream=True, stream_options=options))
        assert all(chunk.usage is None for chunk in chunks)  # the caller still gets no usage chunk
        row = _rows(gateway)[-1]
        assert row["total_tokens"] == 5 + len(
            ["Sandbox", "reply", "to:", "one", "two", "three", "four", "five"]
        )  # the sandbox: words
        assert not (row["details"] or {}).get("estimated")
    forwarded = [r["body"] for r in gateway.sandbox.requests if r["path"].endswith("/chat/completions")][-3:]
    assert all(body["stream_options"] == {"include_usage": True} for body in forwarded)

    gateway.sandbox.stream_interval_ms = 50  # the usage chunk comes 50 ms after the last word
    admin.set_budget("user", "practice-analyst", "day", 10**6)
    before = admin.budgets().budgets[0].used
    body = {
        "model": CHAT,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "leave before the bill"}],
    }
    headers = {"authorization": f"Bearer {gateway.tokens['analyst']}"}
    with httpx.stream("POST", f"{gateway.gateway_url}/v1/chat/completions", json=body, headers=headers) as answer:
        for line in answer.iter_lines():
            if '"finish_reason": "stop"' in line or '"finish_reason":"stop"' in line:
                break  # the whole answer read; hang up before the usage chunk
    deadline = time.monotonic() + 10
    while (row := _rows(gateway)[-1])["outcome"] != "cancelled":
        assert time.monotonic() < deadline, row
        time.sleep(0.05)
    assert row["details"]["estimated"] is True and row["completion_tokens"] >= 5 and row["prompt_tokens"] > 0
    assert admin.budgets().budgets[0].used == before + row["total_tokens"]


def test_a_database_that_does_not_answer_the_budgets_check_refuses_the_call_in_time(gateway, database, monkeypatch):  # noqa: F811
    """A lock held elsewhere (an operator's session, a stalled server) never makes a call hang: 503 within the limit."""
    from ai_admin_widgets.gateway import v1

    monkeypatch.setattr(v1, "ADMIT_SECONDS", 1.0)
    _admin(gateway).set_budget("user", "practice-analyst", "day", 10**6)
    assert _chat(_client(gateway)).usage  # the budget's row exists and is cached: the next check is one write
    holder = db.make_engine(database.url)
    connection = holder.connect()
    try:
        if database.kind == "postgresql":
            connection.exec_driver_sql("BEGIN")
            connection.exec_driver_sql("LOCK TABLE ai_gateway_spend IN ACCESS EXCLUSIVE MODE")
        else:
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as refused:
            OpenAI(
                base_url=gateway.gateway_url + "/v1", api_key=gateway.tokens["analyst"], max_retries=0, timeout=30
            ).chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "wait for me"}])
        took = time.monotonic() - started
    finally:
        connection.exec_driver_sql("ROLLBACK")
        connection.close()
        holder.dispose()
    assert refused.value.status_code == 503 and refused.value.body["code"] == "store_error"
    assert took < 8, took  # the 1 s limit, not the 30 s client timeout or the database's own waits
    assert _chat(_client(gateway)).usage  # the lock gone, calls are admitted again


def test_a_budget_limit_as_typed_is_digits_in_groups_of_three_or_refused():
    for text, number in (("1000000", 1_000_000), ("1,000,000", 1_000_000), ("1_000", 1000), (" 250 ", 250)):
        assert checked_budget("user", "bob", "day", text).limit == number
    for text in (" 1,0,0 ", "1,00", "10,0000", "1__000", "1,000_000", "1.5", "+5", "\u0661\u0660", "1 000"):
        with pytest.raises(ValueError, match="^limit must be a whole number"):
            checked_budget("user", "bob", "day", text)
