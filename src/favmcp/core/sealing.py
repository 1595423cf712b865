"""Authenticated encryption with the server secret, so stored secrets (a replayed key) are not plain text."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _key(secret_key: bytes, purpose: str) -> bytes:
    return hashlib.sha256(b"favmcp-seal\x1f" + purpose.encode() + b"\x1f" + secret_key).digest()


def seal(secret_key: bytes, purpose: str, value: Any) -> str:
    nonce = os.urandom(12)
    data = AESGCM(_key(secret_key, purpose)).encrypt(nonce, json.dumps(value).encode(), purpose.encode())
    return base64.urlsafe_b64encode(nonce + data).decode()


def unseal(secret_key: bytes, purpose: str, token: str) -> Any:
    raw = base64.urlsafe_b64decode(token)
    return json.loads(AESGCM(_key(secret_key, purpose)).decrypt(raw[:12], raw[12:], purpose.encode()))
