"""Call Automation calls the bridge makes, through the official SDK (async client).

The client is built from endpoint + credential, not `from_connection_string`, because the
latter turns an http:// endpoint (the emulator) into https:// (docs/emulator.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from callbridge.config import AcsConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnsweredCall:
    call_connection_id: str
    server_call_id: str
    correlation_id: str


class CallControlError(Exception):
    """Call Automation refused or failed an operation."""


class CallGone(CallControlError):
    """Call Automation does not know the call (any more): it has ended."""


class CallControl(Protocol):
    async def answer(
        self, incoming_call_context: str, callback_url: str, media_url: str, audio_format: str
    ) -> AnsweredCall: ...

    async def reject(self, incoming_call_context: str, reason: str = "busy") -> None: ...

    async def hang_up(self, call_connection_id: str) -> None: ...

    async def transfer(
        self, call_connection_id: str, target: str, context: dict[str, str]
    ) -> None: ...

    async def add_participant(
        self,
        call_connection_id: str,
        target: str,
        context: dict[str, str],
        ring_timeout_s: int,
        caller_id: str | None,
    ) -> None: ...

    async def leave(self, call_connection_id: str) -> None: ...

    async def start_media_streaming(self, call_connection_id: str) -> None:
        """Ask ACS to (re)open the call's media socket to the answer's transport URL."""

    async def stop_media_streaming(self, call_connection_id: str) -> None:
        """Ask ACS to close the call's media socket (the call goes on)."""

    async def start_recording(self, call_connection_id: str, callback_url: str) -> str: ...

    async def close(self) -> None: ...


def identifier_for(target: str) -> Any:
    """A phone number (+E.164 or 4:+E.164) or an ACS user id (8:acs:...) as an SDK identifier."""
    from azure.communication.callautomation import (
        CommunicationUserIdentifier,
        PhoneNumberIdentifier,
    )

    raw = target.strip()
    if raw.startswith("4:"):
        raw = raw[2:]
    if raw.startswith("+") and raw[1:].isdigit():
        return PhoneNumberIdentifier(raw)
    if raw.startswith("8:"):
        return CommunicationUserIdentifier(raw)
    raise CallControlError(f"transfer target {target!r} is neither +E.164 nor an 8: ACS id")


