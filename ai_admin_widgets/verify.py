"""Authenticate an integration's credentials live, and classify every failure.

Both models are checked concurrently over one connection pool, each bounded by
an overall deadline (:attr:`Timeouts.check`, every read included) and each answer by a
size cap (:attr:`Timeouts.max_answer_bytes`; a longer answer is refused unread). A remote failure is never raised: it becomes a :class:`ModelCheck`
with a stable :class:`FailureCode` and a message that names the field, says what
is wrong and what to do, and carries the vendor's request id.

Requests (sources: OpenAI API reference "Chat: create", "Embeddings: create", "Error codes"; Azure OpenAI REST API
reference "Chat completions - Create" and "Embeddings - Create"):

* OpenAI: the smallest generation per model, so that a key without credit fails
  (``GET /models/{id}`` would pass it): ``POST {base_url}/chat/completions`` with one
  short message and ``max_tokens: 1`` (``max_completion_tokens: 1`` for reasoning models),
  and ``POST {base_url}/embeddings`` with input ``"ping"``; ``Authorization: Bearer <key>``
  (and ``OpenAI-Organization`` / ``OpenAI-Project`` when set). About ten tokens in and one
  out, and one token of embeddings: a Save costs a fraction of a cent.
* Azure OpenAI: ``POST {endpoint}/openai/deployments/{deployment}/chat/completions``
  with one message and ``max_tokens: 1`` (``max_completion_tokens: 1`` for reasoning
  models, which reject ``max_tokens``), and ``POST …/{deployment}/embeddings`` with
  input ``"ping"``; ``api-key: <key>`` header, ``api-version`` query parameter. A deployment that signs in
  with Microsoft Entra ID first gets a token (:mod:`~ai_admin_widgets.entra`, within the check's deadline)
  and sends ``Authorization: Bearer <token>`` instead.

Rate limits (429) are retried within :attr:`Timeouts.retry_budget`, honouring
``retry-after-ms`` and ``retry-after`` (Azure OpenAI "Quotas and limits"); a
used-up quota is never retried. A server error (5xx) is retried once.

The request loop (:func:`send`, :func:`send_async`), the request parts
(:func:`openai_headers`, :func:`azure_request_parts`) and the messages
(:func:`explain`) also serve :mod:`ai_admin_widgets.ai`, so a failed chat or
embeddings call is classified and worded as a failed check is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

import httpcore
import httpx

from .entra import SignInFailed, TokenSource
from .models import (
    ROLE_LABELS,
    AzureOpenAIIntegration,
    CheckTarget,
    FailureCode,
    ModelCheck,
    OpenAIIntegration,
    Outcome,
    Role,
    Timeouts,
    VerificationReport,
    explain,
)
from .normalize import judge_model
from .transport import (
    Failure,
    azure_body,
    azure_request_parts,
    holds_part_of,
    is_html,
    make_client,
    openai_headers,
    openai_target,
    secret_of,
    send_async,
    setup_problem,
    sign_in_failure,
    token_source_for,
)

__all__ = [
    "Timeouts",
    "verify",
    "verify_async",
]

#: Called with each model's check as soon as it is done.
CheckListener = Callable[[ModelCheck], None]


# --------------------------------------------------------------------------- #
# Reading an error answer
# --------------------------------------------------------------------------- #


# --------------------------------------------------------------------------- #
# Classification tables
# --------------------------------------------------------------------------- #


# --------------------------------------------------------------------------- #
# Messages: what is wrong, then what to do
# --------------------------------------------------------------------------- #


def _describe(
    code: FailureCode, target: CheckTarget, outcome: Outcome, timeouts: Timeouts
) -> tuple[str, str | None, FailureCode]:
    """The message (label, what is wrong, what to do), the field path and the code of a failed check (a deployment
    that signs in with Microsoft Entra ID has its own codes for a refused token or a missing role)."""
    explanation = explain(code, target, outcome, timeouts)
    code = explanation.code or code
    field = explanation.field
    message = f"{target.label}: {explanation.wrong} {explanation.admin_todo}"
    if outcome.vendor_message and code is not FailureCode.INVALID_API_KEY:
        message += f" The service said: “{outcome.vendor_message}”"
    return message, field, code


# --------------------------------------------------------------------------- #
# The checks
# --------------------------------------------------------------------------- #


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class _Check:
    """One model's check: send, retry within the budget, classify, describe."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        target: CheckTarget,
        request: httpx.Request,
        timeouts: Timeouts,
        key: str,
        tokens: TokenSource | None = None,
    ) -> None:
        self.key = key
        self.tokens = tokens
        self.signing_in = False
        self.client = client
        self.target = target
        self.request = request
        self.timeouts = timeouts
        self.started = time.perf_counter()

    def finish(
        self,
        code: FailureCode,
        outcome: Outcome = Outcome(),
        request_id: str | None = None,
        warning: str | None = None,
        detail: str = "",
    ) -> ModelCheck:
        latency_ms = (time.perf_counter() - self.started) * 1000
        target = self.target
        if code is FailureCode.OK:
            return ModelCheck(
                role=target.role,
                ok=True,
                code=code,
                model=outcome.model,
                latency_ms=latency_ms,
                message=f"{target.label}: authenticated ({outcome.model}).",
                request_id=request_id,
                warning=warning,
            )
        message, field, code = _describe(code, target, outcome, self.timeouts)
        if detail:
            message += f" {detail}"
        if request_id:
            message += f" (Request id {request_id}.)"
        return ModelCheck(
            role=target.role,
            ok=False,
            code=code,
            model=outcome.model,
            latency_ms=latency_ms,
            message=message,
            field=field,
            request_id=request_id,
        )

    async def run(self) -> ModelCheck:
        try:
            return await asyncio.wait_for(self._attempts(), timeout=self.timeouts.check)
        except asyncio.TimeoutError:
            if self.tokens is not None and self.signing_in:  # the deadline passed at the sign-in, not at the model
                seconds = f"{self.timeouts.check:g} second{'' if self.timeouts.check == 1 else 's'}"
                failed = sign_in_failure(
                    SignInFailed(FailureCode.ENTRA_UNREACHABLE, failure=f"it did not answer within {seconds}"),
                    self.tokens,
                )
                return self.finish(failed.code, failed.outcome)
            return self.finish(FailureCode.TIMEOUT)

    async def _attempts(self) -> ModelCheck:
        if self.tokens is not None:  # the sign-in counts in the check's deadline
            self.signing_in = True
            try:
                token = await self.tokens.token_async()
            except SignInFailed as error:
                failed = sign_in_failure(error, self.tokens)
                return self.finish(failed.code, failed.outcome)
            self.signing_in = False
            self.request.headers["authorization"] = f"Bearer {token}"
        result = await send_async(
            self.client,
            self.request,
            provider=self.target.provider,
            key=self.key,
            retry_budget=self.timeouts.retry_budget,
            max_bytes=self.timeouts.max_answer_bytes,
        )
        if isinstance(result, Failure):
            if result.code is FailureCode.CONTENT_REFUSED:  # past authentication, and the model exists
                return self._content_refused(result)
            outcome = result.outcome
            if self.tokens is not None and result.code is FailureCode.ROLE_MISSING:
                outcome = dataclasses.replace(outcome, sign_in=self.tokens.described)
            return self.finish(result.code, outcome, result.request_id, detail=result.detail)
        return self._judge(result.body, result.request_id, result.response)

    def _judge(self, body: Any, request_id: str | None, response: httpx.Response) -> ModelCheck:
        if not self.expected_shape(body):
            return self.finish(FailureCode.UNEXPECTED_RESPONSE, Outcome(status=200, html=is_html(response)), request_id)
        model = body["model"]
        if not _MODEL_NAME.fullmatch(model) or holds_part_of(model, self.key):  # shown and stored: must be a model name
            return self.finish(FailureCode.UNEXPECTED_RESPONSE, Outcome(status=200), request_id)
        verdict = judge_model(self.target.role, model)
        if not verdict.ok:
            return self.finish(FailureCode.MODEL_NOT_SUPPORTED, Outcome(status=200, model=model), request_id)
        return self.finish(FailureCode.OK, Outcome(status=200, model=model), request_id, warning=verdict.warning)

    def _content_refused(self, result: Failure) -> ModelCheck:
        """A content filter refused the check's one-word message: the credentials and the model work, so it passes."""
        said = f" The service said: “{result.outcome.vendor_message}”" if result.outcome.vendor_message else ""
        check = self.finish(FailureCode.OK, Outcome(status=result.outcome.status), result.request_id)
        return check.model_copy(
            update={
                "message": f"{self.target.label}: authenticated (the credentials and the model work).",
                "warning": "The service's content filter refused the check's one-word message, so the model's name "
                f"could not be read; check the resource's content filter if AI calls are refused too.{said}",
            }
        )

    def expected_shape(self, body: Any) -> bool:
        """True when a 200 answer has the shape of the operation's answer (and names its model)."""
        if not isinstance(body, dict) or "error" in body:
            return False
        if not isinstance(body.get("model"), str) or not body["model"]:
            return False
        if self.target.role == "language":
            return isinstance(body.get("choices"), list)
        return isinstance(body.get("data"), list) and all(
            isinstance(item, dict) and "embedding" in item for item in body["data"]
        )


