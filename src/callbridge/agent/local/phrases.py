"""Sentences the agent has already said, kept as audio: said again, they start at once.

A line says the same sentences over and over: its greeting, prompts ("What's your order
number?"), reprompts, the tool filler, answers read from fixed data (opening hours). Piper
makes a sentence in one go (~100-200 ms for a clause on one core here), which is most of
the wait for the agent's first words; from memory it is ~0 ms and costs no CPU, which also
leaves more of the machine for other calls. Sentences that vary (an order number, a name)
are made every time as before.

The cache is per process, keyed by the voice (its file and options), the text and the
output rate, bounded in bytes (least recently used go first); only a sentence whose
synthesis finished is kept (a barge-in mid-sentence keeps nothing).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from concurrent.futures import Executor
from typing import Final

from callbridge.agent.local.setup import TextToSpeech

MAX_BYTES: Final = 48 * 2**20  # ~17 min of 24 kHz speech
MAX_SENTENCE_CHARS: Final = 240  # longer text is rarely said twice


class PhraseCache:
    """Thread-safe LRU of synthesised sentences (their chunks, as the voice made them)."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max = max_bytes
        self._bytes = 0
        self._items: OrderedDict[Hashable, tuple[bytes, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> tuple[bytes, ...] | None:
        with self._lock:
            chunks = self._items.get(key)
            if chunks is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return chunks

    def put(self, key: Hashable, chunks: tuple[bytes, ...]) -> None:
        size = sum(len(c) for c in chunks)
        if size == 0 or size > self._max // 8:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes -= sum(len(c) for c in old) if old else 0
            self._items[key] = chunks
            self._bytes += size
            while self._bytes > self._max and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= sum(len(c) for c in dropped)

    def __len__(self) -> int:
        return len(self._items)


_shared = PhraseCache()


def shared_cache() -> PhraseCache:
    return _shared


def voice_key(tts: TextToSpeech) -> Hashable:
    """What identifies a voice's sound: a Piper voice's file and options, else the object."""
    path, options = getattr(tts, "path", None), getattr(tts, "options", None)
    if path is not None and options is not None:
        return (str(path), options)
    return id(tts)


class CachedVoice:
    """A `TextToSpeech` that says sentences it has said before from memory."""

    def __init__(self, tts: TextToSpeech, cache: PhraseCache | None = None) -> None:
        self.inner = tts
        self._cache = cache or _shared
        self._key = voice_key(tts)

    async def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        key = (self._key, text, out_rate)
        chunks = self._cache.get(key) if len(text) <= MAX_SENTENCE_CHARS else None
        if chunks is not None:
            for chunk in chunks:
                yield chunk
            return
        made: list[bytes] = []
        async for chunk in self.inner.stream(text, out_rate, executor):
            made.append(chunk)
            yield chunk
        if len(text) <= MAX_SENTENCE_CHARS:
            self._cache.put(key, tuple(made))

    async def prepare(self, text: str, out_rate: int, executor: Executor) -> None:
        """Synthesise `text` now (if not kept already) so it plays at once when said."""
        async for _ in self.stream(text, out_rate, executor):
            pass


LEAD_FLOOR: Final = 100  # |sample| below this is silence (Piper pads a sentence with ~50 ms)
LEAD_KEEP_MS: Final = 5


def trim_lead(pcm: bytes, rate: int) -> bytes:
    """`pcm` without the silence it starts with (a few ms kept): the first words of a reply
    reach the caller that much sooner. Sentences after the first keep theirs (a pause)."""
    import numpy as np

    x = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > LEAD_FLOOR)
    if loud.size == 0:
        return pcm
    start = max(0, int(loud[0]) - rate * LEAD_KEEP_MS // 1000)
    return pcm[start * 2 :]


def cached(tts: TextToSpeech) -> TextToSpeech:
    return tts if isinstance(tts, CachedVoice) else CachedVoice(tts)
