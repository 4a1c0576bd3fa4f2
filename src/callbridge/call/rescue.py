"""When the agent fails or stalls, the service speaks for it: no dead air, and a record
that says what failed.

The caller hears the line's apology in the line's own voice (synthesised at start, so a
stuck voice or model cannot hold it up). A stalled reply is first answered with a request
to repeat (a slow model gets another chance); a second stall in a row, or an agent that
fails outright, gets the line's fallback: a transfer to a person or goodbye and hang-up.
The call's end reason is `agent failed: …`, its outcome `failed` (or `transferred`).
Table: docs/architecture.md, "When the agent fails or stalls".
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from callbridge.call.line import Line
from callbridge.core.ending import EndCause, EndReason

if TYPE_CHECKING:
    from callbridge.call.session import CallSession

log = logging.getLogger(__name__)

# Speech the service cannot have within this long is skipped: the fallback goes on.
SPEAK_WITHIN_S = 1.5


class Rescuer:
    def __init__(self, session: CallSession) -> None:
        self._s = session
        self._stalls = 0
        self._rate = 0

    def start(self, rate: int) -> None:
        self._rate = rate  # the media leg's: the service's words go straight to playout

    def replied(self) -> None:
        """The agent spoke: stalls are counted in a row."""
        self._stalls = 0

    async def stalled(self, why: str) -> None:
        s = self._s
        rescue = s.line.rescue
        if s.ended or s.handing_on:
            return
        self._stalls += 1
        bound = rescue.reply_timeout_s or 0.0
        log.error("the agent did not start %s within %g s", why, bound)
        s.note_event("agent_stalled", waiting_for=why, after_s=bound, stalls=self._stalls)
        if self._stalls <= rescue.retries:
            await self._say(f"{rescue.apology} {rescue.retry_prompt}")
            return
        await self._give_up(f"agent failed: no reply within {bound:g} s ({why})")

    async def failed(self, reason: str) -> None:
        """The agent says it failed (or its session ended): apologise, then the fallback."""
        s = self._s
        if s.ended or s.handing_on:
            return
        log.error("agent failed: %s", reason)
        s.note_event("agent_failed", reason=reason)
        await self._give_up(f"agent failed: {reason}")

    async def _give_up(self, text: str) -> None:
        s = self._s
        rescue = s.line.rescue
        s.muted = True  # late words of the failed agent must not talk over the service
        if rescue.mode == "transfer" and rescue.transfer_target:
            await self._say(rescue.apology)
            await s.handoff.transfer(rescue.transfer_target, text)
            return
        await self._say(f"{rescue.apology} {rescue.goodbye}")
        s.handing_on = True
        reason = EndReason(EndCause.AGENT_FAILED, text)
        await s.watchers.after_speech(lambda: s.end(reason, hang_up=True))

    async def shut_down(self) -> None:
        """The service is stopping: tell the caller, then hang up once it has been heard."""
        s = self._s
        if s.ended:
            return
        s.note_event("shutdown")
        s.muted = s.handing_on = True
        await self._say(s.line.rescue.shutdown)
        reason = EndReason(EndCause.SHUTDOWN, "ended by shutdown")
        await s.watchers.after_speech(lambda: s.end(reason, hang_up=True))

    async def _say(self, text: str) -> None:
        """Speak `text` in the line's voice (from memory: the switchboard synthesises the
        service's phrases at start); skipped if the voice cannot deliver it in time."""
        speak = self._s.line.speak
        if speak is None or not self._rate:
            return
        try:
            pcm = await asyncio.wait_for(speak(text, self._rate), SPEAK_WITHIN_S)
        except Exception as exc:
            log.error("could not say %r: %s", text[:40], type(exc).__name__)
            return
        self._s.say(pcm)


def service_phrases(line: Line) -> list[str]:
    """Everything `Rescuer` may say on `line` (for the switchboard to synthesise ahead)."""
    r = line.rescue
    return [f"{r.apology} {r.retry_prompt}", f"{r.apology} {r.goodbye}", r.apology, r.shutdown]
