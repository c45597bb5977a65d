"""``ai-admin gateway serve | practice | hub-config``: the commands of the AI gateway.

    ai-admin gateway serve [--check] [--home FOLDER] [--ip ADDRESS] [--db-url URL] [--cache-seconds S] [--deadline S]
                           [--usage-max-mib M] [--usage-keep N] [--reauth-minutes N] [--metrics-without-token]
                           [--audit-keep-days N]
                                  run as JupyterHub's managed service (the hub starts it);
                                  --check: check what it needs and exit, listening on nothing
    ai-admin gateway upgrade-db [--home FOLDER] [--db-url URL]
                                  make or upgrade the gateway's database schema (Alembic migrations)
    ai-admin gateway rotate-crypt-key [--home FOLDER] [--db-url URL]
                                  re-encrypt the database's secrets with the first key of AI_ADMIN_CRYPT_KEY
    ai-admin gateway practice [--cache-seconds S] [--deadline S]
                                  a gateway, a sandbox and a hub stand-in on 127.0.0.1; the first
                                  line of output is JSON: {"gateway_url": ..., "tokens": {"admin", "analyst"}}
    ai-admin gateway hub-config [--name NAME] [--url URL] [--gateway-url URL] [--home FOLDER] [--admin USER ...]
                                  print the jupyterhub_config.py snippet

Exit codes: 0 ok (serve and practice: stopped by SIGTERM or Ctrl-C), 3 a problem (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

__all__ = ["add_parser", "run"]

EXIT_OK, EXIT_ERROR = 0, 3


def add_parser(commands: Any, parser_class: Any) -> None:
    """Add ``gateway`` and its commands to ``ai-admin``'s subparsers."""
    gateway = commands.add_parser(
        "gateway",
        help="the AI gateway for JupyterHub: serve it, practise with it, or print the hub's configuration",
        description="The AI gateway: a JupyterHub-managed service that holds the OpenAI integration and its keys, "
        "checks every caller's JupyterHub token, and offers an OpenAI-compatible /v1.",
    )
    actions = gateway.add_subparsers(
        dest="gateway_command", required=True, metavar="COMMAND", parser_class=parser_class
    )
    serve = actions.add_parser(
        "serve", help="run as JupyterHub's managed service (the hub starts it with its environment)"
    )
    serve.add_argument(
        "--home", default=None, help="the gateway's folder (default: $AI_ADMIN_HOME or the user data folder)"
    )
    serve.add_argument(
        "--check",
        action="store_true",
        help="check what serve needs (the keyring password, the folder, the keyring, the hub's variables if set) "
        "and exit 0 without listening; run it as the hub's user, with the hub's environment, before starting the hub",
    )
    serve.add_argument(
        "--ip",
        default=None,
        metavar="ADDRESS",
        help="the address to listen on (default: the host of $JUPYTERHUB_SERVICE_URL; 0.0.0.0 in a container "
        "whose service URL is a cluster name such as http://hub:10101)",
    )
    serve.add_argument(
        "--usage-max-mib",
        type=float,
        default=16.0,
        metavar="M",
        help="no longer used: the AI calls are recorded in the gateway's database (still accepted, and checked, so "
        "existing hub configurations start)",
    )
    serve.add_argument(
        "--usage-keep",
        type=int,
        default=5,
        metavar="N",
        help="no longer used, as --usage-max-mib",
    )
    serve.add_argument(
        "--reauth-minutes",
        type=float,
        default=60.0,
        metavar="N",
        help="authenticate the saved integration again every N minutes, as Test does, recorded as its health "
        "(health/ready, the panel's last authentication); 0: never (default 60)",
    )
    serve.add_argument(
        "--metrics-without-token",
        action="store_true",
        help="serve /metrics to anyone who can reach the gateway (default: a hub token with read:metrics, "
        "as JupyterHub's own /hub/metrics)",
    )
    serve.add_argument(
        "--audit-keep-days",
        type=float,
        default=365.0,
        metavar="N",
        help="keep the audit log's events (in the gateway's database) N days; older ones are deleted hourly "
        "(default 365; 0: keep every event)",
    )
    serve.add_argument(
        "--db-url",
        default=None,
        metavar="URL",
        help="keep the API keys in this database, encrypted with AI_ADMIN_CRYPT_KEY (default $AI_ADMIN_GATEWAY_DB_URL; "
        "with neither, but AI_ADMIN_CRYPT_KEY set, sqlite:///HOME/ai-gateway.sqlite; with none of the three, "
        "keyrings.cryptfile in HOME)",
    )
    upgrade = actions.add_parser(
        "upgrade-db", help="make the gateway's database, or upgrade its schema to this version's (serve checks it)"
    )
    rotate = actions.add_parser(
        "rotate-crypt-key",
        help="re-encrypt every secret in the gateway's database with the first key of AI_ADMIN_CRYPT_KEY",
        description="Re-encrypt every secret in the gateway's database with the first key of AI_ADMIN_CRYPT_KEY "
        "(';'-separated: the first encrypts, all decrypt). Afterwards the other keys may be removed from it.",
    )
    for command in (upgrade, rotate):
        command.add_argument(
            "--home", default=None, help="the gateway's folder (default: $AI_ADMIN_HOME or the user data folder)"
        )
        command.add_argument(
            "--db-url",
            default=None,
            metavar="URL",
            help="the gateway's database (default $AI_ADMIN_GATEWAY_DB_URL, else sqlite:///HOME/ai-gateway.sqlite)",
        )
    practice = actions.add_parser(
        "practice",
        help="start a practice gateway with a sandbox and a stand-in hub on 127.0.0.1; prints JSON first",
    )
    for command in (serve, practice):
        command.add_argument(
            "--cache-seconds",
            type=float,
            default=30.0,
            metavar="S",
            help="how long the hub's answer about a token is kept (default 30; 0: ask every time)",
        )
        command.add_argument(
            "--deadline", type=float, default=300.0, metavar="S", help="seconds one AI call may take (default 300)"
        )
    config = actions.add_parser("hub-config", help="print the jupyterhub_config.py snippet that runs the gateway")
    config.add_argument("--name", default="ai-gateway", help="the service's name (default ai-gateway)")
    config.add_argument(
        "--url",
        default="http://127.0.0.1:10101",
        help="where the gateway listens; the hub's proxy routes /services/NAME/ there (default http://127.0.0.1:10101)",
    )
    config.add_argument(
        "--gateway-url",
        default=None,
        metavar="URL",
        help="the address users' servers call the gateway at (AI_ADMIN_GATEWAY_URL; default: --url + /services/NAME, "
        "which works only where users' servers can reach --url). Otherwise pass it through the hub's proxy, e.g. "
        "https://hub.example.org/services/ai-gateway, or in a cluster http://hub:10101/services/ai-gateway",
    )
    config.add_argument("--home", default="/srv/ai-gateway", help="the gateway's folder (default /srv/ai-gateway)")
    config.add_argument(
        "--admin", action="append", default=[], metavar="USER", help="a hub user who may configure (repeatable)"
    )


