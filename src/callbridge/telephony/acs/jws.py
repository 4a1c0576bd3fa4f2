"""RS256 JSON Web Tokens checked with the standard library alone.

ACS (media WebSocket, callbacks) and Entra ID (Event Grid deliveries) sign their tokens with
RS256: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 section 3.3). Verifying one takes a public
key operation (`pow`) and a comparison, which the standard library does in ~0.1 ms; PyJWT
would load the `cryptography` package for it, ~8.5 MB of the service's idle memory
(docs/architecture.md, "Memory").

The signature is checked the way RFC 8017 section 8.2.2 recommends: the expected encoding of
the digest is built and compared whole with what the signature opens to, so nothing of the
signer's padding is parsed. Only RS256 is accepted: "none" and HMAC (HS256 keyed with the
public key) never verify. Claims are checked as PyJWT does (RFC 7519 section 4.1): `exp`,
`iss` and `aud` required, `nbf` and `iat` honoured, each time with a leeway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

# DER of DigestInfo{sha256, NULL} (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# Keys shorter than 2048 bits are refused (NIST SP 800-131A); longer than 8192 is no real
# key, and would only make every check slower.
MIN_KEY_BITS, MAX_KEY_BITS = 2048, 8192


class TokenError(ValueError):
    """The token is malformed or does not verify; the message says why."""


@dataclass(frozen=True)
class RsaPublicKey:
    n: int
    e: int

    @property
    def size(self) -> int:
        """The modulus length in bytes: the length of every signature it checks."""
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> RsaPublicKey:
        """The key of a JSON Web Key (RFC 7517, RFC 7518 section 6.3.1), for signing."""
        if jwk.get("kty") != "RSA":
            raise TokenError(f"key type {jwk.get('kty')!r} is not RSA")
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            raise TokenError("the key is not an RS256 signing key")
        n = int.from_bytes(b64url_decode(_text(jwk.get("n"), "n")), "big")
        e = int.from_bytes(b64url_decode(_text(jwk.get("e"), "e")), "big")
        if not MIN_KEY_BITS <= n.bit_length() <= MAX_KEY_BITS:
            raise TokenError(f"a {n.bit_length()}-bit key is not accepted")
        if e < 3 or e % 2 == 0 or e >= n:
            raise TokenError("the key's exponent is not valid")
        return cls(n, e)

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's RSASSA-PKCS1-v1_5 SHA-256 signature of
        `message` (RFC 8017 section 8.2.2)."""
        k = self.size
        if len(signature) != k:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        opened = pow(s, self.e, self.n).to_bytes(k, "big")
        digest = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        padding = k - len(digest) - 3
        if padding < 8:  # cannot happen with MIN_KEY_BITS; RFC 8017 section 9.2 step 5
            return False
        expected = b"\x00\x01" + b"\xff" * padding + b"\x00" + digest
        return hmac.compare_digest(opened, expected)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TokenError(f"the key's {name!r} is missing")
    return value


def b64url_decode(text: str) -> bytes:
    """Base64url without padding (RFC 7515 section 2); anything else is refused."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TokenError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("not base64url") from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise TokenError(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError(f"the {what} is not a JSON object")
    return value


@dataclass(frozen=True)
class UnverifiedToken:
    """A compact JWS split and decoded, its signature not yet checked."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @classmethod
    def parse(cls, token: str) -> UnverifiedToken:
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("not three base64url parts")
        header = _json_object(b64url_decode(parts[0]), "header")
        claims = _json_object(b64url_decode(parts[1]), "payload")
        signature = b64url_decode(parts[2])
        # RFC 7515 section 4.1.11: extensions the recipient does not understand must be
        # refused; callbridge understands none.
        if "crit" in header:
            raise TokenError("critical header extensions are not supported")
        return cls(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)

    @property
    def algorithm(self) -> object:
        return self.header.get("alg")

    @property
    def key_id(self) -> str:
        kid = self.header.get("kid", "")
        if not isinstance(kid, str):
            raise TokenError("the key id is not a string")
        return kid

    def verify(
        self,
        key: RsaPublicKey,
        *,
        issuers: Collection[str],
        audiences: Collection[str],
        leeway_s: float,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The claims, once the signature and the claims check out; else TokenError."""
        if self.algorithm != "RS256":
            raise TokenError(f"algorithm {self.algorithm!r} is not RS256")
        if not key.verifies(self.signing_input, self.signature):
            raise TokenError("Signature verification failed")
        now = time.time() if now is None else now
        _check_claims(self.claims, issuers, audiences, leeway_s, now)
        return self.claims


def _number(claims: Mapping[str, Any], name: str) -> int | float | None:
    """A time claim (seconds since the epoch), None when absent. Not `float()`: an integer
    of 400 digits would overflow it; NaN and infinity (which JSON parsing lets through)
    would make every comparison false, a token that never expires."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"the {name!r} claim is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise TokenError(f"the {name!r} claim is not a finite number")
    return value


def _check_claims(
    claims: Mapping[str, Any],
    issuers: Collection[str],
    audiences: Collection[str],
    leeway_s: float,
    now: float,
) -> None:
    for name in ("exp", "iss", "aud"):
        if name not in claims:
            raise TokenError(f"the token has no {name!r} claim")
    exp = _number(claims, "exp")
    if exp is not None and exp <= now - leeway_s:
        raise TokenError("the token has expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + leeway_s:
        raise TokenError("the token is not yet valid (nbf)")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + leeway_s:
        raise TokenError("the token is not yet valid (iat)")
    aud = claims["aud"]
    offered = [aud] if isinstance(aud, str) else aud
    if not isinstance(offered, list) or not all(isinstance(a, str) for a in offered):
        raise TokenError("Audience claim is malformed")
    if not set(offered) & set(audiences):
        raise TokenError("Audience doesn't match")
    iss = claims["iss"]
    if not isinstance(iss, str) or iss not in issuers:
        raise TokenError(f"the issuer {iss!r} is not accepted")
