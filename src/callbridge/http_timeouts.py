"""Deadlines for slow HTTP clients: request headers and bodies that never finish.

uvicorn's only timeout on an HTTP connection is `timeout_keep_alive`, and it covers the
idle time between requests only: a client that sends a request line and then one header
byte every few seconds, or complete headers and then a trickle of the body, holds its
connection (a socket, a parser and, for the body, an app task) for as long as it likes.

`timed_http_protocol` makes uvicorn's httptools protocol (the one `http="auto"` picks
when httptools is installed, a dependency) close such connections:

- headers: from the connection's first moment (or, on a kept-alive connection, from the
  first byte of the next request) to the end of the headers, at most `header_timeout_s`;
- body: from the end of the headers to the end of the body, at most `body_timeout_s`.
  Time the server itself is not reading (uvicorn's flow control paused reading because
  the app has not taken the body yet, or the client waits for our `100 Continue`) does
  not count against the client: the deadline is pushed back instead.

A deadline is one timer, armed once and never restarted by incoming bytes (a byte every
few seconds must not keep a connection alive). When it fires the server answers
`408 Request Timeout` if no response has begun on the connection, else just closes it,
and logs one warning. A WebSocket upgrade disarms everything before the connection is
handed to the WebSocket protocol: media sockets are long-lived by design.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger(__name__)

_408_BODY = b"Request Timeout"
_TIMED_OUT = "callbridge.timed_out"  # set in the scope of a request cut off by a deadline


class SlowClientHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines (see the module doc)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_message = False  # between the first byte of a request and its end

    # uvicorn's protocol interface
    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        # Covers the client that connects and sends nothing, or too little.
        self._arm(self.header_timeout_s, self._headers_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_message and self._deadline is None:
            # A new request on a kept-alive connection (uvicorn has just stopped its
            # keep-alive timer, on any byte, even a lone CRLF before the request line).
            self._arm(self.header_timeout_s, self._headers_timed_out)
        super().data_received(data)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        self._in_message = False
        super().handle_websocket_upgrade()

    # httptools parser callbacks
    def on_message_begin(self) -> None:
        self._in_message = True
        if self._deadline is None:  # a pipelined request in the same read as the last one
            self._arm(self.header_timeout_s, self._headers_timed_out)
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            return  # data_received hands the connection to the WebSocket protocol next
        # Disarmed again at once by on_message_complete when there is no body.
        self._arm(self.body_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_message = False
        super().on_message_complete()

    # The deadlines
    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_timed_out(self) -> None:
        self._deadline = None
        # The previous request's response may still be on its way (a pipelined request
        # arrives while the app runs): then there is no room for a 408.
        idle = self.cycle is None or self.cycle.response_complete
        self._time_out("request headers", self.header_timeout_s, can_respond=idle)

    def _body_timed_out(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            # We are the ones not reading, or the client waits for our 100 Continue.
            self._arm(self.body_timeout_s, self._body_timed_out)
            return
        can_respond = not cycle.response_started and not self.pipeline
        self._time_out("request body", self.body_timeout_s, can_respond=can_respond)

    def _time_out(self, what: str, after: float, *, can_respond: bool) -> None:
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.warning(
            "closed the connection of %s: %s not complete after %.3g s%s",
            client,
            what,
            after,
            " (408)" if can_respond else "",
        )
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cast(dict[str, Any], cycle.scope)[_TIMED_OUT] = True
            # What connection_lost will do; done now so the app writes nothing more.
            cycle.disconnected = True
            cycle.message_event.set()
        if can_respond:
            self._send_408()
        self.transport.close()

    def _send_408(self) -> None:
        content = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(_408_BODY),
                b"connection: close\r\n",
                b"\r\n",
                _408_BODY,
            ]
        )
        self.transport.write(b"".join(content))


def quiet_timeouts(app: ASGIApp) -> ASGIApp:
    """`app`, minus the traceback of a request whose body was cut off by its deadline.

    The app waiting for that body is told the client left (`http.disconnect`), and
    Starlette raises `ClientDisconnect` out of it: uvicorn would log it at ERROR, with a
    traceback, once per slow client, after the one warning above already said it all.
    Any other exception, and a client leaving by itself, still reach uvicorn as before.
    """

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except ClientDisconnect:
            if not scope.get(_TIMED_OUT):
                raise

    return guarded


def timed_http_protocol(
    header_timeout_s: float, body_timeout_s: float
) -> type[SlowClientHttpProtocol]:
    """The protocol class to give `uvicorn.Config(http=...)`, with these deadlines."""
    if header_timeout_s <= 0 or body_timeout_s <= 0:
        raise ValueError("the header and body timeouts must be positive")
    return type(
        "SlowClientHttpProtocol",
        (SlowClientHttpProtocol,),
        {"header_timeout_s": float(header_timeout_s), "body_timeout_s": float(body_timeout_s)},
    )
