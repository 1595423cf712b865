"""payments

Revision ID: 423e5f89b865
Revises: e7f7af4c3eaa
Create Date: 2026-11-26 16:50:00.000000
"""

revision = "423e5f89b865"
down_revision = "e7f7af4c3eaa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
