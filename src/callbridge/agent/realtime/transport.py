"""The socket to a realtime service, as the agent sees it: JSON events in and out.

Both SDK connections are used through their raw-message calls (`send` with a dict,
`recv_bytes`) and decoded here, so the agent has one path for both services and never trips
over the SDKs' different audio types (Voice Live decodes `delta` to bytes, openai keeps
base64 text; docs/realtime.md, "One call").
"""

from __future__ import annotations

from typing import Any, Protocol

from callbridge.agent.realtime.dialects import Dialect


class TransportClosed(Exception):
    """The service closed the socket (or it broke)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")


class Transport(Protocol):
    async def send(self, event: dict[str, Any]) -> None:
        """Send one client event; raises TransportClosed when the socket is gone."""

    async def recv(self) -> dict[str, Any]:
        """The next server event; raises TransportClosed when the socket is gone."""

    async def close(self) -> None:
        """Close the socket and whatever the SDK opened for it."""


class Connector(Protocol):
    """Opens sessions to one service (shared by all calls of a backend)."""

    dialect: Dialect

    async def connect(self) -> Transport: ...

    async def aclose(self) -> None:
        """Release what the connector holds (credentials, HTTP clients)."""
