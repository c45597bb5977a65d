"""The store against real keyring backends, and keyrings that would prompt.

* a real Linux Secret Service: gnome-keyring-daemon on a private D-Bus session bus that
  this file starts in tmp_path (so the machine's own keyring is never touched);
* keyrings.cryptfile's CryptFileKeyring in tmp_path, its password from the environment;
* backends that would ask for a password (cryptfile without one, a locked Secret Service
  whose unlock prompt nobody answers) fail at once with a KeyringUnavailable that says
  what to do, instead of waiting forever in a kernel;
* no usable keyring at all: the panel says so and how to fix it, and save() refuses.

Missing programs or packages skip these tests locally; with CI=true they fail instead
(``.ci/run`` installs them). Nothing here contacts any host.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.backends.chainer import ChainerBackend
from keyrings.alt.file import PlaintextKeyring
from test_store import azure, new_key  # the same integration and marker keys as the file-keyring tests

import ai_admin_widgets as aiw
from ai_admin_widgets import store as store_module
from ai_admin_widgets.store import (
    CRYPTFILE_PASSWORD_ENV,
    PLAINTEXT_ENV,
    SERVICE_NAME,
    SettingsStore,
    default_keyring,
    prepare_keyring,
)

MODELS = {"language": "gpt-4o", "embeddings": "text-embedding-3-small"}
PASSWORD = "correct horse battery staple"


def require(available: bool, what: str) -> None:
    """Skip without ``what``; under CI (CI=true) fail instead, since CI must run every test."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test but {what} is missing; .ci/run should install it")
    pytest.skip(f"needs {what}")


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def check_round_trip(home: Path, backend: KeyringBackend, reopen: Callable[[], KeyringBackend]) -> None:
    """Save, load, edit and remove through ``backend``; ``reopen()`` gives a fresh backend on the same storage."""
    store = SettingsStore(home, backend)
    language_key, embeddings_key = new_key(), new_key()
    first = store.save(azure(language_key, embeddings_key), actor="alice", models=MODELS)

    # The keys are in the keyring, readable by another backend instance...
    fresh = reopen()
    assert {slot: fresh.get_password(SERVICE_NAME, first.username(slot)) for slot in first.key_slots} == {
        "language_model.api_key": language_key,
        "embeddings_model.api_key": embeddings_key,
    }
    # ...and never in the settings file.
    record_text = (home / "settings.json").read_text(encoding="utf-8")
    assert language_key not in record_text and embeddings_key not in record_text
    assert language_key[-4:] in record_text  # only the hint

    loaded = SettingsStore(home, reopen()).load()
    assert isinstance(loaded, aiw.AzureOpenAIIntegration)
    assert loaded.language_model.api_key.get_secret_value() == language_key
    assert loaded.embeddings_model.api_key.get_secret_value() == embeddings_key

    # An edit stores the new key and deletes the old revision's keys.
    openai_key = new_key()
    second = store.save(aiw.OpenAIIntegration(api_key=openai_key), actor="alice", models=MODELS)
    fresh = reopen()
    assert [fresh.get_password(SERVICE_NAME, first.username(slot)) for slot in first.key_slots] == [None, None]
    assert fresh.get_password(SERVICE_NAME, second.username("api_key")) == openai_key
    loaded = SettingsStore(home, reopen()).load()
    assert isinstance(loaded, aiw.OpenAIIntegration)
    assert loaded.api_key.get_secret_value() == openai_key
    assert openai_key not in (home / "settings.json").read_text(encoding="utf-8")

    # Remove deletes the keys: nothing is left to load.
    store.remove(actor="alice")
    assert reopen().get_password(SERVICE_NAME, second.username("api_key")) is None
    assert SettingsStore(home, reopen()).load() is None


