"""RealtimeAgent: one call on a cloud speech-to-speech service (Voice Live or OpenAI GA).

The agent runs a *supervisor* that holds one service session at a time: it connects, sets
the session up (or re-seeds a new one with the conversation so far), then reads and writes
events until the socket ends; a lost socket is reconnected at once, and repeated losses end
the model's part of the call with an apology and the profile's fallback.

Barge-in (realtime-protocols.md §3.2): on `speech_started` the bridge hears SpeechStarted at
once and flushes its playout; the response in flight is marked *dropped* (its late deltas are
never forwarded) and cancelled if the server does not do it by itself; `interrupted(heard)`
then maps the heard milliseconds onto the items of the playback (ledger.py) and truncates
the audible item to what was heard, clamped to the audio received for it, deleting items
nobody heard. In custom-voice mode the same happens by text: the item is replaced with the
words that were spoken.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    AgentSession,
    AgentTranscript,
    CallerTranscript,
    CallInfo,
    EventStream,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
)
from callbridge.agent.realtime.dialects import MODEL_RATE, SessionConfig
from callbridge.agent.realtime.ledger import (
    Conversation,
    Entry,
    ItemState,
    Playback,
    ResponseState,
)
from callbridge.agent.realtime.link import Failures, Link
from callbridge.agent.realtime.options import RealtimeOptions
from callbridge.agent.realtime.requests import ResponseRequests
from callbridge.agent.realtime.speech import Speaker
from callbridge.agent.realtime.tool_calls import ToolCalls
from callbridge.agent.realtime.transport import Connector
from callbridge.agent.realtime.truncation import Truncation
from callbridge.agent.realtime.voice import LocalVoice, SpeechJob
from callbridge.audio.pcm import duration_ms
from callbridge.audio.resample import StreamResampler

log = logging.getLogger(__name__)

Fallback = Literal["transfer", "goodbye", "offline"]
_BYTES_PER_MS = MODEL_RATE * 2 / 1000


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
    offline: Callable[[], AgentSession] | None = None  # for `fallback: offline`
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


_ids = itertools.count(1)


class RealtimeAgent:
    def __init__(self, setup: RealtimeSetup) -> None:
        self._setup = setup
        self._opts = setup.options
        self._dialect = setup.connector.dialect
        self._events = EventStream()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._info: CallInfo | None = None
        self._rate = MODEL_RATE
        self._cfg = SessionConfig(None, self._opts)
        self._instructions: str | None = None
        self._to_model = StreamResampler(MODEL_RATE, MODEL_RATE)
        self._from_model = StreamResampler(MODEL_RATE, MODEL_RATE)
        self._in_buf = bytearray()
        self._held: collections.deque[bytes] = collections.deque()  # audio while down
        # the live session
        self._link = Link(self._dialect)
        self._expiring = False
        self._failures = Failures(
            self._opts.max_failures, self._opts.failure_window_s, setup.reconnect_delays
        )
        # responses and items
        self._requests = ResponseRequests(self._link.send)
        self._responses: dict[str, ResponseState] = {}
        self._items: dict[str, ItemState] = {}
        self._conv = Conversation()
        self._truncation = Truncation(
            self._link.send,
            self._conv,
            self._create_item,
            self._on_heard,
            server_truncates=self._opts.turn_detection.auto_truncate,
        )
        self._tools = ToolCalls(
            self._conv, self._create_item, self._truncation.delete, self._requests, self._emit
        )
        self._resume_note: str | None = None
        self._retry_failed = True
        # what the bridge has
        self._playback: Playback | None = None
        self._retired: Playback | None = None
        self._caller_speaking = False
        self._voice: LocalVoice | None = None
        # keypad and fallback
        self._digits = ""
        self._digit_timer: asyncio.TimerHandle | None = None
        self._given_up = False
        self._offline: AgentSession | None = None

    # --- AgentSession ----------------------------------------------------------------------
    async def start(self, call: CallInfo) -> None:
        self._info = call
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
        if self._offline is not None:
            await self._offline.push_audio(pcm)
            return
        if self._closed or self._given_up:
            return
        self._in_buf += self._to_model.process(pcm)
        batch = int(self._setup.batch_ms * _BYTES_PER_MS) & ~1
        while len(self._in_buf) >= batch:
            chunk = bytes(self._in_buf[:batch])
            del self._in_buf[:batch]
            if not (self._link.ready.is_set() and self._send_audio(chunk)):
                self._hold(chunk)

    async def push_dtmf(self, digit: str) -> None:
        if self._offline is not None:
            await self._offline.push_dtmf(digit)
            return
        if self._digit_timer is not None:
            self._digit_timer.cancel()
            self._digit_timer = None
        self._digits += digit
        if digit == "#":
            self._flush_digits()
        else:
            loop = asyncio.get_running_loop()
            self._digit_timer = loop.call_later(self._setup.digit_timeout_s, self._flush_digits)

    async def tool_result(self, call_id: str, output: str) -> None:
        if self._offline is not None:
            await self._offline.tool_result(call_id, output)
            return
        if self._tools.result(call_id, output):
            self._flush_outputs()

    async def interrupted(self, heard_ms: int) -> None:
        if self._offline is not None:
            await self._offline.interrupted(heard_ms)
            return
        if self._playback is not None:
            # No speech_started came first: the caller barged in with the keypad (or the
            # bridge stopped us for its own reasons). Same cut, same accounting.
            self._cut()
        playback, self._retired = self._retired, None
        if playback is None:
            return
        playback.handled = True
        for item, heard in playback.heard_per_item(float(heard_ms)):
            self._truncation.decide(item, heard)

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        """Say the profile's line for a call event (silence, time limit, transfer); it
        queues behind the reply in progress, never cutting the agent off."""
        if self._offline is not None:
            await self._offline.notify(notice, detail)
            return
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
        if self._digit_timer is not None:
            self._digit_timer.cancel()
        if self._voice is not None:
            await self._voice.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._offline is not None:
            with contextlib.suppress(Exception):
                await self._offline.close()
        self._events.close()

    # --- plumbing ----------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _emit(self, event: AgentEvent) -> None:
        if not self._closed:
            self._events.put(event)

    def _send(self, event: dict[str, Any]) -> bool:
        return self._link.send(event)

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
        first = True
        while not self._closed:
            try:
                transport = await asyncio.wait_for(
                    self._setup.connector.connect(), self._setup.connect_timeout_s
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime connection failed: %s", exc)
                if not await self._after_failure(f"cannot connect: {exc}"):
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

    def _dispatch(self, kind: str, event: dict[str, Any]) -> None:
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)

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

    def _create_item(self, entry: Entry, after: str | None = None) -> None:
        self._conv.expect(entry, after)
        event: dict[str, Any] = {
            "type": "conversation.item.create",
            "item": self._conv.reseed_item(entry, self._dialect),
        }
        if after is not None:
            event["previous_item_id"] = after
        self._send(event)

    # --- server events -----------------------------------------------------------------------
    def _response(self, response_id: str) -> ResponseState:
        st = self._responses.get(response_id)
        if st is None:
            st = self._responses[response_id] = ResponseState(response_id)
            if len(self._responses) > 200:  # keep the recent ones only
                for key in list(self._responses)[:100]:
                    if self._responses[key].done:
                        del self._responses[key]
        return st

    def _item(self, st: ResponseState, item_id: str) -> ItemState:
        item = self._items.get(item_id)
        if item is None:
            item = self._items[item_id] = st.item(item_id, self._cfg.text_only)
            entry = self._conv.find(item_id)
            if entry is not None:
                entry.item = item
            if len(self._items) > 400:
                for key in list(self._items)[:200]:
                    del self._items[key]
        return item

    def _on_session_created(self, ev: dict[str, Any]) -> None:
        session = ev.get("session") or {}
        expires = session.get("expires_at")  # 2026-07-15 and later (§6 limits)
        log.info("realtime session %s (expires at %s)", session.get("id"), expires)

    def _on_error(self, ev: dict[str, Any]) -> None:
        err = ev.get("error") or {}
        code = str(err.get("code") or "")
        message = str(err.get("message") or "")
        sent = self._link.origin(err.get("event_id"))
        kind = sent[0] if sent else ""
        if code == "session_expired":
            self._expiring = True
            log.info("realtime session expired: %s", message)
        elif code == "response_cancel_not_active" or kind == "response.cancel":
            log.debug("nothing to cancel: %s", message)  # benign race (§3.2 step 2)
        elif code == "conversation_already_has_active_response" or kind == "response.create":
            busy = code == "conversation_already_has_active_response"  # §7 create races
            self._requests.refused(sent[1].get("response") if sent else None, busy)
            if not busy:
                log.warning("response.create refused: %s %s", code, message)
        elif kind in ("conversation.item.truncate", "conversation.item.delete"):
            log.warning("%s refused: %s %s", kind, code, message)
        else:
            log.warning("realtime error %s: %s", code or err.get("type"), message)

    def _on_speech_started(self, ev: dict[str, Any]) -> None:
        self._caller_speaking = True
        self._emit(SpeechStarted())
        self._cut()

    def _cut(self) -> None:
        """The caller interrupts: what is handed over so far becomes the retired playback
        (for `interrupted`), what is still being made or said is dropped."""
        playback, self._playback = self._playback, None
        settle: list[ItemState] = []
        cut_short = False  # a reply was still being made or spoken
        if playback is not None:
            self._retired = playback
            self._from_model = StreamResampler(MODEL_RATE, self._rate)  # no stale filter tail
            settle += [seg.item for seg in playback.segments if seg.item is not None]
        if self._voice is not None:
            for job in self._voice.cut():
                cut_short = cut_short or job.finish is not None
                if job.item is not None:
                    settle.append(job.item)
        for st in self._responses.values():
            if not st.done and not st.dropped:
                st.dropped = True
                cut_short = True
                settle += st.items
                self._spawn(self._make_sure_cancelled(st))
        if cut_short:
            self._emit(ResponseDone(playback.id if playback else "none", interrupted=True))
        if settle:
            self._spawn(self._settle_later(playback, settle))

    def _on_speech_stopped(self, ev: dict[str, Any]) -> None:
        self._caller_speaking = False
        self._emit(SpeechStopped())

    def _on_committed(self, ev: dict[str, Any]) -> None:
        if not self._opts.turn_detection.create_response:
            self._requests.request({})

    def _on_item_created(self, ev: dict[str, Any]) -> None:
        item = ev.get("item") or {}
        entry = self._conv.on_created(item, ev.get("previous_item_id"))
        if entry is not None and entry.kind == "assistant" and entry.item is None:
            entry.item = self._items.get(str(item.get("id")))

    def _on_item_deleted(self, ev: dict[str, Any]) -> None:
        self._conv.remove(str(ev.get("item_id")))

    def _on_transcription(self, ev: dict[str, Any]) -> None:
        text = str(ev.get("transcript") or "").strip()
        entry = self._conv.find(str(ev.get("item_id")))
        if entry is not None:
            entry.text = text
        if text:
            self._emit(CallerTranscript(text))

    def _on_response_created(self, ev: dict[str, Any]) -> None:
        body = ev.get("response") or {}
        st = self._response(str(body.get("id")))
        metadata = body.get("metadata") or {}
        st.out_of_band = isinstance(metadata, dict) and metadata.get("callbridge") == "filler"
        self._requests.created(st)

    def _on_output_item(self, ev: dict[str, Any]) -> None:
        item = ev.get("item") or {}
        st = self._response(str(ev.get("response_id")))
        if item.get("type") == "message":
            self._item(st, str(item.get("id")))
        elif item.get("type") == "function_call":
            self._tools.named(item)

    def _on_audio_delta(self, ev: dict[str, Any]) -> None:
        st = self._response(str(ev.get("response_id")))
        item = self._item(st, str(ev.get("item_id")))
        pcm = base64.b64decode(str(ev.get("delta") or ""))
        item.received_ms += len(pcm) / _BYTES_PER_MS
        if st.dropped or st.done or self._given_up:
            return  # late audio of an interrupted response (§3.2 step 4)
        out = self._from_model.process(pcm)
        if out:
            self._emit_audio(out, item)

    def _on_transcript_delta(self, ev: dict[str, Any]) -> None:
        st = self._response(str(ev.get("response_id")))
        self._item(st, str(ev.get("item_id"))).transcript += str(ev.get("delta") or "")

    def _on_transcript_done(self, ev: dict[str, Any]) -> None:
        st = self._response(str(ev.get("response_id")))
        item = self._item(st, str(ev.get("item_id")))
        item.transcript = str(ev.get("transcript") or item.transcript)
        if not st.dropped and item.transcript and not self._cfg.text_only:
            self._emit(AgentTranscript(item.transcript, self._playback_id(st.id)))

    def _on_text_delta(self, ev: dict[str, Any]) -> None:
        st = self._response(str(ev.get("response_id")))
        item = self._item(st, str(ev.get("item_id")))
        delta = str(ev.get("delta") or "")
        item.transcript += delta
        if self._cfg.text_only and not st.dropped:
            for sentence in st.splitter.push(delta):
                self._say(sentence, item)

    def _on_text_done(self, ev: dict[str, Any]) -> None:
        st = self._response(str(ev.get("response_id")))
        item = self._item(st, str(ev.get("item_id")))
        item.transcript = str(ev.get("text") or item.transcript)
        if self._cfg.text_only and not st.dropped:
            for sentence in st.splitter.flush():
                self._say(sentence, item)

    def _on_arguments_done(self, ev: dict[str, Any]) -> None:
        self._tools.arguments_done(self._response(str(ev.get("response_id"))), ev)

    def _on_response_done(self, ev: dict[str, Any]) -> None:
        body = ev.get("response") or {}
        st = self._response(str(body.get("id")))
        st.done = True
        st.status = str(body.get("status") or "completed")
        for item in st.items:
            if item.heard_ms is not None and not item.settled:
                self._truncation.settle(item)
        if st.status == "completed":
            self._retry_failed = True
            if st.calls:
                self._tools.start(st)
                # The bridge is told the agent is still busy (it waits for the answer to a
                # tool before ending a call or transferring); a slow tool gets a filler.
                self._emit(AgentAudio(b"", self._ensure_playback().id))
                self._spawn(self._filler_after_delay(st))
            elif not st.dropped:
                self._finish(st)
        else:
            self._tools.abandon(st)
            if st.status == "failed":
                details = body.get("status_details") or {}
                log.warning("response %s failed: %s", st.id, details)
                if self._retry_failed and not st.dropped and not st.out_of_band:
                    self._retry_failed = False  # once: a failing model must not loop
                    self._requests.request({})
            if not st.dropped:
                self._finish(st)
        self._flush_outputs()
        self._requests.done(st)

    def _finish(self, st: ResponseState) -> None:
        """The bridge hears ResponseDone after the response's last audio."""
        if self._cfg.text_only and self._voice is not None and not st.out_of_band:
            rest = st.splitter.flush()
            if rest and st.items:
                self._say(" ".join(rest), st.items[-1])
            self._voice.say(SpeechJob("", None, finish=st.id))
        else:
            self._emit(ResponseDone(self._playback_id(st.id), interrupted=st.dropped))

    def _playback_id(self, fallback: str) -> str:
        return self._playback.id if self._playback is not None else fallback

    # --- tools -------------------------------------------------------------------------------
    def _flush_outputs(self) -> None:
        if self._link.up:
            self._tools.flush(self._response_done, self._caller_speaking)

    def _response_done(self, response_id: str) -> bool:
        st = self._responses.get(response_id)
        return st is None or st.done

    async def _filler_after_delay(self, st: ResponseState) -> None:
        await asyncio.sleep(self._opts.tool_filler_after_s)
        if not self._tools.waiting(st.id) or not self._opts.tool_filler or self._caller_speaking:
            return
        if self._cfg.text_only:
            if self._voice is not None:
                self._say(self._opts.tool_filler, None)
        else:
            self._requests.filler(self._dialect.filler(self._opts.tool_filler, self._cfg))

    # --- audio and speech to the bridge -----------------------------------------------------
    def _ensure_playback(self) -> Playback:
        if self._playback is None:
            self._playback = Playback()
        return self._playback

    def _emit_audio(self, pcm: bytes, item: ItemState | None) -> None:
        playback = self._ensure_playback()
        playback.add(duration_ms(len(pcm), self._rate), item)
        self._emit(AgentAudio(pcm, playback.id))

    def _say(self, text: str, item: ItemState | None) -> None:
        if self._voice is not None:
            self._voice.say(SpeechJob(text, item))

    def _on_spoken(self, job: SpeechJob) -> None:
        if job.text:
            self._emit(AgentTranscript(job.text, self._playback_id("local")))
        if job.finish is not None:
            self._emit(ResponseDone(self._playback_id(job.finish)))

    # --- barge-in -------------------------------------------------------------------------
    async def _make_sure_cancelled(self, st: ResponseState) -> None:
        """§3.2 step 2: the server cancels by itself when `interrupt_response` is on; if the
        response is still going after a moment (or that is off), cancel it ourselves."""
        if self._opts.turn_detection.interrupt_response:
            await asyncio.sleep(self._setup.cancel_grace_s)
        if not st.done:
            self._send({"type": "response.cancel", "response_id": st.id})

    async def _settle_later(self, playback: Playback | None, items: list[ItemState]) -> None:
        """Items `interrupted()` did not account for (the bridge was not playing anything, so
        the caller heard all that was handed over): decide them as heard so far."""
        await asyncio.sleep(self._setup.settle_grace_s)
        if playback is not None and not playback.handled and self._retired is playback:
            self._retired = None
        for item in items:
            self._truncation.decide(item, item.emitted_ms)

    def _on_heard(self, item: ItemState) -> None:
        self._emit(AgentTranscript(item.heard_transcript(), self._playback_id("heard")))

    # --- keypad --------------------------------------------------------------------------
    def _flush_digits(self) -> None:
        digits, self._digits = self._digits, ""
        self._digit_timer = None
        if not digits or self._offline is not None:
            return
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
        if self._setup.fallback == "offline" and self._setup.offline is not None and self._info:
            offline = self._setup.offline()
            await offline.start(self._info)  # its greeting is the apology
            self._offline = offline
            self._spawn(self._forward(offline))
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

    async def _forward(self, offline: AgentSession) -> None:
        async for event in offline.events():
            self._emit(event)


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


