"""What a realtime service says, and what the agent does about it.

`ServerEvents` holds one call's state on the service — responses and their items, the
conversation, the tool calls, what was handed to the bridge under which playback id — and
handles each server event by its canonical name (`_HANDLERS`). The caller-facing session
(`RealtimeAgent`, agent.py) builds on it with the AgentSession calls and the connection.

Barge-in (docs/realtime.md, "Barge-in"): on `speech_started` the bridge hears SpeechStarted
at once and flushes its playout; the response in flight is marked *dropped* (its late deltas
are never forwarded) and cancelled if the server does not do it by itself. What the caller
heard is then decided per item (`RealtimeAgent.interrupted`, truncation.py).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
from collections.abc import Callable
from typing import Any

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    AgentTranscript,
    CallerTranscript,
    EventStream,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
)
from callbridge.agent.realtime.dialects import MODEL_RATE, SessionConfig
from callbridge.agent.realtime.ledger import (
    BridgePlayback,
    Conversation,
    Entry,
    ItemState,
    ResponseState,
)
from callbridge.agent.realtime.link import Failures, Link
from callbridge.agent.realtime.requests import ResponseRequests
from callbridge.agent.realtime.setup import RealtimeSetup
from callbridge.agent.realtime.tool_calls import ToolCalls
from callbridge.agent.realtime.truncation import Truncation
from callbridge.agent.realtime.voice import LocalVoice, SpeechJob
from callbridge.audio.pcm import duration_ms
from callbridge.audio.resample import StreamResampler
from callbridge.core.call_info import CallInfo

log = logging.getLogger(__name__)

BYTES_PER_MS = MODEL_RATE * 2 / 1000


class ServerEvents:
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
        self._playback: BridgePlayback | None = None
        self._retired: BridgePlayback | None = None
        self._caller_speaking = False
        self._voice: LocalVoice | None = None
        self._given_up = False  # the model is gone for good

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

    def _create_item(self, entry: Entry, after: str | None = None) -> None:
        self._conv.expect(entry, after)
        event: dict[str, Any] = {
            "type": "conversation.item.create",
            "item": self._conv.reseed_item(entry, self._dialect),
        }
        if after is not None:
            event["previous_item_id"] = after
        self._send(event)

    def _dispatch(self, kind: str, event: dict[str, Any]) -> None:
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)

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
        expires = session.get("expires_at")  # sent by newer API versions
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
            log.debug("nothing to cancel: %s", message)  # benign race: it ended by itself
        elif code == "conversation_already_has_active_response" or kind == "response.create":
            busy = code == "conversation_already_has_active_response"  # a create raced one
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
        item.received_ms += len(pcm) / BYTES_PER_MS
        if st.dropped or st.done or self._given_up:
            return  # late audio of an interrupted response: deltas come until response.done
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
            for sentence in st.splitter.feed(delta):
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
    def _playback_id(self, fallback: str) -> str:
        return self._playback.id if self._playback is not None else fallback

    def _ensure_playback(self) -> BridgePlayback:
        if self._playback is None:
            self._playback = BridgePlayback()
        return self._playback

    def _emit_audio(self, pcm: bytes, item: ItemState | None, text: str = "") -> None:
        """Hand audio to the bridge; `text`: the sentence it starts, when we speak it."""
        playback = self._ensure_playback()
        playback.add(duration_ms(len(pcm), self._rate), item)
        self._emit(AgentAudio(pcm, playback.id, text))

    def _say(self, text: str, item: ItemState | None) -> None:
        if self._voice is not None:
            self._voice.say(SpeechJob(text, item))

    def _on_spoken(self, job: SpeechJob) -> None:
        if job.text:
            self._emit(AgentTranscript(job.text, self._playback_id("local")))
        if job.finish is not None:
            self._emit(ResponseDone(self._playback_id(job.finish)))

    # --- barge-in ----------------------------------------------------------------------------
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

    async def _make_sure_cancelled(self, st: ResponseState) -> None:
        """The server cancels by itself when `interrupt_response` is on; if the response is
        still going after a moment (or that is off), cancel it ourselves."""
        if self._opts.turn_detection.interrupt_response:
            await asyncio.sleep(self._setup.cancel_grace_s)
        if not st.done:
            self._send({"type": "response.cancel", "response_id": st.id})

    async def _settle_later(self, playback: BridgePlayback | None, items: list[ItemState]) -> None:
        """Items `interrupted()` did not account for (the bridge was not playing anything, so
        the caller heard all that was handed over): decide them as heard so far."""
        await asyncio.sleep(self._setup.settle_grace_s)
        if playback is not None and not playback.handled and self._retired is playback:
            self._retired = None
        for item in items:
            self._truncation.decide(item, item.emitted_ms)

    def _on_heard(self, item: ItemState) -> None:
        self._emit(AgentTranscript(item.heard_transcript(), self._playback_id("heard")))


_HANDLERS: dict[str, Callable[[ServerEvents, dict[str, Any]], None]] = {
    "session.created": ServerEvents._on_session_created,
    "error": ServerEvents._on_error,
    "input_audio_buffer.speech_started": ServerEvents._on_speech_started,
    "input_audio_buffer.speech_stopped": ServerEvents._on_speech_stopped,
    "input_audio_buffer.committed": ServerEvents._on_committed,
    "conversation.item.created": ServerEvents._on_item_created,
    "conversation.item.deleted": ServerEvents._on_item_deleted,
    "conversation.item.input_audio_transcription.completed": ServerEvents._on_transcription,
    "response.created": ServerEvents._on_response_created,
    "response.output_item.added": ServerEvents._on_output_item,
    "response.audio.delta": ServerEvents._on_audio_delta,
    "response.audio_transcript.delta": ServerEvents._on_transcript_delta,
    "response.audio_transcript.done": ServerEvents._on_transcript_done,
    "response.text.delta": ServerEvents._on_text_delta,
    "response.text.done": ServerEvents._on_text_done,
    "response.function_call_arguments.done": ServerEvents._on_arguments_done,
    "response.done": ServerEvents._on_response_done,
}
