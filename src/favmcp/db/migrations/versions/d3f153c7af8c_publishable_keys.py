"""publishable keys: the origins whose pages may call with a fav_pub_ key

Revision ID: d3f153c7af8c
Revises: 8c0c3900e465
Create Date: 2026-11-27 05:33:18.179568
"""

import sqlalchemy as sa
from alembic import op

revision = "d3f153c7af8c"
down_revision = "8c0c3900e465"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key_origins",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_id", "origin"),
    )
    with op.batch_alter_table("api_key_origins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_origins_origin"), ["origin"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_key_origins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_origins_origin"))
    op.drop_table("api_key_origins")
