"""Keyless Azure OpenAI: Microsoft Entra ID sign-in against the sandbox acting as Entra over TLS (real sockets)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from pathlib import Path

import pytest

import ai_admin_widgets as aiw
from ai_admin_widgets import ai
from ai_admin_widgets.models import KEEP_SAVED_KEY, AzureOpenAIIntegration, EntraID, FailureCode, field_errors
from ai_admin_widgets.verify import verify


@pytest.fixture
def entra_sandbox(monkeypatch):
    """The sandbox over https with a private certificate authority, trusted as an inspecting proxy's would be."""
    with aiw.Sandbox(tls=True) as sandbox:
        monkeypatch.setenv("SSL_CERT_FILE", str(sandbox.ca_bundle))
        yield sandbox


def keyless(sandbox: aiw.Sandbox, entra_id: EntraID, language: str = "chat-gpt-4o") -> AzureOpenAIIntegration:
    return AzureOpenAIIntegration.shared(
        endpoint_url=sandbox.azure_endpoint,
        language_deployment_id=language,
        embeddings_deployment_id="embeddings-3-small",
        entra_id=entra_id,
    )


def secrets_of(sandbox: aiw.Sandbox) -> list[str]:
    """What must never show: the client secret, and every token the sandbox issued."""
    return [sandbox.entra_id().client_secret.get_secret_value(), *sandbox._tokens]  # type: ignore[union-attr]


def assert_nothing_secret(sandbox: aiw.Sandbox, *texts: str) -> None:
    for text in texts:
        for secret in secrets_of(sandbox):
            assert secret not in text
        assert "sbx-token-" not in text


CLASSES = {
    "unknown_tenant": (FailureCode.ENTRA_TENANT_NOT_FOUND, "entra_id.tenant_id", "Directory (tenant) ID"),
    "unknown_client": (FailureCode.ENTRA_CLIENT_NOT_FOUND, "entra_id.client_id", "Application (client) ID"),
    "wrong_secret": (FailureCode.ENTRA_SECRET_INVALID, "entra_id.client_secret", "not its Secret ID"),
    "expired_secret": (FailureCode.ENTRA_SECRET_EXPIRED, "entra_id.client_secret", "Create a new client secret"),
    "no_role": (FailureCode.ROLE_MISSING, None, "Cognitive Services OpenAI User"),
    "other_tenant": (FailureCode.ENTRA_TOKEN_REFUSED, None, "another tenant than the Azure OpenAI resource"),
}


@pytest.mark.parametrize("scenario", list(CLASSES))
def test_each_entra_failure_is_classified_pointed_at_its_field_and_explained(entra_sandbox, scenario):
    code, field, words = CLASSES[scenario]
    report = verify(keyless(entra_sandbox, entra_sandbox.entra_id(scenario)))
    assert not report.ok
    for check in report.checks:
        assert check.code is code
        assert check.field == (f"{check.role}_model.{field}" if field else None)
        assert words in check.message
    assert_nothing_secret(entra_sandbox, str(report), report.model_dump_json(), repr(report))


def test_a_missing_role_names_the_role_and_says_an_assignment_takes_minutes(entra_sandbox):
    message = verify(keyless(entra_sandbox, entra_sandbox.entra_id("no_role"))).checks[0].message
    assert "'Cognitive Services OpenAI User'" in message and "few minutes" in message
    assert "A new key would not help" in message


def test_no_managed_identity_on_this_machine_is_classified(entra_sandbox, monkeypatch):
    for name, value in entra_sandbox.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    report = verify(keyless(entra_sandbox, EntraID.machine_identity(str(uuid.uuid4()))))  # not this machine's
    assert [check.code for check in report.checks] == [FailureCode.ENTRA_IDENTITY_UNAVAILABLE] * 2
    assert report.checks[0].field == "language_model.entra_id.method"


