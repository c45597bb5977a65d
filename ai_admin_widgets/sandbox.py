"""A local HTTP server that answers like OpenAI and Azure OpenAI, for walkthroughs, tests and benchmarks.

The sandbox listens on 127.0.0.1 on a free port and never contacts anything else.
Its keys are made fresh for each :class:`Sandbox` (``sk-sandbox-…`` and
``sandbox-azure-…``): obviously fake, and never written anywhere.

Routes (the request and answer shapes follow the vendors' API references):

OpenAI (base URL ``{url}/v1``; source: OpenAI API reference, "Models", "Chat", "Embeddings"):
    ``GET  /v1/models/{model}``       200 model object; 404 ``model_not_found``
    ``POST /v1/chat/completions``     200 chat.completion
    ``POST /v1/embeddings``           200 list of embeddings
    A wrong key answers 401 with code ``invalid_api_key``.

Azure OpenAI (endpoint ``{url}``; source: Azure OpenAI REST API reference, "Inference"):
    ``POST /openai/deployments/{deployment}/chat/completions?api-version=…``
    ``POST /openai/deployments/{deployment}/embeddings?api-version=…``
    A wrong ``api-key`` answers 401 (code ``"401"``, "Access denied due to invalid
    subscription key or wrong API endpoint"); an unknown deployment answers 404
    ``DeploymentNotFound``; a missing api-version or an unknown path answers 404
    ``{"error": {"code": "404", "message": "Resource not found"}}``; a chat request to
    an embeddings deployment (or the reverse) answers 400 ``OperationNotSupported``.

Deployments (``azure_deployments`` names the two good ones):
    ``chat-gpt-4o`` → model ``gpt-4o-2024-08-06`` (chat)
    ``embeddings-3-small`` → model ``text-embedding-3-small`` (embeddings)

OpenAI models: ``gpt-4o``, ``gpt-4o-mini``, ``gpt-4-turbo``, ``gpt-4.1``, ``o3-mini``,
``text-embedding-3-small``; any other model id answers 404.

Every answer carries ``x-request-id`` (and ``apim-request-id`` on Azure routes).
Embeddings are deterministic: the same text always gives the same unit vector of
1536 numbers (the dimension of text-embedding-3-small).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

if TYPE_CHECKING:
    from .service import AISettings

__all__ = ["Sandbox", "RecordedRequest"]

EMBEDDING_DIMENSIONS = 1536

_OPENAI_MODELS = {
    "gpt-4o": 1715367049,
    "gpt-4o-mini": 1721172741,
    "gpt-4-turbo": 1712361441,
    "gpt-4.1": 1744316542,
    "o3-mini": 1737146383,
    "text-embedding-3-small": 1705948997,
}
_EMBEDDINGS_MODELS = {"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}

#: deployment id -> (model name the deployment answers with, operation it serves)
_AZURE_DEPLOYMENTS: dict[str, tuple[str, str]] = {
    "chat-gpt-4o": ("gpt-4o-2024-08-06", "chat"),
    "embeddings-3-small": ("text-embedding-3-small", "embeddings"),
}


class RecordedRequest(dict):
    """One request the sandbox received: ``method``, ``path``, ``query`` (dict of lists),
    ``body`` (parsed JSON or None) and ``headers`` (names, lower case; the values of
    ``authorization`` and ``api-key`` are replaced by ``"<redacted>"``)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # The sandbox keeps its own redacted record; the default stderr log is silenced.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
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
        sandbox._record(
            RecordedRequest(
                method=method,
                path=parts.path,
                query=parse_qs(parts.query),
                body=body,
                headers={
                    name.lower(): ("<redacted>" if name.lower() in ("authorization", "api-key") else value)
                    for name, value in self.headers.items()
                },
            )
        )
        if sandbox.latency_ms:
            time.sleep(sandbox.latency_ms / 1000)
        segments = [segment for segment in parts.path.split("/") if segment]
        if segments[:1] == ["v1"]:
            self._openai(method, segments[1:], body)
        elif segments[:2] == ["openai", "deployments"] and len(segments) >= 4:
            self._azure(method, segments[2], "/".join(segments[3:]), parse_qs(parts.query), body)
        else:
            self._azure_resource_not_found()

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    # -- OpenAI ------------------------------------------------------------- #

    def _openai(self, method: str, route: list[str], body: Any) -> None:
        sandbox = self.server.sandbox
        if self.headers.get("authorization") != f"Bearer {sandbox._openai_key}":
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
            return
        if method == "GET" and len(route) == 2 and route[0] == "models":
            model = route[1]
            if model not in _OPENAI_MODELS:
                self._openai_model_not_found(model)
                return
            self._send(200, {"id": model, "object": "model", "created": _OPENAI_MODELS[model], "owned_by": "system"})
        elif method == "POST" and route == ["chat", "completions"]:
            model = (body or {}).get("model") if isinstance(body, dict) else None
            if model not in _OPENAI_MODELS or model in _EMBEDDINGS_MODELS:
                self._openai_model_not_found(str(model))
                return
            self._send(200, _chat_completion(model, body))
        elif method == "POST" and route == ["embeddings"]:
            model = (body or {}).get("model") if isinstance(body, dict) else None
            if model not in _EMBEDDINGS_MODELS or model not in _OPENAI_MODELS:
                self._openai_model_not_found(str(model))
                return
            self._send(200, _embeddings(model, (body or {}).get("input")))
        else:
            self._send(
                404,
                {"error": {"message": f"Invalid URL ({method} {urlsplit(self.path).path})", "type": "invalid_request_error", "param": None, "code": None}},
            )

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

    def _azure(self, method: str, deployment: str, operation: str, query: dict[str, list[str]], body: Any) -> None:
        sandbox = self.server.sandbox
        azure_headers = {"apim-request-id": str(uuid.uuid4())}
        if method != "POST" or operation not in ("chat/completions", "embeddings") or not query.get("api-version"):
            self._azure_resource_not_found()
            return
        if self.headers.get("api-key") != sandbox._azure_key:
            self._send(
                401,
                {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
                    }
                },
                azure_headers,
            )
            return
        if deployment not in _AZURE_DEPLOYMENTS:
            self._send(
                404,
                {
                    "error": {
                        "code": "DeploymentNotFound",
                        "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
                    }
                },
                azure_headers,
            )
            return
        model, serves = _AZURE_DEPLOYMENTS[deployment]
        wanted = "chat" if operation == "chat/completions" else "embeddings"
        if serves != wanted:
            operation_name = "chatCompletion" if wanted == "chat" else "embeddings"
            self._send(
                400,
                {
                    "error": {
                        "code": "OperationNotSupported",
                        "message": f"The {operation_name} operation does not work with the specified model, {model}. Please choose different model and try again.",
                    }
                },
                azure_headers,
            )
            return
        payload = _chat_completion(model, body) if wanted == "chat" else _embeddings(model, (body or {}).get("input"))
        self._send(200, payload, azure_headers)

    def _azure_resource_not_found(self) -> None:
        self._send(404, {"error": {"code": "404", "message": "Resource not found"}}, {"apim-request-id": str(uuid.uuid4())})


