"""catalog

Revision ID: e7f7af4c3eaa
Revises: d8c4771543f0
Create Date: 2026-11-26 16:50:00.000000
"""

revision = "e7f7af4c3eaa"
down_revision = "d8c4771543f0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
