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

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["onnxruntime", "piper", "faster_whisper", "ctranslate2", "alembic", "openai", "httpx"]

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


def _run(profile: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "CALLBRIDGE_VOICELIVE_ENDPOINT": "http://127.0.0.1:9",
        "CALLBRIDGE_VOICELIVE_API_KEY": "test-key",
        "CALLBRIDGE_VOICELIVE_MODEL": "gpt-realtime",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(profile), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
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
