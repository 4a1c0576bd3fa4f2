"""Fixtures: a throwaway database on each backend, and an app wired to it.

`db_url` runs a test on SQLite (a file in tmp_path) and on PostgreSQL (a database created
for the test and dropped after it; skipped when no server answers on 127.0.0.1:5432).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from fastapi import FastAPI

from callbridge.api.records import Records
from callbridge.app import create_app
from callbridge.config import Settings, load_settings
from tests.fakes import FakeControl

TOKEN = "test-admin-token-0123456789"
SECRET = "eventgrid-secret-123456"
PG_ADMIN_DSN = os.environ.get("CALLBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_database() -> tuple[str, str] | None:
    name = f"callbridge_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_DSN}: {exc}")
        return None
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f"{base}/{name}"


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"
        return
    # The journal and the spill file of a PostgreSQL store go to ./var: the test's own.
    monkeypatch.chdir(tmp_path)
    created = await _pg_database()
    assert created is not None
    name, url = created
    try:
        yield url
    finally:
        await _drop_pg_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"


def make_settings(db_url: str, tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "acs_connection": "endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        "public_url": "https://bridge.example.com",
        "eventgrid_secret": SECRET,
        "agent": "echo",
        "database_url": db_url,
        "admin_token": TOKEN,
        "recordings_dir": str(tmp_path / "recordings"),
    }
    values.update(kw)
    return load_settings(**values)


def make_app(settings: Settings) -> FastAPI:
    app = create_app(settings, control=FakeControl())
    records(app).analyzer.delay_s = 0.0  # analyse as soon as the end is written
    return app


def records(app: FastAPI) -> Records:
    rec = app.state.records
    assert isinstance(rec, Records)
    return rec


def client(app: FastAPI, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
    )


@pytest.fixture
async def app(sqlite_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """An app on SQLite, started (lifespan) and stopped around the test."""
    application = make_app(make_settings(sqlite_url, tmp_path))
    async with application.router.lifespan_context(application):
        yield application
