"""Who is calling the AI gateway, as JupyterHub says, and what they may do.

Every request carries its caller's JupyterHub token (``Authorization: token <token>`` or
``Bearer <token>``; the openai SDK sends its ``api_key`` as ``Bearer``). The gateway asks the hub
who owns it with :class:`jupyterhub.services.auth.HubAuth` (``user_for_token``: ``GET
{hub}/api/user`` with that token; JupyterHub answers the owner's model with the token's
``scopes``, and 403 for a token it does not know). Answers are cached for ``cache_seconds``
(HubAuth's cache; 0 asks every time). Failing closed: a hub that cannot be reached, answers an
error or does not answer within ``timeout`` is :class:`HubUnavailable` (HTTP 503), never "allowed".

Permissions (JupyterHub RBAC, custom scopes need JupyterHub 3 or later):

* ``custom:ai-admin:configure`` or being a hub admin (the model's ``admin`` field): configure
  (save, test, remove, the allow-lists);
* ``custom:ai-admin:use``: use AI through ``/v1``, narrowed further by the panel's allow-list.

Only the unfiltered scopes count (a scope with a ``!filter`` grants nothing here).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..access import ADMIN_REQUIRED, AccessPolicy, HubUser
from ..models import AdminCheck
from . import CONFIGURE_SCOPE, USE_SCOPE

__all__ = [
    "CONFIGURE_SCOPE",
    "USE_SCOPE",
    "Caller",
    "GatewayAccess",
    "HubUnavailable",
    "Identity",
    "NoServiceAccess",
    "token_of",
]

_TOKEN = re.compile(r"(?:token|bearer)\s+(\S+)\s*", re.IGNORECASE)


class NoServiceAccess(Exception):
    """The token may not access this service (it lacks ``access:services!service=<name>``); the message says so."""


class HubUnavailable(Exception):
    """JupyterHub could not say who a token belongs to (unreachable, failing or too slow); the message says which."""


@dataclass(frozen=True)
class Caller:
    """A hub-verified caller: name, hub admin or not, groups, and the scopes of the token they called with."""

    name: str
    admin: bool = False
    groups: tuple[str, ...] = ()
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def may_configure(self) -> bool:
        """True for a hub admin, or a token with ``custom:ai-admin:configure``."""
        return self.admin or CONFIGURE_SCOPE in self.scopes

    @property
    def may_use(self) -> bool:
        """True for a token with ``custom:ai-admin:use`` (the allow-list is checked besides)."""
        return USE_SCOPE in self.scopes

    @classmethod
    def from_model(cls, model: Any) -> Caller | None:
        """The caller a hub user model describes; None for anything else (a service's token, a malformed answer)."""
        if not isinstance(model, dict) or model.get("kind", "user") != "user" or not isinstance(model.get("name"), str):
            return None
        groups: list[Any] = model["groups"] if isinstance(model.get("groups"), list) else []
        scopes: list[Any] = model["scopes"] if isinstance(model.get("scopes"), list) else []
        return cls(
            name=model["name"],
            admin=model.get("admin") is True,
            groups=tuple(group for group in groups if isinstance(group, str)),
            scopes=frozenset(scope for scope in scopes if isinstance(scope, str)),
        )


def token_of(header: str | None) -> str | None:
    """The token of an ``Authorization`` header (``token …`` or ``Bearer …``, any case), or None."""
    match = _TOKEN.fullmatch(header or "")
    return match.group(1) if match else None


class Identity:
    """Resolves tokens to callers with HubAuth, cached, bounded in time, failing closed.

    Args:
        api_url: the hub's API, e.g. ``http://127.0.0.1:8081/hub/api`` (``$JUPYTERHUB_API_URL``).
        api_token: the gateway's own token (``$JUPYTERHUB_API_TOKEN`` of the service).
        cache_seconds: how long the hub's answer about a token is remembered (0: never).
        timeout: seconds the hub may take to answer.
        access_scopes: the scopes a token needs to reach this service at all; default HubAuth's
            (``$JUPYTERHUB_OAUTH_ACCESS_SCOPES``, else ``access:services!service=$JUPYTERHUB_SERVICE_NAME``,
            as the hub sets them for a managed service; none off a hub).
    Raises:
        ImportError: jupyterhub is not installed (``pip install 'ai-admin-widgets[hub]'``).
    """

    def __init__(
        self,
        api_url: str,
        api_token: str,
        *,
        cache_seconds: float = 30.0,
        timeout: float = 5.0,
        access_scopes: set[str] | None = None,
    ) -> None:
        from jupyterhub.services.auth import HubAuth

        self.api_url = api_url.rstrip("/")
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        # HubAuth's cache keeps an answer for cache_max_age seconds; its max_age 0 means "forever", so 0 is use_cache=False.
        self._hub_auth = HubAuth(api_url=self.api_url, api_token=api_token, cache_max_age=max(int(cache_seconds), 1))
        if access_scopes is not None:
            self._hub_auth.access_scopes = set(access_scopes)

    def __repr__(self) -> str:
        return f"Identity(api_url={self.api_url!r})"

    async def caller(self, token: str) -> Caller | None:
        """Who owns ``token``; None when the hub does not know it (or it is not a user's).

        Raises:
            NoServiceAccess: the token lacks the service's access scopes (``access:services!service=<name>``).
            HubUnavailable: the hub cannot be reached, fails, or takes longer than ``timeout``.
        """
        model = await self.token_model(token)
        caller = Caller.from_model(model)
        required = self._hub_auth.access_scopes
        if caller is not None and required:
            from jupyterhub.services.auth import check_scopes

            if not check_scopes(required, set(caller.scopes)):
                raise NoServiceAccess(
                    f"Your JupyterHub token may not reach the AI gateway (it needs {' or '.join(sorted(required))}); "
                    "ask the hub's admin to add it to c.Spawner.server_token_scopes, then restart your server."
                )
        return caller

    async def token_model(self, token: str) -> Any:
        """The hub's model of ``token``'s owner (a user's or a service's, with the token's ``scopes``); None if unknown.

        Raises:
            HubUnavailable: the hub cannot be reached, fails, or takes longer than ``timeout``.
        """
        from tornado.web import HTTPError

        try:
            return await asyncio.wait_for(
                self._hub_auth.user_for_token(token, use_cache=self.cache_seconds > 0, sync=False), self.timeout
            )
        except asyncio.TimeoutError:
            raise HubUnavailable(
                f"JupyterHub at {self.api_url} did not answer within {self.timeout:g} seconds, so nobody can be "
                "identified; try again in a minute, or ask the hub's admin."
            ) from None
        except (HTTPError, OSError, RuntimeError, ValueError) as error:
            raise HubUnavailable(
                f"JupyterHub at {self.api_url} cannot identify callers now ({type(error).__name__}), so nothing is "
                "allowed; check that the hub is running, then try again."
            ) from None
        except Exception as error:  # aiohttp's client errors and the like: still never "allowed"
            raise HubUnavailable(
                f"JupyterHub at {self.api_url} cannot be reached ({type(error).__name__}), so nothing is allowed; "
                "check that the hub is running, then try again."
            ) from None

    async def close(self) -> None:
        """Close HubAuth's HTTP session of the running event loop."""
        try:
            from jupyterhub.httpclient import JupyterHubHTTPClient

            await JupyterHubHTTPClient.loop_instance().close()
        except Exception:  # noqa: S110 (an older jupyterhub without it, or nothing was opened)
            pass


class GatewayAccess(AccessPolicy):
    """The access policy of one gateway request: the hub-verified caller's scopes decide, the allow-lists narrow use.

    Admins: the caller when :attr:`Caller.may_configure`; nobody else (the store's admins list is
    not consulted). Use of AI: the allow-lists, with the caller's hub groups, and, for the caller,
    the use scope. Another user's groups are not known here (counted as none).
    """

    def __init__(self, caller: Caller, *, cache_seconds: float = 30.0) -> None:
        super().__init__(use_hub=True, cache_seconds=cache_seconds)
        self.caller = caller

    def __repr__(self) -> str:
        return f"GatewayAccess(caller={self.caller.name!r})"

    def on_hub(self) -> bool:
        return True

    def hub_user(self) -> HubUser:
        return HubUser(name=self.caller.name, admin=self.caller.admin, groups=self.caller.groups)

    def check_admin(self, user: str, admins: Sequence[str] = ()) -> AdminCheck:
        if user != self.caller.name:
            return AdminCheck(
                False, "gateway", f"Only {self.caller.name!r} is known to the AI gateway in this request."
            )
        if self.caller.may_configure:
            return AdminCheck(True, "gateway")
        return AdminCheck(
            False,
            "gateway",
            f"{ADMIN_REQUIRED} On this JupyterHub that is a role granting the {CONFIGURE_SCOPE} scope, "
            "or being a hub admin; ask the hub's admin.",
        )

    def groups(self, user: str) -> list[str]:
        return list(self.caller.groups) if user == self.caller.name else []

    def may_use_ai(self, user: str, allowed_users: Sequence[str] = (), allowed_groups: Sequence[str] = ()) -> bool:
        """The caller: the use scope, then the allow-lists with the hub's groups; another user: listed by name."""
        if user == self.caller.name and not self.caller.may_use:
            return False
        if not allowed_users and not allowed_groups:
            return True
        return user in allowed_users or any(group in allowed_groups for group in self.groups(user))
