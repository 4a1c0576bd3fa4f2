"""The small parts of turn taking: noise words, the rest of a held reply, the brain's
number hint, the phrase cache, the profile's turn section."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import Executor

import pytest
from pydantic import ValidationError

from callbridge.agent.local.brain.turn_hints import digits_hint
from callbridge.agent.local.end_of_turn import dangles
from callbridge.agent.local.interruption import Piece, is_noise, rest_of_reply
from callbridge.agent.local.phrases import CachedVoice, PhraseCache
from callbridge.agent.local.setup import TurnSettings
from callbridge.profile import SlotSpec, TurnSection


@pytest.mark.parametrize(
    "text",
    [
        "",
        "(coughs)",
        "[COUGH]",
        "Hm.",
        "Mm-hmm.",
        "Uh-huh",
        "M.",
        "Ahem",
        "Oh.",
        "Hmm?",
        "Okay.",
        "F",
    ],
)
def test_sounds_without_words_are_noise(text: str) -> None:
    assert is_noise(text)


@pytest.mark.parametrize(
    "text", ["Stop.", "No", "yes", "Okay, stop.", "Italian please", "two", "2"]
)
def test_words_are_not_noise(text: str) -> None:
    assert not is_noise(text)


def test_the_rest_of_a_reply_starts_a_little_before_the_cut() -> None:
    rate = 1000  # 2 bytes a millisecond
    pieces = [
        Piece(b"\x01\x00" * 100, "One two three four.", "One two three four.", 0),
        Piece(b"\x01\x00" * 100, "", "One two three four.", 0),
        Piece(b"\x02\x00" * 100, "Five six.", "Five six.", 1),
    ]
    rest = rest_of_reply(pieces, heard_ms=270, rate=rate)
    # 150 ms from the start of the first sentence (270 - 120): 50 ms of its second piece
    assert [len(p.pcm) // 2 for p in rest] == [50, 100]
    assert rest[0].mark == "four." and rest[1].mark == "Five six."
    assert rest_of_reply(pieces, heard_ms=0, rate=rate)[0].mark == "One two three four."
    assert rest_of_reply(pieces, heard_ms=420, rate=rate) == []


def test_hanging_words_do_not_finish_a_turn() -> None:
    assert dangles("My order number is") and dangles("I'd like to book a table for")
    assert dangles("What time do you?") and dangles("Can you tell me?")
    assert dangles("Can you recommend?")
    assert not dangles("What are your opening hours?") and not dangles("Four five one two.")
    assert not dangles("Can you help me?") and not dangles("Thank you.") and not dangles("")
    # A thing known by a number, bare: its number is still to come.
    assert dangles("Could you check order?") and dangles("What's the status of booking")
    assert not dangles("Where is my order?") and not dangles("I'd like to check on my order.")
    assert not dangles("I placed an order.")


def test_a_number_asked_for_is_whole_only_with_enough_digits() -> None:
    order = SlotSpec(type="digits", min_length=4, max_length=6)
    assert digits_hint("4 5", order, [order]) is False
    assert digits_hint("Four five one two.", order, [order]) is True
    assert digits_hint("Four five one two, please", order, [order]) is None
    # Not asked for: only "…number is 45" says a number is being read.
    assert digits_hint("My order number is 45.", None, [order]) is False
    assert digits_hint("My order number is 4512", None, [order]) is True
    assert digits_hint("My order number 6 won.", None, [order]) is False  # "six one"
    assert digits_hint("A table for two.", None, [order]) is None


class CountingVoice:
    def __init__(self) -> None:
        self.made = 0

    async def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        self.made += 1
        for word in text.split():
            yield word.encode()


async def _say(voice: CachedVoice, text: str) -> list[bytes]:
    return [chunk async for chunk in voice.stream(text, 24000, None)]  # type: ignore[arg-type]


async def test_a_sentence_said_before_comes_from_memory() -> None:
    inner = CountingVoice()
    voice = CachedVoice(inner, PhraseCache())
    assert await _say(voice, "How can I help?") == [b"How", b"can", b"I", b"help?"]
    assert await _say(voice, "How can I help?") == [b"How", b"can", b"I", b"help?"]
    assert inner.made == 1
    # A sentence cut off (barge-in) is not kept.
    async for _ in voice.stream("Hello there friend", 24000, None):  # type: ignore[arg-type]
        break
    await _say(voice, "Hello there friend")
    assert inner.made == 3


def test_the_phrase_cache_is_bounded() -> None:
    cache = PhraseCache(max_bytes=800)
    for i in range(10):
        cache.put(i, (bytes(100),))
    assert len(cache) == 8 and cache.get(0) is None and cache.get(9) is not None


def test_the_profile_turn_section_reaches_the_agent() -> None:
    section = TurnSection(end_of_turn="silence", end_silence_ms=500, max_silence_ms=2000)
    turn = TurnSettings.from_section(section)
    assert turn.end_of_turn == "silence" and turn.end_silence_ms == 500
    assert turn.max_silence_ms == 2000 and not turn.smart
    assert TurnSection().end_of_turn == "smart"
    with pytest.raises(ValidationError, match="max_silence_ms"):
        TurnSection(check_after_ms=800, max_silence_ms=600)
