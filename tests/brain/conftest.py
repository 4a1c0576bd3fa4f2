"""Fixtures for the brains: the Contoso profile, real tools, a call that records actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from callbridge.agent.local.brain.base import Brain
from callbridge.agent.local.brain.flow import FlowBrain
from callbridge.core.tools import ToolContext, ToolRegistry, ToolRun, builtin_tools
from callbridge.demo.tools import demo_tools
from callbridge.lines.catalogue import default_catalogue
from callbridge.profile import Profile, load_profile

from .fake_chat_server import FakeChatServer

ROOT = Path(__file__).resolve().parents[2]
CONTOSO = ROOT / "profiles" / "contoso.yaml"
TODAY = dt.date(2025, 6, 4)  # a Wednesday


@dataclass
class RecordingActions:
    transfers: list[tuple[str, str]] = field(default_factory=list)
    hang_ups: int = 0

    async def transfer(self, target: str, summary: str) -> None:
        self.transfers.append((target, summary))

    async def hang_up(self) -> None:
        self.hang_ups += 1


class Call:
    """A brain on a pretend call: real registry, recorded actions and tool runs."""

    def __init__(self, brain: Brain, registry: ToolRegistry) -> None:
        self.brain = brain
        self.registry = registry
        self.actions = RecordingActions()
        self.ctx = ToolContext("call-1", "+15550001111", "+14255550100", {}, self.actions)
        self.runs: list[ToolRun] = []

    async def run_tool(self, name: str, args: dict[str, Any]) -> str:
        run = await self.registry.run(name, args, self.ctx)
        self.runs.append(run)
        return run.output

    async def say(self, text: str) -> str:
        return " ".join([s async for s in self.brain.turn(text, self.run_tool)])

    async def press(self, digits: str) -> str:
        return " ".join([s async for s in self.brain.digits(digits, self.run_tool)])

    def last_run(self) -> ToolRun:
        return self.runs[-1]


def contoso_registry(profile: Profile) -> ToolRegistry:
    return ToolRegistry(builtin_tools(profile.transfer.target) + demo_tools(lambda: TODAY))


@pytest.fixture(scope="session")
def contoso() -> Profile:
    return load_profile(CONTOSO, default_catalogue())


@pytest.fixture
def call(contoso: Profile) -> Call:
    return Call(FlowBrain(contoso, today=lambda: TODAY), contoso_registry(contoso))


@pytest.fixture
async def chat_server() -> AsyncIterator[FakeChatServer]:
    server = await FakeChatServer().start()
    yield server
    await server.stop()
