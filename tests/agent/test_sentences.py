"""The one sentence splitter (brains and custom voice), and the first-clause split."""

from __future__ import annotations

from callbridge.agent.sentences import SentenceSplitter, first_clauses, sentences


def test_a_sentence_is_complete_once_white_space_follows() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("We open at nine.") == []  # maybe "nine.5"? wait for more
    assert splitter.feed(" Really?! Yes") == ["We open at nine.", "Really?!"]
    assert splitter.feed(' "Quoted." (Bracketed.) ') == ['Yes "Quoted."', "(Bracketed.)"]
    assert splitter.flush() == []


def test_abbreviations_and_line_breaks() -> None:
    assert sentences("Dr. Lee sees you at 7 p.m. on Friday. Bye.") == [
        "Dr. Lee sees you at 7 p.m. on Friday.",
        "Bye.",
    ]
    assert sentences("Plan A. Or not\nA new line") == ["Plan A. Or not", "A new line"]


def test_a_run_on_is_broken_before_max_chars() -> None:
    parts = sentences("word, " * 80)
    assert len(parts) > 1 and all(len(p) <= 300 for p in parts)
    assert parts[0].endswith(",")  # at a comma, not mid-word


def test_min_chars_keeps_short_pieces_with_the_next() -> None:
    """Custom voice (min_chars=12): "Hi." is not spoken on its own."""
    splitter = SentenceSplitter(min_chars=12)
    assert splitter.feed("Hi. I'm Ava.") == []
    assert splitter.feed(" How can I help you today? Ok") == [
        "Hi. I'm Ava.",
        "How can I help you today?",
    ]
    assert splitter.flush() == ["Ok"]
    # Without it (the brains), every sentence goes as soon as it is complete.
    assert sentences("Hi. I'm Ava. Ok") == ["Hi.", "I'm Ava.", "Ok"]


def test_first_clauses() -> None:
    assert first_clauses("Short and sweet.") == ["Short and sweet."]
    long = "We open at nine on weekdays, at ten on Saturdays, and we are closed on Sundays."
    assert first_clauses(long) == [
        "We open at nine on weekdays,",
        "at ten on Saturdays,",
        "and we are closed on Sundays.",
    ]
    pieces = first_clauses("Your table for four is booked at Luigi's for tomorrow evening.")
    # no clause punctuation: cut before an early preposition
    assert pieces == ["Your table for four is booked", "at Luigi's for tomorrow evening."]
