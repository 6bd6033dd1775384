"""deliveries: an index on (node, planned start) in place of the one on the node alone, for each
node's items of the day in the dead-air check

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
    # What it served (a node's deliveries, a node's removal) the new index serves as well.
    op.drop_index("ix_delivery_node_id", table_name="delivery")


def downgrade() -> None:
    op.create_index("ix_delivery_node_id", "delivery", ["node_id"])
    op.drop_index("ix_delivery_node_start", table_name="delivery")
