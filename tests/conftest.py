"""Fixtures shared by the test suite: a running sandbox, a file keyring in a temp folder, and settings on both.

Nothing here touches the machine's own keyring or contacts anything but 127.0.0.1.
"""

from __future__ import annotations

import uuid

import pytest
from keyrings.alt.file import PlaintextKeyring

import ai_admin_widgets as aiw

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to the local servers go straight to 127.0.0.1, never through a proxy from the environment."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _off_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as if off JupyterHub (even on one), so no real hub is ever asked; test_access sets its fake hub."""
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sandbox():
    """A running :class:`aiw.Sandbox` on 127.0.0.1, stopped after the test."""
    with aiw.Sandbox() as running:
        yield running


@pytest.fixture
def file_keyring(tmp_path):
    """A real keyring backend (keyrings.alt's PlaintextKeyring) whose file lives in the test's temp folder."""
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    return backend


@pytest.fixture
def settings(tmp_path, file_keyring):
    """:class:`aiw.AISettings` on a store folder in tmp_path and the file keyring."""
    return aiw.AISettings(home=tmp_path / "store", keyring=file_keyring)


@pytest.fixture
def marker_key() -> str:
    """A key-shaped string that no other test uses, to grep outputs and files for leaks."""
    return f"sk-LEAKMARKER-{uuid.uuid4().hex}"
