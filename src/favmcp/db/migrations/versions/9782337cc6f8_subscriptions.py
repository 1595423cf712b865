"""subscriptions

Revision ID: 9782337cc6f8
Revises: 423e5f89b865
Create Date: 2026-11-26 16:50:00.000000
"""

revision = "9782337cc6f8"
down_revision = "423e5f89b865"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