def custom_headers(
    target: str, context: dict[str, str]
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """Custom calling context as (sip_headers, voip_headers): SIP X-MS-Custom-* headers towards
    phones, VoIP headers towards ACS users, within ACS's limits (5 SIP headers, 256
    characters a SIP value, 1024 a VoIP value; https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/custom-context)."""
    if target.startswith("8:"):
        return None, {k: v[:1024] for k, v in context.items()}
    return {f"X-MS-Custom-{k}"[:64]: v[:256] for k, v in list(context.items())[:5]}, None


def _credential(conn: AcsConnection) -> Any:
    if conn.access_key:
        return AzureKeyCredential(conn.access_key)
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


class AcsCallControl:
    def __init__(self, conn: AcsConnection) -> None:
        from azure.communication.callautomation.aio import CallAutomationClient

        self._client = CallAutomationClient(conn.endpoint, _credential(conn))

    async def answer(
        self, incoming_call_context: str, callback_url: str, media_url: str, audio_format: str
    ) -> AnsweredCall:
        from azure.communication.callautomation import (
            AudioFormat,
            MediaStreamingAudioChannelType,
            MediaStreamingContentType,
            MediaStreamingOptions,
            StreamingTransportType,
        )

        fmt = AudioFormat.PCM24_K_MONO if audio_format == "pcm24KMono" else AudioFormat.PCM16_K_MONO
        options = MediaStreamingOptions(
            transport_url=media_url,
            transport_type=StreamingTransportType.WEBSOCKET,
            content_type=MediaStreamingContentType.AUDIO,
            audio_channel_type=MediaStreamingAudioChannelType.MIXED,
            start_media_streaming=True,
            enable_bidirectional=True,
            audio_format=fmt,
            enable_dtmf_tones=True,
        )
        try:
            props = await self._client.answer_call(
                incoming_call_context=incoming_call_context,
                callback_url=callback_url,
                operation_context="callbridge-answer",
                media_streaming=options,
            )
        except HttpResponseError as exc:
            raise CallControlError(f"answer failed: {exc.status_code} {exc.message}") from exc
        return AnsweredCall(
            call_connection_id=props.call_connection_id or "",
            server_call_id=props.server_call_id or "",
            correlation_id=props.correlation_id or "",
        )

    async def reject(self, incoming_call_context: str, reason: str = "busy") -> None:
        try:
            await self._client.reject_call(incoming_call_context, call_reject_reason=reason)
        except HttpResponseError as exc:
            raise CallControlError(f"reject failed: {exc.status_code} {exc.message}") from exc

    async def hang_up(self, call_connection_id: str) -> None:
        conn = self._client.get_call_connection(call_connection_id)
        try:
            await conn.hang_up(is_for_everyone=True)
        except ResourceNotFoundError:
            log.info("hang-up: call already gone")
        except HttpResponseError as exc:
            raise CallControlError(f"hang-up failed: {exc.status_code} {exc.message}") from exc

    async def transfer(self, call_connection_id: str, target: str, context: dict[str, str]) -> None:
        conn = self._client.get_call_connection(call_connection_id)
        sip, voip = custom_headers(target, context)
        try:
            await conn.transfer_call_to_participant(
                identifier_for(target),
                operation_context="callbridge-transfer",
                sip_headers=sip,
                voip_headers=voip,
            )
        except HttpResponseError as exc:
            raise CallControlError(f"transfer failed: {exc.status_code} {exc.message}") from exc

    async def add_participant(
        self,
        call_connection_id: str,
        target: str,
        context: dict[str, str],
        ring_timeout_s: int,
        caller_id: str | None,
    ) -> None:
        from azure.communication.callautomation import PhoneNumberIdentifier

        conn = self._client.get_call_connection(call_connection_id)
        sip, voip = custom_headers(target, context)
        participant = identifier_for(target)
        # A PSTN target (+E.164 or 4:+E.164) needs a caller id owned by the resource: the
        # number that was called.
        source = None
        if caller_id and isinstance(participant, PhoneNumberIdentifier):
            source = PhoneNumberIdentifier(caller_id.strip().removeprefix("4:"))
        try:
            await conn.add_participant(
                participant,
                invitation_timeout=ring_timeout_s,
                operation_context="callbridge-warm-transfer",
                source_caller_id_number=source,
                sip_headers=sip,
                voip_headers=voip,
            )
        except HttpResponseError as exc:
            raise CallControlError(
                f"add participant failed: {exc.status_code} {exc.message}"
            ) from exc

    async def leave(self, call_connection_id: str) -> None:
        """Hang up for the bridge only: the caller and the human stay connected."""
        conn = self._client.get_call_connection(call_connection_id)
        try:
            await conn.hang_up(is_for_everyone=False)
        except ResourceNotFoundError:
            log.info("leave: call already gone")
        except HttpResponseError as exc:
            raise CallControlError(f"leaving failed: {exc.status_code} {exc.message}") from exc

    async def stop_media_streaming(self, call_connection_id: str) -> None:
        await self._media_streaming(call_connection_id, start=False)

    async def start_media_streaming(self, call_connection_id: str) -> None:
        await self._media_streaming(call_connection_id, start=True)

    async def _media_streaming(self, call_connection_id: str, *, start: bool) -> None:
        conn = self._client.get_call_connection(call_connection_id)
        what = "start" if start else "stop"
        try:
            if start:
                await conn.start_media_streaming(operation_context="callbridge-failover")
            else:
                await conn.stop_media_streaming(operation_context="callbridge-handover")
        except ResourceNotFoundError as exc:
            raise CallGone(f"the call is over: {exc.message}") from exc
        except HttpResponseError as exc:
            raise CallControlError(
                f"{what} media streaming failed: {exc.status_code} {exc.message}"
            ) from exc

    async def start_recording(self, call_connection_id: str, callback_url: str) -> str:
        try:
            props = await self._client.start_recording(
                call_connection_id=call_connection_id,
                recording_state_callback_url=callback_url,
                recording_content_type="audio",
                recording_channel_type="unmixed",
                recording_format_type="wav",
            )
        except HttpResponseError as exc:
            raise CallControlError(
                f"start recording failed: {exc.status_code} {exc.message}"
            ) from exc
        return str(props.recording_id or "")

    async def close(self) -> None:
        await self._client.close()
