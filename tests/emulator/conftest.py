"""Fixtures: a fake service and an emulator pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callbridge.emulator import AcsEmulator

from .fake_service import FakeService


@pytest.fixture
def access_key() -> str:
    return AcsEmulator.generate_access_key()


@pytest.fixture
async def service(access_key: str) -> AsyncIterator[FakeService]:
    svc = FakeService(access_key)
    await svc.start()
    yield svc
    await svc.stop()


@pytest.fixture
async def emu(service: FakeService, access_key: str) -> AsyncIterator[AcsEmulator]:
    emulator = AcsEmulator(service.webhook, access_key, answer_timeout_s=3.0)
    await emulator.start()
    service.connect_sdk(emulator.endpoint)
    yield emulator
    await emulator.stop()