def test_an_unreachable_sign_in_service_is_classified_and_names_the_authority(entra_sandbox):
    unreachable = entra_sandbox.refused_endpoint.replace("http://", "https://")
    entra_id = entra_sandbox.entra_id().model_copy(update={"authority_host": unreachable})
    report = verify(keyless(entra_sandbox, entra_id))
    check = report.checks[0]
    assert check.code is FailureCode.ENTRA_UNREACHABLE
    assert check.field == "language_model.entra_id.authority_host"
    assert unreachable.removeprefix("https://") in check.message


def test_key_auth_disabled_tells_to_switch_to_entra_id_which_then_works(entra_sandbox):
    with_key = AzureOpenAIIntegration.shared(
        endpoint_url=entra_sandbox.azure_endpoint,
        api_key=entra_sandbox.azure_api_key,
        language_deployment_id="scenario-key-auth-disabled",
        embeddings_deployment_id="embeddings-3-small",
    )
    check = verify(with_key).checks[0]
    assert check.code is FailureCode.KEY_AUTH_DISABLED
    assert "Switch to Microsoft Entra ID" in check.message and "Cognitive Services OpenAI User" in check.message
    report = verify(keyless(entra_sandbox, entra_sandbox.entra_id(), language="scenario-key-auth-disabled"))
    assert report.ok, report


def test_keyless_save_test_chat_and_embed_with_a_service_principal(entra_sandbox):
    settings = entra_sandbox.settings()
    settings.save(keyless(entra_sandbox, entra_sandbox.entra_id()))
    assert settings.test().ok
    client = ai.AIClient(settings)
    try:
        assert client.chat("hello").startswith("Sandbox reply to: hello")
        assert len(client.embed(["one", "two"])) == 2
    finally:
        client.close()
    azure_calls = [request for request in entra_sandbox.requests if request["path"].startswith("/openai/")]
    assert azure_calls and all("api-key" not in request["headers"] for request in azure_calls)
    status = settings.status()
    assert status.models[0].authentication.startswith("Microsoft Entra ID, service principal")
    assert "client secret …" in status.models[0].authentication
    assert "Microsoft Entra ID (keyless)" in status.summary()
    files = "".join(
        path.read_text(errors="replace")
        for path in Path(entra_sandbox.folder).rglob("*")
        if path.is_file() and path.name != "keyring.cfg"
    )
    assert_nothing_secret(entra_sandbox, status.model_dump_json(), files, repr(settings.history()))


def test_keyless_on_azures_v1_api(entra_sandbox):
    """Entra ID and the v1 API together: a Bearer token on {endpoint}/openai/v1/…, the deployment as the model."""
    integration = keyless(entra_sandbox, entra_sandbox.entra_id()).model_copy(update={"api_version": "v1"})
    settings = entra_sandbox.settings()
    settings.save(integration)
    assert ai.chat("hello", settings=settings).startswith("Sandbox reply to: hello")
    v1_calls = [request for request in entra_sandbox.requests if request["path"].startswith("/openai/v1/")]
    assert {request["path"] for request in v1_calls} == {"/openai/v1/chat/completions", "/openai/v1/embeddings"}
    assert all(request["query"] == {} and "api-key" not in request["headers"] for request in v1_calls)
    assert all(request["headers"]["authorization"] == "<redacted>" for request in v1_calls)


def test_keyless_with_the_machine_identity(entra_sandbox, monkeypatch):
    for name, value in entra_sandbox.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    settings = entra_sandbox.settings()
    settings.save(keyless(entra_sandbox, EntraID.machine_identity()))
    assert settings.status().models[0].authentication == "Microsoft Entra ID, managed identity (system-assigned)"
    client = ai.AIClient(settings)
    try:
        assert client.chat("hi").startswith("Sandbox reply to: hi")
    finally:
        client.close()
    assert entra_sandbox.entra_counts.get("managed_identity_requests", 0) >= 1


