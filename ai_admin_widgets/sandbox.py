"""A local HTTP server that answers like OpenAI and Azure OpenAI, for walkthroughs, tests and benchmarks.

The sandbox listens on 127.0.0.1 on a free port and never contacts anything else.
Its keys are made fresh for each :class:`Sandbox` (``sk-sandbox-…`` and
``sandbox-azure-…``): obviously fake, and never written anywhere.

Routes (request and answer shapes follow the vendors' API references):

OpenAI (base URL ``{url}/v1``; OpenAI API reference "Models", "Chat", "Embeddings", "Error codes"):
    ``GET  /v1/models/{model}``, ``POST /v1/chat/completions``, ``POST /v1/embeddings``.

Azure OpenAI (endpoint ``{url}``; Azure OpenAI REST API reference, "Inference"):
    ``POST /openai/deployments/{deployment}/chat/completions?api-version=…``
    ``POST /openai/deployments/{deployment}/embeddings?api-version=…``
    and the v1 API, the deployment named as the body's ``model``, no api-version:
    ``POST /openai/v1/chat/completions``, ``POST /openai/v1/embeddings``

Scenarios, one per failure class (``FailureCode``), chosen by key, deployment, model
or address:

============================  ====================================================================
class                         how to get it
============================  ====================================================================
ok                            ``openai_api_key`` (or any key starting ``sk-sandbox-``, to type by
                              hand) with a known model; ``azure_api_key`` (or any key starting
                              ``sandbox-azure-``) with ``chat-gpt-4o`` / ``embeddings-3-small``
invalid_api_key               a key without the practice prefix, or one ``revoke()`` revoked
                              (OpenAI 401 ``invalid_api_key``; Azure 401 code ``"401"``);
                              deployment ``scenario-gateway-401`` answers in the API
                              Management gateway shape ``{"statusCode": 401, "message": …}``
missing_permissions           ``openai_scenario_key("missing_permissions")`` (401 "Missing
                              scopes"); deployment ``scenario-permission-denied`` (401
                              ``PermissionDenied``)
network_not_allowed           ``openai_scenario_key("ip_not_allowed")`` (401 "IP not
                              authorized"); deployment ``scenario-firewall`` (403 "Access denied
                              due to Virtual Network/Firewall rules")
region_not_supported          ``openai_scenario_key("region_not_supported")`` (403
                              ``unsupported_country_region_territory``)
key_auth_disabled             deployment ``scenario-key-auth-disabled`` (403
                              ``AuthenticationTypeDisabled``)
wrong_organization            any ``organization`` other than ``openai_organization``, or
                              ``project`` other than ``openai_project`` (401 ``mismatched_…``)
model_not_available           an OpenAI model id the sandbox does not list (404 ``model_not_found``)
deployment_not_found          an unknown deployment (404 ``DeploymentNotFound``)
endpoint_not_found            a wrong path, or no api-version (404 "Resource not found")
api_version_unsupported       an api-version Azure does not know (400 "API version not
                              supported"); ``reasoning-o3-mini`` with an api-version before
                              2024-12-01-preview (400 "enabled only for api versions …")
wrong_model_type              a chat deployment asked for embeddings or the reverse (400
                              ``OperationNotSupported``)
model_not_supported           deployment ``chat-gpt-35-turbo`` or ``embeddings-ada-002``; OpenAI
                              model ``gpt-3.5-turbo``. ``chat-gpt-4`` answers plain ``gpt-4``
                              (saved, with a warning)
quota_exceeded                ``openai_scenario_key("quota_exceeded")`` (a key without credit:
                              reading a model passes, generating is 429 ``insufficient_quota``);
                              deployment ``scenario-quota`` (429 ``insufficient_quota``)
rate_limited                  ``scenario-rate-limited``: the first request of each operation gets
                              429 with ``retry-after-ms: 200``, then it answers (retried, ok);
                              ``scenario-rate-limited-long``, and ``openai_scenario_key(
                              "rate_limited")``: 429 asking to wait 60 s (reported)
server_error                  deployment ``scenario-server-error``; OpenAI model
                              ``scenario-server-error`` (500)
timeout                       deployment or OpenAI model ``scenario-slow`` (no answer until the
                              sandbox stops); ``unresponsive_endpoint`` (a port that accepts
                              connections and never answers)
dns_failure                   ``unknown_host_endpoint`` (a ``.invalid`` name; while a sandbox
                              runs, such names fail at once without a DNS query)
connection_failed             ``refused_endpoint`` (a port that refuses connections)
tls_error                     ``Sandbox(tls=True)``: https with a certificate from a private
                              certificate authority (``ca_bundle``), like an inspecting proxy
unexpected_response           deployment or OpenAI model ``scenario-proxy-html`` (an HTML page)
                              or ``scenario-wrong-shape`` (JSON of another shape); deployment
                              ``scenario-redirect`` (307) and ``scenario-unknown-error`` (400 with an
                              error code of no other class)
content_refused               deployment ``scenario-content-filter`` (400 ``content_filter``): the
                              credentials work (a check passes, with a warning); AI calls fail
============================  ====================================================================

Endpoints that break the rules of size and time, for the overall deadline and the answer cap
(each a port of its own, started on first use): ``trickling_endpoint`` (the body one byte a
second) and ``trickling_headers_endpoint`` (the headers too) end in ``timeout`` at the deadline;
``huge_answer_endpoint`` (1 GiB, no length) and ``huge_length_endpoint`` (``Content-Length`` of
1 GiB) end in ``unexpected_response``, unread.

``reasoning-o3-mini`` (and the OpenAI model ``o3-mini``) rejects ``max_tokens`` as reasoning models do (400
``unsupported_parameter``) and accepts ``max_completion_tokens``.

Every answer carries ``x-request-id`` (and ``apim-request-id`` on Azure routes).
Chat answers are ``"Sandbox reply to: <the last message>"``, cut to ``max_tokens`` /
``max_completion_tokens`` words, with ``usage``. With ``"stream": true`` (both providers) the
answer comes as server-sent events, as the vendors send it (OpenAI API reference, "Chat:
create", streaming; Azure OpenAI likewise): a chunked ``text/event-stream`` of
``data: {"object": "chat.completion.chunk", ...}`` events, one word per event after a first
event holding the role, a last one with ``finish_reason``, a ``usage`` event when the request
asks for it (``stream_options.include_usage``), then ``data: [DONE]``. ``stream_interval_ms``
spaces the events out; :attr:`Sandbox.streams` records how many were sent and whether the client
read them all (a client that hangs up cuts the stream short).
Embeddings are deterministic: the same text always gives the same unit vector, of the
model's own dimension (1536 for text-embedding-3-small and ada-002, 3072 for
text-embedding-3-large), or of ``dimensions`` numbers when the request asks for fewer (the
text-embedding-3 models only; the vector is cut and scaled back to length 1, as OpenAI's
shortened embeddings are). As the vendors do, a request is refused (400) when ``input`` is
empty, holds an empty text or more than 2048 texts, or asks for ``dimensions`` that the
model cannot give (OpenAI API reference, "Embeddings: create").

The server speaks HTTP/1.1 with keep-alive and sends without Nagle's delay, so a client's
connection pool reuses one connection for request after request, as it would with the vendors.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
import secrets
import shlex
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from .normalize import KNOWN_API_VERSIONS

if TYPE_CHECKING:
    from .models import EntraID
    from .service import AISettings

__all__ = ["RecordedRequest", "Sandbox", "practice_settings"]

#: The file that marks a folder as a sandbox's (``ai-admin --sandbox FOLDER`` refuses any other folder).
SANDBOX_MARKER = ".ai-admin-sandbox"

EMBEDDING_DIMENSIONS = 1536
#: The dimension of each embeddings model's vectors (OpenAI "Embeddings" guide).
_NATIVE_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
#: The most texts one embeddings request may hold (OpenAI API reference, "Embeddings: create").
MAX_EMBEDDING_INPUTS = 2048
#: Practice keys: any key that starts with these prefixes is accepted, so an admin can
#: type one in the panel by hand (``sk-sandbox-`` plus anything, ``sandbox-azure-`` plus anything).
PRACTICE_OPENAI_KEY_PREFIX = "sk-sandbox-"
PRACTICE_AZURE_KEY_PREFIX = "sandbox-azure-"

_OPENAI_MODELS = {
    "gpt-4o": 1715367049,
    "gpt-4o-mini": 1721172741,
    "gpt-4-turbo": 1712361441,
    "gpt-4.1": 1744316542,
    "o3-mini": 1737146383,
    "gpt-3.5-turbo": 1677610602,
    "text-embedding-3-small": 1705948997,
    "text-embedding-ada-002": 1671217299,
}
_EMBEDDINGS_MODELS = {"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}


@dataclass(frozen=True)
class _Deployment:
    model: str
    serves: str  # "chat" or "embeddings"
    reasoning: bool = False
    minimum_api_version: str | None = None


_AZURE_DEPLOYMENTS: dict[str, _Deployment] = {
    "chat-gpt-4o": _Deployment("gpt-4o-2024-08-06", "chat"),
    "embeddings-3-small": _Deployment("text-embedding-3-small", "embeddings"),
    "reasoning-o3-mini": _Deployment(
        "o3-mini-2025-01-31", "chat", reasoning=True, minimum_api_version="2024-12-01-preview"
    ),
    "chat-gpt-4": _Deployment("gpt-4", "chat"),
    "chat-gpt-35-turbo": _Deployment("gpt-35-turbo", "chat"),
    "embeddings-ada-002": _Deployment("text-embedding-ada-002", "embeddings"),
}

_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b"<body><h1>Corporate web proxy</h1><p>Please sign in to continue.</p></body></html>"
)

# Vendor error bodies, as the vendors send them.
_AZURE_401 = {
    "error": {
        "code": "401",
        "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
    }
}
_AZURE_NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}
#: What Azure OpenAI answers a Bearer token it cannot accept (unknown, for another audience, or expired).
_AZURE_BAD_TOKEN = {
    "error": {
        "code": "401",
        "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
        "(https://cognitiveservices.azure.com), or have expired.",
    }
}
#: The sandbox's Microsoft Entra ID stand-in: the scenarios of :meth:`Sandbox.entra_id`.
ENTRA_SCENARIOS = ("unknown_tenant", "unknown_client", "wrong_secret", "expired_secret", "no_role", "other_tenant")
#: The resource (v1 managed identity endpoints) and scope (v2 token endpoint) of Azure OpenAI tokens.
_COGNITIVE_RESOURCE = "https://cognitiveservices.azure.com"
_AZURE_SCENARIOS: dict[str, tuple[int, Any, dict[str, str]]] = {
    "scenario-gateway-401": (
        401,
        {
            "statusCode": 401,
            "message": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.",
        },
        {},
    ),
    "scenario-permission-denied": (
        401,
        {"error": {"code": "PermissionDenied", "message": "Principal does not have access to API/Operation."}},
        {},
    ),
    "scenario-firewall": (
        403,
        {"error": {"code": "403", "message": "Access denied due to Virtual Network/Firewall rules."}},
        {},
    ),
    "scenario-key-auth-disabled": (
        403,
        {
            "error": {
                "code": "AuthenticationTypeDisabled",
                "message": "Key based authentication is disabled for this resource.",
            }
        },
        {},
    ),
    "scenario-quota": (
        429,
        {
            "error": {
                "code": "insufficient_quota",
                "message": "You exceeded your current quota, please check your plan and billing details.",
            }
        },
        {},
    ),
    "scenario-rate-limited-long": (
        429,
        {
            "error": {
                "code": "429",
                "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after 60 seconds.",
            }
        },
        {"retry-after": "60", "retry-after-ms": "60000"},
    ),
    "scenario-server-error": (
        500,
        {"error": {"code": "InternalServerError", "message": "The server had an error processing your request."}},
        {},
    ),
    "scenario-wrong-shape": (200, {"status": "ok", "result": "pong"}, {}),
    "scenario-content-filter": (
        400,
        {
            "error": {
                "code": "content_filter",
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            }
        },
        {},
    ),
    "scenario-unknown-error": (
        400,
        {"error": {"code": "InvalidPayload", "message": "The request payload was rejected by an upstream policy."}},
        {},
    ),
    "scenario-redirect": (307, {}, {"location": "https://elsewhere.example.invalid/openai"}),
}
#: Each key scenario's tag in its key: no word of the answer's message (which scrubbing would hide, as a piece of the key).
_KEY_TAGS = {
    "missing_permissions": "s1",
    "quota_exceeded": "s2",
    "rate_limited": "s3",
    "ip_not_allowed": "s4",
    "region_not_supported": "s5",
}
_OPENAI_KEY_SCENARIOS: dict[str, tuple[int, Any, dict[str, str]]] = {
    "missing_permissions": (
        401,
        {
            "error": {
                "message": "You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        {},
    ),
    "quota_exceeded": (
        429,
        {
            "error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota",
                "param": None,
                "code": "insufficient_quota",
            }
        },
        {},
    ),
    "ip_not_allowed": (
        401,
        {
            "error": {
                "message": "IP not authorized: the request's IP address is not in the IP allowlist of this project.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        {},
    ),
    "region_not_supported": (
        403,
        {
            "error": {
                "message": "Country, region, or territory not supported",
                "type": "request_forbidden",
                "param": None,
                "code": "unsupported_country_region_territory",
            }
        },
        {},
    ),
    "rate_limited": (
        429,
        {
            "error": {
                "message": "Rate limit reached for requests. Please try again in 60s.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        {"retry-after": "60"},
    ),
}
#: What reasoning models answer a request with ``max_tokens`` (both vendors).
_MAX_TOKENS_REFUSED = {
    "error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
}
#: Key scenarios that only generation requests meet: reading a model costs nothing, so it passes.
_GENERATION_ONLY_SCENARIOS = frozenset({"quota_exceeded"})
#: OpenAI models that refuse ``max_tokens`` (reasoning models) and take ``max_completion_tokens``.
_OPENAI_REASONING_MODELS = frozenset({"o3-mini"})
_OPENAI_MODEL_SCENARIOS: dict[str, tuple[int, Any, dict[str, str]]] = {
    "scenario-server-error": (
        500,
        {
            "error": {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        },
        {},
    ),
    "scenario-wrong-shape": (200, {"status": "ok"}, {}),
}


class RecordedRequest(dict):
    """One request the sandbox received: ``method``, ``path``, ``query`` (dict of lists),
    ``body`` (parsed JSON or None), ``headers`` (names, lower case; the values of
    ``authorization`` and ``api-key`` are replaced by ``"<redacted>"``) and ``client_port``
    (the client's TCP port: requests with the same port came over one reused connection)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    #: The listen backlog (socketserver's default is 5): hundreds of concurrent calls, as a provider takes them,
    #: are queued rather than refused while the server's thread accepts.
    request_queue_size = 1024
    sandbox: Sandbox

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a check that timed out, a refused TLS handshake) is not an error of the sandbox."""
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    # The sandbox keeps its own redacted record; the default stderr log is silenced.
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- plumbing ---------------------------------------------------------- #

    def _dispatch(self, method: str) -> None:
        sandbox = self.server.sandbox
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query),
            body=body,
            headers={
                name.lower(): (
                    "<redacted>" if name.lower() in ("authorization", "api-key", "x-identity-header") else value
                )
                for name, value in self.headers.items()
            },
            client_port=self.client_address[1],
        )
        sandbox._record(recorded)
        delay = sandbox.latency_ms(recorded) if callable(sandbox.latency_ms) else sandbox.latency_ms
        if delay:
            time.sleep(delay / 1000)
        segments = [segment for segment in parts.path.split("/") if segment]
        if segments[1:] == ["v2.0", ".well-known", "openid-configuration"] and method == "GET":
            self._entra_configuration(segments[0])
        elif segments[1:] == ["oauth2", "v2.0", "token"] and method == "POST":
            self._entra_token(segments[0], parse_qs(raw.decode("utf-8", "replace")))
        elif segments == ["msi", "token"] and method == "GET":
            self._managed_identity_token(parse_qs(parts.query))
        elif segments[:1] == ["v1"]:
            self._openai(method, segments[1:], body)
        elif segments[:2] == ["openai", "deployments"] and len(segments) >= 4:
            self._azure(method, segments[2], "/".join(segments[3:]), parse_qs(parts.query), body)
        elif segments[:2] == ["openai", "v1"] and len(segments) >= 3:  # Azure's v1 API: the deployment is the model
            model = body.get("model") if isinstance(body, dict) else None
            self._azure(method, model if isinstance(model, str) else "", "/".join(segments[2:]), {}, body, v1=True)
        else:
            self._send(404, _AZURE_NOT_FOUND, {"apim-request-id": str(uuid.uuid4())})

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._send_bytes(status, data, "application/json", headers)

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _common_scenario(self, name: str, headers: dict[str, str]) -> bool:
        """Scenarios both providers share; True when one answered."""
        if name == "scenario-slow":
            self.server.sandbox._stopping.wait(120)
            self.close_connection = True
            return True
        if name == "scenario-proxy-html":
            self._send_bytes(200, _HTML_PAGE, "text/html; charset=utf-8", headers)
            return True
        return False

    def _stream_chat(self, answer: dict[str, Any], body: dict[str, Any], headers: dict[str, str]) -> None:
        """Send ``answer`` as server-sent events, one word per event, in HTTP/1.1 chunks; record how far it got."""
        sandbox = self.server.sandbox
        base = {
            "id": answer["id"],
            "object": "chat.completion.chunk",
            "created": answer["created"],
            "model": answer["model"],
        }
        words = answer["choices"][0]["message"]["content"].split(" ")
        deltas: list[dict[str, Any]] = [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ]
        deltas += [
            {"index": 0, "delta": {"content": word if index == 0 else " " + word}, "finish_reason": None}
            for index, word in enumerate(words)
        ]
        deltas.append({"index": 0, "delta": {}, "finish_reason": answer["choices"][0]["finish_reason"]})
        events = [base | {"choices": [delta]} for delta in deltas]
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            events.append(base | {"choices": [], "usage": answer["usage"]})
        record = {"events": len(events) + 1, "sent": 0, "completed": False}
        with sandbox._lock:
            sandbox.streams.append(record)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        interval = sandbox.stream_interval_ms / 1000
        try:
            for data in [json.dumps(event) for event in events] + ["[DONE]"]:
                if record["sent"] and interval and sandbox._stopping.wait(interval):
                    break
                payload = f"data: {data}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                self.wfile.flush()
                record["sent"] += 1
            else:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                record["completed"] = True
        except OSError:  # the client hung up mid-stream
            self.close_connection = True
        finally:
            sandbox.stream_ended.set()

    # -- OpenAI ------------------------------------------------------------- #

    def _openai(self, method: str, route: list[str], body: Any) -> None:
        sandbox = self.server.sandbox
        authorization = self.headers.get("authorization") or ""
        key = authorization.removeprefix("Bearer ")
        scenario = sandbox._openai_key_scenario(key)
        if scenario in _GENERATION_ONLY_SCENARIOS and method == "GET":
            scenario = None  # as OpenAI does, a key without credit may still list and read models
        if scenario is not None or not key.startswith(PRACTICE_OPENAI_KEY_PREFIX) or sandbox._is_revoked(key):
            if scenario is None:
                self._send(
                    401,
                    {
                        "error": {
                            "message": "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": "invalid_api_key",
                        }
                    },
                )
            else:
                status, payload, headers = _OPENAI_KEY_SCENARIOS[scenario]
                self._send(status, payload, headers)
            return
        organization = self.headers.get("openai-organization")
        if organization is not None and organization != sandbox.openai_organization:
            self._send(
                401,
                {
                    "error": {
                        "message": "OpenAI-Organization header should match organization for API key",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "mismatched_organization",
                    }
                },
            )
            return
        project = self.headers.get("openai-project")
        if project is not None and project != sandbox.openai_project:
            self._send(
                401,
                {
                    "error": {
                        "message": "OpenAI-Project header should match project for API key",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "mismatched_project",
                    }
                },
            )
            return
        operation = "/".join(route)
        model = route[1] if method == "GET" and len(route) == 2 and route[0] == "models" else None
        if method == "POST" and operation in ("chat/completions", "embeddings"):
            model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str) and (self._common_scenario(model, {}) or self._openai_model_scenario(model)):
            return
        if method == "GET" and len(route) == 2 and route[0] == "models":
            model_id = route[1]
            if model_id not in _OPENAI_MODELS:
                self._openai_model_not_found(model_id)
            else:
                self._send(
                    200, {"id": model_id, "object": "model", "created": _OPENAI_MODELS[model_id], "owned_by": "system"}
                )
        elif method == "POST" and operation == "chat/completions":
            if model not in _OPENAI_MODELS or model in _EMBEDDINGS_MODELS:
                self._openai_model_not_found(str(model))
                return
            if model in _OPENAI_REASONING_MODELS and isinstance(body, dict) and "max_tokens" in body:
                self._send(400, _MAX_TOKENS_REFUSED)
                return
            if isinstance(body, dict) and body.get("stream") is True:
                self._stream_chat(_chat_completion(model, body), body, {})
                return
            self._send(200, _chat_completion(model, body))
        elif method == "POST" and operation == "embeddings":
            if model not in _EMBEDDINGS_MODELS or model not in _OPENAI_MODELS:
                self._openai_model_not_found(str(model))
                return
            self._send(*_embeddings(model, body))
        else:
            self._send(
                404,
                {
                    "error": {
                        "message": f"Invalid URL ({method} {urlsplit(self.path).path})",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
            )

    def _openai_model_scenario(self, model: str) -> bool:
        """The scenario models of the OpenAI routes (server error, wrong shape); True when one answered."""
        if model not in _OPENAI_MODEL_SCENARIOS:
            return False
        status, payload, headers = _OPENAI_MODEL_SCENARIOS[model]
        self._send(status, payload, headers)
        return True

    def _openai_model_not_found(self, model: str) -> None:
        self._send(
            404,
            {
                "error": {
                    "message": f"The model `{model}` does not exist or you do not have access to it.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
        )

    # -- Azure OpenAI --------------------------------------------------------- #

    # -- Microsoft Entra ID ------------------------------------------------ #

    def _entra_error(self, status: int, error: str, code: int, text: str) -> None:
        """The token endpoint's error shape: OAuth 2.0's ``error`` / ``error_description`` (RFC 6749 section 5.2),
        with Entra's ``error_codes`` and its trace and correlation ids."""
        trace, correlation = uuid.uuid4(), uuid.uuid4()
        description = (
            f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: "
            + time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        )
        payload = {
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(trace),
            "correlation_id": str(correlation),
        }
        self._send(status, payload)

    def _entra_configuration(self, tenant: str) -> None:
        """``GET /{tenant}/v2.0/.well-known/openid-configuration``: what MSAL reads first (OpenID Connect Discovery)."""
        sandbox = self.server.sandbox
        if not sandbox._known_tenant(tenant):
            self._entra_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            )
            return
        base = f"{sandbox.url}/{tenant}"
        self._send(
            200,
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
            },
        )

    def _entra_token(self, tenant: str, form: dict[str, list[str]]) -> None:
        """``POST /{tenant}/oauth2/v2.0/token``, the client credentials grant (Microsoft identity platform, "OAuth 2.0
        client credentials flow"): a token for ``https://cognitiveservices.azure.com/.default``, or Entra's errors."""
        sandbox = self.server.sandbox

        def one(name: str) -> str:
            return (form.get(name) or [""])[0]

        sandbox._count("entra_token_requests")
        if not sandbox._known_tenant(tenant):
            self._entra_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
            return
        if one("grant_type") != "client_credentials":
            self._entra_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
            return
        client_id = one("client_id")
        application = sandbox._applications.get(client_id)
        if application is None:
            self._entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen "
                "if the application has not been installed by the administrator of the tenant or consented to by any "
                "user in the tenant. You may have sent your authentication request to the wrong tenant.",
            )
            return
        secret, expired = application
        if one("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            # workload identity: the federated token of the sandbox's AKS stand-in, for its own app only
            if client_id != sandbox._workload_client_id or one("client_assertion") != sandbox._federated_token:
                self._entra_error(
                    401,
                    "invalid_client",
                    700213,
                    f"No matching federated identity record found for presented assertion subject for app '{client_id}'.",
                )
                return
        elif one("client_secret") != secret:
            self._entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                f"value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
            return
        if expired:
            self._entra_error(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create "
                f"new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for "
                "added security: https://aka.ms/certCreds.",
            )
            return
        if one("scope") != f"{_COGNITIVE_RESOURCE}/.default":
            self._entra_error(
                400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid."
            )
            return
        token, lifetime = sandbox._issue_token(client_id)
        self._send(
            200,
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token},
        )

    def _managed_identity_token(self, query: dict[str, list[str]]) -> None:
        """``GET /msi/token``: App Service's managed identity endpoint (``IDENTITY_ENDPOINT``, header
        ``X-IDENTITY-HEADER``, api-version 2019-08-01), as azure-identity's ``ManagedIdentityCredential`` calls it."""
        sandbox = self.server.sandbox
        sandbox._count("managed_identity_requests")
        if self.headers.get("x-identity-header") != sandbox._identity_header:
            self._send(401, {"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER is missing or wrong."})
            return
        resource = (query.get("resource") or [""])[0].rstrip("/")
        if resource != _COGNITIVE_RESOURCE:
            self._send(400, {"statusCode": 400, "message": f"Unknown resource '{resource}'."})
            return
        client_id = (query.get("client_id") or [sandbox.managed_identity_client_id])[0]
        if client_id not in (sandbox.managed_identity_client_id, sandbox._user_assigned_client_id):
            self._send(400, {"statusCode": 400, "message": "No managed identity with that client ID is assigned."})
            return
        token, lifetime = sandbox._issue_token(client_id)
        self._send(
            200,
            {
                "access_token": token,
                "expires_on": str(int(time.time()) + lifetime),
                "resource": _COGNITIVE_RESOURCE,
                "token_type": "Bearer",
                "client_id": client_id,
            },
        )

    def _azure(
        self,
        method: str,
        deployment_id: str,
        operation: str,
        query: dict[str, list[str]],
        body: Any,
        *,
        v1: bool = False,
    ) -> None:
        """An Azure OpenAI request; ``v1``: on the v1 API (``/openai/v1/…``, no api-version, the deployment as ``model``)."""
        sandbox = self.server.sandbox
        headers = {"apim-request-id": str(uuid.uuid4())}
        api_version = "v1" if v1 else (query.get("api-version") or [""])[0]
        if method != "POST" or operation not in ("chat/completions", "embeddings") or not api_version:
            self._send(404, _AZURE_NOT_FOUND, headers)
            return
        if deployment_id == "scenario-gateway-401":
            status, payload, extra = _AZURE_SCENARIOS[deployment_id]
            self._send(status, payload, headers | extra)
            return
        authorization = self.headers.get("authorization") or ""
        if authorization.lower().startswith("bearer ") and not self.headers.get("api-key"):
            principal = sandbox._token_principal(authorization[7:].strip())
            if principal is None or principal in sandbox._principals_of_another_tenant:
                self._send(401, _AZURE_BAD_TOKEN, headers)
                return
            if principal in sandbox._principals_without_role:
                action = "chat/completions" if operation == "chat/completions" else "embeddings"
                message = (
                    f"The principal `{principal}` lacks the required data action "
                    f"`Microsoft.CognitiveServices/accounts/OpenAI/deployments/{action}/action` to perform "
                    f"`POST /openai/deployments/{{deployment-id}}/{operation}` operation."
                )
                self._send(401, {"error": {"code": "PermissionDenied", "message": message}}, headers)
                return
            if deployment_id == "scenario-key-auth-disabled":  # it accepts Entra ID: a deployment of each kind
                deployment_id = "scenario-entra-only"
        else:
            azure_key = self.headers.get("api-key") or ""
            if not azure_key.startswith(PRACTICE_AZURE_KEY_PREFIX) or sandbox._is_revoked(azure_key):
                self._send(401, _AZURE_401, headers)
                return
        if not v1 and api_version not in KNOWN_API_VERSIONS:
            self._send(400, {"error": {"code": "BadRequest", "message": "API version not supported"}}, headers)
            return
        if self._common_scenario(deployment_id, headers):
            return
        if deployment_id == "scenario-echo-credential":  # a service that repeats part of what it was sent
            credential = self.headers.get("api-key") or (self.headers.get("authorization") or "")[7:]
            said = f"Too many requests for credential {credential[10:40]}; try again later."
            self._send(
                429, {"error": {"code": "rate_limit_exceeded", "message": said}}, headers | {"retry-after": "60"}
            )
            return
        if deployment_id in _AZURE_SCENARIOS:
            status, payload, extra = _AZURE_SCENARIOS[deployment_id]
            self._send(status, payload, headers | extra)
            return
        wanted = "chat" if operation == "chat/completions" else "embeddings"
        if deployment_id == "scenario-entra-only":
            deployment = _Deployment("gpt-4o-2024-08-06" if wanted == "chat" else "text-embedding-3-small", wanted)
        elif deployment_id == "scenario-rate-limited":
            if sandbox._first_time(deployment_id, operation):
                self._send(
                    429,
                    {
                        "error": {
                            "code": "429",
                            "message": "Requests to the Operation under Azure OpenAI API have exceeded call rate limit of your current pricing tier. Please retry after 1 second.",
                        }
                    },
                    headers | {"retry-after-ms": "200", "retry-after": "1"},
                )
                return
            deployment = _Deployment("gpt-4o-2024-08-06" if wanted == "chat" else "text-embedding-3-small", wanted)
        elif deployment_id in _AZURE_DEPLOYMENTS:
            deployment = _AZURE_DEPLOYMENTS[deployment_id]
        else:
            self._send(
                404,
                {
                    "error": {
                        "code": "DeploymentNotFound",
                        "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
                    }
                },
                headers,
            )
            return
        if deployment.serves != wanted:
            operation_name = "chatCompletion" if wanted == "chat" else "embeddings"
            self._send(
                400,
                {
                    "error": {
                        "code": "OperationNotSupported",
                        "message": f"The {operation_name} operation does not work with the specified model, {deployment.model}. Please choose different model and try again.",
                    }
                },
                headers,
            )
            return
        if (
            not v1
            and deployment.minimum_api_version
            and _api_version_before(api_version, deployment.minimum_api_version)
        ):
            self._send(
                400,
                {
                    "error": {
                        "code": "BadRequest",
                        "message": f"Model {{modelName}} is enabled only for api versions {deployment.minimum_api_version} and later",
                    }
                },
                headers,
            )
            return
        if deployment.reasoning and isinstance(body, dict) and "max_tokens" in body:
            self._send(400, _MAX_TOKENS_REFUSED, headers)
            return
        if wanted == "chat" and isinstance(body, dict) and body.get("stream") is True:
            self._stream_chat(_chat_completion(deployment.model, body), body, headers)
        elif wanted == "chat":
            self._send(200, _chat_completion(deployment.model, body), headers)
        else:
            self._send(*_embeddings(deployment.model, body), headers)


