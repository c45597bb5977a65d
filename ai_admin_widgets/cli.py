"""``ai-admin``: the OpenAI integration from a terminal or a scheduled job.

    ai-admin status [--json] [--stale-after-days DAYS]
                                  exit 0 configured and last authenticated, 1 not configured,
                                  2 last authentication failed (or none on record)
    ai-admin test [--json]        authenticate the saved credentials again; exit 0 ok, 1 none saved, 2 failed
    ai-admin remove --yes         remove the integration (AI functionality disabled)
    ai-admin history [--json] [--limit N]
                                  the audit log, oldest first: when, who, what, provider, outcome, details
    ai-admin usage [--since DATE] [--by user|group|model] [--json | --csv]
                                  on a hub with the AI gateway, for those who may configure: the AI
                                  calls and tokens per UTC day, by user, group or model (default: the
                                  last 30 days, by user), as a table, JSON or CSV
    ai-admin budgets [list] [--json]
    ai-admin budgets set --scope user|group|organization [--name NAME] --period day|month|minute --limit N
    ai-admin budgets remove --scope SCOPE [--name NAME] --period PERIOD
                                  the AI gateway's token budgets (per UTC day or month) and requests per minute
    ai-admin gateway serve | practice | hub-config
                                  the AI gateway for JupyterHub (see ai_admin_widgets.gateway.cli)

Every command takes ``--home FOLDER`` for the store's folder (default ``$AI_ADMIN_HOME``
or the platform's user data folder), before or after the command's name. Keys come
from the system keyring. Any other problem exits 3 with one line on stderr.

A stale integration (last authenticated successfully, but longer ago than
``--stale-after-days`` or ``$AI_ADMIN_STALE_AFTER_DAYS``, default 7 days) still exits 0
from ``status``: the credentials worked when last checked. A warning line says so, and
``--json`` has ``"health": "stale"``; a scheduled ``ai-admin test`` keeps it fresh.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .interface import Settings

__all__ = ["main"]

EXIT_OK, EXIT_NOT_CONFIGURED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # the shell's codes for SIGINT and SIGPIPE
_HOME_HELP = "the settings store's folder (default: $AI_ADMIN_HOME or the user data folder)"
_SANDBOX_HELP = (
    "practise against a running sandbox: its folder, as the quickstart prints it "
    "(the sandbox's practice store and keyring; never your own)"
)
_STATUS_EPILOG = (
    "Exit status: 0 configured and the last authentication succeeded; 1 not configured; "
    "2 the last authentication failed, or none is on record; 3 another problem. "
    "Health is ok, failing, stale or not configured. Stale means the last authentication "
    "succeeded but is older than the stale age: status still exits 0 and prints a warning "
    "(run 'ai-admin test' to authenticate again)."
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistyped command exits 3 ("another problem"), not 2 ("authentication failed")."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS, help=_HOME_HELP)
    common.add_argument("--sandbox", default=argparse.SUPPRESS, metavar="FOLDER", help=_SANDBOX_HELP)
    parser = _Parser(
        prog="ai-admin",
        description="Check and manage the organization's OpenAI integration.",
        epilog="Exit codes: 0 ok, 1 not configured, 2 authentication failed, 3 another problem. "
        "'ai-admin COMMAND --help' explains each command.",
    )
    parser.add_argument("--home", default=None, help=_HOME_HELP)
    parser.add_argument("--sandbox", default=None, metavar="FOLDER", help=_SANDBOX_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    status = commands.add_parser(
        "status",
        parents=[common],
        help="show the integration: provider, models, key hints, who saved it and when, and its health",
        description="Show the OpenAI integration: provider, models, key hints, who saved it and when, "
        "when it was last authenticated and with what result, and its health.",
        epilog=_STATUS_EPILOG,
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.add_argument(
        "--stale-after-days",
        type=_stale_after_days,
        default=None,
        metavar="DAYS",
        help="call the integration stale when its last authentication is older than this many days "
        "(default: $AI_ADMIN_STALE_AFTER_DAYS, or 7)",
    )
    test = commands.add_parser(
        "test", parents=[common], help="authenticate the saved credentials again and record the outcome"
    )
    test.add_argument("--json", action="store_true", help="print JSON instead of text")
    remove = commands.add_parser(
        "remove", parents=[common], help="remove the integration; AI functionality will be disabled"
    )
    remove.add_argument("--yes", action="store_true", help="confirm the removal (required)")
    history = commands.add_parser(
        "history",
        parents=[common],
        help="show the audit log: when, who, what (added, edited, tested, removed, refused), provider, outcome",
        description="Show the audit log, oldest first: when (UTC), who, what was done (added, edited, tested, "
        "removed, a refused save, access changes), the provider, the outcome, and the fields changed or "
        "the failure codes. Never a key.",
    )
    history.add_argument("--json", action="store_true", help="print the events as a JSON list instead of a table")
    history.add_argument(
        "--limit", type=_positive_count, default=None, metavar="N", help="show only the N newest events"
    )
    usage = commands.add_parser(
        "usage",
        parents=[common],
        help="on a hub with the AI gateway: AI calls and tokens per day, by user, group or model",
        description="The AI calls made through the hub's AI gateway and the tokens they took, per day (UTC), "
        "by user, by hub group (a call counts for each of its caller's groups) or by model, with the calls that "
        "failed or were refused. For those who may configure the integration; needs AI_ADMIN_GATEWAY_URL (a server "
        "on the hub). Never a prompt or an answer.",
    )
    usage.add_argument(
        "--since",
        type=_usage_since,
        default=None,
        metavar="DATE",
        help="the first day counted, YYYY-MM-DD in UTC (default: 30 days ago, to today; at most a year back)",
    )
    usage.add_argument(
        "--by", choices=("user", "group", "model"), default="user", help="what the rows are per (default user)"
    )
    shape = usage.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the whole report as JSON")
    shape.add_argument("--csv", action="store_true", help="print one CSV row per day and user, group or model")
    _add_budgets(commands, common)
    from .gateway.cli import add_parser as add_gateway_commands

    add_gateway_commands(commands, _Parser)
    return parser


_BUDGETS_EPILOG = (
    "Budgets are kept by the AI gateway on JupyterHub (AI_ADMIN_GATEWAY_URL). A token budget caps the tokens "
    "(as the service counts them) per UTC day or UTC month of one user (--name NAME; * for each user without a "
    "budget of their own), of a group's members together, or of the whole organization (no --name); period "
    "minute caps a user's requests per minute. A call that would go over is refused with HTTP 429, naming the "
    "budget and when it resets. Changing them needs the custom:ai-admin:configure scope (or hub admin)."
)


def _add_budgets(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    budgets = commands.add_parser(
        "budgets",
        parents=[common],
        help="list, set or remove the AI gateway's token budgets and requests-per-minute limits",
        description="List, set or remove the AI gateway's budgets: tokens per UTC day or month for a user, a "
        "group or the organization, and requests per minute per user.",
        epilog=_BUDGETS_EPILOG,
    )
    actions = budgets.add_subparsers(dest="budgets_action", metavar="ACTION", parser_class=_Parser)
    listing = actions.add_parser("list", parents=[common], help="show every budget and what its period used")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    budgets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for action, text in (("set", "add or change one budget"), ("remove", "remove one budget")):
        sub = actions.add_parser(action, parents=[common], help=text, epilog=_BUDGETS_EPILOG)
        sub.add_argument("--scope", required=True, help="user, group or organization")
        sub.add_argument("--name", default="", help="the hub user (* for each user) or group; none for organization")
        sub.add_argument("--period", required=True, help="day or month (tokens, UTC), or minute (requests)")
        if action == "set":
            sub.add_argument("--limit", required=True, help="the most tokens (or requests) per period")
        sub.add_argument("--json", action="store_true", help="print the budgets after the change as JSON")


def _budgets(settings: Settings, arguments: argparse.Namespace) -> int:
    import json

    action = getattr(arguments, "budgets_action", None) or "list"
    if action == "set":
        from .models import budget_limit_number

        limit = budget_limit_number(arguments.limit)
        if limit is None:
            raise ValueError(
                "--limit must be a whole number in digits, with , or _ between groups of three if you like "
                "(200000, 200,000 or 200_000)."
            )
        view = settings.set_budget(arguments.scope, arguments.name, arguments.period, limit)
    elif action == "remove":
        view = settings.remove_budget(arguments.scope, arguments.name, arguments.period)
    else:
        view = settings.budgets()
    if arguments.json:
        print(json.dumps(view.model_dump(mode="json")["budgets"], indent=2, ensure_ascii=False))
        return EXIT_OK
    if action != "list":
        print("Set." if action == "set" else "Removed.")
    if not view.budgets:
        print("No budgets: AI calls are not capped.")
        return EXIT_OK
    rows = [("SCOPE", "NAME", "PERIOD", "LIMIT", "USED", "RESETS AT (UTC)")]
    for budget in view.budgets:
        rows.append(
            (
                budget.scope,
                budget.name or "-",
                budget.period,
                f"{budget.limit} {budget.unit}",
                "-" if budget.used is None else str(budget.used),
                f"{budget.resets_at:%Y-%m-%d %H:%M}" if budget.resets_at else "-",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _stale_after_days(text: str) -> timedelta:
    from .health import parse_stale_after_days

    try:
        return parse_stale_after_days(text, source="")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _usage_since(text: str) -> date:
    from .models import parse_usage_since

    try:
        day = parse_usage_since(text, name="DATE")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("DATE ")) from None
    if day is None:
        raise argparse.ArgumentTypeError("must be a day written YYYY-MM-DD (it is empty).")
    return day


def _positive_count(text: str) -> int:
    try:
        count = int(text.strip())
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of events, 1 or more (it is {text.strip()!r}).")
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ai-admin`` command.

    Args:
        argv: the arguments after the program name; default ``sys.argv[1:]``.
    Returns:
        The exit code: 0 ok, 1 not configured, 2 authentication failed, 3 another problem
        (printed as one line on stderr, never a traceback and never a key), 130 interrupted
        (Ctrl-C; nothing changed), 141 the reader of the output stopped early. ``history``
        exits 0 whenever the audit log can be read, empty or not.
    """
    arguments = _parser().parse_args(argv)
    if arguments.command == "gateway":
        from .gateway.cli import run

        return run(arguments)
    from .interface import open_settings
    from .models import AIAdminError

    try:
        settings = open_settings(
            home=arguments.home,
            stale_after=getattr(arguments, "stale_after_days", None),
            sandbox=arguments.sandbox,
        )
        if arguments.home is not None and Path(arguments.home).exists() and not Path(arguments.home).is_dir():
            print(
                f"ai-admin: {arguments.home} is a file, not a folder: give the store's folder to --home.",
                file=sys.stderr,
            )
            return EXIT_ERROR
        if arguments.home is not None and not Path(arguments.home).is_dir():
            print(
                f"ai-admin: note: {arguments.home} is not a folder yet, so nothing is configured there.",
                file=sys.stderr,
            )
        if arguments.command == "status":
            return _status(settings, arguments.json)
        if arguments.command == "test":
            return _test(settings, arguments.json)
        if arguments.command == "history":
            return _history(settings, arguments.json, arguments.limit)
        if arguments.command == "usage":
            return _usage(
                settings,
                arguments.since,
                arguments.by,
                "json" if arguments.json else "csv" if arguments.csv else "table",
            )
        if arguments.command == "budgets":
            return _budgets(settings, arguments)
        return _remove(settings, arguments.yes)
    except (AIAdminError, ValueError) as error:  # ValueError: an option's value (--sandbox FOLDER), said by name
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:  # Ctrl-C: a save or remove is all or nothing, and a test stores nothing until it ends
        print("ai-admin: interrupted; nothing was changed.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader stopped early (``| head``): stop quietly, as other commands do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the final flush at exit does not fail again
        return EXIT_BROKEN_PIPE
    except Exception as error:  # a bug: one line, not a traceback, and not the "not configured" code
        print(f"ai-admin: unexpected error ({type(error).__name__}): {error}", file=sys.stderr)
        return EXIT_ERROR


def _status(settings: Settings, as_json: bool) -> int:
    status = settings.status()
    if as_json:
        print(status.model_dump_json(indent=2))
    else:
        print(status.summary())
        for model in status.models:
            where = (
                f"deployment {model.deployment_id} at {model.endpoint_url}"
                if model.deployment_id
                else model.endpoint_url
            )
            signs_in = model.authentication or f"key {model.key_hint}"
            print(f"  {model.role:<10} {model.model or '?':<26} {where}  {signs_in}")
        if status.updated_by and status.updated_at:
            verb = "Saved" if status.configured else "Removed"
            print(f"{verb} by {status.updated_by} on {status.updated_at:%Y-%m-%d %H:%M} UTC")
        if status.last_authentication_summary:
            when = f", on {status.last_authenticated_at:%Y-%m-%d %H:%M} UTC" if status.last_authenticated_at else ""
            print(f"{status.last_authentication_summary}{when}")
        print(f"Health: {status.health.label}")
        problem = status.health_problem()
        if problem:
            remedy = (
                " If it fails again, correct the integration with Edit in the AI Settings panel."
                if status.health.value == "failing"
                else ""
            )
            print(f"Warning: {problem} Run 'ai-admin test' to authenticate again.{remedy}")
        for warning in status.warnings:
            print(f"Warning: {warning}")
        print(f"Keyring: {status.keyring_backend}")
    if not status.configured:
        return EXIT_NOT_CONFIGURED
    return EXIT_OK if status.last_authentication_ok else EXIT_FAILED


def _test(settings: Settings, as_json: bool) -> int:
    from .models import KeyringUnavailable, NotConfigured, StoreError

    try:
        report = settings.test()
    except NotConfigured as error:
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    except (StoreError, KeyringUnavailable) as error:  # the saved settings or keys cannot be read here
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(report.model_dump_json(indent=2) if as_json else str(report))
    if not as_json:
        try:
            models = settings.status().models
        except Exception:
            models = ()
        for model in models:
            if model.authentication:
                print(f"  {model.role:<10} authenticates with {model.authentication}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _history(settings: Settings, as_json: bool, limit: int | None) -> int:
    import json

    events = settings.history(limit)
    if as_json:
        print(json.dumps([event.model_dump(mode="json") for event in events], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not events:
        print("Nothing has happened yet: the audit log is empty.")
        return EXIT_OK
    rows = [("WHEN (UTC)", "WHO", "WHAT", "PROVIDER", "OUTCOME", "DETAILS")] + [tuple(event.row()) for event in events]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return EXIT_OK


def _usage(settings: Settings, since: date | None, by: str, shape: str) -> int:
    report = settings.usage_report(since, by)
    if shape == "json":
        print(report.model_dump_json(indent=2))
        return EXIT_OK
    measures = ("calls", "failures", "refused", "prompt_tokens", "completion_tokens", "tokens")
    if shape == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["day", by, *measures])
        for day in report.days:
            writer.writerow([day.day.isoformat(), day.key, *(getattr(day, name) for name in measures)])
        return EXIT_OK
    overall = report.overall
    print(
        f"AI usage by {by}, {report.since} to {report.until} (UTC): {overall.calls} calls, {overall.failures} failed, "
        f"{overall.refused} refused; {overall.tokens} tokens ({overall.prompt_tokens} prompt, "
        f"{overall.completion_tokens} completion)."
    )
    if not report.days:
        print("No AI calls were recorded in these days.")
        return EXIT_OK
    headings = ("DAY (UTC)", by.upper(), "CALLS", "FAILED", "REFUSED", "PROMPT", "COMPLETION", "TOKENS")
    rows: list[tuple[str, ...]] = [headings]
    rows += [(str(day.day), day.key, *(str(getattr(day, name)) for name in measures)) for day in report.days]
    rows += [("all days", total.key, *(str(getattr(total, name)) for name in measures)) for total in report.totals]
    widths = [max(len(row[column]) for row in rows) for column in range(len(headings))]
    print()
    for row in rows:
        cells = [
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    return EXIT_OK


def _remove(settings: Settings, confirmed: bool) -> int:
    if not confirmed:
        print(
            "ai-admin: removing disables AI functionality for your organization; add --yes to confirm.", file=sys.stderr
        )
        return EXIT_ERROR
    from .models import NotConfigured

    try:
        undone = settings.remove()
    except NotConfigured as error:
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    print("The OpenAI integration was removed. AI functionality is disabled.")
    for note in undone:
        print(f"Warning: {note}")
    return EXIT_OK
