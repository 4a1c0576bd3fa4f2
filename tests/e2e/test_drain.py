"""SIGTERM drains a real `callbridge serve`: readiness fails at once, a new call is
rejected as busy, every live call is hung up by the service (not cut by a closing socket)
and recorded as ended by shutdown, and the process exits cleanly."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from callbridge.emulator import CallScript
from callbridge.testing.service_process import service_process
from tests.e2e.harness import hello_pcm16k

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


async def test_sigterm_drains_the_calls_then_stops(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    env = {
        "CALLBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "CALLBRIDGE_DRAIN_TIMEOUT_S": "10",
        "CALLBRIDGE_RECORDINGS_DIR": str(tmp_path / "rec"),
    }
    async with service_process("echo", env, cwd=ROOT) as svc:
        calls = [
            await svc.emulator.start_call(
                CallScript(audio=hello_pcm16k(), from_number=f"+1425555020{i}", max_duration_s=60)
            )
            for i in range(3)
        ]
        for call in calls:
            await call.wait_media()
        await asyncio.sleep(1.0)  # the calls are talking
        svc.proc.send_signal(signal.SIGTERM)
        async with httpx.AsyncClient() as client:
            for _ in range(40):
                ready = await client.get(svc.url + "/readyz")
                if ready.status_code == 503:
                    break
                await asyncio.sleep(0.05)
            assert ready.status_code == 503 and ready.json() == {"status": "draining"}
        late = await svc.emulator.place_call(CallScript(from_number="+14255550299"))
        assert "rejected (busy)" in late.end_reason
        reports = [await call.ended(timeout_s=15) for call in calls]
        assert [r.ended_by for r in reports] == ["service"] * 3, [r.summary() for r in reports]
        assert await asyncio.to_thread(svc.proc.wait, 15) == 0
    rows = await asyncio.to_thread(_ended_calls, db)
    assert sorted(rows) == [("ended", "ended by shutdown")] * 3


def _ended_calls(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT status, reason FROM calls WHERE caller != '+14255550299'"))
