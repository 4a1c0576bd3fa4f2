"""Call summaries: by the configured LLM when there is one, else extracted from the call.

The extractive summary needs nothing but the transcript: the caller's request (their
first turn that says something), the agent sentence that shares the most content words
with the call's topic, and how the call ended. It is what the console shows when no LLM
is configured and what the LLM summary falls back to when the endpoint fails.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from callbridge.profile import LlmSettings

log = logging.getLogger(__name__)

Turn = tuple[str, str]  # (role, text)

_STOPWORDS = frozenset(
    """a about after again all also am an and any are as at be been before being but by
    can could did do does doing for from get got had has have having he her here hers him
    his how i i'd i'll i'm i've if in into is it it's its just let me more my myself no not
    now of off ok okay on once one only or other our ours out over please really right so
    some sure than thank thanks that that's the their them then there these they this
    those through to too up us very want was we we're were what when where which while who
    why will with would yes yeah you you're your yours hello hi hey bye goodbye good
    morning afternoon evening great fine alright uh um well oh""".split()
)
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_WORD = re.compile(r"[a-z0-9']+")
_MAX_SENTENCE = 200


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1]


def _clip(sentence: str) -> str:
    sentence = sentence if sentence[-1:] in ".!?" else sentence + "."
    if len(sentence) <= _MAX_SENTENCE:
        return sentence
    return sentence[: _MAX_SENTENCE - 1].rsplit(" ", 1)[0] + "…"


def _utterances(turns: Sequence[Turn]) -> list[Turn]:
    """Consecutive turns of one speaker joined: agents' transcripts come in pieces as the
    speech is synthesised ("I can check on an order," / "tell you our opening hours,")."""
    out: list[Turn] = []
    for role, text in turns:
        if not text.strip():
            continue
        if out and out[-1][0] == role:
            out[-1] = (role, f"{out[-1][1]} {text.strip()}")
        else:
            out.append((role, text.strip()))
    return out


def extractive_summary(turns: Sequence[Turn], outcome: str | None, reason: str | None) -> str:
    """The caller's request, the agent's most on-topic sentence after it, and the outcome.

    `reason` is not repeated (the record shows it, and ACS's reasons are long)."""
    ending = f"Outcome: {outcome}." if outcome else ""
    said = [(role, s) for role, text in _utterances(turns) for s in _sentences(text)]
    callers = [i for i, (role, _) in enumerate(said) if role == "caller"]
    if not callers:
        return f"The caller said nothing. {ending}".strip()
    at = next((i for i in callers if len(_content_words(said[i][1])) >= 2), callers[0])
    request = said[at][1]
    request_words = set(_content_words(request))
    topic = Counter(w for _, s in said for w in _content_words(s))

    def score(sentence: str) -> float:
        words = _content_words(sentence)
        if len(words) < 2:
            return 0.0
        # Words of the caller's request count double: the answer is what the call was for.
        weight = sum(topic[w] * (2 if w in request_words else 1) for w in set(words))
        # A statement (the answer) beats a question back ("anything else?").
        return weight / math.sqrt(len(words)) * (0.5 if sentence.endswith("?") else 1.0)

    # Only what the agent said after the request: its greeting lists what it can do and
    # shares the request's words without answering it.
    answers = [s for role, s in said[at + 1 :] if role == "agent"]
    best = max(answers, key=score, default=None)
    parts = [f"Caller: {_clip(request)}"]
    if best is not None and score(best) > 0:
        parts.append(f"Agent: {_clip(best)}")
    if ending:
        parts.append(ending)
    return " ".join(parts)


class Summarizer(Protocol):
    async def summarize(
        self, turns: Sequence[Turn], outcome: str | None, reason: str | None
    ) -> str:
        """A summary of the call; raises when it cannot make one (the caller falls back)."""


_PROMPT = (
    "You write the call log of a phone line answered by an AI agent. Summarise the call in "
    "at most three short sentences: what the caller wanted, what was done or found, and "
    "how the call ended. Plain text, no lists, no greeting. Text in square brackets, such "
    "as [CARD] or [PHONE], was removed for privacy: keep it as it is."
)


class LlmSummarizer:
    """Summaries from an OpenAI-compatible chat-completions endpoint (OpenAI, Azure OpenAI,
    Ollama, vLLM, llama.cpp), configured like a profile's `llm` section."""

    def __init__(self, llm: LlmSettings, *, timeout_s: float = 30.0) -> None:
        self.model = llm.model
        from openai import AsyncOpenAI  # only when summaries use a model: ~14 MB

        key = (os.environ.get(llm.api_key_env) if llm.api_key_env else None) or "not-needed"
        # Not on a caller's time: a longer timeout than the brain's, and one retry.
        self._client = AsyncOpenAI(
            base_url=llm.base_url, api_key=key, timeout=max(timeout_s, llm.timeout), max_retries=1
        )

    async def summarize(
        self, turns: Sequence[Turn], outcome: str | None, reason: str | None
    ) -> str:
        lines = [f"{'Caller' if role == 'caller' else 'Agent'}: {text}" for role, text in turns]
        lines.append(f"[The call ended: {outcome or 'unknown'}; {reason or 'no reason given'}]")
        reply = await self._client.chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": _PROMPT},
                {"role": "user", "content": "\n".join(lines)},
            ],
            temperature=0.2,
            max_tokens=200,
            stream=False,
        )
        text = (reply.choices[0].message.content or "").strip() if reply.choices else ""
        if not text:
            raise ValueError("the model returned an empty summary")
        return text

    async def close(self) -> None:
        await self._client.close()
