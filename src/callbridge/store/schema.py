"""The tables, as SQLAlchemy Core objects the queries use.

The migrations (store/migrations/versions) create them; this module must match the head
revision (tests/store checks that the migrated schema and this metadata agree).

No foreign keys on the child tables: the writer must never get stuck on a row whose call
row is missing (an observer attached mid-call, a replayed spill); `call_id` is indexed.
Each child row carries the key of the write that added it (`write_key`, unique; NULL for
rows from before revision 0002 and writes of older spill files), so a write replayed from
the journal after it was committed adds nothing.
Times are epoch seconds in doubles: exact, and compared the same way on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

# Alembic's own table, named so it cannot clash with another application's migrations in a
# shared PostgreSQL database.
VERSION_TABLE = "callbridge_schema_version"
# The newest migration's revision (tests/store checks it against the migration scripts): a
# database already at it opens without importing Alembic at all.
HEAD_REVISION = "0002"
WRITE_KEY_LENGTH = 48

metadata = sa.MetaData()

calls = sa.Table(
    "calls",
    metadata,
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
    sa.Index("ix_calls_started_at", "started_at"),
    sa.Index("ix_calls_status", "status"),
)

transcript = sa.Table(
    "call_transcript",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("write_key", sa.String(WRITE_KEY_LENGTH), nullable=True),
    sa.Index("ix_call_transcript_call_id", "call_id"),
    sa.Index("ux_call_transcript_write_key", "write_key", unique=True),
)

tools = sa.Table(
    "call_tools",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("arguments", sa.Text(), nullable=False),  # JSON object
    sa.Column("output", sa.Text(), nullable=False),  # JSON text as handed to the agent
    sa.Column("ok", sa.Boolean(), nullable=False),
    sa.Column("duration_ms", sa.Double(), nullable=False),
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("write_key", sa.String(WRITE_KEY_LENGTH), nullable=True),
    sa.Index("ix_call_tools_call_id", "call_id"),
    sa.Index("ux_call_tools_write_key", "write_key", unique=True),
)

events = sa.Table(
    "call_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),  # JSON object
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("write_key", sa.String(WRITE_KEY_LENGTH), nullable=True),
    sa.Index("ix_call_events_call_id", "call_id"),
    sa.Index("ux_call_events_write_key", "write_key", unique=True),
)

latencies = sa.Table(
    "call_latencies",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), nullable=False),
    sa.Column("timings", sa.Text(), nullable=False),  # JSON object
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("write_key", sa.String(WRITE_KEY_LENGTH), nullable=True),
    sa.Index("ix_call_latencies_call_id", "call_id"),
    sa.Index("ux_call_latencies_write_key", "write_key", unique=True),
)

recordings = sa.Table(
    "call_recordings",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), nullable=False),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("write_key", sa.String(WRITE_KEY_LENGTH), nullable=True),
    sa.Index("ix_call_recordings_call_id", "call_id"),
    sa.Index("ux_call_recordings_write_key", "write_key", unique=True),
)
