"""A fake session's responses: ``response.create`` / ``response.cancel`` and the events
one response streams.

A response takes its turn from the script (or speaks fixed words without taking one),
then streams ``response.created`` → output item → content part → audio and transcript
deltas → ``*.done`` → ``response.done``, or a function call's arguments. A cancel (by the
client, or by the VAD hearing the caller) ends it with status ``cancelled``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from callbridge.testing.fake_realtime.script import CallTool, Expire, Fail, Say, Turn, new_id
from callbridge.testing.fake_realtime.session_config import text_only
from callbridge.testing.fake_realtime.voice import voice_pcm
from callbridge.testing.fake_realtime.wire import part_type

if TYPE_CHECKING:
    from callbridge.testing.fake_realtime.session import FakeSession

_EXACTLY = re.compile(r'exactly:?\s*"([^"]+)"', re.IGNORECASE)


def _kept_out(dialect: str, params: dict[str, Any]) -> bool:
    """Whether a response stays out of the conversation: OpenAI's `conversation: "none"`;
    Voice Live's `commit: false` (its response.create has no `conversation`, so a Voice
    Live fake commits a response that asks for it that way)."""
    if dialect == "voicelive":
        return params.get("commit") is False
    return params.get("conversation") == "none"


@dataclass(eq=False)
class ResponseRun:
    """A response in progress."""

    id: str
    out_of_band: bool
    metadata: Any
    cancelled: str | None = None  # reason, once cancelled
    output: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class FakeResponder:
    def __init__(self, session: FakeSession) -> None:
        self.session = session
        self.active: ResponseRun | None = None

    # --- client events --------------------------------------------------------------------
    def create(self, ev: dict[str, Any]) -> None:
        if self.active is not None:
            # The real message.
            self.session.send_error(
                "invalid_request_error",
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self.active.id}. Wait until the response is finished before creating "
                "a new one.",
                ev.get("event_id"),
            )
            return
        params = ev.get("response")
        self.start(params if isinstance(params, dict) else {})

    def cancel(self, ev: dict[str, Any]) -> None:
        run = self.active
        wanted = ev.get("response_id")
        if run is None or run.cancelled or (wanted and wanted != run.id):
            # Benign: the session is unaffected.
            self.session.send_error(
                "invalid_request_error",
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                ev.get("event_id"),
            )
            return
        run.cancelled = "client_cancelled"

    def interrupt(self) -> None:
        """The VAD heard the caller start speaking over the response."""
        run = self.active
        if run is not None:
            run.cancelled = run.cancelled or "turn_detected"

    # --- responses --------------------------------------------------------------------------
    def start(self, params: dict[str, Any]) -> None:
        out_of_band = _kept_out(self.session.dialect, params)
        run = ResponseRun(new_id("resp"), out_of_band, params.get("metadata"))
        self.active = run
        self.session.emit("response.created", response=self._response_object(run, "in_progress"))
        run.task = self.session.spawn(self._respond(run, params))

    async def _respond(self, run: ResponseRun, params: dict[str, Any]) -> None:
        session = self.session
        script = session.script
        text = text_only(session.dialect, session.config, params)
        turn = self._turn_for(params, run)
        status, details = "completed", None
        try:
            await asyncio.sleep(script.ttfa_ms / 1000)
            if isinstance(turn, Expire):
                session.send_error(
                    "invalid_request_error",
                    "session_expired",
                    "Your session hit the maximum duration of 30 minutes.",
                    None,
                )
                session.close(1001, "session_expired")
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
                if not await self._message(run, turn, text):
                    return  # the socket was dropped mid-reply
            else:
                if turn.preamble and not await self._message(run, Say(turn.preamble), text):
                    return
                if run.cancelled is None:
                    self._function_call(run, turn)
                    if turn.hold_done_ms:
                        await asyncio.sleep(turn.hold_done_ms / 1000)
            if run.cancelled is not None:
                status = "cancelled"
                details = {"type": "cancelled", "reason": run.cancelled}
            session.emit("response.done", response=self._response_object(run, status, details))
        finally:
            if self.active is run:
                self.active = None

    def _turn_for(self, params: dict[str, Any], run: ResponseRun) -> Turn:
        pre = params.get("pre_generated_assistant_message")
        if self.session.dialect == "voicelive" and isinstance(pre, dict):  # proactive message
            texts = [str(p.get("text") or "") for p in pre.get("content") or []]
            return Say(" ".join(t for t in texts if t))
        quote = _EXACTLY.search(str(params.get("instructions") or ""))
        if quote:
            return Say(quote.group(1))
        if run.out_of_band:
            return Say("One moment.")
        return self.session.script.next_turn()

    async def _message(self, run: ResponseRun, say: Say, text_only: bool) -> bool:
        """Stream one assistant message; False when the socket was dropped in it."""
        session = self.session
        conversation = session.history
        script = session.script
        index = len(run.output)
        kind: Literal["audio", "text"] = "text" if text_only else "audio"
        item = conversation.shape(
            {
                "id": new_id("item"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
        )
        run.output.append(item)
        session.emit(
            "response.output_item.added", response_id=run.id, output_index=index, item=item
        )
        if not run.out_of_band:
            conversation.add(item, conversation.last_id())
        keys = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": index,
            "content_index": 0,
        }
        part: dict[str, Any] = {"type": part_type(session.dialect, kind)}
        part["text" if text_only else "transcript"] = ""
        session.emit("response.content_part.added", **keys, part=dict(part))
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
                session.emit(
                    "response.audio.delta", **keys, delta=base64.b64encode(pcm).decode("ascii")
                )
            sent_ms += ms
            if not text_only:
                conversation.audio_ms[item["id"]] = sent_ms
            upto = round(len(words) * sent_ms / total)
            if upto > said:
                delta = ("" if said == 0 else " ") + " ".join(words[said:upto])
                said = upto
                name = "response.text.delta" if text_only else "response.audio_transcript.delta"
                session.emit(name, **keys, delta=delta)
            if say.drop_after_ms is not None and sent_ms >= say.drop_after_ms:
                script.dropped += 1
                if script.refuse_after_drop:
                    session.server.refusing = True
                session.close(say.drop_code, "server error")
                return False
            if not text_only:
                await asyncio.sleep(ms / 1000 / script.speed)
        text = " ".join(words[:said])
        if text_only:
            session.emit("response.text.done", **keys, text=text)
        else:
            session.emit("response.audio.done", **keys)
            session.emit("response.audio_transcript.done", **keys, transcript=text)
        part["text" if text_only else "transcript"] = text
        session.emit("response.content_part.done", **keys, part=part)
        item["status"] = "completed" if run.cancelled is None else "incomplete"
        item["content"] = [part]
        session.emit("response.output_item.done", response_id=run.id, output_index=index, item=item)
        if session.dialect == "ga" and not run.out_of_band:
            session.emit("conversation.item.done", item=item)
        return True

    def _function_call(self, run: ResponseRun, call: CallTool) -> None:
        session = self.session
        conversation = session.history
        index = len(run.output)
        call_id = new_id("call")
        arguments = json.dumps(dict(call.arguments))
        item = conversation.shape(
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
        session.emit(
            "response.output_item.added", response_id=run.id, output_index=index, item=dict(item)
        )
        conversation.add(item, conversation.last_id())
        keys = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": index,
            "call_id": call_id,
        }
        session.emit("response.function_call_arguments.delta", **keys, delta=arguments)
        extra = {"name": call.name} if session.dialect == "ga" else {}
        session.emit("response.function_call_arguments.done", **keys, **extra, arguments=arguments)
        item["arguments"] = arguments
        item["status"] = "completed"
        session.emit("response.output_item.done", response_id=run.id, output_index=index, item=item)
        if session.dialect == "ga":
            session.emit("conversation.item.done", item=item)

    def _response_object(
        self, run: ResponseRun, status: str, details: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        session = self.session
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
            "conversation_id": None if run.out_of_band else f"conv_{session.id}",
            "metadata": run.metadata,
        }
        if session.dialect == "ga":
            body["output_modalities"] = session.config.get("output_modalities")
        else:
            body["modalities"] = session.config.get("modalities")
        return body
