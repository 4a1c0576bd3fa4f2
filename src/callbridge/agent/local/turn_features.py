"""Whisper-style log-mel features, as Smart Turn v3 expects them (numpy only).

Smart Turn v3 is a Whisper-tiny encoder with a classifier head; its input is the log-mel
spectrogram Hugging Face's ``WhisperFeatureExtractor(chunk_length=8)`` computes for exactly
8 s of 16 kHz audio: the waveform normalised to zero mean and unit variance, a centred
400-sample STFT (periodic Hann window, reflect padding) every 160 samples, the power
spectrum through 80 Slaney mel filters (0-8 kHz), log10 floored at 1e-10, the last frame
dropped, clamped to 8 below the maximum, then ``(x + 4) / 4``. The audio is left-padded
with zeros to 8 s (the turn's end stays at the end of the window).

References: https://github.com/pipecat-ai/smart-turn (the model, BSD-2) and
https://github.com/huggingface/transformers/blob/main/src/transformers/models/whisper/feature_extraction_whisper.py
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

SAMPLE_RATE: Final = 16_000
WINDOW_S: Final = 8
WINDOW_SAMPLES: Final = SAMPLE_RATE * WINDOW_S
N_FFT: Final = 400
HOP: Final = 160
N_MELS: Final = 80
FRAMES: Final = WINDOW_SAMPLES // HOP  # 800

Floats = npt.NDArray[np.float64]


def _hz_to_mel(hz: Floats) -> Floats:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    mel = 3.0 * hz / 200.0
    log_part = hz >= 1000.0
    mel[log_part] = 15.0 + np.log(hz[log_part] / 1000.0) * (27.0 / np.log(6.4))
    return mel


def _mel_to_hz(mel: Floats) -> Floats:
    hz = 200.0 * mel / 3.0
    log_part = mel >= 15.0
    hz[log_part] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_part] - 15.0))
    return hz


def mel_filters() -> Floats:
    """The ``(N_FFT // 2 + 1, N_MELS)`` Slaney-normalised triangular filter bank."""
    bins = N_FFT // 2 + 1
    edges_mel = np.linspace(
        _hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], N_MELS + 2
    )
    edges = _mel_to_hz(edges_mel)
    fft_hz = np.linspace(0, SAMPLE_RATE // 2, bins)
    slopes = edges[None, :] - fft_hz[:, None]
    widths = np.diff(edges)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    return np.asarray(bank * (2.0 / (edges[2:] - edges[:-2]))[None, :], dtype=np.float64)


_FILTERS_T: Final = np.ascontiguousarray(mel_filters().T)
_HANN: Final = np.hanning(N_FFT + 1)[:-1]  # periodic, like torch.hann_window


def fit_window(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The last 8 s of ``audio``, left-padded with zeros to exactly 8 s."""
    if audio.size >= WINDOW_SAMPLES:
        return audio[-WINDOW_SAMPLES:]
    return np.concatenate([np.zeros(WINDOW_SAMPLES - audio.size, np.float32), audio])


def log_mel(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``(N_MELS, FRAMES)`` features of 8 s of 16 kHz float audio (see the module doc)."""
    x = fit_window(np.asarray(audio, dtype=np.float32))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=-1)) ** 2  # (FRAMES + 1, bins)
    mel = np.log10(np.maximum(1e-10, _FILTERS_T @ power.T))[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    out: npt.NDArray[np.float32] = ((mel + 4.0) / 4.0).astype(np.float32)
    return out
