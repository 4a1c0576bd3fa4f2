"""Transcript normalisation, slot finders, templates and sentence splitting."""

from __future__ import annotations

import datetime as dt

import pytest

from callbridge.agent.local.brain.matcher import IntentMatcher
from callbridge.agent.local.brain.slots import (
    Found,
    find_choice,
    find_date,
    find_digits,
    find_list_ref,
    find_name,
    find_number,
    find_time,
    make_choice,
    parse_date,
    parse_time,
)
from callbridge.agent.local.brain.text import tokens
from callbridge.agent.sentences import SentenceSplitter, sentences
from callbridge.core.template import check, render

TODAY = dt.date(2025, 6, 4)  # Wednesday


def free(toks: list[str]) -> list[bool]:
    return [False] * len(toks)


def value(found: Found | None) -> object:
    return found.value.value if found else None


def test_tokens_normalise_whisper_output() -> None:
    assert tokens("Uh, where's my order? It's 4 5 1 2.") == [
        "where", "is", "my", "order", "it", "is", "4", "5", "1", "2",
    ]  # fmt: skip
    assert tokens("Book it for 7p.m. at Luigi’s") == [
        "book",
        "it",
        "for",
        "7",
        "pm",
        "at",
        "luigis",
    ]
    assert tokens("7:30PM on the 5th") == ["7:30", "pm", "on", "the", "5"]
    assert tokens("I can't, I'd rather not") == ["i", "can", "not", "i", "would", "rather", "not"]
    assert tokens("4,512 twenty-two") == ["4512", "twenty", "two"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It's 4 5 1 2.", "4512"),
        ("4512", "4512"),
        ("order number four five one two", "4512"),
        ("double five one two", "5512"),
        ("triple seven eight", "7778"),
        ("nine oh two one", "9021"),
        ("45-12", "4512"),
        ("forty five twelve", "4512"),
        ("nineteen eighty four", "1984"),
        ("my order is 4 5 1 2 and I need it", "4512"),
        ("no digits here", None),
        ("just 12", None),  # too short
    ],
)
def test_digits(text: str, expected: str | None) -> None:
    toks = tokens(text)
    assert value(find_digits(toks, free(toks), min_len=4, max_len=8)) == expected


def test_numbers_prefer_counts_of_people() -> None:
    toks = tokens("book it for 4 people at 7pm tomorrow")
    used = free(toks)
    time = find_time(toks, used)
    assert time and time.value.value == "19:00"
    for i in range(time.start, time.end):
        used[i] = True
    assert value(find_number(toks, used, 1, 20)) == 4
    assert value(find_number(tokens("six of us"), free(tokens("six of us")))) == 6
    assert value(find_number(tokens("party of twenty two"), [False] * 4, 1, 30)) == 22
    assert find_number(tokens("the second one"), [False] * 3) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", "2025-06-04"),
        ("tonight at 8", "2025-06-04"),
        ("tomorrow", "2025-06-05"),
        ("the day after tomorrow", "2025-06-06"),
        ("on Friday", "2025-06-06"),
        ("next wednesday", "2025-06-11"),
        ("this wednesday", "2025-06-04"),
        ("on the 5th", "2025-06-05"),
        ("the third", "2025-07-03"),
        ("the twenty first", "2025-06-21"),
        ("March 5th", "2026-03-05"),
        ("the 14th of June", "2025-06-14"),
        ("the second one", None),
        ("nothing", None),
    ],
)
def test_dates(text: str, expected: str | None) -> None:
    toks = tokens(text)
    assert value(find_date(toks, free(toks), TODAY)) == expected


@pytest.mark.parametrize(
    ("text", "prompted", "expected"),
    [
        ("7 pm", False, "19:00"),
        ("at 7", False, "07:00"),
        ("seven thirty pm", False, "19:30"),
        ("7:45", False, "07:45"),
        ("half past eight in the evening", False, "20:30"),
        ("quarter to nine pm", False, "20:45"),
        ("noon", False, "12:00"),
        ("at eleven o'clock", False, "11:00"),
        ("seven thirty", False, None),  # bare: only when asked for a time
        ("seven thirty", True, "07:30"),
    ],
)
def test_times(text: str, prompted: bool, expected: str | None) -> None:
    toks = tokens(text)
    assert value(find_time(toks, free(toks), prompted=prompted)) == expected


