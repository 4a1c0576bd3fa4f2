"""PII redaction of call transcripts: card and phone numbers, e-mails, national ids.

Transcripts come from speech recognition, so numbers arrive both as digits ("4111 1111
1111 1111") and as words ("four one one one ..., double oh seven"). Each kind of PII is
matched strictly enough that the numbers a call is full of stay readable: order and
booking numbers, times, dates, prices. The rules:

- card: 13-19 digits (spaced or dashed as printed, or spoken) passing the Luhn check;
- phone: international (+...), North American (425 555 0123, (425) 555-0123, 555-0123),
  UK national (07700 900123, 020 7946 0958); spoken runs of 7-15 digits;
- e-mail: written, or spoken as "john dot smith at example dot com";
- US SSN: 123-45-6789 with the SSA's never-issued blocks excluded; 9 digits in a row only
  right after "social security"/"SSN";
- UK National Insurance number: AB 12 34 56 C with the prefixes HMRC never issues excluded.

A number right after "order", "reference", "booking", "ticket" (and similar) is taken for
what it says it is, not a phone number; card numbers are redacted whatever precedes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

CARD = "[CARD]"
PHONE = "[PHONE]"
EMAIL = "[EMAIL]"
SSN = "[SSN]"
NI_NUMBER = "[NI_NUMBER]"


@dataclass(frozen=True, slots=True)
class Finding:
    label: str
    start: int
    end: int


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --- context --------------------------------------------------------------------------
_REFERENCE_BEFORE = re.compile(
    r"\b(?:order|reference|ref|confirmation|booking|reservation|ticket|invoice|tracking|"
    r"case|item|sku|flight|room|table|receipt|transaction|parcel|shipment)s?\b"
    r"(?:\s+(?:number|no\.?|num|id|code))?(?:\s+(?:is|was|of))?\s*[:#]?\s*$",
    re.IGNORECASE,
)
_SSN_BEFORE = re.compile(
    r"\b(?:social\s+security|ssn|social)\b(?:\s+(?:number|no\.?))?(?:\s+(?:is|was))?\s*[:#]?\s*$",
    re.IGNORECASE,
)


def _after(pattern: re.Pattern[str], text: str, start: int) -> bool:
    return pattern.search(text[max(0, start - 48) : start]) is not None


# --- written forms ------------------------------------------------------------------------
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_TLD = r"(?:com|net|org|edu|gov|io|co|uk|us|de|fr|info|biz|me)"
_SPOKEN_EMAIL = re.compile(
    rf"\b[a-z0-9]+(?:\s+(?:dot|underscore|dash|hyphen)\s+[a-z0-9]+)*\s+at\s+"
    rf"[a-z0-9]+(?:\s+dot\s+[a-z0-9]+)*\s+dot\s+{_TLD}\b",
    re.IGNORECASE,
)
# Digits in groups as printed on a card or read out: no separators, spaces or dashes.
_CARD = re.compile(r"(?<![\d.,-])(?:\d[ -]?){12,18}\d(?![\d.,-]?\d)")
_SSN = re.compile(
    r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])"
    r"|(?<![\d-])(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}(?![\d-])"
)
# Prefixes: first letter not D F I Q U V, second not D F I O Q U V; BG GB KN NK NT TN ZZ
# are never issued. Upper case only: lower-case letters next to digits are ordinary words.
_NI = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
_PHONES = (
    # International: +CC then 2-6 groups.
    re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?![\d])"),
    # North American: (425) 555-0123, 425-555-0123, 425.555.0123, 1 425 555 0123.
    re.compile(
        r"(?<![\w+-])(?:1[ .-]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[ .-]?)[2-9]\d{2}[ .-]?\d{4}"
        r"(?![\w-])"
    ),
    # North American local: 555-0123 (only with the dash: bare 7 digits are too common).
    re.compile(r"(?<![\w+-])[2-9]\d{2}-\d{4}(?![\w-])"),
    # UK national: 07700 900123, 020 7946 0958, 0161 496 0000.
    re.compile(r"(?<![\w+-])0\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}(?![\w-])"),
)


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def _find_emails(text: str) -> Iterator[Finding]:
    for pattern in (_EMAIL, _SPOKEN_EMAIL):
        for m in pattern.finditer(text):
            yield Finding(EMAIL, m.start(), m.end())


def _find_cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            yield Finding(CARD, m.start(), m.end())


def _find_ssns(text: str) -> Iterator[Finding]:
    for m in _SSN.finditer(text):
        # Nine digits with no dashes are an SSN only when the caller says so.
        if m.group(1) or _after(_SSN_BEFORE, text, m.start()):
            yield Finding(SSN, m.start(), m.end())


def _find_ni(text: str) -> Iterator[Finding]:
    for m in _NI.finditer(text):
        yield Finding(NI_NUMBER, m.start(), m.end())


def _find_phones(text: str) -> Iterator[Finding]:
    for pattern in _PHONES:
        for m in pattern.finditer(text):
            n = len(_digits(m.group()))
            if 7 <= n <= 15 and not _after(_REFERENCE_BEFORE, text, m.start()):
                yield Finding(PHONE, m.start(), m.end())


# --- spoken digits ------------------------------------------------------------------------
_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "nought": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_REPEAT = {"double": 2, "triple": 3}
_WORD = "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True))
_TOKEN = rf"(?:(?:double|triple)\s+)?(?:{_WORD}|\d+)"
_SPOKEN_RUN = re.compile(rf"(?<![\w-]){_TOKEN}(?:[\s,.-]+{_TOKEN})*(?![\w-])", re.IGNORECASE)
_TOKEN_RE = re.compile(rf"(double|triple)?\s*({_WORD}|\d+)", re.IGNORECASE)


def _spoken_digits(run: str) -> tuple[str, bool]:
    """The digits a run says, and whether it reads as spoken: some digits as words, or
    digits one to a few at a time ("4 2 5 5 5 5 0 1 2 3", as speech recognition writes a
    number read out), rather than a number as printed."""
    out: list[str] = []
    words = False
    groups: list[int] = []
    for m in _TOKEN_RE.finditer(run):
        times = _REPEAT.get((m.group(1) or "").lower(), 1)
        token = m.group(2).lower()
        if token in _DIGIT_WORDS:
            words = True
            out.append(_DIGIT_WORDS[token] * times)
        else:
            groups.append(len(token))
            out.append(token[0] * (times - 1) + token)
    spaced = len(groups) >= 4 and max(groups) <= 2
    return "".join(out), words or spaced


def _find_spoken(text: str) -> Iterator[Finding]:
    for m in _SPOKEN_RUN.finditer(text):
        digits, spoken = _spoken_digits(m.group())
        if not spoken or len(digits) < 7:
            continue  # printed numbers have their own rules; short runs are not PII
        start, end = m.start(), m.end()
        # A run ends at a sentence's full stop or comma: keep those in the text.
        while end > start and text[end - 1] in " ,.-":
            end -= 1
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            yield Finding(CARD, start, end)
        elif len(digits) == 9 and _after(_SSN_BEFORE, text, start):
            yield Finding(SSN, start, end)
        elif len(digits) <= 15 and not _after(_REFERENCE_BEFORE, text, start):
            yield Finding(PHONE, start, end)


# Applied in this order, each on the text the previous ones left: the placeholders hold
# no digits, so a number redacted once is not matched again.
_FINDERS: tuple[Callable[[str], Iterator[Finding]], ...] = (
    _find_emails,
    _find_cards,
    _find_ssns,
    _find_ni,
    _find_phones,
    _find_spoken,
)


def _apply(text: str, finder: Callable[[str], Iterator[Finding]]) -> tuple[str, list[str]]:
    found: list[Finding] = []
    for f in sorted(finder(text), key=lambda f: (f.start, -f.end)):
        if found and f.start < found[-1].end:
            continue  # overlaps one already taken
        found.append(f)
    for f in reversed(found):
        text = text[: f.start] + f.label + text[f.end :]
    return text, [f.label for f in found]


def redact_with_labels(text: str) -> tuple[str, list[str]]:
    """The text with PII replaced by placeholders, and the placeholders used, in order."""
    labels: list[str] = []
    for finder in _FINDERS:
        text, found = _apply(text, finder)
        labels += found
    return text, labels


def redact(text: str) -> str:
    return redact_with_labels(text)[0]


def redact_json(value: Any) -> Any:
    """Redact every string (and number) inside a JSON value, keeping it valid JSON: a
    number that holds PII becomes its redacted string."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
        redacted = redact(text)
        return value if redacted == text else redacted
    return value


def redact_object(value: dict[str, Any]) -> dict[str, Any]:
    out = redact_json(value)
    assert isinstance(out, dict)
    return out


def redact_json_text(text: str) -> str:
    """Redact JSON text (a tool's output) so that it stays parseable when it was."""
    try:
        value = json.loads(text)
    except ValueError:
        return redact(text)
    redacted = redact_json(value)
    return text if redacted == value else json.dumps(redacted, ensure_ascii=False)
