"""A draft's promotion code, through the promotions contract (redeem, release) only.

Repricing a draft gives its redemption back and redeems the code again for the new subtotal (a percentage follows
the lines); removing the code or voiding the invoice gives it back for good.
"""

from __future__ import annotations

from favmcp.core.money import Money
from favmcp.domains.invoices.models import Invoice
from favmcp.domains.promotions import service as promotions
from favmcp.registry.context import ToolContext


def target_of(invoice: Invoice) -> str:
    return f"invoice:{invoice.id}"


async def apply(ctx: ToolContext, invoice: Invoice, code: str | None, subtotal: Money) -> int:
    """Redeem `code` for the invoice (after releasing a redemption it holds); returns the discount in minor units."""
    await release(ctx, invoice)
    if code is None:
        return 0
    found = await promotions.redeem(
        ctx, code=code, member_id=invoice.member_id, subtotal=subtotal, target=target_of(invoice)
    )
    invoice.promotion_code, invoice.promotion_id = found.code, found.promotion_id
    return found.amount.minor


async def release(ctx: ToolContext, invoice: Invoice, *, keep_code: bool = False) -> None:
    """Give the invoice's redemption back; keep_code leaves the code on record (a voided invoice shows it)."""
    if invoice.promotion_code is not None:
        await promotions.release(ctx, target_of(invoice))
        if not keep_code:
            invoice.promotion_code = invoice.promotion_id = None
