"""Write keys: each child row remembers the write that added it, so a replay adds nothing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# As in callbridge.store.schema at this revision (a migration must not change with it).
_TABLES = ("call_transcript", "call_tools", "call_events", "call_latencies", "call_recordings")
_KEY_LENGTH = 48


def upgrade() -> None:
    for name in _TABLES:
        # Nullable: rows written before this revision have no key (and NULLs never clash).
        op.add_column(name, sa.Column("write_key", sa.String(_KEY_LENGTH), nullable=True))
        op.create_index(f"ux_{name}_write_key", name, ["write_key"], unique=True)


def downgrade() -> None:
    for name in _TABLES:
        op.drop_index(f"ux_{name}_write_key", table_name=name)
        with op.batch_alter_table(name) as batch:
            batch.drop_column("write_key")