# --------------------------------------------------------------------------- #
# A real Secret Service: gnome-keyring-daemon on a private session bus
# --------------------------------------------------------------------------- #

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={socket_dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class SecretServiceSession:
    """A private D-Bus session bus with gnome-keyring-daemon's Secret Service on it, unlocked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = ""
        self._processes: list[subprocess.Popen[Any]] = []
        self._logs: list[Any] = []

    def _log(self, name: str) -> Any:
        handle = open(self.root / name, "wb")
        self._logs.append(handle)
        return handle

    def start(self) -> SecretServiceSession:
        for name in ("home", "data", "config", "runtime", "bus"):
            (self.root / name).mkdir(mode=0o700, parents=True)
        config = self.root / "bus.conf"
        # No service directories: nothing is D-Bus-activated, so no prompter can appear on any screen.
        config.write_text(_BUS_CONFIG.format(socket_dir=self.root / "bus"), encoding="utf-8")
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DBUS_", "XDG_", "DISPLAY", "WAYLAND_", "GNOME_KEYRING"))
        }
        environment.update(
            HOME=str(self.root / "home"),
            XDG_DATA_HOME=str(self.root / "data"),
            XDG_CONFIG_HOME=str(self.root / "config"),
            XDG_RUNTIME_DIR=str(self.root / "runtime"),
        )
        bus = subprocess.Popen(
            ["dbus-daemon", "--config-file", str(config), "--nofork", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log("dbus.log"),
            env=environment,
            text=True,
        )
        self._processes.append(bus)
        assert bus.stdout is not None
        self.address = bus.stdout.readline().strip()
        if not self.address:
            raise RuntimeError(f"dbus-daemon did not start: {(self.root / 'dbus.log').read_text(errors='replace')}")
        environment["DBUS_SESSION_BUS_ADDRESS"] = self.address
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log("gnome-keyring.log"),
            env=environment,
        )
        self._processes.append(daemon)
        assert daemon.stdin is not None
        daemon.stdin.write(PASSWORD.encode())  # --unlock reads the login keyring's password from stdin
        daemon.stdin.close()
        self._wait_for_service(daemon)
        return self

    def _wait_for_service(self, daemon: subprocess.Popen[Any]) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        deadline = time.monotonic() + 30
        with open_dbus_connection(self.address) as connection:
            while time.monotonic() < deadline:
                reply = connection.send_and_get_reply(message_bus.NameHasOwner("org.freedesktop.secrets"))
                if reply.body[0]:
                    return
                if daemon.poll() is not None:
                    break
                time.sleep(0.05)
        log = (self.root / "gnome-keyring.log").read_text(errors="replace")
        raise RuntimeError(f"gnome-keyring-daemon did not offer the Secret Service: {log}")

    def stop(self) -> None:
        for process in reversed(self._processes):
            _stop(process)
            if process.stdout is not None:
                process.stdout.close()
        for handle in self._logs:
            handle.close()

    def collection(self) -> Any:
        """The default collection ("Login"), over a new connection to the private bus."""
        import secretstorage

        return secretstorage.get_default_collection(secretstorage.dbus_init())

    def our_secrets(self) -> list[str]:
        """The secret of every item the store wrote (keyring's ``service`` attribute is ours)."""
        collection = self.collection()
        try:
            return [
                item.get_secret().decode()
                for item in collection.get_all_items()
                if item.get_attributes().get("service") == SERVICE_NAME
            ]
        finally:
            collection.connection.close()


@pytest.fixture
def secret_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretServiceSession]:
    """A running private Secret Service; DBUS_SESSION_BUS_ADDRESS points at it for the test."""
    require(shutil.which("dbus-daemon") is not None, "dbus-daemon (Debian package dbus-daemon)")
    require(shutil.which("gnome-keyring-daemon") is not None, "gnome-keyring-daemon (Debian package gnome-keyring)")
    require(has_module("secretstorage") and has_module("jeepney"), "the Python package secretstorage")
    session = SecretServiceSession(tmp_path / "secret-service")
    try:
        session.start()
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session.address)
        yield session
    finally:
        session.stop()


