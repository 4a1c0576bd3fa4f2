"""AcsCallControl's calls into the Call Automation SDK, with the SDK client faked: what a
warm transfer's add-participant carries for each way of writing the target."""

from __future__ import annotations

from typing import Any

import pytest
from azure.communication.callautomation import (
    CommunicationUserIdentifier,
    PhoneNumberIdentifier,
)

from callbridge.config import AcsConnection
from callbridge.telephony.acs.control import AcsCallControl, CallControlError

CALLED = "+18005550100"  # the resource's number the caller dialled


class FakeConnection:
    """Records `add_participant` as the SDK's CallConnectionClient would receive it."""

    def __init__(self) -> None:
        self.added: list[tuple[Any, dict[str, Any]]] = []

    async def add_participant(self, target_participant: Any, **kwargs: Any) -> None:
        self.added.append((target_participant, kwargs))


class FakeCallAutomationClient:
    def __init__(self, endpoint: str, credential: Any) -> None:
        self.connections: dict[str, FakeConnection] = {}

    def get_call_connection(self, call_connection_id: str) -> FakeConnection:
        return self.connections.setdefault(call_connection_id, FakeConnection())

    async def close(self) -> None:
        return None


@pytest.fixture
def control(monkeypatch: pytest.MonkeyPatch) -> AcsCallControl:
    import azure.communication.callautomation.aio as sdk

    monkeypatch.setattr(sdk, "CallAutomationClient", FakeCallAutomationClient)
    return AcsCallControl(AcsConnection("https://acs.example.com", "c2VjcmV0"))


async def _add(control: AcsCallControl, target: str, caller_id: str | None = CALLED) -> Any:
    await control.add_participant("conn-1", target, {"summary": "hi"}, 30, caller_id)
    client: Any = control._client  # the fake
    ((participant, kwargs),) = client.get_call_connection("conn-1").added
    return participant, kwargs


@pytest.mark.parametrize("target", ["+14255550100", "4:+14255550100", " 4:+14255550100 "])
async def test_a_phone_target_gets_the_called_number_as_caller_id(
    control: AcsCallControl, target: str
) -> None:
    """A PSTN add-participant needs the source caller id, however the number is written."""
    participant, kwargs = await _add(control, target)
    assert isinstance(participant, PhoneNumberIdentifier)
    assert participant.properties["value"] == "+14255550100"
    source = kwargs["source_caller_id_number"]
    assert isinstance(source, PhoneNumberIdentifier)
    assert source.properties["value"] == CALLED
    assert kwargs["sip_headers"] == {"X-MS-Custom-summary": "hi"} and kwargs["voip_headers"] is None
    assert kwargs["invitation_timeout"] == 30


async def test_a_caller_id_written_as_a_raw_id_is_a_number(control: AcsCallControl) -> None:
    _, kwargs = await _add(control, "+14255550100", caller_id="4:" + CALLED)
    assert kwargs["source_caller_id_number"].properties["value"] == CALLED


async def test_an_acs_user_target_gets_no_caller_id(control: AcsCallControl) -> None:
    participant, kwargs = await _add(control, "8:acs:resource_user")
    assert isinstance(participant, CommunicationUserIdentifier)
    assert kwargs["source_caller_id_number"] is None
    assert kwargs["voip_headers"] == {"summary": "hi"} and kwargs["sip_headers"] is None


async def test_no_called_number_means_no_caller_id(control: AcsCallControl) -> None:
    _, kwargs = await _add(control, "4:+14255550100", caller_id=None)
    assert kwargs["source_caller_id_number"] is None


async def test_an_unknown_target_is_refused_before_the_sdk(control: AcsCallControl) -> None:
    with pytest.raises(CallControlError, match="neither"):
        await control.add_participant("conn-1", "sip:someone", {}, 30, CALLED)
    client: Any = control._client
    assert not client.get_call_connection("conn-1").added
