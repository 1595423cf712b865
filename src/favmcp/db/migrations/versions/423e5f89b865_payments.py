"""payments: payments, refunds, payment links and processed provider events

Revision ID: 423e5f89b865
Revises: e7f7af4c3eaa
Create Date: 2026-11-26 16:50:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import favmcp.db.types

revision = "423e5f89b865"
down_revision = "e7f7af4c3eaa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("invoice_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column(
            "method",
            sa.Enum(
                "cash", "card_terminal", "bank_transfer", "online", name="paymentmethod", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "succeeded",
                "failed",
                "partially_refunded",
                "refunded",
                name="paymentstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("amount_applied", sa.BigInteger(), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        sa.Column("amount_reserved", sa.BigInteger(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("payer_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("provider_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("provider_payment_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("paid_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
        sa.CheckConstraint("amount_applied >= 0 AND amount_applied <= amount", name="ck_payments_applied"),
        sa.CheckConstraint(
            "amount_refunded >= 0 AND amount_reserved >= 0 AND amount_refunded + amount_reserved <= amount",
            name="ck_payments_refundable",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_payments_invoice_id"), "payments", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_payments_member_id"), "payments", ["member_id"], unique=False)
    op.create_index(op.f("ix_payments_order_id"), "payments", ["order_id"], unique=False)
    op.create_index(op.f("ix_payments_status"), "payments", ["status"], unique=False)
    op.create_index(op.f("ix_payments_workspace_id"), "payments", ["workspace_id"], unique=False)
    op.create_index("ix_payments_workspace_keyset", "payments", ["workspace_id", "id"], unique=False)
    op.create_index(
        "uq_payments_provider_ref",
        "payments",
        ["workspace_id", "provider_ref"],
        unique=True,
        sqlite_where=sa.text("provider_ref IS NOT NULL"),
        postgresql_where=sa.text("provider_ref IS NOT NULL"),
    )
    op.create_table(
        "payment_refunds",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("payment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("invoice_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column(
            "status",
            sa.Enum("pending", "succeeded", "failed", name="refundstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("provider_refund_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("outbox_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("failure_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_payment_refunds_amount_positive"),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_payment_refunds_member_id"), "payment_refunds", ["member_id"], unique=False)
    op.create_index(op.f("ix_payment_refunds_outbox_id"), "payment_refunds", ["outbox_id"], unique=False)
    op.create_index(op.f("ix_payment_refunds_payment_id"), "payment_refunds", ["payment_id"], unique=False)
    op.create_index(op.f("ix_payment_refunds_status"), "payment_refunds", ["status"], unique=False)
    op.create_index(op.f("ix_payment_refunds_workspace_id"), "payment_refunds", ["workspace_id"], unique=False)
    op.create_index("ix_payment_refunds_workspace_keyset", "payment_refunds", ["workspace_id", "id"], unique=False)
    op.create_index(
        "uq_payment_refunds_provider_id",
        "payment_refunds",
        ["workspace_id", "provider_refund_id"],
        unique=True,
        sqlite_where=sa.text("provider_refund_id IS NOT NULL"),
        postgresql_where=sa.text("provider_refund_id IS NOT NULL"),
    )
    op.create_table(
        "payment_links",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("invoice_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column(
            "status",
            sa.Enum("open", "complete", "expired", name="linkstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("provider_session_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("payment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_payment_links_invoice_id"), "payment_links", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_payment_links_member_id"), "payment_links", ["member_id"], unique=False)
    op.create_index(op.f("ix_payment_links_order_id"), "payment_links", ["order_id"], unique=False)
    op.create_index(op.f("ix_payment_links_status"), "payment_links", ["status"], unique=False)
    op.create_index(op.f("ix_payment_links_workspace_id"), "payment_links", ["workspace_id"], unique=False)
    op.create_index("ix_payment_links_workspace_keyset", "payment_links", ["workspace_id", "id"], unique=False)
    op.create_index("uq_payment_links_session", "payment_links", ["workspace_id", "provider_session_id"], unique=True)
    op.create_table(
        "payment_provider_events",
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "event_id"),
    )


def downgrade() -> None:
    op.drop_table("payment_provider_events")
    op.drop_table("payment_links")
    op.drop_table("payment_refunds")
    op.drop_table("payments")