def _chat_completion(model: str, body: Any) -> dict[str, Any]:
    messages = body.get("messages") if isinstance(body, dict) else None
    last = messages[-1].get("content", "") if isinstance(messages, list) and messages and isinstance(messages[-1], dict) else ""
    limit = None
    if isinstance(body, dict):
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
    words = f"Sandbox reply to: {last}".split()
    if isinstance(limit, int) and limit > 0:
        words = words[:limit]
    content = " ".join(words)
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
        "usage": {"prompt_tokens": len(str(last).split()), "completion_tokens": len(words), "total_tokens": len(str(last).split()) + len(words)},
    }


def _embedding_of(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    values = []
    counter = 0
    while len(values) < EMBEDDING_DIMENSIONS:
        block = hashlib.sha256(digest + counter.to_bytes(4, "big")).digest()
        values.extend((byte - 127.5) / 127.5 for byte in block)
        counter += 1
    values = values[:EMBEDDING_DIMENSIONS]
    norm = math.sqrt(sum(value * value for value in values))
    return [value / norm for value in values]


def _embeddings(model: str, texts: Any) -> dict[str, Any]:
    items = texts if isinstance(texts, list) else [texts]
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": index, "embedding": _embedding_of(str(text))} for index, text in enumerate(items)],
        "model": model,
        "usage": {"prompt_tokens": sum(len(str(text).split()) for text in items), "total_tokens": sum(len(str(text).split()) for text in items)},
    }


