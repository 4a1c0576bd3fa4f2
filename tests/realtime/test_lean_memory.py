"""A realtime line whose fallback is not the offline agent never loads the offline models
into the service: its apology and other fixed phrases are said once, at start, in a child
process, and play from memory (lines/voices.py). Run in a fresh interpreter, so what this
test process imported does not count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from callbridge.lines import voices
from callbridge.lines.catalogue import default_catalogue
from callbridge.lines.voices import LineVoice
from callbridge.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["onnxruntime", "piper", "faster_whisper", "ctranslate2", "alembic", "openai", "httpx"]
# What a started realtime service must not hold either: NumPy and soxr (no resampling
# between 24 kHz media and a 24 kHz model), Alembic (the schema upgrade runs in a child),
# PyJWT and cryptography (tokens are checked with the standard library: telephony/acs/jws.py),
# Jinja (loaded with the console's first page).
# And no process pool (the phrases are said by `python -m callbridge.lines.phrase_maker`).
NOT_IN_SERVICE = [
    *HEAVY,
    *("numpy", "soxr", "mako", "pygments", "jwt", "cryptography", "jinja2"),
    *("concurrent.futures.process", "multiprocessing.popen_spawn_posix"),
]

CHILD = """
import asyncio, json, sys
HEAVY = json.loads(sys.argv[2])
from callbridge.call.rescue import service_phrases
from callbridge.lines.switchboard import build_switchboard

async def main() -> None:
    board = build_switchboard("voicelive", sys.argv[1])
    await board.prepare(16000)
    line = board.main
    sizes = {text: len(await line.speak(text, 16000)) for text in service_phrases(line)}
    heavy = [m for m in HEAVY if m in sys.modules]
    print(json.dumps({"heavy": heavy, "sizes": sizes}))

asyncio.run(main())
"""


VOICELIVE = {
    "CALLBRIDGE_VOICELIVE_ENDPOINT": "http://127.0.0.1:9",
    "CALLBRIDGE_VOICELIVE_API_KEY": "test-key",
    "CALLBRIDGE_VOICELIVE_MODEL": "gpt-realtime",
}


def _last_json_line(script: str, args: list[str], env: dict[str, str]) -> object:
    """`script` in a fresh interpreter (what this test process imported does not count):
    the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **VOICELIVE, **env},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run(profile: Path) -> dict[str, object]:
    result = _last_json_line(CHILD, [str(profile), json.dumps(HEAVY)], {})
    assert isinstance(result, dict)
    return result


def test_the_apology_is_ready_without_the_offline_models_in_the_service() -> None:
    result = _run(ROOT / "profiles" / "contoso.yaml")  # fallback: transfer
    assert result["heavy"] == []
    sizes = result["sizes"]
    assert isinstance(sizes, dict) and len(sizes) == 4
    # Each phrase is real speech (over half a second at 16 kHz), said in the child.
    assert all(n > 16000 for n in sizes.values()), sizes


def test_an_offline_fallback_loads_the_models_before_the_first_call(tmp_path: Path) -> None:
    profile = (ROOT / "profiles" / "contoso.yaml").read_text()
    offline = tmp_path / "offline.yaml"
    offline.write_text(profile.replace("fallback: transfer", "fallback: offline"))
    result = _run(offline)
    heavy = result["heavy"]
    assert isinstance(heavy, list) and "onnxruntime" in heavy and "piper" in heavy


def test_the_service_command_line_does_not_load_the_emulator() -> None:
    # `callbridge serve` builds a parser that also offers `emulator` and `call`: building
    # it loaded the whole emulator (aiohttp's server, NumPy, httpx) into every replica.
    child = (
        "import sys; from callbridge.cli import build_parser; build_parser(); "
        "print([m for m in sys.modules if m.startswith('callbridge.emulator.') "
        "and m != 'callbridge.emulator.cli'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


SERVICE = """
import asyncio, json, sys
from callbridge.app import create_app
from callbridge.config import load_settings

async def main() -> None:
    app = create_app(load_settings(), upgrade_schema_in_child=True)
    async with app.router.lifespan_context(app):
        loaded = [m for m in json.loads(sys.argv[1]) if m in sys.modules]
    print(json.dumps(loaded))

asyncio.run(main())
"""


def test_a_started_realtime_service_holds_no_numpy_alembic_or_models(tmp_path: Path) -> None:
    # The whole app as `callbridge serve` starts it, on a new records database (so the
    # schema is upgraded), with the default 24 kHz media: the memory of every replica.
    env = {
        "CALLBRIDGE_AGENT": "voicelive",
        "CALLBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        "CALLBRIDGE_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "CALLBRIDGE_ACS_CONNECTION": "endpoint=http://127.0.0.1:9/;accesskey=dGVzdA==",
        "CALLBRIDGE_PUBLIC_URL": "http://127.0.0.1:9",
        "CALLBRIDGE_EVENTGRID_SECRET": "test-secret-0123456789",
        "CALLBRIDGE_ACS_JWKS_URL": "http://127.0.0.1:9/calling/keys",
        "CALLBRIDGE_ACS_JWT_AUDIENCE": "resource-1234",
        "CALLBRIDGE_ADMIN_TOKEN": "admin-token-0123456789",
    }
    assert _last_json_line(SERVICE, [json.dumps(NOT_IN_SERVICE)], env) == []
    assert (tmp_path / "calls.db").exists()  # the child did upgrade it


def _line_voice(voice_path: str | None = None) -> LineVoice:
    profile = load_profile(ROOT / "profiles" / "contoso.yaml", default_catalogue())
    if voice_path is not None:
        voice = profile.voice.model_copy(update={"voice_path": voice_path})
        profile = profile.model_copy(update={"voice": voice})
    return LineVoice(profile)


async def test_a_phrase_maker_that_fails_says_why_and_keeps_nothing(
    tmp_path: Path,
) -> None:
    voice = _line_voice(str(tmp_path / "no-such-voice.onnx"))
    with pytest.raises(RuntimeError, match="cannot say the line's phrases"):
        await voice.prepare(["Sorry."], 16000, in_child=True)
    assert voice._said == {}  # nothing half-made is kept


async def test_a_stuck_phrase_maker_is_killed_after_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "python" that never answers: the service's start must not wait for it forever.
    stuck = tmp_path / "python"
    pid_file = tmp_path / "pid"
    stuck.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    stuck.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(stuck))
    monkeypatch.setattr(voices, "PHRASE_MAKER_TIMEOUT_S", 0.5)
    with pytest.raises(RuntimeError, match="gave no answer in"):
        await _line_voice().prepare(["Sorry."], 16000, in_child=True)
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
