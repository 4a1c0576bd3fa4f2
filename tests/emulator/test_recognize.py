"""Recognize (DTMF) via the real async SDK, with the caller pressing keys live."""

from __future__ import annotations

from typing import Any

import pytest
from azure.communication.callautomation import (
    DtmfTone,
    PhoneNumberIdentifier,
    RecognizeInputType,
    TextSource,
)
from azure.core.exceptions import HttpResponseError

from callbridge.emulator import AcsEmulator, CallScript
from callbridge.emulator.recognize import Recognizer, parse_recognize
from callbridge.emulator.report import RecognizeRecord

from .fake_service import FakeService

CALLER = PhoneNumberIdentifier("+14255550123")


def _info(event: dict[str, Any]) -> tuple[int, int]:
    info = event["data"]["resultInformation"]
    return info["code"], info["subCode"]


async def test_recognize_dtmf_completed_failed_canceled(
    emu: AcsEmulator, service: FakeService
) -> None:
    call = await emu.start_call(CallScript(max_duration_s=20))
    await call.wait_media()
    assert service.client is not None and call.call_connection_id is not None
    conn = service.client.get_call_connection(call.call_connection_id)

    # max digits: 200/8531
    await conn.start_recognizing_media(
        RecognizeInputType.DTMF,
        CALLER,
        dtmf_max_tones_to_collect=3,
        play_prompt=TextSource(text="Enter your PIN"),  # not played (no audio)
        operation_context="pin",
    )
    await call.press("123", gap_s=0.1)
    done = await service.wait_event("RecognizeCompleted")
    assert _info(done) == (200, 8531)
    assert done["data"]["recognitionType"] == "dtmf"
    assert done["data"]["dtmfResult"] == {"tones": ["one", "two", "three"]}
    assert done["data"]["operationContext"] == "pin"

    # stop tone: 200/8514, the stop tone included
    await conn.start_recognizing_media(
        RecognizeInputType.DTMF,
        CALLER,
        dtmf_max_tones_to_collect=6,
        dtmf_stop_tones=[DtmfTone.POUND],
        operation_context="acct",
    )
    await call.press("45#", gap_s=0.1)
    done = await service.wait_event("RecognizeCompleted", 2)
    assert _info(done) == (200, 8514)
    assert done["data"]["dtmfResult"]["tones"] == ["four", "five", "pound"]

    # inter-digit timeout: 200/8532 after interToneTimeoutInSeconds
    await conn.start_recognizing_media(
        RecognizeInputType.DTMF,
        CALLER,
        dtmf_max_tones_to_collect=4,
        dtmf_inter_tone_timeout=1,
        operation_context="ext",
    )
    (pressed_at, _), *_ = await call.press("7*")
    done = await service.wait_event("RecognizeCompleted", 3)
    assert _info(done) == (200, 8532)
    assert done["data"]["dtmfResult"]["tones"] == ["seven", "asterisk"]
    record = call.report.recognitions[2]
    assert record.ended_s is not None and record.ended_s - pressed_at >= 1.0 + 0.15 - 0.03

    # initial silence: RecognizeFailed 400/8510
    start = call.mark()
    await conn.start_recognizing_media(
        RecognizeInputType.DTMF,
        CALLER,
        dtmf_max_tones_to_collect=1,
        initial_silence_timeout=1,
        operation_context="nothing",
    )
    failed = await service.wait_event("RecognizeFailed")
    assert _info(failed) == (400, 8510)
    assert failed["data"]["operationContext"] == "nothing"
    assert abs(call.report.recognitions[3].started_s - start) <= 0.1

    # cancelAllMediaOperations: RecognizeCanceled (and PlayCanceled for a running play)
    await conn.start_recognizing_media(
        RecognizeInputType.DTMF, CALLER, dtmf_max_tones_to_collect=2, operation_context="c"
    )
    with pytest.raises(HttpResponseError) as busy:  # one recognize at a time
        await conn.start_recognizing_media(
            RecognizeInputType.DTMF, CALLER, dtmf_max_tones_to_collect=2
        )
    assert busy.value.status_code == 412
    await conn.play_media(TextSource(text="hold on"), operation_context="p")
    await conn.cancel_all_media_operations()
    canceled = await service.wait_event("RecognizeCanceled")
    assert canceled["data"]["operationContext"] == "c"
    assert (await service.wait_event("PlayCanceled"))["data"]["operationContext"] == "p"
    with pytest.raises(HttpResponseError) as invalid:  # maxTonesToCollect is required
        await conn.start_recognizing_media(RecognizeInputType.DTMF, CALLER)
    assert invalid.value.status_code == 400

    report = await call.hang_up()
    # DTMF still reaches the media socket as DtmfData (enableDtmfTones).
    (session,) = service.ws_sessions
    digits = [m["dtmfData"]["data"] for _, m in session.received if m.get("kind") == "DtmfData"]
    assert digits == list("12345#7*")
    assert [d for _, d in report.dtmf_sent] == digits
    assert [r.outcome for r in report.recognitions] == [
        "RecognizeCompleted",
        "RecognizeCompleted",
        "RecognizeCompleted",
        "RecognizeFailed",
        "RecognizeCanceled",
    ]
    assert [r.sub_code for r in report.recognitions[:4]] == [8531, 8514, 8532, 8510]
    assert report.recognitions[0].options["dtmfOptions"] == {"maxTonesToCollect": 3}
    assert "PlayCompleted" not in service.event_names()


