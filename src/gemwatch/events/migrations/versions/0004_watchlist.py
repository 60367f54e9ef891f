"""watchlist: entries, faces, hits, revocations, sync state, requests (all personal data encrypted)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("gallery", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("label_enc", sa.LargeBinary, nullable=False),
        sa.Column("reason_enc", sa.LargeBinary, nullable=True),
        sa.Column("evidence_enc", sa.LargeBinary, nullable=True),
        sa.Column("description_enc", sa.LargeBinary, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", TZ, nullable=True),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_index("ix_watchlist_entries_gallery", "watchlist_entries", ["gallery"])
    op.create_index("ix_watchlist_entries_origin", "watchlist_entries", ["origin"])
    op.create_index("ix_watchlist_entries_status", "watchlist_entries", ["status"])
    op.create_index("ix_watchlist_entries_expires_at", "watchlist_entries", ["expires_at"])
    op.create_table(
        "watchlist_faces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "entry_id",
            sa.String(36),
            sa.ForeignKey("watchlist_entries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("embedding_enc", sa.LargeBinary, nullable=True),
        sa.Column("image_enc", sa.LargeBinary, nullable=True),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_watchlist_faces_entry_id", "watchlist_faces", ["entry_id"])
    op.create_table(
        "watchlist_hits",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("entry_id", sa.String(36), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("distance", sa.Float, nullable=False),
        sa.Column("shots", sa.Integer, nullable=False),
        sa.Column("chip_enc", sa.LargeBinary, nullable=True),
        sa.Column("embedding_enc", sa.LargeBinary, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("reviewed_at", TZ, nullable=True),
    )
    op.create_index("ix_watchlist_hits_entry_id", "watchlist_hits", ["entry_id"])
    op.create_table(
        "watchlist_revocations",
        sa.Column("entry_id", sa.String(36), primary_key=True),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("revoked_at", TZ, nullable=False),
    )
    op.create_table(
        "watchlist_sync",
        sa.Column("origin", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("bundle", sa.Text, nullable=True),
    )
    op.create_table(
        "watchlist_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_enc", sa.LargeBinary, nullable=False),
        sa.Column("details_enc", sa.LargeBinary, nullable=True),
        sa.Column("entry_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome_enc", sa.LargeBinary, nullable=True),
        sa.Column("received_by", sa.String(64), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("watchlist_requests")
    op.drop_table("watchlist_sync")
    op.drop_table("watchlist_revocations")
    op.drop_index("ix_watchlist_hits_entry_id", "watchlist_hits")
    op.drop_table("watchlist_hits")
    op.drop_index("ix_watchlist_faces_entry_id", "watchlist_faces")
    op.drop_table("watchlist_faces")
    for col in ("expires_at", "status", "origin", "gallery"):
        op.drop_index(f"ix_watchlist_entries_{col}", "watchlist_entries")
    op.drop_table("watchlist_entries")
