"""events, tracks and runs

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("start_ts", sa.Float, nullable=False),
        sa.Column("end_ts", sa.Float, nullable=True),
        sa.Column("start_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_local", sa.String(40), nullable=False),
        sa.Column("end_local", sa.String(40), nullable=True),
        sa.Column("ended", sa.Boolean, nullable=False),
        sa.Column("people", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("snapshot_path", sa.Text, nullable=True),
        sa.Column("clip_path", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_events_type", "events", ["type"])
    op.create_index("ix_events_camera_id", "events", ["camera_id"])
    op.create_index("ix_events_start_utc", "events", ["start_utc"])
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("first_ts", sa.Float, nullable=False),
        sa.Column("last_ts", sa.Float, nullable=False),
        sa.Column("observations", sa.Integer, nullable=False),
        sa.Column("max_score", sa.Float, nullable=False),
    )
    op.create_index("ix_tracks_run_id", "tracks", ["run_id"])
    op.create_index("ix_tracks_run_camera_track", "tracks", ["run_id", "camera_id", "track_id"], unique=True)
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("started_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sources", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_index("ix_tracks_run_camera_track", "tracks")
    op.drop_index("ix_tracks_run_id", "tracks")
    op.drop_table("tracks")
    op.drop_index("ix_events_start_utc", "events")
    op.drop_index("ix_events_camera_id", "events")
    op.drop_index("ix_events_type", "events")
    op.drop_table("events")
