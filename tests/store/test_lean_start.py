"""A service restarting against a migrated database does not import Alembic (docs:
architecture.md, memory): the schema is checked with one query. `callbridge serve` upgrades
a schema that is behind in a child process, so it never holds Alembic at all."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from callbridge.store import sql
from callbridge.store.migrate import head_revision
from callbridge.store.records import CallQuery
from callbridge.store.schema import HEAD_REVISION
from callbridge.store.sql import SqlCallStore, StoreError

CHILD = """
import asyncio, sys
from callbridge.store.sql import SqlCallStore

async def main() -> None:
    store = SqlCallStore(sys.argv[1], upgrade_in_child=len(sys.argv) > 2)
    await store.open()
    await store.close()

asyncio.run(main())
print("alembic" in sys.modules)
"""


def _open_in_fresh_interpreter(url: str, *flags: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, *flags], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_head_revision_constant_is_the_newest_migration() -> None:
    assert HEAD_REVISION == head_revision()


async def test_a_migrated_database_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    assert _open_in_fresh_interpreter(url) == "True"  # a new database: migrated
    assert _open_in_fresh_interpreter(url) == "False"  # at head: Alembic never loads
    store = SqlCallStore(url)
    await store.open()
    await store.close()


async def test_a_new_database_is_upgraded_by_a_child_and_alembic_never_loads(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    assert _open_in_fresh_interpreter(url, "--upgrade-in-child") == "False"
    # The schema the child made is the newest, and the store works on it.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'calls.db'}")
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM callbridge_schema_version"))
        assert version.scalar_one() == HEAD_REVISION
        assert conn.execute(sa.text("SELECT count(*) FROM calls")).scalar_one() == 0
    engine.dispose()


async def test_a_schema_this_version_does_not_know_gets_a_clear_error_either_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database a newer callbridge upgraded, opened by this one (a rolled-back deployment):
    # the child fails, the upgrade is tried here, and both say what to do.
    path = tmp_path / "calls.db"
    _open_in_fresh_interpreter(f"sqlite+aiosqlite:///{path}")
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE callbridge_schema_version SET version_num = '0099_next'"))
    engine.dispose()
    for in_child in (False, True):
        store = SqlCallStore(f"sqlite+aiosqlite:///{path}", upgrade_in_child=in_child)
        with caplog.at_level(logging.WARNING), pytest.raises(StoreError) as err:
            await store.open()
        assert "Can't locate revision identified by '0099_next'" in str(err.value)
        assert "upgraded by a newer callbridge" in str(err.value)
    assert "the schema upgrade process failed: callbridge: schema upgrade failed" in caplog.text


async def test_an_upgrade_child_that_gives_no_answer_is_killed_and_the_upgrade_done_here(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "UPGRADE_TIMEOUT_S", 0.01)  # no child starts that fast
    store = SqlCallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", upgrade_in_child=True)
    with caplog.at_level(logging.WARNING):
        await store.open()
    try:
        assert "the schema upgrade process gave no answer in 0 s" in caplog.text
        assert await store.list_calls(CallQuery()) == ([], 0)  # upgraded here, and usable
    finally:
        await store.close()


async def test_an_upgrade_child_that_cannot_start_leaves_the_upgrade_to_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    store = SqlCallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", upgrade_in_child=True)
    with caplog.at_level(logging.WARNING):
        await store.open()
    try:
        assert "cannot start the schema upgrade process" in caplog.text
        assert await store.list_calls(CallQuery()) == ([], 0)
    finally:
        await store.close()
