"""Call Automation calls the bridge makes, through the official SDK (async client).

The client is built from endpoint + credential, not `from_connection_string`, because the
latter turns an http:// endpoint (the emulator) into https:// (acs-protocol.md §2.5).
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


class CallControl(Protocol):
    async def answer(
        self, incoming_call_context: str, callback_url: str, media_url: str, audio_format: str
    ) -> AnsweredCall: ...

    async def reject(self, incoming_call_context: str, reason: str = "busy") -> None: ...

    async def hang_up(self, call_connection_id: str) -> None: ...

    async def close(self) -> None: ...


def _credential(conn: AcsConnection) -> Any:
    if conn.access_key:
        return AzureKeyCredential(conn.access_key)
    try:
        from azure.identity.aio import DefaultAzureCredential
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise CallControlError(
            "CALLBRIDGE_ACS_CONNECTION has no accesskey, so Entra ID is used: "
            "pip install 'callbridge[entra]'"
        ) from exc
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

    async def close(self) -> None:
        await self._client.close()
