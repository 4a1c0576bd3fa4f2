"""Fake realtime speech-to-speech servers (Voice Live's beta-style dialect, OpenAI GA) that
the official SDKs connect to on loopback; scripted per test, recording every event."""

from callbridge.testing.fake_realtime.script import (
    CallTool,
    Expire,
    Fail,
    Say,
    Script,
    by_instructions,
)
from callbridge.testing.fake_realtime.server import FakeRealtimeServer
from callbridge.testing.fake_realtime.session import FakeSession
from callbridge.testing.fake_realtime.wire import REQUIRED, problems

__all__ = [
    "REQUIRED",
    "CallTool",
    "Expire",
    "Fail",
    "FakeRealtimeServer",
    "FakeSession",
    "Say",
    "Script",
    "by_instructions",
    "problems",
]
