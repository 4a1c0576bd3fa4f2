"""Lines on the realtime backends: a call routed by called number, and one moved by the
keypad menu, each get their own line's persona, greeting, tools and recording, and their
records carry the line's name. Both calls run at once, per backend, against the fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.devstack import Stack, running_stack
from callbridge.emulator import CallScript
from callbridge.store.records import CallQuery
from callbridge.testing.fake_realtime import FakeRealtimeServer, Say, Script, by_instructions
from callbridge.testing.fake_realtime.wire import Dialect

pytestmark = pytest.mark.e2e

MAIN_NUMBER = "+18005550100"
SUPPORT_NUMBER = "+18005550200"
COMMON = """
fallback: goodbye
flow:
  intents:
    hi: {examples: [hello], reply: Hi}
realtime:
  turn_detection: {type: server_vad, silence_duration_ms: 300}
"""
PROFILES = {
    "main.yaml": f"""
name: Main line
persona: You are the MAIN line.
greeting: Welcome to the main line.
numbers: ['{MAIN_NUMBER}']
ivr:
  prompt: For sales, press 2.
  variable: department
  routes: {{'2': sales}}
recording: {{local: false}}
""",
    "sales.yaml": """
name: Sales line
persona: You are the SALES line; the caller chose {department}.
greeting: Welcome to sales.
tools: [order_status]
recording: {local: true}
""",
    "support.yaml": f"""
name: Support line
persona: You are the SUPPORT line.
greeting: Welcome to support.
numbers: ['{SUPPORT_NUMBER}']
tools: [opening_hours]
transfer: {{target: '+14255550100'}}
recording: {{local: false}}
""",
}


async def by_number(stack: Stack, fake: FakeRealtimeServer) -> None:
    call = await stack.emulator.start_call(
        CallScript(from_number="+14255550111", to_number=SUPPORT_NUMBER, max_duration_s=30)
    )
    await call.wait_media()
    greeting = await call.wait_agent_quiet(since=0.0, quiet_s=0.4, timeout_s=10)
    assert greeting.duration_s > 0.5
    await call.hang_up()


async def by_menu(stack: Stack, fake: FakeRealtimeServer) -> None:
    call = await stack.emulator.start_call(
        CallScript(from_number="+14255550112", to_number=MAIN_NUMBER, max_duration_s=30)
    )
    await call.wait_media()
    prompt = await call.wait_agent_speaking(since=0.0, timeout_s=10)
    await call.press("2")
    await fake.wait_for(
        lambda: [s for s in fake.sessions if "SALES" in s.instructions], 10, "sales"
    )
    answer = await call.wait_agent_quiet(since=prompt + 0.5, quiet_s=0.4, timeout_s=10)
    assert answer.duration_s > 0.5
    await call.hang_up()


@pytest.mark.parametrize("backend", ["voicelive", "openai"])
async def test_each_line_runs_its_own_agent_on_a_realtime_backend(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "lines"
    folder.mkdir()
    for name, text in PROFILES.items():
        (folder / name).write_text(text + COMMON)
    scripts = {
        "SUPPORT": Script([], default=Say("Support here.", audio_ms=600)),
        "SALES": Script([], default=Say("Sales here.", audio_ms=600)),
        "MAIN": Script([], default=Say("Main here.", audio_ms=600)),
    }
    dialect: Dialect = "voicelive" if backend == "voicelive" else "ga"
    async with FakeRealtimeServer(dialect, by_instructions(scripts)) as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        overrides = {
            "recordings_dir": str(tmp_path / "rec"),
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        }
        async with running_stack(
            agent=backend, profile=str(folder / "main.yaml"), **overrides
        ) as stack:
            await asyncio.gather(by_number(stack, fake), by_menu(stack, fake))
            for _ in range(100):
                if not stack.edge.calls:
                    break
                await asyncio.sleep(0.05)
            await stack.records.writer.flush()
            rows, _ = await stack.records.store.list_calls(CallQuery())
            finished = {s.info.caller: s for s in stack.edge.finished}
        lines = {row.caller: row.profile for row in rows}
        assert lines == {"+14255550111": "Support line", "+14255550112": "Sales line"}
        support, sales = finished["+14255550111"], finished["+14255550112"]
        assert support.line.name == "Support line" and sales.line.name == "Sales line"
        # No model session was ever opened for the main line: the menu ran first.
        assert not [s for s in fake.sessions if "MAIN" in s.instructions]
        (sales_model,) = [s for s in fake.sessions if "SALES" in s.instructions]
        (support_model,) = [s for s in fake.sessions if "SUPPORT" in s.instructions]
        assert "the caller chose 2" in sales_model.instructions
        assert tool_names(sales_model) == {"end_call", "order_status"}
        assert tool_names(support_model) == {"end_call", "transfer_to_human", "opening_hours"}
        # Recording follows the line: on for sales, off for support.
        assert sales.recording_path
        assert await asyncio.to_thread(Path(sales.recording_path).is_file)
        assert support.recording_path is None


def tool_names(session: object) -> set[str]:
    updates = session.client_events("session.update")  # type: ignore[attr-defined]
    tools = [t for u in updates for t in u["session"].get("tools", [])]
    return {t["name"] for t in tools}
