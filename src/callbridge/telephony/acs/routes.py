"""HTTP and WebSocket routes ACS and Event Grid call: /acs/incoming, callbacks, media."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import JSONResponse

from callbridge.logs import call_id_var
from callbridge.telephony.acs.acs_jwt import AcsJwtVerifier, JwtError
from callbridge.telephony.acs.call_tokens import TokenError
from callbridge.telephony.acs.edge import AcsEdge
from callbridge.telephony.acs.eventgrid_auth import EventGridAuth
from callbridge.telephony.acs.events import (
    EventError,
    IncomingCall,
    OtherEvent,
    ValidationRequest,
    parse_callbacks,
    parse_eventgrid,
)
from callbridge.telephony.acs.media import AcsMediaLeg

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
EVENTGRID_ORIGIN = "eventgrid.azure.net"


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


async def _read_body(request: Request) -> bytes | JSONResponse:
    declared = request.headers.get("content-length", "")
    # A digit string too long for int() (or not ASCII digits at all) must not be a 500.
    digits = declared.lstrip("0")
    if (
        declared.isascii()
        and declared.isdigit()
        and (len(digits) > 12 or int(digits or "0") > MAX_BODY_BYTES)
    ):
        return _problem(413, "body too large")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _problem(413, "body too large")
    return body


def acs_router(edge: AcsEdge, verifier: AcsJwtVerifier | None) -> APIRouter:
    router = APIRouter(prefix="/acs", tags=["acs"])
    # The shared secret and/or an Entra ID token (telephony/acs/eventgrid_auth.py).
    delivery_auth = EventGridAuth.from_settings(edge.settings)

    @router.options("/incoming")
    async def eventgrid_preflight(request: Request) -> Response:
        """CloudEvents abuse-protection handshake (the CloudEvents HTTP webhook spec, section 4:
        https://github.com/cloudevents/spec/blob/v1.0/http-webhook.md)."""
        origin = request.headers.get("webhook-request-origin", EVENTGRID_ORIGIN)
        return Response(
            status_code=200,
            headers={
                "WebHook-Allowed-Origin": origin,
                "WebHook-Allowed-Rate": "*",
                "Allow": "POST, OPTIONS",
            },
        )

    @router.post("/incoming")
    async def eventgrid_delivery(request: Request) -> Response:
        refused = await delivery_auth.refusal(request.headers, request.query_params)
        if refused is not None:
            log.warning("Event Grid delivery refused from %s: %s", request.client, refused)
            return _problem(401, "missing or wrong delivery key or token")
        body = await _read_body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            events = parse_eventgrid(body)
        except EventError as exc:
            log.warning("rejected Event Grid delivery: %s", exc)
            return _problem(400, str(exc))
        outcome: dict[str, object] = {}
        for ev in events:
            if isinstance(ev, ValidationRequest):
                log.info("Event Grid subscription validated")
                return JSONResponse({"validationResponse": ev.code})
            if isinstance(ev, IncomingCall):
                outcome[ev.event_id] = await edge.on_incoming(ev)
            elif isinstance(ev, OtherEvent):
                log.info("Event Grid event %s ignored", ev.event_type)
                outcome[ev.event_id] = "ignored"
        return JSONResponse({"events": outcome})

    @router.post("/callbacks/{call_id}")
    async def call_callback(call_id: str, request: Request) -> Response:
        reset = call_id_var.set(call_id)
        try:
            try:
                edge.tokens.verify(request.query_params.get("token"), call_id, "callback")
                if verifier is not None:
                    await verifier.verify(request.headers.get("authorization"))
            except (TokenError, JwtError) as exc:
                log.warning("rejected callback: %s", exc)
                return _problem(401, f"unauthorised: {exc}")
            body = await _read_body(request)
            if isinstance(body, JSONResponse):
                return body
            try:
                events = parse_callbacks(body)
            except EventError as exc:
                log.warning("rejected callback: %s", exc)
                return _problem(400, str(exc))
            if not await edge.on_callbacks(call_id, events):
                return _problem(503, "the call's holder cannot be reached; retry")
            return Response(status_code=200)
        finally:
            call_id_var.reset(reset)

    async def media(ws: WebSocket, call_id: str, token: str | None) -> None:
        call_id_var.set(call_id)
        try:
            claims = edge.tokens.verify(token, call_id, "media", spend=False)
            if verifier is not None:
                await verifier.verify(ws.headers.get("authorization"))
            # Spent only now, so a forged upgrade cannot burn it. A spent token opens the
            # socket once more only for ACS reopening a broken one of the same call.
            connection = ws.headers.get("x-ms-call-connection-id")
            if not await edge.may_reopen_media(call_id, connection):
                await edge.spend_media_token(claims)
        except (TokenError, JwtError) as exc:
            log.warning("rejected media socket: %s", exc)
            await ws.close(code=4401)
            return
        session = await edge.session_for_media(call_id)
        if session is None or session.ended:
            log.warning("media socket for a call that is not up")
            await ws.close(code=4404)
            return
        await ws.accept()
        leg = AcsMediaLeg(
            ws, edge.settings.sample_rate, max_message_bytes=edge.settings.max_ws_message_bytes
        )
        await leg.open()
        edge.media_started(session)
        await session.run_media(leg)

    @router.websocket("/media/{call_id}/{token}")
    async def media_with_path_token(ws: WebSocket, call_id: str, token: str) -> None:
        await media(ws, call_id, token)

    @router.websocket("/media/{call_id}")
    async def media_with_query_token(ws: WebSocket, call_id: str) -> None:
        await media(ws, call_id, ws.query_params.get("token"))

    return router