def secret_service_backend() -> KeyringBackend:
    from keyring.backends import SecretService

    return SecretService.Keyring()


def test_round_trip_through_a_real_secret_service(secret_service, tmp_path):
    backend = secret_service_backend()
    assert backend.priority > 0  # keyring finds the private Secret Service usable
    check_round_trip(tmp_path / "store", backend, secret_service_backend)
    assert secret_service.our_secrets() == []  # nothing left behind in the collection


def test_secret_service_items_hold_the_keys_and_leave_with_remove(secret_service, tmp_path):
    store = SettingsStore(tmp_path / "store", secret_service_backend())
    key = new_key()
    store.save(aiw.OpenAIIntegration(api_key=key), actor="alice", models=MODELS)
    assert secret_service.our_secrets() == [key]
    store.remove(actor="alice")
    assert secret_service.our_secrets() == []


def _lock_default_collection(session: SecretServiceSession) -> None:
    collection = session.collection()
    try:
        collection.lock()
        assert collection.is_locked()
    finally:
        collection.connection.close()


def test_a_locked_secret_service_fails_with_what_to_do_and_changes_nothing(secret_service, tmp_path):
    store = SettingsStore(tmp_path / "store", secret_service_backend())
    key = new_key()
    store.save(aiw.OpenAIIntegration(api_key=key), actor="alice", models=MODELS)
    before = (tmp_path / "store" / "settings.json").read_text(encoding="utf-8")
    _lock_default_collection(secret_service)

    with pytest.raises(aiw.KeyringUnavailable, match="locked") as caught:
        store.load()
    assert "Unlock it" in str(caught.value)
    with pytest.raises(aiw.KeyringUnavailable, match="locked"):
        store.save(aiw.OpenAIIntegration(api_key=new_key()), actor="alice", models=MODELS)
    assert (tmp_path / "store" / "settings.json").read_text(encoding="utf-8") == before
    assert key not in str(caught.value)


class _UnansweredPrompter:
    """Plays gnome-keyring's prompter on the private bus: it accepts a prompt and never answers it.

    That is a password dialog on a desktop nobody sits at (or a JupyterHub server):
    keyring itself would wait for it forever.
    """

    def __init__(self, address: str) -> None:
        from jeepney import MessageType, new_method_return
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.prompts = 0
        self._connection = open_dbus_connection(address)
        self._connection.send_and_get_reply(message_bus.RequestName("org.gnome.keyring.SystemPrompter"))

        def serve() -> None:
            while True:
                try:
                    message = self._connection.receive()
                except Exception:  # the connection was closed
                    return
                if message.header.message_type == MessageType.method_call:
                    self.prompts += 1
                    self._connection.send(new_method_return(message))  # "prompting begun", then silence

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._connection.close()


def test_an_unlock_prompt_nobody_answers_does_not_hang_the_kernel(secret_service, tmp_path, monkeypatch):
    store = SettingsStore(tmp_path / "store", secret_service_backend())
    store.save(aiw.OpenAIIntegration(api_key=new_key()), actor="alice", models=MODELS)
    _lock_default_collection(secret_service)
    prompter = _UnansweredPrompter(secret_service.address)
    monkeypatch.setattr(store_module, "UNLOCK_TIMEOUT", 1.0)
    outcome: list[BaseException | object] = []

    def load() -> None:
        try:
            outcome.append(store.load())
        except BaseException as error:  # handed to the test below
            outcome.append(error)

    worker = threading.Thread(target=load, daemon=True)
    try:
        worker.start()
        worker.join(timeout=120)  # a guard for this test run only; the store itself gives up after UNLOCK_TIMEOUT
        if worker.is_alive():
            pytest.fail("the store waited on the unanswered unlock prompt instead of giving up")
    finally:
        prompter.close()
    assert prompter.prompts >= 1  # the admin was asked, on the desktop, to unlock
    [error] = outcome
    assert isinstance(error, aiw.KeyringUnavailable)
    assert "locked" in str(error) and "was not answered" in str(error)


