"""``ai-admin``: the OpenAI integration from a terminal or a scheduled job.

    ai-admin status [--json]      exit 0 configured and last authenticated, 1 not configured, 2 last authentication failed
    ai-admin test [--json]        authenticate the saved credentials again; exit 0 ok, 1 none saved, 2 failed
    ai-admin remove --yes         remove the integration (AI functionality disabled)

Every command takes ``--home FOLDER`` for the store's folder (default ``$AI_ADMIN_HOME``
or the platform's user data folder), before or after the command's name. Keys come
from the system keyring. Any other problem exits 3 with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .service import AISettings

__all__ = ["main"]

EXIT_OK, EXIT_NOT_CONFIGURED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2, 3
_HOME_HELP = "the settings store's folder (default: $AI_ADMIN_HOME or the user data folder)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistyped command exits 3 ("another problem"), not 2 ("authentication failed")."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS, help=_HOME_HELP)
    parser = _Parser(
        prog="ai-admin",
        description="Check and manage the organization's OpenAI integration.",
        epilog="Exit codes: 0 ok, 1 not configured, 2 authentication failed, 3 another problem.",
    )
    parser.add_argument("--home", default=None, help=_HOME_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    status = commands.add_parser(
        "status", parents=[common], help="show the integration: provider, models, key hints, who saved it and when"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    test = commands.add_parser("test", parents=[common], help="authenticate the saved credentials again and record the outcome")
    test.add_argument("--json", action="store_true", help="print JSON instead of text")
    remove = commands.add_parser("remove", parents=[common], help="remove the integration; AI functionality will be disabled")
    remove.add_argument("--yes", action="store_true", help="confirm the removal (required)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ai-admin`` command.

    Args:
        argv: the arguments after the program name; default ``sys.argv[1:]``.
    Returns:
        The exit code: 0 ok, 1 not configured, 2 authentication failed, 3 another problem
        (printed as one line on stderr, never a traceback and never a key).
    """
    arguments = _parser().parse_args(argv)
    from .models import AIAdminError
    from .service import AISettings

    settings = AISettings(home=arguments.home)
    if arguments.home is not None and not Path(arguments.home).is_dir():
        print(f"ai-admin: note: {arguments.home} is not a folder yet, so nothing is configured there.", file=sys.stderr)
    try:
        if arguments.command == "status":
            return _status(settings, arguments.json)
        if arguments.command == "test":
            return _test(settings, arguments.json)
        return _remove(settings, arguments.yes)
    except AIAdminError as error:
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:  # a bug: one line, not a traceback, and not the "not configured" code
        print(f"ai-admin: unexpected error ({type(error).__name__}): {error}", file=sys.stderr)
        return EXIT_ERROR


def _status(settings: AISettings, as_json: bool) -> int:
    status = settings.status()
    if as_json:
        print(status.model_dump_json(indent=2))
    else:
        print(status.summary())
        for model in status.models:
            where = f"deployment {model.deployment_id} at {model.endpoint_url}" if model.deployment_id else model.endpoint_url
            print(f"  {model.role:<10} {model.model or '?':<26} {where}  key {model.key_hint}")
        if status.updated_by and status.updated_at:
            verb = "Saved" if status.configured else "Removed"
            print(f"{verb} by {status.updated_by} on {status.updated_at:%Y-%m-%d %H:%M} UTC")
        if status.last_authenticated_at is not None:
            outcome = "succeeded" if status.last_authentication_ok else "FAILED"
            print(f"Last authentication {outcome} on {status.last_authenticated_at:%Y-%m-%d %H:%M} UTC")
        for warning in status.warnings:
            print(f"Warning: {warning}")
        print(f"Keyring: {status.keyring_backend}")
    if not status.configured:
        return EXIT_NOT_CONFIGURED
    return EXIT_OK if status.last_authentication_ok else EXIT_FAILED


def _test(settings: AISettings, as_json: bool) -> int:
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
    return EXIT_OK if report.ok else EXIT_FAILED


def _remove(settings: AISettings, confirmed: bool) -> int:
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
