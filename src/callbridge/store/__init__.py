"""Call records: what each call said and did, kept in SQLite or PostgreSQL.

`CallStore` is the interface (`SqlCallStore` the implementation); `RecordWriter` is the
call observer that feeds it from a background task, through a journal on local disk
(`journal`) so that a crash loses no write; `records` holds the values both use.
"""

from callbridge.store.base import CallStore
from callbridge.store.records import CallDetailRow, CallQuery, CallRow, OrphanCall
from callbridge.store.sql import SqlCallStore, StoreError
from callbridge.store.writer import RecordWriter

__all__ = [
    "CallDetailRow",
    "CallQuery",
    "CallRow",
    "CallStore",
    "OrphanCall",
    "RecordWriter",
    "SqlCallStore",
    "StoreError",
]
