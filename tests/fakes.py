"""Test doubles for what the unit tests keep out: ACS's REST side."""

from __future__ import annotations

import asyncio

from callbridge.telephony.acs.control import AnsweredCall


class FakeControl:
    """Records Call Automation operations instead of sending them."""

    def __init__(self, answer_delay_s: float = 0.0) -> None:
        self.answers: list[tuple[str, str, str, str]] = []
        self.rejects: list[tuple[str, str]] = []
        self.hang_ups: list[str] = []
        self.media_restarts: list[str] = []
        self.media_stops: list[str] = []
        self.transfers: list[tuple[str, str, dict[str, str]]] = []
        self.answer_delay_s = answer_delay_s
        self.answered = asyncio.Event()

    async def answer(
        self, incoming_call_context: str, callback_url: str, media_url: str, audio_format: str
    ) -> AnsweredCall:
        await asyncio.sleep(self.answer_delay_s)
        self.answers.append((incoming_call_context, callback_url, media_url, audio_format))
        self.answered.set()
        return AnsweredCall(f"conn-{len(self.answers)}", "server-call", "corr")

    async def reject(self, incoming_call_context: str, reason: str = "busy") -> None:
        self.rejects.append((incoming_call_context, reason))

    async def hang_up(self, call_connection_id: str) -> None:
        self.hang_ups.append(call_connection_id)

    async def start_media_streaming(self, call_connection_id: str) -> None:
        self.media_restarts.append(call_connection_id)

    async def stop_media_streaming(self, call_connection_id: str) -> None:
        self.media_stops.append(call_connection_id)

    async def transfer(self, call_connection_id: str, target: str, context: dict[str, str]) -> None:
        self.transfers.append((call_connection_id, target, context))

    async def add_participant(
        self,
        call_connection_id: str,
        target: str,
        context: dict[str, str],
        ring_timeout_s: int,
        caller_id: str | None,
    ) -> None:
        self.transfers.append((call_connection_id, target, context))

    async def leave(self, call_connection_id: str) -> None:
        self.hang_ups.append(call_connection_id)

    async def start_recording(self, call_connection_id: str, callback_url: str) -> str:
        return "rec-1"

    async def close(self) -> None:
        return None
