"""Verification of the RS256 JWTs ACS puts on callbacks and the media WebSocket.

See https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/secure-webhook-endpoint.

Keys come from a configurable JWKS URL (the real one, or the emulator's), fetched without
blocking the event loop, cached, and re-fetched when a token names an unknown key id. The
fetch uses aiohttp, which the Azure SDKs load anyway; the tokens are checked by `jws`, with
the standard library (docs/architecture.md, "Memory").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp

from callbridge.telephony.acs.jws import RsaPublicKey, TokenError, UnverifiedToken

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 5.0
MAX_DOCUMENT_BYTES = 1_000_000  # a key set or OpenID configuration is a few kB


# A key endpoint that is down, stalls, answers garbage or publishes a bad key: logged, keys
# kept.
_FETCH_ERRORS = (
    aiohttp.ClientError,
    TimeoutError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
)


async def get_json(url: str) -> Any:
    """The JSON document at `url`: a 2xx answer of at most MAX_DOCUMENT_BYTES within
    FETCH_TIMEOUT_S, or an exception from _FETCH_ERRORS."""
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, allow_redirects=False) as resp,
    ):
        resp.raise_for_status()
        body = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"the document is over {MAX_DOCUMENT_BYTES} bytes")
    return json.loads(body)


class JwtError(Exception):
    """The bearer token is missing or does not verify; the message says why."""


class JwksCache:
    """RSA signing keys by key id from a JWKS URL, or from the `jwks_uri` of an OpenID
    configuration document (`discovery=True`), as Entra ID publishes them
    (https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-signature).

    Fetched without blocking the event loop, cached for `cache_ttl_s`, and re-fetched when a
    token names an unknown key id (key rollover), at most once per `refetch_min_interval_s`
    so a stream of forged key ids cannot turn into a stream of fetches.
    """

    def __init__(
        self,
        url: str,
        *,
        discovery: bool = False,
        cache_ttl_s: float = 3600.0,
        refetch_min_interval_s: float = 30.0,
    ) -> None:
        self._url = url
        self._discovery = discovery
        self._ttl = cache_ttl_s
        self._refetch_gap = refetch_min_interval_s
        self._keys: dict[str, RsaPublicKey] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> RsaPublicKey | None:
        """The public key for `kid`, or None when the published keys have no such key."""
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        return self._keys.get(kid)

    async def _refresh(self, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if self._keys and (age < self._refetch_gap or (not force and age < self._ttl)):
                return
            try:
                url = self._url
                if self._discovery:
                    url = str((await get_json(url))["jwks_uri"])
                doc = await get_json(url)
                keys: dict[str, RsaPublicKey] = {}
                for jwk in doc.get("keys", []):
                    if jwk.get("kty") != "RSA" or "kid" not in jwk:
                        continue
                    try:
                        keys[jwk["kid"]] = RsaPublicKey.from_jwk(jwk)
                    except TokenError as exc:  # one unusable key: the others still count
                        log.warning("signing key %r from %s skipped: %s", jwk["kid"], url, exc)
            except _FETCH_ERRORS as exc:
                log.warning("cannot fetch signing keys from %s: %s", self._url, exc)
                self._fetched_at = time.monotonic()
                return
            self._keys = keys
            self._fetched_at = time.monotonic()


def bearer_token(authorization: str | None) -> tuple[UnverifiedToken, str]:
    """The token of an `Authorization: Bearer <jwt>` header value, RS256 only, and its key
    id."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise JwtError("no bearer token")
    try:
        token = UnverifiedToken.parse(authorization[7:].strip())
        kid = token.key_id
    except TokenError as exc:
        raise JwtError(f"malformed token: {exc}") from None
    # Only RS256: "none" and HMAC algorithms (HS256 keyed with the public key) never verify.
    if token.algorithm != "RS256":
        raise JwtError(f"algorithm {token.algorithm!r} is not RS256")
    return token, kid


class AcsJwtVerifier:
    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        audience: str,
        *,
        cache_ttl_s: float = 3600.0,
        refetch_min_interval_s: float = 30.0,
        leeway_s: float = 30.0,
    ) -> None:
        self._jwks = JwksCache(
            jwks_url,
            cache_ttl_s=cache_ttl_s,
            refetch_min_interval_s=refetch_min_interval_s,
        )
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s

    async def verify(self, authorization: str | None) -> dict[str, Any]:
        """Check an `Authorization: Bearer <jwt>` header value; return the claims."""
        token, kid = bearer_token(authorization)
        key = await self._jwks.key(kid)
        if key is None:
            raise JwtError(f"unknown signing key {kid!r}")
        try:
            return token.verify(
                key, issuers=(self._issuer,), audiences=(self._audience,), leeway_s=self._leeway
            )
        except TokenError as exc:
            raise JwtError(str(exc)) from None
