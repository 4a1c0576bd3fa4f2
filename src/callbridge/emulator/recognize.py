"""``:recognize`` — collecting the caller's DTMF (see docs/emulator.md for the results).

The call's 20 ms clock drives it: each tone the caller presses (``LiveCaller.press``,
``CallScript.dtmf``) goes to :meth:`Recognizer.on_tone`, and every tick checks the
timeouts in :meth:`Recognizer.on_tick`, all on the media timeline. Prompts are not
played (no audio): the timers start when the request arrives.

Outcomes (``dtmf`` and the DTMF part of ``speechOrDtmf``):

* a stop tone             → RecognizeCompleted 200/8514, tones include the stop tone;
* ``maxTonesToCollect``   → RecognizeCompleted 200/8531;
* inter-tone timeout      → RecognizeCompleted 200/8532 (after at least one tone);
* no tone at all within ``initialSilenceTimeoutInSeconds`` → RecognizeFailed 400/8510.

``choices``: a tone matching a choice's ``tone`` → RecognizeCompleted 200/8533 with
``choiceResult.label``; another tone → RecognizeFailed 400/8534. ``speech`` (and speech
in ``choices``) is never recognized: RecognizeFailed 400/8510 after the initial silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import events as ev
from .report import RecognizeRecord

INPUT_TYPES = ("dtmf", "speech", "speechOrDtmf", "choices")
DEFAULT_INITIAL_SILENCE_S = 5.0  # docs: 5 s (0-300)
DEFAULT_INTER_TONE_S = 2.0  # docs: 2 s (1-60)


@dataclass(frozen=True)
class RecognizeSettings:
    input_type: str
    max_tones: int
    stop_tones: frozenset[str]
    inter_tone_s: float
    initial_silence_s: float
    choices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RecognizeOutcome:
    event: str  # "RecognizeCompleted" | "RecognizeFailed"
    result: ev.ResultInfo
    extra: dict[str, Any]


def _number(options: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = options.get(name)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}, not {value!r}.")
    return float(value)


def parse_recognize(body: dict[str, Any]) -> RecognizeSettings:
    """Validate a RecognizeRequest; ValueError with the message for a 400."""
    input_type = body.get("recognizeInputType")
    if input_type not in INPUT_TYPES:
        raise ValueError(f"recognizeInputType must be one of {', '.join(INPUT_TYPES)}.")
    options = body.get("recognizeOptions")
    if not isinstance(options, dict):
        raise ValueError("The recognizeOptions field is required.")
    if not isinstance(options.get("targetParticipant"), dict):
        raise ValueError("recognizeOptions.targetParticipant is required.")
    initial = _number(options, "initialSilenceTimeoutInSeconds", DEFAULT_INITIAL_SILENCE_S, 0, 300)
    dtmf = options.get("dtmfOptions") or {}
    if not isinstance(dtmf, dict):
        raise ValueError("recognizeOptions.dtmfOptions must be an object.")
    inter = _number(dtmf, "interToneTimeoutInSeconds", DEFAULT_INTER_TONE_S, 1, 60)
    max_tones = dtmf.get("maxTonesToCollect")
    if max_tones is None:
        if input_type == "dtmf":  # docs: required for DTMF ("No default, Min: 1")
            raise ValueError("dtmfOptions.maxTonesToCollect is required for DTMF recognition.")
        max_tones = 1
    if not isinstance(max_tones, int) or isinstance(max_tones, bool) or max_tones < 1:
        raise ValueError(f"maxTonesToCollect must be an integer >= 1, not {max_tones!r}.")
    stop = dtmf.get("stopTones") or []
    if not isinstance(stop, list) or any(t not in ev.TONE_NAMES for t in stop):
        raise ValueError(f"stopTones must be tone names ({', '.join(sorted(ev.TONE_NAMES))}).")
    choices = options.get("choices") or []
    if input_type == "choices":
        if not isinstance(choices, list) or not choices:
            raise ValueError("recognizeOptions.choices is required for choices recognition.")
        for choice in choices:
            if not isinstance(choice, dict) or not choice.get("label"):
                raise ValueError("every choice needs a label.")
    return RecognizeSettings(
        input_type=str(input_type),
        max_tones=max_tones,
        stop_tones=frozenset(str(t) for t in stop),
        inter_tone_s=inter,
        initial_silence_s=initial,
        choices=list(choices) if isinstance(choices, list) else [],
    )


class Recognizer:
    """One running recognize operation (at most one per call)."""

    def __init__(
        self,
        settings: RecognizeSettings,
        record: RecognizeRecord,
        operation_context: str | None,
        url: str | None,
    ) -> None:
        self.settings = settings
        self.record = record
        self.operation_context = operation_context
        self.url = url
        self._last_tone_s: float | None = None

    @property
    def tones(self) -> list[str]:
        return self.record.tones

    def on_tone(self, tone: str, now_s: float) -> RecognizeOutcome | None:
        s = self.settings
        if s.input_type == "speech":
            return None
        if s.input_type == "choices":
            self.tones.append(tone)
            for choice in s.choices:
                if choice.get("tone") == tone:
                    return RecognizeOutcome(
                        "RecognizeCompleted",
                        ev.RECOGNIZE_TONE_MATCHED,
                        {
                            "recognitionType": "choices",
                            "choiceResult": {"label": choice["label"]},
                        },
                    )
            return RecognizeOutcome("RecognizeFailed", ev.RECOGNIZE_WRONG_TONE, {})
        self.tones.append(tone)
        self._last_tone_s = now_s
        if tone in s.stop_tones:
            return self._completed(ev.RECOGNIZE_STOP_TONE)
        if len(self.tones) >= s.max_tones:
            return self._completed(ev.RECOGNIZE_MAX_TONES)
        return None

    def on_tick(self, now_s: float) -> RecognizeOutcome | None:
        s = self.settings
        eps = 1e-6
        if self._last_tone_s is None:
            if now_s - self.record.started_s >= s.initial_silence_s - eps:
                return RecognizeOutcome("RecognizeFailed", ev.RECOGNIZE_SILENCE, {})
        elif now_s - self._last_tone_s >= s.inter_tone_s - eps:
            return self._completed(ev.RECOGNIZE_INTER_TONE)
        return None

    def _completed(self, result: ev.ResultInfo) -> RecognizeOutcome:
        return RecognizeOutcome(
            "RecognizeCompleted",
            result,
            {"recognitionType": "dtmf", "dtmfResult": {"tones": list(self.tones)}},
        )