# --------------------------------------------------------------------------- #
# keyrings.cryptfile: an encrypted file, its password from the environment
# --------------------------------------------------------------------------- #


@pytest.fixture
def cryptfile(tmp_path: Path) -> Callable[[], KeyringBackend]:
    """Makes CryptFileKeyring backends on one file in tmp_path (a cheaper Argon2 cost, same scheme)."""
    require(has_module("keyrings.cryptfile"), "the Python package keyrings.cryptfile")
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    def make() -> KeyringBackend:
        backend = CryptFileKeyring()
        backend.file_path = str(tmp_path / "cryptfile_pass.cfg")
        backend.time_cost, backend.memory_cost = 2, 2**12  # the defaults take seconds for each key
        return backend

    return make


def reopened_with_password(make: Callable[[], KeyringBackend]) -> Callable[[], KeyringBackend]:
    def reopen() -> KeyringBackend:
        backend = make()
        prepare_keyring(backend)  # the password from the environment, as the store does
        return backend

    return reopen


def test_round_trip_through_cryptfile_with_its_password_from_the_environment(cryptfile, tmp_path, monkeypatch):
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, PASSWORD)
    check_round_trip(tmp_path / "store", cryptfile(), reopened_with_password(cryptfile))


def test_cryptfile_holds_keys_encrypted(cryptfile, tmp_path, monkeypatch):
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, PASSWORD)
    key = new_key()
    SettingsStore(tmp_path / "store", cryptfile()).save(
        aiw.OpenAIIntegration(api_key=key), actor="alice", models=MODELS
    )
    stored = Path(cryptfile().file_path).read_text(encoding="utf-8")
    assert SERVICE_NAME in stored.replace("_2D", "-")  # an entry is there (ini-escaped)...
    assert key not in stored and key[-12:] not in stored  # ...but not the key


def test_cryptfile_with_a_wrong_password_says_so(cryptfile, tmp_path, monkeypatch):
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, PASSWORD)
    key = new_key()
    SettingsStore(tmp_path / "store", cryptfile()).save(
        aiw.OpenAIIntegration(api_key=key), actor="alice", models=MODELS
    )
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, "not the password")
    with pytest.raises(aiw.KeyringUnavailable, match=f"{CRYPTFILE_PASSWORD_ENV} does not open the keyring file"):
        SettingsStore(tmp_path / "store", cryptfile()).load()
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, PASSWORD)
    loaded = SettingsStore(tmp_path / "store", cryptfile()).load()
    assert loaded is not None and loaded.api_key.get_secret_value() == key


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xfe not text at all \x00", b"just some words, no sections\n", b"[keyring_2Dsetting\nbroken = [\n"],
)
def test_a_damaged_cryptfile_is_reported_as_damaged_not_as_a_wrong_password(cryptfile, tmp_path, monkeypatch, garbage):
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, PASSWORD)
    SettingsStore(tmp_path / "store", cryptfile()).save(
        aiw.OpenAIIntegration(api_key=new_key()), actor="alice", models=MODELS
    )
    Path(cryptfile().file_path).write_bytes(garbage)
    with pytest.raises(aiw.KeyringUnavailable) as damaged:
        SettingsStore(tmp_path / "store", cryptfile()).load()
    said = str(damaged.value)
    assert "is damaged" in said and "Restore it from a backup" in said
    assert CRYPTFILE_PASSWORD_ENV not in said and "password" not in said.lower()


def _never_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    def prompt(*_args: Any, **_kwargs: Any) -> str:
        raise AssertionError("a keyring asked for a password on the terminal")

    monkeypatch.setattr(getpass, "getpass", prompt)