def _api_version_before(version: str, minimum: str) -> bool:
    """True when ``version`` is older than ``minimum`` (dates compare as text; a preview sorts after its GA date)."""
    return version < minimum


def _chat_completion(model: str, body: Any) -> dict[str, Any]:
    messages = body.get("messages") if isinstance(body, dict) else None
    last = (
        messages[-1].get("content", "")
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict)
        else ""
    )
    limit = None
    if isinstance(body, dict):
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
    words = f"Sandbox reply to: {last}".split()
    if isinstance(limit, int) and limit > 0:
        words = words[:limit]
    content = " ".join(words)
    prompt_tokens = len(str(last).split())
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "length" if limit and len(words) >= limit else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        },
    }


def _embedding_of(text: str, native: int = EMBEDDING_DIMENSIONS, dimensions: int | None = None) -> list[float]:
    """The text's vector: ``native`` numbers from its SHA-256, cut to ``dimensions`` if given, of length 1."""
    digest = hashlib.sha256(text.encode()).digest()
    values: list[float] = []
    counter = 0
    while len(values) < native:
        block = hashlib.sha256(digest + counter.to_bytes(4, "big")).digest()
        values.extend((byte - 127.5) / 127.5 for byte in block)
        counter += 1
    values = values[: dimensions or native]
    norm = math.sqrt(sum(value * value for value in values))
    return [value / norm for value in values]


