"""Pure unit tests: outbound frame parsing, audio formats, playout buffer accounting."""

from __future__ import annotations

import base64
import json

import pytest

from callbridge.emulator.media import metadata_frame, parse_audio_format, parse_outbound
from callbridge.emulator.playout import HeardTracker, PlayoutBuffer


def test_audio_formats_accept_ga_and_preview_casing() -> None:
    assert parse_audio_format("pcm24KMono") == ("pcm24KMono", 24000)
    assert parse_audio_format("Pcm24KMono") == ("Pcm24KMono", 24000)
    assert parse_audio_format("Pcm16KMono")[1] == 16000
    assert parse_audio_format(None) == ("pcm16KMono", 16000)  # the documented default
    with pytest.raises(ValueError):
        parse_audio_format("pcm8KMono")
    meta = json.loads(metadata_frame("sub", 24000))["audioMetadata"]
    assert meta == {
        "subscriptionId": "sub",
        "encoding": "PCM",
        "sampleRate": 24000,
        "channels": 1,
        "length": 960,
    }


def test_outbound_frames_match_case_insensitively() -> None:
    pcm = b"\x01\x00\x02\x00"
    b64 = base64.b64encode(pcm).decode()
    for text in [
        json.dumps({"Kind": "AudioData", "AudioData": {"Data": b64}, "StopAudio": None}),
        json.dumps({"kind": "audioData", "audioData": {"data": b64, "isSilent": False}}),
    ]:
        out = parse_outbound(text)
        assert (out.kind, out.pcm) == ("audio", pcm)
    for text in [
        '{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}',
        '{"kind":"stopAudio","stopAudio":{}}',
    ]:
        assert parse_outbound(text).kind == "stop"
    for text in [
        "nope",
        "[]",
        '{"Kind":"AudioData"}',
        '{"Kind":"AudioData","AudioData":{"Data":"AQ=="}}',
    ]:
        assert parse_outbound(text).kind == "invalid"


def test_playout_underrun_and_flush() -> None:
    buf = PlayoutBuffer(4)
    buf.push(b"\x10\x00" * 3, tick=0)  # 1.5 frames
    assert buf.pull(0) == b"\x10\x00\x10\x00"
    assert buf.pull(1) == b"\x10\x00\x00\x00"  # partial frame, zero-padded: ran dry
    buf.push(b"\x10\x00" * 2, tick=3)  # more speech 40 ms later -> an audible gap
    assert buf.underruns == 1
    buf.flush()
    assert buf.pull(4) is None and len(buf) == 0
    buf.push(b"\x10\x00" * 2, tick=5)
    assert buf.underruns == 1  # after StopAudio/flush, a new utterance is not an underrun

    heard = HeardTracker()
    loud = b"\x00\x10" * 2
    for tick in [0, 1, 5, 11]:  # gap of 3 ticks merges (< 100 ms), gap of 5 does not
        heard.add(tick, loud)
    heard.add(12, b"\x00\x00" * 2)
    assert heard.segments() == [(0.0, 0.12), (0.22, 0.24)]
