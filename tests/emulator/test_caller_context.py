"""What the caller's side puts into IncomingCall: the called number and custom context."""

from __future__ import annotations

import asyncio
from typing import Any

from callbridge.emulator import AcsEmulator, CallScript

from .fake_service import FakeService

SALES, SUPPORT = "+18005550111", "+18005550122"


def _data(service: FakeService, i: int) -> dict[str, Any]:
    body = service.incoming[i][1]
    return body[0]["data"]  # type: ignore[no-any-return]


async def test_custom_context_and_called_number_reach_incoming_call(
    emu: AcsEmulator, service: FakeService
) -> None:
    sip = {
        "X-MS-Custom-CRM-Id": "A-1",
        "x-ms-custom-lowercase": "kept as is",
        "User-To-User": "616263;encoding=hex",
    }
    scripts = [
        CallScript(to_number=SALES, custom_context={"sipHeaders": sip}, hangup_after_s=0.1),
        CallScript(
            to_number=SUPPORT,
            custom_context={"voipHeaders": {"customHeader": "customValue"}},
            hangup_after_s=0.1,
        ),
        CallScript(to_number="8:acs:bot-identity", hangup_after_s=0.1),
    ]
    reports = await asyncio.gather(*(emu.place_call(s) for s in scripts))
    assert all(r.answered for r in reports)
    by_to = {_data(service, i)["to"]["rawId"]: _data(service, i) for i in range(3)}

    sales = by_to[f"4:{SALES}"]
    assert sales["to"] == {
        "kind": "phoneNumber",
        "rawId": f"4:{SALES}",
        "phoneNumber": {"value": SALES},
    }
    assert sales["customContext"] == {"sipHeaders": sip, "voipHeaders": {}}
    assert list(sales["customContext"]["sipHeaders"]) == list(sip)  # names and order as given
    support = by_to[f"4:{SUPPORT}"]
    assert support["customContext"] == {
        "sipHeaders": {},
        "voipHeaders": {"customHeader": "customValue"},
    }
    acs = by_to["8:acs:bot-identity"]
    assert acs["to"] == {
        "kind": "communicationUser",
        "rawId": "8:acs:bot-identity",
        "communicationUser": {"id": "8:acs:bot-identity"},
    }
    assert "customContext" not in acs
    subjects = sorted(service.incoming[i][1][0]["subject"] for i in range(3))
    assert f"/caller/4:+14255550123/recipient/4:{SALES}" in subjects
