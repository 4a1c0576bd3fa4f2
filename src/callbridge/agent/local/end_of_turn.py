"""Deciding whether the caller has finished their turn, a moment after they go quiet.

`SmartEndOfTurn` asks Smart Turn v3 (`turn_model`) in its own one-thread executor and adds a
cheap check on the words: a transcript that stops on a word that cannot end a sentence
("my order number is", "and", "um") is not a finished turn whatever the audio says. A
caller who has not finished gets up to ``max_silence_ms`` to go on (the segmenter's end).

Tests inject a fake (`EndOfTurnModel` is the protocol the agent needs).
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Final, Protocol

from callbridge.agent.local.turn_model import SmartTurnModel


class EndOfTurnModel(Protocol):
    async def probability(self, pcm16k: bytes) -> float:
        """How likely the turn ending with this audio (16 kHz PCM) is complete, 0..1."""


class SmartEndOfTurn:
    """Smart Turn in its own executor (never queued behind STT or TTS)."""

    def __init__(self, model: SmartTurnModel, executor: Executor) -> None:
        self._model = model
        self._executor = executor

    async def probability(self, pcm16k: bytes) -> float:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._model.probability, pcm16k)


def shared_end_of_turn() -> SmartEndOfTurn | None:
    """The process's Smart Turn model, or None when it is not installed."""
    from callbridge.agent.local.models import get_turn_model, turn_executor

    model = get_turn_model()
    return None if model is None else SmartEndOfTurn(model, turn_executor())


@dataclass(frozen=True, slots=True)
class Decision:
    complete: bool
    probability: float
    ms: float


async def decide(model: EndOfTurnModel, pcm16k: bytes, threshold: float) -> Decision:
    started = time.perf_counter()
    p = await model.probability(pcm16k)
    return Decision(p >= threshold, p, (time.perf_counter() - started) * 1000)


# Words a finished sentence does not end on (a caller stopping here is thinking or reading):
# articles, conjunctions, prepositions, possessives, fillers, auxiliaries, and verbs of a
# request that need what comes next ("can you recommend…", "I'd like to book…").
_DANGLING: Final = frozenset(
    """a an the and or but so because if then my your our his her their its is are was
    were am be to of for from with at in on by about as than that which who whose um uh
    er erm like number do does did can could would will should shall may might must
    recommend tell check book find give reserve""".split()
)
_AUXILIARY: Final = frozenset("do does did can could would will should are is was".split())
_PRONOUN: Final = frozenset("you i we they he she it".split())
_TELLING: Final = frozenset("tell give show send get find book".split())
# Things known by a number: bare after a verb or a preposition ("could you check order …",
# "the status of booking …") the number is still to come; after "my" or "an" they are whole
# ("where is my order").
_NUMBERED: Final = frozenset(
    "order account reference booking reservation ticket invoice confirmation policy case".split()
)
_BEFORE_NUMBER: Final = frozenset(
    "check track find cancel change update confirm chase on for of".split()
)
_WORD = re.compile(r"[a-z']+|\d+")


def dangles(text: str) -> bool:
    """Do the words stop where no finished turn stops? ("…number is", "what time do you",
    "can you tell me", "check order") Whisper's punctuation is no help: it writes "What
    time do you?"."""
    words = _WORD.findall(text.lower())
    if not words:
        return False
    last, before = words[-1], words[-2] if len(words) > 1 else ""
    return (
        last in _DANGLING
        or (before in _AUXILIARY and last in _PRONOUN)
        or (before in _TELLING and last in ("me", "us"))
        or (before in _BEFORE_NUMBER and last in _NUMBERED)
    )
