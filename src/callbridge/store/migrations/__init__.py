"""Alembic migrations of the records schema (run by callbridge.store.migrate at start)."""