def test_a_short_lived_token_is_renewed_before_it_expires(entra_sandbox):
    entra_sandbox.token_lifetime = 4  # seconds; renewed once half of it is gone
    settings = entra_sandbox.settings()
    settings.save(keyless(entra_sandbox, entra_sandbox.entra_id()))
    issued_at_save = entra_sandbox.entra_counts["tokens_issued"]
    client = ai.AIClient(settings)
    try:
        client.chat("first")
        client.chat("second")
        assert entra_sandbox.entra_counts["tokens_issued"] == issued_at_save + 1  # the second call used the cache
        deadline = time.monotonic() + 15
        while entra_sandbox.entra_counts["tokens_issued"] < issued_at_save + 2:
            assert time.monotonic() < deadline, "the token was never renewed"
            client.chat("again")  # every call must succeed: never an expired token
    finally:
        client.close()
    assert entra_sandbox.entra_counts.get("expired_tokens_refused", 0) == 0


def test_an_edit_keeps_the_saved_client_secret_only_for_the_same_app(entra_sandbox):
    settings = entra_sandbox.settings()
    settings.save(keyless(entra_sandbox, entra_sandbox.entra_id()))
    kept = entra_sandbox.entra_id().model_copy(update={"client_secret": KEEP_SAVED_KEY})
    assert settings.test(keyless(entra_sandbox, kept)).ok
    other_app = kept.model_copy(update={"client_id": str(uuid.uuid4())})
    with pytest.raises(aiw.SavedKeyUnavailable) as refused:
        settings.test(keyless(entra_sandbox, other_app))
    assert refused.value.field == "language_model.entra_id.client_secret"


def test_the_form_fields_are_checked_in_the_admins_words():
    with pytest.raises(Exception) as error:
        EntraID(tenant_id="my tenant", client_id="not-a-guid", client_secret="x" * 40)
    errors = field_errors(error.value)
    assert "contoso.onmicrosoft.com" in errors["tenant_id"] and "GUID" in errors["client_id"]
    with pytest.raises(Exception) as error:
        AzureOpenAIIntegration.shared(
            endpoint_url="https://x.openai.azure.com", language_deployment_id="a1", embeddings_deployment_id="b1"
        )
    assert "Microsoft Entra ID" in field_errors(error.value)["language_model.api_key"]
    assert EntraID(tenant_id="Contoso.onmicrosoft.com", client_id=str(uuid.uuid4()), client_secret="s" * 40)


# --------------------------------------------------------------------------- #
# Through the AI gateway: it signs in, here as its machine's managed identity
# --------------------------------------------------------------------------- #


@pytest.fixture
def entra_practice(entra_sandbox, monkeypatch):
    """A practice gateway (in this process) whose machine has the sandbox's managed identity."""
    from ai_admin_widgets.gateway.practice import Practice

    for name, value in entra_sandbox.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    with Practice(sandbox=entra_sandbox) as practice:
        yield practice


def test_a_keyless_integration_through_the_gateway_with_ai_chat_and_the_openai_package(entra_practice):
    import openai

    from ai_admin_widgets.client import GatewaySettings

    practice = entra_practice
    sandbox = practice.sandbox
    admin = GatewaySettings(practice.gateway_url, token=practice.tokens["admin"])
    status = admin.save(keyless(sandbox, EntraID.machine_identity()))
    assert status.configured
    assert admin.status().models[0].authentication == "Microsoft Entra ID, managed identity (system-assigned)"
    assert admin.test().ok
    analyst = GatewaySettings(practice.gateway_url, token=practice.tokens["analyst"])
    assert ai.chat("through the gateway", settings=analyst).startswith("Sandbox reply to: through the gateway")
    client = openai.OpenAI(base_url=practice.gateway_url + "/v1", api_key=practice.tokens["analyst"], max_retries=0)
    answer = client.chat.completions.create(model="chat-gpt-4o", messages=[{"role": "user", "content": "sdk"}])
    assert answer.choices[0].message.content.startswith("Sandbox reply to: sdk")
    vectors = client.embeddings.create(model="embeddings-3-small", input=["one"])
    assert len(vectors.data[0].embedding) == 1536
    assert sandbox.entra_counts.get("managed_identity_requests", 0) >= 1
    forwarded = [request for request in sandbox.requests if request["path"].startswith("/openai/")]
    assert forwarded and all("api-key" not in request["headers"] for request in forwarded)


