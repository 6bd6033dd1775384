"""device commands, firmware catalogue, install dates

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.add_column(sa.Column("installed_on", sa.Date(), nullable=True))

    op.create_table(
        "command",
        sa.Column("id", _S(length=32), nullable=False),
        sa.Column("name", _S(length=32), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("areas", sa.Text(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("created_by", _S(length=64), nullable=False),
        sa.Column("created_at", _T(), nullable=False),
        sa.Column("finished_at", _T(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("command", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_command_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_command_created_at"), ["created_at"], unique=False)

    op.create_table(
        "nodecommand",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("command_id", _S(length=32), nullable=False),
        sa.Column("node_id", _S(length=64), nullable=False),
        sa.Column("cmd_id", _S(length=64), nullable=False),
        sa.Column("state", _S(length=16), nullable=False),
        sa.Column("stage", _S(length=16), nullable=False),
        sa.Column("stages", _S(length=200), nullable=False),
        sa.Column("detail", _S(length=500), nullable=False),
        sa.Column("firmware", _S(length=100), nullable=True),
        sa.Column("deadline", _T(), nullable=False),
        sa.Column("sent_at", _T(), nullable=True),
        sa.Column("acked_at", _T(), nullable=True),
        sa.Column("finished_at", _T(), nullable=True),
        sa.ForeignKeyConstraint(["command_id"], ["command.id"]),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("nodecommand", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nodecommand_command_id"), ["command_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodecommand_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodecommand_cmd_id"), ["cmd_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_nodecommand_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodecommand_deadline"), ["deadline"], unique=False)

    op.create_table(
        "firmwareimage",
        sa.Column("version", _S(length=64), nullable=False),
        sa.Column("sha256", _S(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("hardware", _S(length=100), nullable=False),
        sa.Column("notes", _S(length=500), nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.Column("uploaded_by", _S(length=64), nullable=False),
        sa.Column("created_at", _T(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("firmwareimage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_firmwareimage_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("firmwareimage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_firmwareimage_sha256"))
    op.drop_table("firmwareimage")
    with op.batch_alter_table("nodecommand", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nodecommand_deadline"))
        batch_op.drop_index(batch_op.f("ix_nodecommand_state"))
        batch_op.drop_index(batch_op.f("ix_nodecommand_cmd_id"))
        batch_op.drop_index(batch_op.f("ix_nodecommand_node_id"))
        batch_op.drop_index(batch_op.f("ix_nodecommand_command_id"))
    op.drop_table("nodecommand")
    with op.batch_alter_table("command", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_command_created_at"))
        batch_op.drop_index(batch_op.f("ix_command_name"))
    op.drop_table("command")
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.drop_column("installed_on")
