"""bookings

Revision ID: 37b614291f3d
Revises: 9782337cc6f8
Create Date: 2026-11-26 18:55:31.268587
"""

import sqlalchemy as sa
from alembic import op

import favmcp.db.types

TABLES = (
    "waitlist_entries",
    "bookings",
    "service_staff",
    "class_sessions",
    "calendar_feeds",
    "services",
    "booking_settings",
)

revision = "37b614291f3d"
down_revision = "9782337cc6f8"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booking_settings",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("max_advance_days", sa.Integer(), nullable=False),
        sa.Column("slot_step_minutes", sa.Integer(), nullable=False),
        sa.Column("requires_confirmation", sa.Boolean(), nullable=False),
        sa.Column("cancellation_window_hours", sa.Integer(), nullable=False),
        sa.Column("late_cancel_fee", sa.BigInteger(), nullable=False),
        sa.Column("no_show_fee", sa.BigInteger(), nullable=False),
        sa.Column("fee_currency", sa.String(length=3), nullable=True),
        sa.Column("fee_tax_rate", sa.String(length=12), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("late_cancel_fee >= 0 AND no_show_fee >= 0", name="ck_booking_settings_fees"),
        sa.CheckConstraint("slot_step_minutes > 0", name="ck_booking_settings_step"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id"),
    )
    op.create_table(
        "services",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_rate", sa.String(length=12), nullable=False),
        sa.Column("buffer_before_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_after_minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("members_only", sa.Boolean(), nullable=False),
        sa.Column(
            "status", sa.Enum("active", "archived", name="servicestatus", native_enum=False, length=20), nullable=False
        ),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("buffer_before_minutes >= 0 AND buffer_after_minutes >= 0", name="ck_services_buffers"),
        sa.CheckConstraint("capacity >= 1", name="ck_services_capacity"),
        sa.CheckConstraint("duration_minutes > 0", name="ck_services_duration_positive"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.create_index("ix_services_workspace_keyset", ["workspace_id", "id"], unique=False)

    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("rotated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_feeds_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "class_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("staff_user_id", sa.String(length=40), nullable=False),
        sa.Column("series_id", sa.String(length=40), nullable=True),
        sa.Column(
            "status",
            sa.Enum("scheduled", "cancelled", name="sessionstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("starts_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_from", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=300), nullable=True),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_class_sessions_booked_within_capacity"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_class_sessions_ends_after_start"),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("class_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_class_sessions_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index(
            "ix_class_sessions_workspace_staff_time", ["workspace_id", "staff_user_id", "starts_at"], unique=False
        )
        batch_op.create_index("ix_class_sessions_workspace_time", ["workspace_id", "starts_at"], unique=False)

    op.create_table(
        "service_staff",
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("service_id", "user_id"),
    )
    with op.batch_alter_table("service_staff", schema=None) as batch_op:
        batch_op.create_index("ix_service_staff_workspace_user", ["workspace_id", "user_id"], unique=False)

    op.create_table(
        "bookings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("staff_user_id", sa.String(length=40), nullable=False),
        sa.Column("class_session_id", sa.String(length=40), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "confirmed",
                "declined",
                "cancelled",
                "checked_in",
                "completed",
                "no_show",
                name="bookingstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("starts_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_from", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_rate", sa.String(length=12), nullable=False),
        sa.Column(
            "payment", sa.Enum("none", "credit", name="bookingpayment", native_enum=False, length=20), nullable=False
        ),
        sa.Column("credit_reservation_id", sa.String(length=40), nullable=True),
        sa.Column("fee_invoice_id", sa.String(length=40), nullable=True),
        sa.Column("fee_amount", sa.BigInteger(), nullable=True),
        sa.Column("customer_note", sa.String(length=500), nullable=True),
        sa.Column("cancel_reason", sa.String(length=300), nullable=True),
        sa.Column("late_cancel", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("no_show_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reschedule_count", sa.Integer(), nullable=False),
        sa.CheckConstraint("blocked_from <= starts_at AND blocked_until >= ends_at", name="ck_bookings_blocked_span"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_bookings_ends_after_start"),
        sa.ForeignKeyConstraint(
            ["class_session_id"],
            ["class_sessions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index("ix_bookings_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index(
            "ix_bookings_workspace_member_time", ["workspace_id", "member_id", "starts_at"], unique=False
        )
        batch_op.create_index("ix_bookings_workspace_session", ["workspace_id", "class_session_id"], unique=False)
        batch_op.create_index(
            "ix_bookings_workspace_staff_time", ["workspace_id", "staff_user_id", "blocked_from"], unique=False
        )
        batch_op.create_index("ix_bookings_workspace_time", ["workspace_id", "starts_at"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # The staff rule in the database itself: two active appointments of one staff member never block
        # overlapping time (half-open ranges, so back-to-back is fine). The code checks first, to answer well.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_staff_time EXCLUDE USING gist "
            "(workspace_id WITH =, staff_user_id WITH =, tstzrange(blocked_from, blocked_until) WITH &&) "
            "WHERE (class_session_id IS NULL AND status IN ('pending', 'confirmed', 'checked_in'))"
        )

    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("class_session_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column(
            "status",
            sa.Enum("waiting", "promoted", "left", "closed", name="waitliststatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("booking_id", sa.String(length=40), nullable=True),
        sa.Column("skipped_reason", sa.String(length=300), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("promoted_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("left_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["class_session_id"],
            ["class_sessions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waitlist_entries_workspace_session", ["workspace_id", "class_session_id", "id"], unique=False
        )
        batch_op.create_index(
            "uq_waitlist_entries_waiting",
            ["workspace_id", "class_session_id", "member_id"],
            unique=True,
            sqlite_where=sa.text("status = 'waiting'"),
            postgresql_where=sa.text("status = 'waiting'"),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
