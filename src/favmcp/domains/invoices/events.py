"""What happens to invoices, for other domains to react to (subscriptions renew on invoice.paid)."""

from __future__ import annotations

from favmcp.core.events import DomainEvent


class InvoiceFinalized(DomainEvent):
    name = "invoice.finalized"

    invoice_id: str
    member_id: str


class InvoicePaid(DomainEvent):
    name = "invoice.paid"

    invoice_id: str
    member_id: str


class InvoiceVoided(DomainEvent):
    name = "invoice.voided"

    invoice_id: str
    member_id: str


class InvoiceMarkedUncollectible(DomainEvent):
    name = "invoice.uncollectible"

    invoice_id: str
    member_id: str


class CreditNoteCreated(DomainEvent):
    name = "invoice.credit_note_created"

    invoice_id: str
    credit_note_id: str


EVENTS: list[type[DomainEvent]] = [
    InvoiceFinalized,
    InvoicePaid,
    InvoiceVoided,
    InvoiceMarkedUncollectible,
    CreditNoteCreated,
]
