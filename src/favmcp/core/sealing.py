"""Authenticated encryption with the server secret, so stored secrets (a replayed key, an emailed code) are not
plain text in the database.

Several secrets may be in use at once while one is being rotated out: values are sealed with the newest and
opened with whichever of them sealed it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _key(secret_key: bytes, purpose: str) -> bytes:
    return hashlib.sha256(b"favmcp-seal\x1f" + purpose.encode() + b"\x1f" + secret_key).digest()


def seal(secret_key: bytes, purpose: str, value: Any) -> str:
    nonce = os.urandom(12)
    data = AESGCM(_key(secret_key, purpose)).encrypt(nonce, json.dumps(value).encode(), purpose.encode())
    return base64.urlsafe_b64encode(nonce + data).decode()


def unseal(secret_keys: bytes | Sequence[bytes], purpose: str, token: str) -> Any:
    """Open a sealed value with one secret or the first of several that fits; InvalidTag when none does."""
    return _open(secret_keys, purpose, token)[1]


def reseal(secret_keys: Sequence[bytes], purpose: str, token: str) -> str | None:
    """The value sealed anew with the newest secret (the first), or None when the newest already sealed it."""
    index, value = _open(secret_keys, purpose, token)
    return None if index == 0 else seal(secret_keys[0], purpose, value)


def _open(secret_keys: bytes | Sequence[bytes], purpose: str, token: str) -> tuple[int, Any]:
    keys = [secret_keys] if isinstance(secret_keys, bytes) else list(secret_keys)
    raw = base64.urlsafe_b64decode(token)
    for index, secret_key in enumerate(keys):
        try:
            plain = AESGCM(_key(secret_key, purpose)).decrypt(raw[:12], raw[12:], purpose.encode())
        except InvalidTag:
            continue
        return index, json.loads(plain)
    raise InvalidTag(f"no secret key opens this sealed {purpose} value")
