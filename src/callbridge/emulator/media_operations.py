"""Mid-call media actions on one call: ``:play``, ``:recognize``,
``:cancelAllMediaOperations`` and continuous DTMF recognition.

No audio is played: a play completes after :data:`PLAY_S`, and a recognize collects the
caller's key presses (``LiveCaller.press``, ``CallScript.dtmf``) as the call's clock
fires them. Public references:
https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/control-mid-call-media-actions
and https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/recognize-action
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import events as ev
from .events import DTMF_NAMES
from .playout import FRAME_S
from .recognize import RecognizeOutcome, Recognizer, RecognizeSettings
from .report import RecognizeRecord

if TYPE_CHECKING:
    from .call import EmulatedCall

PLAY_S = 0.1  # a play's "duration": PlayCompleted this long after the 202 (no audio)


class MediaBusyError(Exception):
    """A recognize is already running and the new one does not interrupt it."""


@dataclass
class PendingPlay:
    operation_context: str | None
    url: str | None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class MediaOperations:
    """The plays and the recognize running on a call, and continuous DTMF recognition."""

    def __init__(self, call: EmulatedCall) -> None:
        self.call = call
        self.plays: list[PendingPlay] = []
        self.recognizer: Recognizer | None = None
        self.continuous_dtmf = False
        self.continuous_dtmf_context: str | None = None
        self.dtmf_sequence = 0

    # ---------------------------------------------------------------- plays

    def play(self, operation_context: str | None, url: str | None) -> None:
        """``:play`` — no audio is played; PlayCompleted after PLAY_S unless cancelled."""
        play = PendingPlay(operation_context, url)
        self.plays.append(play)
        play.task = self.call.spawn(self._play(play))

    async def _play(self, play: PendingPlay) -> None:
        await asyncio.sleep(PLAY_S)
        self.plays.remove(play)
        if self.call.active:
            self.call.send_event(
                "PlayCompleted",
                operation_context=play.operation_context,
                result=ev.OK,
                url=play.url,
            )

    # ------------------------------------------------------------ recognize

    def recognize(
        self,
        settings: RecognizeSettings,
        body: dict[str, Any],
        operation_context: str | None,
        url: str | None,
    ) -> None:
        """``:recognize``; MediaBusyError if one runs and this one doesn't interrupt it."""
        if self.recognizer is not None:
            if not body.get("interruptCallMediaOperation"):
                raise MediaBusyError
            self._recognize_canceled()
        options = body.get("recognizeOptions")
        record = RecognizeRecord(
            input_type=settings.input_type,
            options=copy.deepcopy(options) if isinstance(options, dict) else {},
            started_s=round(self.call.tick * FRAME_S, 3),
            operation_context=operation_context,
        )
        self.call.report.recognitions.append(record)
        self.recognizer = Recognizer(settings, record, operation_context, url)

    def cancel_all(self) -> None:
        """``:cancelAllMediaOperations`` — PlayCanceled / RecognizeCanceled for what runs."""
        plays, self.plays = self.plays, []
        for play in plays:
            if play.task is not None:
                play.task.cancel()
            self.call.send_event(
                "PlayCanceled", operation_context=play.operation_context, url=play.url
            )
        self._recognize_canceled()

    def _recognize_canceled(self) -> None:
        rz = self.recognizer
        if rz is None:
            return
        self.drop_recognizer("RecognizeCanceled")
        # RecognizeCanceled carries no extra fields (no resultInformation either, as in
        # the SDK's test fixture).
        self.call.send_event(
            "RecognizeCanceled", operation_context=rz.operation_context, url=rz.url
        )

    def drop_recognizer(self, outcome: str) -> None:
        """The running recognize is over (``outcome`` goes into its report record)."""
        rz, self.recognizer = self.recognizer, None
        if rz is not None:
            rz.record.outcome = outcome
            rz.record.ended_s = round(self.call.tick * FRAME_S, 3)

    def tick(self, now_s: float) -> None:
        """Each clock tick: the running recognize's timers."""
        rz = self.recognizer
        if rz is not None and self.call.active:
            self._recognize_result(rz, rz.on_tick(now_s))

    def _recognize_result(self, rz: Recognizer, outcome: RecognizeOutcome | None) -> None:
        if outcome is None:
            return
        self.drop_recognizer(outcome.event)
        rz.record.sub_code = outcome.result.sub_code
        self.call.send_event(
            outcome.event,
            operation_context=rz.operation_context,
            result=outcome.result,
            extra=outcome.extra,
            url=rz.url,
        )

    # ------------------------------------------------------------------ DTMF

    def tone(self, now_s: float, digit: str) -> None:
        """The clock fired a caller DTMF tone: a running recognize collects it, and
        continuous DTMF recognition reports it."""
        call = self.call
        rz = self.recognizer
        if rz is not None and call.active:
            self._recognize_result(rz, rz.on_tone(DTMF_NAMES.get(digit, digit), now_s))
        if self.continuous_dtmf and call.active:  # not after the service has left the call
            # ContinuousDtmfRecognitionToneReceived names tones ("eight", "pound").
            self.dtmf_sequence += 1
            call.send_event(
                "ContinuousDtmfRecognitionToneReceived",
                operation_context=self.continuous_dtmf_context,
                result=ev.ResultInfo(200, 0, "DTMF tone received successfully."),
                extra={"sequenceId": self.dtmf_sequence, "tone": DTMF_NAMES.get(digit, digit)},
            )

    def start_continuous_dtmf(self, operation_context: str | None) -> None:
        self.continuous_dtmf, self.continuous_dtmf_context = True, operation_context

    def stop_continuous_dtmf(self, operation_context: str | None, url: str | None) -> None:
        self.continuous_dtmf = False
        self.call.send_event(
            "ContinuousDtmfRecognitionStopped",
            operation_context=operation_context,
            result=ev.OK,
            url=url,
        )
