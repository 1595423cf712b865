"""catalog: products and the stock ledger, promotions and their redemptions, orders and their lines

Revision ID: e7f7af4c3eaa
Revises: d8c4771543f0
Create Date: 2026-11-26 16:50:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import favmcp.db.types

revision = "e7f7af4c3eaa"
down_revision = "d8c4771543f0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "status", sa.Enum("active", "archived", name="productstatus", native_enum=False, length=20), nullable=False
        ),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("tax_rate", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("track_stock", sa.Boolean(), nullable=False),
        sa.Column("stock_on_hand", sa.BigInteger(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("stock_on_hand >= 0", name="ck_products_stock_not_negative"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index("ix_products_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index(
            "uq_products_active_sku",
            ["workspace_id", "sku"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "promotions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "inactive", name="promotionstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "kind", sa.Enum("percent", "fixed", name="discountkind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("percent_off", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
        sa.Column("amount_off", sa.BigInteger(), nullable=True),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("min_subtotal", sa.BigInteger(), nullable=True),
        sa.Column(
            "applies_to",
            sa.Enum("orders", "invoices", "both", name="appliesto", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("starts_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("max_per_customer", sa.Integer(), nullable=True),
        sa.Column("times_redeemed", sa.Integer(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "max_redemptions IS NULL OR times_redeemed <= max_redemptions", name="ck_promotions_within_limit"
        ),
        sa.CheckConstraint("times_redeemed >= 0", name="ck_promotions_redeemed_not_negative"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.create_index("ix_promotions_workspace_code", ["workspace_id", "code"], unique=False)
        batch_op.create_index(batch_op.f("ix_promotions_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index(
            "uq_promotions_active_code",
            ["workspace_id", "code"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "orders",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("customer_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column(
            "status",
            sa.Enum("open", "paid", "fulfilled", "cancelled", name="orderstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("prices_include_tax", sa.Boolean(), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        sa.Column("promotion_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("promotion_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("fulfilled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_paid >= 0 AND amount_paid <= total", name="ck_orders_paid_within_total"),
        sa.CheckConstraint(
            "amount_refunded >= 0 AND amount_refunded <= amount_paid", name="ck_orders_refunded_within_paid"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index("ix_orders_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index("ix_orders_workspace_member", ["workspace_id", "member_id", "id"], unique=False)
        batch_op.create_index("ix_orders_workspace_status", ["workspace_id", "status", "id"], unique=False)

    op.create_table(
        "promotion_redemptions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("promotion_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column(
            "status",
            sa.Enum("redeemed", "released", name="redemptionstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(["promotion_id"], ["promotions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("promotion_redemptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotion_redemptions_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_promotion_redemptions_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index("ix_redemptions_member", ["workspace_id", "promotion_id", "member_id"], unique=False)
        batch_op.create_index("ix_redemptions_target", ["workspace_id", "target"], unique=False)
        batch_op.create_index(
            "uq_redemptions_target",
            ["workspace_id", "promotion_id", "target"],
            unique=True,
            sqlite_where=sa.text("status = 'redeemed'"),
            postgresql_where=sa.text("status = 'redeemed'"),
        )

    op.create_table(
        "stock_movements",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("adjust", "order_reserve", "order_release", name="movementkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("actor_user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_movements_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_stock_movements_product", ["workspace_id", "product_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stock_movements_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("tax_rate", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("stock_reserved", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index("ix_order_lines_order", ["workspace_id", "order_id", "position"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_lines_product_id"), ["product_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_lines_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_order_lines_product_id"))
        batch_op.drop_index("ix_order_lines_order")

    op.drop_table("order_lines")
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_movements_workspace_id"))
        batch_op.drop_index("ix_stock_movements_product")
        batch_op.drop_index(batch_op.f("ix_stock_movements_order_id"))

    op.drop_table("stock_movements")
    with op.batch_alter_table("promotion_redemptions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_redemptions_target",
            sqlite_where=sa.text("status = 'redeemed'"),
            postgresql_where=sa.text("status = 'redeemed'"),
        )
        batch_op.drop_index("ix_redemptions_target")
        batch_op.drop_index("ix_redemptions_member")
        batch_op.drop_index(batch_op.f("ix_promotion_redemptions_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_promotion_redemptions_member_id"))

    op.drop_table("promotion_redemptions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_workspace_status")
        batch_op.drop_index("ix_orders_workspace_member")
        batch_op.drop_index("ix_orders_workspace_keyset")
        batch_op.drop_index(batch_op.f("ix_orders_workspace_id"))

    op.drop_table("orders")
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_promotions_active_code",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_promotions_workspace_id"))
        batch_op.drop_index("ix_promotions_workspace_code")

    op.drop_table("promotions")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_products_active_sku",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index("ix_products_workspace_keyset")
        batch_op.drop_index(batch_op.f("ix_products_workspace_id"))

    op.drop_table("products")
