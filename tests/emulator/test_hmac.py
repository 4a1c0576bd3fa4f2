"""HMAC request signing — real SDK signatures, forged ones."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from callbridge.emulator import AcsEmulator
from callbridge.emulator.hmac_auth import HmacError, sign_headers, verify_request

from .fake_service import FakeService


async def _captured_sdk_post(emu: AcsEmulator, service: FakeService):  # type: ignore[no-untyped-def]
    """A real SDK-signed POST with a body (answer with an unknown context → 400)."""
    assert service.client is not None
    with pytest.raises(HttpResponseError) as info:
        await service.client.answer_call("bogus-context", "http://127.0.0.1:1/cb")
    assert info.value.status_code == 400
    entry = emu.rest_log[-1]
    assert entry.status == 400 and entry.body["incomingCallContext"] == "bogus-context"
    return entry


async def test_real_sdk_signature_verifies_and_tampering_fails(
    emu: AcsEmulator, service: FakeService, access_key: str
) -> None:
    entry = await _captured_sdk_post(emu, service)
    headers = {k.lower(): v for k, v in entry.headers.items()}
    assert headers["user-agent"].startswith("azsdk-python-communication-callautomation/1.6")
    raw = entry.raw_body
    key = base64.b64decode(access_key)
    sent_at = parsedate_to_datetime(headers["x-ms-date"])
    verify_request(
        method="POST", path_and_query=entry.path, headers=headers, body=raw, access_key=key
    )
    with pytest.raises(HmacError, match="x-ms-content-sha256"):
        verify_request(
            method="POST",
            path_and_query=entry.path,
            headers=headers,
            body=raw.replace(b"bogus", b"bogux"),
            access_key=key,
        )
    with pytest.raises(HmacError, match="signature mismatch"):
        verify_request(
            method="POST",
            path_and_query=entry.path + "&x=1",
            headers=headers,
            body=raw,
            access_key=key,
        )
    with pytest.raises(HmacError, match="signature mismatch"):
        wrong = base64.b64decode(AcsEmulator.generate_access_key())
        verify_request(
            method="POST", path_and_query=entry.path, headers=headers, body=raw, access_key=wrong
        )
    with pytest.raises(HmacError, match="15 minutes"):
        verify_request(
            method="POST",
            path_and_query=entry.path,
            headers=headers,
            body=raw,
            access_key=key,
            now=sent_at + timedelta(minutes=16),
        )
    no_auth = {k: v for k, v in headers.items() if k != "authorization"}
    with pytest.raises(HmacError, match="missing Authorization"):
        verify_request(
            method="POST", path_and_query=entry.path, headers=no_auth, body=raw, access_key=key
        )


async def test_sdk_with_wrong_key_gets_client_authentication_error(
    emu: AcsEmulator, access_key: str
) -> None:
    from azure.communication.callautomation.aio import CallAutomationClient
    from azure.core.credentials import AzureKeyCredential

    async with CallAutomationClient(
        emu.endpoint, AzureKeyCredential(AcsEmulator.generate_access_key())
    ) as client:
        with pytest.raises(ClientAuthenticationError) as info:
            await client.get_call_connection("abc").get_call_properties()
    assert info.value.status_code == 401
    assert emu.rest_log[-1].status == 401
    assert "signature mismatch" in (emu.rest_log[-1].error or "")


async def _raw(emu: AcsEmulator, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    url = f"{emu.endpoint}/calling/callConnections:answer?api-version=2026-03-12"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_http_level_rejections(emu: AcsEmulator, access_key: str) -> None:
    key = base64.b64decode(access_key)
    path = "/calling/callConnections:answer?api-version=2026-03-12"
    host = emu.endpoint.removeprefix("http://")
    body = b'{"incomingCallContext":"x","callbackUri":"http://127.0.0.1:1/cb"}'
    ct = {"Content-Type": "application/json"}

    status, err = await _raw(emu, body, ct)  # missing
    assert status == 401
    assert err["error"]["code"] == "7509"
    assert err["error"]["message"].startswith("Hmac Validation Error: missing Authorization")

    stale = sign_headers(
        method="POST",
        path_and_query=path,
        host=host,
        body=body,
        access_key=key,
        date=datetime.now(UTC) - timedelta(minutes=20),
    )
    status, err = await _raw(emu, body, {**ct, **stale})
    assert status == 401 and "15 minutes" in err["error"]["message"]

    good = sign_headers(method="POST", path_and_query=path, host=host, body=body, access_key=key)
    status, err = await _raw(emu, body + b" ", {**ct, **good})  # body tampered after signing
    assert status == 401 and "x-ms-content-sha256" in err["error"]["message"]

    forged = sign_headers(
        method="POST", path_and_query=path, host="evil:1", body=body, access_key=key
    )
    status, err = await _raw(emu, body, {**ct, **forged})
    assert status == 401 and "signature mismatch" in err["error"]["message"]

    status, err = await _raw(emu, body, {**ct, **good})  # valid signature, unknown context
    assert status == 400 and err["error"]["code"] == "8523"
