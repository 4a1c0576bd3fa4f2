"""A real Redis for the shared-state tests: the machine's server on 127.0.0.1:6379 (each
test gets its own key prefix, so tests running at once never see each other's keys)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

REDIS_URL = os.environ.get("CALLBRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/0")
SIGNING_KEY = "shared-by-every-replica-0123456789"


def one_service(redis_prefix: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """The settings that make in-process replicas one service (devstack.running_replicas):
    Redis under the test's prefix, one records file, one signing key; the echo agent."""
    return {
        "redis_url": REDIS_URL,
        "redis_prefix": redis_prefix,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        "agent": "echo",
        "signing_key": SIGNING_KEY,
        **extra,
    }


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"cbtest:{uuid.uuid4().hex[:10]}:"
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield prefix
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