def test_cryptfile_without_its_password_is_refused_before_any_prompt(cryptfile, tmp_path, monkeypatch):
    monkeypatch.delenv(CRYPTFILE_PASSWORD_ENV, raising=False)
    _never_prompt(monkeypatch)
    store = SettingsStore(tmp_path / "store", cryptfile())
    with pytest.raises(aiw.KeyringUnavailable, match=CRYPTFILE_PASSWORD_ENV) as caught:
        store.save(aiw.OpenAIIntegration(api_key=new_key()), actor="alice", models=MODELS)
    assert "would ask for its password" in str(caught.value)
    assert not (tmp_path / "store" / "settings.json").exists()
    assert not Path(cryptfile().file_path).exists()


def test_policy_accepts_cryptfile_only_with_its_password(cryptfile, monkeypatch):
    _never_prompt(monkeypatch)
    backend = cryptfile()
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)
    monkeypatch.delenv(CRYPTFILE_PASSWORD_ENV, raising=False)
    with pytest.raises(aiw.KeyringUnavailable, match=f"Set {CRYPTFILE_PASSWORD_ENV}"):
        default_keyring()
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, PASSWORD)
    assert default_keyring() is backend


def test_policy_keeps_a_chain_from_falling_through_to_a_keyring_that_prompts(cryptfile, tmp_path, monkeypatch):
    """keyrings.cryptfile installed beside keyrings.alt: keyring chains them all, and a lookup that
    misses in the first would ask keyrings.alt's EncryptedKeyring for its password. The policy
    uses the best one alone."""
    require(has_module("Crypto"), "pycryptodome (a dependency of keyrings.cryptfile)")
    from keyrings.alt.file import EncryptedKeyring

    _never_prompt(monkeypatch)
    best, prompting, plaintext = cryptfile(), EncryptedKeyring(), PlaintextKeyring()
    prompting.file_path = str(tmp_path / "crypted_pass.cfg")
    plaintext.file_path = str(tmp_path / "keyring_pass.cfg")
    monkeypatch.setattr(keyring.backend, "get_all_keyring", lambda: [plaintext, prompting, best])
    monkeypatch.setattr(keyring, "get_keyring", ChainerBackend)
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, PASSWORD)
    chosen = default_keyring()
    assert chosen is best
    store = SettingsStore(tmp_path / "store", chosen)
    store.save(aiw.OpenAIIntegration(api_key=new_key()), actor="alice", models=MODELS)
    store.remove(actor="alice")  # deleting and looking up missing keys prompts nowhere
    assert store.load() is None


def test_cryptfile_without_a_password_never_waits_on_stdin(cryptfile, tmp_path):
    """As in a kernel or an nbval run: no terminal, and a stdin that nobody will ever write to."""
    backend = cryptfile()
    script = textwrap.dedent(
        f"""
        import ai_admin_widgets as aiw
        from ai_admin_widgets.store import SettingsStore, default_keyring
        from keyrings.cryptfile.cryptfile import CryptFileKeyring

        backend = CryptFileKeyring()
        backend.file_path = {backend.file_path!r}
        try:
            SettingsStore({str(tmp_path / "store")!r}, backend).save(
                aiw.OpenAIIntegration(api_key="sk-sandbox-0000"), actor="alice", models={{}}
            )
        except aiw.KeyringUnavailable as error:
            print("save:", error)
        try:
            default_keyring()
        except aiw.KeyringUnavailable as error:
            print("policy:", error)
        """
    )
    environment = {name: value for name, value in os.environ.items() if name != CRYPTFILE_PASSWORD_ENV}
    environment.update(
        PYTHON_KEYRING_BACKEND="keyrings.cryptfile.cryptfile.CryptFileKeyring",
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    environment.pop(PLAINTEXT_ENV, None)
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,  # kept open: a getpass() would wait on it for ever
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        start_new_session=True,  # no controlling terminal, like a kernel
        text=True,
    )
    try:
        process.wait(timeout=120)  # a guard for this test run only
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("the store waited for a keyring password on stdin")
    finally:
        assert process.stdin is not None
        process.stdin.close()
    assert process.stdout is not None and process.stderr is not None
    with process.stdout, process.stderr:
        out, err = process.stdout.read(), process.stderr.read()
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("save: ") and f"Set {CRYPTFILE_PASSWORD_ENV}" in lines[0]
    assert lines[1].startswith("policy: ") and f"Set {CRYPTFILE_PASSWORD_ENV}" in lines[1]
    assert "password" not in err.lower()  # no prompt was written


