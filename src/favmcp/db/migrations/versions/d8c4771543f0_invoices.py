"""invoices

Revision ID: d8c4771543f0
Revises: c9c10b86cd90
Create Date: 2026-11-26 16:50:00.000000
"""

revision = "d8c4771543f0"
down_revision = "c9c10b86cd90"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
