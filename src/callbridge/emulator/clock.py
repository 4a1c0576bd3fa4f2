"""The caller's side of the media: one real-time 20 ms clock per call.

Each tick sends the caller's next frame (speech from the script, or silence, so frames
never stop while the call is up — §4.3/§4.5), plays 20 ms of queued agent audio into the
"ear" of the caller, fires scripted DTMF / raw frames and decides when the caller hangs
up. Deadlines are absolute (t0 + n·20 ms) so the cadence never drifts.
"""

from __future__ import annotations

import asyncio
import base64
import math
from typing import TYPE_CHECKING

import numpy as np

from . import events as ev
from .media import audio_frame, dtmf_frame
from .playout import FRAME_S, HeardTracker, Timeline
from .script import load_caller_audio

if TYPE_CHECKING:
    from .call import EmulatedCall

# §3.3: callback events name tones ("eight", "pound"); the socket carries the digit.
DTMF_NAMES = {
    **{
        str(i): n for i, n in enumerate("zero one two three four five six seven eight nine".split())
    },
    "*": "asterisk",
    "#": "pound",
    "A": "a",
    "B": "b",
    "C": "c",
    "D": "d",
}


async def run_clock(call: EmulatedCall) -> None:
    """The call's real-time 20 ms clock (absolute deadlines, so no drift)."""
    s = call.script
    rate = call.media.rate if call.media else 16000
    frame_bytes = rate // 50 * 2
    pcm = await asyncio.to_thread(load_caller_audio, s, rate)
    n_frames = math.ceil(pcm.size / (frame_bytes // 2))
    pcm = np.pad(pcm, (0, n_frames * (frame_bytes // 2) - pcm.size)).astype("<i2")
    caller_raw = pcm.tobytes()
    silence = bytes(frame_bytes)
    silence_b64 = base64.b64encode(silence).decode("ascii")
    start_tick = round(s.start_delay_s / FRAME_S)
    end_tick = start_tick + n_frames
    timed = sorted(
        [(t, "dtmf", d) for t, d in s.dtmf] + [(t, "raw", f) for t, f in s.raw_frames],
        key=lambda item: item[0],
    )
    hangup_tick = round(s.hangup_after_s / FRAME_S) if s.hangup_after_s is not None else None
    tail_ticks = round(s.tail_s / FRAME_S) if s.tail_s is not None else None
    max_ticks = math.ceil(s.max_duration_s / FRAME_S)
    heard = HeardTracker()
    timeline = Timeline(frame_bytes, record_caller=s.record_path is not None)
    loop = asyncio.get_running_loop()
    t0 = call.clock_t0 = loop.time()
    caller_id = call.caller["rawId"]
    last_busy = end_tick
    tick = next_event = 0
    try:
        while call.end_request is None:
            delay = t0 + tick * FRAME_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if call.end_request is not None:
                break
            now_s = tick * FRAME_S
            while next_event < len(timed) and timed[next_event][0] <= now_s + 1e-9:
                await _timed_event(call, now_s, timed[next_event][1], timed[next_event][2])
                next_event += 1
            if start_tick <= tick < end_tick:
                i = (tick - start_tick) * frame_bytes
                frame = caller_raw[i : i + frame_bytes]
                silent = frame == silence
                b64 = base64.b64encode(frame).decode("ascii")
            else:
                frame, silent, b64 = silence, True, silence_b64
            sock = call.socket
            if sock is not None and await sock.send(audio_frame(b64, caller_id, silent)):
                call.report.frames_sent += 1
            agent = call.playout.pull(tick)
            heard.add(tick, agent)
            timeline.add(frame, agent)
            if heard.last_tick == tick:
                last_busy = tick
            tick += 1
            call.tick = tick
            if hangup_tick is not None and tick >= hangup_tick:
                call.request_end(
                    "caller", f"caller hung up at {s.hangup_after_s:g} s", ev.ENDED_BY_CALLER
                )
            elif (
                hangup_tick is None
                and tail_ticks is not None
                and tick >= end_tick
                and tick - 1 - last_busy >= tail_ticks
            ):
                call.request_end(
                    "caller",
                    f"caller hung up {s.tail_s:g} s after the conversation went quiet",
                    ev.ENDED_BY_CALLER,
                )
            if tick >= max_ticks:
                call.request_end(
                    "timeout",
                    f"max_duration_s={s.max_duration_s:g} reached",
                    ev.ENDED_BY_CALLER,
                )
    finally:
        r = call.report
        r.heard_segments = heard.segments()
        r.heard_pcm = bytes(timeline.agent)
        r.underruns = call.playout.underruns
        if s.record_path is not None and call.media is not None:
            await timeline.write_wav(s.record_path, rate)


async def _timed_event(call: EmulatedCall, now_s: float, kind: str, payload: str) -> None:
    sock = call.socket
    if kind == "raw":
        if sock is not None:
            await sock.send(payload)
        return
    if sock is not None and call.media is not None and call.media.dtmf:
        if await sock.send(dtmf_frame(payload)):
            call.report.dtmf_sent.append((round(now_s, 3), payload))
    if call.continuous_dtmf:
        # §3.3 ContinuousDtmfRecognitionToneReceived uses tone names ("eight", "pound").
        call.dtmf_sequence += 1
        call.send_event(
            "ContinuousDtmfRecognitionToneReceived",
            operation_context=call.continuous_dtmf_context,
            result=ev.ResultInfo(200, 0, "DTMF tone received successfully."),
            extra={"sequenceId": call.dtmf_sequence, "tone": DTMF_NAMES.get(payload, payload)},
        )
