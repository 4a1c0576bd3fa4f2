"""`callbridge serve` in a process of its own, wired to an ACS emulator in this process as
a deployment is wired to Azure (the benchmarks in bench/ and the drain test use it)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from callbridge.emulator import AcsEmulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    url: str
    proc: subprocess.Popen[bytes]
    emulator: AcsEmulator
    ready_s: float  # from launch until /healthz answered (models load before that)
    cmd: list[str]
    env: dict[str, str]
    cwd: Path | None

    async def crash_and_restart(self, start_timeout_s: float = 30.0) -> float:
        """SIGKILL the service (a crash: nothing of it runs), start it again with the same
        settings; returns seconds from the restart until it answered /healthz."""
        self.proc.kill()
        await asyncio.to_thread(self.proc.wait)
        started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.cwd)  # noqa: ASYNC220
        return await _wait_healthy(self.url, self.proc, started, start_timeout_s)


@asynccontextmanager
async def service_process(
    agent: str,
    env: dict[str, str] | None = None,
    *,
    start_timeout_s: float = 30.0,
    cwd: Path | None = None,
) -> AsyncIterator[ServiceProcess]:
    """`callbridge serve` with `agent` (and `env` on top of the emulator's settings) in a
    process of its own, run from `cwd` (default: the current directory), until the block
    ends; then SIGINT (the service drains its calls first) and a wait for it to exit.
    Unless `env` names them, its records database and recordings are its own, in a
    temporary folder: another service's left-behind calls are none of its business."""
    with tempfile.TemporaryDirectory(prefix="callbridge-svc-") as scratch:
        async with _service_process(agent, env, start_timeout_s, cwd, Path(scratch)) as svc:
            yield svc


@asynccontextmanager
async def _service_process(
    agent: str,
    env: dict[str, str] | None,
    start_timeout_s: float,
    cwd: Path | None,
    scratch: Path,
) -> AsyncIterator[ServiceProcess]:
    port, emu_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    key = AcsEmulator.generate_access_key()
    secret = secrets.token_urlsafe(24)
    emu = AcsEmulator(f"{url}/acs/incoming?key={secret}", key, port=emu_port)
    full_env = {
        **os.environ,
        "CALLBRIDGE_ACS_CONNECTION": f"endpoint=http://127.0.0.1:{emu_port}/;accesskey={key}",
        "CALLBRIDGE_PUBLIC_URL": url,
        "CALLBRIDGE_EVENTGRID_SECRET": secret,
        "CALLBRIDGE_PORT": str(port),
        "CALLBRIDGE_ACS_JWKS_URL": f"http://127.0.0.1:{emu_port}/calling/keys",
        "CALLBRIDGE_ACS_JWT_ISSUER": emu.issuer,
        "CALLBRIDGE_ACS_JWT_AUDIENCE": emu.audience,
        "CALLBRIDGE_LOG_LEVEL": "WARNING",
        "CALLBRIDGE_AGENT": agent,
        "CALLBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{scratch / 'calls.db'}",
        "CALLBRIDGE_RECORDINGS_DIR": str(scratch / "recordings"),
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "callbridge.cli", "serve"]
    if os.environ.get("BENCH_PROFILE"):  # py-spy the service: BENCH_PROFILE=out.txt
        cmd = ["py-spy", "record", "-o", os.environ["BENCH_PROFILE"], "-f", "raw", "--", *cmd]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=full_env, cwd=cwd)  # noqa: ASYNC220 - once, at start
    svc: ServiceProcess | None = None
    try:
        await emu.start()
        ready_s = await _wait_healthy(url, proc, started, start_timeout_s)
        svc = ServiceProcess(url, proc, emu, ready_s, cmd, full_env, cwd)
        yield svc
    finally:
        await emu.stop()
        proc = svc.proc if svc is not None else proc
        proc.send_signal(signal.SIGINT)  # SIGINT lets py-spy write its profile
        proc.wait(30)


async def _wait_healthy(
    url: str, proc: subprocess.Popen[bytes], started: float, timeout_s: float
) -> float:
    async with httpx.AsyncClient() as client:
        while time.monotonic() - started < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError("the service exited at start; run it by hand to see why")
            try:
                if (await client.get(url + "/healthz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the service did not come up within {timeout_s:g} s")
