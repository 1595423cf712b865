"""oauth: clients, authorization requests, grants and their tokens

Revision ID: d69891b3f93f
Revises: 85eca4131038
Create Date: 2026-11-27 04:32:46.194604
"""

import sqlalchemy as sa
from alembic import op

import favmcp.db.types

revision = "d69891b3f93f"
down_revision = "85eca4131038"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("secret", sa.String(), nullable=True),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "oauth_authorizations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("code_expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed_in_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("workspace_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["oauth_clients.id"], ondelete="CASCADE", name="fk_oauth_authorizations_client_id"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE", name="fk_oauth_authorizations_user_id"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_oauth_authorizations_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oauth_authorizations", schema=None) as batch_op:
        batch_op.create_index("ix_oauth_authorizations_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "oauth_grants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("resource", sa.String(length=2000), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("redirect_uri_explicit", sa.Boolean(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["oauth_clients.id"], ondelete="CASCADE", name="fk_oauth_grants_client_id"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE", name="fk_oauth_grants_user_id"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_oauth_grants_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oauth_grants", schema=None) as batch_op:
        batch_op.create_index("ix_oauth_grants_client_id", ["client_id"], unique=False)
        batch_op.create_index("ix_oauth_grants_user_id", ["user_id"], unique=False)
        batch_op.create_index("ix_oauth_grants_workspace_id", ["workspace_id"], unique=False)

    op.create_table(
        "oauth_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column(
            "kind", sa.Enum("code", "access", "refresh", name="tokenkind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["grant_id"], ["oauth_grants.id"], ondelete="CASCADE", name="fk_oauth_tokens_grant_id"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_oauth_tokens_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash", name="uq_oauth_tokens_token_hash"),
    )
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_oauth_tokens_expires_at", ["expires_at"], unique=False)
        batch_op.create_index("ix_oauth_tokens_grant_id", ["grant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_oauth_tokens_grant_id")
        batch_op.drop_index("ix_oauth_tokens_expires_at")

    op.drop_table("oauth_tokens")
    with op.batch_alter_table("oauth_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_oauth_grants_workspace_id")
        batch_op.drop_index("ix_oauth_grants_user_id")
        batch_op.drop_index("ix_oauth_grants_client_id")

    op.drop_table("oauth_grants")
    with op.batch_alter_table("oauth_authorizations", schema=None) as batch_op:
        batch_op.drop_index("ix_oauth_authorizations_expires_at")

    op.drop_table("oauth_authorizations")
    op.drop_table("oauth_clients")
