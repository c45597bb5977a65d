"""``ai-admin gateway upgrade-db`` and ``ai-admin gateway rotate-crypt-key``: each returns its one line of report.

Both find the database as ``serve`` does (``--db-url``, ``$AI_ADMIN_GATEWAY_DB_URL``, else
``sqlite:///<home>/ai-gateway.sqlite``) and raise an :class:`~ai_admin_widgets.models.AIAdminError`
with one line to show when they cannot do their work.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["rotate_crypt_key_command", "upgrade_db_command"]


def _engine(home: str | os.PathLike[str] | None, option: str | None):  # -> Engine
    from ..store import default_home
    from .db import db_url, make_engine

    folder = Path(home).expanduser() if home else default_home()
    return make_engine(db_url(option, folder))


def upgrade_db_command(home: str | os.PathLike[str] | None, option: str | None) -> str:
    """Apply the migrations the database lacks; returns what was done.

    Raises:
        SchemaBehind: the database was made by a newer version.
        GatewayDatabaseError: the URL is unusable, or the database unreachable or refused the change.
    """
    from .db import safe_url, upgrade

    engine = _engine(home, option)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    where = safe_url(engine.url)
    if before == after:
        return f"The gateway's database {where} is already at schema {after}; nothing to do."
    if before is None:
        return f"Made the gateway's database {where} (schema {after})."
    return f"Upgraded the gateway's database {where} from schema {before} to {after}."


def rotate_crypt_key_command(home: str | os.PathLike[str] | None, option: str | None) -> str:
    """Re-encrypt every secret with the first key of ``$AI_ADMIN_CRYPT_KEY``; returns what was done.

    Raises:
        CryptKeyError: no key, a malformed one, or a secret no key decrypts (then nothing changed).
        SchemaBehind: the schema is not this version's (run upgrade-db first).
        GatewayDatabaseError: the URL is unusable or the database unreachable.
    """
    from .crypt import CRYPT_KEY_ENV, crypt_keys, multi_fernet
    from .db import check_schema, safe_url
    from .dbkeyring import rotate_crypt_key

    keys = crypt_keys()
    engine = _engine(home, option)
    try:
        check_schema(engine)
        count = rotate_crypt_key(engine, multi_fernet(keys))
    finally:
        engine.dispose()
    others = (
        f" The other {len(keys) - 1} key(s) of {CRYPT_KEY_ENV} may now be removed from it." if len(keys) > 1 else ""
    )
    return f"Re-encrypted {count} secret(s) in the gateway's database {safe_url(engine.url)} with the first key of {CRYPT_KEY_ENV}.{others}"
