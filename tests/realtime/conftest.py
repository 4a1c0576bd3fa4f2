"""Fixtures: a fake realtime server of each dialect, started per test and always stopped."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from callbridge.testing.fake_realtime import FakeRealtimeServer, Script, problems

FakeFactory = Callable[..., Awaitable[FakeRealtimeServer]]


DIALECTS = ("voicelive", "ga")


@pytest.fixture
def dialect() -> str:
    """The fake's dialect; tests choose with parametrize, or run both with on_both."""
    return "ga"


def on_both(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Run a scenario against both fakes at once (they are independent calls: running them
    concurrently halves the wall time of these real-time tests)."""

    @functools.wraps(test)
    async def both(make_fake: FakeFactory, *args: Any, **kwargs: Any) -> None:
        runs = [test(functools.partial(make_fake, dialect=d), *args, **kwargs) for d in DIALECTS]
        results = await asyncio.gather(*runs, return_exceptions=True)
        for name, result in zip(DIALECTS, results, strict=True):
            if isinstance(result, BaseException):
                result.add_note(f"(against the fake {name} server)")
                raise result

    return both


@pytest.fixture
async def make_fake(dialect: str) -> AsyncIterator[FakeFactory]:
    started: list[FakeRealtimeServer] = []

    async def make(script: Script | Any = None, **kwargs: Any) -> FakeRealtimeServer:
        fake = FakeRealtimeServer(kwargs.pop("dialect", dialect), script, **kwargs)
        await fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        await fake.stop()
        # Every event a fake sent in any test conforms to the reference table.
        for session in fake.sessions:
            for event in session.sent:
                assert not problems(fake.dialect, event), (problems(fake.dialect, event), event)
