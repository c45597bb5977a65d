"""A keyring backend over the gateway's database: the secrets in ``ai_gateway_secrets``, encrypted.

The store keeps speaking keyring's interface (get, set, delete); :class:`DatabaseKeyring` answers it
from the database, each password a Fernet token under the keys of ``$AI_ADMIN_CRYPT_KEY``
(:mod:`~ai_admin_widgets.gateway.crypt`): encrypted with the first, decrypted with any. So several
gateway replicas on one PostgreSQL share the keys, and the database never holds one in clear.

Beside the store's entries the table holds one check entry (service :data:`CHECK_SERVICE`), written
under the first key when the table is first opened, so that keys that decrypt nothing stored are
refused at start even before anything is saved (:meth:`DatabaseKeyring.check_keys`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import InvalidToken, MultiFernet
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError
from sqlalchemy.engine import Connection, Engine

from .crypt import CRYPT_KEY_ENV, CryptKeyError, crypt_keys, multi_fernet
from .db import check_schema, connected, db_url, make_engine, safe_url, secrets_table

__all__ = ["CHECK_SERVICE", "DatabaseKeyring", "database_keyring", "rotate_crypt_key", "uses_database"]

#: The service and user name of the check entry, and what it holds (no secret: it only proves a key fits).
CHECK_SERVICE, CHECK_USERNAME, CHECK_TEXT = "ai-admin-widgets-crypt-check", "check", "ai-admin-widgets crypt check"

log = logging.getLogger("ai_admin_widgets.gateway")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class DatabaseKeyring(KeyringBackend):
    """keyring's interface over ``ai_gateway_secrets``, encrypting with ``fernet``.

    Never chosen by keyring on its own (its priority raises, so keyring finds it not viable): the
    gateway opens it with an engine and the keys (:func:`database_keyring`).

    Args:
        engine: the gateway's database, at the current schema.
        fernet: encrypts with the first key of ``$AI_ADMIN_CRYPT_KEY``, decrypts with any.
    """

    name = "DatabaseKeyring (the gateway's database, encrypted with AI_ADMIN_CRYPT_KEY)"

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError(
            "opened by ai-admin gateway serve with its database and AI_ADMIN_CRYPT_KEY, never by keyring"
        )

    def __init__(self, engine: Engine, fernet: MultiFernet) -> None:
        super().__init__()
        self.engine = engine
        self._fernet = fernet

    def __str__(self) -> str:
        return f"{self.name} at {safe_url(self.engine.url)}"

    def __repr__(self) -> str:
        return f"<DatabaseKeyring {safe_url(self.engine.url)}>"

    def get_password(self, service: str, username: str) -> str | None:
        """The password, decrypted; None when there is none.

        Raises:
            CryptKeyError: it is there but no key of ``$AI_ADMIN_CRYPT_KEY`` decrypts it.
            GatewayDatabaseError: the database cannot be reached.
        """
        with connected(self.engine) as connection:
            token = connection.execute(
                sa.select(secrets_table.c.ciphertext).where(
                    secrets_table.c.service == service, secrets_table.c.username == username
                )
            ).scalar_one_or_none()
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise CryptKeyError(
                f"A secret in the gateway's database cannot be decrypted with {CRYPT_KEY_ENV}: add the key it was "
                "encrypted with (after the first, ';'-separated)."
            ) from None

    def set_password(self, service: str, username: str, password: str) -> None:
        """Store ``password`` encrypted with the first key, replacing any under the same names.

        Raises:
            GatewayDatabaseError: the database cannot be reached or refused the write.
        """
        token = self._fernet.encrypt(password.encode("utf-8")).decode("ascii")
        with connected(self.engine, write=True) as connection:
            _upsert(connection, service, username, token)

    def delete_password(self, service: str, username: str) -> None:
        """Delete the password.

        Raises:
            PasswordDeleteError: there is none under these names (keyring's convention).
            GatewayDatabaseError: the database cannot be reached.
        """
        with connected(self.engine, write=True) as connection:
            deleted = connection.execute(
                sa.delete(secrets_table).where(secrets_table.c.service == service, secrets_table.c.username == username)
            ).rowcount
        if not deleted:
            raise PasswordDeleteError("no such password")

    def check_keys(self) -> int:
        """Check that the keys decrypt what is stored; returns how many entries they decrypt.

        Writes the check entry first when the table has no entry at all (a new database). Entries that no
        key decrypts, beside some that one does, are logged (a warning) and left: they will read as failures.

        Raises:
            CryptKeyError: the table holds entries and no key decrypts any of them.
            GatewayDatabaseError: the database cannot be reached.
        """
        with connected(self.engine, write=True) as connection:
            tokens = connection.execute(sa.select(secrets_table.c.ciphertext)).scalars().all()
            if not tokens:
                token = self._fernet.encrypt(CHECK_TEXT.encode("utf-8")).decode("ascii")
                _upsert(connection, CHECK_SERVICE, CHECK_USERNAME, token)
                return 1
        decrypted = sum(1 for token in tokens if _decrypts(self._fernet, token))
        if not decrypted:
            raise CryptKeyError(
                f"{CRYPT_KEY_ENV} decrypts none of the {len(tokens)} secrets in the gateway's database "
                f"{safe_url(self.engine.url)}: they were encrypted with another key. Set it to that key (a new key may "
                "come first, ';'-separated, then run ai-admin gateway rotate-crypt-key)."
            )
        if decrypted < len(tokens):
            log.warning(
                "%s decrypts %d of the %d secrets in the gateway's database; the others were encrypted with a key it "
                "no longer holds and cannot be read.",
                CRYPT_KEY_ENV,
                decrypted,
                len(tokens),
            )
        return decrypted


def _decrypts(fernet: MultiFernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        return False
    return True


def _upsert(connection: Connection, service: str, username: str, token: str) -> None:
    """Insert or replace one entry (an atomic upsert on both SQLite and PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    values = {"service": service, "username": username, "ciphertext": token, "updated_at": _now()}
    replace = {"ciphertext": token, "updated_at": values["updated_at"]}
    keys = ["service", "username"]
    if connection.dialect.name == "postgresql":
        connection.execute(
            postgresql.insert(secrets_table).values(**values).on_conflict_do_update(index_elements=keys, set_=replace)
        )
    else:
        connection.execute(
            sqlite.insert(secrets_table).values(**values).on_conflict_do_update(index_elements=keys, set_=replace)
        )


def uses_database(option: str | None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``serve`` keeps its keys in the database: ``--db-url``, ``$AI_ADMIN_GATEWAY_DB_URL`` or ``$AI_ADMIN_CRYPT_KEY`` given."""
    from .db import DB_URL_ENV

    environ = os.environ if environ is None else environ
    return bool((option or "").strip() or environ.get(DB_URL_ENV, "").strip() or environ.get(CRYPT_KEY_ENV, "").strip())


def database_keyring(home: Path, option: str | None = None, *, engine: Engine | None = None) -> DatabaseKeyring:
    """The gateway's keyring over its database, checked: keys set and well-formed, schema current, keys fit.

    Args:
        home: the gateway's folder (the default SQLite file's place).
        option: ``--db-url``, else ``$AI_ADMIN_GATEWAY_DB_URL``, else ``sqlite:///<home>/ai-gateway.sqlite``.
        engine: the database already opened (``option`` is then not used).
    Raises:
        CryptKeyError: ``$AI_ADMIN_CRYPT_KEY`` is missing or malformed, or decrypts nothing stored.
        SchemaBehind: the schema is missing or behind (run ``ai-admin gateway upgrade-db``), or newer.
        GatewayDatabaseError: the URL is unusable or the database unreachable.
        StoreError: ``home`` cannot be made private (:func:`~ai_admin_widgets.gateway.keys.private_home`).
    """
    from .keys import private_home, refuse_open_home

    refuse_open_home(home)
    keys = crypt_keys()
    if engine is None:
        engine = make_engine(db_url(option, home))
    check_schema(engine)
    backend = DatabaseKeyring(engine, multi_fernet(keys))
    backend.check_keys()
    private_home(home)  # last: a start refused for another reason leaves the folder as it was
    return backend


def rotate_crypt_key(engine: Engine, fernet: MultiFernet) -> int:
    """Re-encrypt every entry with the first key, all in one transaction; returns how many.

    Afterwards the other keys may be dropped from ``$AI_ADMIN_CRYPT_KEY``. On PostgreSQL the rows are
    locked (``FOR UPDATE``) so a replica's write waits for the rotation rather than being lost.

    Raises:
        CryptKeyError: an entry decrypts with none of the keys; nothing was changed.
        GatewayDatabaseError: the database cannot be reached.
    """
    with connected(engine, write=True) as connection:
        query = sa.select(secrets_table.c.service, secrets_table.c.username, secrets_table.c.ciphertext)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        rows = connection.execute(query).all()
        rotated: list[tuple[str, str, str]] = []
        for service, username, token in rows:
            try:
                rotated.append((service, username, fernet.rotate(token.encode("ascii")).decode("ascii")))
            except (InvalidToken, UnicodeEncodeError):
                pass
        if len(rotated) < len(rows):
            raise CryptKeyError(
                f"{len(rows) - len(rotated)} of the {len(rows)} secrets in the gateway's database decrypt with no key of "
                f"{CRYPT_KEY_ENV}, so nothing was re-encrypted: add the key they were encrypted with (after the first, "
                "';'-separated) and run it again."
            )
        now = _now()
        for service, username, token in rotated:
            connection.execute(
                sa.update(secrets_table)
                .where(secrets_table.c.service == service, secrets_table.c.username == username)
                .values(ciphertext=token, updated_at=now)
            )
    return len(rotated)
