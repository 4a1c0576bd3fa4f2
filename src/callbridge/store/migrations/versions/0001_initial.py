"""Call records: calls, transcript, tools, events, latencies, recordings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _child(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), nullable=False),
        *columns,
        sa.Column("at", sa.Double(), nullable=False),
    )
    op.create_index(f"ix_{name}_call_id", name, ["call_id"])


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("caller", sa.String(256), nullable=False, server_default=""),
        sa.Column("callee", sa.String(256), nullable=False, server_default=""),
        sa.Column("profile", sa.String(128), nullable=False, server_default=""),
        sa.Column("correlation_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("transferred_to", sa.String(256), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("summary_source", sa.String(16), nullable=True),
        sa.Column("sentiment_compound", sa.Double(), nullable=True),
        sa.Column("sentiment_label", sa.String(16), nullable=True),
        sa.Column("redacted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("analyzed_at", sa.Double(), nullable=True),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_status", "calls", ["status"])
    _child(
        "call_transcript",
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    _child(
        "call_tools",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
    )
    _child(
        "call_events",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    _child("call_latencies", sa.Column("timings", sa.Text(), nullable=False))
    _child("call_recordings", sa.Column("path", sa.Text(), nullable=False))


def downgrade() -> None:
    for name in ("call_recordings", "call_latencies", "call_events", "call_tools"):
        op.drop_table(name)
    op.drop_table("call_transcript")
    op.drop_table("calls")