#: Model families that take ``max_completion_tokens`` and refuse ``max_tokens`` (OpenAI API reference,
#: "Chat: create": reasoning models). Another model that refuses it is retried once (see transport).
_COMPLETION_TOKENS_MODELS = re.compile(r"(o[1-9]|gpt-[5-9])(\b|[-.])", re.I)

#: The one message of Save's generation check: a few tokens in, one token out.
_CHECK_MESSAGES = [{"role": "user", "content": "ping"}]


def chat_check_body(model: str | None = None) -> dict[str, Any]:
    """The smallest chat request that still exercises billing: one short message, one token of answer.

    ``max_completion_tokens`` for reasoning models (o1, o3, o4-mini, gpt-5, ...), ``max_tokens`` otherwise
    (Azure deployments do not say their model in advance: ``model`` None sends ``max_tokens``, and a refusal
    switches it once).
    """
    limit = "max_completion_tokens" if model and _COMPLETION_TOKENS_MODELS.match(model) else "max_tokens"
    body: dict[str, Any] = {"messages": _CHECK_MESSAGES, limit: 1}
    if model is not None:
        body = {"model": model} | body
    return body


def _openai_checks(client: httpx.AsyncClient, integration: OpenAIIntegration, timeouts: Timeouts) -> list[_Check]:
    """One generation per model (``POST /chat/completions``, ``POST /embeddings``), so that a key with no credit
    or quota left fails here with ``quota_exceeded``: ``GET /models/{id}`` answers such a key 200."""
    headers = openai_headers(integration)
    checks = []
    models: tuple[tuple[Role, str, str, dict[str, Any]], ...] = (
        ("language", integration.language_model, "chat/completions", chat_check_body(integration.language_model)),
        (
            "embeddings",
            integration.embeddings_model,
            "embeddings",
            {"model": integration.embeddings_model, "input": "ping"},
        ),
    )
    for role, _model, operation, payload in models:
        url = f"{integration.base_url}/{operation}"
        target = openai_target(integration, role, url)
        request = client.build_request("POST", url, headers=headers, json=payload)
        checks.append(_Check(client, target, request, timeouts, integration.api_key.get_secret_value()))
    return checks


