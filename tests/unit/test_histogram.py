"""The fixed-size millisecond histogram behind the pacing lateness figures (core/histogram.py)."""

from __future__ import annotations

import math
import random

from callbridge.core.histogram import Histogram


def test_percentiles_match_the_samples_to_within_a_bin() -> None:
    rng = random.Random(7)
    # Mostly on time, some late by a few ms, a rare stall: what pacing lateness looks like.
    samples = [rng.expovariate(2.0) for _ in range(5000)]
    samples += [rng.uniform(10, 150) for _ in range(60)] + [340.0, 1234.5, 5000.0]
    hist = Histogram()
    for ms in samples:
        hist.add(ms)
    ordered = sorted(samples)

    def nearest_rank(q: int) -> float:
        return ordered[math.ceil(len(ordered) * q / 100) - 1]

    assert hist.count == len(samples) and hist.max == 5000.0
    # The upper edge of the sample's bin: 0.1 ms wide below 10 ms, 1 ms up to 200 ms.
    assert 0 <= hist.percentile(50) - nearest_rank(50) <= 0.1
    assert 0 <= hist.percentile(99) - nearest_rank(99) <= 1.0
    assert hist.percentile(100) == 5000.0  # past the last tier: the exact maximum


def test_merging_adds_the_counts_and_keeps_the_max() -> None:
    a, b = Histogram(), Histogram()
    for ms in (0.2, 0.4, 30.0):
        a.add(ms)
    for ms in (0.3, 250.0):
        b.add(ms)
    a.merge(b)
    summary = a.summary()
    assert summary["count"] == 5 and summary["max"] == 250.0 and summary["p99"] == 250.0
    assert 0.4 <= summary["p50"] <= 0.5  # the sample 0.4's bin


def test_an_empty_histogram_reports_zeros_and_a_negative_value_counts_as_on_time() -> None:
    hist = Histogram()
    assert hist.summary() == {"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    hist.add(-0.5)
    assert hist.percentile(50) == 0.0 and hist.count == 1
