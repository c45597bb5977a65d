"""AI for analysts: chat and embeddings through the organization's saved OpenAI integration.

Quick start::

    from ai_admin_widgets import ai

    ai.chat("Say hello in French")                    # -> "Bonjour !" (the assistant's text)
    ai.chat([{"role": "system", "content": "Be brief."},
             {"role": "user", "content": "What is a p-value?"}], max_tokens=200)
    ai.chat("Hello", full=True)                       # -> ChatResult: .text, .model, .usage, .response
    ai.embed(["first text", "second text"])           # -> [[0.01, ...], [...]]: one vector per text, in order

Whichever provider the admin saved, the same calls work:

* OpenAI: ``POST {base_url}/chat/completions`` and ``POST {base_url}/embeddings`` with
  ``Authorization: Bearer <key>`` (and ``OpenAI-Organization`` / ``OpenAI-Project`` when
  set), the saved language model or embeddings model in the body (OpenAI API reference,
  "Chat: create" and "Embeddings: create").
* Azure OpenAI: ``POST {endpoint}/openai/deployments/{deployment}/chat/completions`` with the
  language model's deployment, ``…/embeddings`` with the embeddings model's deployment, the
  ``api-version`` query parameter and the ``api-key`` header (Azure OpenAI REST API
  reference, "Inference").

**When AI is off.** With no integration configured, or after Remove, every call raises
:class:`AIDisabled`; a user the allow-list ("Who may use AI") leaves out gets
:class:`AINotAllowed`, a kind of :class:`AIDisabled`. A request the service refuses or
cannot answer (a revoked key, a rate limit, a server error, a timeout) raises
:class:`AIRequestFailed`, classified with the same :class:`~ai_admin_widgets.FailureCode`
as Save's checks. No message ever holds a key.

**Speed.** The saved settings and keys are read once and kept until the integration
changes: a save or remove through the same :class:`~ai_admin_widgets.AISettings` is noticed
at once (``on_change``), one by another process by a single ``stat`` of ``settings.json``
per call. Whether the user may use AI is asked again at most every
``settings.access.cache_seconds`` (30 seconds by default). Each :class:`AIClient` keeps one
connection pool for blocking calls and one per event loop for the ``_async`` calls.
Rate limits (429) are retried within ``settings.timeouts.retry_budget`` seconds, a server
error (5xx) once, as Save's checks do.

**Module functions and AIClient.** :func:`chat`, :func:`embed` and their ``_async`` forms
use the organization's settings (``AISettings()``: ``$AI_ADMIN_HOME`` or the user data
folder), or those given as ``settings=``; either way they reuse one :class:`AIClient` per
settings. Make an :class:`AIClient` yourself to choose its timeout, batch size or concurrency.

The blocking calls never touch an event loop, so they work in a Jupyter kernel (whose loop
is running) as in a script; the ``_async`` forms let a kernel do other work meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
import weakref
from collections.abc import Hashable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field

from .interface import Settings, open_settings
from .models import (
    ROLE_LABELS,
    AIAdminError,
    FailureCode,
    Role,
)

if TYPE_CHECKING:
    import httpx

    from .models import Timeouts
    from .transport import AIRoutes, Answer, Failure, Route

__all__ = [
    "AIClient",
    "AIDisabled",
    "AINotAllowed",
    "AIRequestFailed",
    "ChatResult",
    "Usage",
    "chat",
    "chat_async",
    "embed",
    "embed_async",
]

#: The most texts one embeddings request may hold (OpenAI API reference, "Embeddings: create":
#: "any array must be 2048 dimensions or less"; Azure OpenAI "How to generate embeddings": "the
#: max array size is 2048").
MAX_BATCH_SIZE = 2048
#: Texts per embeddings request unless told otherwise: well under the 2048 inputs and the
#: 300,000 tokens a request may hold, for texts of up to about a thousand tokens each.
DEFAULT_BATCH_SIZE = 256
#: Embeddings requests in flight at once, unless told otherwise.
DEFAULT_CONCURRENCY = 4
#: Seconds one request may take in all, unless told otherwise (long answers take a while); ``Timeouts().request``.
DEFAULT_TIMEOUT = 60.0

DISABLED_MESSAGE = (
    "AI functionality is disabled: no OpenAI integration is configured; ask an admin to add one in AI Settings."
)
NOT_ALLOWED_MESSAGE = (
    'AI functionality is not enabled for {user}: ask an admin to add you to "Who may use AI" in AI Settings.'
)


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


class AIDisabled(AIAdminError):
    """AI functionality is disabled: no OpenAI integration is configured (or it was removed)."""


class AINotAllowed(AIDisabled):
    """An integration is configured, but "Who may use AI" does not include this user."""


class AIRequestFailed(AIAdminError):
    """The service refused or could not answer a chat or embeddings request; the message says what to do.

    Attributes:
        code: the :class:`~ai_admin_widgets.FailureCode` (the same classification as Save's checks).
        role: ``"language"`` (chat) or ``"embeddings"``.
        status: the HTTP status of the answer, or None when there was none (a network failure).
        request_id: the service's request id, to give its support, or None.
    """

    def __init__(
        self, message: str, *, code: FailureCode, role: Role, status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.role = role
        self.status = status
        self.request_id = request_id


#: What an analyst can do about each failure (an admin's fix is in AI Settings → Test).
# --------------------------------------------------------------------------- #
# Results
# --------------------------------------------------------------------------- #


class Usage(BaseModel):
    """Tokens a chat request used, as the service counted them (0 where it did not say)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResult(BaseModel):
    """A chat answer in full (``chat(..., full=True)``); ``str(result)`` is the text.

    Attributes:
        text: the assistant's text ("" when the model answered with something else, such as a tool call).
        model: the model that answered, as the service names it (e.g. ``"gpt-4o-2024-08-06"``).
        finish_reason: why the answer ended: ``"stop"``, ``"length"`` (``max_tokens`` reached), ...
        usage: the tokens used.
        request_id: the service's request id, or None.
        response: the whole JSON answer, as the service sent it (all choices, the message, ...).
    """

    model_config = ConfigDict(frozen=True)

    text: str
    model: str | None = None
    finish_reason: str | None = None
    usage: Usage = Usage()
    request_id: str | None = None
    response: dict[str, Any] = Field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------- #
# The saved integration, read once and kept until it changes
# --------------------------------------------------------------------------- #


@dataclass
class _Saved:
    """What the settings said when last read (their fingerprint, the routes) and when "may use AI" was last asked."""

    fingerprint: Hashable
    routes: AIRoutes
    access_checked_at: float

    def __repr__(self) -> str:
        return f"_Saved({self.routes!r})"


# --------------------------------------------------------------------------- #
# The client
# --------------------------------------------------------------------------- #


class AIClient:
    """Chat and embeddings through one :class:`~ai_admin_widgets.AISettings`' saved integration.

    Args:
        settings: whose integration to use; default ``AISettings()`` (the organization's).
            The user it acts as (``settings.user``) must be allowed to use AI.
        timeout: seconds each request may take in all, from sending to the last byte of the
            answer, retries included (default ``settings.timeouts.request``, 60 seconds); a
            server that answers slower ends with ``timeout``. Connecting follows
            ``settings.timeouts.connect`` (5 seconds by default). An answer longer than
            ``settings.timeouts.max_ai_answer_bytes`` (16 MiB; for embeddings, plus
            ``max_embedding_bytes``, 128 KiB, per text) is refused unread (``unexpected_response``).
        batch_size: texts per embeddings request (default 256; at most 2048, the vendors' limit).
        concurrency: embeddings requests in flight at once (default 4).
    Raises:
        ValueError: an argument is out of range; the message names it.

    Use it as a context manager, or call :meth:`close` (and :meth:`aclose` in each event
    loop that made ``_async`` calls) when done; the module's functions keep theirs open.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        timeout: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds above 0, not {timeout!r}.")
        _check_batching(batch_size, concurrency)
        if settings is None:
            settings = open_settings()
        self.settings = settings
        self.timeout = float(settings.timeouts.request if timeout is None else timeout)
        self.batch_size = batch_size
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._saved: _Saved | None = None
        self._changed = False
        self._client: httpx.Client | None = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        me = weakref.ref(self)  # the settings must not keep this client alive

        def changed() -> None:
            client = me()
            if client is not None:
                client._changed = True

        self._stop_listening = settings.on_change(changed)

    def __repr__(self) -> str:
        return f"AIClient({self.settings!r})"

    # -- chat ----------------------------------------------------------------- #

    @overload
    def chat(
        self, messages: str | Iterable[Mapping[str, Any]], *, full: Literal[False] = False, **options: Any
    ) -> str: ...
    @overload
    def chat(
        self, messages: str | Iterable[Mapping[str, Any]], *, full: Literal[True], **options: Any
    ) -> ChatResult: ...

    def chat(
        self, messages: str | Iterable[Mapping[str, Any]], *, full: bool = False, **options: Any
    ) -> str | ChatResult:
        """Ask the integration's language model; blocks until the answer is there.

        Args:
            messages: a text (sent as one user message), or the conversation as a list of
                ``{"role": "system" | "user" | "assistant", "content": ...}`` dicts.
            full: return a :class:`ChatResult` (text, model, usage, the whole response)
                instead of just the text.
            **options: more fields of the request body, such as ``temperature``,
                ``max_tokens`` (sent as ``max_completion_tokens`` to reasoning models, which
                need it) or ``response_format`` (OpenAI API reference, "Chat: create").
                ``model`` and ``stream`` cannot be given: the admin chose the model.
        Returns:
            The assistant's text, or a :class:`ChatResult` with ``full=True``.
        Raises:
            AIDisabled: no integration is configured. AINotAllowed: this user may not use AI.
            AIRequestFailed: the service refused the request or did not answer.
            TypeError, ValueError: ``messages`` or an option is malformed; the message says how.
            StoreError, KeyringUnavailable: the saved settings or key cannot be read here.
        """
        payload = _chat_body(messages, options)
        route = self._route("language")
        return self._chat_answer(route, self._post(self._sync_client(route), route, payload), full)

    @overload
    async def chat_async(
        self, messages: str | Iterable[Mapping[str, Any]], *, full: Literal[False] = False, **options: Any
    ) -> str: ...
    @overload
    async def chat_async(
        self, messages: str | Iterable[Mapping[str, Any]], *, full: Literal[True], **options: Any
    ) -> ChatResult: ...

    async def chat_async(
        self, messages: str | Iterable[Mapping[str, Any]], *, full: bool = False, **options: Any
    ) -> str | ChatResult:
        """:meth:`chat` for a running event loop (a kernel's): the loop goes on while the model answers."""
        payload = _chat_body(messages, options)
        route = self._route("language")
        return self._chat_answer(route, await self._post_async(self._async_client(route), route, payload), full)

    # -- embeddings ------------------------------------------------------------ #

    def embed(
        self,
        texts: str | Iterable[str],
        *,
        dimensions: int | None = None,
        batch_size: int | None = None,
        concurrency: int | None = None,
    ) -> list[list[float]]:
        """One vector per text from the integration's embeddings model; blocks until all are there.

        Long lists go in batches of ``batch_size`` texts, at most ``concurrency`` requests at
        once; the vectors come back in the order of ``texts`` whatever order the batches finish in.

        Args:
            texts: the texts (any iterable of ``str``, such as a list or a pandas Series);
                a single ``str`` counts as a list of one.
            dimensions: fewer numbers per vector than the model's own (1536 for
                text-embedding-3-small); the text-embedding-3 models only.
            batch_size, concurrency: override the client's (see :class:`AIClient`).
        Returns:
            ``list[list[float]]``: ``len(texts)`` vectors (``[]`` for no texts), each of the
            model's dimension or ``dimensions``.
        Raises:
            AIDisabled, AINotAllowed, AIRequestFailed, StoreError, KeyringUnavailable: as for :meth:`chat`.
            TypeError, ValueError: a text is not a ``str`` or is empty (the message gives its
                position), or an argument is out of range.
        """
        batches, extra = self._embeddings_plan(texts, dimensions, batch_size, concurrency)
        route = self._route("embeddings")  # disabled or not allowed says so, even for no texts
        if not batches:
            return []
        client = self._sync_client(route)

        def one(batch: list[str]) -> list[list[float]]:
            return self._vectors(route, self._post(client, route, {"input": batch} | extra), len(batch))

        if len(batches) == 1:
            return one(batches[0])
        with ThreadPoolExecutor(
            max_workers=min(concurrency or self.concurrency, len(batches)), thread_name_prefix="ai-embed"
        ) as pool:
            futures = [pool.submit(one, batch) for batch in batches]
            try:
                return [vector for future in futures for vector in future.result()]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    async def embed_async(
        self,
        texts: str | Iterable[str],
        *,
        dimensions: int | None = None,
        batch_size: int | None = None,
        concurrency: int | None = None,
    ) -> list[list[float]]:
        """:meth:`embed` for a running event loop: the batches run as tasks, at most ``concurrency`` at once."""
        batches, extra = self._embeddings_plan(texts, dimensions, batch_size, concurrency)
        route = self._route("embeddings")  # disabled or not allowed says so, even for no texts
        if not batches:
            return []
        client = self._async_client(route)
        limit = asyncio.Semaphore(concurrency or self.concurrency)

        async def one(batch: list[str]) -> list[list[float]]:
            async with limit:
                result = await self._post_async(client, route, {"input": batch} | extra)
            return self._vectors(route, result, len(batch))

        tasks = [asyncio.ensure_future(one(batch)) for batch in batches]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        return [vector for part in parts for vector in part]

    # -- closing --------------------------------------------------------------- #

    def close(self) -> None:
        """Close the blocking calls' connection pool, the Microsoft Entra ID credentials, and stop following the settings' changes."""
        self._stop_listening()
        saved = self._saved
        if saved is not None:
            for route in saved.routes.routes.values():
                route.close()
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the connection pool of the running event loop's ``_async`` calls, then as :meth:`close`."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

    def __enter__(self) -> AIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> AIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- internals ------------------------------------------------------------- #

    def _post(self, client: httpx.Client, route: Route, payload: dict[str, Any]) -> Answer | Failure:
        from .entra import SignInFailed
        from .transport import send, sign_in_failure

        try:
            request = route.request(client, payload)
        except SignInFailed as error:
            assert route.tokens is not None
            return sign_in_failure(error, route.tokens)
        return send(
            client,
            request,
            provider=route.provider,
            key=route.key,
            retry_budget=self.settings.timeouts.retry_budget,
            timeout=self.timeout,
            max_bytes=self._answer_cap(payload),
        )

    async def _post_async(self, client: httpx.AsyncClient, route: Route, payload: dict[str, Any]) -> Answer | Failure:
        from .entra import SignInFailed
        from .transport import send_async, sign_in_failure

        try:
            request = await route.request_async(client, payload)
        except SignInFailed as error:
            assert route.tokens is not None
            return sign_in_failure(error, route.tokens)
        return await send_async(
            client,
            request,
            provider=route.provider,
            key=route.key,
            retry_budget=self.settings.timeouts.retry_budget,
            timeout=self.timeout,
            max_bytes=self._answer_cap(payload),
        )

    def _answer_cap(self, payload: dict[str, Any]) -> int:
        """The most bytes the answer to ``payload`` may have: the chat cap, plus the per-text allowance for embeddings."""
        limits = self.settings.timeouts
        texts = payload.get("input")
        return limits.max_ai_answer_bytes + (len(texts) * limits.max_embedding_bytes if isinstance(texts, list) else 0)

    def _route(self, role: Role) -> Route:
        """The route for ``role`` of the saved integration, from what was read last unless it changed since."""
        saved = self._saved
        fingerprint = self.settings.fingerprint()
        if saved is None or self._changed or saved.fingerprint != fingerprint:
            saved = self._reload(fingerprint)
        elif saved.routes.configured and time.monotonic() - saved.access_checked_at > saved.routes.recheck_after:
            if self.settings.can_use_ai() != saved.routes.allowed:  # a group membership changed on the hub, say
                saved = self._reload(fingerprint)
            else:
                saved.access_checked_at = time.monotonic()
        if not saved.routes.configured:
            raise AIDisabled(DISABLED_MESSAGE)
        if not saved.routes.allowed:
            raise AINotAllowed(NOT_ALLOWED_MESSAGE.format(user=repr(self.settings.user)))
        return saved.routes.routes[role]

    def _reload(self, fingerprint: Hashable) -> _Saved:
        with self._lock:
            self._changed = False  # a change from now on is noticed at the next call
            saved = _Saved(fingerprint, self.settings.ai_routes(), time.monotonic())
            previous, self._saved = self._saved, saved
            if previous is not None:  # its Microsoft Entra ID credentials signed in for the integration before
                for route in previous.routes.routes.values():
                    route.close()
            return saved

    def _timeouts(self) -> Timeouts:
        from .models import Timeouts

        limits = self.settings.timeouts
        return Timeouts(connect=limits.connect, check=self.timeout, retry_budget=limits.retry_budget)

    def _sync_client(self, route: Route) -> httpx.Client:
        client = self._client
        if client is None:
            from .transport import make_sync_client

            with self._lock:
                if self._client is None:
                    self._client = self._made(route, make_sync_client)
                client = self._client
        return client

    def _async_client(self, route: Route) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            from .transport import make_client

            client = self._async_clients[loop] = self._made(route, make_client)
        return client

    def _made(self, route: Route, make: Any) -> Any:
        from .transport import setup_problem

        try:
            return make(self._timeouts())
        except Exception as error:  # an unusable SSL_CERT_FILE, a proxy scheme without its package, ...
            code, message = setup_problem(error)
            raise AIRequestFailed(
                f"The {ROLE_LABELS[route.target.role].lower()} request could not be sent: {message}",
                code=code,
                role=route.target.role,
            ) from None

    def _failed(self, route: Route, failure: Failure) -> AIRequestFailed:
        """The exception for a failed request: what went wrong (the checks' words), and what an analyst can do."""
        from .models import explain

        outcome = failure.outcome
        code = failure.code
        explanation = explain(code, route.target, outcome, self._timeouts())
        code = explanation.code or code  # a deployment that signs in: the token refused, or the role missing
        wrong, todo = explanation.wrong, explanation.analyst_todo
        if code is FailureCode.UNEXPECTED_RESPONSE and outcome.status == 400:  # the analyst's request, not a check
            wrong = f"{route.target.host} refused the request (HTTP 400{', error code ' + outcome.api_error if outcome.api_error else ''})."
        message = f"The {ROLE_LABELS[route.target.role].lower()} request failed: {wrong} {todo}"
        if outcome.vendor_message and code is not FailureCode.INVALID_API_KEY:
            message += f" The service said: “{outcome.vendor_message}”"
        if failure.detail:
            message += f" {failure.detail}"
        message += f" [{code.value}]"
        if failure.request_id:
            message += f" (Request id {failure.request_id}.)"
        return AIRequestFailed(
            message.replace(route.key.get_secret_value(), "[key]"),
            code=code,
            role=route.target.role,
            status=outcome.status,
            request_id=failure.request_id,
        )

    def _chat_answer(self, route: Route, result: Answer | Failure, full: bool) -> str | ChatResult:
        from .transport import Failure, unexpected_answer

        if isinstance(result, Failure):
            raise self._failed(route, result)
        body = result.body
        try:
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._failed(route, unexpected_answer(result)) from None
        if not isinstance(text, str):
            raise self._failed(route, unexpected_answer(result))
        if not full:
            return text
        return ChatResult(
            text=text,
            model=body.get("model") if isinstance(body.get("model"), str) else None,
            finish_reason=choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
            usage=Usage.model_validate(body["usage"]) if isinstance(body.get("usage"), dict) else Usage(),
            request_id=result.request_id,
            response=body,
        )

    def _vectors(self, route: Route, result: Answer | Failure, count: int) -> list[list[float]]:
        """The vectors of one batch's answer, in the order of its texts (by each item's ``index``)."""
        from .transport import Failure, unexpected_answer

        if isinstance(result, Failure):
            raise self._failed(route, result)
        try:
            items = sorted(result.body["data"], key=lambda item: item["index"])
            vectors = [item["embedding"] for item in items]
        except (KeyError, TypeError):
            raise self._failed(route, unexpected_answer(result)) from None
        if (
            len(vectors) != count
            or [item["index"] for item in items] != list(range(count))
            or not all(isinstance(vector, list) for vector in vectors)
        ):
            raise self._failed(route, unexpected_answer(result))
        return vectors

    def _embeddings_plan(
        self, texts: str | Iterable[str], dimensions: int | None, batch_size: int | None, concurrency: int | None
    ) -> tuple[list[list[str]], dict[str, Any]]:
        """The batches of texts and the body fields every batch shares; checks the arguments first."""
        size = self.batch_size if batch_size is None else batch_size
        _check_batching(size, self.concurrency if concurrency is None else concurrency)
        extra: dict[str, Any] = {}
        if dimensions is not None:
            if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
                raise ValueError(f"dimensions must be a whole number above 0 (such as 256), not {dimensions!r}.")
            extra["dimensions"] = dimensions
        items = _texts(texts)
        return [items[start : start + size] for start in range(0, len(items), size)], extra


def _check_batching(batch_size: Any, concurrency: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(
            f"batch_size must be a whole number from 1 to {MAX_BATCH_SIZE} (the vendors' limit per request), not {batch_size!r}."
        )
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(
            f"concurrency must be a whole number above 0 (requests in flight at once), not {concurrency!r}."
        )


def _texts(texts: str | Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a list of strings (or one string), not {type(texts).__name__}.") from None
    for position, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{position}] is not a string but {type(text).__name__}: embed() takes texts only.")
        if not text:
            raise ValueError(
                f"texts[{position}] is empty, and the embeddings API refuses empty texts: leave it out or give it some text."
            )
    return items


_EXAMPLE = "[{'role': 'user', 'content': 'Hello'}]"


def _chat_body(messages: str | Iterable[Mapping[str, Any]], options: dict[str, Any]) -> dict[str, Any]:
    """The request body: the messages (a text becomes one user message) and the options, checked."""
    for name, why in (
        ("model", "the admin chose the language model in AI Settings"),
        ("stream", "answers come whole; streaming is not offered"),
        ("messages", "give the messages as the first argument"),
    ):
        if name in options:
            raise TypeError(f"chat() does not take {name}=: {why}.")
    if isinstance(messages, str):
        if not messages.strip():
            raise ValueError("The message is empty: give the text to send.")
        return {"messages": [{"role": "user", "content": messages}], **options}
    if isinstance(messages, Mapping):
        raise TypeError(f"messages must be a list of messages, such as {_EXAMPLE}, even for one message.")
    try:
        items = list(messages)
    except TypeError:
        raise TypeError(
            f"messages must be a text or a list of messages, such as {_EXAMPLE}; not {type(messages).__name__}."
        ) from None
    if not items:
        raise ValueError(f"messages is empty: give at least one message, such as {_EXAMPLE}.")
    for position, message in enumerate(items):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise TypeError(f"messages[{position}] must be a dict with 'role' and 'content', such as {_EXAMPLE[1:-1]}.")
    return {"messages": [dict(message) for message in items], **options}


# --------------------------------------------------------------------------- #
# Module functions: one AIClient per settings, kept for the next call
# --------------------------------------------------------------------------- #

_clients_lock = threading.Lock()
#: The organization's settings' clients, by where they are (``$AI_ADMIN_HOME``, or ``$AI_ADMIN_GATEWAY_URL``
#: and a digest of ``$JUPYTERHUB_API_TOKEN``), any of which may change between calls.
_default_clients: dict[tuple[str, str, str], AIClient] = {}


def _where() -> tuple[str, str, str]:
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest() if token else ""
    return os.environ.get("AI_ADMIN_HOME", ""), os.environ.get("AI_ADMIN_GATEWAY_URL", ""), digest


def _client_for(settings: Settings | None) -> AIClient:
    """The kept :class:`AIClient` of ``settings`` (the organization's when None); made on first use.

    Raises:
        TypeError: ``settings`` is not AI Settings (a folder, say).
    """
    if settings is not None:
        if not isinstance(settings, Settings):
            raise TypeError(
                f"settings must be an ai_admin_widgets.AISettings, not {type(settings).__name__}; "
                "for another folder use settings=AISettings(home=...)."
            )
        client = settings.__dict__.get("_ai_client")  # kept on the settings, so it goes when they go
        if client is None:
            with _clients_lock:
                client = settings.__dict__.get("_ai_client") or AIClient(settings)
                settings.__dict__["_ai_client"] = client
        return client
    where = _where()
    client = _default_clients.get(where)
    if client is None:
        with _clients_lock:
            client = _default_clients.get(where)
            if client is None:
                client = _default_clients[where] = AIClient(open_settings())
    return client


@overload
def chat(
    messages: str | Iterable[Mapping[str, Any]],
    *,
    settings: Settings | None = None,
    full: Literal[False] = False,
    **options: Any,
) -> str: ...
@overload
def chat(
    messages: str | Iterable[Mapping[str, Any]],
    *,
    settings: Settings | None = None,
    full: Literal[True],
    **options: Any,
) -> ChatResult: ...


def chat(
    messages: str | Iterable[Mapping[str, Any]],
    *,
    settings: Settings | None = None,
    full: bool = False,
    **options: Any,
) -> str | ChatResult:
    """Ask the organization's language model (see :meth:`AIClient.chat` for the arguments, returns and errors).

    Args:
        settings: whose integration to use; default the organization's (``AISettings()``).
    """
    client = _client_for(settings)
    return client.chat(messages, full=True, **options) if full else client.chat(messages, **options)


async def chat_async(
    messages: str | Iterable[Mapping[str, Any]],
    *,
    settings: Settings | None = None,
    full: bool = False,
    **options: Any,
) -> str | ChatResult:
    """:func:`chat` for a running event loop (see :meth:`AIClient.chat_async`)."""
    client = _client_for(settings)
    return await (client.chat_async(messages, full=True, **options) if full else client.chat_async(messages, **options))


def embed(
    texts: str | Iterable[str],
    *,
    settings: Settings | None = None,
    dimensions: int | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
) -> list[list[float]]:
    """One vector per text, in order, from the organization's embeddings model (see :meth:`AIClient.embed`).

    Args:
        settings: whose integration to use; default the organization's (``AISettings()``).
    """
    return _client_for(settings).embed(texts, dimensions=dimensions, batch_size=batch_size, concurrency=concurrency)


async def embed_async(
    texts: str | Iterable[str],
    *,
    settings: Settings | None = None,
    dimensions: int | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
) -> list[list[float]]:
    """:func:`embed` for a running event loop (see :meth:`AIClient.embed_async`)."""
    return await _client_for(settings).embed_async(
        texts, dimensions=dimensions, batch_size=batch_size, concurrency=concurrency
    )
