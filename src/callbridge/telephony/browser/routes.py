"""The browser phone's WebSocket route: `/phone/ws`."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from callbridge.telephony.browser.edge import BrowserEdge


def browser_phone_router(edge: BrowserEdge) -> APIRouter:
    router = APIRouter(tags=["browser phone"])

    @router.websocket("/phone/ws")
    async def phone_socket(ws: WebSocket) -> None:
        await edge.serve(ws)

    return router
