"""A call played through the observers, as CallSession reports one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from callbridge.call.observer import CallObserver, CallOutcome, Observers
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolRun

CALLER = "+14255550123"
CALLEE = "+18005550100"


def incoming_call() -> list[dict[str, Any]]:
    """An Event Grid delivery of one IncomingCall from CALLER to CALLEE."""
    return [
        {
            "id": str(uuid.uuid4()),
            "eventType": "Microsoft.Communication.IncomingCall",
            "data": {
                "to": {"kind": "phoneNumber", "rawId": f"4:{CALLEE}"},
                "from": {"kind": "phoneNumber", "rawId": f"4:{CALLER}"},
                "incomingCallContext": str(uuid.uuid4()),
                "serverCallId": "s",
                "correlationId": "c",
            },
        }
    ]


def write_wav(path: Path, seconds: float = 0.1) -> Path:
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(16000)
        wf.writeframes(bytes(int(16000 * seconds) * 2))
    return path


def begin_call(
    observers: Sequence[CallObserver],
    call_id: str | None = None,
    *,
    leg_id: str | None = "conn-1",
) -> str:
    """A call started and (unless `leg_id` is None) answered, as the ACS edge reports one;
    the caller and the agent have spoken once each."""
    call_id = call_id or uuid.uuid4().hex
    obs = Observers(list(observers))
    obs.call_started(CallInfo(call_id, CALLER, CALLEE, 24000, correlation_id="corr-1"))
    if leg_id is not None:
        obs.event(call_id, "answered", {"leg_id": leg_id})
    obs.transcript(call_id, "agent", "Hello, this is Contoso. How can I help?", time.time())
    obs.transcript(call_id, "caller", "Hi, I want to know where my order 10023 is.", time.time())
    return call_id


def finish_call(
    observers: Sequence[CallObserver],
    call_id: str,
    *,
    outcome: str = "resolved",
    recording: str | None = None,
    card: bool = False,
) -> None:
    obs = Observers(list(observers))
    obs.tool_ran(
        call_id,
        ToolRun(
            "order_status",
            {"order": "10023"},
            '{"status": "shipped", "eta": "Friday"}',
            True,
            12.5,
        ),
    )
    obs.transcript(
        call_id, "agent", "Your order 10023 has shipped and arrives on Friday.", time.time()
    )
    if card:
        obs.transcript(
            call_id, "caller", "Can I pay with my card 4111 1111 1111 1111?", time.time()
        )
        obs.tool_ran(
            call_id,
            ToolRun("take_payment", {"card": 4111111111111111}, '{"ok": true}', True, 3.0),
        )
    obs.transcript(call_id, "caller", "Great, thank you so much!", time.time())
    obs.event(call_id, "barge_in", {"heard_ms": 840})
    obs.call_ended(call_id, CallOutcome(outcome, "agent ended the call", recording_path=recording))
    # CallSession reports the agent's turn timings after the end, when the media closes.
    obs.turn_latency(call_id, {"stt_ms": 210.0, "first_audio_ms": 640.0, "text": "order"})


def play_call(
    observers: Sequence[CallObserver],
    *,
    outcome: str = "resolved",
    recording: str | None = None,
    card: bool = False,
) -> str:
    call_id = begin_call(observers)
    finish_call(observers, call_id, outcome=outcome, recording=recording, card=card)
    return call_id
