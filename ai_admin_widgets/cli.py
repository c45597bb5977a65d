"""``ai-admin``: the OpenAI integration from a terminal or a scheduled job.

    ai-admin status [--json]      exit 0 configured, 1 not configured, 2 last authentication failed
    ai-admin test [--json]        authenticate the saved credentials again; exit 0 ok, 1 none, 2 failed
    ai-admin remove --yes         remove the integration (AI functionality disabled)

Every command takes ``--home FOLDER`` for the store's folder (default ``$AI_ADMIN_HOME``
or the platform's user data folder). Keys come from the system keyring.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_NOT_CONFIGURED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ai-admin",
        description="Check and manage the organization's OpenAI integration.",
    )
    parser.add_argument("--home", help="the settings store's folder (default: $AI_ADMIN_HOME or the user data folder)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser("status", help="show the integration: provider, models, key hints, who saved it and when")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    test = commands.add_parser("test", help="authenticate the saved credentials again and record the outcome")
    test.add_argument("--json", action="store_true", help="print JSON instead of text")
    remove = commands.add_parser("remove", help="remove the integration; AI functionality will be disabled")
    remove.add_argument("--yes", action="store_true", help="confirm the removal (required)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ai-admin`` command.

    Args:
        argv: the arguments after the program name; default ``sys.argv[1:]``.
    Returns:
        The exit code: 0 ok, 1 not configured, 2 authentication failed, 3 another error
        (printed as one line on stderr, never a traceback and never a key).
    """
    arguments = _parser().parse_args(argv)
    from .models import AIAdminError
    from .service import AISettings

    settings = AISettings(home=arguments.home)
    try:
        if arguments.command == "status":
            return _status(settings, arguments.json)
        if arguments.command == "test":
            return _test(settings, arguments.json)
        return _remove(settings, arguments.yes)
    except AIAdminError as error:
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_ERROR


def _status(settings, as_json: bool) -> int:
    status = settings.status()
    if as_json:
        print(status.model_dump_json(indent=2))
    else:
        print(status.summary())
        if status.last_authenticated_at is not None:
            outcome = "succeeded" if status.last_authentication_ok else "failed"
            print(f"Last authentication {outcome} at {status.last_authenticated_at:%Y-%m-%d %H:%M} UTC")
    if not status.configured:
        return EXIT_NOT_CONFIGURED
    return EXIT_OK if status.last_authentication_ok else EXIT_FAILED


def _test(settings, as_json: bool) -> int:
    from .models import NotConfigured

    try:
        report = settings.test()
    except NotConfigured as error:
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    print(report.model_dump_json(indent=2) if as_json else str(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _remove(settings, confirmed: bool) -> int:
    if not confirmed:
        print("ai-admin: removing disables AI functionality for your organization; add --yes to confirm.", file=sys.stderr)
        return EXIT_ERROR
    from .models import NotConfigured

    try:
        settings.remove()
    except NotConfigured as error:
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    print("The OpenAI integration was removed. AI functionality is disabled.")
    return EXIT_OK
