"""Prometheus metrics of one gateway process: ``GET {prefix}metrics``, in Prometheus' text format.

Fed by :attr:`Gateway.observers <ai_admin_widgets.gateway.app.Gateway.observers>`: every AI call's usage
event (the dict ``record_use`` gets) passes through :meth:`GatewayMetrics.observe`. Each gateway has its
own :class:`prometheus_client.CollectorRegistry` (never the process-wide one), so two gateways in one
process (tests, benchmarks) count apart.

========================================================  =========  ==================================
metric                                                    type       labels
========================================================  =========  ==================================
``ai_gateway_requests_total``                             counter    ``role``, ``outcome``
``ai_gateway_tokens_total``                               counter    ``role``, ``kind`` (prompt, completion)
``ai_gateway_request_duration_seconds``                   histogram  ``role``, ``outcome``
``ai_gateway_reauthentications_total``                    counter    ``outcome`` (ok, failed, error)
``ai_gateway_last_authentication_timestamp_seconds``      gauge      (none)
``ai_gateway_last_authentication_ok``                     gauge      (none)
========================================================  =========  ==================================

Labels take a few fixed values only: ``role`` is ``language``, ``embeddings`` or ``other``; ``outcome``
is ``ok``, ``refused``, ``failed``, ``cancelled`` or ``other``. Never a user name, a group or a model
name a caller chose, so the number of series stays bounded (Prometheus' own advice on label
cardinality); who used what is the usage report's (``ai-admin usage``).

Who may read it: JupyterHub's convention for its own ``/hub/metrics`` (``c.JupyterHub.authenticate_prometheus``,
on by default): a hub token whose scopes include ``read:metrics`` (a user's or a service's, such as
the token a Prometheus scrapes the hub with). Without a token 401, without the scope 403.
``GatewayConfig.authenticate_metrics = False`` (``serve --metrics-without-token``) opens it, as
``authenticate_prometheus = False`` does the hub's.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import tornado.web

from .auth import HubUnavailable, token_of

if TYPE_CHECKING:
    from .app import Gateway

__all__ = ["METRICS_SCOPE", "GatewayMetrics", "MetricsHandler", "gateway_metrics"]

log = logging.getLogger("ai_admin_widgets.gateway")

#: The scope a token needs to read the metrics: JupyterHub's own, which its ``/hub/metrics`` requires.
METRICS_SCOPE = "read:metrics"
ROLES = ("language", "embeddings")
OUTCOMES = ("ok", "refused", "failed", "cancelled")
REAUTH_OUTCOMES = ("ok", "failed", "error")
#: Seconds: from a refusal answered at once to a long streamed answer (the default deadline is 300 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_OPERATION_ROLES = {"chat": "language", "embeddings": "embeddings"}


class GatewayMetrics:
    """The counters and histograms of one gateway, in a registry of their own.

    Raises:
        ImportError: prometheus_client is not installed (``pip install 'ai-admin-widgets[hub]'``).
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ai_gateway_requests",
            "AI calls to /v1, by the saved model's role and the call's outcome.",
            ["role", "outcome"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "ai_gateway_tokens",
            "Tokens of the AI calls, as the provider counted them, by role and kind (prompt, completion).",
            ["role", "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ai_gateway_request_duration_seconds",
            "How long AI calls took at the gateway, from the request to the last byte of the answer.",
            ["role", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reauthentications = Counter(
            "ai_gateway_reauthentications",
            "The gateway's periodic re-authentications of the saved integration, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.last_authentication = Gauge(
            "ai_gateway_last_authentication_timestamp_seconds",
            "When this gateway last re-authenticated the saved integration (Unix time).",
            registry=self.registry,
        )
        self.last_authentication_ok = Gauge(
            "ai_gateway_last_authentication_ok",
            "1 when this gateway's last re-authentication passed, 0 when it failed.",
            registry=self.registry,
        )
        # Every series from the start, at 0, and each one looked up once (labels() takes a lock each time).
        self._requests = {(r, o): self.requests.labels(r, o) for r in (*ROLES, "other") for o in (*OUTCOMES, "other")}
        self._latency = {(r, o): self.latency.labels(r, o) for r in (*ROLES, "other") for o in (*OUTCOMES, "other")}
        self._tokens = {(r, k): self.tokens.labels(r, k) for r in (*ROLES, "other") for k in ("prompt", "completion")}
        for outcome in REAUTH_OUTCOMES:
            self.reauthentications.labels(outcome)

    def observe(self, event: dict[str, Any]) -> None:
        """Count one AI call's usage event (its ``role`` or ``operation``, ``outcome``, latency and tokens)."""
        given = event.get("role")
        role = given if given in ROLES else _OPERATION_ROLES.get(str(event.get("operation")), "other")
        outcome = str(event.get("outcome")) if event.get("outcome") in OUTCOMES else "other"
        self._requests[role, outcome].inc()
        latency = _count(event.get("latency_ms", event.get("ms")))
        if latency is not None:
            self._latency[role, outcome].observe(latency / 1000)
        for kind in ("prompt", "completion"):
            tokens = _count(event.get(f"{kind}_tokens"))
            if tokens:
                self._tokens[role, kind].inc(tokens)

    def reauthenticated(self, outcome: str, at: float) -> None:
        """Count one re-authentication (``ok``, ``failed`` or ``error``: nothing could be checked), made at ``at``."""
        self.reauthentications.labels(outcome if outcome in REAUTH_OUTCOMES else "error").inc()
        if outcome in ("ok", "failed"):
            self.last_authentication.set(at)
            self.last_authentication_ok.set(1 if outcome == "ok" else 0)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _count(value: Any) -> float | None:
    """``value`` when it is a number of 0 or more (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return value


def gateway_metrics() -> GatewayMetrics | None:
    """A new :class:`GatewayMetrics`, or None (logged once per gateway) where prometheus_client is not installed."""
    try:
        return GatewayMetrics()
    except ImportError:
        log.warning("No /metrics: prometheus_client is not installed (pip install 'ai-admin-widgets[hub]').")
        return None


class MetricsHandler(tornado.web.RequestHandler):
    """``GET {prefix}metrics``: the gateway's metrics, for a hub token with ``read:metrics`` (see the module)."""

    gateway: Gateway

    def initialize(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def set_default_headers(self) -> None:
        self.set_header("cache-control", "no-store")

    def check_xsrf_cookie(self) -> None:  # token-authenticated: no cookies are used
        return None

    def _refuse(self, status: int, kind: str, message: str) -> None:
        self.set_status(status)
        self.set_header("content-type", "application/json")
        if status == 401:
            self.set_header("www-authenticate", 'token realm="JupyterHub"')
        self.finish({"error": {"type": kind, "message": message}})

    async def get(self) -> None:
        metrics = self.gateway.metrics
        if metrics is None:
            self._refuse(503, "Unavailable", "This gateway has no metrics: install prometheus_client (the hub extra).")
            return
        if self.gateway.config.authenticate_metrics:
            token = token_of(self.request.headers.get("authorization"))
            if token is None:
                self._refuse(
                    401,
                    "NotAuthenticated",
                    f"The gateway's metrics need a JupyterHub token with the {METRICS_SCOPE} scope "
                    "(Authorization: token ...), as the hub's own /hub/metrics does.",
                )
                return
            try:
                model = await self.gateway.identity.token_model(token)
            except HubUnavailable as error:
                self._refuse(503, "HubUnavailable", str(error))
                return
            if model is None:
                self._refuse(401, "NotAuthenticated", "JupyterHub does not know this token (expired or revoked).")
                return
            scopes = model.get("scopes") if isinstance(model, dict) else None
            if not isinstance(scopes, list) or METRICS_SCOPE not in scopes:
                self._refuse(
                    403,
                    "Forbidden",
                    f"Access to the gateway's metrics requires the scope '{METRICS_SCOPE}' (grant it to the "
                    "Prometheus service's role in c.JupyterHub.load_roles).",
                )
                return
        body, content_type = metrics.exposition()
        self.set_header("content-type", content_type)
        self.finish(body)