_HANDLERS: dict[str, Callable[[RealtimeAgent, dict[str, Any]], None]] = {
    "session.created": RealtimeAgent._on_session_created,
    "error": RealtimeAgent._on_error,
    "input_audio_buffer.speech_started": RealtimeAgent._on_speech_started,
    "input_audio_buffer.speech_stopped": RealtimeAgent._on_speech_stopped,
    "input_audio_buffer.committed": RealtimeAgent._on_committed,
    "conversation.item.created": RealtimeAgent._on_item_created,
    "conversation.item.deleted": RealtimeAgent._on_item_deleted,
    "conversation.item.input_audio_transcription.completed": RealtimeAgent._on_transcription,
    "response.created": RealtimeAgent._on_response_created,
    "response.output_item.added": RealtimeAgent._on_output_item,
    "response.audio.delta": RealtimeAgent._on_audio_delta,
    "response.audio_transcript.delta": RealtimeAgent._on_transcript_delta,
    "response.audio_transcript.done": RealtimeAgent._on_transcript_done,
    "response.text.delta": RealtimeAgent._on_text_delta,
    "response.text.done": RealtimeAgent._on_text_done,
    "response.function_call_arguments.done": RealtimeAgent._on_arguments_done,
    "response.done": RealtimeAgent._on_response_done,
}
