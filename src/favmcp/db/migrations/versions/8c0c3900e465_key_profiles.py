"""key profiles: the tool profile an API key or an OAuth grant is bound to

Revision ID: 8c0c3900e465
Revises: d69891b3f93f
Create Date: 2026-11-27 05:00:57.995981
"""

import sqlalchemy as sa
from alembic import op

revision = "8c0c3900e465"
down_revision = "d69891b3f93f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile", sa.String(length=20), nullable=True))
    with op.batch_alter_table("oauth_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_grants", schema=None) as batch_op:
        batch_op.drop_column("profile")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("profile")
