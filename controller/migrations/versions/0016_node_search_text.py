"""nodes: the id and name folded (and without marks), for searches of the node list in SQL

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from controller.core.models import node_search_text

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), server_default="", nullable=False))
    conn = op.get_bind()
    node = sa.table("node", sa.column("id"), sa.column("name"), sa.column("search_text"))
    rows = conn.execute(sa.select(node.c.id, node.c.name)).all()
    if rows:
        conn.execute(
            node.update().where(node.c.id == sa.bindparam("node_id")),
            [{"node_id": i, "search_text": node_search_text(i, name)} for i, name in rows],
        )


def downgrade() -> None:
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.drop_column("search_text")
