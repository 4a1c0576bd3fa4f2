"""Fixtures: the models load once per test process (they are process-wide singletons)."""

from __future__ import annotations

import pytest

from callbridge.agent.local import models
from callbridge.agent.local.stt import WhisperStt
from callbridge.agent.local.tts import PiperTts
from tests.local_models.audio import DETERMINISTIC


@pytest.fixture(scope="session")
def tts() -> PiperTts:
    return models.get_tts().with_options(DETERMINISTIC)


@pytest.fixture(scope="session")
def stt() -> WhisperStt:
    return models.get_stt()