def _invalid_request(message: str, param: str | None = None) -> tuple[int, dict[str, Any]]:
    return 400, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}


def _embeddings(model: str, body: Any) -> tuple[int, dict[str, Any]]:
    """The status and body of an embeddings answer for the request ``body`` (refusals as the vendors word them)."""
    request = body if isinstance(body, dict) else {}
    texts = request.get("input")
    items: list[Any] = texts if isinstance(texts, list) else [texts]
    if not items or any(not isinstance(text, str) or not text for text in items):
        return _invalid_request("'$.input' is invalid: every input must be a non-empty text.", "input")
    if len(items) > MAX_EMBEDDING_INPUTS:
        return _invalid_request(
            f"Too many inputs: at most {MAX_EMBEDDING_INPUTS} texts may be embedded in one request.", "input"
        )
    native = _NATIVE_DIMENSIONS.get(model, EMBEDDING_DIMENSIONS)
    dimensions = request.get("dimensions")
    if dimensions is not None:
        if not model.startswith("text-embedding-3"):
            return _invalid_request("This model does not support specifying dimensions.", "dimensions")
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= native:
            return _invalid_request(
                f"dimensions must be a whole number from 1 to {native} for this model.", "dimensions"
            )
    tokens = sum(len(text.split()) for text in items)
    return 200, {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": _embedding_of(text, native, dimensions)}
            for index, text in enumerate(items)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --------------------------------------------------------------------------- #
# Names under .invalid never resolve (RFC 6761); while a sandbox runs they fail
# at once, so no DNS query leaves the machine.
# --------------------------------------------------------------------------- #

_resolver_lock = threading.Lock()
_resolver_users = 0
_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    if name.rstrip(".").lower().endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real_getaddrinfo(host, *args, **kwargs)


def _hold_resolver(take: bool) -> None:
    global _resolver_users
    with _resolver_lock:
        _resolver_users += 1 if take else -1
        socket.getaddrinfo = _getaddrinfo if _resolver_users > 0 else _real_getaddrinfo


class _UnresponsiveListener:
    """A port on 127.0.0.1 that accepts connections and never reads or answers, until :meth:`close`.

    Accepting (rather than leaving connections in the listen backlog) keeps it working
    however many connections arrive; the accepted sockets are held open and closed with it.
    """

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self._held: list[socket.socket] = []
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="ai-admin-sandbox-unresponsive", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self._held.append(connection)

    def close(self) -> None:
        """Stop accepting and close the held connections (their clients see the connection reset)."""
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for connection in self._held:
            connection.close()
        self._held.clear()


#: What a misbehaving endpoint sends after reading a request (see :class:`_MisbehavingListener`).
_LATE_ANSWER = json.dumps(
    {
        "id": "chatcmpl-late",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "late"}, "finish_reason": "stop"}],
    }
).encode()


