"""The ACS HTTP routes, driven through the ASGI app with Call Automation faked."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callbridge.app import create_app
from callbridge.config import load_settings
from callbridge.core.ending import EndCause, EndReason
from callbridge.core.spacing import Spacing
from callbridge.testing.fake_clock import FakeClock
from tests.fakes import FakeControl
from tests.waiting import until

SECRET = "eventgrid-secret-123456"


def settings(**kw: Any) -> Any:
    return load_settings(
        acs_connection="endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        public_url="https://bridge.example.com",
        eventgrid_secret=SECRET,
        **kw,
    )


def incoming(event_id: str | None = None, ctx: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "id": event_id or str(uuid.uuid4()),
            "eventType": "Microsoft.Communication.IncomingCall",
            "data": {
                "to": {"kind": "phoneNumber", "rawId": "4:+18005550100"},
                "from": {"kind": "phoneNumber", "rawId": "4:+14255550123"},
                "incomingCallContext": ctx or str(uuid.uuid4()),
                "serverCallId": "s",
                "correlationId": "c",
            },
        }
    ]


@pytest.fixture
async def app_and_control() -> AsyncIterator[tuple[FastAPI, FakeControl]]:
    control = FakeControl()
    app = create_app(settings(max_calls=2), control=control)
    async with app.router.lifespan_context(app):
        yield app, control


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_validation_handshake(app_and_control: tuple[FastAPI, FakeControl]) -> None:
    app, _ = app_and_control
    body = [
        {
            "id": "1",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "abc-123"},
        }
    ]
    async with client(app) as c:
        r = await c.post(f"/acs/incoming?key={SECRET}", json=body)
        assert r.status_code == 200 and r.json() == {"validationResponse": "abc-123"}
        r = await c.options(
            "/acs/incoming", headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
        )
        assert r.status_code == 200
        assert r.headers["webhook-allowed-origin"] == "eventgrid.azure.net"


async def test_unauthenticated_deliveries_do_nothing(
    app_and_control: tuple[FastAPI, FakeControl],
) -> None:
    app, control = app_and_control
    async with client(app) as c:
        for url, headers in [
            ("/acs/incoming", {}),
            ("/acs/incoming?key=wrong", {}),
            ("/acs/incoming", {"x-callbridge-key": "wrong"}),
        ]:
            r = await c.post(url, json=incoming(), headers=headers)
            assert r.status_code == 401
        r = await c.post("/acs/incoming", json=incoming(), headers={"x-callbridge-key": SECRET})
        assert r.status_code == 200
        r = await c.post(
            "/acs/incoming", json=incoming(), headers={"authorization": "Bearer " + SECRET}
        )
        assert r.status_code == 200
    await asyncio.sleep(0.05)
    assert len(control.answers) == 2


async def test_duplicate_delivery_answers_once(
    app_and_control: tuple[FastAPI, FakeControl],
) -> None:
    app, control = app_and_control
    event = incoming("same-id", "same-ctx")
    async with client(app) as c:
        codes = [
            (await c.post(f"/acs/incoming?key={SECRET}", json=event)).status_code for _ in range(3)
        ]
        # A redelivery with a new envelope id but the same call context is the same call.
        other = incoming("new-id", "same-ctx")
        r = await c.post(f"/acs/incoming?key={SECRET}", json=other)
    assert codes == [200, 200, 200] and r.status_code == 200
    await asyncio.sleep(0.05)
    assert len(control.answers) == 1


async def test_webhook_returns_before_the_answer_completes() -> None:
    control = FakeControl(answer_delay_s=1.0)
    app = create_app(settings(), control=control)
    async with app.router.lifespan_context(app), client(app) as c:
        t0 = time.perf_counter()
        r = await c.post(f"/acs/incoming?key={SECRET}", json=incoming())
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200 and elapsed < 0.5
        await asyncio.wait_for(control.answered.wait(), 3)
    (_, callback, media, fmt) = control.answers[0]
    assert callback.startswith("https://bridge.example.com/acs/callbacks/")
    assert "?token=" in callback
    assert media.startswith("wss://bridge.example.com/acs/media/")
    assert fmt == "pcm24KMono"


async def test_calls_over_the_cap_are_rejected_as_busy(
    app_and_control: tuple[FastAPI, FakeControl],
) -> None:
    app, control = app_and_control
    async with client(app) as c:
        for _ in range(3):
            assert (await c.post(f"/acs/incoming?key={SECRET}", json=incoming())).status_code == 200
    # The second answer comes one answer spacing after the first.
    await until(lambda: len(control.answers) == 2, 1.0, "the second answer")
    assert [r[1] for r in control.rejects] == ["busy"]


async def test_a_burst_of_calls_is_answered_spaced_out() -> None:
    """Event Grid delivers four IncomingCalls together: the first is answered at once, the
    others one answer spacing apart, so their set-ups do not stall the calls in progress."""
    control = FakeControl()
    app = create_app(settings(max_calls=10, answer_spacing_ms=50), control=control)
    clock = FakeClock()
    app.state.edge.answers = Spacing(app.state.edge.answers.interval_s, clock)
    burst = [event for _ in range(4) for event in incoming()]
    async with app.router.lifespan_context(app), client(app) as c:
        r = await c.post(f"/acs/incoming?key={SECRET}", json=burst)
        assert r.status_code == 200
        await clock.settle()
        answered = [len(control.answers)]
        for _ in range(3):
            await clock.advance(0.05, step=0.01)
            answered.append(len(control.answers))
    assert answered == [1, 2, 3, 4]
    assert len({ctx for ctx, *_ in control.answers}) == 4


async def test_a_call_ended_while_it_waits_for_its_turn_is_not_answered() -> None:
    control = FakeControl()
    app = create_app(settings(max_calls=10, answer_spacing_ms=50), control=control)
    clock = FakeClock()
    edge = app.state.edge
    edge.answers = Spacing(edge.answers.interval_s, clock)
    async with app.router.lifespan_context(app), client(app) as c:
        burst = [event for _ in range(2) for event in incoming()]
        assert (await c.post(f"/acs/incoming?key={SECRET}", json=burst)).status_code == 200
        await clock.settle()
        waiting = [s for s in edge.calls.values() if not s.leg_id]
        assert len(control.answers) == 1 and len(waiting) == 1
        reason = EndReason(EndCause.SHUTDOWN, "the service is stopping")
        await waiting[0].end(reason, hang_up=False)
        await clock.advance(0.2, step=0.01)
    assert len(control.answers) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"[]", 400), (b'[{"id":"1"}]', 400), (b"x" * (2 << 20), 413)],
)
async def test_malformed_deliveries_get_4xx(
    app_and_control: tuple[FastAPI, FakeControl], body: bytes, status: int
) -> None:
    app, control = app_and_control
    async with client(app) as c:
        r = await c.post(f"/acs/incoming?key={SECRET}", content=body)
        assert r.status_code == status
        assert "error" in r.json()
        # ...and the service still answers the next good call.
        assert (await c.post(f"/acs/incoming?key={SECRET}", json=incoming())).status_code == 200
    await asyncio.wait_for(control.answered.wait(), 3)
    assert len(control.answers) == 1


async def test_callbacks_need_the_call_token(
    app_and_control: tuple[FastAPI, FakeControl],
) -> None:
    app, control = app_and_control
    async with client(app) as c:
        await c.post(f"/acs/incoming?key={SECRET}", json=incoming())
        await asyncio.wait_for(control.answered.wait(), 3)
        callback = control.answers[0][1].removeprefix("https://bridge.example.com")
        path = callback.split("?")[0]
        events = [
            {
                "id": "e1",
                "type": "Microsoft.Communication.CallDisconnected",
                "specversion": "1.0",
                "source": "calling/callConnections/conn-1",
                "data": {"callConnectionId": "conn-1", "resultInformation": {"code": 200}},
            }
        ]
        assert (await c.post(path, json=events)).status_code == 401
        assert (await c.post(path + "?token=forged.sig", json=events)).status_code == 401
        assert (await c.post(callback, content=b"{bad")).status_code == 400
        edge = app.state.edge
        assert len(edge.calls) == 1
        r = await c.post(callback, content=json.dumps(events))
        assert r.status_code == 200
        assert len(edge.calls) == 0
        assert edge.finished[-1].end_reason.startswith("call disconnected")
        # Events for a call that has ended are acknowledged, not errors.
        assert (await c.post(callback, json=events)).status_code == 200
    assert control.hang_ups == []


# --- hostile bodies: Event Grid retries a 5xx, so each must be a 400 with a reason -------------
def _deep() -> bytes:
    return b"[" * 100_000 + b"]" * 100_000


def _big_int(envelope: dict[str, Any]) -> bytes:
    return json.dumps([{**envelope, "n": 1}]).encode().replace(b'"n": 1', b'"n": ' + b"9" * 5000)


def _incoming_surrogate_id() -> bytes:
    return json.dumps(incoming("\ud800")).encode()  # ensure_ascii: sent as "\ud800"


def _incoming_surrogate_name() -> bytes:
    body = incoming()
    body[0]["data"]["callerDisplayName"] = "Ann \udc00"
    return json.dumps(body).encode()


def _callback(**data: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": "cb-1",
            "type": "Microsoft.Communication.ParticipantsUpdated",
            "specversion": "1.0",
            "source": "calling/callConnections/conn-1",
            "data": {"callConnectionId": "conn-1", **data},
        }
    ]


HOSTILE_INCOMING = {
    "deep": (_deep, "nested too deeply"),
    "big-int": (lambda: _big_int(incoming()[0]), "Exceeds the limit"),
    "surrogate-id": (_incoming_surrogate_id, "lone surrogate"),
    "surrogate-name": (_incoming_surrogate_name, "lone surrogate"),
}
HOSTILE_CALLBACK = {
    "deep": (_deep, "nested too deeply"),
    "big-int": (lambda: _big_int(_callback()[0]), "Exceeds the limit"),
    "surrogate": (
        lambda: json.dumps(_callback(operationContext="op-\ud800")).encode(),
        "lone surrogate",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_INCOMING))
async def test_hostile_deliveries_get_400(
    app_and_control: tuple[FastAPI, FakeControl],
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    app, control = app_and_control
    make, reason = HOSTILE_INCOMING[case]
    async with client(app) as c:
        r = await c.post(f"/acs/incoming?key={SECRET}", content=make())
        assert r.status_code == 400, r.text
        assert reason in r.json()["error"]
        assert any("rejected Event Grid delivery" in m for m in caplog.messages)
        assert (await c.post(f"/acs/incoming?key={SECRET}", json=incoming())).status_code == 200
    await asyncio.wait_for(control.answered.wait(), 3)
    assert len(control.answers) == 1  # the hostile one was not answered


@pytest.mark.parametrize("case", list(HOSTILE_CALLBACK))
async def test_hostile_callbacks_get_400(
    app_and_control: tuple[FastAPI, FakeControl],
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    app, control = app_and_control
    make, reason = HOSTILE_CALLBACK[case]
    async with client(app) as c:
        await c.post(f"/acs/incoming?key={SECRET}", json=incoming())
        await asyncio.wait_for(control.answered.wait(), 3)
        callback = control.answers[0][1].removeprefix("https://bridge.example.com")
        r = await c.post(callback, content=make())
        assert r.status_code == 400, r.text
        assert reason in r.json()["error"]
        assert any("rejected callback" in m for m in caplog.messages)
        assert (await c.post(callback, json=_callback())).status_code == 200


@pytest.mark.parametrize(
    "length", [b"9" * 5000, b"0" * 5000 + b"1", "²".encode("latin-1")], ids=["long", "zeros", "²"]
)
async def test_odd_content_lengths_are_not_500(
    app_and_control: tuple[FastAPI, FakeControl], length: bytes
) -> None:
    app, _ = app_and_control
    async with client(app) as c:
        r = await c.post(
            f"/acs/incoming?key={SECRET}",
            content=b"{}",
            headers={b"content-type": b"application/json", b"content-length": length},
        )
    assert r.status_code in (400, 413), r.text


def test_a_forged_media_upgrade_does_not_burn_the_calls_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The single-use media token is spent only once the ACS JWT has been checked too."""
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from callbridge.telephony.acs.acs_jwt import AcsJwtVerifier, JwtError

    async def verify(self: AcsJwtVerifier, header: str | None) -> dict[str, Any]:
        if header != "Bearer signed-by-acs":
            raise JwtError("bad signature")
        return {}

    monkeypatch.setattr(AcsJwtVerifier, "verify", verify)
    control = FakeControl()
    app = create_app(
        settings(acs_jwks_url="http://127.0.0.1:1/keys", acs_jwt_audience="acs-resource"),
        control=control,
    )
    with TestClient(app) as c:
        r = c.post(f"/acs/incoming?key={SECRET}", json=incoming())
        assert r.status_code == 200
        for _ in range(100):
            if control.answers:
                break
            time.sleep(0.01)
        media_path = "/" + control.answers[0][2].split("/", 3)[3]
        forged = {"authorization": "Bearer forged"}
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            c.websocket_connect(media_path, headers=forged) as ws,
        ):
            ws.receive_text()
        assert refused.value.code == 4401
        real = {"authorization": "Bearer signed-by-acs"}
        with c.websocket_connect(media_path, headers=real) as ws:
            ws.close()  # accepted: the token was still unused
