"""The composition root: the one list of domains. The registry, the table metadata and the migrations read it.

Adding a domain is a folder under `domains/` whose `tools.py` ends with `DOMAIN = Domain(...)`, plus one line
below. `registry/`, `db/`, `auth/` and `effects/` import nothing from `domains/`.

Importing this module loads nothing else: a stdio server keys its kept tool listing by DOMAINS before it loads one.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from favmcp.registry.domain import Domain, Platform
    from favmcp.registry.spec import ToolSpec

DOMAINS = (
    "onboarding",
    "workspace",
    "access",
    "platform",
    "members",
    "team",
    "approvals",
    "products",
    "promotions",
    "orders",
    "invoices",
    "payments",
    "subscriptions",
    "services",
    "bookings",
    "classes",
    "loyalty",
    "tiers",
    "content",
    "messaging",
    "campaigns",
    "webhooks",
    "reports",
)


def load_domain(name: str) -> Domain:
    from favmcp.registry.domain import Domain

    domain = importlib.import_module(f"favmcp.domains.{name}.tools").DOMAIN
    assert isinstance(domain, Domain) and domain.name == name, name
    return domain


@cache
def platform() -> Platform:
    from favmcp.registry.domain import Platform

    return Platform(tuple(load_domain(name) for name in DOMAINS))


def all_specs() -> list[ToolSpec]:
    return platform().specs


def metadata() -> MetaData:
    """Every table: the platform's own and those of every domain (importing a domain imports its models)."""
    from sqlmodel import SQLModel

    from favmcp.auth import models as _auth  # noqa: F401
    from favmcp.auth.oauth import models as _oauth  # noqa: F401
    from favmcp.db import tenancy as _tenancy  # noqa: F401
    from favmcp.effects import models as _effects  # noqa: F401
    from favmcp.registry import models as _registry  # noqa: F401

    platform()
    return SQLModel.metadata
