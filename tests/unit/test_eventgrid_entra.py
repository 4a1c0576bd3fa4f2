"""Entra ID delivery authentication on /acs/incoming: tokens signed here, the tenant's
OpenID configuration and JWKS served on 127.0.0.1 (telephony/acs/eventgrid_auth.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm

from callbridge.app import create_app
from callbridge.config import ConfigError, Settings, load_settings
from callbridge.telephony.acs.acs_jwt import JwtError
from callbridge.telephony.acs.eventgrid_auth import EntraTokenVerifier
from tests.fakes import FakeControl
from tests.local_http import serving

TENANT = "3f1a8d52-6a43-4b8e-9a59-5b9f0c6d2e71"
OTHER_TENANT = "0b4e3c2d-1111-4c4c-8d8d-222233334444"
APP_ID = "8e2b6c1a-7d3f-4a5e-b9c0-d1e2f3a4b5c6"
APP_URI = f"api://{APP_ID}"
V2_ISS = f"https://login.microsoftonline.com/{TENANT}/v2.0"
V1_ISS = f"https://sts.windows.net/{TENANT}/"
ROLE = "AzureEventGridSecureWebhookSubscriber"
SECRET = "eventgrid-secret-123456"

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig")
    return jwk


@dataclass
class Tenant:
    """The tenant's OpenID configuration and JWKS, as login.microsoftonline.com serves them."""

    url: str = ""
    keys: list[dict[str, Any]] = field(default_factory=lambda: [_jwk(KEY, "k1")])
    fetches: int = 0
    down: bool = False

    @property
    def openid_url(self) -> str:
        return f"{self.url}/{TENANT}/v2.0/.well-known/openid-configuration"


@pytest.fixture
async def tenant() -> AsyncIterator[Tenant]:
    state = Tenant()

    async def config(request: web.Request) -> web.Response:
        if state.down:
            return web.Response(status=503)
        return web.json_response(
            {"issuer": V2_ISS, "jwks_uri": f"{state.url}/{TENANT}/discovery/v2.0/keys"}
        )

    async def keys(request: web.Request) -> web.Response:
        state.fetches += 1
        return web.json_response({"keys": state.keys})

    app = web.Application()
    app.router.add_get(f"/{TENANT}/v2.0/.well-known/openid-configuration", config)
    app.router.add_get(f"/{TENANT}/discovery/v2.0/keys", keys)
    async with serving(app) as base:
        state.url = base
        yield state


def token(key: rsa.RSAPrivateKey = KEY, kid: str = "k1", **claims: Any) -> str:
    """An access token as Entra issues it to Event Grid (v2 unless iss says otherwise)."""
    now = int(time.time())
    body = {
        "iss": V2_ISS,
        "aud": APP_ID,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "tid": TENANT,
        "roles": [ROLE],
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _forged(alg: str, signature: Any) -> str:
    """A token with `alg` whose signature is signature(signing input) (PyJWT refuses to
    make these)."""
    now = int(time.time())
    body = {"iss": V2_ISS, "aud": APP_ID, "nbf": now, "exp": now + 3600, "roles": [ROLE]}
    header = {"alg": alg, "typ": "JWT", "kid": "k1"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    return f"{signing_input}.{_b64(signature(signing_input.encode()))}"


def unsigned() -> str:
    """alg "none": a header and a body, no signature."""
    return _forged("none", lambda _: b"")


def hs256_with_public_key() -> str:
    """The classic confusion: HS256 keyed with the tenant's public key (PEM)."""
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _forged("HS256", lambda data: hmac.new(pem, data, hashlib.sha256).digest())


def entra_settings(tenant: Tenant, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "acs_connection": "endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        "public_url": "https://bridge.example.com",
        "agent": "echo",
        "eventgrid_entra_tenant_id": TENANT,
        "eventgrid_entra_audience": f"{APP_ID},{APP_URI}",
        "eventgrid_entra_openid_url": tenant.openid_url,
        **kw,
    }
    return load_settings(_env_file=None, **values)


def validation() -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "code-42"},
        }
    ]


