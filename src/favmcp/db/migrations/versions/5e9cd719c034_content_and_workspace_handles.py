"""content and workspace handles

Revision ID: 5e9cd719c034
Revises: 462ed8f3e48f
Create Date: 2026-11-26 23:31:52.835322
"""

import sqlalchemy as sa
from alembic import op

import favmcp.db.types

revision = "5e9cd719c034"
down_revision = "462ed8f3e48f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("excerpt", sa.String(length=1000), nullable=True),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("cover_image_url", sa.String(length=2000), nullable=True),
        sa.Column(
            "status",
            sa.Enum("draft", "scheduled", "published", "unpublished", name="poststatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("publish_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unpublished_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("author_user_id", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_user_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index("ix_posts_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index("ix_posts_workspace_publish", ["workspace_id", "status", "publish_at"], unique=False)
        batch_op.create_index(
            "uq_posts_live_slug",
            ["workspace_id", "slug"],
            unique=True,
            sqlite_where=sa.text("status IN ('scheduled', 'published')"),
            postgresql_where=sa.text("status IN ('scheduled', 'published')"),
        )

    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handle", sa.String(length=60), nullable=True))
        batch_op.create_index("uq_workspaces_handle", ["handle"], unique=True)
    # Existing workspaces get a handle made of their id (unique already); a business can choose a nicer one.
    op.execute("UPDATE workspaces SET handle = replace(lower(id), '_', '-') WHERE handle IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_index("uq_workspaces_handle")
        batch_op.drop_column("handle")
    op.drop_table("posts")
