"""announcements: a category for the province's reports (policy and law, local news, emergency)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("announcement", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("category", sa.String(length=16), nullable=False, server_default="local_news")
        )


def downgrade() -> None:
    with op.batch_alter_table("announcement", schema=None) as batch_op:
        batch_op.drop_column("category")
