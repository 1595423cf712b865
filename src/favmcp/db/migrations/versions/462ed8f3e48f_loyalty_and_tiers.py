"""loyalty and tiers

Revision ID: 462ed8f3e48f
Revises: 37b614291f3d
Create Date: 2026-11-26 22:19:47.561496
"""

import sqlalchemy as sa
from alembic import op

import favmcp.db.types

TABLES = (
    "loyalty_vouchers",
    "loyalty_rewards",
    "loyalty_lots",
    "loyalty_entries",
    "loyalty_accounts",
    "membership_tiers",
    "loyalty_programs",
)

revision = "462ed8f3e48f"
down_revision = "37b614291f3d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_programs",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("earn_rules", sa.JSON(), nullable=False),
        sa.Column("expiry_days", sa.Integer(), nullable=True),
        sa.Column("min_redeem_points", sa.Integer(), nullable=False),
        sa.Column(
            "tier_basis",
            sa.Enum("points_12_months", "lifetime_spend", name="tierbasis", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("expiry_days IS NULL OR expiry_days > 0", name="ck_loyalty_programs_expiry"),
        sa.CheckConstraint("min_redeem_points > 0", name="ck_loyalty_programs_min_redeem"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id"),
    )
    op.create_table(
        "membership_tiers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("earn_multiplier", sa.String(length=12), nullable=False),
        sa.Column("discount_percent", sa.String(length=12), nullable=True),
        sa.Column("benefits", sa.String(length=2000), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("threshold >= 0", name="ck_membership_tiers_threshold"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "threshold", name="uq_membership_tiers_threshold"),
    )
    with op.batch_alter_table("membership_tiers", schema=None) as batch_op:
        batch_op.create_index("uq_membership_tiers_name", ["workspace_id", "name"], unique=True)

    op.create_table(
        "loyalty_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("tier_id", sa.String(length=40), nullable=True),
        sa.Column("manual_tier_id", sa.String(length=40), nullable=True),
        sa.Column("tier_since", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_loyalty_accounts_balance_not_negative"),
        sa.ForeignKeyConstraint(
            ["manual_tier_id"],
            ["membership_tiers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tier_id"],
            ["membership_tiers.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "member_id", name="uq_loyalty_accounts_member"),
    )
    op.create_table(
        "loyalty_entries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("earn", "redeem", "adjust", "expire", "reversal", name="entrykind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("lot_id", sa.String(length=40), nullable=True),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("shortfall", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("shortfall >= 0", name="ck_loyalty_entries_shortfall"),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("loyalty_entries", schema=None) as batch_op:
        batch_op.create_index("ix_loyalty_entries_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index("ix_loyalty_entries_workspace_member", ["workspace_id", "member_id", "id"], unique=False)
        batch_op.create_index(
            "uq_loyalty_entries_kind_source",
            ["workspace_id", "kind", "source"],
            unique=True,
            sqlite_where=sa.text("source IS NOT NULL"),
            postgresql_where=sa.text("source IS NOT NULL"),
        )

    op.create_table(
        "loyalty_lots",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("remaining >= 0 AND remaining <= points", name="ck_loyalty_lots_remaining"),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("loyalty_lots", schema=None) as batch_op:
        batch_op.create_index("ix_loyalty_lots_expiry", ["workspace_id", "expires_at"], unique=False)
        batch_op.create_index(
            "ix_loyalty_lots_member_expiry", ["workspace_id", "member_id", "expires_at"], unique=False
        )

    op.create_table(
        "loyalty_rewards",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column(
            "kind",
            sa.Enum("free_service", "free_product", "discount", name="rewardkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("service_id", sa.String(length=40), nullable=True),
        sa.Column("product_id", sa.String(length=40), nullable=True),
        sa.Column("percent_off", sa.String(length=12), nullable=True),
        sa.Column("amount_off", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("points_cost", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("voucher_valid_days", sa.Integer(), nullable=True),
        sa.Column(
            "status", sa.Enum("active", "archived", name="rewardstatus", native_enum=False, length=20), nullable=False
        ),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("points_cost > 0", name="ck_loyalty_rewards_cost"),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name="ck_loyalty_rewards_stock"),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("loyalty_rewards", schema=None) as batch_op:
        batch_op.create_index("ix_loyalty_rewards_workspace_keyset", ["workspace_id", "id"], unique=False)

    op.create_table(
        "loyalty_vouchers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("reward_id", sa.String(length=40), nullable=False),
        sa.Column("promotion_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column(
            "status", sa.Enum("issued", "withdrawn", name="voucherstatus", native_enum=False, length=20), nullable=False
        ),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"],
            ["loyalty_rewards.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("loyalty_vouchers", schema=None) as batch_op:
        batch_op.create_index("ix_loyalty_vouchers_workspace_member", ["workspace_id", "member_id"], unique=False)
        batch_op.create_index("ix_loyalty_vouchers_workspace_reward", ["workspace_id", "reward_id"], unique=False)

    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("member_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key("fk_promotions_member_id", "members", ["member_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_promotions_member_id", type_="foreignkey")
        batch_op.drop_column("member_id")
    for table in TABLES:
        op.drop_table(table)
