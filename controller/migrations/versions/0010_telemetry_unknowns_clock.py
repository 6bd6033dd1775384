"""telemetry: unknown power and hardware checks; memory, load, clock offset and sync

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("telemetrysample", schema=None) as batch_op:
        batch_op.alter_column("power", existing_type=_S(length=8), nullable=True)
        batch_op.alter_column("speaker_ok", existing_type=sa.Boolean(), nullable=True)
        batch_op.alter_column("amplifier_ok", existing_type=sa.Boolean(), nullable=True)
        batch_op.add_column(sa.Column("memory_free_mb", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("load_1m", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("offset_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("clock_synced", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("telemetrysample", schema=None) as batch_op:
        batch_op.drop_column("clock_synced")
        batch_op.drop_column("offset_ms")
        batch_op.drop_column("load_1m")
        batch_op.drop_column("memory_free_mb")
        batch_op.execute("UPDATE telemetrysample SET power = 'mains' WHERE power IS NULL")
        batch_op.execute("UPDATE telemetrysample SET speaker_ok = true WHERE speaker_ok IS NULL")
        batch_op.execute(
            "UPDATE telemetrysample SET amplifier_ok = true WHERE amplifier_ok IS NULL"
        )
        batch_op.alter_column("amplifier_ok", existing_type=sa.Boolean(), nullable=False)
        batch_op.alter_column("speaker_ok", existing_type=sa.Boolean(), nullable=False)
        batch_op.alter_column("power", existing_type=_S(length=8), nullable=False)
