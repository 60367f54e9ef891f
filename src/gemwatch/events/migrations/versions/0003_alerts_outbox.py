"""alert outbox, incidents (acknowledgement, escalation), routed marks, used action links

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("route_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("recipient_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ts", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_ts", sa.Float, nullable=False),
        sa.Column("frame_ts", sa.Float, nullable=False),
        sa.Column("sent_ts", sa.Float, nullable=True),
        sa.Column("latency_s", sa.Float, nullable=True),
    )
    op.create_index("ix_alert_outbox_event_id", "alert_outbox", ["event_id"])
    op.create_index("ix_alert_outbox_state_next", "alert_outbox", ["state", "next_attempt_ts"])
    op.create_table(
        "alert_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("route_id", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("folded_into", sa.String(36), nullable=True),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("created_ts", sa.Float, nullable=False),
        sa.Column("next_escalation_ts", sa.Float, nullable=True),
        sa.Column("acked_ts", sa.Float, nullable=True),
        sa.Column("acked_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_alert_incidents_event_id", "alert_incidents", ["event_id"])
    op.create_index(
        "ix_alert_incidents_event_route", "alert_incidents", ["event_id", "route_id"], unique=True
    )
    op.create_index(
        "ix_alert_incidents_cooldown", "alert_incidents", ["route_id", "camera_id", "type", "created_ts"]
    )
    op.create_table(
        "alert_routed",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("routed_ts", sa.Float, nullable=False),
        sa.Column("last_ts", sa.Float, nullable=False),
        sa.Column("ended", sa.Integer, nullable=False),
        sa.Column("clip_queued", sa.Integer, nullable=False),
    )
    op.create_table(
        "alert_link_uses",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("recipient_id", sa.String(64), nullable=False),
        sa.Column("action_id", sa.String(64), nullable=False),
        sa.Column("used_ts", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_table(
        "alert_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_state")
    op.drop_table("alert_link_uses")
    op.drop_table("alert_routed")
    op.drop_index("ix_alert_incidents_cooldown", "alert_incidents")
    op.drop_index("ix_alert_incidents_event_route", "alert_incidents")
    op.drop_index("ix_alert_incidents_event_id", "alert_incidents")
    op.drop_table("alert_incidents")
    op.drop_index("ix_alert_outbox_state_next", "alert_outbox")
    op.drop_index("ix_alert_outbox_event_id", "alert_outbox")
    op.drop_table("alert_outbox")
