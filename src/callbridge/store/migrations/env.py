"""Alembic's environment for the records schema.

Runs only through `callbridge.store.migrate`, which hands over an open connection (inside a
transaction that already holds the migration lock): the service migrates itself at start,
with no alembic.ini, so an installed package can upgrade its own database.
"""

from __future__ import annotations

from alembic import context

from callbridge.store.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "callbridge migrations run from the service (callbridge.store.migrate.upgrade), "
        "which passes the database connection; they have no alembic.ini of their own"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things in place: later revisions use batch operations.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
