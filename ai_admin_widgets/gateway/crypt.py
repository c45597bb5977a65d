"""The gateway's encryption keys: ``$AI_ADMIN_CRYPT_KEY``, read the way JupyterHub reads ``$JUPYTERHUB_CRYPT_KEY``.

The variable holds one key or several, ``;``-separated (empty items are skipped): the first
encrypts, every one decrypts, so a key is rotated by putting the new one first, running
``ai-admin gateway rotate-crypt-key``, then dropping the old one. Each key is 32 bytes, given
as 64 hex digits (``openssl rand -hex 32``), as 44 characters of URL-safe base64 (a Fernet key,
``Fernet.generate_key()``), or as 32 raw ASCII characters: the formats JupyterHub accepts
(``jupyterhub/crypto.py``). Encryption is cryptography's Fernet (AES-128-CBC with an
HMAC-SHA256 tag) through :class:`~cryptography.fernet.MultiFernet`.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, MultiFernet

from ..models import AIAdminError

__all__ = ["CRYPT_KEY_ENV", "CryptKeyError", "crypt_keys", "multi_fernet", "parse_crypt_keys"]

CRYPT_KEY_ENV = "AI_ADMIN_CRYPT_KEY"
KEY_BYTES = 32


class CryptKeyError(AIAdminError):
    """``$AI_ADMIN_CRYPT_KEY`` is missing or malformed, or its keys decrypt nothing stored; one line says what to do."""


def _key_bytes(text: str, position: int) -> bytes:
    """One key as its 32 bytes; ``position`` (1-based) names it in the error, never its value."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raw = b""
    if len(raw) == 64:
        try:
            return binascii.a2b_hex(raw)
        except (binascii.Error, ValueError):
            pass
    elif len(raw) == 44:
        try:
            decoded = base64.urlsafe_b64decode(raw)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) == KEY_BYTES:
            return decoded
    elif len(raw) == KEY_BYTES:
        return raw
    raise CryptKeyError(
        f"{CRYPT_KEY_ENV}: key {position} is not a 32-byte key (64 hex digits, 44 characters of URL-safe base64, "
        "or 32 ASCII characters); make one with `openssl rand -hex 32`."
    )


def parse_crypt_keys(text: str) -> list[bytes]:
    """The 32-byte keys in ``text`` (``;``-separated, blanks and surrounding spaces ignored), first one first.

    Raises:
        CryptKeyError: a key is not in one of the accepted formats (named by its position, never shown).
    """
    items = [item.strip() for item in text.split(";")]
    return [_key_bytes(item, position) for position, item in enumerate((item for item in items if item), start=1)]


def crypt_keys(environ: Mapping[str, str] | None = None) -> list[bytes]:
    """The keys of ``$AI_ADMIN_CRYPT_KEY`` (in ``environ``, default ``os.environ``).

    Raises:
        CryptKeyError: it is not set or holds no key, or a key is malformed.
    """
    text = (os.environ if environ is None else environ).get(CRYPT_KEY_ENV, "")
    keys = parse_crypt_keys(text)
    if not keys:
        raise CryptKeyError(
            f"{CRYPT_KEY_ENV} is not set: the gateway's database keeps the API keys encrypted with it. Set it in the "
            "service's environment to a key made with `openssl rand -hex 32` (and keep it: without it the saved keys "
            "cannot be read)."
        )
    return keys


def multi_fernet(keys: list[bytes]) -> MultiFernet:
    """A MultiFernet that encrypts with ``keys[0]`` and decrypts with any of ``keys``."""
    return MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in keys])
