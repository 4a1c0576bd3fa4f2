"""The container image's commands, run natively (no image can be built on these machines):
the Dockerfile's ENTRYPOINT + CMD with its ENV start the service, its HEALTHCHECK command
reports it live, and its STOPSIGNAL drains a live call and exits 0 in bounded time."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from callbridge.emulator import AcsEmulator, CallScript
from callbridge.testing.service_process import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_VENV_BIN = "/opt/callbridge/bin"
IMAGE_WORKDIR = "/app"
DRAIN_S = 5.0

pytestmark = pytest.mark.e2e


@dataclass
class Stage:
    """The instructions of the Dockerfile's last stage that the container runs with."""

    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    stopsignal: str = "SIGTERM"
    user: str = "root"
    workdir: str = "/"
    exec_form: dict[str, bool] = field(default_factory=dict)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _command(args: str) -> tuple[list[str], bool]:
    """A JSON array (exec form) or a shell string (shell form)."""
    if args.startswith("["):
        return list(json.loads(args)), True
    return ["/bin/sh", "-c", args], False


def parse_dockerfile(text: str) -> Stage:
    stage = Stage()
    for word, args in _instructions(text):
        if word == "FROM":
            stage = Stage()  # only the last stage is the image
        elif word == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                stage.env[key] = value.replace("$PATH", stage.env.get("PATH", "$PATH"))
        elif word in ("ENTRYPOINT", "CMD"):
            command, exec_form = _command(args)
            setattr(stage, word.lower(), command)
            stage.exec_form[word] = exec_form
        elif word == "HEALTHCHECK":
            words = args.split()
            while words and words[0].startswith("--"):
                key, _, value = words.pop(0)[2:].partition("=")
                stage.healthcheck_options[key] = value
            assert words and words[0] == "CMD", "HEALTHCHECK needs a CMD"
            stage.healthcheck, stage.exec_form["HEALTHCHECK"] = _command(" ".join(words[1:]))
        elif word == "STOPSIGNAL":
            stage.stopsignal = args
        elif word == "USER":
            stage.user = args
        elif word == "WORKDIR":
            stage.workdir = args
    return stage


STAGE = parse_dockerfile(DOCKERFILE.read_text())


def native(argv: list[str]) -> list[str]:
    """The image's paths on this machine: its venv is ours, its /app is the repo."""
    venv_bin = str(Path(sys.executable).parent)
    out = []
    for arg in argv:
        if arg == "python":
            arg = sys.executable
        elif arg.startswith(IMAGE_WORKDIR + "/"):
            arg = str(ROOT / arg.removeprefix(IMAGE_WORKDIR + "/"))
        elif "/" not in arg and (Path(venv_bin) / arg).exists():
            arg = str(Path(venv_bin) / arg)
        out.append(arg)
    return out


def native_env(**overrides: str) -> dict[str, str]:
    env = {**os.environ}
    for key, value in STAGE.env.items():
        if key == "PATH":
            value = value.replace(IMAGE_VENV_BIN, str(Path(sys.executable).parent))
            value = value.replace("$PATH", os.environ.get("PATH", ""))
        env[key] = value
    # Loopback only here: the image listens on 0.0.0.0 inside its own network namespace.
    env.update(CALLBRIDGE_HOST="127.0.0.1", **overrides)
    return env


def test_the_image_runs_the_service_as_a_non_root_user_in_exec_form() -> None:
    assert STAGE.entrypoint[:2] == ["callbridge", "serve"]
    assert STAGE.exec_form["ENTRYPOINT"] and STAGE.exec_form.get("CMD", True)
    assert STAGE.exec_form["HEALTHCHECK"]
    assert STAGE.stopsignal == "SIGTERM"
    uid = STAGE.user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert STAGE.workdir == IMAGE_WORKDIR
    assert STAGE.env["CALLBRIDGE_HOST"] == "0.0.0.0"
    assert "/healthz" in (ROOT / "deploy/docker/healthcheck.py").read_text()


def test_the_image_installs_every_no_deps_package_of_the_makefile() -> None:
    out = subprocess.run(
        [sys.executable, "deploy/docker/install_no_deps.py", "--print", "Makefile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    makefile = (ROOT / "Makefile").read_text()
    no_deps_lines = [
        line for line in makefile.splitlines() if "--no-deps" in line and "pip" in line
    ]
    assert any(p.startswith("silero-vad") for p in out)
    assert len(out) >= len(no_deps_lines)
    assert "install_no_deps.py Makefile" in DOCKERFILE.read_text()


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for word, args in _instructions(DOCKERFILE.read_text()):
        if word == "COPY" and "--from=" not in args:
            *sources, _ = args.split()
            for src in sources:
                assert (ROOT / src).exists(), src
                assert any(src == a or src.startswith(a + "/") for a in allowed), src


async def _healthcheck(env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        *native(STAGE.healthcheck),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    timeout = float(STAGE.healthcheck_options.get("timeout", "30s").rstrip("s"))
    return await asyncio.wait_for(proc.wait(), timeout)


async def test_entrypoint_serves_healthcheck_passes_and_stopsignal_drains(tmp_path: Path) -> None:
    port, emu_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    key = AcsEmulator.generate_access_key()
    secret = secrets.token_urlsafe(24)
    emu = AcsEmulator(f"{url}/acs/incoming?key={secret}", key, port=emu_port)
    # Secrets as files, the way the container gets them (Key Vault / Compose / Kubernetes).
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "CALLBRIDGE_EVENTGRID_SECRET").write_text(secret + "\n")
    (folder / "callbridge-acs-connection").write_text(
        f"endpoint=http://127.0.0.1:{emu_port}/;accesskey={key}\n"
    )
    env = native_env(
        CALLBRIDGE_PORT=str(port),
        CALLBRIDGE_PUBLIC_URL=url,
        CALLBRIDGE_SECRETS_DIR=str(folder),
        CALLBRIDGE_AGENT="echo",
        CALLBRIDGE_DRAIN_TIMEOUT_S=str(DRAIN_S),
        CALLBRIDGE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/calls.db",
        CALLBRIDGE_RECORDINGS_DIR=str(tmp_path / "recordings"),
        CALLBRIDGE_LOG_LEVEL="WARNING",
    )
    assert await _healthcheck(env) != 0  # nothing listens yet
    proc = subprocess.Popen(native(STAGE.entrypoint + STAGE.cmd), env=env, cwd=ROOT)  # noqa: ASYNC220
    try:
        await emu.start()
        deadline = time.monotonic() + 30
        while await _healthcheck(env) != 0:
            assert proc.poll() is None, "the entrypoint exited at start"
            assert time.monotonic() < deadline, "the healthcheck never passed"
            await asyncio.sleep(0.2)
        call = await emu.start_call(CallScript(from_number="+14255550150", max_duration_s=60))
        await call.wait_media()
        proc.send_signal(signal.Signals[STAGE.stopsignal])
        async with httpx.AsyncClient() as client:
            for _ in range(40):
                ready = await client.get(url + "/readyz")
                if ready.status_code == 503:
                    break
                await asyncio.sleep(0.05)
        assert ready.status_code == 503  # the balancer stops sending calls at once
        report = await call.ended(timeout_s=DRAIN_S + 5)
        assert report.ended_by == "service", report.summary()
        started = time.monotonic()
        assert await asyncio.to_thread(proc.wait, DRAIN_S + 10) == 0
        assert time.monotonic() - started < DRAIN_S + 10
        assert await _healthcheck(env) != 0
    finally:
        await emu.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
