"""One connection to a fake realtime server: the protocol as the public references describe
it (Voice Live: https://learn.microsoft.com/azure/ai-services/speech-service/voice-live-how-to,
OpenAI GA: https://platform.openai.com/docs/api-reference/realtime).

A caller turn runs speech_started → speech_stopped → committed → item created →
response.created → deltas → *.done → response.done; names and shapes per dialect. This
module holds the connection, the session settings and the input audio buffer; the
conversation items are in ``conversation.py`` and the responses in ``responses.py``.
Every client event is kept in ``received``, every server event in ``sent``, so tests can
assert on both.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callbridge.testing.fake_realtime import session_config
from callbridge.testing.fake_realtime.conversation import FakeConversation
from callbridge.testing.fake_realtime.responses import FakeResponder
from callbridge.testing.fake_realtime.script import Script, new_id
from callbridge.testing.fake_realtime.vad import EnergyVad
from callbridge.testing.fake_realtime.wire import Dialect, wire_name

if TYPE_CHECKING:
    from callbridge.testing.fake_realtime.server import FakeRealtimeServer

log = logging.getLogger(__name__)

_CLOSE = object()


class FakeSession:
    def __init__(
        self,
        server: FakeRealtimeServer,
        dialect: Dialect,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
    ) -> None:
        self.server = server
        self.dialect: Dialect = dialect
        self.id = new_id("sess")
        self.path = path
        self.query = query
        self.headers = headers
        self.received: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self.sent: list[dict[str, Any]] = []
        self.config: dict[str, Any] = session_config.default_config(dialect, query.get("model", ""))
        self.history = FakeConversation(self)
        self.responses = FakeResponder(self)
        self.vad = EnergyVad()
        self.closed_code: int | None = None
        self.closed = asyncio.Event()
        self._script: Script | None = None
        self._user_item: str | None = None
        self._uncommitted_ms = 0
        self._out: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ws: ServerConnection | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit_event,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self.history.create,
            "conversation.item.truncate": self.history.truncate,
            "conversation.item.delete": self.history.delete,
            "conversation.item.retrieve": self.history.retrieve,
            "response.create": self.responses.create,
            "response.cancel": self.responses.cancel,
        }

    # --- what tests look at -----------------------------------------------------------------
    @property
    def instructions(self) -> str:
        return str(self.config.get("instructions") or "")

    @property
    def script(self) -> Script:
        if self._script is None:
            self._script = self.server.script_for(self)
        return self._script

    @property
    def conversation(self) -> list[dict[str, Any]]:
        """The conversation's items, in order."""
        return self.history.items

    def client_events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind]

    def server_events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.sent if e.get("type") == kind]

    # --- the connection ------------------------------------------------------------------------
    async def run(self, ws: ServerConnection) -> None:
        self._ws = ws
        writer = asyncio.ensure_future(self._write(ws))
        self.emit("session.created", session=self._session_object())
        try:
            async for raw in ws:
                try:
                    event = json.loads(raw)
                except (TypeError, ValueError):
                    self.send_error("invalid_request_error", "invalid_json", "not JSON", None)
                    continue
                self.received.append(event)
                self.received_at.append(time.monotonic())
                self._handle(event)
        except ConnectionClosed:
            pass
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._out.put_nowait(_CLOSE)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 2)
            writer.cancel()
            if self.closed_code is None:
                self.closed_code = ws.close_code
            self.closed.set()

    async def _write(self, ws: ServerConnection) -> None:
        while True:
            item = await self._out.get()
            if item is _CLOSE:
                return
            if isinstance(item, tuple):  # (close code, reason): after what was queued
                self.closed_code = item[0]
                await ws.close(item[0], item[1])
                return
            await ws.send(item)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close after the events already queued (a drop mid-reply keeps what was sent)."""
        self._out.put_nowait((code, reason))

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def emit(self, canonical: str, **fields: Any) -> None:
        """Send a server event (``canonical`` is its beta name, renamed for GA)."""
        event = {"type": wire_name(self.dialect, canonical), "event_id": new_id("event"), **fields}
        text = json.dumps(event)
        self.sent.append(json.loads(text))  # a snapshot: items change later (truncate)
        self._out.put_nowait(text)

    def send_error(self, kind: str, code: str, message: str, event_id: str | None) -> None:
        error = {
            "type": kind,
            "code": code,
            "message": message,
            "param": None,
            "event_id": event_id,
        }
        self.emit("error", error=error)

    # --- client events -------------------------------------------------------------------------
    def _handle(self, ev: dict[str, Any]) -> None:
        kind = str(ev.get("type"))
        handler = self._handlers.get(kind)
        if handler is None:
            self.send_error(
                "invalid_request_error",
                "invalid_value",
                f"Invalid value: '{kind}'. Supported values are client events.",
                ev.get("event_id"),
            )
            return
        handler(ev)

    def _session_update(self, ev: dict[str, Any]) -> None:
        session = ev.get("session")
        eid = ev.get("event_id")
        if not isinstance(session, dict):
            self.send_error(
                "invalid_request_error",
                "missing_required_parameter",
                "Missing required parameter: 'session'.",
                eid,
            )
            return
        if self.dialect == "ga" and session.get("type") != "realtime":
            # GA requires session.type; the beta (flat) fields are gone.
            self.send_error(
                "invalid_request_error",
                "missing_required_parameter",
                "Missing required parameter: 'session.type'.",
                eid,
            )
            return
        # Voice Live takes the flat beta fields and no session.type.
        wrong = session_config.other_dialect_fields(self.dialect, session)
        if wrong:
            self.send_error(
                "invalid_request_error",
                "unknown_parameter",
                f"Unknown parameter: 'session.{wrong[0]}'.",
                eid,
            )
            return
        session_config.merge(self.config, session)
        self.vad.configure(self._turn_detection())
        self.emit("session.updated", session=self._session_object())

    def _append(self, ev: dict[str, Any]) -> None:
        audio = ev.get("audio")
        if not isinstance(audio, str):
            self.send_error(
                "invalid_request_error",
                "invalid_value",
                "audio must be base64 text",
                ev.get("event_id"),
            )
            return
        pcm = base64.b64decode(audio)
        self._uncommitted_ms += len(pcm) // 48
        if self._turn_detection() is None:
            return
        for vad in self.vad.push(pcm):
            if vad.kind == "started":
                self._user_item = new_id("item")
                self.emit(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=vad.ms,
                    item_id=self._user_item,
                )
                if (self._turn_detection() or {}).get("interrupt_response", True):
                    self.responses.interrupt()
            else:
                item_id = self._user_item or new_id("item")
                self.emit("input_audio_buffer.speech_stopped", audio_end_ms=vad.ms, item_id=item_id)
                self._commit(item_id, respond=True)

    def _commit_event(self, ev: dict[str, Any]) -> None:
        if self._uncommitted_ms <= 0:
            self.send_error(
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer is empty.",
                ev.get("event_id"),
            )
            return
        self._commit(new_id("item"), respond=False)

    def _commit(self, item_id: str, respond: bool) -> None:
        self._uncommitted_ms = 0
        previous = self.history.last_id()
        self.emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        item = self.history.shape(
            {
                "id": item_id,
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            }
        )
        self.history.add(item, previous)
        if self._transcription() is not None:
            text = self.script.next_caller_text()
            self.spawn(self._transcribe(item, text))
        turn = self._turn_detection() or {}
        if respond and turn.get("create_response", True) and self.responses.active is None:
            self.responses.start({})

    async def _transcribe(self, item: dict[str, Any], text: str) -> None:
        await asyncio.sleep(0.06)  # asynchronous, like the real thing
        item["content"][0]["transcript"] = text
        extra: dict[str, Any] = {}
        if self.dialect == "ga":
            extra["usage"] = {"type": "duration", "seconds": 1.0}
        self.emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item["id"],
            content_index=0,
            transcript=text,
            **extra,
        )

    def _clear(self, ev: dict[str, Any]) -> None:
        self._uncommitted_ms = 0
        self.emit("input_audio_buffer.cleared")

    # --- settings -----------------------------------------------------------------------------
    def _session_object(self) -> dict[str, Any]:
        return {"id": self.id, "object": "realtime.session", **self.config}

    def _turn_detection(self) -> dict[str, Any] | None:
        return session_config.turn_detection(self.dialect, self.config)

    def _transcription(self) -> dict[str, Any] | None:
        return session_config.transcription(self.dialect, self.config)
