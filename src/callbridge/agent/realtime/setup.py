"""What every call of one realtime backend shares: the connector, the profile's options and
lines, callbridge's own voice, and the timings of the session's moves."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Literal

from callbridge.agent.realtime.options import RealtimeOptions
from callbridge.agent.realtime.speech import Speaker
from callbridge.agent.realtime.transport import Connector
from callbridge.core.call_info import CallInfo

# What follows when the model is gone for good: an apology, then a transfer, a goodbye, or
# (`offline`) a `GaveUp` event, on which a FallbackAgent around the realtime agent hands the
# call to the offline agent (agent/fallback.py).
Fallback = Literal["transfer", "goodbye", "offline"]


@dataclass(frozen=True)
class RealtimeSetup:
    """What every call of one backend shares (built once by runtime.py)."""

    connector: Connector
    options: RealtimeOptions
    persona: str = ""  # template: {caller}, {callee}, SIP headers
    greeting: str = ""  # template
    apology: str = "I'm sorry, something went wrong on my side."
    goodbye: str = "Thank you for calling. Goodbye!"
    fallback: Fallback = "goodbye"
    instructions: bool = True  # False: Voice Live agent mode (the agent has its own)
    speaker: Speaker | None = None  # callbridge's own voice (custom voice, apology)
    executor: Executor | None = None
    notices: dict[str, str] = field(default_factory=dict)  # call notice -> line (templates)
    render: Callable[[str, CallInfo], str] = lambda text, call: text
    batch_ms: int = 60  # caller audio per input_audio_buffer.append
    connect_timeout_s: float = 5.0
    reconnect_delays: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    cancel_grace_s: float = 0.3  # wait for the server's own cancel before response.cancel
    settle_grace_s: float = 0.5  # wait for interrupted() before assuming all was heard
    reseed_limit: int = 60  # conversation items carried into a new session
    buffer_while_down_ms: int = 2000  # caller audio kept while there is no session
    digit_timeout_s: float = 2.5
