"""Identifiers and opaque ids shaped like the ones real ACS emits (as in IncomingCall)."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any


def phone_identifier(number: str) -> dict[str, Any]:
    """CommunicationIdentifierModel for a PSTN number, as ACS emits it (with ``kind``)."""
    return {"kind": "phoneNumber", "rawId": f"4:{number}", "phoneNumber": {"value": number}}


def acs_user_identifier(user_id: str) -> dict[str, Any]:
    return {"kind": "communicationUser", "rawId": user_id, "communicationUser": {"id": user_id}}


def identifier_for(target: str) -> dict[str, Any]:
    """A number ("+1425...", "4:+1425...") or an ACS user id ("8:acs:...") as ACS emits it."""
    if target.startswith("4:"):
        return phone_identifier(target[2:])
    if target.startswith("+"):
        return phone_identifier(target)
    if target.startswith("8:"):
        return acs_user_identifier(target)
    raise ValueError(f"{target!r} is neither a +E.164 number nor an 8:acs: user id")


def raw_id_for(target: str) -> str:
    """The rawId a target key stands for: "+1425..." -> "4:+1425...", others unchanged."""
    return f"4:{target}" if target.startswith("+") else target


def display_name(identifier: dict[str, Any]) -> str:
    """A phone number as "+1425...", anything else as its rawId."""
    phone = identifier.get("phoneNumber")
    if isinstance(phone, dict) and "value" in phone:
        return str(phone["value"])
    return str(identifier.get("rawId", ""))


def identifier_from_request(model: Any) -> dict[str, Any] | None:
    """Normalise an identifier from a request (the Python SDK omits ``kind``)."""
    if not isinstance(model, dict):
        return None
    if isinstance(model.get("phoneNumber"), dict) and "value" in model["phoneNumber"]:
        return phone_identifier(str(model["phoneNumber"]["value"]))
    if isinstance(model.get("communicationUser"), dict) and "id" in model["communicationUser"]:
        return acs_user_identifier(str(model["communicationUser"]["id"]))
    raw = model.get("rawId")
    if isinstance(raw, str) and raw:
        if raw.startswith("4:"):
            return phone_identifier(raw[2:])
        return {"kind": model.get("kind", "unknown"), "rawId": raw}
    return None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_server_call_id() -> str:
    """``serverCallId``: observed to be base64 of an internal conversation URL."""
    conv = (
        "https://api.flightproxy.skype.com/api/v2/cp/conv-usea2-01-prod-akscalls.conv.skype.com"
        f"/conv/{b64url(secrets.token_bytes(16))}?i=10-128-0-1&e={uuid.uuid4().hex}"
    )
    return b64url(conv.encode("ascii"))


def new_incoming_call_context() -> str:
    """``incomingCallContext``: an unsigned JWT ``{"alg":"none","typ":"JWT"}``, payload
    ``{"cc": ...}``."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}, separators=(",", ":")).encode())
    blob = base64.b64encode(secrets.token_bytes(96)).decode("ascii")
    payload = b64url(json.dumps({"cc": blob}, separators=(",", ":")).encode())
    return f"{header}.{payload}."


def new_id() -> str:
    return str(uuid.uuid4())


def iso_now_ms() -> str:
    """ISO-8601 UTC with milliseconds and ``Z`` (media frame ``timestamp``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_now_offset_7() -> str:
    """``startDateTime`` of RecordingStateChanged: 7 fractional digits and +00:00."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}0+00:00"


def iso_now_7() -> str:
    """Event Grid / CloudEvent time, 7 fractional digits like the public samples."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}0Z"
