"""Short-lived signed tokens carried in the per-call callback and media URLs.

A token binds a call id and a purpose, expires, and (for media) works once: the media URL
is handed to ACS in the answer request and ACS connects within seconds, so anything
later, or a second connection with the same URL, is a replay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Literal, Protocol

Purpose = Literal["callback", "media"]


class TokenError(Exception):
    """The token is missing, forged, expired, replayed or for another call."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    call_id: str
    purpose: Purpose
    expires_at: float
    nonce: str


class ReplayGuard(Protocol):
    """Remembers single-use nonces until they expire (in memory here; Redis across replicas)."""

    def first_use(self, nonce: str, expires_at: float) -> bool: ...


class MemoryReplayGuard:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_use(self, nonce: str, expires_at: float) -> bool:
        now = time.time()
        if len(self._seen) > 1024:
            self._seen = {n: e for n, e in self._seen.items() if e > now}
        if nonce in self._seen:
            return False
        self._seen[nonce] = expires_at
        return True


class CallTokens:
    """Mints and checks per-call URL tokens with an HMAC-SHA256 key."""

    def __init__(self, key: str, replay_guard: ReplayGuard | None = None) -> None:
        self._key = hashlib.sha256(key.encode("utf-8")).digest()
        self._guard = replay_guard or MemoryReplayGuard()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def mint(self, call_id: str, purpose: Purpose, ttl_s: float) -> str:
        claims = {
            "c": call_id,
            "p": purpose,
            "e": round(time.time() + ttl_s, 3),
            "n": secrets.token_urlsafe(9),
        }
        body = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self._sign(body)}"

    def verify(
        self, token: str | None, call_id: str, purpose: Purpose, *, spend: bool = True
    ) -> TokenClaims:
        """The token's claims if it is genuine, for `call_id` and `purpose`, and unexpired;
        a media token is also spent (single use) unless `spend` is False — then call
        `spend` once every other check of the request has passed, so a request that fails
        them (a forged upgrade) cannot burn the real call's token."""
        if not token:
            raise TokenError("no token")
        body, dot, sig = token.partition(".")
        if not (token.isascii() and call_id.isascii()):
            raise TokenError("token or call id is not ASCII")  # none we mint ever is
        if not dot or not hmac.compare_digest(self._sign(body), sig):
            raise TokenError("bad signature")
        try:
            raw = json.loads(_unb64(body))
            claims = TokenClaims(
                call_id=str(raw["c"]),
                purpose=raw["p"],
                expires_at=float(raw["e"]),
                nonce=str(raw["n"]),
            )
        except (ValueError, KeyError, TypeError):
            raise TokenError("unreadable token") from None
        if claims.purpose != purpose:
            raise TokenError(f"token is for {claims.purpose}, not {purpose}")
        if not hmac.compare_digest(claims.call_id, call_id):
            raise TokenError("token is for another call")
        if claims.expires_at < time.time():
            raise TokenError("token expired")
        if purpose == "media" and spend:
            self.spend(claims)
        return claims

    def spend(self, claims: TokenClaims) -> None:
        """Use a single-use token up; TokenError if it was used already."""
        if not self._guard.first_use(claims.nonce, claims.expires_at):
            raise TokenError("token already used")
