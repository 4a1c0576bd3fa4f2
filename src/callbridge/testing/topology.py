"""Several `callbridge serve` replicas behind HAProxy, with Redis and one records database,
wired to an ACS emulator in this process as a deployment is wired to Azure (the
multi-replica tests and bench/scale_out.py use it; docs/scale-out.md).

Every replica has the balancer's URL as its public URL, so Event Grid deliveries, callbacks
and media sockets all go through HAProxy (round robin, health-checked on `/readyz`,
WebSockets passed through) and land on any replica. HAProxy is Debian's package (the
Makefile installs it).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from callbridge.emulator import AcsEmulator
from callbridge.testing.service_process import free_port

HAPROXY_CFG = """\
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    retries 2
    option redispatch
frontend callbridge
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1
{servers}
"""


NO_HAPROXY = "HAProxy is not installed (Debian: apt-get install haproxy)"


@dataclass
class Replica:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Topology:
    url: str  # the balancer: what ACS and Event Grid see
    emulator: AcsEmulator
    replicas: list[Replica]
    env: dict[str, str]
    cwd: Path | None
    haproxy: subprocess.Popen[bytes] | None = None
    killed: list[str] = field(default_factory=list)

    async def owners(self) -> dict[str, str]:
        """Call connection id -> the replica holding the call, from the shared directory."""
        import redis.asyncio as aioredis

        prefix = self.env["CALLBRIDGE_REDIS_PREFIX"]
        client = aioredis.Redis.from_url(self.env["CALLBRIDGE_REDIS_URL"], decode_responses=True)
        try:
            out: dict[str, str] = {}
            ids: set[Any] = await client.smembers(f"{prefix}calls")
            for call_id in ids:
                entry: dict[Any, Any] = await client.hgetall(f"{prefix}call:{call_id!s}")
                if entry.get("connection"):
                    out[str(entry["connection"])] = str(entry.get("owner", ""))
            return out
        finally:
            await client.aclose()

    def kill(self, name: str) -> None:
        """SIGKILL one replica: a crash, nothing of it runs."""
        replica = next(r for r in self.replicas if r.name == name)
        replica.proc.kill()
        replica.proc.wait()
        self.killed.append(name)

    async def restart(self, name: str, timeout_s: float = 60.0) -> None:
        """Start a (killed or stopped) replica again with the same settings."""
        replica = next(r for r in self.replicas if r.name == name)
        replica.proc = _start_replica(self.env, replica.name, replica.port, self.cwd)
        await _wait_ready(replica, timeout_s)

    async def stop(self, name: str, timeout_s: float = 60.0) -> float:
        """SIGTERM one replica (a deploy's stop) and wait for it to exit; seconds taken."""
        replica = next(r for r in self.replicas if r.name == name)
        started = time.monotonic()
        replica.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(replica.proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            _dump_stacks(replica)  # what it was stuck on, when py-spy is at hand
            raise
        return time.monotonic() - started


def _dump_stacks(replica: Replica) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if os.path.exists(spy):
        subprocess.run([spy, "dump", "--pid", str(replica.proc.pid)], check=False, timeout=30)


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
    )


def _start_replica(
    env: dict[str, str], name: str, port: int, cwd: Path | None
) -> subprocess.Popen[bytes]:
    full = {**env, "CALLBRIDGE_PORT": str(port), "CALLBRIDGE_REPLICA_ID": name}
    cmd = [sys.executable, "-m", "callbridge.cli", "serve"]
    return subprocess.Popen(cmd, env=full, cwd=cwd)


async def _wait_ready(replica: Replica, timeout_s: float) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient() as client:
        while time.monotonic() - started < timeout_s:
            if replica.proc.poll() is not None:
                raise RuntimeError(f"replica {replica.name} exited at start")
            try:
                if (await client.get(replica.url + "/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"replica {replica.name} not ready within {timeout_s:g} s")


@asynccontextmanager
async def topology(
    count: int,
    agent: str,
    env: dict[str, str] | None = None,
    *,
    redis_url: str | None = "redis://127.0.0.1:6379/0",
    cwd: Path | None = None,
    start_timeout_s: float = 60.0,
) -> AsyncIterator[Topology]:
    """`count` replicas of `callbridge serve` with `agent`, HAProxy in front, sharing
    `redis_url` (under a key prefix of their own; None: no Redis, for one replica) and a
    SQLite records file (or `CALLBRIDGE_DATABASE_URL` in `env`)."""
    if haproxy_binary() is None:  # before any replica starts
        raise RuntimeError(NO_HAPROXY)
    scratch = Path(tempfile.mkdtemp(prefix="callbridge-topology-"))
    lb_port, emu_port = free_port(), free_port()
    lb_url = f"http://127.0.0.1:{lb_port}"
    key = AcsEmulator.generate_access_key()
    secret = secrets.token_urlsafe(24)
    emu = AcsEmulator(f"{lb_url}/acs/incoming?key={secret}", key, port=emu_port)
    shared_env = {
        **os.environ,
        "CALLBRIDGE_ACS_CONNECTION": f"endpoint=http://127.0.0.1:{emu_port}/;accesskey={key}",
        "CALLBRIDGE_PUBLIC_URL": lb_url,
        "CALLBRIDGE_EVENTGRID_SECRET": secret,
        "CALLBRIDGE_SIGNING_KEY": secrets.token_urlsafe(32),
        **(
            {
                "CALLBRIDGE_REDIS_URL": redis_url,
                "CALLBRIDGE_REDIS_PREFIX": f"cbtopo:{secrets.token_hex(5)}:",
            }
            if redis_url
            else {}
        ),
        "CALLBRIDGE_ACS_JWKS_URL": f"http://127.0.0.1:{emu_port}/calling/keys",
        "CALLBRIDGE_ACS_JWT_ISSUER": emu.issuer,
        "CALLBRIDGE_ACS_JWT_AUDIENCE": emu.audience,
        "CALLBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{scratch / 'calls.db'}",
        "CALLBRIDGE_RECORDINGS_DIR": str(scratch / "recordings"),
        "CALLBRIDGE_LOG_LEVEL": "WARNING",
        "CALLBRIDGE_AGENT": agent,
        **(env or {}),
    }
    replicas = [
        Replica(f"r{i}", port, _start_replica(shared_env, f"r{i}", port, cwd))
        for i, port in enumerate(free_port() for _ in range(count))
    ]
    topo = Topology(lb_url, emu, replicas, shared_env, cwd)
    try:
        await emu.start()
        await asyncio.gather(*(_wait_ready(r, start_timeout_s) for r in replicas))
        async with balancer(lb_port, [(r.name, r.port) for r in replicas]) as topo.haproxy:
            yield topo
    finally:
        for r in replicas:  # first: their calls end through the emulator
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
        for r in replicas:
            try:
                await asyncio.to_thread(r.proc.wait, 30)
            except subprocess.TimeoutExpired:
                r.proc.kill()
        await emu.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@asynccontextmanager
async def balancer(
    port: int, servers: list[tuple[str, int]]
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """HAProxy on 127.0.0.1:`port` in front of `servers` (name, port), health-checked on
    `/readyz`; once it answers. Raises RuntimeError when HAProxy is not installed."""
    haproxy = haproxy_binary()
    if haproxy is None:
        raise RuntimeError(NO_HAPROXY)
    scratch = Path(tempfile.mkdtemp(prefix="callbridge-haproxy-"))
    listed = "\n".join(f"    server {name} 127.0.0.1:{p} check" for name, p in servers)
    cfg = scratch / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(port=port, servers=listed))
    proc = subprocess.Popen([haproxy, "-f", str(cfg), "-db", "-q"])  # noqa: ASYNC220
    try:
        await _wait_balancer(f"http://127.0.0.1:{port}", proc)
        yield proc
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
        shutil.rmtree(scratch, ignore_errors=True)


async def _wait_balancer(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError("HAProxy exited at start")
            try:
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("HAProxy did not come up")