def incoming() -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "eventType": "Microsoft.Communication.IncomingCall",
            "data": {
                "to": {"kind": "phoneNumber", "rawId": "4:+18005550100"},
                "from": {"kind": "phoneNumber", "rawId": "4:+14255550123"},
                "incomingCallContext": str(uuid.uuid4()),
                "serverCallId": "s",
                "correlationId": "c",
            },
        }
    ]


@dataclass
class Service:
    client: httpx.AsyncClient
    control: FakeControl

    async def deliver(
        self, bearer: str | None, body: list[dict[str, Any]] | None = None, url: str = ""
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {bearer}"} if bearer is not None else {}
        return await self.client.post(
            url or "/acs/incoming", json=body or incoming(), headers=headers
        )


async def _service(settings: Settings) -> AsyncIterator[Service]:
    control = FakeControl()
    app: FastAPI = create_app(settings, control=control)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Service(client, control)


@pytest.fixture
async def service(tenant: Tenant) -> AsyncIterator[Service]:
    async for s in _service(entra_settings(tenant)):
        yield s


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING, logger="callbridge.telephony.acs.routes")
    yield caplog


# --- accepted ------------------------------------------------------------------------------


async def test_correct_token_passes_the_handshake_and_answers_the_call(service: Service) -> None:
    r = await service.deliver(token(), validation())
    assert r.status_code == 200 and r.json() == {"validationResponse": "code-42"}
    r = await service.deliver(token())
    assert r.status_code == 200, r.text
    await asyncio.wait_for(service.control.answered.wait(), 3)
    assert len(service.control.answers) == 1


async def test_v1_token_for_the_application_id_uri_is_accepted(service: Service) -> None:
    r = await service.deliver(token(iss=V1_ISS, aud=APP_URI), validation())
    assert r.status_code == 200 and r.json() == {"validationResponse": "code-42"}


async def test_keys_are_fetched_once_for_many_deliveries(service: Service, tenant: Tenant) -> None:
    for _ in range(5):
        assert (await service.deliver(token(), validation())).status_code == 200
    assert tenant.fetches == 1


# --- refused: each a 401 with the reason logged, nothing done ------------------------------


