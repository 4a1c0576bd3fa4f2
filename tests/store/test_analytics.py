"""Post-call analytics: PII redaction on real-looking transcripts, sentiment, summaries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from callbridge.analytics.pii import luhn_ok, redact, redact_json_text, redact_with_labels
from callbridge.analytics.post_call import analyze_offline
from callbridge.analytics.sentiment import call_sentiment
from callbridge.analytics.summary import LlmSummarizer, extractive_summary
from callbridge.profile import LlmSettings
from callbridge.store.records import CallDetailRow, CallRow, ToolRow, TurnRow
from tests.brain.fake_chat_server import FakeChatServer, Reply

# (what the caller or agent said, what must be left of it)
REDACTED = [
    (
        "My card number is 4111 1111 1111 1111, expiry 08/27.",
        "My card number is [CARD], expiry 08/27.",
    ),
    ("It's 5500-0000-0000-0004.", "It's [CARD]."),
    ("amex 378282246310005 please", "amex [CARD] please"),
    ("You can reach me on (425) 555-0123 after 5 pm.", "You can reach me on [PHONE] after 5 pm."),
    ("or on 425.555.0199", "or on [PHONE]"),
    ("call 1-800-555-0199 tomorrow", "call [PHONE] tomorrow"),
    ("Call me back on +44 20 7946 0958 please", "Call me back on [PHONE] please"),
    ("my mobile is 07700 900123", "my mobile is [PHONE]"),
    ("the office is 020 7946 0958.", "the office is [PHONE]."),
    ("my number is 555-0123", "my number is [PHONE]"),
    ("email me at jane.doe+calls@example.co.uk", "email me at [EMAIL]"),
    ("it's john dot smith at gmail dot com", "it's [EMAIL]"),
    ("My SSN is 123-45-6789.", "My SSN is [SSN]."),
    ("social security number 123456789", "social security number [SSN]"),
    ("my NI number is AB 12 34 56 C", "my NI number is [NI_NUMBER]"),
    ("NI number JG103759A", "NI number [NI_NUMBER]"),
    (
        "my card is four one one one one one one one one one one one one one one one",
        "my card is [CARD]",
    ),
    (
        "my number is oh seven seven double oh nine oh oh one two three, thanks",
        "my number is [PHONE], thanks",
    ),
    ("it's four two five, five five five, zero one two three.", "it's [PHONE]."),
    # Speech recognition writes a number read out digit by digit like this.
    ("It's 4 2 5 5 5 5 0 1 2 3.", "It's [PHONE]."),
    ("The card is 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "The card is [CARD]"),
    (
        "my social is one two three four five six seven eight nine",
        "my social is [SSN]",
    ),
]

KEPT = [
    "Your order number is 4155550123 and it ships Friday.",
    "order 10023457 was delivered on 2024-05-14 at 10:30.",
    "A table for four at seven thirty, please.",
    "That comes to $1,234.56 including tax.",
    "reference ABC-234-5678",
    "my order number is five five three two one one nine eight",
    "two adults and one child on the 14th",
    "Flight BA 2490 leaves at 14:05 from gate 12.",
    "We are open 9 to 5, Monday to Friday.",
    "booking reference 20240514-0930",
    "sales grew 2019-2024",
    "I was born in 1985 and I have 3 kids.",
    "room 1204, floor 12",
    "The total was 12345678 points.",
    "card 4111 1111 1111 1112 is not a valid number",  # fails the Luhn check
    "Oh, okay. One moment.",
    "It's 4 5 1 2.",
    "Order 4 5 1 2 is out for delivery.",
    "My order number is 4 5 1 2 3 3 9 9.",
    "QQ 12 34 56 C is the example on the form",  # QQ is never issued
    "The 123-45-678 part number",
    "Order 000-00-0000 is a placeholder",
    "Tracking number 1Z999AA10123456784",
]


@pytest.mark.parametrize(("said", "stored"), REDACTED)
def test_pii_is_redacted(said: str, stored: str) -> None:
    assert redact(said) == stored


@pytest.mark.parametrize("said", KEPT)
def test_ordinary_numbers_are_kept(said: str) -> None:
    assert redact(said) == said


def test_labels_and_luhn() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    text, labels = redact_with_labels(
        "Card 4111111111111111, mail a@b.io, phone +1 425 555 0123, order 4155550123."
    )
    assert labels == ["[EMAIL]", "[CARD]", "[PHONE]"]
    assert text == "Card [CARD], mail [EMAIL], phone [PHONE], order 4155550123."


def test_json_stays_json() -> None:
    out = redact_json_text('{"card": 4111111111111111, "note": "call 425-555-0123", "n": 3}')
    assert json.loads(out) == {"card": "[CARD]", "note": "call [PHONE]", "n": 3}
    assert redact_json_text('{"order": "10023"}') == '{"order": "10023"}'
    assert redact_json_text("not json 4111111111111111") == "not json [CARD]"


def test_sentiment_is_the_callers() -> None:
    angry = call_sentiment(
        [
            ("agent", "I'm happy to help, wonderful to hear from you!"),
            ("caller", "This is ridiculous. I have waited three weeks and I am furious."),
        ]
    )
    assert angry.label == "negative" and angry.compound < -0.3
    happy = call_sentiment([("caller", "That's great, thank you so much, really helpful!")])
    assert happy.label == "positive" and happy.compound > 0.5
    assert call_sentiment([("agent", "Hello?")]).label == "neutral"
    # The ending weighs more than the opening complaint.
    recovered = call_sentiment(
        [
            ("caller", "My parcel is late and I'm annoyed."),
            ("caller", "Oh that's perfect, thank you, I really appreciate it!"),
        ]
    )
    assert recovered.label == "positive"


TURNS = [
    ("agent", "Hello, this is Contoso. How can I help?"),
    ("caller", "Hi."),
    ("caller", "I'd like to know where my order 10023 is, it was due Monday."),
    ("agent", "Let me check that for you."),
    ("agent", "Your order 10023 shipped yesterday and will arrive on Friday."),
    ("caller", "Okay, thanks. Bye."),
    ("agent", "Thank you for calling. Goodbye!"),
]


def test_extractive_summary() -> None:
    summary = extractive_summary(TURNS, "resolved", "agent ended the call")
    assert summary == (
        "Caller: I'd like to know where my order 10023 is, it was due Monday. "
        "Agent: Your order 10023 shipped yesterday and will arrive on Friday. "
        "Outcome: resolved."
    )
    silent = extractive_summary([("agent", "Hello?")], "abandoned", "caller hung up")
    assert silent == "The caller said nothing. Outcome: abandoned."


def test_extractive_summary_of_a_spoken_call() -> None:
    """As the local agent's transcripts come: the agent's words in pieces, a greeting that
    lists what it can do (and shares the request's words without answering it)."""
    turns = [
        ("agent", "Thank you for calling Contoso. I can check on an order,"),
        ("agent", "tell you our opening hours,"),
        ("agent", "recommend a restaurant and book you a table. How can I help?"),
        ("caller", "What are your opening hours?"),
        ("agent", "We're open Monday to Friday"),
        ("agent", "from 8 AM to 8 PM"),
        ("agent", "and Saturday from 9 AM to 6 PM; closed on Sunday."),
        ("agent", "Anything else?"),
        ("caller", "No, thanks."),
    ]
    assert extractive_summary(turns, "resolved", "call disconnected (200/5010 ...)") == (
        "Caller: What are your opening hours? Agent: We're open Monday to Friday from 8 AM "
        "to 8 PM and Saturday from 9 AM to 6 PM; closed on Sunday. Outcome: resolved."
    )


def _detail() -> CallDetailRow:
    call = CallRow(
        "c1", "+1", "+2", "p", "", "ended", 1.0, 2.0, "resolved", "done", None, 2, False,
        None, None, None, None, False, None,
    )  # fmt: skip
    return CallDetailRow(
        call,
        [
            TurnRow(1, "caller", "My card is 4111 1111 1111 1111 and I'm happy.", 1.0),
            TurnRow(2, "agent", "Thanks, order 10023 is paid.", 1.5),
        ],
        [ToolRow(7, "pay", {"card": "4111111111111111"}, '{"ok": true}', True, 1.0, 1.2)],
        [],
        [],
        [],
    )


def test_offline_analysis_redacts_rows() -> None:
    plain = analyze_offline(_detail(), redaction=False)
    assert plain.transcript_texts == {} and plain.tool_texts == {}
    assert "4111" in plain.summary
    redacted = analyze_offline(_detail(), redaction=True)
    assert redacted.transcript_texts == {1: "My card is [CARD] and I'm happy."}
    assert redacted.tool_texts == {7: ({"card": "[CARD]"}, '{"ok": true}')}
    assert "4111" not in redacted.summary and "[CARD]" in redacted.summary
    assert redacted.sentiment.label == "positive"


@pytest.fixture
async def chat() -> AsyncIterator[FakeChatServer]:
    server = FakeChatServer()
    await server.start()
    yield server
    await server.stop()


async def test_llm_summary(chat: FakeChatServer) -> None:
    summarizer = LlmSummarizer(LlmSettings(base_url=chat.base_url, model="fake-model"))
    chat.script("The caller asked about order 10023; it arrives Friday.")
    try:
        text = await summarizer.summarize(TURNS, "resolved", "agent ended the call")
    finally:
        await summarizer.close()
    assert text == "The caller asked about order 10023; it arrives Friday."
    sent = chat.requests[0]
    assert sent["model"] == "fake-model"
    assert "Caller: I'd like to know where my order 10023 is" in sent["messages"][1]["content"]


async def test_llm_failure_raises(chat: FakeChatServer) -> None:
    summarizer = LlmSummarizer(LlmSettings(base_url=chat.base_url, model="m"), timeout_s=5)
    chat.script(Reply(status=400), Reply(status=400))
    try:
        with pytest.raises(Exception):  # noqa: B017 - any failure: the caller falls back
            await summarizer.summarize(TURNS, "resolved", None)
    finally:
        await summarizer.close()