# --------------------------------------------------------------------------- #
# No usable keyring: the panel says so and how to fix it; save refuses
# --------------------------------------------------------------------------- #


def _footer(panel: Any) -> str:
    return panel.text_of("aiw-footer")


def test_without_a_usable_keyring_the_panel_says_how_to_fix_it_and_save_refuses(tmp_path, sandbox, monkeypatch):
    monkeypatch.setattr(keyring, "get_keyring", fail.Keyring)
    settings = aiw.AISettings(home=tmp_path / "store")
    panel = settings.panel()
    try:
        footer = _footer(panel)
        assert "Keys cannot be saved here" in footer
        assert "No keyring backend is available" in footer and "PYTHON_KEYRING_BACKEND" in footer
    finally:
        panel.close()
    with pytest.raises(aiw.KeyringUnavailable, match="Install and unlock a system keyring"):
        settings.save(aiw.OpenAIIntegration(api_key=sandbox.openai_api_key, base_url=sandbox.openai_base_url))
    assert not settings.status().configured


def test_the_panel_tells_how_to_give_cryptfile_its_password(cryptfile, tmp_path, monkeypatch):
    monkeypatch.setattr(keyring, "get_keyring", cryptfile)
    monkeypatch.delenv(CRYPTFILE_PASSWORD_ENV, raising=False)
    panel = aiw.AISettings(home=tmp_path / "store").panel()
    try:
        assert f"Set {CRYPTFILE_PASSWORD_ENV} to its password" in _footer(panel)
    finally:
        panel.close()
    monkeypatch.setenv(CRYPTFILE_PASSWORD_ENV, PASSWORD)
    panel = aiw.AISettings(home=tmp_path / "store").panel()
    try:
        assert _footer(panel) == "Keys are kept in: Encrypted file keyring (cryptfile)"
    finally:
        panel.close()


def test_keyrings_are_named_in_words_wherever_they_are_named(tmp_path):
    """The panel's footer and row, ``ai-admin status`` and the gateway all name a keyring through backend_name."""
    from keyring.backends import fail
    from keyrings.alt.file import EncryptedKeyring, PlaintextKeyring

    from ai_admin_widgets.store import backend_name

    assert backend_name(PlaintextKeyring()) == "Plain-text file keyring"
    assert backend_name(EncryptedKeyring()) == "Encrypted file keyring"
    assert backend_name(fail.Keyring()) == "no usable keyring"


@pytest.mark.parametrize("module", ["keyrings.alt.file", "keyrings.cryptfile.file"])
def test_a_plaintext_keyring_is_refused_unless_allowed(module, tmp_path, monkeypatch):
    require(has_module(module), f"the Python module {module}")
    plaintext = importlib.import_module(module).PlaintextKeyring()
    plaintext.file_path = str(tmp_path / "keyring_pass.cfg")
    monkeypatch.setattr(keyring, "get_keyring", lambda: plaintext)
    monkeypatch.delenv(PLAINTEXT_ENV, raising=False)
    settings = aiw.AISettings(home=tmp_path / "store")
    assert PLAINTEXT_ENV in (settings.keyring_problem() or "")
    monkeypatch.setenv(PLAINTEXT_ENV, "1")
    assert settings.keyring_problem() is None
    assert default_keyring() is plaintext
