"""subscriptions

Revision ID: 9782337cc6f8
Revises: 423e5f89b865
Create Date: 2026-11-26 16:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

import favmcp.db.types

revision = "9782337cc6f8"
down_revision = "423e5f89b865"
branch_labels = None
depends_on = None

TABLES = ("credit_entries", "credit_lots", "subscription_periods", "subscriptions", "subscription_plans")


def upgrade() -> None:
    op.create_table(
        "subscription_plans",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.Enum("membership", "pack", name="plankind", native_enum=False, length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "status", sa.Enum("active", "archived", name="planstatus", native_enum=False, length=20), nullable=False
        ),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_rate", sa.String(length=12), nullable=False),
        sa.Column("interval", sa.String(length=10), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=True),
        sa.Column("credits", sa.Integer(), nullable=True),
        sa.Column("validity_days", sa.Integer(), nullable=True),
        sa.Column("trial_days", sa.Integer(), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscription_plans", schema=None) as batch_op:
        batch_op.create_index("ix_subscription_plans_workspace_keyset", ["workspace_id", "id"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.Enum("membership", "pack", name="plankind", native_enum=False, length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "incomplete",
                "trialing",
                "active",
                "past_due",
                "paused",
                "cancelled",
                name="subscriptionstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_rate", sa.String(length=12), nullable=False),
        sa.Column("interval", sa.String(length=10), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=True),
        sa.Column("credits", sa.Integer(), nullable=True),
        sa.Column("validity_days", sa.Integer(), nullable=True),
        sa.Column("anchor_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("period_index", sa.Integer(), nullable=False),
        sa.Column("current_period_start", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("current_period_end", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("trial_end", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("pending_plan_id", sa.String(length=40), nullable=True),
        sa.Column("pause_reason", sa.String(length=20), nullable=True),
        sa.Column("paused_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resume_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancellation_reason", sa.String(length=40), nullable=True),
        sa.Column("latest_invoice_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_subscriptions_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index("ix_subscriptions_workspace_member", ["workspace_id", "member_id"], unique=False)
        batch_op.create_index(
            "ix_subscriptions_workspace_plan_status", ["workspace_id", "plan_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_subscriptions_workspace_status_end", ["workspace_id", "status", "current_period_end"], unique=False
        )

    op.create_table(
        "subscription_periods",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("period_start", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("paid_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "period_start", name="uq_subscription_periods_start"),
    )
    with op.batch_alter_table("subscription_periods", schema=None) as batch_op:
        batch_op.create_index("ix_subscription_periods_workspace_invoice", ["workspace_id", "invoice_id"], unique=False)
        batch_op.create_index("ix_subscription_periods_workspace_member", ["workspace_id", "member_id"], unique=False)

    op.create_table(
        "credit_lots",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("credit_lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_lots_subscription_id"), ["subscription_id"], unique=False)
        batch_op.create_index(
            "ix_credit_lots_workspace_member", ["workspace_id", "member_id", "expires_at"], unique=False
        )

    op.create_table(
        "credit_entries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("lot_id", sa.String(length=40), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "grant",
                "reserve",
                "release",
                "consume",
                "expire",
                "forfeit",
                name="creditkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("booking_ref", sa.String(length=80), nullable=True),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_credit_entries_workspace_lot", ["workspace_id", "lot_id"], unique=False)
        batch_op.create_index("ix_credit_entries_workspace_member", ["workspace_id", "member_id"], unique=False)
        batch_op.create_index(
            "ix_credit_entries_workspace_subscription", ["workspace_id", "subscription_id"], unique=False
        )
        batch_op.create_index(
            "uq_credit_entries_booking_kind",
            ["workspace_id", "booking_ref", "kind"],
            unique=True,
            sqlite_where=sa.text("kind IN ('reserve', 'release', 'consume')"),
            postgresql_where=sa.text("kind IN ('reserve', 'release', 'consume')"),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
