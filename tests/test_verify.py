"""Authentication against local servers over real sockets: the sandbox, a refused port, a silent server, a web page."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import ai_admin_widgets as aiw
from ai_admin_widgets.models import FailureCode
from ai_admin_widgets.verify import verify

#: Upper bound for a verify call that must end by itself; only guards against a hang.
HANG_GUARD_SECONDS = 60


def openai(sandbox, **fields):
    return aiw.OpenAIIntegration(**({"api_key": sandbox.openai_api_key, "base_url": sandbox.openai_base_url} | fields))


def azure(sandbox, *, endpoint=None, key=None, language=None, embeddings=None, **options):
    return aiw.AzureOpenAIIntegration.shared(
        endpoint_url=endpoint or sandbox.azure_endpoint,
        api_key=key or sandbox.azure_api_key,
        language_deployment_id=language or sandbox.azure_deployments["language"],
        embeddings_deployment_id=embeddings or sandbox.azure_deployments["embeddings"],
        **options,
    )


def renderings(report: aiw.VerificationReport) -> str:
    return "\n".join(
        [repr(report), str(report), report.summary(), report.model_dump_json(), *(c.message for c in report.checks)]
    )


def codes(report: aiw.VerificationReport) -> list[str]:
    return [check.code.value for check in report.checks]


def verify_guarded(integration, **options) -> aiw.VerificationReport:
    """verify() in a worker thread, so that a hang fails the test instead of blocking the suite."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(verify, integration, **options).result(timeout=HANG_GUARD_SECONDS)


# --------------------------------------------------------------------------- #
# OpenAI
# --------------------------------------------------------------------------- #


def test_openai_good_key_authenticates_both_models(sandbox):
    report = verify(openai(sandbox))
    assert report.ok
    assert report.provider is aiw.Provider.OPENAI
    assert [(check.role, check.model) for check in report.checks] == [
        ("language", "gpt-4o"),
        ("embeddings", "text-embedding-3-small"),
    ]
    assert sandbox.openai_api_key.get_secret_value() not in renderings(report)


def test_openai_wrong_key_is_invalid_api_key_on_the_key_field(sandbox, marker_key):
    report = verify(openai(sandbox, api_key=marker_key))
    assert not report.ok
    assert codes(report) == ["invalid_api_key", "invalid_api_key"]
    assert {check.field for check in report.checks} == {"api_key"}
    assert "platform.openai.com" in report.check("language").message
    assert marker_key not in renderings(report)


def test_openai_unknown_model_is_model_not_available(sandbox):
    report = verify(openai(sandbox, language_model="gpt-9-imaginary"))
    assert report.check("language").code is FailureCode.MODEL_NOT_AVAILABLE
    assert "'gpt-9-imaginary'" in report.check("language").message
    assert report.check("embeddings").ok
    assert not report.ok


def test_openai_base_url_without_v1_is_endpoint_not_found(sandbox):
    report = verify(openai(sandbox, base_url=sandbox.url))
    assert codes(report) == ["endpoint_not_found", "endpoint_not_found"]
    assert report.check("language").field == "base_url"


# --------------------------------------------------------------------------- #
# Azure OpenAI
# --------------------------------------------------------------------------- #


def test_azure_good_credentials_authenticate_both_deployments(sandbox):
    report = verify(azure(sandbox))
    assert report.ok
    assert report.check("language").model == "gpt-4o-2024-08-06"
    assert report.check("embeddings").model == "text-embedding-3-small"
    assert sandbox.azure_api_key.get_secret_value() not in renderings(report)


def test_azure_requests_are_minimal_and_carry_the_api_version(sandbox):
    verify(azure(sandbox, api_version="2024-10-01-preview"))
    by_operation = {request["path"].rsplit("/", 1)[-1]: request for request in sandbox.requests}
    chat, embeddings = by_operation["completions"], by_operation["embeddings"]
    assert chat["path"] == "/openai/deployments/chat-gpt-4o/chat/completions"
    assert chat["body"]["max_tokens"] == 1
    assert embeddings["path"] == "/openai/deployments/embeddings-3-small/embeddings"
    assert embeddings["body"]["input"] == "ping"
    for request in (chat, embeddings):
        assert request["method"] == "POST"
        assert request["query"]["api-version"] == ["2024-10-01-preview"]
        assert request["headers"]["api-key"] == "<redacted>"
    assert sandbox.azure_api_key.get_secret_value() not in repr(sandbox.requests)


def test_azure_wrong_key_is_invalid_api_key_on_both_key_fields(sandbox, marker_key):
    report = verify(azure(sandbox, key=marker_key))
    assert codes(report) == ["invalid_api_key", "invalid_api_key"]
    assert [check.field for check in report.checks] == ["language_model.api_key", "embeddings_model.api_key"]
    assert "Keys and Endpoint" in report.check("language").message
    language = report.check("language")
    assert language.request_id and f"Request id {language.request_id}" in language.message
    assert marker_key not in renderings(report)


