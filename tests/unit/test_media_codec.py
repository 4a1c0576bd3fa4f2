import base64
import json

import pytest

from callbridge.telephony.acs.media_codec import (
    STOP_AUDIO,
    AudioData,
    AudioMetadata,
    DtmfData,
    FrameError,
    OtherFrame,
    encode_audio,
    parse_frame,
)


def test_audio_metadata_as_acs_sends_it() -> None:
    frame = parse_frame(
        '{"kind":"AudioMetadata","audioMetadata":{"subscriptionId":"89e8cb59",'
        '"encoding":"PCM","sampleRate":24000,"channels":1,"length":960}}'
    )
    assert frame == AudioMetadata("89e8cb59", "PCM", 24000, 1, 960)


def test_audio_data_decodes_pcm_and_flags() -> None:
    pcm = bytes(range(256)) * 3 + bytes(192)
    msg = {
        "kind": "AudioData",
        "audioData": {
            "timestamp": "2024-11-15T19:16:12.925Z",
            "participantRawID": "4:+14255550123",
            "data": base64.b64encode(pcm).decode(),
            "silent": False,
        },
    }
    frame = parse_frame(json.dumps(msg))
    assert isinstance(frame, AudioData)
    assert frame.pcm == pcm and not frame.silent
    assert frame.participant == "4:+14255550123"


def test_silent_frame_without_data() -> None:
    frame = parse_frame('{"kind":"AudioData","audioData":{"data":"","silent":true}}')
    assert isinstance(frame, AudioData) and frame.silent and frame.pcm == b""


@pytest.mark.parametrize(
    ("raw", "digit"), [("3", "3"), ("pound", "#"), ("#", "#"), ("asterisk", "*"), ("eight", "8")]
)
def test_dtmf_spellings(raw: str, digit: str) -> None:
    assert parse_frame(json.dumps({"kind": "DtmfData", "dtmfData": {"data": raw}})) == DtmfData(
        digit
    )


def test_pascal_case_is_accepted_too() -> None:
    frame = parse_frame('{"Kind":"AudioData","AudioData":{"Data":"AAA=","Silent":false}}')
    assert isinstance(frame, AudioData) and frame.pcm == b"\x00\x00"


def test_unknown_kinds_are_passed_over() -> None:
    assert parse_frame('{"kind":"TranscriptionData","transcriptionData":{}}') == OtherFrame(
        "TranscriptionData"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not JSON"),
        ("[1,2]", "not a JSON object"),
        ('{"audioData":{}}', "no 'kind'"),
        ('{"kind":"AudioData"}', "without a audioData"),
        ('{"kind":"AudioData","audioData":{"data":"@@@"}}', "not valid base64"),
        ('{"kind":"AudioData","audioData":{"data":"AAAA"}}', "odd number"),
        ('{"kind":"AudioData","audioData":{"data":5}}', "not a string"),
        ('{"kind":"DtmfData","dtmfData":{"data":"x"}}', "unknown tone"),
        ('{"kind":"AudioMetadata","audioMetadata":{"sampleRate":"fast"}}', "non-numeric"),
    ],
)
def test_malformed_frames_say_why(text: str, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        parse_frame(text)


def test_outbound_frames_match_the_documented_shape() -> None:
    out = json.loads(encode_audio(b"\x01\x00\x02\x00"))
    assert out == {"Kind": "AudioData", "AudioData": {"Data": "AQACAA=="}, "StopAudio": None}
    assert json.loads(STOP_AUDIO) == {"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}
