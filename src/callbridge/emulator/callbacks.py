"""Ordered delivery of mid-call callback events to the service.

One sender task per call drains a queue, so the events of a call reach the service one
at a time and in order (the real ACS does not promise that, but a deterministic order
makes emulator runs reproducible). Each POST gets its own fresh 5-minute JWT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp

from .jwt_issuer import JwtIssuer
from .report import CallbackRecord

log = logging.getLogger("callbridge.emulator")
DELIVERY_TIMEOUT_S = 10.0
_PREFIX = "Microsoft.Communication."


class CallbackSender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        issuer: JwtIssuer,
        records: list[CallbackRecord],
        t0: float,
    ) -> None:
        self._session = session
        self._issuer = issuer
        self._records = records
        self._t0 = t0
        # (url, event, loop time before which it must not be sent)
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], float] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def send(self, url: str, event: dict[str, Any], delay_s: float = 0.0) -> None:
        """Queue one CloudEvent for ``url`` (query string kept exactly as given).

        ``delay_s`` holds it back that long (e.g. so the REST response that caused it
        reaches the service first); events behind it wait too, so order is kept.
        """
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="acs-emulator-callbacks")
        not_before = asyncio.get_running_loop().time() + delay_s if delay_s > 0 else 0.0
        self._queue.put_nowait((url, event, not_before))

    async def drain(self, limit_s: float = DELIVERY_TIMEOUT_S + 1) -> None:
        """Wait until every queued event was delivered (or failed), then stop the task."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), limit_s)
        except TimeoutError:
            log.warning("callback delivery still busy after %.1fs; abandoning", limit_s)
            await self.close()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            url, event, not_before = item
            wait = not_before - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._deliver(url, event)

    async def _deliver(self, url: str, event: dict[str, Any]) -> None:
        name = str(event.get("type", "")).removeprefix(_PREFIX)
        record = CallbackRecord(name, None, round(time.monotonic() - self._t0, 3), url)
        self._records.append(record)
        headers = {
            "Authorization": f"Bearer {self._issuer.callback_token()}",
            "Content-Type": "application/json",
        }
        body = json.dumps([event])  # always a JSON array of CloudEvents
        try:
            async with self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S),
            ) as resp:
                record.status = resp.status
                await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            log.warning("callback %s to %s failed: %s", name, url, record.error)
