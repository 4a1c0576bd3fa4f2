"""One of callbridge's own modules run in a fresh interpreter (`python -m`): work whose
imports (models, Alembic) should not stay in a serving process's memory
(docs/architecture.md, "Memory"). The callers own the timeout and what a stop does to the
child, since those differ (a schema upgrade is let finish; a phrase maker is killed)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping


async def start_module(
    module: str, *, stdin: bool = False, env: Mapping[str, str] | None = None
) -> asyncio.subprocess.Process:
    """`python -m module` with this interpreter: its output discarded, its errors piped
    (for `failure`), its stdin piped only if asked for."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=None if env is None else dict(env),
    )


def failure(stderr: bytes, returncode: int | None) -> str:
    """Why a child failed: the last line it wrote to stderr (a traceback's last line is the
    error), else its exit status."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exited {returncode}"