def run(arguments: argparse.Namespace) -> int:
    """Run the ``gateway`` command ``arguments`` names; returns the exit code."""
    from ..models import AIAdminError

    try:
        if arguments.gateway_command == "hub-config":
            from .hubconfig import hub_config

            snippet = hub_config(
                name=arguments.name,
                url=arguments.url,
                home=arguments.home,
                admins=arguments.admin,
                gateway_url=arguments.gateway_url,
            )
            print(snippet, end="")
            return EXIT_OK
        if arguments.gateway_command == "serve":
            from .serve import check, config_from_environment, serve

            options = {
                "cache_seconds": arguments.cache_seconds,
                "deadline": arguments.deadline,
                "usage_max_mib": arguments.usage_max_mib,
                "usage_keep": arguments.usage_keep,
                "reauth_minutes": arguments.reauth_minutes,
                "authenticate_metrics": not arguments.metrics_without_token,
                "audit_keep_days": arguments.audit_keep_days,
            }
            if arguments.check:
                print(check(arguments.home, ip=arguments.ip, db_url=arguments.db_url, **options))
                return EXIT_OK
            config, host, port = config_from_environment(
                arguments.home, ip=arguments.ip, db_url=arguments.db_url, **options
            )
            serve(config, host, port)
            return EXIT_OK
        if arguments.gateway_command in ("upgrade-db", "rotate-crypt-key"):
            from .database_cli import rotate_crypt_key_command, upgrade_db_command

            command = upgrade_db_command if arguments.gateway_command == "upgrade-db" else rotate_crypt_key_command
            print(command(arguments.home, arguments.db_url))
            return EXIT_OK
        return _practice(arguments)
    except ImportError as error:
        print(
            f"ai-admin: the AI gateway needs the hub extra ({error.name} is missing): pip install 'ai-admin-widgets[hub]'",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except (AIAdminError, ValueError) as error:
        print(f"ai-admin: {error}", file=sys.stderr)
        return EXIT_ERROR


def _practice(arguments: argparse.Namespace) -> int:
    from .practice import Practice

    stop = threading.Event()
    for sign in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sign, lambda *_: stop.set())
    with Practice(cache_seconds=arguments.cache_seconds, deadline=arguments.deadline) as practice:
        print(practice.first_line(), flush=True)
        url, admin = practice.gateway_url, practice.tokens["admin"]
        print(
            f"Practice AI gateway at {url} (provider: a sandbox at {practice.sandbox.url}; hub stand-in at "
            f"{practice.hub_api_url}).\n"
            f"As the admin:   export AI_ADMIN_GATEWAY_URL={url} JUPYTERHUB_API_TOKEN={admin}\n"
            f"As the analyst: export AI_ADMIN_GATEWAY_URL={url} JUPYTERHUB_API_TOKEN={practice.tokens['analyst']}\n"
            f"openai: OpenAI(base_url={json.dumps(url + '/v1')}, api_key=<a token>). Ctrl-C stops it.",
            flush=True,
        )
        stop.wait()
    return EXIT_OK
