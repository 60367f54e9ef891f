"""counter compliance: showing sessions and protocol violations, for reports per staff and shift

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "showing_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("counter_id", sa.String(64), nullable=True),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("start_ts", sa.Float, nullable=False),
        sa.Column("end_ts", sa.Float, nullable=False),
        sa.Column("start_utc", TZ, nullable=False),
        sa.Column("end_utc", TZ, nullable=False),
        sa.Column("start_local", sa.String(40), nullable=False),
        sa.Column("arrived_ts", sa.Float, nullable=True),
        sa.Column("time_to_serve_s", sa.Float, nullable=True),
        sa.Column("staff_track", sa.Integer, nullable=True),
        sa.Column("staff_identity", sa.String(64), nullable=True),
        sa.Column("customers", sa.JSON, nullable=False),
        sa.Column("max_pieces", sa.Integer, nullable=False),
        sa.Column("pieces", sa.JSON, nullable=False),
        sa.Column("violations", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_showing_sessions_start_utc", "showing_sessions", ["start_utc"])
    op.create_index("ix_showing_sessions_camera_start", "showing_sessions", ["camera_id", "start_ts"])
    op.create_table(
        "protocol_violations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("start_ts", sa.Float, nullable=False),
        sa.Column("end_ts", sa.Float, nullable=True),
        sa.Column("start_utc", TZ, nullable=False),
        sa.Column("start_local", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_protocol_violations_start_utc", "protocol_violations", ["start_utc"])
    op.create_index("ix_protocol_violations_session", "protocol_violations", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_protocol_violations_session", "protocol_violations")
    op.drop_index("ix_protocol_violations_start_utc", "protocol_violations")
    op.drop_table("protocol_violations")
    op.drop_index("ix_showing_sessions_camera_start", "showing_sessions")
    op.drop_index("ix_showing_sessions_start_utc", "showing_sessions")
    op.drop_table("showing_sessions")