def _azure_checks(
    client: httpx.AsyncClient, integration: AzureOpenAIIntegration, timeouts: Timeouts, sources: list[TokenSource]
) -> list[_Check]:
    """One generation per deployment; a deployment that signs in with Microsoft Entra ID first gets a token
    (deployments with the same sign-in share it, and ``sources`` collects them to be closed after the checks)."""
    checks = []
    for role in ("language", "embeddings"):
        operation, payload = (
            ("chat/completions", chat_check_body()) if role == "language" else ("embeddings", {"input": "ping"})
        )
        target, url, params, headers = azure_request_parts(integration, role, operation)
        payload = azure_body(integration, role) | payload
        request = client.build_request("POST", url, params=params, json=payload, headers=headers)
        deployment = integration.deployment(role)
        tokens = token_source_for(deployment, sources, timeouts)
        checks.append(_Check(client, target, request, timeouts, secret_of(deployment).get_secret_value(), tokens))
    return checks


# --------------------------------------------------------------------------- #
# One request, retried as the vendors ask: shared by the checks and by ai.py
# --------------------------------------------------------------------------- #


async def verify_async(
    integration: OpenAIIntegration | AzureOpenAIIntegration,
    *,
    timeouts: Timeouts = Timeouts(),
    client: httpx.AsyncClient | None = None,
    on_check: CheckListener | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> VerificationReport:
    """Authenticate both models of ``integration`` concurrently.

    Args:
        integration: the credentials to check.
        timeouts: connect, per-check and retry limits, in seconds.
        client: an httpx client to reuse (its pool and settings); by default one is
            made for this call and closed after it.
        on_check: called with each :class:`ModelCheck` as soon as that model is done
            (the panel uses it to show progress).
        network_backend: for the client made here, what opens its connections (see
            :func:`~ai_admin_widgets.transport.make_client`; the AI gateway pins addresses with it).
    Returns:
        A :class:`VerificationReport` with the language check, then the embeddings check.
        Remote failures (refused key, unknown deployment, timeout, ...) are in the report,
        never raised. Cancelling the task cancels both checks.
    """
    owned = client is None
    if client is None:
        try:
            client = make_client(timeouts, network_backend=network_backend)
        except Exception as error:  # SSL_CERT_FILE unreadable, a proxy scheme without its package, ...
            return _setup_failure(integration, error)

    async def run(check: _Check) -> ModelCheck:
        result = await check.run()
        if on_check is not None:
            on_check(result)
        return result

    sources: list[TokenSource] = []
    try:
        checks = (
            _openai_checks(client, integration, timeouts)
            if isinstance(integration, OpenAIIntegration)
            else _azure_checks(client, integration, timeouts, sources)
        )
        results = await asyncio.gather(*(run(check) for check in checks))
    finally:
        for source in sources:
            source.close()
        if owned:
            await client.aclose()
    return VerificationReport(provider=integration.provider, checks=tuple(results))


def _setup_failure(integration: OpenAIIntegration | AzureOpenAIIntegration, error: Exception) -> VerificationReport:
    """A report for checks that could not even start, because this server's HTTPS or proxy settings are broken."""
    code, message = setup_problem(error)
    checks = tuple(
        ModelCheck(role=role, ok=False, code=code, message=f"{ROLE_LABELS[role]}: {message}", field=None)
        for role in ("language", "embeddings")
    )
    return VerificationReport(provider=integration.provider, checks=checks)


def verify(
    integration: OpenAIIntegration | AzureOpenAIIntegration,
    *,
    timeouts: Timeouts = Timeouts(),
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> VerificationReport:
    """Authenticate both models of ``integration``; blocks until the report is ready.

    Works in a plain script and inside a running Jupyter kernel: when the calling
    thread already runs an event loop, the checks run on a fresh loop in a worker thread.

    Args:
        integration: the credentials to check.
        timeouts: connect, per-check and retry limits, in seconds.
        network_backend: as for :func:`verify_async`.
    Returns:
        The :class:`VerificationReport`; remote failures are in it, never raised.
    """
    checks = verify_async(integration, timeouts=timeouts, network_backend=network_backend)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(checks)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ai-admin-verify") as pool:
        return pool.submit(asyncio.run, checks).result()
