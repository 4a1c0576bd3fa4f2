"""Which intent a transcript means: weighted, fuzzy word overlap with example phrases.

Each example is a bag of stemmed words plus `{slot}` placeholders. A word weighs less when
it is a function word or appears in the examples of many intents, so "order" decides more
than "my". A placeholder counts as matched when the transcript holds a value for that slot
("what about {restaurant}" + "the second one"). Score = mostly how much of the example was
said (recall), partly how much of what was said the example explains (precision), so long
rambling turns still match a short example. Words the examples never use are snapped to the
closest vocabulary word once (difflib), then every score is set arithmetic: well under a
millisecond for a profile of a few dozen examples.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from callbridge.agent.local.brain.text import stem, tokens

FUNCTION_WORDS = frozenset(
    """a an the is are am was be been i me my mine you your we us our it its to of for in on
    at and or but please can could would will do does did have has had this that these those
    what which who how there here with about like want wanted need just so some any get
    hi hello hey yes yeah okay ok well now then too also one not""".split()
)
_FUNCTION_STEMS = frozenset(stem(w) for w in FUNCTION_WORDS)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class _Example:
    intent: str
    words: frozenset[str]
    weight: float  # of the words (placeholders each weigh 1)
    placeholders: frozenset[str]


class IntentMatcher:
    def __init__(self, examples: Mapping[str, Sequence[str]]) -> None:
        bags: list[tuple[str, set[str], set[str]]] = []
        seen_in: dict[str, set[str]] = {}
        for intent, phrases in examples.items():
            for phrase in phrases:
                holes = set(_PLACEHOLDER.findall(phrase))
                words = {stem(t) for t in tokens(_PLACEHOLDER.sub(" ", phrase))}
                bags.append((intent, words, holes))
                for w in words:
                    seen_in.setdefault(w, set()).add(intent)
        self._weights: dict[str, float] = {}
        for w, intents in seen_in.items():
            base = 0.25 if w in _FUNCTION_STEMS else 1.0
            self._weights[w] = base / len(intents) ** 0.5
        self._examples = [
            _Example(
                intent, frozenset(words), sum(self._weights[w] for w in words), frozenset(holes)
            )
            for intent, words, holes in bags
        ]
        # Only longer words are snapped: "call" is one letter from "all", and a short
        # word mis-snapped can flip an intent.
        self._vocab = sorted(w for w in seen_in if len(w) >= 4)
        self._snap = lru_cache(maxsize=4096)(self._closest)

    def _closest(self, word: str) -> str:
        if word in self._weights or len(word) < 5 or word.isdigit():
            return word
        close = difflib.get_close_matches(word, self._vocab, n=1, cutoff=0.8)
        return close[0] if close else word

    def scores(
        self,
        toks: Sequence[str],
        slots_found: Collection[str] = (),
        skip: Collection[int] = (),
        strong: Collection[str] = (),
    ) -> dict[str, float]:
        """Best score (0..1) per intent for the tokens not in `skip` (slot values).

        A placeholder alone can make an example match only for a `strong` slot — one that
        names something ("sushi" is a cuisine); a date or a number alone could be meant
        for any intent."""
        words = {self._snap(stem(t)) for i, t in enumerate(toks) if i not in skip}
        said_weight = sum(self._weights.get(w, 0.5) for w in words)
        found = set(slots_found)
        best: dict[str, float] = {}
        for ex in self._examples:
            hit = sum(self._weights[w] for w in ex.words & words)
            if ex.words and not hit and not (ex.placeholders & set(strong)):
                continue
            holes = sum(1 for h in ex.placeholders if h in found)
            total = ex.weight + len(ex.placeholders)
            if total <= 0:
                continue
            recall = (hit + holes) / total
            precision = (hit + holes) / (said_weight + holes) if said_weight + holes else 0.0
            score = 0.7 * recall + 0.3 * min(precision, 1.0)
            if score > best.get(ex.intent, 0.0):
                best[ex.intent] = score
        return best

    def best(
        self,
        toks: Sequence[str],
        slots_found: Collection[str] = (),
        skip: Collection[int] = (),
        strong: Collection[str] = (),
    ) -> tuple[str | None, float]:
        scores = self.scores(toks, slots_found, skip, strong)
        if not scores:
            return None, 0.0
        intent = max(scores, key=lambda k: scores[k])
        return intent, scores[intent]
