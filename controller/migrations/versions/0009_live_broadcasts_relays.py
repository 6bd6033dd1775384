"""live broadcasts; stream entries (relays) in playlists

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("playlistitem", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("stream_format", _S(length=8), nullable=True))
        batch_op.add_column(
            sa.Column("via_controller", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "livebroadcast",
        sa.Column("id", _S(length=32), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("title", _S(length=200), nullable=False),
        sa.Column("priority", _S(length=16), nullable=False),
        sa.Column("status", _S(length=16), nullable=False),
        sa.Column("started_by", _S(length=64), nullable=False),
        sa.Column("started_at", _T(), nullable=False),
        sa.Column("ends_by", _T(), nullable=False),
        sa.Column("ended_by", _S(length=64), nullable=True),
        sa.Column("ended_at", _T(), nullable=True),
        sa.Column("end_reason", _S(length=200), nullable=False),
        sa.Column("source", _S(length=32), nullable=False),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedule.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_livebroadcast_schedule_id", "livebroadcast", ["schedule_id"])
    op.create_index("ix_livebroadcast_status", "livebroadcast", ["status"])


def downgrade() -> None:
    op.drop_index("ix_livebroadcast_status", table_name="livebroadcast")
    op.drop_index("ix_livebroadcast_schedule_id", table_name="livebroadcast")
    op.drop_table("livebroadcast")
    with op.batch_alter_table("playlistitem", schema=None) as batch_op:
        batch_op.drop_column("via_controller")
        batch_op.drop_column("stream_format")
        batch_op.drop_column("stream_url")