class _MisbehavingListener:
    """A port on 127.0.0.1 that reads each request, then answers it badly, the way ``kind`` says.

    * ``"trickle"``: the status line and headers at once, then a valid JSON body one byte per
      ``interval`` seconds (1 by default): each read is quick, the whole answer takes minutes.
    * ``"trickle-headers"``: the status line and headers themselves one byte per ``interval``.
    * ``"huge"``: HTTP 200 with no ``Content-Length``, then 1 GiB of JSON-looking bytes, as fast
      as the client reads them (the body ends when the connection closes).
    * ``"huge-length"``: HTTP 200 with ``Content-Length: 1073741824``, then nothing.

    Bounded: each connection ends when the client goes, after :attr:`LIFETIME` seconds, or
    at :meth:`close`, whichever comes first; nothing is kept but the count of bytes sent.
    """

    LIFETIME = 30.0
    HUGE = 1 << 30

    def __init__(self, kind: str, interval: float = 1.0) -> None:
        self.kind = kind
        self.interval = interval
        self.sent = 0
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, name=f"ai-admin-sandbox-{kind}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            worker = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads = [thread for thread in self._threads if thread.is_alive()] + [worker]
            worker.start()

    def _serve(self, connection: socket.socket) -> None:
        until = time.monotonic() + self.LIFETIME
        with connection:
            try:
                connection.settimeout(5)
                self._read_request(connection)
                connection.settimeout(1)
                if self.kind == "trickle-headers":
                    head = self._head(len(_LATE_ANSWER)) + _LATE_ANSWER
                    self._trickle(connection, head, until)
                elif self.kind == "trickle":
                    self._send(connection, self._head(len(_LATE_ANSWER)))
                    self._trickle(connection, _LATE_ANSWER, until)
                elif self.kind == "huge":
                    self._send(connection, self._head(None))
                    self._send(connection, b'{"data": [')
                    block = b"0.0123456789, " * 4096
                    while self.sent < self.HUGE and time.monotonic() < until and not self._stopping.is_set():
                        self._send(connection, block)
                else:  # huge-length
                    self._send(connection, self._head(self.HUGE))
                    self._stopping.wait(max(until - time.monotonic(), 0))
            except OSError:  # the client went away, or stopped reading for a second
                return

    @staticmethod
    def _read_request(connection: socket.socket) -> None:
        """Read the request's head and its body (``Content-Length`` bytes, at most 1 MiB)."""
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionResetError
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                length = min(int(value), 1 << 20)
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionResetError
            body += chunk

    def _head(self, length: int | None) -> bytes:
        lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", "x-request-id: req-misbehaving"]
        lines.append(f"Content-Length: {length}" if length is not None else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _send(self, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        self.sent += len(data)

    def _trickle(self, connection: socket.socket, data: bytes, until: float) -> None:
        for position in range(len(data)):
            if self._stopping.wait(self.interval) or time.monotonic() > until:
                return
            self._send(connection, data[position : position + 1])

    def close(self) -> None:
        """Stop accepting and end every connection within a second."""
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


class Sandbox:
    """A local OpenAI and Azure OpenAI look-alike on 127.0.0.1; see the module docstring for its routes and scenarios.

    Args:
        latency_ms: milliseconds the server waits before each answer (for benchmarks); or a
            function of the :class:`RecordedRequest` that returns them, to delay some answers
            more than others (called on the server's thread, once per request).
        tls: serve https with a certificate from a private certificate authority, as an
            HTTPS-inspecting proxy does; ``ca_bundle`` is that authority's certificate. Needs
            the ``trustme`` package (``pip install trustme``; the lab and test extras have it).
        stream_interval_ms: milliseconds between the events of a streamed chat answer.
        tls_names: with ``tls=True``, the host names and addresses its certificate is for
            (default ``127.0.0.1`` and ``localhost``); the server names clients asked for
            (TLS SNI) are kept in ``server_names``.
        entra_client_secret: the client secret of the service principals of :meth:`entra_id` (default: a fresh one).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with Sandbox() as sandbox:
            settings = sandbox.settings()

    Attributes (valid after :meth:`start`):
        url: ``http://127.0.0.1:<port>`` (``https://`` with ``tls=True``).
        openai_base_url, openai_api_key, openai_organization, openai_project: for
            :class:`~ai_admin_widgets.OpenAIIntegration`.
        azure_endpoint, azure_api_key, azure_deployments: for
            :class:`~ai_admin_widgets.AzureDeployment`.
        refused_endpoint, unresponsive_endpoint, unknown_host_endpoint: endpoints that fail
            at the network (connection refused; accepted but never answered; no such host).
        trickling_endpoint, trickling_headers_endpoint, huge_answer_endpoint, huge_length_endpoint:
            endpoints that answer too slowly (one byte a second) or too much (1 GiB).
        requests: every request received, as :class:`RecordedRequest` (keys redacted).
        streams: one dict per streamed chat answer: ``events`` (how many it has), ``sent``
            (how many were written) and ``completed`` (False when the client hung up first);
            ``stream_ended`` is set each time one ends.
    """

    azure_deployments: ClassVar[dict[str, str]] = {"language": "chat-gpt-4o", "embeddings": "embeddings-3-small"}
    openai_organization = "org-sandbox"
    openai_project = "proj_sandbox"
    #: An endpoint whose host name does not exist (dns_failure).
    unknown_host_endpoint = "https://no-such-resource.openai.azure.invalid"

    def __init__(
        self,
        *,
        latency_ms: float | Callable[[RecordedRequest], float] = 0.0,
        tls: bool = False,
        stream_interval_ms: float = 0.0,
        tls_names: Sequence[str] = ("127.0.0.1", "localhost"),
        entra_client_secret: str | SecretStr | None = None,
    ) -> None:
        self.latency_ms = latency_ms
        self.stream_interval_ms = stream_interval_ms
        self.streams: list[dict[str, Any]] = []
        self.stream_ended = threading.Event()
        self.tls = tls
        self.tls_names = tuple(tls_names)
        self.server_names: list[str | None] = []
        self._token = secrets.token_hex(16)
        self._openai_key = f"{PRACTICE_OPENAI_KEY_PREFIX}{self._token}"
        self._azure_key = f"{PRACTICE_AZURE_KEY_PREFIX}{secrets.token_hex(16)}"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._refusing: socket.socket | None = None
        self._unresponsive: _UnresponsiveListener | None = None
        self._misbehaving: dict[str, _MisbehavingListener] = {}
        self._folder: Path | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._seen: set[tuple[str, str]] = set()
        self.ca_bundle: Path | None = None
        self.requests: list[RecordedRequest] = []
        self._revoked: set[str] = set()
        # Microsoft Entra ID: one tenant (a GUID and its domain), applications by client ID (secret, expired).
        self.entra_tenant_id = str(uuid.uuid4())
        self.entra_tenant_domain = "sandbox.onmicrosoft.com"
        if isinstance(entra_client_secret, SecretStr):
            entra_client_secret = entra_client_secret.get_secret_value()
        self._entra_secret = entra_client_secret or f"Sbx8Q~{secrets.token_urlsafe(32)[:34]}"  # an Entra secret's shape
        self._entra_clients = {scenario: str(uuid.uuid4()) for scenario in (None, *ENTRA_SCENARIOS)}
        self._applications: dict[str, tuple[str, bool]] = {
            self._entra_clients[None]: (self._entra_secret, False),
            self._entra_clients["wrong_secret"]: (self._entra_secret + "x", False),
            self._entra_clients["expired_secret"]: (self._entra_secret, True),
            self._entra_clients["no_role"]: (self._entra_secret, False),
            self._entra_clients["other_tenant"]: (self._entra_secret, False),
        }
        self._workload_client_id = str(uuid.uuid4())
        self._applications[self._workload_client_id] = (secrets.token_urlsafe(30), False)
        self._federated_token = "sbx-federated-" + secrets.token_urlsafe(24)
        self.managed_identity_client_id = str(uuid.uuid4())  # the system-assigned identity's
        self._user_assigned_client_id = str(uuid.uuid4())
        self._identity_header = secrets.token_hex(16)
        self._principals_without_role = {self._entra_clients["no_role"]}
        #: Identities that sign in, but whose tokens the resource refuses (another tenant's, as the resource sees it).
        self._principals_of_another_tenant = {self._entra_clients["other_tenant"]}
        #: Seconds each token the sandbox issues is valid for (Entra's are 60 to 90 minutes).
        self.token_lifetime = 3600
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (principal's client ID, expires at, time.time())
        #: What the Entra stand-in counted: ``entra_token_requests``, ``managed_identity_requests``,
        #: ``tokens_issued`` and ``expired_tokens_refused`` (a call with a token past its expiry).
        self.entra_counts: dict[str, int] = {}

    # -- lifecycle --------------------------------------------------------- #

    def start(self) -> Sandbox:
        """Start serving on a free port of 127.0.0.1 in a background thread.

        Returns:
            The sandbox itself, so ``Sandbox().start()`` can be assigned.
        Raises:
            RuntimeError: the sandbox is already running.
            ImportError: ``tls=True`` without the ``trustme`` package (the message says what to install).
        """
        if self._server is not None:
            raise RuntimeError("This sandbox is already running.")
        context = self._tls_context() if self.tls else None  # before any port is taken
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.sandbox = self
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        self._unresponsive = _UnresponsiveListener()
        _hold_resolver(True)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ai-admin-sandbox", daemon=True
        )
        self._thread.start()
        atexit.register(self.stop)  # a sandbox left running stops, and its folder goes, with the kernel
        return self

    def stop(self) -> None:
        """Stop serving and delete the sandbox's temporary store and keyring. Safe to call twice."""
        atexit.unregister(self.stop)
        server, self._server = self._server, None
        self._stopping.set()
        if server is not None:
            server.shutdown()
            server.server_close()
            _hold_resolver(False)
        if self._refusing is not None:
            self._refusing.close()
            self._refusing = None
        if self._unresponsive is not None:
            self._unresponsive.close()
            self._unresponsive = None
        for listener in self._misbehaving.values():
            listener.close()
        self._misbehaving.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        return f"<Sandbox {state}>"

    def _tls_context(self) -> Any:
        import ssl

        try:
            import trustme  # only the TLS scenario needs it: in the lab and test extras, not a dependency
        except ModuleNotFoundError as missing:
            if missing.name != "trustme":
                raise
            raise ImportError(
                "Sandbox(tls=True) makes its certificates with the trustme package, which is not installed. "
                "Install it with: pip install trustme (or pip install 'ai-admin-widgets[test]'), "
                "or use Sandbox() without tls."
            ) from None
        authority = trustme.CA(organization_name="Sandbox inspecting proxy")
        certificate = authority.issue_cert(*self.tls_names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        context.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
        self.ca_bundle = self.folder / "proxy-ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_bundle))
        return context

    # -- addresses and credentials ----------------------------------------- #

    @property
    def port(self) -> int:
        """The TCP port the sandbox listens on. Raises ``RuntimeError`` before :meth:`start`."""
        if self._server is None:
            raise RuntimeError("Start the sandbox first: Sandbox().start(), or use it in a with block.")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` with ``tls=True``)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI base URL, ``<url>/v1``."""
        return f"{self.url}/v1"

    @property
    def azure_endpoint(self) -> str:
        """The Azure OpenAI endpoint URL, ``<url>``."""
        return self.url

    @property
    def refused_endpoint(self) -> str:
        """An endpoint on 127.0.0.1 whose port refuses connections (connection_failed)."""
        if self._refusing is None:
            raise RuntimeError("Start the sandbox first.")
        return f"http://127.0.0.1:{self._refusing.getsockname()[1]}"

    @property
    def unresponsive_endpoint(self) -> str:
        """An endpoint on 127.0.0.1 that accepts every connection and never answers (timeout).

        Unlike ``scenario-slow``, which reads the request and then waits, nothing is ever
        read here: what a firewall that lets the connection through, or a crashed server
        whose port is still open, looks like. A check against it ends at
        :attr:`~ai_admin_widgets.Timeouts.check`.

        Raises:
            RuntimeError: the sandbox is not running.
        """
        if self._unresponsive is None:
            raise RuntimeError("Start the sandbox first.")
        return f"http://127.0.0.1:{self._unresponsive.port}"

    def _misbehaving_endpoint(self, kind: str) -> str:
        if self._server is None:
            raise RuntimeError("Start the sandbox first.")
        with self._lock:
            listener = self._misbehaving.get(kind)
            if listener is None:
                listener = self._misbehaving[kind] = _MisbehavingListener(kind)
        return f"http://127.0.0.1:{listener.port}"

    @property
    def trickling_endpoint(self) -> str:
        """An endpoint on 127.0.0.1 that sends its answer's headers at once, then its body one byte a second (timeout).

        Every read gets a byte well within any per-read timeout; only an overall deadline ends
        it. Any path and method is answered so: use it as an Endpoint URL, a Base URL (add
        ``/v1``) or a JupyterHub API URL. Started on first use; it stops with the sandbox.

        Raises:
            RuntimeError: the sandbox is not running.
        """
        return self._misbehaving_endpoint("trickle")

    @property
    def trickling_headers_endpoint(self) -> str:
        """:attr:`trickling_endpoint`, but the status line and headers too come one byte a second (timeout)."""
        return self._misbehaving_endpoint("trickle-headers")

    @property
    def huge_answer_endpoint(self) -> str:
        """An endpoint on 127.0.0.1 whose every answer is HTTP 200 with 1 GiB of body and no length (unexpected_response).

        It sends as fast as the client reads; a client that caps the answer's size stops early.
        """
        return self._misbehaving_endpoint("huge")

    @property
    def huge_length_endpoint(self) -> str:
        """An endpoint on 127.0.0.1 whose every answer declares ``Content-Length: 1073741824``, then sends nothing (unexpected_response)."""
        return self._misbehaving_endpoint("huge-length")

    def misbehaving_bytes_sent(self, endpoint: str) -> int:
        """How many bytes the misbehaving endpoint ``endpoint`` (one of the properties above) has sent so far."""
        for listener in self._misbehaving.values():
            if endpoint == f"http://127.0.0.1:{listener.port}":
                return listener.sent
        raise ValueError(f"{endpoint!r} is not one of this sandbox's misbehaving endpoints.")

    @property
    def openai_api_key(self) -> SecretStr:
        """A key the OpenAI routes accept (fresh for each sandbox)."""
        return SecretStr(self._openai_key)

    @property
    def azure_api_key(self) -> SecretStr:
        """A key the Azure OpenAI routes accept (fresh for each sandbox)."""
        return SecretStr(self._azure_key)

    def openai_scenario_key(self, scenario: str) -> SecretStr:
        """A key the OpenAI routes answer with a failure scenario.

        Args:
            scenario: ``"missing_permissions"``, ``"quota_exceeded"`` (generation only: reading a model
                passes), ``"rate_limited"``, ``"ip_not_allowed"`` or ``"region_not_supported"``.
        Returns:
            The key, as a ``SecretStr``.
        Raises:
            ValueError: an unknown scenario.
        """
        if scenario not in _OPENAI_KEY_SCENARIOS:
            raise ValueError(f"Unknown scenario {scenario!r}; choose one of {sorted(_OPENAI_KEY_SCENARIOS)}.")
        return SecretStr(f"sk-sandbox-{_KEY_TAGS[scenario]}-{self._token}")

    def revoke(self, key: SecretStr | str) -> None:
        """Revoke ``key``, as an admin does in the provider's portal: from now on it is answered 401 like an
        unknown key (OpenAI ``invalid_api_key``, Azure ``"401"``), in checks and AI calls alike.
        :meth:`reinstate` takes it back."""
        with self._lock:
            self._revoked.add(key.get_secret_value() if isinstance(key, SecretStr) else key)

    def reinstate(self, key: SecretStr | str) -> None:
        """Accept ``key`` again after :meth:`revoke`."""
        with self._lock:
            self._revoked.discard(key.get_secret_value() if isinstance(key, SecretStr) else key)

    def _is_revoked(self, key: str) -> bool:
        with self._lock:
            return key in self._revoked

    def _openai_key_scenario(self, key: str) -> str | None:
        for scenario in _OPENAI_KEY_SCENARIOS:
            if key == f"sk-sandbox-{_KEY_TAGS[scenario]}-{self._token}":
                return scenario
        return None

    # -- Microsoft Entra ID ------------------------------------------------ #

    def entra_id(self, scenario: str | None = None) -> EntraID:
        """A service principal of the sandbox's Entra stand-in (its authority host is :attr:`url`; needs ``tls=True``).

        Args:
            scenario: None for one that signs in and has its role, or one of :data:`ENTRA_SCENARIOS`:
                ``unknown_tenant`` (AADSTS90002), ``unknown_client`` (AADSTS700016), ``wrong_secret``
                (AADSTS7000215), ``expired_secret`` (AADSTS7000222), ``other_tenant`` (signs in; Azure OpenAI refuses
                its token, 401 "audience is incorrect"), ``no_role`` (signs in; Azure OpenAI answers
                401 ``PermissionDenied`` "lacks the required data action").
        Raises:
            ValueError: an unknown scenario. RuntimeError: the sandbox serves plain http (Entra needs https).
        """
        from .models import EntraID

        if scenario is not None and scenario not in ENTRA_SCENARIOS:
            raise ValueError(f"Unknown scenario {scenario!r}; choose one of {', '.join(ENTRA_SCENARIOS)}.")
        if not self.tls:
            raise RuntimeError("Microsoft Entra ID signs in over https only: start the sandbox with Sandbox(tls=True).")
        tenant = "unknown.onmicrosoft.com" if scenario == "unknown_tenant" else self.entra_tenant_id
        return EntraID(
            tenant_id=tenant,
            client_id=self._entra_clients[scenario],
            client_secret=SecretStr(self._entra_secret),
            authority_host=self.url,
        )

    def managed_identity_environment(self) -> dict[str, str]:
        """The variables that make azure-identity's ``ManagedIdentityCredential`` ask the sandbox, as App Service's
        managed identity endpoint (``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``); set them in the process that calls
        (the kernel, or the AI gateway's). The user-assigned identity's client ID is :attr:`user_assigned_client_id`."""
        return {"IDENTITY_ENDPOINT": f"{self.url}/msi/token", "IDENTITY_HEADER": self._identity_header}

    def workload_identity_environment(self) -> dict[str, str]:
        """The variables of AKS workload identity that make azure-identity's ``WorkloadIdentityCredential`` exchange
        the sandbox's federated token (written to a file in :attr:`folder`) at the sandbox's token endpoint:
        ``AZURE_FEDERATED_TOKEN_FILE``, ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_AUTHORITY_HOST``."""
        token_file = self.folder / "federated-token"
        token_file.write_text(self._federated_token, encoding="utf-8")
        return {
            "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
            "AZURE_TENANT_ID": self.entra_tenant_id,
            "AZURE_CLIENT_ID": self._workload_client_id,
            "AZURE_AUTHORITY_HOST": self.url,
        }

    @property
    def user_assigned_client_id(self) -> str:
        """The Client ID of the user-assigned managed identity the sandbox's machine has."""
        return self._user_assigned_client_id

    def _known_tenant(self, tenant: str) -> bool:
        return tenant.lower() in (self.entra_tenant_id, self.entra_tenant_domain)

    def _issue_token(self, principal: str) -> tuple[str, int]:
        token = "sbx-token-" + secrets.token_urlsafe(32)
        lifetime = int(self.token_lifetime)
        with self._lock:
            self._tokens[token] = (principal, time.time() + lifetime)
            self.entra_counts["tokens_issued"] = self.entra_counts.get("tokens_issued", 0) + 1
        return token, lifetime

    def _token_principal(self, token: str) -> str | None:
        """The client ID a token was issued to, or None when it is unknown or has expired (counted)."""
        with self._lock:
            found = self._tokens.get(token)
            if found is None:
                return None
            if time.time() >= found[1]:
                self.entra_counts["expired_tokens_refused"] = self.entra_counts.get("expired_tokens_refused", 0) + 1
                return None
            return found[0]

    def _count(self, name: str) -> None:
        with self._lock:
            self.entra_counts[name] = self.entra_counts.get(name, 0) + 1

    def _first_time(self, deployment: str, operation: str) -> bool:
        with self._lock:
            if (deployment, operation) in self._seen:
                return False
            self._seen.add((deployment, operation))
            return True

    # -- a store of its own --------------------------------------------------- #

    @property
    def folder(self) -> Path:
        """A temporary folder for the sandbox's store and keyring, deleted by :meth:`stop`."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="ai-admin-sandbox-"))
            (self._folder / SANDBOX_MARKER).write_text("A sandbox's practice store and keyring.\n", encoding="utf-8")
        return self._folder

    def cli_command(self, *arguments: str) -> str:
        """The ``ai-admin`` command line that practises against this sandbox's store, e.g. ``cli_command("status")``."""
        return " ".join(["ai-admin", "--sandbox", shlex.quote(str(self.folder)), *map(shlex.quote, arguments)])

    def keyring(self) -> Any:
        """A file keyring backend (keyrings.alt) in the sandbox's temporary folder, never the admin's own."""
        from keyrings.alt.file import PlaintextKeyring

        backend = PlaintextKeyring()
        backend.file_path = str(self.folder / "keyring.cfg")
        return backend

    def settings(self, **options: Any) -> AISettings:
        """An :class:`~ai_admin_widgets.AISettings` on the sandbox's own store and keyring.

        Args:
            **options: passed on to ``AISettings`` (for example ``user="alice"``).
        Returns:
            Settings whose store lives in :attr:`folder` (calls share one store), whose
            panel offers the sandbox's OpenAI base URL, and whose admins are decided by the
            store's admins list even on JupyterHub (practice never asks a real hub).
        """
        from .access import AccessPolicy, current_user
        from .service import AISettings

        options.setdefault("openai_base_url", self.openai_base_url)
        options.setdefault("access", AccessPolicy(use_hub=False))  # practice: never ask a real JupyterHub
        options.setdefault("user", current_user(options["access"]))  # nor to learn who the user is
        return AISettings(home=self.folder / "store", keyring=self.keyring(), **options)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def practice_settings(folder: str | os.PathLike[str], **options: Any) -> AISettings:
    """The settings of the sandbox whose folder is ``folder`` (``sandbox.folder``), from another process.

    Used by ``ai-admin --sandbox FOLDER``: the same practice store and file keyring as
    :meth:`Sandbox.settings`, never the admin's own.

    Raises:
        ValueError: ``folder`` is not a sandbox's folder (it has no marker file), e.g. the
            sandbox was stopped, or another folder was given.
    """
    from keyrings.alt.file import PlaintextKeyring

    from .access import AccessPolicy
    from .service import AISettings

    path = Path(folder)
    if not (path / SANDBOX_MARKER).is_file():
        raise ValueError(
            f"{path} is not a running sandbox's folder: start one (aiw.Sandbox().start(), or run the quickstart) "
            "and copy the command it prints (sandbox.cli_command('status'))."
        )
    backend = PlaintextKeyring()
    backend.file_path = str(path / "keyring.cfg")
    options.setdefault("access", AccessPolicy(use_hub=False))
    return AISettings(home=path / "store", keyring=backend, **options)
