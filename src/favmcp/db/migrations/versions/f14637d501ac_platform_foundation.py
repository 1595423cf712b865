"""platform foundation

Revision ID: f14637d501ac
Revises:
Create Date: 2026-11-26 01:25:01.117972
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import favmcp.db.types

revision = "f14637d501ac"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "workspaces",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("industry", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("country", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("contact_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("contact_phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("business_hours", sa.JSON(), nullable=False),
        sa.Column("closures", sa.JSON(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("credential_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("tool", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("args_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_tool"), ["tool"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("tool", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("args_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("is_error", sa.Boolean(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("scope", "key"),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_records_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_idempotency_records_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "one_time_codes",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column(
            "purpose",
            sa.Enum("signup", "invite", name="codepurpose", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("one_time_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_one_time_codes_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "sent", "failed", name="outboxstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("delivered_via", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("rate_limit_buckets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_limit_buckets_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "team_invites",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column(
            "role",
            sa.Enum("owner", "admin", "manager", "staff", name="role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "accepted", "revoked", name="invitestatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("invited_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("team_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_invites_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "used_confirmations",
        sa.Column("token_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("used_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_id"),
    )
    with op.batch_alter_table("used_confirmations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_used_confirmations_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum("owner", "admin", "manager", "staff", name="role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("active", "deactivated", name="userstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "email", name="uq_users_workspace_email"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("display_prefix", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("expires_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_keys_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_api_keys_user_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_workspace_id"))

    op.drop_table("users")
    with op.batch_alter_table("used_confirmations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_confirmations_workspace_id"))

    op.drop_table("used_confirmations")
    with op.batch_alter_table("team_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_invites_workspace_id"))

    op.drop_table("team_invites")
    with op.batch_alter_table("rate_limit_buckets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_buckets_expires_at"))

    op.drop_table("rate_limit_buckets")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_status"))
        batch_op.drop_index(batch_op.f("ix_outbox_next_attempt_at"))

    op.drop_table("outbox")
    with op.batch_alter_table("one_time_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_one_time_codes_workspace_id"))

    op.drop_table("one_time_codes")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_idempotency_records_expires_at"))

    op.drop_table("idempotency_records")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_tool"))
        batch_op.drop_index(batch_op.f("ix_audit_events_created_at"))

    op.drop_table("audit_events")
    op.drop_table("workspaces")
