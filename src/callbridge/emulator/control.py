"""Loopback-only control API so ``callbridge call`` can ask a running emulator to ring."""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .eventgrid import WebhookValidationError
from .humans import DEFAULT_KEY, human_from_json
from .script import CallScript

if TYPE_CHECKING:
    from .server import AcsEmulator

log = logging.getLogger("callbridge.emulator")


def script_from_json(body: dict[str, Any]) -> CallScript:
    """Build a CallScript from the control API's JSON; ValueError on bad input."""
    script = CallScript()
    if body.get("audio_path"):
        path = Path(str(body["audio_path"]))
        if not path.is_file():
            raise ValueError(f"audio_path {str(path)!r} does not exist")
        script.audio = str(path)
    elif body.get("audio_b64"):
        try:
            script.audio = base64.b64decode(str(body["audio_b64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("audio_b64 is not valid base64") from exc
        script.audio_rate = int(body.get("audio_rate", 16000))
    for name in ("from_number", "to_number", "caller_display_name", "record_path"):
        if body.get(name) is not None:
            setattr(script, name, str(body[name]))
    for name in ("hangup_after_s", "max_duration_s", "start_delay_s", "tail_s"):
        if body.get(name) is not None:
            setattr(script, name, float(body[name]))
    script.duplicate_delivery = bool(body.get("duplicate_delivery", False))
    if body.get("hangup_when_agent_hangs_up") is not None:
        script.hangup_when_agent_hangs_up = bool(body["hangup_when_agent_hangs_up"])
    script.dtmf = [(float(t), str(d)) for t, d in body.get("dtmf") or []]
    context = body.get("custom_context")
    if context is not None:
        if not isinstance(context, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
            for v in context.values()
        ):
            raise ValueError("custom_context must map sipHeaders/voipHeaders to string maps")
        script.custom_context = context
    return script


def control_routes(emu: AcsEmulator) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "endpoint": emu.endpoint})

    async def place(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            script = script_from_json(body)
        except (ValueError, TypeError) as exc:
            log.warning("rejected control request: %s", exc)
            return web.json_response({"error": str(exc)}, status=400)
        try:
            report = await emu.place_call(script)
        except WebhookValidationError as exc:
            return web.json_response({"error": str(exc)}, status=502)
        return web.json_response(report.to_dict())

    async def get_humans(request: web.Request) -> web.Response:
        return web.json_response(emu.humans.to_dict())

    async def set_humans(request: web.Request) -> web.Response:
        """{"+1425...": "decline", "8:acs:...": {"behaviour": "answer", "ring_s": 1}, "*": ...}
        (PUT replaces the per-target humans, POST adds to them)."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object of target -> human")
            parsed = {str(k): human_from_json(v) for k, v in body.items()}
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if request.method == "PUT":
            emu.humans.clear()
        for target, human in parsed.items():
            emu.humans.set(target, human)
        return web.json_response(emu.humans.to_dict())

    async def clear_humans(request: web.Request) -> web.Response:
        emu.humans.clear()
        emu.humans.set(DEFAULT_KEY, "answer")
        return web.json_response(emu.humans.to_dict())

    return [
        web.get("/emulator/healthz", healthz),
        web.post("/emulator/calls", place),
        web.get("/emulator/humans", get_humans),
        web.put("/emulator/humans", set_humans),
        web.post("/emulator/humans", set_humans),
        web.delete("/emulator/humans", clear_humans),
    ]
