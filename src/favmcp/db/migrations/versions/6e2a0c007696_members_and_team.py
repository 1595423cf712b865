"""members and team

Revision ID: 6e2a0c007696
Revises: f14637d501ac
Create Date: 2026-11-26 02:44:10.454738
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import favmcp.db.types

revision = "6e2a0c007696"
down_revision = "f14637d501ac"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "member_imports",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "status",
            sa.Enum("previewed", "committed", name="importstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("committed_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("member_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_imports_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "members",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "merged", "erased", name="memberstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("merged_into", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column(
            "lifecycle",
            sa.Enum("lead", "customer", "regular", "lapsed", "churned", name="lifecycle", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_activity_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("erased_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_members_merged_into"), ["merged_into"], unique=False)
        batch_op.create_index("ix_members_workspace_activity", ["workspace_id", "last_activity_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_members_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index("ix_members_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index(
            "uq_members_active_email",
            ["workspace_id", "email"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.create_index(
            "uq_members_active_phone",
            ["workspace_id", "phone"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "member_consent_events",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "channel", sa.Enum("whatsapp", "sms", "email", name="channel", native_enum=False, length=20), nullable=False
        ),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("recorded_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("member_consent_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_consent_events_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_consent_events_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "member_events",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("summary", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("actor_user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("member_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_events_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_events_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "member_notes",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "author",
            sa.Enum("staff", "customer", "imported", name="noteauthor", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("author_user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("member_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_notes_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_notes_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "member_tags",
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("tag", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("member_id", "tag"),
    )
    with op.batch_alter_table("member_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_tags_tag"), ["tag"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_tags_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "staff_schedules",
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("weekly", sa.JSON(), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("staff_schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_schedules_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "staff_time_off",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("starts_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("staff_time_off", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_time_off_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_time_off_workspace_id"), ["workspace_id"], unique=False)

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follows_role", sa.Boolean(), server_default="0", nullable=False))


def downgrade() -> None:

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("follows_role")

    with op.batch_alter_table("staff_time_off", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_time_off_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_staff_time_off_user_id"))

    op.drop_table("staff_time_off")
    with op.batch_alter_table("staff_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_schedules_workspace_id"))

    op.drop_table("staff_schedules")
    with op.batch_alter_table("member_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_tags_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_member_tags_tag"))

    op.drop_table("member_tags")
    with op.batch_alter_table("member_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_notes_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_member_notes_member_id"))

    op.drop_table("member_notes")
    with op.batch_alter_table("member_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_events_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_member_events_member_id"))

    op.drop_table("member_events")
    with op.batch_alter_table("member_consent_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_consent_events_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_member_consent_events_member_id"))

    op.drop_table("member_consent_events")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_members_active_phone",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(
            "uq_members_active_email",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index("ix_members_workspace_keyset")
        batch_op.drop_index(batch_op.f("ix_members_workspace_id"))
        batch_op.drop_index("ix_members_workspace_activity")
        batch_op.drop_index(batch_op.f("ix_members_merged_into"))

    op.drop_table("members")
    with op.batch_alter_table("member_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_imports_workspace_id"))

    op.drop_table("member_imports")
