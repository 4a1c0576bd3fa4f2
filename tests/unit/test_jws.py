"""The service's RS256 check (`telephony/acs/jws.py`) against PyJWT with `cryptography`,
the implementation it replaces: on good tokens, forged ones and every kind of tampering,
both must give the same verdict."""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

from callbridge.telephony.acs.jws import RsaPublicKey, TokenError, UnverifiedToken

ISS, AUD = "https://issuer.example", "api://callbridge"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
BIG = rsa.generate_private_key(public_exponent=3, key_size=3072)


def _jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return jwk


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    """Claims made now; a number in `changes` for a time claim is seconds from now (PyJWT
    reads the real clock, so both must see the same one)."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISS, "aud": AUD, "iat": now, "nbf": now, "exp": now + 60}
    for name, value in changes.items():
        timed = name in ("exp", "nbf", "iat") and isinstance(value, int)
        body[name] = now + value if timed else value
    return {k: v for k, v in body.items() if v is not None}


def _sign(claims: dict[str, Any], key: rsa.RSAPrivateKey = KEY) -> str:
    """Signed by `cryptography` directly: PyJWT would refuse to make some of the bad
    tokens (an issuer that is not a string)."""
    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}"


def _ours(token: str, key: rsa.RSAPrivateKey = KEY) -> dict[str, Any] | str:
    try:
        parsed = UnverifiedToken.parse(token)
        public = RsaPublicKey.from_jwk(_jwk(key))
        return parsed.verify(public, issuers=(ISS,), audiences=(AUD,), leeway_s=30)
    except TokenError as exc:
        return f"refused: {exc}"


def _pyjwt(token: str, key: rsa.RSAPrivateKey = KEY) -> dict[str, Any] | str:
    try:
        if jwt.get_unverified_header(token).get("crit") is not None:
            return "refused: crit"  # PyJWT before 2.10 ignores it; RFC 7515 says refuse
        return jwt.decode(
            token,
            key.public_key(),
            algorithms=["RS256"],
            audience=AUD,
            issuer=ISS,
            leeway=30,
            options={"require": ["exp", "iss", "aud"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        return f"refused: {exc}"


def _same_verdict(token: str, key: rsa.RSAPrivateKey = KEY) -> dict[str, Any] | str:
    ours, theirs = _ours(token, key), _pyjwt(token, key)
    assert isinstance(ours, dict) == isinstance(theirs, dict), (token, ours, theirs)
    if isinstance(ours, dict):
        assert ours == theirs
    return ours


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        ({}, True),
        ({"aud": ["someone", AUD]}, True),
        ({"exp": -20}, True),  # within the leeway
        ({"exp": -35}, False),
        ({"nbf": 35}, False),
        ({"iat": 35}, False),
        ({"iat": "yesterday"}, False),
        ({"exp": "soon"}, False),
        ({"exp": float("nan")}, False),  # JSON parsing lets NaN through: never expires
        ({"exp": float("inf")}, False),
        ({"exp": 10**400}, True),  # an integer float() would overflow on; far off
        ({"nbf": float("-inf")}, False),
        ({"exp": None}, False),
        ({"aud": None}, False),
        ({"iss": None}, False),
        ({"aud": "someone-else"}, False),
        ({"aud": [1, 2]}, False),
        ({"aud": []}, False),
        ({"iss": "https://evil.example"}, False),
        ({"iss": [ISS]}, False),
    ],
)
def test_claims_get_the_same_verdict_as_pyjwt(changes: dict[str, Any], accepted: bool) -> None:
    verdict = _same_verdict(_sign(_claims(**changes)))
    assert isinstance(verdict, dict) == accepted, verdict


def test_a_larger_key_with_a_small_exponent_verifies() -> None:
    assert isinstance(_same_verdict(_sign(_claims(), BIG), BIG), dict)


def test_forgeries_are_refused_as_pyjwt_refuses_them() -> None:
    good = _sign(_claims())
    head, body, sig = good.split(".")
    other_body = _b64(json.dumps(_claims(aud="x")).encode())
    unsigned = _b64(b'{"alg":"none"}')
    critical = _b64(b'{"alg":"RS256","crit":["x"],"x":1}')
    longer = _b64(b"\x00" + base64.urlsafe_b64decode(sig + "=="))
    too_big, zero = _b64(b"\xff" * 256), _b64(bytes(256))
    not_utf8, deep = _b64(b"\xff\xfe"), _b64(b"{" * 5000)
    forgeries = [
        _sign(_claims(), OTHER),  # another key
        f"{head}.{other_body}.{sig}",  # claims swapped under the signature
        jwt.encode(_claims(), "s" * 32, algorithm="HS256"),  # HMAC
        f"{unsigned}.{body}.",
        f"{critical}.{body}.{sig}",
        f"{head}.{body}",  # two parts
        f"{head}.{body}.{sig}.{sig}",
        f"{head}.{body}.{sig[:-2]}",  # a signature one byte short
        f"{head}.{body}.{longer}",  # a signature one byte long
        f"{head}.{body}.{too_big}",  # s >= n
        f"{head}.{body}.{zero}",
        f"{head}.{_b64(b'[1,2]')}.{sig}",
        f"{deep}.{body}.{sig}",
        f"{head}.{not_utf8}.{sig}",
        "a.b.c",
        "",
    ]
    for token in forgeries:
        assert not isinstance(_same_verdict(token), dict), token
    # Stricter than PyJWT: base64 padding, which RFC 7515 section 2 leaves out.
    assert "base64url" in str(_ours(f"{head}.{body}.{sig}=="))


def test_random_tampering_gets_the_same_verdict_as_pyjwt() -> None:
    rng = random.Random(1234)
    good = _sign(_claims(sub="caller"))
    refused = 0
    for _ in range(400):
        chars = list(good)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            chars[i] = rng.choice("ABCDEFGHabcdefgh0123456789-_.=")
        token = "".join(chars)
        refused += not isinstance(_same_verdict(token), dict)
    assert refused > 300  # nearly every change breaks the signature or the encoding


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kty": "EC"}, "not RSA"),
        ({"use": "enc"}, "signing key"),
        ({"alg": "RS512"}, "signing key"),
        ({"n": _b64((2**1023 + 1).to_bytes(128, "big"))}, "1024-bit"),
        ({"e": _b64(b"\x02")}, "exponent"),
        ({"e": None}, "'e'"),
        ({"n": "bad*chars"}, "base64url"),
    ],
)
def test_unusable_keys_are_refused_with_the_reason(change: dict[str, Any], reason: str) -> None:
    jwk = {**_jwk(KEY), **change}
    with pytest.raises(TokenError, match=reason):
        RsaPublicKey.from_jwk({k: v for k, v in jwk.items() if v is not None})
