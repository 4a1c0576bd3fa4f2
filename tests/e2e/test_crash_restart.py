"""A crash during a call: the restarted service hangs up the call the crashed one left
live (its callers would sit in dead air otherwise), and the record says it was cut."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from callbridge.emulator import CallScript
from callbridge.testing.service_process import service_process
from tests.e2e.harness import hello_pcm16k

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


async def test_a_call_left_live_by_a_crash_is_hung_up_after_the_restart(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    env = {
        "CALLBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "CALLBRIDGE_RECORDINGS_DIR": str(tmp_path / "rec"),
    }
    async with service_process("echo", env, cwd=ROOT) as svc:
        call = await svc.emulator.start_call(
            CallScript(audio=hello_pcm16k() * 20, from_number="+14255550301", max_duration_s=90)
        )
        await call.wait_media()
        await asyncio.sleep(1.0)
        restarted = time.monotonic()
        await svc.crash_and_restart()
        report = await call.ended(timeout_s=20)
        ended_after = time.monotonic() - restarted
    assert report.ended_by == "service", report.summary()
    assert ended_after < 10.0, report.summary()
    rows = await asyncio.to_thread(_calls, db)
    assert rows == [("incomplete", "+14255550301")]


def _calls(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT status, caller FROM calls"))
