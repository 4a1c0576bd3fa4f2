"""A service restarting against a migrated database does not import Alembic (docs:
architecture.md, memory): the schema is checked with one query."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from callbridge.store.migrate import head_revision
from callbridge.store.schema import HEAD_REVISION
from callbridge.store.sql import SqlCallStore

CHILD = """
import asyncio, sys
from callbridge.store.sql import SqlCallStore

async def main() -> None:
    store = SqlCallStore(sys.argv[1])
    await store.open()
    await store.close()

asyncio.run(main())
print("alembic" in sys.modules)
"""


def test_the_head_revision_constant_is_the_newest_migration() -> None:
    assert HEAD_REVISION == head_revision()


async def test_a_migrated_database_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"

    def start() -> str:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, url], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert start() == "True"  # a new database: migrated
    assert start() == "False"  # at head: Alembic never loads
    store = SqlCallStore(url)
    await store.open()
    await store.close()
