"""workspace money settings

Revision ID: c9c10b86cd90
Revises: a7e33518efa6
Create Date: 2026-11-26 16:35:06.559264
"""

import sqlalchemy as sa
from alembic import op

revision = "c9c10b86cd90"
down_revision = "a7e33518efa6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prices_include_tax", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("payment_provider", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("payment_provider")
        batch_op.drop_column("prices_include_tax")
