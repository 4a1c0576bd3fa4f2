import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from callbridge.telephony.acs import acs_jwt
from callbridge.telephony.acs.acs_jwt import MAX_DOCUMENT_BYTES, AcsJwtVerifier, JwtError
from tests.local_http import serving

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


class KeyServer:
    """The ACS key endpoint on 127.0.0.1: what it answers, and how often it was asked."""

    def __init__(self) -> None:
        self.fetches = 0
        self.answer: web.StreamResponse | None = None  # None: the key set
        self.stall = False
        self.url = ""

    async def _keys(self, request: web.Request) -> web.StreamResponse:
        self.fetches += 1
        if self.stall:
            await asyncio.sleep(30)
        return self.answer or web.json_response(_jwks(KEY, "k1"))

    def verifier(self) -> AcsJwtVerifier:
        return AcsJwtVerifier(self.url, ISS, AUD, refetch_min_interval_s=0.0)


@pytest.fixture
async def keys() -> AsyncIterator[KeyServer]:
    server = KeyServer()
    app = web.Application()
    app.router.add_get("/calling/keys", server._keys)
    async with serving(app) as base:
        server.url = f"{base}/calling/keys"
        yield server


async def test_valid_token_verifies_and_keys_are_cached(keys: KeyServer) -> None:
    v = AcsJwtVerifier(keys.url, ISS, AUD)
    for _ in range(3):
        claims = await v.verify(_token())
        assert claims["aud"] == AUD
    assert keys.fetches == 1


@pytest.mark.parametrize(
    "answer",
    [
        web.Response(status=500, text="down"),
        web.Response(text="<html>not json</html>"),
        web.Response(body=b"{" + b" " * (MAX_DOCUMENT_BYTES + 10) + b"}"),
        web.Response(status=302, headers={"Location": "http://evil.example/keys"}),
        "stall",
    ],
    ids=["5xx", "garbage", "oversized", "redirect", "stall"],
)
async def test_a_key_endpoint_that_fails_refuses_the_token_and_logs_why(
    keys: KeyServer,
    answer: web.Response | str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(acs_jwt, "FETCH_TIMEOUT_S", 0.3)
    if answer == "stall":
        keys.stall = True
    else:
        assert isinstance(answer, web.Response)
        keys.answer = answer
    v = keys.verifier()
    started = time.monotonic()
    with pytest.raises(JwtError, match="unknown signing key"):
        await v.verify(_token())
    assert time.monotonic() - started < 2  # two fetches, each bounded
    assert "cannot fetch signing keys" in caplog.text
    # The endpoint recovers: the next token verifies.
    keys.stall, keys.answer = False, None
    assert (await v.verify(_token()))["aud"] == AUD


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
async def test_bad_tokens_are_refused(keys: KeyServer, header: str | None, reason: str) -> None:
    v = AcsJwtVerifier(keys.url, ISS, AUD)
    with pytest.raises(JwtError, match=reason):
        await v.verify(header)


async def test_hs256_token_signed_with_public_key_is_refused(keys: KeyServer) -> None:
    v = AcsJwtVerifier(keys.url, ISS, AUD)
    forged = jwt.encode({"iss": ISS, "aud": AUD, "exp": time.time() + 60}, "s" * 32, "HS256")
    with pytest.raises(JwtError, match="not RS256"):
        await v.verify("Bearer " + forged)


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits")  # PyJWT, signing the weak one
async def test_an_unusable_key_in_the_set_is_skipped_and_the_others_still_verify(
    keys: KeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    keys.answer = web.json_response(
        {"keys": [*_jwks(weak, "weak")["keys"], *_jwks(KEY, "k1")["keys"]]}
    )
    v = keys.verifier()
    assert (await v.verify(_token()))["aud"] == AUD
    assert "signing key 'weak'" in caplog.text and "1024-bit" in caplog.text
    with pytest.raises(JwtError, match="unknown signing key"):
        await v.verify(_token(key=weak, kid="weak"))
