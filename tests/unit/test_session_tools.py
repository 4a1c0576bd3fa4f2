"""Tools requested by an agent run in the call session; end_call and transfer wait for
the agent's last words to be heard."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from callbridge.agent.base import AgentAudio, AgentEvent, ResponseDone, ToolCall
from callbridge.call.line import Line
from callbridge.call.session import CallLimits, CallSession
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolContext, ToolRegistry, ToolSpec, builtin_tools
from tests.call_fakes import RecordingCarrier, ScriptedAgent
from tests.unit.test_call_session import RATE, ScriptedLeg


def goodbye_then(tool: str, args: dict[str, Any] | None = None) -> list[AgentEvent]:
    audio = bytes(RATE * 2 // 2)  # 500 ms
    return [ToolCall("t1", tool, args or {}), AgentAudio(audio, "r1"), ResponseDone("r1")]


async def run_call(
    agent: ScriptedAgent, registry: ToolRegistry, transfers: list[Any], hang_ups: list[float]
) -> tuple[CallSession, ScriptedLeg, float]:
    carrier = RecordingCarrier()
    carrier.hang_ups = hang_ups  # type: ignore[assignment]
    carrier.transfers = transfers
    session = CallSession(
        CallInfo("c1", "+1", "+2", RATE),
        Line("test", lambda: agent, tools=registry),
        carrier,
        limits=CallLimits(settle_s=0.2),
    )
    session.answered()
    leg = ScriptedLeg()
    t0 = time.monotonic()
    bridge = asyncio.create_task(session.run_media(leg))

    async def feed() -> None:
        while not session.ended:
            await leg.say(bytes(RATE // 50 * 2))

    feeder = asyncio.create_task(feed())
    await asyncio.sleep(1.5)
    feeder.cancel()
    if not session.ended:
        await session.disconnected("test over")
    await asyncio.wait_for(bridge, 3)
    return session, leg, t0


async def test_end_call_hangs_up_after_the_goodbye_is_heard() -> None:
    agent = ScriptedAgent(goodbye_then("end_call"))
    hang_ups: list[float] = []
    session, leg, t0 = await run_call(agent, ToolRegistry(builtin_tools(None)), [], hang_ups)
    assert session.end_reason == "agent ended the call"
    assert len(hang_ups) == 1
    # 500 ms of goodbye played, then 200 ms of quiet: not before.
    assert hang_ups[0] - t0 >= 0.65
    assert sum(len(p) for _, p in leg.sent) == RATE  # the whole goodbye was sent
    assert json.loads(agent.results[0][1])["ok"] is True
    assert [r.name for r in session.tool_runs] == ["end_call"]


async def test_transfer_carries_the_call_id_and_summary() -> None:
    agent = ScriptedAgent(goodbye_then("transfer_to_human", {"summary": "wants a refund"}))
    transfers: list[Any] = []
    session, _, t0 = await run_call(
        agent, ToolRegistry(builtin_tools("+14255550100")), transfers, []
    )
    (when, target, context) = transfers[0]
    assert target == "+14255550100" and when - t0 >= 0.65
    assert context == {"CallbridgeCallId": "c1", "Summary": "wants a refund"}
    assert session.transferred_to == "+14255550100"


async def test_tool_errors_and_timeouts_come_back_as_results() -> None:
    async def slow(args: dict[str, Any], ctx: ToolContext) -> str:
        await asyncio.sleep(5)
        return "late"

    def broken(args: dict[str, Any], ctx: ToolContext) -> str:
        raise ValueError("database down")

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    registry = ToolRegistry(
        [
            ToolSpec("slow", "", {"type": "object"}, slow, timeout_s=0.1),
            ToolSpec("broken", "", {"type": "object"}, broken),
            ToolSpec("typed", "", schema, lambda a, c: {"twice": a["n"] * 2}),
        ]
    )
    agent = ScriptedAgent(
        [
            ToolCall("a", "slow", {}),
            ToolCall("b", "broken", {}),
            ToolCall("c", "typed", {"n": "x"}),
            ToolCall("d", "typed", {"n": 4}),
            ToolCall("e", "nope", {}),
        ]
    )
    await run_call(agent, registry, [], [])
    results = {cid: json.loads(out) for cid, out in agent.results}
    assert "did not answer within 0.1 s" in results["a"]["error"]
    assert "database down" in results["b"]["error"]
    assert "'n' should be of type integer" in results["c"]["error"]
    assert results["d"] == {"twice": 8}
    assert "no tool named nope" in results["e"]["error"]
