"""deliveries: an index on (node, planned start), for each node's newest item in the dead-air check

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_delivery_node_start", "delivery", ["node_id", "planned_start"])


def downgrade() -> None:
    op.drop_index("ix_delivery_node_start", table_name="delivery")
