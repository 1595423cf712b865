"""The base of every table, and the column helpers the tables share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, TypeDecorator
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Dialect
from sqlmodel import Column, Field, SQLModel
from sqlmodel._compat import SQLModelConfig  # the type SQLModel gives model_config; sqlmodel exports none


class Table(SQLModel):
    """The base of every table. Its pydantic validators and serializers are built on first use, as Schema's are:
    rows are written and read through SQLAlchemy, so a process that answers one tool (`favmcp call`) never builds
    them for the 72 tables it imports, and a server's start does not wait for them."""

    model_config = SQLModelConfig(defer_build=True)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns an aware datetime, also from SQLite which keeps none."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc_field(*, nullable: bool = False, index: bool = False, default: Any = ...) -> Any:
    if default is ...:
        default = None if nullable else ...
    return Field(default=default, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def workspace_fk(*, nullable: bool = False, index: bool = True) -> Any:
    """Every table carries workspace_id; rows made before a workspace exists (signup) leave it empty."""
    return Field(
        default=None if nullable else ...,
        foreign_key="workspaces.id",
        index=index,
        nullable=nullable,
        max_length=40,
        ondelete="CASCADE",
    )


def enum_field(enum_cls: type[Any], default: Any = ..., *, index: bool = False, nullable: bool = False) -> Any:
    """Enums are stored as short strings (no native Postgres types), so adding a state is a no-op migration."""
    return Field(
        default=default,
        sa_column=Column(
            SAEnum(enum_cls, native_enum=False, create_constraint=False, length=20),
            nullable=nullable,
            index=index,
        ),
    )


def amount_field(*, nullable: bool = False, default: Any = ...) -> Any:
    """An amount in minor units: BIGINT, so a total past 2**31 (21 million EUR, 2 billion JPY) still fits."""
    if default is ...:
        default = None if nullable else ...
    return Field(default=default, sa_column=Column(BigInteger, nullable=nullable))
