"""cap feeds: followed warning feeds, rules, geocodes and the warnings read from them

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capfeed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("etag", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
        sa.Column("last_modified", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("polled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "capgeocode",
        sa.Column("value_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("area_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["area.id"],
        ),
        sa.PrimaryKeyConstraint("value_name", "value"),
    )
    with op.batch_alter_table("capgeocode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_capgeocode_area_id"), ["area_id"], unique=False)

    op.create_table(
        "caprule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("severities", sa.Text(), nullable=False),
        sa.Column("urgencies", sa.Text(), nullable=False),
        sa.Column("certainties", sa.Text(), nullable=False),
        sa.Column("areas", sa.Text(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["capfeed.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("caprule", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_caprule_feed_id"), ["feed_id"], unique=False)

    op.create_table(
        "capwarning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("sent", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("msg_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("cap_version", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("priority", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("urgency", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("certainty", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("areas", sa.Text(), nullable=False),
        sa.Column("references", sa.Text(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["capfeed.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sender", "identifier", "sent", name="uq_capwarning_key"),
    )
    with op.batch_alter_table("capwarning", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_capwarning_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_capwarning_feed_id"), ["feed_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_capwarning_identifier"), ["identifier"], unique=False)
        batch_op.create_index(batch_op.f("ix_capwarning_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_capwarning_url"), ["url"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("capwarning", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_capwarning_url"))
        batch_op.drop_index(batch_op.f("ix_capwarning_status"))
        batch_op.drop_index(batch_op.f("ix_capwarning_identifier"))
        batch_op.drop_index(batch_op.f("ix_capwarning_feed_id"))
        batch_op.drop_index(batch_op.f("ix_capwarning_alert_id"))

    op.drop_table("capwarning")
    with op.batch_alter_table("caprule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caprule_feed_id"))

    op.drop_table("caprule")
    with op.batch_alter_table("capgeocode", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_capgeocode_area_id"))

    op.drop_table("capgeocode")
    op.drop_table("capfeed")
