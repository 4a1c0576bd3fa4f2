"""Caller sentiment with VADER (vaderSentiment: a lexicon, offline, no model download).

The score is the caller's: the agent is polite by construction, so its words would pull
every call towards positive. Later caller turns weigh more, because how the caller sounds
at the end says more about the call than the complaint they opened with.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

# vaderSentiment has no type hints.
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

POSITIVE = 0.05  # VADER's own thresholds on the compound score
NEGATIVE = -0.05


@dataclass(frozen=True, slots=True)
class Sentiment:
    compound: float  # -1 .. 1
    label: str  # positive | neutral | negative


class _Analyzer(Protocol):
    def polarity_scores(self, text: str) -> dict[str, float]: ...


_analyzer: _Analyzer | None = None
_lock = threading.Lock()


def _vader() -> _Analyzer:
    # Loading the lexicon takes ~50 ms: once per process, in whichever worker asks first.
    global _analyzer
    with _lock:
        if _analyzer is None:
            _analyzer = cast(_Analyzer, SentimentIntensityAnalyzer())
        return _analyzer


def label_for(compound: float) -> str:
    if compound >= POSITIVE:
        return "positive"
    if compound <= NEGATIVE:
        return "negative"
    return "neutral"


def text_sentiment(text: str) -> Sentiment:
    compound = float(_vader().polarity_scores(text)["compound"])
    return Sentiment(round(compound, 4), label_for(compound))


def call_sentiment(turns: Sequence[tuple[str, str]]) -> Sentiment:
    """The caller's sentiment over `turns` ((role, text), in order); neutral if silent."""
    said = [text for role, text in turns if role == "caller" and text.strip()]
    if not said:
        return Sentiment(0.0, "neutral")
    vader = _vader()
    scores = [float(vader.polarity_scores(text)["compound"]) for text in said]
    weights = range(1, len(scores) + 1)  # turn n weighs n
    compound = sum(w * s for w, s in zip(weights, scores, strict=True)) / sum(weights)
    return Sentiment(round(compound, 4), label_for(compound))
