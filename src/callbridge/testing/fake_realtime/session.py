"""One connection to a fake realtime server: the protocol, as the reference describes it.

Event sequences follow realtime-protocols.md §5.3 (speech_started → speech_stopped →
committed → item created → response.created → deltas → *.done → response.done) and §4 for
function calls; names and shapes per dialect (§1.7 Voice Live, §2.6 GA). Every client event
is kept in `received`, every server event in `sent`, so tests can assert on both.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callbridge.testing.fake_realtime.script import (
    CallTool,
    Expire,
    Fail,
    Say,
    Script,
    Turn,
    new_id,
)
from callbridge.testing.fake_realtime.vad import EnergyVad
from callbridge.testing.fake_realtime.voice import voice_pcm
from callbridge.testing.fake_realtime.wire import Dialect, part_type, wire_name

if TYPE_CHECKING:
    from callbridge.testing.fake_realtime.server import FakeRealtimeServer

log = logging.getLogger(__name__)

_EXACTLY = re.compile(r'exactly:?\s*"([^"]+)"', re.IGNORECASE)
_CLOSE = object()


@dataclass(eq=False)
class _Run:
    """A response in progress."""

    id: str
    out_of_band: bool
    metadata: Any
    cancelled: str | None = None  # reason, once cancelled
    output: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


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
        self.config: dict[str, Any] = _default_config(dialect, query.get("model", ""))
        self.conversation: list[dict[str, Any]] = []
        self.audio_ms: dict[str, int] = {}  # assistant audio item -> ms it holds
        self.vad = EnergyVad()
        self.closed_code: int | None = None
        self.closed = asyncio.Event()
        self._script: Script | None = None
        self._active: _Run | None = None
        self._user_item: str | None = None
        self._uncommitted_ms = 0
        self._out: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ws: ServerConnection | None = None

    # --- what tests look at -----------------------------------------------------------------
    @property
    def instructions(self) -> str:
        return str(self.config.get("instructions") or "")

    @property
    def script(self) -> Script:
        if self._script is None:
            self._script = self.server.script_for(self)
        return self._script

    def client_events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind]

    def server_events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.sent if e.get("type") == kind]

    # --- the connection ------------------------------------------------------------------------
    async def run(self, ws: ServerConnection) -> None:
        self._ws = ws
        writer = asyncio.ensure_future(self._write(ws))
        self._emit("session.created", session=self._session_object())
        try:
            async for raw in ws:
                try:
                    event = json.loads(raw)
                except (TypeError, ValueError):
                    self._error("invalid_request_error", "invalid_json", "not JSON", None)
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

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _emit(self, canonical: str, **fields: Any) -> None:
        event = {"type": wire_name(self.dialect, canonical), "event_id": new_id("event"), **fields}
        text = json.dumps(event)
        self.sent.append(json.loads(text))  # a snapshot: items change later (truncate)
        self._out.put_nowait(text)

    def _error(self, kind: str, code: str, message: str, event_id: str | None) -> None:
        error = {
            "type": kind,
            "code": code,
            "message": message,
            "param": None,
            "event_id": event_id,
        }
        self._emit("error", error=error)

    # --- client events -------------------------------------------------------------------------
    def _handle(self, ev: dict[str, Any]) -> None:
        kind = str(ev.get("type"))
        handler = _CLIENT.get(kind)
        if handler is None:
            self._error(
                "invalid_request_error",
                "invalid_value",
                f"Invalid value: '{kind}'. Supported values are client events.",
                ev.get("event_id"),
            )
            return
        handler(self, ev)

    def _session_update(self, ev: dict[str, Any]) -> None:
        session = ev.get("session")
        eid = ev.get("event_id")
        if not isinstance(session, dict):
            self._error(
                "invalid_request_error",
                "missing_required_parameter",
                "Missing required parameter: 'session'.",
                eid,
            )
            return
        if self.dialect == "ga":
            # §2.3: session.type is required; the beta (flat) fields are gone (§2.7).
            if session.get("type") != "realtime":
                self._error(
                    "invalid_request_error",
                    "missing_required_parameter",
                    "Missing required parameter: 'session.type'.",
                    eid,
                )
                return
            beta = [k for k in _BETA_ONLY if k in session]
        else:
            beta = [k for k in _GA_ONLY if k in session]  # §1.8: flat fields, no session.type
        if beta:
            self._error(
                "invalid_request_error",
                "unknown_parameter",
                f"Unknown parameter: 'session.{beta[0]}'.",
                eid,
            )
            return
        _merge(self.config, session)
        self.vad.configure(self._turn_detection())
        self._emit("session.updated", session=self._session_object())

    def _append(self, ev: dict[str, Any]) -> None:
        audio = ev.get("audio")
        if not isinstance(audio, str):
            self._error(
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
                self._emit(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=vad.ms,
                    item_id=self._user_item,
                )
                run = self._active
                if run is not None and (self._turn_detection() or {}).get(
                    "interrupt_response", True
                ):
                    run.cancelled = run.cancelled or "turn_detected"  # §3.1
            else:
                item_id = self._user_item or new_id("item")
                self._emit(
                    "input_audio_buffer.speech_stopped", audio_end_ms=vad.ms, item_id=item_id
                )
                self._commit(item_id, respond=True)

    def _commit_event(self, ev: dict[str, Any]) -> None:
        if self._uncommitted_ms <= 0:
            self._error(
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer is empty.",
                ev.get("event_id"),
            )
            return
        self._commit(new_id("item"), respond=False)

    def _commit(self, item_id: str, respond: bool) -> None:
        self._uncommitted_ms = 0
        previous = self.conversation[-1]["id"] if self.conversation else None
        self._emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        item = self._item(
            {
                "id": item_id,
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            }
        )
        self._add(item, previous)
        if self._transcription() is not None:
            text = self.script.next_caller_text()
            self._spawn(self._transcribe(item, text))
        turn = self._turn_detection() or {}
        if respond and turn.get("create_response", True) and self._active is None:
            self._start_response({})

    async def _transcribe(self, item: dict[str, Any], text: str) -> None:
        await asyncio.sleep(0.06)  # asynchronous, like the real thing (§1.7)
        item["content"][0]["transcript"] = text
        extra: dict[str, Any] = {}
        if self.dialect == "ga":
            extra["usage"] = {"type": "duration", "seconds": 1.0}
        self._emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item["id"],
            content_index=0,
            transcript=text,
            **extra,
        )

    def _clear(self, ev: dict[str, Any]) -> None:
        self._uncommitted_ms = 0
        self._emit("input_audio_buffer.cleared")

    def _item_create(self, ev: dict[str, Any]) -> None:
        eid = ev.get("event_id")
        item = ev.get("item")
        if not isinstance(item, dict):
            self._error(
                "invalid_request_error",
                "missing_required_parameter",
                "Missing required parameter: 'item'.",
                eid,
            )
            return
        problem = self._check_item(item)
        if problem:
            self._error("invalid_request_error", "invalid_value", problem, eid)
            return
        previous = ev.get("previous_item_id")
        ids = [i["id"] for i in self.conversation]
        if previous not in (None, "root") and previous not in ids:
            self._error(
                "invalid_request_error",
                "item_not_found",
                f"Previous item with id '{previous}' not found.",
                eid,
            )
            return
        item = self._item({**item, "id": item.get("id") or new_id("item")})
        if previous == "root":
            self._add(item, None, done=True, root=True)
        else:
            self._add(
                item, previous if previous is not None else (ids[-1] if ids else None), done=True
            )

    def _check_item(self, item: dict[str, Any]) -> str | None:
        kind = item.get("type")
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role not in ("user", "assistant", "system") or not isinstance(content, list):
                return "a message needs a role (user, assistant, system) and content"
            allowed = (
                {"input_text", "input_audio", "input_image"}
                if role in ("user", "system")
                else {part_type(self.dialect, "text"), part_type(self.dialect, "audio")}
            )
            for part in content:
                if not isinstance(part, dict) or part.get("type") not in allowed:
                    got = part.get("type") if isinstance(part, dict) else part
                    return f"Invalid value: '{got}' is not a {role} content type here."
            return None
        if kind == "function_call":
            if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
                return "a function_call needs call_id, name and arguments (strings)"
            return None
        if kind == "function_call_output":
            if not isinstance(item.get("output"), str):
                return "Invalid type for 'item.output': expected a string."  # §4
            call_id = item.get("call_id")
            if not any(
                i.get("type") == "function_call" and i.get("call_id") == call_id
                for i in self.conversation
            ):
                return f"Tool call ID '{call_id}' not found in conversation."
            return None
        return f"Invalid value: '{kind}'."

    def _truncate(self, ev: dict[str, Any]) -> None:
        eid = ev.get("event_id")
        item_id = ev.get("item_id")
        end = ev.get("audio_end_ms")
        item = next((i for i in self.conversation if i["id"] == item_id), None)
        if item is None:
            self._error(
                "invalid_request_error",
                "item_not_found",
                f"Item with item_id '{item_id}' not found.",
                eid,
            )
            return
        held = self.audio_ms.get(str(item_id))
        if item.get("role") != "assistant" or not held or not isinstance(end, int):
            # The real message (§3.2, livekit/agents#6157).
            self._error(
                "invalid_request_error",
                "unsupported_content_type",
                "Only model output audio messages can be truncated",
                eid,
            )
            return
        if end > held:
            # The real message (§3.2, §7 truncate overflow).
            self._error(
                "invalid_request_error",
                "invalid_value",
                f"Audio content of {held}ms is already shorter than {end}ms",
                eid,
            )
            return
        self.audio_ms[str(item_id)] = end
        for part in item.get("content") or []:
            transcript = part.get("transcript")
            if isinstance(transcript, str) and held:
                words = transcript.split()
                part["transcript"] = " ".join(words[: int(len(words) * end / held)])
        self._emit(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=ev.get("content_index", 0),
            audio_end_ms=end,
        )

    def _delete(self, ev: dict[str, Any]) -> None:
        item_id = ev.get("item_id")
        before = len(self.conversation)
        self.conversation = [i for i in self.conversation if i["id"] != item_id]
        if len(self.conversation) == before:
            self._error(
                "invalid_request_error",
                "item_not_found",
                f"Item with item_id '{item_id}' not found.",
                ev.get("event_id"),
            )
            return
        self._emit("conversation.item.deleted", item_id=item_id)

    def _retrieve(self, ev: dict[str, Any]) -> None:
        item = next((i for i in self.conversation if i["id"] == ev.get("item_id")), None)
        if item is None:
            self._error(
                "invalid_request_error", "item_not_found", "Item not found.", ev.get("event_id")
            )
            return
        self._emit("conversation.item.retrieved", item=item)

    def _response_create(self, ev: dict[str, Any]) -> None:
        if self._active is not None:
            # The real message (§4 pitfalls).
            self._error(
                "invalid_request_error",
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self._active.id}. Wait until the response is finished before creating "
                "a new one.",
                ev.get("event_id"),
            )
            return
        params = ev.get("response")
        self._start_response(params if isinstance(params, dict) else {})

    def _response_cancel(self, ev: dict[str, Any]) -> None:
        run = self._active
        wanted = ev.get("response_id")
        if run is None or run.cancelled or (wanted and wanted != run.id):
            # §2.5, §3.2: benign, the session is unaffected.
            self._error(
                "invalid_request_error",
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                ev.get("event_id"),
            )
            return
        run.cancelled = "client_cancelled"

    # --- responses --------------------------------------------------------------------------
    def _start_response(self, params: dict[str, Any]) -> None:
        out_of_band = params.get("conversation") == "none"
        run = _Run(new_id("resp"), out_of_band, params.get("metadata"))
        self._active = run
        self._emit("response.created", response=self._response_object(run, "in_progress"))
        run.task = self._spawn(self._respond(run, params))

    async def _respond(self, run: _Run, params: dict[str, Any]) -> None:
        script = self.script
        text_only = self._text_only(params)
        turn = self._turn_for(params, run)
        status, details = "completed", None
        try:
            await asyncio.sleep(script.ttfa_ms / 1000)
            if isinstance(turn, Expire):
                self._error(
                    "invalid_request_error",
                    "session_expired",
                    "Your session hit the maximum duration of 30 minutes.",
                    None,
                )
                self.close(1001, "session_expired")
                return
            if isinstance(turn, Fail):
                status = "failed"
                details = {
                    "type": "failed",
                    "error": {
                        "type": "server_error",
                        "code": turn.code,
                        "message": "The server had an error.",
                    },
                }
            elif isinstance(turn, Say):
                if not await self._message(run, turn, text_only):
                    return  # the socket was dropped mid-reply
            else:
                if turn.preamble and not await self._message(run, Say(turn.preamble), text_only):
                    return
                if run.cancelled is None:
                    self._function_call(run, turn)
                    if turn.hold_done_ms:
                        await asyncio.sleep(turn.hold_done_ms / 1000)
            if run.cancelled is not None:
                status = "cancelled"
                details = {"type": "cancelled", "reason": run.cancelled}
            self._emit("response.done", response=self._response_object(run, status, details))
        finally:
            if self._active is run:
                self._active = None

    def _turn_for(self, params: dict[str, Any], run: _Run) -> Turn:
        pre = params.get("pre_generated_assistant_message")
        if self.dialect == "voicelive" and isinstance(pre, dict):  # §1.6 proactive message
            texts = [str(p.get("text") or "") for p in pre.get("content") or []]
            return Say(" ".join(t for t in texts if t))
        quote = _EXACTLY.search(str(params.get("instructions") or ""))
        if quote:
            return Say(quote.group(1))
        if run.out_of_band:
            return Say("One moment.")
        return self.script.next_turn()

    async def _message(self, run: _Run, say: Say, text_only: bool) -> bool:
        """Stream one assistant message; False when the socket was dropped in it."""
        script = self.script
        index = len(run.output)
        kind: Literal["audio", "text"] = "text" if text_only else "audio"
        item = self._item(
            {
                "id": new_id("item"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
        )
        run.output.append(item)
        self._emit("response.output_item.added", response_id=run.id, output_index=index, item=item)
        if not run.out_of_band:
            self._add(item, self.conversation[-1]["id"] if self.conversation else None)
        keys = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": index,
            "content_index": 0,
        }
        part: dict[str, Any] = {"type": part_type(self.dialect, kind)}
        part["text" if text_only else "transcript"] = ""
        self._emit("response.content_part.added", **keys, part=dict(part))
        words = say.text.split()
        total = say.duration_ms
        sent_ms = 0
        said = 0
        late = script.late_deltas  # a real service may still send some after a cancel
        while sent_ms < total and (run.cancelled is None or late > 0):
            if run.cancelled is not None:
                late -= 1
            ms = min(script.chunk_ms, total - sent_ms)
            if text_only:
                await asyncio.sleep(ms / 1000 / script.speed)
            else:
                pcm = voice_pcm(ms, sent_ms)
                self._emit(
                    "response.audio.delta", **keys, delta=base64.b64encode(pcm).decode("ascii")
                )
            sent_ms += ms
            if not text_only:
                self.audio_ms[item["id"]] = sent_ms
            upto = round(len(words) * sent_ms / total)
            if upto > said:
                delta = ("" if said == 0 else " ") + " ".join(words[said:upto])
                said = upto
                name = "response.text.delta" if text_only else "response.audio_transcript.delta"
                self._emit(name, **keys, delta=delta)
            if say.drop_after_ms is not None and sent_ms >= say.drop_after_ms:
                script.dropped += 1
                if script.refuse_after_drop:
                    self.server.refusing = True
                self.close(say.drop_code, "server error")
                return False
            if not text_only:
                await asyncio.sleep(ms / 1000 / script.speed)
        text = " ".join(words[:said])
        if text_only:
            self._emit("response.text.done", **keys, text=text)
        else:
            self._emit("response.audio.done", **keys)
            self._emit("response.audio_transcript.done", **keys, transcript=text)
        part["text" if text_only else "transcript"] = text
        self._emit("response.content_part.done", **keys, part=part)
        item["status"] = "completed" if run.cancelled is None else "incomplete"
        item["content"] = [part]
        self._emit("response.output_item.done", response_id=run.id, output_index=index, item=item)
        if self.dialect == "ga" and not run.out_of_band:
            self._emit("conversation.item.done", item=item)
        return True

    def _function_call(self, run: _Run, call: CallTool) -> None:
        index = len(run.output)
        call_id = new_id("call")
        arguments = json.dumps(dict(call.arguments))
        item = self._item(
            {
                "id": new_id("item"),
                "type": "function_call",
                "status": "in_progress",
                "name": call.name,
                "call_id": call_id,
                "arguments": "",
            }
        )
        run.output.append(item)
        self._emit(
            "response.output_item.added", response_id=run.id, output_index=index, item=dict(item)
        )
        self._add(item, self.conversation[-1]["id"] if self.conversation else None)
        keys = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": index,
            "call_id": call_id,
        }
        self._emit("response.function_call_arguments.delta", **keys, delta=arguments)
        extra = {"name": call.name} if self.dialect == "ga" else {}
        self._emit("response.function_call_arguments.done", **keys, **extra, arguments=arguments)
        item["arguments"] = arguments
        item["status"] = "completed"
        self._emit("response.output_item.done", response_id=run.id, output_index=index, item=item)
        if self.dialect == "ga":
            self._emit("conversation.item.done", item=item)

    # --- shapes -------------------------------------------------------------------------------
    def _item(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.dialect == "ga":
            item["object"] = "realtime.item"  # §2.7: all GA items carry object
        else:
            item.pop("object", None)
        return item

    def _add(
        self, item: dict[str, Any], previous: str | None, done: bool = False, root: bool = False
    ) -> None:
        if root:
            self.conversation.insert(0, item)
        elif previous is None:
            self.conversation.append(item)
        else:
            at = next(i for i, x in enumerate(self.conversation) if x["id"] == previous)
            self.conversation.insert(at + 1, item)
        self._emit("conversation.item.created", previous_item_id=previous, item=item)
        if done and self.dialect == "ga":
            self._emit("conversation.item.done", previous_item_id=previous, item=item)

    def _response_object(
        self, run: _Run, status: str, details: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        done = status != "in_progress"
        usage = {
            "total_tokens": 120,
            "input_tokens": 80,
            "output_tokens": 40,
            "input_token_details": {"cached_tokens": 0, "text_tokens": 40, "audio_tokens": 40},
            "output_token_details": {"text_tokens": 10, "audio_tokens": 30},
        }
        body: dict[str, Any] = {
            "id": run.id,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": run.output if done else [],
            "usage": usage if done else None,
            "conversation_id": None if run.out_of_band else f"conv_{self.id}",
            "metadata": run.metadata,
        }
        if self.dialect == "ga":
            body["output_modalities"] = self.config.get("output_modalities")
        else:
            body["modalities"] = self.config.get("modalities")
        return body

    def _session_object(self) -> dict[str, Any]:
        return {"id": self.id, "object": "realtime.session", **self.config}

    def _turn_detection(self) -> dict[str, Any] | None:
        if self.dialect == "ga":
            audio_in = (self.config.get("audio") or {}).get("input") or {}
            turn = audio_in.get("turn_detection", {"type": "server_vad"})
        else:
            turn = self.config.get("turn_detection", {"type": "server_vad"})
        return turn if isinstance(turn, dict) else None

    def _transcription(self) -> dict[str, Any] | None:
        if self.dialect == "ga":
            value = ((self.config.get("audio") or {}).get("input") or {}).get("transcription")
        else:
            value = self.config.get("input_audio_transcription")
        return value if isinstance(value, dict) else None

    def _text_only(self, params: dict[str, Any]) -> bool:
        if self.dialect == "ga":
            modalities = params.get("output_modalities") or self.config.get("output_modalities")
            return modalities == ["text"]
        modalities = params.get("modalities") or self.config.get("modalities") or []
        return "audio" not in modalities


_BETA_ONLY = (
    "modalities",
    "input_audio_format",
    "output_audio_format",
    "voice",
    "turn_detection",
    "input_audio_transcription",
    "temperature",
)
_GA_ONLY = ("type", "audio", "output_modalities", "max_output_tokens")


def _default_config(dialect: Dialect, model: str) -> dict[str, Any]:
    if dialect == "ga":
        pcm = {"type": "audio/pcm", "rate": 24000}
        return {
            "type": "realtime",
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {
                "input": {
                    "format": pcm,
                    "turn_detection": {"type": "server_vad"},
                    "transcription": None,
                    "noise_reduction": None,
                },
                "output": {"format": pcm, "voice": "marin"},
            },
            "tools": [],
            "tool_choice": "auto",
        }
    return {
        "model": model,
        "modalities": ["text", "audio"],
        "instructions": "",
        "voice": {"type": "openai", "name": "alloy"},
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "turn_detection": {"type": "server_vad"},
        "tools": [],
        "tool_choice": "auto",
    }


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """Only the fields present change (§2.3); nested objects merge."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "turn_detection":
            _merge(into[key], value)
        else:
            into[key] = value


_CLIENT = {
    "session.update": FakeSession._session_update,
    "input_audio_buffer.append": FakeSession._append,
    "input_audio_buffer.commit": FakeSession._commit_event,
    "input_audio_buffer.clear": FakeSession._clear,
    "conversation.item.create": FakeSession._item_create,
    "conversation.item.truncate": FakeSession._truncate,
    "conversation.item.delete": FakeSession._delete,
    "conversation.item.retrieve": FakeSession._retrieve,
    "response.create": FakeSession._response_create,
    "response.cancel": FakeSession._response_cancel,
}
