"""A temporary PostgreSQL cluster for the tests: Debian's binaries, run as an unprivileged OS user.

Debian's PostgreSQL (``/usr/lib/postgresql/<version>/bin``) is started in a temporary folder on a free
port of 127.0.0.1 as an unprivileged OS user (``postgres`` where the package made it, else one made here
and removed afterwards: its binaries refuse to run as root), stopped and deleted at the end. Without the
binaries the tests that need it are skipped, except under ``CI=true``, where they fail (``.ci/run``
installs them). The ``cluster`` fixture (tests/conftest.py) starts one per test session, when first asked.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_USER, PG_PASSWORD = "aiw", "pg-test-" + secrets.token_hex(8)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path | None:
    """Debian's newest PostgreSQL binaries folder, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3].split(".")[0])
    )
    return Path(found[-1]).parent if found else None


@dataclass
class Cluster:
    """A running temporary cluster: where it listens and as whom the tests connect."""

    bin: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str) -> None:
        """Run one statement outside a transaction (CREATE / DROP DATABASE) in the ``postgres`` database."""
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(statement))
        finally:
            engine.dispose()

    def dump(self, database: str) -> str:
        """``pg_dump`` of ``database``, as text."""
        done = subprocess.run(
            [str(self.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, database],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ | {"PGPASSWORD": PG_PASSWORD},
            check=True,
        )
        return done.stdout


@contextlib.contextmanager
def _os_user() -> Iterator[str | None]:
    """An unprivileged OS user to run PostgreSQL as (None when not root: run as ourselves); a made one is removed."""
    if os.geteuid() != 0:
        yield None
        return
    with contextlib.suppress(KeyError):
        pwd.getpwnam("postgres")
        yield "postgres"
        return
    name = f"aiwpg{secrets.token_hex(3)}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, timeout=60
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], timeout=60, check=False)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster on a free port of 127.0.0.1 (password authentication), stopped and deleted afterwards."""
    bin_folder = _postgres_bin()
    if bin_folder is None:
        message = "PostgreSQL's binaries (/usr/lib/postgresql/*/bin) are not installed: apt-get install postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with _os_user() as user:
        folder = Path(tempfile.mkdtemp(prefix="aiw-pg-"))
        try:
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(folder, entry.pw_uid, entry.pw_gid)
            as_user = ["runuser", "-u", user, "--"] if user is not None else []
            password_file = folder / "password"
            password_file.write_text(PG_PASSWORD + "\n")
            if user is not None:
                os.chown(password_file, entry.pw_uid, entry.pw_gid)
            data = folder / "data"
            subprocess.run(
                [
                    *as_user,
                    str(bin_folder / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    PG_USER,
                    f"--pwfile={password_file}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            port = _free_port()
            options = f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off"
            subprocess.run(
                [
                    *as_user,
                    str(bin_folder / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(folder / "log"),
                    "-w",
                    "start",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            try:
                yield Cluster(bin_folder, port)
            finally:
                subprocess.run(
                    [*as_user, str(bin_folder / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                    capture_output=True,
                    timeout=120,
                    check=False,
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
