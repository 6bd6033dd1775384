"""reading dictionary: local lists per area (a term is unique within its area)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_S = sqlmodel.sql.sqltypes.AutoString
# SQLite reflects 0003's unique constraint without a name: batch mode names it by this.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _term_constraint() -> str:
    for unique in sa.inspect(op.get_bind()).get_unique_constraints("abbreviation"):
        if unique["column_names"] == ["term"] and unique["name"]:
            return str(unique["name"])
    return "uq_abbreviation_term"


def upgrade() -> None:
    old = _term_constraint()
    with op.batch_alter_table("abbreviation", naming_convention=_NAMES) as batch_op:
        batch_op.drop_constraint(old, type_="unique")
        batch_op.add_column(sa.Column("area_id", _S(length=64), nullable=True))
        batch_op.create_index("ix_abbreviation_area_id", ["area_id"], unique=False)
        batch_op.create_foreign_key("fk_abbreviation_area_id", "area", ["area_id"], ["id"])
        batch_op.create_unique_constraint("uq_abbreviation_term_area", ["term", "area_id"])


def downgrade() -> None:
    # Local entries cannot keep their meaning in one list for every area.
    op.execute("DELETE FROM abbreviation WHERE area_id IS NOT NULL")
    with op.batch_alter_table("abbreviation", naming_convention=_NAMES) as batch_op:
        batch_op.drop_constraint("uq_abbreviation_term_area", type_="unique")
        batch_op.drop_constraint("fk_abbreviation_area_id", type_="foreignkey")
        batch_op.drop_index("ix_abbreviation_area_id")
        batch_op.drop_column("area_id")
        batch_op.create_unique_constraint("uq_abbreviation_term", ["term"])
