"""No dead air when the model fails or stalls: against the fake Voice Live / OpenAI
servers, a model that answers every response with an error, or that never sends audio, gets
the service's own apology within 3 s of the caller's turn, a request to repeat, then a
goodbye and a hang-up recorded as an agent failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.devstack import Stack, running_stack
from callbridge.emulator import CallScript
from callbridge.testing.fake_realtime import Fail, FakeRealtimeServer, Say, Script, by_instructions
from callbridge.testing.fake_realtime.wire import Dialect
from tests.e2e.harness import hello_pcm16k

pytestmark = pytest.mark.e2e

PROFILE = """
name: failing model line
persona: You are the failing line. The caller is {caller}.
greeting: Hello, failing line.
fallback: goodbye
apology: I'm sorry, something went wrong on my side.
goodbye: Thank you for calling. Goodbye!
reply_timeout_s: 2.0
flow:
  intents:
    hi: {examples: [hello], reply: Hi}
realtime:
  turn_detection: {type: server_vad, silence_duration_ms: 300}
"""
REFUSING = "+14255550131"
SILENT = "+14255550132"


async def stalled_call(stack: Stack, caller: str, turns: int) -> None:
    call = await stack.emulator.start_call(CallScript(from_number=caller, max_duration_s=40))
    await call.wait_media()
    # The greeting, or (for the silent model) the service's apology in its place.
    greeting = await call.wait_agent_quiet(since=0.0, quiet_s=0.4, timeout_s=10)
    assert greeting.first_audio_s is not None and greeting.first_audio_s < 3.0
    for _ in range(turns):
        said = await call.say(hello_pcm16k()[: 16000 * 2])
        started = await call.wait_agent_speaking(since=said.end_s, timeout_s=6)
        # The model's own turn detection ends the turn ~0.3 s after the speech: the
        # service's apology must start within 3 s of the caller falling quiet.
        assert started - said.end_s < 3.0, call.report.summary()
        await call.wait_agent_quiet(since=started, quiet_s=0.5, timeout_s=10)
    report = await call.ended(timeout_s=10)
    assert report.ended_by == "service", report.summary()


@pytest.mark.parametrize("backend", ["voicelive", "openai"])
async def test_a_failing_or_silent_model_never_leaves_the_caller_in_dead_air(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = {
        REFUSING: Script([], default=Fail()),  # the greeting is said exactly, not scripted
        SILENT: Script([], default=Say("Too late.", audio_ms=500), ttfa_ms=60_000),
    }
    profile = tmp_path / "failing.yaml"
    profile.write_text(PROFILE)
    dialect: Dialect = "voicelive" if backend == "voicelive" else "ga"
    async with FakeRealtimeServer(dialect, by_instructions(scripts)) as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        db = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
        async with running_stack(agent=backend, profile=str(profile), database_url=db) as stack:
            # The silent model stalls on its greeting already: one caller turn is its second.
            await asyncio.gather(stalled_call(stack, REFUSING, 2), stalled_call(stack, SILENT, 1))
            for _ in range(100):
                if not stack.edge.calls:
                    break
                await asyncio.sleep(0.05)
            finished = list(stack.edge.finished)
    assert sorted(s.info.caller for s in finished) == [REFUSING, SILENT]
    for session in finished:
        assert session.end_reason == (
            "agent failed: no reply within 2 s (the reply to the caller's turn)"
        )