def test_recognizer_unit() -> None:
    """Timeouts and choices on synthetic times (no real time)."""
    target = {"rawId": "4:+1", "phoneNumber": {"value": "+1"}}

    def make(options: dict[str, Any], input_type: str = "dtmf") -> Recognizer:
        body = {
            "recognizeInputType": input_type,
            "recognizeOptions": {"targetParticipant": target, **options},
        }
        settings = parse_recognize(body)
        return Recognizer(settings, RecognizeRecord(input_type, {}, 1.0), None, None)

    rz = make({"dtmfOptions": {"maxTonesToCollect": 3}})
    assert rz.on_tick(5.98) is None  # default initial silence 5 s from started_s=1.0
    failed = rz.on_tick(6.0)
    assert failed is not None and failed.result.sub_code == 8510
    rz = make({"dtmfOptions": {"maxTonesToCollect": 3}})
    assert rz.on_tone("one", 2.0) is None
    assert rz.on_tick(3.98) is None  # default inter-tone 2 s
    done = rz.on_tick(4.0)
    assert done is not None and done.result.sub_code == 8532
    choices = [{"label": "Sales", "phrases": ["sales"], "tone": "one"}]
    rz = make({"choices": choices}, "choices")
    matched = rz.on_tone("one", 2.0)
    assert matched is not None and matched.result.sub_code == 8533
    assert matched.extra == {"recognitionType": "choices", "choiceResult": {"label": "Sales"}}
    wrong = make({"choices": choices}, "choices").on_tone("two", 2.0)
    assert wrong is not None and wrong.event == "RecognizeFailed"
    assert wrong.result.sub_code == 8534
    speech = make({}, "speech")
    assert speech.on_tone("one", 2.0) is None
    assert speech.on_tick(6.0) is not None
    both = make({}, "speechOrDtmf")  # DTMF part: maxTonesToCollect defaults to 1
    got = both.on_tone("nine", 2.0)
    assert got is not None and got.result.sub_code == 8531
    bad_options: list[dict[str, Any]] = [
        {"dtmfOptions": {"maxTonesToCollect": 0}},
        {"dtmfOptions": {"maxTonesToCollect": 2, "stopTones": ["hash"]}},
        {"dtmfOptions": {"maxTonesToCollect": 2, "interToneTimeoutInSeconds": 61}},
        {"initialSilenceTimeoutInSeconds": 301, "dtmfOptions": {"maxTonesToCollect": 1}},
    ]
    for bad in bad_options:
        with pytest.raises(ValueError):
            make(bad)
