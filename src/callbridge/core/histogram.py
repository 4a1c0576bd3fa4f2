"""A fixed-size histogram of milliseconds, for figures counted on every 20 ms of audio.

The pacing lateness of each outbound chunk was a list of floats per call: 32 bytes a chunk,
so 48 KB for a 30 s call and 640 KB (its cap) for a call of seven minutes or more, and a
100,000-sample window for the process. Counts in fixed bins hold the same percentiles to
within a bin, in 3.8 KB whatever the length of the call, and merge by adding.
"""

from __future__ import annotations

from array import array

# (upper end in ms, bin width in ms): a steady pace is late by fractions of a millisecond,
# a stall by tens or hundreds; past the last tier one bin holds the rest (the max is exact).
TIERS = ((10.0, 0.1), (200.0, 1.0), (2000.0, 10.0))


def _layout() -> tuple[list[tuple[float, float, int]], int]:
    """(tier start in ms, bin width, the tier's first bin) for each tier; the bin count,
    the overflow bin included."""
    starts: list[tuple[float, float, int]] = []
    low, first = 0.0, 0
    for high, width in TIERS:
        starts.append((low, width, first))
        first += round((high - low) / width)
        low = high
    return starts, first + 1


_STARTS, _BINS = _layout()
_FINE_HIGH, _FINE_WIDTH = TIERS[0]


def _bin(ms: float) -> int:
    if ms < _FINE_HIGH:  # nearly every chunk: one comparison
        return max(0, int(ms / _FINE_WIDTH))
    for low, width, first in reversed(_STARTS):
        if ms >= low:
            return min(_BINS - 1, first + int((ms - low) / width))
    return 0  # negative: counted as on time


def _upper_edge(index: int) -> float:
    if index == _BINS - 1:
        return float("inf")  # the overflow bin: the caller takes the exact max
    for low, width, first in reversed(_STARTS):
        if index >= first:
            return low + (index - first + 1) * width
    return 0.0


class Histogram:
    def __init__(self) -> None:
        self._counts = array("Q", bytes(8 * _BINS))  # 64-bit: a replica runs for months
        self.count = 0
        self.max = 0.0

    def add(self, ms: float) -> None:
        self._counts[_bin(ms)] += 1
        self.count += 1
        if ms > self.max:
            self.max = ms

    def merge(self, other: Histogram) -> None:
        counts = self._counts
        for index, n in enumerate(other._counts):
            if n:
                counts[index] += n
        self.count += other.count
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float:
        """The value `q` % of the samples are at or below, to within a bin (its upper edge,
        never above the largest sample); 0 with no samples."""
        if not self.count:
            return 0.0
        rank = max(1, -(-self.count * q // 100))  # ceil, at least the first sample
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                return min(_upper_edge(index), self.max)
        return self.max

    def summary(self) -> dict[str, float]:
        return {
            "count": self.count,
            "p50": self.percentile(50),
            "p99": self.percentile(99),
            "max": self.max,
        }
