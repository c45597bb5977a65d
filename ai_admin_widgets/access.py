"""Who the user is, who may change the OpenAI integration, and who may use AI.

**Who the user is** (:func:`current_user`). On a JupyterHub server, the owner of the
server's token as the hub says (``GET {JUPYTERHUB_API_URL}/user``); ``$JUPYTERHUB_USER``
is never believed, and one that disagrees with the hub is logged. Off a hub, the operating
system account the process runs as (its user id in the password database), never an
environment variable such as ``$USER``. ``AISettings(user=...)`` names another user, but on
a hub every decision below is still made for the token's owner only.

**Anyone may see the status**, which never holds a secret.

**Who is an admin** (may add, edit, remove and re-test the integration, and change the
lists below):

* *On a JupyterHub server* (``$JUPYTERHUB_API_URL`` is set): JupyterHub says.
  ``GET {JUPYTERHUB_API_URL}/user`` with the header ``Authorization: token
  $JUPYTERHUB_API_TOKEN`` returns the model of the token's owner; the user is an admin
  when that model's ``name`` is the user and its ``admin`` field is true. When the token
  is missing, the hub cannot be reached, refuses the token, or answers without an
  ``admin`` field, the user is *not* an admin, and :meth:`AccessPolicy.check_admin`
  says why in ``reason`` (shown in the panel and in the ``PermissionDenied`` message).
  The hub's answer is remembered for 30 seconds (``cache_seconds``), by every policy of the
  process. Each question to the hub has an overall deadline (``timeout``, 3 seconds, every
  read included) and a cap on the answer (``max_answer_bytes``, 1 MiB): a hub that stalls
  or floods is a non-admin with the reason, never a hang. The store's admins list is not
  consulted on a hub.
* *Off a hub*: the store's admins list (``admins`` in ``settings.json``). Its first entry
  is the user who first changes the store (the first successful Save, or the first change
  of a list below); admins add and remove admins, and at least one admin always remains.
  While the list is empty and nobody has ever saved, anyone may configure the
  integration, and whoever does so first becomes the first admin. A store written before
  the list existed (an integration saved, but no ``admins``) counts the user who last
  saved or removed it (``updated_by``) as its first admin; their next change writes the
  list down. A ``settings.json`` so damaged that its admins list cannot be read lets
  anyone who may write the folder act as an admin, so AI can always be switched off
  (Remove resets the record, keeping the lists whenever they can still be read).
  The list is an agreement among the users who can write the store's folder, not a
  barrier against them: the folder's permissions are that barrier (a user who cannot
  write the folder cannot save or remove, and is told so).

**Who may use AI** (``AISettings.can_use_ai(user)``; the vendor FAQ's "limit use to
specific users"):

* nobody while no integration is configured (or the record cannot be read);
* everyone when both allow-lists (``allowed_users`` and ``allowed_groups``) are empty;
* otherwise a user named in ``allowed_users``, or a member of a group named in
  ``allowed_groups``. Being an admin does not by itself allow use.

Names are compared exactly (case matters). On a hub the allow-lists are checked for the
token's owner only, with the groups of the hub's ``/user`` answer; asked about any other
name (``AISettings(user=...)``, ``can_use_ai("someone")``), or when the hub cannot say who
the token's owner is, the answer is no unless both lists are empty. Off a hub a user's
groups come from the operating system (the primary and supplementary groups, on POSIX
systems; none elsewhere).

In local mode (no AI gateway) these rules bind only people who can neither write the
store's folder nor read the keyring: anyone who can do either can bypass them.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from .models import ADMIN_REQUIRED, AccessLists, AdminCheck, Timeouts, looks_like_key
from .transport import AnswerTooLarge, make_sync_client, receive, size_text

__all__ = [
    "ADMIN_REQUIRED",
    "AccessLists",
    "AccessPolicy",
    "AdminCheck",
    "HubUser",
    "clean_names",
    "current_user",
    "os_groups",
]

#: What a user who is not an admin is told, in the panel and in ``PermissionDenied``.

_HUB_URL = "JUPYTERHUB_API_URL"
_HUB_TOKEN = "JUPYTERHUB_API_TOKEN"  # noqa: S105 (the variable's name, not a token)
_MAX_NAME = 256

_log = logging.getLogger(__name__)


def current_user(policy: AccessPolicy | None = None) -> str:
    """The user name of whoever runs this kernel.

    On a hub (``policy.on_hub()``; by default, ``$JUPYTERHUB_API_URL`` set) it is the owner of
    ``$JUPYTERHUB_API_TOKEN`` as JupyterHub says (one ``GET /user``, remembered with the
    policy's other hub answers); ``$JUPYTERHUB_USER`` is ignored, and a warning is logged when
    it disagrees. When the hub cannot say, the operating system's account is used, and every
    hub check then fails closed (see :meth:`AccessPolicy.check_admin`).

    Off a hub the name comes from the process's real user id (the password database), not
    from ``$USER``, ``$LOGNAME`` or ``$JUPYTERHUB_USER``, which anyone can set; only where
    there is no such database (Windows) is the login name used.

    Args:
        policy: whose hub to ask; default ``AccessPolicy()`` (the environment's).
    """
    policy = policy if policy is not None else AccessPolicy()
    if policy.on_hub():
        entry = policy._entry()
        if entry.user is not None:
            claimed = os.environ.get("JUPYTERHUB_USER")
            if claimed and claimed != entry.user.name:
                _log.warning(
                    "JUPYTERHUB_USER says %r, but JupyterHub says this server's token belongs to %r: "
                    "acting as %r (JUPYTERHUB_USER is ignored).",
                    claimed,
                    entry.user.name,
                    entry.user.name,
                )
            return entry.user.name
    return _os_account()


def _os_account() -> str:
    """The operating system account of this process, from its user id."""
    if hasattr(os, "getuid"):
        try:
            import pwd

            return pwd.getpwuid(os.getuid()).pw_name
        except (ImportError, KeyError):  # a container without a passwd entry
            return f"uid-{os.getuid()}"
    try:
        return getpass.getuser()
    except Exception:  # no login name at all
        return "unknown"


def clean_names(names: str | Iterable[str], *, kind: str = "user") -> list[str]:
    """Tidy a list of user or group names as an admin types it.

    Args:
        names: comma-separated text (``"alice, bob"``) or an iterable of names.
        kind: ``"user"`` or ``"group"``, for the error message.
    Returns:
        The names with spaces around them removed, empty ones dropped and repeats
        removed, in the order given.
    Raises:
        ValueError: a name holds a comma (in an iterable), a control character, is
            longer than 256 characters, or looks like an API key; the message names it (never a key).
    """
    if isinstance(names, str):
        items = names.split(",")
    else:
        items = list(names)
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"A {kind} name must be text, not {type(item).__name__}.")
            if "," in item:
                raise ValueError(f"The {kind} name {item.strip()!r} holds a comma: give one name per entry.")
    cleaned: list[str] = []
    for item in items:
        name = item.strip()
        if not name:
            continue
        if any(unicodedata.category(char).startswith("C") for char in name):
            raise ValueError(f"The {kind} name {name!r} holds a control or invisible character.")
        if len(name) > _MAX_NAME:
            raise ValueError(f"The {kind} name {name[:20]!r}… is longer than {_MAX_NAME} characters.")
        if looks_like_key(name):
            # Never repeated, stored or audited: it is most likely a key pasted in the wrong place.
            raise ValueError(f"One of the {kind} names looks like an API key, not a name: remove it and type the name.")
        if name not in cleaned:
            cleaned.append(name)
    return cleaned


def os_groups(user: str) -> list[str]:
    """The operating system's groups of ``user``: the primary group, then the supplementary ones.

    Args:
        user: a login name.
    Returns:
        Group names; empty when the system does not know the user, or is not POSIX.
    """
    try:
        import grp
        import pwd
    except ImportError:  # Windows
        return []
    try:
        primary = pwd.getpwnam(user).pw_gid
        ids = os.getgrouplist(user, primary)
    except (KeyError, OSError):
        return []
    names: list[str] = []
    for gid in ids:
        try:
            name = grp.getgrgid(gid).gr_name
        except KeyError:  # a group id without a name
            continue
        if name not in names:
            names.append(name)
    return names


@dataclass(frozen=True)
class HubUser:
    """The parts of JupyterHub's user model that matter here.

    Attributes:
        name: the user's name on the hub.
        admin: the ``admin`` field, or None when the hub's answer did not include it.
        groups: the ``groups`` field (empty when absent).
    """

    name: str
    admin: bool | None
    groups: tuple[str, ...] = ()


class _HubError(Exception):
    """JupyterHub could not say who the token's owner is; the message says why."""


@dataclass
class _Cached:
    key: tuple[str, ...]
    asked_at: float
    user: HubUser | None = None
    error: str | None = None
    others: dict[str, tuple[str, ...]] = field(default_factory=dict)


#: JupyterHub's answers by (API URL, token), shared by every policy of the process, so that
#: working out who the user is (:func:`current_user`) and whether they are an admin cost one request.
_hub_answers: dict[tuple[str, ...], _Cached] = {}
_hub_answers_lock = threading.Lock()


class AccessPolicy:
    """Decides who is an admin and who may use AI (the rules are in this module's docstring).

    Args:
        admin: force the answer of :meth:`is_admin` (True or False) for every user; None
            applies the rules.
        use_hub: None (default) asks JupyterHub whenever ``$JUPYTERHUB_API_URL`` is set;
            False never asks it and applies the off-hub rule (the sandbox's practice
            settings do this); True always asks it (a missing URL is then a non-admin).
        timeout: seconds allowed for each request to JupyterHub in all: connecting, sending and
            reading the whole answer (a hub that trickles its answer is cut off then).
        cache_seconds: how long an answer from JupyterHub (or its failure) is remembered.
        max_answer_bytes: the most bytes of one answer from JupyterHub (default 1 MiB; a user
            model is well under 100 KB even with hundreds of groups); a longer one is refused unread.
    """

    def __init__(
        self,
        admin: bool | None = None,
        *,
        use_hub: bool | None = None,
        timeout: float = 3.0,
        cache_seconds: float = 30.0,
        max_answer_bytes: int = 1024 * 1024,
    ) -> None:
        self._admin = admin
        self.use_hub = use_hub
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.max_answer_bytes = max_answer_bytes

    def __repr__(self) -> str:
        forced = "" if self._admin is None else f"admin={self._admin}, "
        return f"AccessPolicy({forced}hub={self.hub_api_url()!r})"

    # -- JupyterHub ---------------------------------------------------------------- #

    @staticmethod
    def hub_api_url() -> str | None:
        """JupyterHub's API address, read from the environment at each call.

        Returns:
            ``$JUPYTERHUB_API_URL`` without a trailing ``/`` (e.g. ``http://127.0.0.1:8081/hub/api``),
            or None when it is not set.
        """
        url = os.environ.get(_HUB_URL, "").strip()
        return url.rstrip("/") or None

    def on_hub(self) -> bool:
        """Whether JupyterHub, rather than the store's admins list, decides who is an admin.

        Returns:
            ``use_hub`` when it was given; else True when ``$JUPYTERHUB_API_URL`` is set.
        """
        if self.use_hub is not None:
            return self.use_hub
        return self.hub_api_url() is not None

    def refresh(self) -> None:
        """Forget JupyterHub's remembered answer (or failure), so the next question asks the hub again."""
        with _hub_answers_lock:
            _hub_answers.pop(self._key(), None)

    def _key(self) -> tuple[str, ...]:
        """``(hub API URL, a digest of the token)``: the token itself is kept in no structure a repr could show."""
        token = os.environ.get(_HUB_TOKEN, "")
        return (self.hub_api_url() or "", hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest())

    def hub_user(self) -> HubUser:
        """The owner of ``$JUPYTERHUB_API_TOKEN``, as JupyterHub describes it (remembered a while).

        Returns:
            A :class:`HubUser`.
        Raises:
            RuntimeError: not on a hub, no token, the hub cannot be reached, refuses the
                token, or answers with something that is not a user model; the message
                says which, and never holds the token.
        """
        entry = self._entry()
        if entry.user is None:
            raise RuntimeError(entry.error or "JupyterHub did not answer.")
        return entry.user

    def _entry(self) -> _Cached:
        key = self._key()
        url, token = key[0], os.environ.get(_HUB_TOKEN, "")
        with _hub_answers_lock:
            cached = _hub_answers.get(key)
            if cached is not None and time.monotonic() < cached.asked_at + self.cache_seconds:
                return cached
        asked_at = time.monotonic()
        try:
            entry = _Cached(key, asked_at, user=self._ask_hub(url or None, token))
        except _HubError as error:
            entry = _Cached(key, asked_at, error=str(error))
        with _hub_answers_lock:
            _hub_answers[key] = entry
        return entry

    def _ask_hub(self, url: str | None, token: str) -> HubUser:
        if url is None:
            raise _HubError("This is not a JupyterHub server ($JUPYTERHUB_API_URL is not set).")
        if not token:
            raise _HubError(
                "$JUPYTERHUB_API_TOKEN is not set, so JupyterHub cannot say whether you are an admin; "
                "you are treated as a non-admin."
            )
        model = self._get(url, "/user", token)
        if model.get("kind") not in (None, "user") or not isinstance(model.get("name"), str):
            raise _HubError(
                f"JupyterHub at {url} says this server's token does not belong to a user; "
                "you are treated as a non-admin."
            )
        admin = model.get("admin")
        return HubUser(name=model["name"], admin=admin if isinstance(admin, bool) else None, groups=_groups(model))

    def _get(self, url: str, path: str, token: str) -> dict:
        where = f"JupyterHub at {url}"
        try:
            with make_sync_client(Timeouts(connect=self.timeout, check=self.timeout)) as client:
                request = client.build_request(
                    "GET", url + path, headers={"Authorization": f"token {token}", "Accept": "application/json"}
                )
                response = receive(client, request, max_bytes=self.max_answer_bytes, timeout=self.timeout)
        except httpx.TimeoutException:
            raise _HubError(
                f"{where} did not answer in full within {self.timeout:g} seconds; you are treated as a non-admin."
            ) from None
        except AnswerTooLarge as error:
            raise _HubError(
                f"{where} sent an answer larger than {size_text(error.limit)}, which is not a user model; "
                "it was refused, and you are treated as a non-admin."
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ImportError, ValueError) as error:
            raise _HubError(
                f"Cannot reach {where} ({type(error).__name__}); you are treated as a non-admin. "
                "Check that the hub is running, then reload the panel."
            ) from None
        if response.status_code in (401, 403):
            raise _HubError(
                f"{where} refused this server's API token (HTTP {response.status_code}); you are treated as a non-admin."
            )
        if response.status_code != 200:
            raise _HubError(f"{where} answered HTTP {response.status_code}; you are treated as a non-admin.")
        try:
            model = response.json()
        except ValueError:
            model = None
        if not isinstance(model, dict):
            raise _HubError(f"{where} did not answer with a user model; you are treated as a non-admin.")
        return model

    # -- admins ---------------------------------------------------------------------- #

    def check_admin(self, user: str, admins: Sequence[str] = ()) -> AdminCheck:
        """Whether ``user`` is an admin, and why not.

        Args:
            user: the user name.
            admins: the store's admins list as it applies off a hub (see
                ``SettingsRecord.effective_admins``); empty when there is none yet or it
                cannot be read.
        Returns:
            An :class:`AdminCheck`. Never raises for an unreachable or unwilling hub: that
            is a non-admin with a ``reason``.
        """
        if self._admin is not None:
            return AdminCheck(self._admin, "forced", None if self._admin else ADMIN_REQUIRED)
        if self.on_hub():
            entry = self._entry()
            if entry.user is None:
                return AdminCheck(False, "hub", entry.error)
            if entry.user.name != user:
                return AdminCheck(
                    False,
                    "hub",
                    f"JupyterHub says this server's token belongs to {entry.user.name!r}, not {user!r}; "
                    f"{user!r} is treated as a non-admin.",
                )
            if entry.user.admin is None:
                return AdminCheck(
                    False,
                    "hub",
                    "JupyterHub's answer does not say whether you are an admin (the server's token may lack the "
                    "read:users scope); you are treated as a non-admin.",
                )
            return AdminCheck(entry.user.admin, "hub", None if entry.user.admin else ADMIN_REQUIRED)
        if not admins:
            return AdminCheck(
                True, "store", "No admin is recorded yet: whoever first configures the integration becomes its admin."
            )
        if user in admins:
            return AdminCheck(True, "store")
        return AdminCheck(False, "store", f"{ADMIN_REQUIRED} Admins here: {', '.join(admins)}.")

    def is_admin(self, user: str, admins: Sequence[str] = ()) -> bool:
        """Whether ``user`` may change the OpenAI integration.

        Args:
            user: the user name.
            admins: the store's admins list as it applies off a hub (empty: none yet).
        Returns:
            ``check_admin(user, admins).admin``; never raises for an unreachable hub.
        """
        return self.check_admin(user, admins).admin

    # -- use of AI ------------------------------------------------------------------- #

    def groups(self, user: str) -> list[str]:
        """The groups of ``user``: JupyterHub's on a hub, the operating system's off it.

        Args:
            user: the user name.
        Returns:
            Group names; empty when they cannot be learned (never raises for that).
        """
        if not self.on_hub():
            return os_groups(user)
        entry = self._entry()
        if entry.user is None:
            return []
        if entry.user.name == user:
            return list(entry.user.groups)
        if user not in entry.others:
            try:
                model = self._get(
                    self.hub_api_url() or "", f"/users/{quote(user, safe='')}", os.environ.get(_HUB_TOKEN, "")
                )
            except _HubError:
                entry.others[user] = ()
            else:
                entry.others[user] = _groups(model)
        return list(entry.others[user])

    def may_use_ai(self, user: str, allowed_users: Sequence[str] = (), allowed_groups: Sequence[str] = ()) -> bool:
        """Whether ``user`` passes the allow-lists (the integration being configured is checked by the caller).

        Args:
            user: the user name.
            allowed_users: users who may use AI.
            allowed_groups: groups whose members may use AI.
        Returns:
            True when both lists are empty, the user is listed, or belongs to a listed group.
            On a hub, only for the token's owner as the hub says (with the hub's groups): any
            other name, or a hub that cannot say who the owner is, is False (fail closed).
        """
        if not allowed_users and not allowed_groups:
            return True
        if not self.on_hub():
            return user in allowed_users or (
                bool(allowed_groups) and any(group in allowed_groups for group in os_groups(user))
            )
        entry = self._entry()
        if entry.user is None:
            _log.warning("The allow-list is not met for %r: %s", user, entry.error)
            return False
        if entry.user.name != user:
            _log.warning(
                "JupyterHub says this server's token belongs to %r, not %r: the allow-list is not checked for %r.",
                entry.user.name,
                user,
                user,
            )
            return False
        return user in allowed_users or any(group in allowed_groups for group in entry.user.groups)


def _groups(model: dict) -> tuple[str, ...]:
    groups = model.get("groups")
    if not isinstance(groups, list):
        return ()
    return tuple(group for group in groups if isinstance(group, str))