@pytest.mark.parametrize(
    ("bearer", "reason"),
    [
        pytest.param(lambda: token(aud="api://someone-else"), "Audience", id="wrong-audience"),
        pytest.param(
            lambda: token(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"),
            "issuer",
            id="wrong-issuer",
        ),
        pytest.param(
            lambda: token(iat=int(time.time()) - 7200, exp=int(time.time()) - 600),
            "expired",
            id="expired",
        ),
        pytest.param(lambda: token(nbf=int(time.time()) + 600), "not yet valid", id="not-yet"),
        pytest.param(unsigned, "'none' is not RS256", id="unsigned-alg-none"),
        pytest.param(hs256_with_public_key, "'HS256' is not RS256", id="hs256"),
        pytest.param(lambda: token(key=OTHER_KEY), "Signature verification failed", id="forged"),
        pytest.param(lambda: token(kid="unknown"), "unknown signing key", id="unknown-key"),
        pytest.param(lambda: token(roles=["Reader"]), "app role", id="no-role"),
        pytest.param(lambda: "not.a.jwt", "malformed", id="garbage"),
        pytest.param(lambda: None, "no bearer token", id="no-token"),
        pytest.param(lambda: SECRET, "malformed", id="secret-when-only-entra"),
    ],
)
async def test_bad_tokens_are_refused(
    tenant: Tenant,
    warnings: pytest.LogCaptureFixture,
    bearer: Any,
    reason: str,
) -> None:
    async for service in _service(entra_settings(tenant, eventgrid_entra_role=ROLE)):
        for body in (validation(), incoming()):
            r = await service.deliver(bearer(), body)
            assert r.status_code == 401, r.text
            assert "validationResponse" not in r.text
        await asyncio.sleep(0.05)
        assert service.control.answers == [] and service.control.rejects == []
    logged = [rec.getMessage() for rec in warnings.records]
    assert any("Event Grid delivery refused" in m and reason in m for m in logged), logged


async def test_a_tenant_whose_keys_cannot_be_fetched_refuses_without_5xx(
    tenant: Tenant, warnings: pytest.LogCaptureFixture
) -> None:
    tenant.down = True
    async for service in _service(entra_settings(tenant)):
        r = await service.deliver(token(), validation())
        assert r.status_code == 401
    assert any("unknown signing key" in rec.getMessage() for rec in warnings.records)


# --- the secret and Entra side by side -----------------------------------------------------


async def test_secret_and_entra_are_each_enough_when_both_are_set(tenant: Tenant) -> None:
    async for service in _service(entra_settings(tenant, eventgrid_secret=SECRET)):
        assert (await service.deliver(token(), validation())).status_code == 200
        ok = await service.deliver(None, validation(), url=f"/acs/incoming?key={SECRET}")
        assert ok.status_code == 200
        assert (await service.deliver(SECRET, validation())).status_code == 200
        assert (await service.deliver(token(aud="api://x"), validation())).status_code == 401
        bad = await service.deliver(None, validation(), url="/acs/incoming?key=wrong")
        assert bad.status_code == 401


# --- keys: rollover and the refetch bound --------------------------------------------------


async def test_rolled_over_key_is_fetched_and_refetches_are_rate_limited(tenant: Tenant) -> None:
    verifier = EntraTokenVerifier(
        TENANT, (APP_ID,), openid_url=tenant.openid_url, refetch_min_interval_s=0.3
    )
    await verifier.verify(f"Bearer {token()}")
    assert tenant.fetches == 1
    # Forged key ids do not turn into a fetch each.
    for i in range(5):
        with pytest.raises(JwtError, match="unknown signing key"):
            await verifier.verify(f"Bearer {token(kid=f'forged-{i}')}")
    assert tenant.fetches == 1
    # The tenant rolls its key over: a token with the new kid verifies after the bound.
    tenant.keys = [_jwk(OTHER_KEY, "k2")]
    await asyncio.sleep(0.35)
    claims = await verifier.verify(f"Bearer {token(key=OTHER_KEY, kid='k2')}")
    assert claims["aud"] == APP_ID and tenant.fetches == 2


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"eventgrid_entra_tenant_id": TENANT},
            "CALLBRIDGE_EVENTGRID_ENTRA_AUDIENCE is not set",
        ),
        (
            {"eventgrid_entra_audience": APP_ID},
            "CALLBRIDGE_EVENTGRID_ENTRA_TENANT_ID is not set",
        ),
        (
            {"eventgrid_entra_openid_url": "http://127.0.0.1:1/x"},
            "CALLBRIDGE_EVENTGRID_ENTRA_OPENID_URL is set without",
        ),
        ({"eventgrid_entra_role": ROLE}, "CALLBRIDGE_EVENTGRID_ENTRA_ROLE is set without"),
        (
            {
                "eventgrid_entra_tenant_id": "contoso.onmicrosoft.com",
                "eventgrid_entra_audience": "a",
            },
            "CALLBRIDGE_EVENTGRID_ENTRA_TENANT_ID must be the tenant",
        ),
        ({}, "CALLBRIDGE_EVENTGRID_SECRET is not set"),
    ],
)
def test_half_set_entra_settings_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("CALLBRIDGE_EVENTGRID_SECRET", raising=False)
    base = {
        "acs_connection": "endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        "public_url": "https://bridge.example.com",
    }
    with pytest.raises(ConfigError, match=message):
        load_settings(_env_file=None, **base, **values)


def test_entra_alone_needs_no_secret(tenant: Tenant) -> None:
    s = entra_settings(tenant)
    assert s.eventgrid_secret is None and s.eventgrid_entra
    assert s.eventgrid_entra_audiences == (APP_ID, APP_URI)
