"""The invoice lifecycle as data. Events carry the member, which the lifecycle's (id, from, to) cannot give, so
the service emits them after each move."""

from __future__ import annotations

from favmcp.core.lifecycle import Lifecycle
from favmcp.domains.invoices.models import InvoiceStatus

PAID_BY = "record_payment (or create_credit_note for the rest)"

INVOICE_LIFECYCLE = Lifecycle(
    entity="invoice",
    states=InvoiceStatus,
    transitions={
        InvoiceStatus.draft: {InvoiceStatus.open: "finalize_invoice"},
        InvoiceStatus.open: {
            InvoiceStatus.paid: PAID_BY,
            InvoiceStatus.void: "void_invoice",
            InvoiceStatus.uncollectible: "mark_invoice_uncollectible",
        },
        InvoiceStatus.uncollectible: {InvoiceStatus.paid: PAID_BY, InvoiceStatus.void: "void_invoice"},
    },
    events={},
)


def allowed_next(status: str) -> list[str]:
    """The states an invoice in `status` may move to, for refusals."""
    return [s.value for s in INVOICE_LIFECYCLE.allowed_from(InvoiceStatus(status))]
