"""outbox kind

Bodies are sealed from this version on. Those queued before hold codes and invite links in plain text: they are
cleared, and the few still waiting to be sent are given up (the person asks for a new code or invite).

Revision ID: 54f145e185d8
Revises: 6e2a0c007696
Create Date: 2026-11-26 10:23:43.648849
"""

import sqlalchemy as sa
from alembic import op

revision = "54f145e185d8"
down_revision = "6e2a0c007696"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every message queued so far is a code or an invite: system mail.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum("system", "customer", name="outboxkind", native_enum=False, length=20),
                nullable=False,
                server_default="system",
            )
        )
    op.execute("UPDATE outbox SET body = '' WHERE status <> 'pending'")
    op.execute(
        "UPDATE outbox SET body = '', status = 'failed', "
        "last_error = 'queued before message bodies were sealed: ask for a new code or invite' "
        "WHERE status = 'pending'"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("kind")
