"""recurring schedules, approval, quiet hours

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quiethoursrule",
        sa.Column("area_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("start", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("end", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["area.id"], name="fk_quiethoursrule_area_id_area"),
        sa.PrimaryKeyConstraint("area_id", name="pk_quiethoursrule"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("planned_duration_ms", sa.Integer(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "title",
                sqlmodel.sql.sqltypes.AutoString(length=200),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(sa.Column("rrule", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("exdates", sa.Text(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("ends_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "on_preempt",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="preempt",
            )
        )
        batch_op.add_column(
            sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("approved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("schedule", schema=None) as batch_op:
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_by")
        batch_op.drop_column("on_preempt")
        batch_op.drop_column("ends_on")
        batch_op.drop_column("exdates")
        batch_op.drop_column("rrule")
        batch_op.drop_column("title")

    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("planned_duration_ms")

    op.drop_table("quiethoursrule")
