"""Callback / media JWTs and the JWKS the emulator serves."""

from __future__ import annotations

import aiohttp
import jwt
import pytest

from callbridge.emulator import DEFAULT_ISSUER, AcsEmulator


async def _jwks(emu: AcsEmulator) -> dict:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as http:
        async with http.get(emu.openid_configuration_url) as r:
            assert r.status == 200
            meta = await r.json()
        assert meta == {"issuer": DEFAULT_ISSUER, "jwks_uri": emu.jwks_url}
        async with http.get(meta["jwks_uri"]) as r:
            assert r.status == 200
            return await r.json()  # type: ignore[no-any-return]


async def test_minted_token_verifies_against_served_jwks(emu: AcsEmulator) -> None:
    jwks = await _jwks(emu)
    (key,) = jwks["keys"]
    assert {key["kty"], key["use"], key["alg"]} == {"RSA", "sig", "RS256"}
    token = emu.jwt.callback_token()
    header = jwt.get_unverified_header(token)
    assert header["kid"] == key["kid"] and header["alg"] == "RS256"
    public = jwt.PyJWK(key).key
    claims = jwt.decode(
        token, public, algorithms=["RS256"], audience=emu.audience, issuer=emu.issuer
    )
    assert claims["exp"] - claims["iat"] == 300
    media = jwt.decode(emu.jwt.media_token(), public, algorithms=["RS256"], audience=emu.audience)
    assert media["exp"] - media["iat"] == 24 * 3600
    assert emu.jwt.callback_token() != token  # fresh token each time

    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, public, algorithms=["RS256"], audience="someone-else")


async def test_custom_issuer_and_audience(access_key: str) -> None:
    emu = AcsEmulator("http://127.0.0.1:1/x", access_key, issuer="https://iss", resource_id="rid")
    await emu.start()
    try:
        jwks = await _jwks_custom(emu)
        claims = jwt.decode(
            emu.jwt.callback_token(),
            jwt.PyJWK(jwks["keys"][0]).key,
            algorithms=["RS256"],
            audience="rid",
            issuer="https://iss",
        )
        assert claims["aud"] == "rid"
    finally:
        await emu.stop()


async def _jwks_custom(emu: AcsEmulator) -> dict:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as http, http.get(emu.jwks_url) as r:
        return await r.json()  # type: ignore[no-any-return]