def test_azure_unknown_deployment_is_deployment_not_found(sandbox):
    report = verify(azure(sandbox, language="gpt-4o"))
    language = report.check("language")
    assert language.code is FailureCode.DEPLOYMENT_NOT_FOUND
    assert language.field == "language_model.deployment_id"
    assert "no deployment named 'gpt-4o'" in language.message
    assert report.check("embeddings").ok


def test_azure_swapped_deployments_are_wrong_model_type(sandbox):
    report = verify(
        azure(
            sandbox, language=sandbox.azure_deployments["embeddings"], embeddings=sandbox.azure_deployments["language"]
        )
    )
    assert codes(report) == ["wrong_model_type", "wrong_model_type"]
    assert [check.field for check in report.checks] == [
        "language_model.deployment_id",
        "embeddings_model.deployment_id",
    ]
    assert "may have been swapped" in report.check("embeddings").message


@pytest.mark.parametrize("path", ["/language", "/api/v2"])
def test_azure_endpoint_with_a_path_after_it_is_endpoint_not_found(sandbox, path):
    report = verify(azure(sandbox, endpoint=sandbox.azure_endpoint + path))
    assert codes(report) == ["endpoint_not_found", "endpoint_not_found"]
    assert report.check("language").field == "language_model.endpoint_url"
    assert "with nothing after it" in report.check("language").message


def test_azure_checks_run_concurrently():
    """Each request is held until the other has arrived; checks run one after the other would break the barrier."""

    class RendezvousSandbox(aiw.Sandbox):
        def __init__(self) -> None:
            super().__init__()
            self.rendezvous = threading.Barrier(2, timeout=HANG_GUARD_SECONDS / 4)

        def _record(self, request) -> None:
            super()._record(request)
            self.rendezvous.wait()  # raises BrokenBarrierError (no answer is sent) if the other request never comes

    with RendezvousSandbox() as sandbox:
        report = verify_guarded(azure(sandbox))
    assert report.ok, report.summary()
    assert not sandbox.rendezvous.broken


# --------------------------------------------------------------------------- #
# Network failures become values
# --------------------------------------------------------------------------- #


def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_refused_port_is_connection_failed(sandbox):
    port = unused_port()
    report = verify_guarded(azure(sandbox, endpoint=f"http://127.0.0.1:{port}"))
    assert codes(report) == ["connection_failed", "connection_failed"]
    assert report.check("language").field == "language_model.endpoint_url"
    assert f"Could not connect to 127.0.0.1:{port}" in report.check("language").message


def test_server_that_never_answers_is_timeout(sandbox):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing is ever accepted or read
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        report = verify_guarded(azure(sandbox, endpoint=endpoint), timeouts=aiw.Timeouts(connect=0.5, check=0.5))
    assert codes(report) == ["timeout", "timeout"]
    assert "did not answer within 0.5 seconds" in report.check("language").message
    assert report.check("embeddings").field == "embeddings_model.endpoint_url"


def test_sandbox_unresponsive_endpoint_takes_every_connection_and_never_answers(sandbox):
    port = int(sandbox.unresponsive_endpoint.rsplit(":", 1)[1])
    connections = []
    try:
        for _ in range(100):  # more than a listen backlog holds: each one is accepted, none is refused or dropped
            connections.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        last = connections[-1]
        last.sendall(b"POST /openai/deployments/chat-gpt-4o/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        last.settimeout(0.3)
        with pytest.raises(socket.timeout):
            last.recv(1)
    finally:
        for connection in connections:
            connection.close()


class _WebPage(BaseHTTPRequestHandler):
    """A sign-in page where an API was expected: 200, text/html."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        page = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST = _answer

    def log_message(self, format, *args) -> None:
        return


@pytest.fixture
def web_page():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebPage)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_html_answer_is_unexpected_response(sandbox, web_page):
    report = verify_guarded(azure(sandbox, endpoint=web_page))
    assert codes(report) == ["unexpected_response", "unexpected_response"]
    assert (
        "sent a web page (HTML) with HTTP status 200 instead of an OpenAI API response"
        in report.check("language").message
    )


def test_html_answer_to_openai_is_unexpected_response(web_page):
    report = verify_guarded(aiw.OpenAIIntegration(api_key="sk-test-0123456789", base_url=web_page + "/v1"))
    assert codes(report) == ["unexpected_response", "unexpected_response"]
    assert report.check("language").field == "base_url"


# --------------------------------------------------------------------------- #
# Calling conventions
# --------------------------------------------------------------------------- #


def test_sync_verify_works_inside_a_running_event_loop(sandbox):
    async def in_a_kernel_cell() -> aiw.VerificationReport:
        asyncio.get_running_loop()  # as in Jupyter, a loop is already running here
        return verify(openai(sandbox))

    assert asyncio.run(in_a_kernel_cell()).ok


def test_verify_async_can_be_awaited(sandbox):
    from ai_admin_widgets.verify import verify_async

    report = asyncio.run(verify_async(azure(sandbox)))
    assert report.ok
    assert [check.role for check in report.checks] == ["language", "embeddings"]
