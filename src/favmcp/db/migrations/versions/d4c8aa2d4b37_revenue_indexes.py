"""revenue indexes

Revision ID: d4c8aa2d4b37
Revises: 5e9cd719c034
Create Date: 2026-11-27 00:00:40.623715
"""

from alembic import op

revision = "d4c8aa2d4b37"
down_revision = "5e9cd719c034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.create_index("ix_payment_refunds_workspace_settled_at", ["workspace_id", "settled_at"], unique=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_workspace_paid_at", ["workspace_id", "paid_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_workspace_paid_at")

    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_refunds_workspace_settled_at")