def test_time_assume_pm_for_dinner() -> None:
    toks = tokens("at 7")
    assert value(find_time(toks, free(toks), assume_pm=True)) == "19:00"
    toks = tokens("at 11")
    assert value(find_time(toks, free(toks), assume_pm=True)) == "11:00"
    toks = tokens("at 8 in the morning")
    assert value(find_time(toks, free(toks), assume_pm=True)) == "08:00"


def test_names() -> None:
    def name(text: str, prompted: bool = False) -> object:
        toks = tokens(text)
        return value(find_name(toks, free(toks), prompted=prompted))

    assert name("my name is maria garcia") == "Maria Garcia"
    assert name("book it under Smith for tomorrow") == "Smith"
    assert name("Smith.", prompted=True) == "Smith"
    assert name("it's John, thanks", prompted=True) == "John"
    assert name("Smith.") is None
    assert name("I was wondering whether you could tell me the hours", prompted=True) is None


def test_choices_match_synonyms_and_mishearings() -> None:
    choices = [make_choice("Italian", ["pizza", "pasta"]), make_choice("Japanese", ["sushi"])]
    for text, expected in [("italien food", "Italian"), ("some sushi", "Japanese")]:
        toks = tokens(text)
        hit = find_choice(toks, free(toks), choices)
        assert hit and hit[0].canonical == expected
    toks = tokens("Bella Napoli please")
    hit = find_choice(toks, free(toks), [make_choice("Bella Napoli"), make_choice("Bella Roma")])
    assert hit is not None and hit[0].canonical == "Bella Napoli"


def test_list_references() -> None:
    for text, expected in [
        ("the second one", 1),
        ("what about the last one", 2),
        ("number two", 1),
        ("the 3rd one", 2),
        ("the fifth", None),
    ]:
        toks = tokens(text)
        ref = find_list_ref(toks, free(toks), 3)
        assert (ref[0] if ref else None) == expected, text


def test_tool_side_parsers() -> None:
    assert parse_date("2025-06-07", TODAY) == dt.date(2025, 6, 7)
    assert parse_date("tomorrow", TODAY) == dt.date(2025, 6, 5)
    assert parse_date("someday", TODAY) is None
    assert parse_time("19:30") == dt.time(19, 30)
    assert parse_time("7:30 pm") == dt.time(19, 30)
    assert parse_time("later") is None


def test_templates() -> None:
    ctx = {
        "code": "K7Q2",
        "items": ["a kettle", "two mugs", "a lamp"],
        "restaurants": [{"name": "A", "area": "x"}, {"name": "B", "area": "y"}],
    }
    assert render("Code {code:spell}.", ctx) == "Code K 7 Q 2."
    assert render("You ordered {items}.", ctx) == "You ordered a kettle, two mugs and a lamp."
    assert render(
        "{restaurants:join:name}; first {restaurants.0.name} in {restaurants[0].area}", ctx
    ) == ("A and B; first A in x")
    assert render("{restaurants:count} places. {missing} {restaurants.9.name}.", ctx) == "2 places."
    assert check("{a} {b.c}", {"a", "b"}) is None
    assert "uses {z}" in str(check("{z}", {"a"}))
    assert "unknown format" in str(check("{a:loud}", {"a"}))
    assert "bad template" in str(check("{a", {"a"}))


def test_sentences_stream_as_they_complete() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Sure. Luigi's opens at 7 p.m. on Fri") == ["Sure."]
    assert splitter.feed("days. Dr. Lee says hi!  Want") == [
        "Luigi's opens at 7 p.m. on Fridays.",
        "Dr. Lee says hi!",
    ]
    assert splitter.feed(" a table?") == []
    assert splitter.flush() == ["Want a table?"]
    assert sentences("Pi is 3.14. Yes.\nNext line") == ["Pi is 3.14.", "Yes.", "Next line"]
    long = "word " * 100
    assert all(len(s) <= 300 for s in sentences(long))


def test_matcher_weights_content_words() -> None:
    matcher = IntentMatcher(
        {
            "order": ["where is my order", "order {order_number}"],
            "hours": ["what are your opening hours", "are you open {day}"],
        }
    )
    intent, score = matcher.best(tokens("uh where's my order"))
    assert intent == "order" and score > 0.8
    intent, score = matcher.best(tokens("what time do you open"))
    assert intent == "hours"
    # A slot value alone doesn't pick an intent; with a word of the example it does.
    assert matcher.scores(tokens("tomorrow"), {"day"}, {0}) == {}
    intent, _ = matcher.best(tokens("open tomorrow"), {"day"}, {1})
    assert intent == "hours"
