"""The call's timed behaviour: no media, idle media, a silent caller, the maximum duration,
and waiting for the agent's last words before a hand-over.

Every wait runs on the session's `Clock`, so tests drive them on a fake clock in
milliseconds (tests/unit/test_call_timing.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from callbridge.core.clock import Clock
from callbridge.core.ending import EndCause, EndReason
from callbridge.core.policy import CallPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallLimits:
    media_connect_timeout_s: float = 15.0
    idle_timeout_s: float = 30.0
    max_duration_s: float = 3600.0
    chunk_ms: int = 20
    lead_ms: int = 60
    max_lead_ms: int = 400  # the adaptive lead's ceiling (audio/playout.py)
    disconnect_grace_s: float = 2.0
    # A media socket that breaks mid-call may be reopened by ACS: the call waits this long
    # for the new one (0: the call ends with the socket, after disconnect_grace_s).
    media_reconnect_s: float = 5.0
    # After end_call or a transfer, the agent's last words are let finish: the agent must
    # have been quiet this long (reply done, audio played) before the call is handed on.
    settle_s: float = 0.8
    settle_max_s: float = 20.0


class Watched(Protocol):
    """What the watchers read of the call, and what they may do to it."""

    @property
    def policy(self) -> CallPolicy: ...

    media_attached: bool
    handing_on: bool
    last_caller_activity: float  # speech or a key, on the session clock
    last_input: float  # any media from the caller

    def agent_speaking(self) -> bool: ...

    async def notify(self, notice: str, detail: dict[str, Any]) -> None: ...

    async def end(self, reason: EndReason, *, hang_up: bool) -> None: ...

    def note_event(self, name: str, **detail: Any) -> None: ...


class Watchers:
    def __init__(self, call: Watched, clock: Clock, limits: CallLimits) -> None:
        self._call = call
        self._clock = clock
        self._limits = limits

    async def media_connect(self) -> None:
        await self._clock.sleep(self._limits.media_connect_timeout_s)
        if not self._call.media_attached:
            await self._call.end(EndReason(EndCause.NO_MEDIA, "no media connection"), hang_up=True)

    async def max_duration(self) -> None:
        call, limit = self._call, self._limits.max_duration_s
        notice = min(call.policy.limit_notice_before_s, limit)
        await self._clock.sleep(limit - notice)
        if notice > 0:
            await call.notify("ending_soon", {"seconds_left": round(notice)})
            await self._clock.sleep(notice)
        await call.notify("limit_goodbye", {})
        call.handing_on = True
        reason = EndReason(EndCause.MAX_DURATION, "maximum call duration reached")
        await self.after_speech(lambda: call.end(reason, hang_up=True))

    async def idle(self) -> None:
        limit = self._limits.idle_timeout_s
        while True:
            await self._clock.sleep(min(1.0, limit / 4))
            if self._clock.now() - self._call.last_input > limit:
                text = f"no media from the caller for {limit:g} s"
                await self._call.end(EndReason(EndCause.IDLE, text), hang_up=True)
                return

    async def silence(self) -> None:
        """Reprompt a silent caller, then say goodbye and hang up (profile settings):
        `reprompt_after_s` of quiet gets a reprompt; once reprompted, the call ends when the
        caller has stayed silent for `hangup_after_s` in all."""
        call, clock = self._call, self._clock
        reprompt_after = call.policy.silence_reprompt_after_s or 0.0
        hangup_after = call.policy.silence_hangup_after_s
        quiet_since = clock.now()
        silent_since = quiet_since  # quiet since the last caller activity or agent reply
        reprompts = 0
        seen_activity = call.last_caller_activity
        while True:
            await clock.sleep(0.25)
            now = clock.now()
            if call.last_caller_activity != seen_activity:
                seen_activity = call.last_caller_activity
                reprompts = 0
            if call.agent_speaking() or call.handing_on:
                quiet_since = now
                if reprompts == 0:
                    silent_since = now
                continue
            quiet = now - max(quiet_since, call.last_caller_activity)
            silent = now - max(silent_since, call.last_caller_activity)
            if hangup_after is not None and reprompts and silent >= hangup_after:
                log.info("caller silent for %.0f s: ending the call", silent)
                await call.notify("silence_goodbye", {})
                call.handing_on = True
                silent_end = EndReason(EndCause.CALLER_SILENT, "caller silent")
                await self.after_speech(partial(call.end, silent_end, hang_up=True))
                return
            room = hangup_after is None or silent + reprompt_after <= hangup_after
            if quiet >= reprompt_after and (room or not reprompts):
                reprompts += 1
                quiet_since = now
                call.note_event("caller_silent", seconds=round(silent))
                await call.notify("caller_silent", {"seconds": round(silent)})

    async def after_speech(self, then: Callable[[], Awaitable[None]]) -> None:
        """Run `then` once the agent has been quiet for `settle_s` (at most `settle_max_s`)."""
        clock = self._clock
        deadline = clock.now() + self._limits.settle_max_s
        quiet_since: float | None = None
        while clock.now() < deadline:
            now = clock.now()
            if self._call.agent_speaking():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= self._limits.settle_s:
                break
            await clock.sleep(0.05)
        await then()

    async def grace(self, event: Awaitable[Any]) -> None:
        """Wait up to `disconnect_grace_s` for `event` (a CallDisconnected that follows a
        closed media socket), so a call that is already over is not hung up again."""
        try:
            await self._clock.wait_for(event, self._limits.disconnect_grace_s)
        except TimeoutError:
            pass
