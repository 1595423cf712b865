"""The invoice and reminder emails: a subject, plain text and HTML, amounts in the workspace's locale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from favmcp.core.money import Money, format_money
from favmcp.db.tenancy import Workspace
from favmcp.domains.invoices.models import Invoice, InvoiceLine


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


def _date(day: date, locale: str) -> str:
    try:
        where = Locale.parse(locale, sep="-")
    except (UnknownLocaleError, ValueError):
        where = Locale("en")
    return format_date(day, format="long", locale=where)


@dataclass(frozen=True)
class _Figures:
    rows: list[tuple[str, str]]  # (label, amount) under the lines
    due: str


def _figures(invoice: Invoice, locale: str) -> _Figures:
    def money(minor: int) -> str:
        return format_money(Money(minor, invoice.currency), locale)

    rows = [("Subtotal", money(invoice.subtotal))]
    if invoice.discount:
        code = f" ({invoice.promotion_code})" if invoice.promotion_code else ""
        rows.insert(0, (f"Discount{code}", "-" + money(invoice.discount)))
    rows += [("Tax", money(invoice.tax)), ("Total", money(invoice.total))]
    if invoice.amount_credited:
        rows.append(("Credited", "-" + money(invoice.amount_credited)))
    if invoice.amount_paid:
        rows.append(("Paid", "-" + money(invoice.amount_paid)))
    rows.append(("Amount due", money(invoice.amount_remaining)))
    return _Figures(rows, _date(invoice.due_date, locale) if invoice.due_date else "on receipt")


def _line_text(line: InvoiceLine, locale: str) -> str:
    unit = format_money(Money(line.unit_amount, line.currency), locale)
    gross = format_money(Money(line.gross, line.currency), locale)
    return f"{line.description}: {line.quantity} x {unit} = {gross} (tax {line.tax_rate}%)"


def render(
    workspace: Workspace,
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    *,
    greeting_name: str,
    reminder_days_overdue: int | None = None,
    pay_url: str | None = None,
) -> Email:
    """The invoice as an email; a reminder (days overdue given) leads with what is owed and since when; with a
    payment link, it says where to pay online."""
    locale = workspace.locale
    figures = _figures(invoice, locale)
    due = format_money(Money(invoice.amount_remaining, invoice.currency), locale)
    if reminder_days_overdue is None:
        subject = f"Invoice {invoice.number} from {workspace.name}"
        opening = f"Here is invoice {invoice.number} from {workspace.name}, due {figures.due}."
    else:
        days = f"{reminder_days_overdue} day{'s' if reminder_days_overdue != 1 else ''}"
        subject = f"Reminder: invoice {invoice.number} from {workspace.name} is overdue"
        opening = (
            f"This is a friendly reminder that invoice {invoice.number} from {workspace.name} was due on "
            f"{figures.due} ({days} ago); {due} is still open."
        )
    text = [f"Hello {greeting_name},", "", opening, ""]
    text += [_line_text(line, locale) for line in lines]
    text += [""] + [f"{label}: {amount}" for label, amount in figures.rows]
    if invoice.memo:
        text += ["", invoice.memo]
    text += ["", f"Invoice {invoice.number}, due {figures.due}."]
    if pay_url:
        text += [f"Pay online: {pay_url}"]
    text += ["", workspace.name]
    html = _html(workspace, invoice, lines, greeting_name, opening, figures, pay_url)
    return Email(subject=subject, text="\n".join(text) + "\n", html=html)


def _html(
    workspace: Workspace,
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    greeting_name: str,
    opening: str,
    figures: _Figures,
    pay_url: str | None,
) -> str:
    locale = workspace.locale

    def money(minor: int) -> str:
        return escape(format_money(Money(minor, invoice.currency), locale))

    rows = "".join(
        f"<tr><td>{escape(line.description)}</td><td>{line.quantity}</td><td>{money(line.unit_amount)}</td>"
        f"<td>{escape(line.tax_rate)}%</td><td>{money(line.gross)}</td></tr>"
        for line in lines
    )
    sums = "".join(
        f'<tr><td colspan="4">{escape(label)}</td><td>{escape(amount)}</td></tr>' for label, amount in figures.rows
    )
    memo = f"<p>{escape(invoice.memo)}</p>" if invoice.memo else ""
    pay = f'<p><a href="{escape(pay_url, quote=True)}">Pay online</a></p>' if pay_url else ""
    return (
        f'<!doctype html><html lang="{escape(locale)}"><body>'
        f"<p>Hello {escape(greeting_name)},</p><p>{escape(opening)}</p>"
        f"<h2>Invoice {escape(invoice.number or '')}</h2>"
        "<table><thead><tr><th>Description</th><th>Qty</th><th>Unit price</th><th>Tax</th><th>Amount</th></tr>"
        f"</thead><tbody>{rows}</tbody><tfoot>{sums}</tfoot></table>"
        f"<p>Due: {escape(figures.due)}</p>{pay}{memo}<p>{escape(workspace.name)}</p></body></html>"
    )
