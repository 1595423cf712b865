"""Declared links to a customer: every table that points at a member says what merge, erase and export do.

Each domain declares its links (see `favmcp.registry.domain.Domain.member_links`); the members domain reads
the declarations of all domains and never needs to know the tables. A new domain cannot forget a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlmodel import SQLModel


class OnMerge(StrEnum):
    move = "move"  # re-point the rows at the survivor
    move_set = "move_set"  # rows are a set per member (tags): move the ones the survivor lacks, drop the rest
    keep = "keep"  # the rows stay with the merged (absorbed) id


class OnErase(StrEnum):
    delete = "delete"  # personal records: gone
    pseudonymise = "pseudonymise"  # financial records: kept, personal fields cleared, the member id stays
    keep = "keep"  # records without personal data, kept as they are


@dataclass(frozen=True)
class MemberLink:
    label: str  # the name in previews and exports: "notes", "invoices"
    model: type[SQLModel]
    column: str  # the column holding the member id
    on_merge: OnMerge
    on_erase: OnErase
    # Fields cleared (set to the given value) when erase pseudonymises the rows.
    personal_fields: dict[str, Any] = field(default_factory=dict)
    # How a row appears in export_member_data (customer-written text wrapped as untrusted); None: not exported.
    export: Callable[[Any], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.on_erase is OnErase.pseudonymise and not self.personal_fields:
            raise ValueError(f"link {self.label}: pseudonymise needs the personal fields it clears")


def export_row(row: Any) -> dict[str, Any]:
    """A row as export_member_data shows it, for tables without customer-written text: its fields but the
    workspace id."""
    return {k: v for k, v in row.model_dump(mode="json").items() if k != "workspace_id"}
