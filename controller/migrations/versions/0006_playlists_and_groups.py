"""playlists (items of a playlist announcement) and named groups of nodes

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "playlistitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("playlist_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("announcement_id", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("media_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("media_size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["playlist_id"], ["announcement.id"]),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcement.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("playlist_id", "position"),
    )
    op.create_index("ix_playlistitem_playlist_id", "playlistitem", ["playlist_id"])
    op.create_index("ix_playlistitem_announcement_id", "playlistitem", ["announcement_id"])
    op.create_table(
        "nodegroup",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("area_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["area.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_nodegroup_area_id", "nodegroup", ["area_id"])
    op.create_table(
        "nodegroupmember",
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["nodegroup.id"]),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"]),
        sa.PrimaryKeyConstraint("group_id", "node_id"),
    )


def downgrade() -> None:
    op.drop_table("nodegroupmember")
    op.drop_index("ix_nodegroup_area_id", table_name="nodegroup")
    op.drop_table("nodegroup")
    op.drop_index("ix_playlistitem_announcement_id", table_name="playlistitem")
    op.drop_index("ix_playlistitem_playlist_id", table_name="playlistitem")
    op.drop_table("playlistitem")
