"""workspace money settings, members' lifetime spend, HTML mail, job runs

Revision ID: c9c10b86cd90
Revises: a7e33518efa6
Create Date: 2026-11-26 16:35:06.559264
"""

import sqlalchemy as sa
from alembic import op

import favmcp.db.types

revision = "c9c10b86cd90"
down_revision = "a7e33518efa6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prices_include_tax", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("payment_provider", sa.String(), nullable=True))
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lifetime_spend", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("html", sa.String(), nullable=False, server_default=""))
    op.create_table(
        "job_runs",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("job", sa.String(length=80), nullable=False),
        sa.Column("next_run_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_started_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "job"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("lifetime_spend")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("html")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("payment_provider")
        batch_op.drop_column("prices_include_tax")
