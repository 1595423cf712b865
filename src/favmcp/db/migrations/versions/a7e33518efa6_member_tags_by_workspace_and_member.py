"""member tags by workspace and member

Revision ID: a7e33518efa6
Revises: 95d081d4823e
Create Date: 2026-11-26 14:56:20.958563
"""

from alembic import op

revision = "a7e33518efa6"
down_revision = "95d081d4823e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("member_tags", schema=None) as batch_op:
        batch_op.create_index("ix_member_tags_workspace_member", ["workspace_id", "member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_member_tags_workspace_member")
