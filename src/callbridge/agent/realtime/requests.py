"""response.create, one at a time.

A response must not be asked for while another is in progress (`conversation_already_has_
active_response`; docs/realtime.md, "Tools"): requests queue here — answers to tool
outputs, greetings, call notices, the continuation after a reconnect — and go out one by one
as responses end. A tool filler is only sent when nothing else is waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from callbridge.agent.realtime.ledger import ResponseState

NO_ANSWER_S = 5.0  # a response.create the service never answered is given up after this


class ResponseRequests:
    def __init__(self, send: Callable[[dict[str, Any]], bool]) -> None:
        self._send = send
        self._wants: list[dict[str, Any]] = []  # response.create bodies ({}: plain)
        self._filler: dict[str, Any] | None = None
        self._sent_at: float | None = None  # a create is on its way
        self.active: ResponseState | None = None  # the response in progress

    @property
    def waiting(self) -> bool:
        return bool(self._wants)

    def request(self, body: dict[str, Any], first: bool = False) -> None:
        """Ask for a response; a plain one already queued is not repeated."""
        if body or {} not in self._wants:
            self._wants.insert(0 if first else len(self._wants), body)
        self.pump()

    def filler(self, body: dict[str, Any]) -> None:
        if self.active is None and not self._wants:
            self._filler = body
            self.pump()

    def created(self, st: ResponseState) -> None:
        self.active = st
        self._sent_at = None

    def done(self, st: ResponseState) -> None:
        if self.active is st:
            self.active = None
        self.pump()

    def refused(self, body: dict[str, Any] | None, busy: bool) -> None:
        """The service refused a create; `busy`: because a response was in progress, so it
        goes again first, after that one."""
        self._sent_at = None
        if busy:
            self.request(body or {}, first=True)

    def lost(self) -> None:
        """The session is gone: nothing is in progress any more; the filler is moot."""
        self.active = None
        self._sent_at = None
        self._filler = None

    def pump(self) -> None:
        if self.active is not None:
            return
        if self._sent_at is not None and time.monotonic() - self._sent_at < NO_ANSWER_S:
            return
        if self._wants:
            body = self._wants[0]
            event = {"type": "response.create", **({"response": body} if body else {})}
            if self._send(event):
                self._wants.pop(0)
                self._filler = None
                self._sent_at = time.monotonic()
        elif self._filler is not None:
            if self._send({"type": "response.create", "response": self._filler}):
                self._filler = None
                self._sent_at = time.monotonic()
