"""The Call Automation REST API under /calling, HMAC-protected like the real service.

This module authenticates each request (HMAC, see hmac_auth.py), answers a repeated
Repeatability-Request-ID from its cache, routes the request to ``rest_operations.py``
and keeps a log of every request. Handlers are synchronous between reading the request
and producing the response, so the Repeatability-Request-ID check-and-execute is atomic
on the event loop. Anything that takes time (callbacks, socket work) is scheduled on the
call.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import rest_operations as ops
from .hmac_auth import HmacError, verify_request
from .report import RestRecord
from .rest_operations import CallTables, Result, participant
from .rest_validation import AcsError, Json, bad_request, error_body, not_found

log = logging.getLogger("callbridge.emulator")


@dataclass
class RestLogEntry:
    t: float  # time.time() when the response was produced
    method: str
    path: str  # path and query exactly as received
    status: int
    body: Any  # parsed JSON request body (None if empty / not JSON)
    call_connection_id: str | None = None
    error: str | None = None  # reason for a 4xx
    replayed: bool = False  # answered from the Repeatability-Request-ID cache
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # as received
    raw_body: bytes = field(default=b"", repr=False)

    def to_dict(self) -> Json:
        return {
            "t": self.t,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "body": self.body,
            "call_connection_id": self.call_connection_id,
            "error": self.error,
            "replayed": self.replayed,
        }


class RestApi:
    def __init__(self, tables: CallTables, access_key: Callable[[], bytes]) -> None:
        self.tables = tables
        self._access_key = access_key
        self.log: list[RestLogEntry] = []
        self._replay: dict[str, tuple[int, Json | None]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        path = request.raw_path  # still URL-encoded, with the query: what is signed
        entry = RestLogEntry(time.time(), request.method, path, 0, None)
        entry.headers, entry.raw_body = dict(request.headers), raw
        self.log.append(entry)
        try:
            entry.body = json.loads(raw) if raw else None
        except ValueError:
            entry.body = raw.decode("utf-8", "replace")
        try:
            verify_request(
                method=request.method,
                path_and_query=path,
                headers=request.headers,
                body=raw,
                access_key=self._access_key(),
            )
        except HmacError as exc:
            return self._fail(entry, AcsError(401, "7509", f"Hmac Validation Error: {exc}"))
        rid = request.headers.get("Repeatability-Request-ID")
        if rid and rid in self._replay:
            entry.replayed = True
            status, payload = self._replay[rid]
            return self._respond(entry, status, payload)
        try:
            if raw and not isinstance(entry.body, dict):
                raise bad_request("The request body must be a JSON object.")
            body: Json = entry.body if isinstance(entry.body, dict) else {}
            status, payload, call = self._dispatch(
                request.method, request.path, body, request.query.get("api-version", "")
            )
        except AcsError as exc:
            if rid:
                self._replay[rid] = (exc.status, error_body(exc.code, exc.message))
            if exc.call is not None:
                exc.call.report.rest_requests.append(
                    RestRecord(entry.method, path, exc.status, exc.call.since_start())
                )
            return self._fail(entry, exc)
        if call is not None:
            entry.call_connection_id = call.call_connection_id
            call.report.rest_requests.append(
                RestRecord(entry.method, path, status, call.since_start())
            )
        if rid:
            self._replay[rid] = (status, payload)
        return self._respond(entry, status, payload)

    def _fail(self, entry: RestLogEntry, exc: AcsError) -> web.Response:
        entry.error = exc.message
        log.warning("rejected %s %s -> %d: %s", entry.method, entry.path, exc.status, exc.message)
        return self._respond(entry, exc.status, error_body(exc.code, exc.message))

    @staticmethod
    def _respond(entry: RestLogEntry, status: int, payload: Json | None) -> web.Response:
        entry.status = status
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    # ------------------------------------------------------------------ routing

    def _dispatch(self, method: str, path: str, body: Json, api_version: str) -> Result:
        tables = self.tables
        if m := re.fullmatch(r"/calling/callConnections:(\w+)", path):
            if method == "POST" and m[1] in ("answer", "reject", "redirect"):
                return ops.incoming(tables, m[1], body, api_version)
            if method == "POST" and m[1] == "connect":
                raise bad_request("connect is not supported by the ACS emulator.")
        elif re.fullmatch(r"/calling/callConnections", path) and method == "POST":
            raise bad_request("createCall is not supported by the ACS emulator.")
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+)", path):
            call = tables.active(m[1])
            if method == "GET":
                return 200, call.properties(), call
            if method == "DELETE":  # hang_up(False)
                call.service_hung_up(for_everyone=False)
                return 204, None, call
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+):(\w+)", path):
            if method == "POST":
                call = tables.active(m[1])
                return (*ops.call_action(call, m[2], body), call)
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+)/participants", path):
            if method == "GET":
                call = tables.active(m[1])
                everyone = call.participants.everyone()
                return 200, {"value": [participant(p) for p in everyone]}, call
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+)/participants:(\w+)", path):
            if method == "POST":
                call = tables.active(m[1])
                return (*ops.participants_action(call, m[2], body), call)
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+)/participants/(.+)", path):
            if method == "GET":
                call = tables.active(m[1])
                for p in call.participants.everyone():
                    if p["rawId"] == m[2]:
                        return 200, participant(p), call
                raise not_found("Participant")
        elif path.startswith("/calling/recordings"):
            return ops.recordings(tables, method, path, body)
        raise AcsError(404, "NotFound", f"No ACS emulator operation for {method} {path}")
