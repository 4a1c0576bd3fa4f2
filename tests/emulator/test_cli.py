"""Control API and the `callbridge emulator` / `callbridge call` CLI glue."""

from __future__ import annotations

import argparse
import asyncio
import json
import wave
from pathlib import Path

import aiohttp
import pytest

from callbridge.emulator import AcsEmulator
from callbridge.emulator.cli import register

from .fake_service import FakeService, tone


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callbridge")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(16000)
        wf.writeframes(tone(seconds))
    return path


async def test_call_command_against_running_emulator(
    emu: AcsEmulator, service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{emu.endpoint}/emulator/healthz") as r:
        assert r.status == 200
    audio = _wav(tmp_path / "caller.wav", 0.4)
    record = tmp_path / "out.wav"
    args = _parse(
        [
            "call",
            "--audio",
            str(audio),
            "--dtmf",
            "0.3:4",
            "--hangup-after",
            "1",
            "--record",
            str(record),
            "--emulator",
            emu.endpoint,
        ]
    )
    assert await asyncio.to_thread(args.func, args) == 0
    out = capsys.readouterr().out
    assert "answered: yes" in out and "caller heard the agent" in out and "ended by caller" in out
    assert record.exists()

    args = _parse(
        [
            "call",
            "--audio",
            str(audio),
            "--hangup-after",
            "0.5",
            "--json",
            "--emulator",
            emu.endpoint,
        ]
    )
    assert await asyncio.to_thread(args.func, args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["answered"] and report["media_both_ways"] and report["dtmf_sent"] == []

    service.answer = False  # not answered -> exit 1
    emu.answer_timeout_s = 0.2
    assert await asyncio.to_thread(args.func, args) == 1


def test_call_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["call", "--audio", str(tmp_path / "missing.wav")])
    assert args.func(args) == 2
    assert "not found" in capsys.readouterr().err
    audio = _wav(tmp_path / "a.wav", 0.1)
    args = _parse(["call", "--audio", str(audio), "--emulator", "http://127.0.0.1:9"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "not reachable" in err and "callbridge emulator" in err


def test_emulator_command_requires_access_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CALLBRIDGE_EMULATOR_ACCESS_KEY", raising=False)
    monkeypatch.delenv("CALLBRIDGE_EMULATOR_PORT", raising=False)
    args = _parse(["emulator"])
    assert (args.port, args.schema) == (8765, "eventgrid")
    assert args.func(args) == 2
    assert "CALLBRIDGE_EMULATOR_ACCESS_KEY" in capsys.readouterr().err


async def test_call_command_to_number_and_headers(
    emu: AcsEmulator, service: FakeService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = _wav(tmp_path / "caller.wav", 0.2)
    args = _parse(
        [
            "call",
            "--audio",
            str(audio),
            "--hangup-after",
            "0.4",
            "--to-number",
            "+18005550199",
            "--sip-header",
            "X-MS-Custom-Ticket=T-9",
            "--voip-header",
            "tier=gold",
            "--emulator",
            emu.endpoint,
        ]
    )
    assert await asyncio.to_thread(args.func, args) == 0
    data = service.incoming[-1][1][0]["data"]
    assert data["to"]["rawId"] == "4:+18005550199"
    assert data["customContext"] == {
        "sipHeaders": {"X-MS-Custom-Ticket": "T-9"},
        "voipHeaders": {"tier": "gold"},
    }
    bad = _parse(["call", "--audio", str(audio), "--sip-header", "novalue"])
    assert bad.func(bad) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_emulator_command_human_flags(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLBRIDGE_EMULATOR_ACCESS_KEY", AcsEmulator.generate_access_key())
    args = _parse(["emulator", "--human", "+14255550100=decline", "--human", "*=busy,ring=1"])
    assert args.human == ["+14255550100=decline", "*=busy,ring=1"]
    args = _parse(["emulator", "--human", "+14255550100=maybe"])
    assert args.func(args) == 2
    assert "unknown human behaviour" in capsys.readouterr().err
