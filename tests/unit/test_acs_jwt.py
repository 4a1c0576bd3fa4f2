import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from callbridge.telephony.acs.acs_jwt import AcsJwtVerifier, JwtError

ISS = "https://acscallautomation.communication.azure.com"
AUD = "resource-1234"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY = _key()
OTHER = _key()


def _jwks(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return {"keys": [jwk]}


def _token(key: rsa.RSAPrivateKey = KEY, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    # Valid for a day: the parametrised tokens are made when the tests are collected, and
    # a long suite reaches them many minutes later.
    body = {"iss": ISS, "aud": AUD, "iat": now, "nbf": now, "exp": now + 86400, **claims}
    return "Bearer " + jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def _verifier() -> tuple[AcsJwtVerifier, list[int]]:
    fetches: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetches.append(1)
        return httpx.Response(200, json=_jwks(KEY, "k1"))

    v = AcsJwtVerifier(
        "http://acs.test/calling/keys", ISS, AUD, transport=httpx.MockTransport(handler)
    )
    return v, fetches


async def test_valid_token_verifies_and_keys_are_cached() -> None:
    v, fetches = _verifier()
    for _ in range(3):
        claims = await v.verify(_token())
        assert claims["aud"] == AUD
    assert len(fetches) == 1


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "no bearer"),
        ("Basic abc", "no bearer"),
        ("Bearer not.a.jwt", "malformed"),
        (_token(key=OTHER), "Signature verification failed"),
        (_token(kid="k9"), "unknown signing key"),
        (_token(aud="someone-else"), "Audience"),
        (_token(iss="https://evil.example"), "issuer"),
        (_token(exp=int(time.time()) - 3600), "expired"),
    ],
)
async def test_bad_tokens_are_refused(header: str | None, reason: str) -> None:
    v, _ = _verifier()
    with pytest.raises(JwtError, match=reason):
        await v.verify(header)


async def test_hs256_token_signed_with_public_key_is_refused() -> None:
    v, _ = _verifier()
    forged = jwt.encode({"iss": ISS, "aud": AUD, "exp": time.time() + 60}, "s" * 32, "HS256")
    with pytest.raises(JwtError, match="not RS256"):
        await v.verify("Bearer " + forged)