class Sandbox:
    """A local OpenAI and Azure OpenAI look-alike on 127.0.0.1; see the module docstring for its routes.

    Args:
        latency_ms: milliseconds the server waits before each answer (for benchmarks).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with Sandbox() as sandbox:
            settings = sandbox.settings()

    Attributes (valid after :meth:`start`):
        url: ``http://127.0.0.1:<port>``.
        openai_base_url: the base URL for :class:`~ai_admin_widgets.OpenAIIntegration`.
        openai_api_key: a key the OpenAI routes accept (``SecretStr``).
        azure_endpoint: the endpoint URL for :class:`~ai_admin_widgets.AzureDeployment`.
        azure_api_key: a key the Azure routes accept (``SecretStr``).
        azure_deployments: ``{"language": "chat-gpt-4o", "embeddings": "embeddings-3-small"}``.
        requests: every request received, as :class:`RecordedRequest` (keys redacted).
    """

    azure_deployments: dict[str, str] = {"language": "chat-gpt-4o", "embeddings": "embeddings-3-small"}

    def __init__(self, *, latency_ms: float = 0.0) -> None:
        self.latency_ms = latency_ms
        self._openai_key = f"sk-sandbox-{secrets.token_hex(16)}"
        self._azure_key = f"sandbox-azure-{secrets.token_hex(16)}"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._folder: Path | None = None
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []

    # -- lifecycle --------------------------------------------------------- #

    def start(self) -> Sandbox:
        """Start serving on a free port of 127.0.0.1 in a background thread.

        Returns:
            The sandbox itself, so ``Sandbox().start()`` can be assigned.
        Raises:
            RuntimeError: the sandbox is already running.
        """
        if self._server is not None:
            raise RuntimeError("This sandbox is already running.")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ai-admin-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delete the sandbox's temporary store and keyring. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
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

    # -- addresses and credentials ----------------------------------------- #

    @property
    def port(self) -> int:
        """The TCP port the sandbox listens on. Raises ``RuntimeError`` before :meth:`start`."""
        if self._server is None:
            raise RuntimeError("Start the sandbox first: Sandbox().start(), or use it in a with block.")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    @property
    def azure_endpoint(self) -> str:
        """The Azure OpenAI endpoint URL, ``http://127.0.0.1:<port>``."""
        return self.url

    @property
    def openai_api_key(self) -> SecretStr:
        """A key the OpenAI routes accept (fresh for each sandbox)."""
        return SecretStr(self._openai_key)

    @property
    def azure_api_key(self) -> SecretStr:
        """A key the Azure OpenAI routes accept (fresh for each sandbox)."""
        return SecretStr(self._azure_key)

    # -- a store of its own --------------------------------------------------- #

    @property
    def folder(self) -> Path:
        """A temporary folder for the sandbox's store and keyring, deleted by :meth:`stop`."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="ai-admin-sandbox-"))
        return self._folder

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
            Settings whose store lives in :attr:`folder` (calls share one store), and whose
            panel offers the sandbox's OpenAI base URL.
        """
        from .service import AISettings

        options.setdefault("openai_base_url", self.openai_base_url)
        return AISettings(home=self.folder / "store", keyring=self.keyring(), **options)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
