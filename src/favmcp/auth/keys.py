"""API keys: `fav_mcp_` and 40 random characters; only a SHA-256 of the whole key is kept."""

from __future__ import annotations

import hashlib

from favmcp.core.clock import Random

PREFIX = "fav_mcp_"


def mint(random: Random) -> str:
    return PREFIX + random.token(30)[:40]


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:12] + "…"


def mask(secret: str) -> str:
    return secret[:12] + "…" + secret[-4:]


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX) and len(value) >= len(PREFIX) + 32
