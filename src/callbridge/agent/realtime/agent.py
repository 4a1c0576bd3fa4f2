"""RealtimeAgent: one call on a cloud speech-to-speech service (Voice Live or OpenAI GA).

The agent runs a *supervisor* that holds one service session at a time: it connects, sets
the session up (or re-seeds a new one with the conversation so far), then reads and writes
events until the socket ends; a lost socket is reconnected at once, and repeated losses end
the model's part of the call with an apology and the profile's fallback (or, with `fallback:
offline`, a `GaveUp` event for the FallbackAgent around it).

What the service says is handled in server_events.py. After a barge-in, `interrupted(heard)`
maps the heard milliseconds onto the items of the playback (ledger.py) and truncates the
audible item to what was heard, clamped to the audio received for it, deleting items nobody
heard (docs/realtime.md, "Barge-in"). In custom-voice mode the same happens by text: the item
is replaced with the words that were spoken.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from callbridge.agent.base import AgentEvent, GaveUp, ToolCall
from callbridge.agent.keypad import DigitCollector
from callbridge.agent.realtime.dialects import MODEL_RATE, SessionConfig
from callbridge.agent.realtime.ledger import Entry
from callbridge.agent.realtime.link import describe
from callbridge.agent.realtime.server_events import BYTES_PER_MS, ServerEvents
from callbridge.agent.realtime.setup import Fallback, RealtimeSetup
from callbridge.agent.realtime.voice import LocalVoice, SpeechJob
from callbridge.audio.resample import StreamResampler
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard

__all__ = ["Fallback", "RealtimeAgent", "RealtimeSetup"]

log = logging.getLogger(__name__)

_ids = itertools.count(1)


class RealtimeAgent(ServerEvents):
    def __init__(self, setup: RealtimeSetup) -> None:
        super().__init__(setup)
        self._keypad = DigitCollector(self._on_digits, setup.digit_timeout_s)

    # --- AgentSession ----------------------------------------------------------------------
    async def start(self, call: CallInfo) -> None:
        self._info = call
        # A call taken over from another replica: its conversation seeds the first session
        # as after a lost connection, and there is no greeting.
        for role, text in call.history:
            self._conv.entries.append(Entry("user" if role == "caller" else "assistant", text=text))
        self._rate = call.sample_rate
        self._to_model = StreamResampler(call.sample_rate, MODEL_RATE)
        self._from_model = StreamResampler(MODEL_RATE, call.sample_rate)
        if self._setup.instructions:
            self._instructions = self._setup.render(self._setup.persona, call)
        self._cfg = SessionConfig(self._instructions, self._opts, list(call.tools))
        if self._setup.speaker is not None:
            self._voice = LocalVoice(
                self._setup.speaker,
                self._setup.executor or _fallback_executor(),
                call.sample_rate,
                on_audio=self._emit_audio,
                on_sentence=self._on_spoken,
            )
        self._spawn(self._supervise())
        # "Session up" on the happy path; a slow or failing service is the supervisor's
        # business (the call goes on, caller audio is held meanwhile).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._link.ready.wait(), 2.0)

    async def push_audio(self, pcm: bytes) -> None:
        if self._closed or self._given_up:
            return
        self._in_buf += self._to_model.process(pcm)
        batch = int(self._setup.batch_ms * BYTES_PER_MS) & ~1
        while len(self._in_buf) >= batch:
            chunk = bytes(self._in_buf[:batch])
            del self._in_buf[:batch]
            if not (self._link.ready.is_set() and self._send_audio(chunk)):
                self._hold(chunk)

    async def push_dtmf(self, digit: str) -> None:
        self._keypad.push(digit)

    async def tool_result(self, call_id: str, output: str) -> None:
        if self._tools.result(call_id, output):
            self._flush_outputs()

    async def interrupted(self, heard: Heard) -> None:
        """Model audio carries no sentence marks, so what the caller heard is worked out
        here from `heard.ms`, item by item (custom voice: sentence by sentence, the same
        arithmetic as the call session's `heard.text`)."""
        if self._playback is not None:
            # No speech_started came first: the caller barged in with the keypad (or the
            # bridge stopped us for its own reasons). Same cut, same accounting.
            self._cut()
        playback, self._retired = self._retired, None
        if playback is None:
            return
        playback.handled = True
        for item, heard_ms in playback.heard_per_item(float(heard.ms)):
            self._truncation.decide(item, heard_ms)

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        """Say the profile's line for a call event (silence, time limit, transfer); it
        queues behind the reply in progress, never cutting the agent off."""
        template = self._setup.notices.get(notice, "")
        if not template or self._info is None or self._closed or self._given_up:
            return
        with contextlib.suppress(ValueError, IndexError):
            template = template.format_map(_Keep(detail))  # detail now, call variables next
        text = self._setup.render(template, self._info).strip()
        if not text:
            return
        if self._cfg.text_only and self._voice is not None:
            self._create_item(Entry("assistant", text=text))
            self._voice.say(SpeechJob(text, None, finish=notice))
        else:
            self._requests.request(self._dialect.say_exactly(text, self._instructions, "Now say"))

    def events(self) -> AsyncIterator[AgentEvent]:
        return aiter(self._events)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._keypad.close()
        if self._voice is not None:
            await self._voice.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._events.close()

    # --- caller audio ------------------------------------------------------------------------
    def _send_audio(self, chunk: bytes) -> bool:
        audio = base64.b64encode(chunk).decode("ascii")
        return self._link.send({"type": "input_audio_buffer.append", "audio": audio})

    def _hold(self, chunk: bytes) -> None:
        self._held.append(chunk)
        keep = self._setup.buffer_while_down_ms // max(1, self._setup.batch_ms)
        while len(self._held) > keep:
            self._held.popleft()

    # --- the connection ----------------------------------------------------------------------
    async def _supervise(self) -> None:
        first = not self._conv.entries
        loop = asyncio.get_running_loop()
        while not self._closed:
            began = loop.time()
            try:
                transport = await asyncio.wait_for(
                    self._setup.connector.connect(), self._setup.connect_timeout_s
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Some exceptions have no text (the connect timeout's TimeoutError, a bare
                # ConnectionError): the log names the type so it always says what failed.
                what = describe(exc)
                elapsed = loop.time() - began
                log.warning("realtime connection failed after %.1f s: %s", elapsed, what)
                if not await self._after_failure(f"cannot connect: {what}"):
                    return
                continue
            self._expiring = False
            try:
                await self._link.serve(
                    transport, self._greet if first else self._reseed, self._dispatch
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("realtime session failed")
            first = False
            if self._closed:
                return
            self._on_lost()
            if self._expiring:
                log.info("realtime session expired: starting a new one")
                continue
            if not await self._after_failure("the connection to the model was lost"):
                return

    async def _after_failure(self, reason: str) -> bool:
        """Count a failure; False (after falling back) when there were too many."""
        delay = self._failures.add()
        if delay is None:
            await self._give_up(reason)
            return False
        if delay:
            await asyncio.sleep(delay)
        return True

    def _on_lost(self) -> None:
        """The socket is gone: what was in flight cannot finish; remember what to resume."""
        partial = ""
        unanswered = False
        for st in self._responses.values():
            if st.done:
                continue
            st.done, st.lost, st.status = True, True, "lost"
            self._tools.lost(st)
            if st.out_of_band or st.dropped:
                continue
            unanswered = True
            text = " ".join(it.transcript for it in st.items if it.transcript).strip()
            # Custom voice: a half-written sentence is not said; the new session goes on.
            rest = " ".join(st.splitter.flush())
            if rest and text.endswith(rest):
                text = text[: -len(rest)].strip()
            partial = (partial + " " + text).strip()
        self._requests.lost()
        if partial:
            self._resume_note = partial
        elif unanswered:
            self._requests.request({})

    # --- setting a session up ---------------------------------------------------------------
    def _open(self) -> None:
        """A session is up: set it up, then what the caller said while there was none."""
        self._send(self._dialect.session_update(self._cfg))

    def _after_open(self) -> None:
        while self._held:
            self._send_audio(self._held.popleft())
        self._requests.pump()

    def _greet(self) -> None:
        self._open()
        self._say_greeting()
        self._after_open()

    def _say_greeting(self) -> None:
        if not self._opts.greet_first or self._info is None:
            return
        greeting = self._setup.render(self._setup.greeting, self._info).strip()
        if not greeting:
            self._requests.request({})  # the model greets as its instructions say
        elif self._cfg.text_only and self._voice is not None:
            # Custom voice: no need to ask the model for fixed words; say them at once and
            # let the model know they were said.
            self._create_item(Entry("assistant", text=greeting))
            self._voice.say(SpeechJob(greeting, None, finish="greeting"))
        else:
            self._requests.request(self._dialect.say_exactly(greeting, self._instructions))

    def _reseed(self) -> None:
        """A new session after a lost one: the conversation so far, then carry on."""
        self._open()
        entries = self._conv.reset_for_reseed(self._setup.reseed_limit)
        for entry in entries:
            self._create_item(entry)
        if self._resume_note is not None:
            note = (
                "The connection dropped while you were answering. The caller heard you say: "
                f'"{self._resume_note}". Continue from there, without repeating it.'
            )
            body = {"instructions": _join(self._instructions, note)}
            self._requests.request(body, first=True)
            self._resume_note = None
        elif entries and entries[-1].kind in ("user", "function_call_output"):
            self._requests.request({})
        log.info("new realtime session seeded with %d conversation items", len(entries))
        self._flush_outputs()
        self._after_open()

    # --- keypad ------------------------------------------------------------------------------
    def _on_digits(self, digits: str) -> None:
        text = f"(The caller pressed these keys on the phone keypad: {' '.join(digits)})"
        self._create_item(Entry("user", text=text))
        self._requests.request({})

    # --- when the model is gone -------------------------------------------------------------
    async def _give_up(self, reason: str) -> None:
        """Apologise in callbridge's own voice, then the profile's fallback."""
        self._given_up = True
        log.error(
            "realtime model unavailable (%s): falling back to %s", reason, self._setup.fallback
        )
        if self._setup.fallback == "offline":
            # The FallbackAgent around this one starts the offline agent, whose greeting is
            # the apology and the hand-over line.
            self._emit(GaveUp(reason))
            return
        text = self._setup.apology
        if self._setup.fallback != "transfer":
            text = f"{text} {self._setup.goodbye}"
        if self._voice is not None:
            spoken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._voice.say(SpeechJob(text, None, finish="apology", spoken=spoken))
            await spoken
        if self._setup.fallback == "transfer":
            action = ToolCall(
                f"fallback-{next(_ids)}",
                "transfer_to_human",
                {"summary": f"The voice agent failed ({reason}); please take over."},
            )
        else:
            action = ToolCall(f"fallback-{next(_ids)}", "end_call", {})
        self._emit(action)


_pool: ThreadPoolExecutor | None = None


def _fallback_executor() -> Executor:
    """For a speaker given without an executor (the runtime passes the speech pool)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="realtime-tts")
    return _pool


class _Keep(dict[str, Any]):
    """format_map helper: fields it does not know stay as they are (call variables)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _join(instructions: str | None, extra: str) -> str:
    return f"{instructions}\n\n{extra}" if instructions else extra