def test_a_service_principal_through_the_gateway_keeps_its_secret_on_edit_and_says_a_missing_role(entra_practice):
    from ai_admin_widgets.client import GatewaySettings

    practice = entra_practice
    sandbox = practice.sandbox
    admin = GatewaySettings(practice.gateway_url, token=practice.tokens["admin"])
    admin.save(keyless(sandbox, sandbox.entra_id()))
    kept = sandbox.entra_id().model_copy(update={"client_secret": KEEP_SAVED_KEY})
    assert admin.save(keyless(sandbox, kept, language="scenario-key-auth-disabled")).configured
    with pytest.raises(aiw.VerificationFailed) as failed:
        admin.save(keyless(sandbox, sandbox.entra_id("no_role")))
    check = failed.value.report.checks[0]
    assert check.code is FailureCode.ROLE_MISSING and "Cognitive Services OpenAI User" in check.message
    assert_nothing_secret(sandbox, admin.status().model_dump_json(), str(failed.value.report))


def test_ai_admin_status_and_test_say_how_each_model_signs_in(entra_sandbox):
    import subprocess
    import sys

    settings = entra_sandbox.settings()
    settings.save(keyless(entra_sandbox, entra_sandbox.entra_id()))
    said = ""
    for command in ("status", "test"):
        done = subprocess.run(
            [sys.executable, "-m", "ai_admin_widgets", "--sandbox", str(entra_sandbox.folder), command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "Microsoft Entra ID, service principal" in done.stdout
        said += done.stdout + done.stderr
    assert "authenticates with Microsoft Entra ID" in said
    assert_nothing_secret(entra_sandbox, said)


def test_keyless_with_workload_identity_where_its_variables_are_set(entra_sandbox, monkeypatch):
    for name, value in entra_sandbox.workload_identity_environment().items():
        monkeypatch.setenv(name, value)
    report = verify(keyless(entra_sandbox, EntraID.machine_identity()))
    assert report.ok, report
    assert entra_sandbox.entra_counts.get("managed_identity_requests", 0) == 0  # the federated token was exchanged
    assert entra_sandbox.entra_counts["tokens_issued"] == 1  # one sign-in for both models


def test_a_workload_identity_whose_token_file_cannot_be_read_says_so_not_unreachable(entra_sandbox, monkeypatch):
    for name, value in entra_sandbox.workload_identity_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/federated-token")
    check = verify(keyless(entra_sandbox, EntraID.machine_identity())).check("language")
    assert check.code is FailureCode.ENTRA_IDENTITY_UNAVAILABLE, check.message
    assert "AZURE_FEDERATED_TOKEN_FILE" in check.message and "/nonexistent/federated-token" in check.message


def test_a_changed_integration_signs_in_with_its_new_identity(entra_sandbox, monkeypatch):
    for name, value in entra_sandbox.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    settings = entra_sandbox.settings()
    settings.save(keyless(entra_sandbox, entra_sandbox.entra_id()))
    client = ai.AIClient(settings)
    try:
        client.chat("as the app")
        settings.save(keyless(entra_sandbox, EntraID.machine_identity(entra_sandbox.user_assigned_client_id)))
        before = entra_sandbox.entra_counts.get("managed_identity_requests", 0)
        client.chat("as the machine")
        assert entra_sandbox.entra_counts["managed_identity_requests"] == before + 1
    finally:
        client.close()


def test_a_client_secret_pasted_into_another_field_is_refused_without_repeating_it(entra_sandbox):
    secret = entra_sandbox.entra_id().client_secret.get_secret_value()  # type: ignore[union-attr]
    for fields in (
        {"endpoint_url": f"{entra_sandbox.azure_endpoint}/{secret}", "deployment_id": "chat-gpt-4o"},
        {"endpoint_url": f"{entra_sandbox.azure_endpoint}/openai/deployments/chat-gpt-4o", "deployment_id": secret},
    ):
        with pytest.raises(Exception) as error:
            aiw.AzureDeployment(**fields, entra_id=entra_sandbox.entra_id())
        assert secret not in str(error.value) and secret not in json.dumps(field_errors(error.value))
    with pytest.raises(Exception) as error:
        EntraID(tenant_id=secret, client_id=secret, client_secret=secret)
    assert secret not in str(error.value)


def test_a_sign_in_that_never_answers_ends_at_the_checks_deadline(entra_sandbox):
    from ai_admin_widgets.models import Timeouts

    silent = entra_sandbox.unresponsive_endpoint.replace("http://", "https://")
    entra_id = entra_sandbox.entra_id().model_copy(update={"authority_host": silent})
    started = time.monotonic()
    report = verify(keyless(entra_sandbox, entra_id), timeouts=Timeouts(connect=1.0, check=1.5))
    assert time.monotonic() - started < 10  # generous: the deadline is 1.5 s, the sign-in included
    check = report.checks[0]
    assert check.code is FailureCode.ENTRA_UNREACHABLE and check.field == "language_model.entra_id.authority_host"
    assert "did not answer" in check.message and silent.removeprefix("https://") in check.message


def test_the_client_secret_goes_only_to_microsofts_sign_in_services():
    secret = {"tenant_id": "contoso.onmicrosoft.com", "client_id": str(uuid.uuid4()), "client_secret": "s" * 40}
    for elsewhere in ("https://login.example.com", "https://10.0.0.5", "http://login.microsoftonline.com"):
        with pytest.raises(Exception) as error:
            EntraID(**secret, authority_host=elsewhere)
        assert "https://" in field_errors(error.value)["authority_host"]
    for cloud in ("https://login.microsoftonline.us", "https://login.chinacloudapi.cn/"):
        assert EntraID(**secret, authority_host=cloud).authority_host == cloud.rstrip("/")


def test_any_other_refusal_of_the_sign_in_quotes_the_services_aadsts_words(entra_sandbox, monkeypatch, tmp_path):
    environment = entra_sandbox.workload_identity_environment()
    wrong = tmp_path / "another-federated-token"
    wrong.write_text("a token of another cluster", encoding="utf-8")
    for name, value in (environment | {"AZURE_FEDERATED_TOKEN_FILE": str(wrong)}).items():
        monkeypatch.setenv(name, value)
    check = verify(keyless(entra_sandbox, EntraID.machine_identity())).checks[0]
    assert check.code is FailureCode.ENTRA_SIGN_IN_REFUSED and check.field == "language_model.entra_id"
    assert "AADSTS700213" in check.message and "login.microsoftonline.com/error" in check.message


# --------------------------------------------------------------------------- #
# From the panel: the Add/Edit dialog's Authentication, driven as the front end drives it
# --------------------------------------------------------------------------- #


@pytest.fixture
def entra_panel(entra_sandbox):
    panel = entra_sandbox.settings().panel()
    yield panel
    panel.close()


def the(panel, css_class):
    found = panel.nodes(css_class)
    assert len(found) == 1, f"expected one .{css_class}, found {len(found)}"
    return found[0]


def assert_not_in_the_state(panel, secret):
    """No 5 characters of ``secret`` in a row in the panel's state, its widget state or the form's repr."""
    model_ids = re.compile(r"[0-9a-f]{32}|" + re.escape(panel.state["instance"]))
    widget_state = {name: value for name, value in panel.get_state().items() if name not in ("_esm", "_css")}
    for where, raw in (
        ("state", json.dumps(panel.state)),
        ("get_state", json.dumps(widget_state, default=str)),
        ("repr", repr(panel) + repr(panel.form)),
    ):
        shown = model_ids.sub("", raw)
        found = [secret[at : at + 5] for at in range(len(secret) - 4) if secret[at : at + 5] in shown]
        assert not found, f"the {where} holds {len(found)} pieces of the client secret"


def fill_keyless(panel, sandbox, entra_id, *, shared=True):
    """Add Azure OpenAI with Microsoft Entra ID for the language model (and, shared, for both)."""
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    panel.check("aiw-same-endpoint", shared)
    panel.type("aiw-language-endpoint-url", sandbox.azure_endpoint)
    panel.type("aiw-language-deployment-id", sandbox.azure_deployments["language"])
    panel.type("aiw-embeddings-deployment-id", sandbox.azure_deployments["embeddings"])
    panel.choose("aiw-language-authentication", "entra_id")
    assert not panel.nodes("aiw-language-api-key"), "API Key is offered beside Microsoft Entra ID"
    panel.choose("aiw-language-entra-method", entra_id.method)
    if entra_id.method == "service_principal":
        panel.type("aiw-language-tenant-id", entra_id.tenant_id)
        panel.type("aiw-language-client-id", entra_id.client_id)
        panel.type("aiw-language-client-secret", entra_id.client_secret.get_secret_value())
        panel.type("aiw-language-authority-host", entra_id.authority_host)
    elif entra_id.client_id:
        panel.type("aiw-language-client-id", entra_id.client_id)


def test_the_panel_adds_keyless_azure_with_a_service_principal(entra_panel, entra_sandbox):
    panel, entra_id = entra_panel, entra_sandbox.entra_id()
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    choice = the(panel, "aiw-language-authentication")
    assert [option["label"] for option in choice["options"]] == ["API key", "Microsoft Entra ID (keyless)"]
    assert choice["value"] == "api_key" and panel.nodes("aiw-language-api-key")
    assert not panel.nodes("aiw-language-authority-host")  # Microsoft Entra ID's fields show once it is chosen
    panel.press("aiw-cancel")
    fill_keyless(panel, entra_sandbox, entra_id)
    shown = panel.visible_text()
    assert "Sign in as: (Service principal (app registration with a client secret))" in shown
    assert the(panel, "aiw-language-authority-host")["value"] == entra_id.authority_host
    assert "national cloud" in the(panel, "aiw-language-authority-host")["help"]
    assert not panel.nodes("aiw-embeddings-authentication"), "the shared option still offers a second sign-in"
    secret = entra_id.client_secret.get_secret_value()
    assert_not_in_the_state(panel, secret)
    panel.press("aiw-save")
    assert panel.view == "row", panel.text_of("aiw-form")
    status = panel.text_of("aiw-status")
    assert "Microsoft Entra ID, service principal" in status and "client secret …" in status
    assert "key …" not in status
    assert_not_in_the_state(panel, secret)
    saved = entra_sandbox.settings().saved_fields()
    assert saved.language_model.entra_id.client_id == entra_id.client_id and saved.uses_shared_endpoint


def test_the_panel_adds_keyless_azure_with_the_machines_managed_identity(entra_panel, entra_sandbox, monkeypatch):
    for name, value in entra_sandbox.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    panel = entra_panel
    fill_keyless(panel, entra_sandbox, EntraID.machine_identity())
    assert not panel.nodes("aiw-language-tenant-id") and not panel.nodes("aiw-language-client-secret")
    assert not panel.nodes("aiw-language-authority-host")
    assert "Client ID (optional):" in panel.visible_text()
    panel.press("aiw-save")
    assert panel.view == "row", panel.text_of("aiw-form")
    assert "Microsoft Entra ID, managed identity (system-assigned)" in panel.text_of("aiw-status")
    assert entra_sandbox.entra_counts.get("managed_identity_requests", 0) >= 1


def test_edit_keeps_the_saved_client_secret_when_left_empty(entra_panel, entra_sandbox):
    panel = entra_panel
    settings = entra_sandbox.settings()
    settings.save(keyless(entra_sandbox, entra_sandbox.entra_id()))
    panel.render()
    hint = settings.status().models[0].key_hint
    panel.press("aiw-edit")
    assert the(panel, "aiw-language-authentication")["value"] == "entra_id"
    assert the(panel, "aiw-language-tenant-id")["value"] == entra_sandbox.entra_tenant_id
    secret_field = the(panel, "aiw-language-client-secret")
    assert secret_field["placeholder"] == f"Leave empty to keep the saved client secret ({hint}), or type a new one"
    revision = settings.status().revision
    issued = entra_sandbox.entra_counts.get("tokens_issued", 0)
    panel.type("aiw-embeddings-deployment-id", entra_sandbox.azure_deployments["embeddings"])
    panel.press("aiw-save")
    assert panel.view == "row", panel.text_of("aiw-form")
    assert settings.status().revision > revision
    assert entra_sandbox.entra_counts.get("tokens_issued", 0) > issued  # Save signed in with the kept secret
    panel.press("aiw-edit")  # another app: its secret is not the saved one's, so it is asked for
    panel.type("aiw-language-client-id", str(uuid.uuid4()))
    panel.press("aiw-save")
    assert panel.view == "form"
    assert "Type the Client secret again" in the(panel, "aiw-language-client-secret")["error"]


def test_a_wrong_client_secret_is_said_beside_client_secret(entra_panel, entra_sandbox):
    panel = entra_panel
    fill_keyless(panel, entra_sandbox, entra_sandbox.entra_id("wrong_secret"))
    panel.press("aiw-save")
    assert panel.view == "form"
    assert "not its Secret ID" in the(panel, "aiw-language-client-secret")["error"]
    assert not the(panel, "aiw-language-tenant-id")["error"] and not the(panel, "aiw-language-client-id")["error"]
    assert panel.form.key("language_model.entra_id.client_secret") == ""  # typed again, as an API Key is
    assert "type the Client secret again" in panel.text_of("aiw-message")


def test_entra_fields_are_tidied_and_checked_when_left(entra_panel, entra_sandbox):
    panel = entra_panel
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    panel.choose("aiw-embeddings-authentication", "entra_id")  # each model signs in its own way
    panel.type("aiw-embeddings-tenant-id", "my tenant")
    assert "contoso.onmicrosoft.com" in the(panel, "aiw-embeddings-tenant-id")["error"]
    assert not panel.nodes("aiw-language-tenant-id")
    client_id = str(uuid.uuid4()).upper()
    panel.type("aiw-embeddings-client-id", f"  {client_id} ")
    assert the(panel, "aiw-embeddings-client-id")["value"] == client_id.lower()
    assert not the(panel, "aiw-embeddings-client-id")["error"]
    panel.type("aiw-embeddings-client-id", "not-a-guid")
    assert "GUID" in the(panel, "aiw-embeddings-client-id")["error"]
    secret = entra_sandbox.entra_id().client_secret.get_secret_value()
    panel.type("aiw-embeddings-client-secret", f"  {secret}  ")  # tidied as an API Key is
    assert panel.form.key("embeddings_model.entra_id.client_secret") == secret
    assert not the(panel, "aiw-embeddings-client-secret")["error"]
    assert_not_in_the_state(panel, secret)


def test_switching_authentication_back_to_api_key_saves_with_the_key(entra_panel, entra_sandbox):
    panel = entra_panel
    fill_keyless(panel, entra_sandbox, entra_sandbox.entra_id())
    panel.choose("aiw-language-authentication", "api_key")
    assert not panel.nodes("aiw-language-tenant-id") and not panel.nodes("aiw-language-entra-method")
    panel.type("aiw-language-api-key", entra_sandbox.azure_api_key.get_secret_value())
    panel.press("aiw-save")
    assert panel.view == "row", panel.text_of("aiw-form")
    assert "key …" in panel.text_of("aiw-status") and "Entra" not in panel.text_of("aiw-status")
    assert entra_sandbox.settings().saved_fields().language_model.entra_id is None


def test_each_model_may_sign_in_its_own_way_and_the_row_says_each(entra_panel, entra_sandbox):
    panel, entra_id = entra_panel, entra_sandbox.entra_id()
    fill_keyless(panel, entra_sandbox, entra_id, shared=False)
    panel.type("aiw-embeddings-endpoint-url", entra_sandbox.azure_endpoint)
    panel.type("aiw-embeddings-api-key", entra_sandbox.azure_api_key.get_secret_value())
    panel.press("aiw-save")
    assert panel.view == "row", panel.text_of("aiw-form")
    status = panel.text_of("aiw-status")
    assert "language model: Microsoft Entra ID, service principal" in status
    assert "embeddings model: API key …" in status


def test_the_api_version_field_offers_v1_beside_the_dated_versions_and_v1_saves(entra_panel, entra_sandbox):
    panel = entra_panel
    panel.press("aiw-add")
    panel.choose("aiw-provider", "azure_openai")
    version = the(panel, "aiw-api-version")
    assert version["suggestions"][0] == "v1"
    assert {aiw.models.DEFAULT_AZURE_API_VERSION, "2024-12-01-preview"} <= set(version["suggestions"])
    assert "v1 for Azure's v1 API" in version["help"] and "/openai/v1/" in version["help"]
    panel.press("aiw-cancel")
    fill_keyless(panel, entra_sandbox, entra_sandbox.entra_id())
    panel.type("aiw-api-version", "v1")
    panel.press("aiw-save")
    assert panel.view == "row", panel.text_of("aiw-form")
    assert entra_sandbox.settings().saved_fields().api_version == "v1"
    assert any(request["path"].startswith("/openai/v1/") for request in entra_sandbox.requests)


def test_an_unknown_managed_identity_is_said_beside_its_model_in_the_panel(entra_panel, entra_sandbox, monkeypatch):
    for name, value in entra_sandbox.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    panel = entra_panel
    fill_keyless(panel, entra_sandbox, EntraID.machine_identity(str(uuid.uuid4())))  # not this machine's
    panel.press("aiw-save")
    assert panel.view == "form"
    said = panel.text_of("aiw-language-result")  # no field for "which machine": said beside the model, at once
    assert said.startswith("✗") and "managed identity" in said.lower()
    assert the(panel, "aiw-language-result")["alert"]
    assert "A user-assigned identity needs its Client ID" in said
    assert "Correct what is marked above." in panel.text_of("aiw-message")  # no key to type again


def test_a_failed_sign_in_is_said_once_in_this_packages_words_not_also_as_azure_identitys_warning(
    entra_sandbox, caplog
):
    caplog.set_level(logging.DEBUG)
    check = verify(keyless(entra_sandbox, entra_sandbox.entra_id("wrong_secret"))).check("language")
    assert check.code is FailureCode.ENTRA_SECRET_INVALID
    loud = [r for r in caplog.records if r.name.startswith("azure.identity") and r.levelno >= logging.WARNING]
    assert loud == []
    # outside a sign-in of this package, azure-identity's own warnings are left alone
    logging.getLogger("azure.identity._internal.decorators").warning("%s failed: %s", "Other.get_token", "x")
    assert [r.levelno for r in caplog.records if r.name == "azure.identity._internal.decorators"][-1] == logging.WARNING


def test_a_service_that_repeats_part_of_the_token_never_gets_it_shown(entra_sandbox):
    """An Entra ID token is as secret as a key: 30 of its characters in the service's message are hidden."""
    integration = keyless(entra_sandbox, entra_sandbox.entra_id(), language="scenario-echo-credential")
    check = verify(integration).check("language")
    assert check.code is FailureCode.RATE_LIMITED and "Too many requests for credential" in check.message
    tokens = list(entra_sandbox._tokens)
    assert tokens and all(token[10:40] not in check.message for token in tokens)
    assert_nothing_secret(entra_sandbox, check.message)
    settings = entra_sandbox.settings()  # AI calls are told the same, without the token
    settings.store.save(integration, actor=settings.user, models={"language": None, "embeddings": None})
    with pytest.raises(ai.AIRequestFailed) as refused:
        ai.chat("hello", settings=settings)
    assert "Too many requests for credential" in str(refused.value)
    assert_nothing_secret(entra_sandbox, str(refused.value))
    assert all(token[10:40] not in str(refused.value) for token in entra_sandbox._tokens)


def test_a_refused_token_in_ai_calls_says_the_token_not_the_api_key(entra_sandbox):
    """An identity of another tenant signs in, but the resource refuses its token: never "rejected the API Key"."""
    settings = entra_sandbox.settings()
    integration = keyless(entra_sandbox, entra_sandbox.entra_id("other_tenant"))
    settings.store.save(integration, actor=settings.user, models={"language": None, "embeddings": None})
    with pytest.raises(ai.AIRequestFailed) as refused:
        ai.chat("hello", settings=settings)
    assert refused.value.code is FailureCode.ENTRA_TOKEN_REFUSED
    assert "API Key" not in str(refused.value) and "[entra_token_refused]" in str(refused.value)
