"""device health: telemetry history, state changes, alarms

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_planned_start"), ["planned_start"])
    op.create_table(
        "telemetrysample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", _S(length=64), nullable=False),
        sa.Column("ts", _T(), nullable=False),
        sa.Column("uptime_s", sa.Integer(), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("signal_dbm", sa.Integer(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("power", _S(length=8), nullable=False),
        sa.Column("battery_pct", sa.Integer(), nullable=True),
        sa.Column("supply_v", sa.Float(), nullable=True),
        sa.Column("speaker_ok", sa.Boolean(), nullable=False),
        sa.Column("amplifier_ok", sa.Boolean(), nullable=False),
        sa.Column("storage_free_mb", sa.Integer(), nullable=True),
        sa.Column("now_playing", _S(length=200), nullable=True),
        sa.Column("timeline_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("telemetrysample", schema=None) as batch_op:
        batch_op.create_index("ix_telemetrysample_node_ts", ["node_id", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_telemetrysample_ts"), ["ts"], unique=False)

    op.create_table(
        "telemetryhourly",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", _S(length=64), nullable=False),
        sa.Column("hour", _T(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("volume_avg", sa.Float(), nullable=True),
        *[
            sa.Column(f"{name}_{agg}", sa.Float(), nullable=True)
            for name in ("signal", "temperature", "supply_v", "battery")
            for agg in ("min", "avg", "max")
        ],
        sa.Column("storage_free_mb_min", sa.Integer(), nullable=True),
        sa.Column("uptime_max", sa.Integer(), nullable=True),
        sa.Column("on_battery", sa.Integer(), nullable=False),
        sa.Column("speaker_faults", sa.Integer(), nullable=False),
        sa.Column("amplifier_faults", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "hour"),
    )
    with op.batch_alter_table("telemetryhourly", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telemetryhourly_hour"), ["hour"], unique=False)

    op.create_table(
        "nodestatechange",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", _S(length=64), nullable=False),
        sa.Column("ts", _T(), nullable=False),
        sa.Column("state", _S(length=16), nullable=False),
        sa.Column("previous", _S(length=16), nullable=False),
        sa.Column("reason", _S(length=32), nullable=False),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("nodestatechange", schema=None) as batch_op:
        batch_op.create_index("ix_nodestatechange_node_ts", ["node_id", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodestatechange_ts"), ["ts"], unique=False)

    op.create_table(
        "alarm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", _S(length=64), nullable=False),
        sa.Column("kind", _S(length=32), nullable=False),
        sa.Column("severity", _S(length=16), nullable=False),
        sa.Column("state", _S(length=16), nullable=False),
        sa.Column("detail", _S(length=500), nullable=False),
        sa.Column("raised_at", _T(), nullable=False),
        sa.Column("acked_at", _T(), nullable=True),
        sa.Column("acked_by", _S(length=64), nullable=True),
        sa.Column("ack_note", _S(length=500), nullable=False),
        sa.Column("cleared_at", _T(), nullable=True),
        sa.Column("clear_detail", _S(length=500), nullable=False),
        sa.Column("notified_at", _T(), nullable=True),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alarm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarm_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarm_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarm_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarm_raised_at"), ["raised_at"], unique=False)
        # One alarm per node and kind until it is cleared: never raised twice.
        batch_op.create_index(
            "uq_alarm_open_node_kind",
            ["node_id", "kind"],
            unique=True,
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("alarm", schema=None) as batch_op:
        batch_op.drop_index("uq_alarm_open_node_kind")
        batch_op.drop_index(batch_op.f("ix_alarm_raised_at"))
        batch_op.drop_index(batch_op.f("ix_alarm_state"))
        batch_op.drop_index(batch_op.f("ix_alarm_kind"))
        batch_op.drop_index(batch_op.f("ix_alarm_node_id"))
    op.drop_table("alarm")
    with op.batch_alter_table("nodestatechange", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nodestatechange_ts"))
        batch_op.drop_index("ix_nodestatechange_node_ts")
    op.drop_table("nodestatechange")
    with op.batch_alter_table("telemetryhourly", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetryhourly_hour"))
    op.drop_table("telemetryhourly")
    with op.batch_alter_table("telemetrysample", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetrysample_ts"))
        batch_op.drop_index("ix_telemetrysample_node_ts")
    op.drop_table("telemetrysample")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_planned_start"))
