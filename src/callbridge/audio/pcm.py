"""16-bit little-endian mono PCM arithmetic."""

from __future__ import annotations

BYTES_PER_SAMPLE = 2


def bytes_per_ms(sample_rate: int) -> float:
    return sample_rate * BYTES_PER_SAMPLE / 1000.0


def frame_bytes(sample_rate: int, ms: int) -> int:
    return sample_rate * ms // 1000 * BYTES_PER_SAMPLE


def duration_ms(n_bytes: int, sample_rate: int) -> float:
    return n_bytes / bytes_per_ms(sample_rate)


def silence(n_bytes: int) -> bytes:
    return bytes(n_bytes - n_bytes % 2)
