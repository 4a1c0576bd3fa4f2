"""The caller's side of the media: one real-time 20 ms clock per call.

Each tick sends the caller's next frame, pulled from the call's ``CallerSpeechQueue``
(the script's audio, then whatever a ``LiveCaller`` said) or silence when it is empty, so
frames never stop while the call is up, as with ACS media streaming; plays 20 ms of
queued agent audio into the "ear" of the caller; fires due DTMF / raw frames (scripted or
pressed); wakes the live waits whose condition now holds; and decides when the caller
hangs up.
Deadlines are absolute (t0 + n·20 ms) so the cadence never drifts.
"""

from __future__ import annotations

import asyncio
import base64
import math
from typing import TYPE_CHECKING

import numpy as np

from . import events as ev
from .media import audio_frame, dtmf_frame
from .playout import FRAME_S, HeardTracker, Timeline, mix
from .script import load_caller_audio

if TYPE_CHECKING:
    from .call import EmulatedCall


async def run_clock(call: EmulatedCall) -> None:
    """The call's real-time 20 ms clock (absolute deadlines, so no drift)."""
    s = call.script
    rate = call.media.rate if call.media else 16000
    frame_bytes = rate // 50 * 2
    audio = call.caller_speech
    pcm = await asyncio.to_thread(load_caller_audio, s, rate)
    # The script's own audio (after start_delay_s of silence) plays before anything a live
    # caller queued with say() meanwhile, so it goes to the front of the queue.
    script_audio = audio.make(pcm, live=False, want_future=False)
    if script_audio is not None:
        audio.prepend(script_audio)
    start_tick = round(s.start_delay_s / FRAME_S)
    lead_in = audio.make(
        np.zeros(start_tick * frame_bytes // 2, "<i2"), live=False, want_future=False
    )
    if lead_in is not None:
        audio.prepend(lead_in)
    script_end_tick = start_tick + (script_audio.n_frames if script_audio else 0)
    silence = bytes(frame_bytes)
    silence_b64 = base64.b64encode(silence).decode("ascii")
    for t, d in s.dtmf:
        call.timed.add(t, "dtmf", d)
    for t, f in s.raw_frames:
        call.timed.add(t, "raw", f)
    for t in s.network.drops if s.network is not None else ():
        call.timed.add(t, "drop", "")
    hangup_tick = round(s.hangup_after_s / FRAME_S) if s.hangup_after_s is not None else None
    tail_s = call.tail_s
    tail_ticks = round(tail_s / FRAME_S) if tail_s is not None else None
    max_ticks = math.ceil(s.max_duration_s / FRAME_S)
    heard = call.heard = HeardTracker()
    timeline = call.timeline = Timeline(frame_bytes, record_caller=s.record_path is not None)
    loop = asyncio.get_running_loop()
    t0 = call.clock_t0 = loop.time()
    call.clock_started()
    caller_id = call.caller["rawId"]
    # Last tick anything was going on: the end of the script's audio, then every audible
    # agent tick and every live-said frame (for the tail_s hang-up).
    last_busy = script_end_tick
    tick = 0
    try:
        while call.end_request is None:
            delay = t0 + tick * FRAME_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if call.end_request is not None:
                break
            now_s = tick * FRAME_S
            for event in call.timed.due(now_s):
                await _timed_event(call, now_s, event.kind, event.payload)
                if event.future is not None and not event.future.done():
                    event.future.set_result(round(now_s, 3))
            call.media_ops.tick(now_s)
            pulled = audio.pull(tick)
            if pulled is None:
                frame, silent, b64 = silence, True, silence_b64
            else:
                frame, utt = pulled
                silent = frame == silence
                b64 = base64.b64encode(frame).decode("ascii")
                if utt.live:
                    last_busy = max(last_busy, tick + 1)
            # Added humans speak into the call: the service's mixed audio carries them
            # with the caller, and the caller hears them with the agent.
            voices = call.voices.pull(frame_bytes) if call.voices else None
            if voices is not None:
                mixed = mix(frame, voices) or frame
                silent = mixed == silence
                b64 = base64.b64encode(mixed).decode("ascii")
            sock = call.stream.socket
            if sock is not None and await sock.send(audio_frame(b64, caller_id, silent)):
                call.report.frames_sent += 1
            audio.frame_sent()  # resolves say() once its last frame is out
            agent = mix(call.playout.pull(tick), voices)
            heard.add(tick, agent)
            timeline.add(frame, agent)
            if heard.last_tick == tick:
                # max: agent audio over the caller's script must not pull the end earlier
                last_busy = max(last_busy, tick)
            tick += 1
            call.tick = tick
            call.waiters.check()
            if hangup_tick is not None and tick >= hangup_tick:
                call.request_end(
                    "caller", f"caller hung up at {s.hangup_after_s:g} s", ev.ENDED_BY_CALLER
                )
            elif (
                hangup_tick is None
                and tail_ticks is not None
                and audio.empty
                and tick - 1 - last_busy >= tail_ticks
            ):
                call.request_end(
                    "caller",
                    f"caller hung up {tail_s:g} s after the conversation went quiet",
                    ev.ENDED_BY_CALLER,
                )
            if tick >= max_ticks:
                call.request_end(
                    "timeout",
                    f"max_duration_s={s.max_duration_s:g} reached",
                    ev.ENDED_BY_CALLER,
                )
    finally:
        # Waiters learn at once that the call is over (not only after callbacks drain).
        call.close_caller()
        r = call.report
        r.heard_segments = heard.segments()
        r.heard_pcm = bytes(timeline.agent)
        r.underruns = call.playout.underruns
        r.underrun_times = [round(t * FRAME_S, 2) for t in call.playout.underrun_ticks]
        if s.record_path is not None and call.media is not None:
            await timeline.write_wav(s.record_path, rate)


async def _timed_event(call: EmulatedCall, now_s: float, kind: str, payload: str) -> None:
    sock = call.stream.socket
    if kind == "drop":
        call.spawn(call.stream.drop())
        return
    if kind == "raw":
        if sock is not None:
            await sock.send(payload)
        return
    if sock is not None and call.media is not None and call.media.dtmf:
        if await sock.send(dtmf_frame(payload)):
            call.report.dtmf_sent.append((round(now_s, 3), payload))
    call.media_ops.tone(now_s, payload)  # :recognize and continuous DTMF see it too
