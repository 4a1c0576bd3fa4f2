"""Server-side verification of ACS HMAC-SHA256 request signing.

Public reference: https://learn.microsoft.com/rest/api/communication/authentication

The SDK signs ``VERB\\npath_and_query\\nx-ms-date;host;x-ms-content-sha256`` with the
base64-decoded access key. We recompute everything from what was actually received
(raw path still URL-encoded, Host header including the port, body bytes) so that a
service that mangles its requests is caught here, as the real ACS would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# The skew tolerance is unconfirmed for ACS; App Configuration's similar scheme uses 15 min.
MAX_CLOCK_SKEW = timedelta(minutes=15)
_SCHEME = "HMAC-SHA256"
# The three headers the SDK signs ; all must be covered by the signature.
REQUIRED_SIGNED = ("x-ms-date", "host", "x-ms-content-sha256")


class HmacError(Exception):
    """Signature check failed; ``str(exc)`` is the reason reported in the 401 body."""


def content_sha256(body: bytes) -> str:
    """base64(SHA-256(body)) — what ``x-ms-content-sha256`` must carry."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def string_to_sign(method: str, path_and_query: str, signed_values: list[str]) -> str:
    return f"{method.upper()}\n{path_and_query}\n{';'.join(signed_values)}"


def sign(key: bytes, message: str) -> str:
    return base64.b64encode(hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()).decode(
        "ascii"
    )


def _parse_authorization(value: str) -> tuple[list[str], str]:
    """Split ``HMAC-SHA256 SignedHeaders=a;b;c&Signature=<b64>``."""
    scheme, _, params = value.strip().partition(" ")
    if scheme != _SCHEME:
        raise HmacError(f"Authorization scheme must be {_SCHEME}, got {scheme!r}")
    fields: dict[str, str] = {}
    for part in params.split("&"):
        name, sep, val = part.partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    if "SignedHeaders" not in fields or "Signature" not in fields:
        raise HmacError("Authorization header lacks SignedHeaders or Signature")
    signed = [h.strip().lower() for h in fields["SignedHeaders"].split(";") if h.strip()]
    missing = [h for h in REQUIRED_SIGNED if h not in signed]
    if missing:
        raise HmacError(f"SignedHeaders does not cover {', '.join(missing)}")
    return signed, fields["Signature"]


def verify_request(
    *,
    method: str,
    path_and_query: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key: bytes,
    now: datetime | None = None,
) -> None:
    """Raise :class:`HmacError` unless the request is signed correctly with ``access_key``.

    ``headers`` must be case-insensitive (aiohttp's ``CIMultiDictProxy`` is), or lower-case.
    """
    auth = headers.get("Authorization") or headers.get("authorization")
    if not auth:
        raise HmacError("missing Authorization header")
    signed, signature = _parse_authorization(auth)

    def header(name: str) -> str:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
        if value is None:
            raise HmacError(f"missing signed header {name}")
        return value

    expected_hash = content_sha256(body)
    if not hmac.compare_digest(header("x-ms-content-sha256"), expected_hash):
        raise HmacError("x-ms-content-sha256 does not match the request body")

    raw_date = header("x-ms-date")
    try:
        sent = parsedate_to_datetime(raw_date)
    except (TypeError, ValueError) as exc:
        raise HmacError(f"unparseable x-ms-date {raw_date!r}") from exc
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    if abs(current - sent) > MAX_CLOCK_SKEW:
        raise HmacError(f"x-ms-date {raw_date!r} is more than 15 minutes off")

    message = string_to_sign(method, path_and_query, [header(h) for h in signed])
    expected = sign(access_key, message)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        raise HmacError("signature mismatch")


def sign_headers(
    *,
    method: str,
    path_and_query: str,
    host: str,
    body: bytes,
    access_key: bytes,
    date: datetime | None = None,
) -> dict[str, str]:
    """Produce the SDK's signing headers; used by tests to build forged/stale requests."""
    when = date or datetime.now(UTC)
    x_ms_date = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    digest = content_sha256(body)
    sig = sign(access_key, string_to_sign(method, path_and_query, [x_ms_date, host, digest]))
    return {
        "x-ms-date": x_ms_date,
        "x-ms-content-sha256": digest,
        "Authorization": f"{_SCHEME} SignedHeaders=x-ms-date;host;x-ms-content-sha256"
        f"&Signature={sig}",
    }
