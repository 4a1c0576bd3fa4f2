"""OpenAI Realtime (GA) and Azure OpenAI realtime deployments through the `openai` SDK.

The WebSocket base URL is always given (`websocket_base_url`): the SDK appends `/realtime`
and `?model=` and sends `Authorization: Bearer <key>`. Azure OpenAI's GA endpoint takes the
same form, `wss://<res>.openai.azure.com/openai/v1`, as in Microsoft's how-to
(https://learn.microsoft.com/azure/foundry/openai/how-to/realtime-audio-websockets); with
Entra ID the bearer is a token for `token_scope`.
The SDK's own reconnect is not used: session continuity is the agent's job (it must
re-seed the conversation, which a socket-level retry cannot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

# Imported with the module (at service start, by runtime.py), never during a call: the
# first import of the SDK takes long enough to stall the event loop.
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosed

from callbridge.agent.realtime.dialects import GA, Dialect
from callbridge.agent.realtime.settings import OpenAIRealtimeSettings
from callbridge.agent.realtime.transport import TransportClosed

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0


class OpenAITransport:
    def __init__(self, connection: Any) -> None:
        self._conn = connection

    async def send(self, event: dict[str, Any]) -> None:
        try:
            # Raw JSON: the SDK's typed transform would cost a pass over every audio append.
            await self._conn.send_raw(json.dumps(event))
        except ConnectionClosed as exc:
            raise TransportClosed(_code(exc), _reason(exc)) from exc

    async def recv(self) -> dict[str, Any]:
        try:
            raw = await self._conn.recv_bytes()
        except ConnectionClosed as exc:
            raise TransportClosed(_code(exc), _reason(exc)) from exc
        event: dict[str, Any] = json.loads(raw)
        return event

    async def close(self) -> None:
        # Keep reading while closing: websockets stops reading the socket when its receive
        # queue is full, and the server's close frame would then wait behind unread audio
        # until close_timeout (10 s) — a call would take that long to end.
        drain = asyncio.ensure_future(self._drain())
        try:
            await asyncio.wait_for(self._conn.close(), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionClosed, OSError):
            pass
        finally:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)

    async def _drain(self) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            while True:
                await self._conn.recv_bytes()


def _code(exc: Any) -> int | None:
    rcvd = getattr(exc, "rcvd", None)
    return getattr(rcvd, "code", None)


def _reason(exc: Any) -> str:
    rcvd = getattr(exc, "rcvd", None)
    return str(getattr(rcvd, "reason", "") or "")


class OpenAIConnector:
    dialect: Dialect = GA

    def __init__(
        self,
        settings: OpenAIRealtimeSettings,
        token_provider: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        """`token_provider`: an async callable returning Entra ID tokens, instead of a
        DefaultAzureCredential (tests, or a credential the host app already has)."""
        self.settings = settings
        self._client: Any = None
        self._credential: Any = None
        self._token_provider = token_provider

    def _get_client(self) -> Any:
        if self._client is None:
            s = self.settings
            api_key: Any
            if self._token_provider is not None:
                api_key = self._token_provider
            elif s.use_entra:
                from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

                self._credential = DefaultAzureCredential()
                api_key = get_bearer_token_provider(self._credential, s.token_scope)
            else:
                assert s.api_key is not None
                api_key = s.api_key.get_secret_value()
            self._client = AsyncOpenAI(
                api_key=api_key, base_url=s.base_url, websocket_base_url=s.ws_base_url
            )
        return self._client

    async def connect(self) -> OpenAITransport:
        client = self._get_client()
        connection = await client.realtime.connect(model=self.settings.model).enter()
        return OpenAITransport(connection)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        credential, self._credential = self._credential, None
        if credential is not None:
            await credential.close()
