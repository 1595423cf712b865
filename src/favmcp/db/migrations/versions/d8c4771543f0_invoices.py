"""invoices

Revision ID: d8c4771543f0
Revises: c9c10b86cd90
Create Date: 2026-11-26 16:50:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import favmcp.db.types

revision = "d8c4771543f0"
down_revision = "c9c10b86cd90"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft", "open", "paid", "void", "uncollectible", name="invoicestatus", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("amount_credited", sa.BigInteger(), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        sa.Column("amount_remaining", sa.BigInteger(), nullable=False),
        sa.Column("refund_due", sa.BigInteger(), nullable=False),
        sa.Column("promotion_code", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("promotion_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("memo", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("bill_to_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("bill_to_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finalized_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paid_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("voided_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("marked_uncollectible_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_credited <= total", name="ck_invoices_credited_within_total"),
        sa.CheckConstraint("amount_refunded <= amount_paid", name="ck_invoices_refunded_within_paid"),
        sa.CheckConstraint("amount_remaining >= 0", name="ck_invoices_remaining_not_negative"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_invoices_member_id"), "invoices", ["member_id"], unique=False)
    op.create_index(op.f("ix_invoices_workspace_id"), "invoices", ["workspace_id"], unique=False)
    op.create_index(
        "ix_invoices_workspace_status_due", "invoices", ["workspace_id", "status", "due_date"], unique=False
    )
    op.create_index("uq_invoices_workspace_number", "invoices", ["workspace_id", "number"], unique=True)
    op.create_table(
        "invoice_credit_notes",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("invoice_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.BigInteger(), nullable=False),
        sa.Column("refund_due", sa.BigInteger(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_by_user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_invoice_credit_notes_invoice_id"), "invoice_credit_notes", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_invoice_credit_notes_member_id"), "invoice_credit_notes", ["member_id"], unique=False)
    op.create_index(
        op.f("ix_invoice_credit_notes_workspace_id"), "invoice_credit_notes", ["workspace_id"], unique=False
    )
    op.create_table(
        "invoice_lines",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("invoice_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("service_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("plan_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_invoice_lines_invoice_position", "invoice_lines", ["invoice_id", "position"], unique=False)
    op.create_index(op.f("ix_invoice_lines_workspace_id"), "invoice_lines", ["workspace_id"], unique=False)
    op.create_table(
        "invoice_reminders",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("invoice_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("sent_by_user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("sent_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_invoice_reminders_invoice_sent", "invoice_reminders", ["invoice_id", "sent_at"], unique=False)
    op.create_index(op.f("ix_invoice_reminders_member_id"), "invoice_reminders", ["member_id"], unique=False)
    op.create_index(op.f("ix_invoice_reminders_workspace_id"), "invoice_reminders", ["workspace_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_invoice_reminders_workspace_id"), table_name="invoice_reminders")
    op.drop_index(op.f("ix_invoice_reminders_member_id"), table_name="invoice_reminders")
    op.drop_index("ix_invoice_reminders_invoice_sent", table_name="invoice_reminders")
    op.drop_table("invoice_reminders")
    op.drop_index(op.f("ix_invoice_lines_workspace_id"), table_name="invoice_lines")
    op.drop_index("ix_invoice_lines_invoice_position", table_name="invoice_lines")
    op.drop_table("invoice_lines")
    op.drop_index(op.f("ix_invoice_credit_notes_workspace_id"), table_name="invoice_credit_notes")
    op.drop_index(op.f("ix_invoice_credit_notes_member_id"), table_name="invoice_credit_notes")
    op.drop_index(op.f("ix_invoice_credit_notes_invoice_id"), table_name="invoice_credit_notes")
    op.drop_table("invoice_credit_notes")
    op.drop_index("uq_invoices_workspace_number", table_name="invoices")
    op.drop_index("ix_invoices_workspace_status_due", table_name="invoices")
    op.drop_index(op.f("ix_invoices_workspace_id"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_member_id"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("invoice_counters")
