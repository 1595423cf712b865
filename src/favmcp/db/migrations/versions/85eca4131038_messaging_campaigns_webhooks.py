"""messaging campaigns webhooks

Revision ID: 85eca4131038
Revises: d4c8aa2d4b37
Create Date: 2026-11-27 01:00:14.836132
"""

import sqlalchemy as sa
from alembic import op

import favmcp.db.types

TABLES = (
    "webhook_attempts",
    "webhook_deliveries",
    "messages",
    "webhook_endpoints",
    "messaging_provider_events",
    "messaging_channels",
    "message_templates",
    "message_suppressions",
    "campaigns",
)

revision = "85eca4131038"
down_revision = "d4c8aa2d4b37"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "channel", sa.Enum("whatsapp", "sms", "email", name="channel", native_enum=False, length=20), nullable=False
        ),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "scheduled",
                "sending",
                "sent",
                "cancelled",
                name="campaignstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("scheduled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attribution_days", sa.Integer(), nullable=False),
        sa.Column("audience_size", sa.Integer(), nullable=True),
        sa.Column("created_by_user_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_campaigns_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_workspace_due", ["workspace_id", "status", "scheduled_at"], unique=False)
        batch_op.create_index("ix_campaigns_workspace_keyset", ["workspace_id", "id"], unique=False)

    op.create_table(
        "message_suppressions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column(
            "channel", sa.Enum("whatsapp", "sms", "email", name="channel", native_enum=False, length=20), nullable=False
        ),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "stop", "unsubscribe", "bounce", "complaint", name="suppressionreason", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_message_suppressions_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "channel", "address", name="uq_message_suppressions_address"),
    )
    op.create_table(
        "message_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column(
            "channel", sa.Enum("whatsapp", "sms", "email", name="channel", native_enum=False, length=20), nullable=False
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("transactional", "marketing", "free_text", name="sendkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                "paused",
                "disabled",
                name="templatestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("provider_template_id", sa.String(length=120), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_message_templates_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "channel", "name", "language", name="uq_message_templates_name"),
    )
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.create_index("ix_message_templates_workspace_keyset", ["workspace_id", "id"], unique=False)

    op.create_table(
        "messaging_channels",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column(
            "channel", sa.Enum("whatsapp", "sms", "email", name="channel", native_enum=False, length=20), nullable=False
        ),
        sa.Column(
            "provider",
            sa.Enum("whatsapp_cloud", "twilio", "smtp", name="provider", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.String(), nullable=False),
        sa.Column(
            "health",
            sa.Enum("unverified", "verified", "failing", name="channelhealth", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("verified_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_messaging_channels_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "channel", name="uq_messaging_channels_workspace_channel"),
    )
    op.create_table(
        "messaging_provider_events",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_messaging_provider_events_workspace_id"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "provider", "event_id"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("enabled", "disabled", name="endpointstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("failing_since", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_webhook_endpoints_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_endpoints_workspace_keyset", ["workspace_id", "id"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=True),
        sa.Column(
            "channel", sa.Enum("whatsapp", "sms", "email", name="channel", native_enum=False, length=20), nullable=False
        ),
        sa.Column(
            "direction", sa.Enum("outbound", "inbound", name="direction", native_enum=False, length=20), nullable=False
        ),
        sa.Column(
            "kind",
            sa.Enum("transactional", "marketing", "free_text", name="sendkind", native_enum=False, length=20),
            nullable=True,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sent",
                "delivered",
                "read",
                "failed",
                "cancelled",
                "received",
                name="messagestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=True),
        sa.Column("campaign_id", sa.String(length=40), nullable=True),
        sa.Column("booking_id", sa.String(length=40), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=True),
        sa.Column("provider_message_id", sa.String(length=120), nullable=True),
        sa.Column("outbox_id", sa.String(length=40), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="SET NULL", name="fk_messages_member_id"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_messages_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_address", ["workspace_id", "channel", "address", "direction"], unique=False)
        batch_op.create_index("ix_messages_campaign", ["workspace_id", "campaign_id"], unique=False)
        batch_op.create_index("ix_messages_member", ["workspace_id", "member_id", "created_at"], unique=False)
        batch_op.create_index("ix_messages_workspace_keyset", ["workspace_id", "id"], unique=False)
        batch_op.create_index(
            "uq_messages_dedupe",
            ["workspace_id", "dedupe_key"],
            unique=True,
            sqlite_where=sa.text("dedupe_key IS NOT NULL"),
            postgresql_where=sa.text("dedupe_key IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_messages_provider_id",
            ["channel", "provider_message_id"],
            unique=True,
            sqlite_where=sa.text("provider_message_id IS NOT NULL"),
            postgresql_where=sa.text("provider_message_id IS NOT NULL"),
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event_name", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "succeeded", "failed", name="deliverystatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_latency_ms", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("redelivery_of", sa.String(length=40), nullable=True),
        sa.Column("outbox_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE", name="fk_webhook_deliveries_endpoint_id"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_webhook_deliveries_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_endpoint", ["workspace_id", "endpoint_id", "id"], unique=False)
        batch_op.create_index("ix_webhook_deliveries_workspace_keyset", ["workspace_id", "id"], unique=False)

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("attempted_at", favmcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["webhook_deliveries.id"], ondelete="CASCADE", name="fk_webhook_attempts_delivery_id"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_webhook_attempts_workspace_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_attempts_delivery", ["delivery_id", "attempted_at"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
