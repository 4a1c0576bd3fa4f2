"""Azure Voice Live through the official `azure-ai-voicelive` SDK (async, aiohttp).

`connect()` builds `<endpoint>/voice-live/realtime?api-version=…&model=…` (or the agent
parameters) and authenticates with an `api-key` header or an Entra ID bearer token; see
https://learn.microsoft.com/azure/ai-services/speech-service/voice-live-api-reference.
The token is fetched once per connection; one `DefaultAzureCredential` per process caches
and refreshes it for later connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

# Imported with the module (at service start, by runtime.py), never during a call.
# `connect` comes from .aio: `from azure.ai.voicelive import connect` fails in 1.3.1.
from azure.ai.voicelive.aio import ConnectionClosed, connect
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.core.credentials import AzureKeyCredential

from callbridge.agent.realtime.dialects import VOICELIVE, Dialect
from callbridge.agent.realtime.settings import VoiceLiveSettings
from callbridge.agent.realtime.transport import TransportClosed

log = logging.getLogger(__name__)


class VoiceLiveTransport:
    def __init__(self, connection: Any) -> None:
        self._conn = connection

    async def send(self, event: dict[str, Any]) -> None:
        try:
            # A dict, not a JSON string: the SDK would encode a string a second time.
            await self._conn.send(event)
        except VoiceLiveConnectionError as exc:
            raise TransportClosed(None, str(exc)) from exc

    async def recv(self) -> dict[str, Any]:
        while True:
            try:
                raw = await self._conn.recv_bytes()
            except ConnectionClosed as exc:
                # The SDK reports the close code but never the reason.
                raise TransportClosed(getattr(exc, "code", None), "") from exc
            if raw:  # the SDK returns b"" for frames it does not know (ping, ...)
                event: dict[str, Any] = json.loads(raw)
                return event

    async def close(self) -> None:
        # Closes the socket (aiohttp drains what is still coming) and the SDK's session.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._conn.close(), 2.0)


class VoiceLiveConnector:
    dialect: Dialect = VOICELIVE

    def __init__(self, settings: VoiceLiveSettings, credential: Any = None) -> None:
        """`credential`: an AzureKeyCredential or (async) token credential to use instead of
        the one the settings imply (tests, or a credential the host app already has)."""
        self.settings = settings
        self._credential: Any = credential
        self._own_credential = credential is None

    def _get_credential(self) -> Any:
        if self._credential is None:
            if self.settings.use_entra:
                from azure.identity.aio import DefaultAzureCredential

                # Managed identity in Azure, the developer's az/azd login locally.
                self._credential = DefaultAzureCredential()
            else:
                assert self.settings.api_key is not None
                self._credential = AzureKeyCredential(self.settings.api_key.get_secret_value())
        return self._credential

    async def connect(self) -> VoiceLiveTransport:
        s = self.settings
        kwargs: dict[str, Any] = {
            "credential": self._get_credential(),
            "endpoint": s.endpoint,
            "api_version": s.api_version,
            "credential_scopes": [s.token_scope],
        }
        if s.agent_mode:
            kwargs.update(agent_name=s.agent_name, project_name=s.project)
            if s.agent_version:
                kwargs["agent_version"] = s.agent_version
        else:
            kwargs["model"] = s.model
        manager = connect(**kwargs)
        connection = await manager.__aenter__()
        return VoiceLiveTransport(connection)

    async def aclose(self) -> None:
        credential, self._credential = self._credential, None
        close = getattr(credential, "close", None) if self._own_credential else None
        if close is not None:
            await close()
