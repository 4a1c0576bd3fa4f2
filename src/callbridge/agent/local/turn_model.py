"""Semantic end of turn with Smart Turn v3 (ONNX), run directly with onnxruntime.

Smart Turn (https://github.com/pipecat-ai/smart-turn, BSD-2) looks at the last up-to-8 s of
the caller's audio and says how likely it is that they have finished their turn, from the
words and the prosody: "my order number is…" (falling short, level pitch) scores low,
"what are your opening hours?" scores high. The model file ships in the ``pipecat-ai``
wheel (``pipecat/audio/turn/smart_turn/data/smart-turn-v3*.onnx``); it is located with
``importlib.util.find_spec`` and pipecat is never imported (the Makefile installs the wheel
without its dependencies, as for Silero VAD).

One decision is ~10 ms of features (`turn_features.log_mel`) and ~30-50 ms of inference on
one core. The session is shared by every call (``InferenceSession.run`` is thread-safe) and
runs in its own one-thread executor (`models.turn_executor`), so a decision never waits
behind a transcription or a sentence of synthesis.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from callbridge.agent.local.turn_features import SAMPLE_RATE, log_mel

_DATA: Final = ("audio", "turn", "smart_turn", "data")
_INT16_SCALE: Final = np.float32(1.0 / 32768.0)


class TurnModelError(RuntimeError):
    """The Smart Turn model could not be found or does not look like the expected model."""


def default_model_path() -> Path:
    """The newest ``smart-turn-v3*.onnx`` of the installed pipecat-ai wheel (CPU build
    preferred), found without importing pipecat."""
    spec = importlib.util.find_spec("pipecat")  # does not execute the package
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        found = sorted(Path(location).joinpath(*_DATA).glob("smart-turn-v3*.onnx"))
        cpu = [p for p in found if "cpu" in p.name]
        if cpu or found:
            return (cpu or found)[-1]
    raise TurnModelError(
        "Smart Turn model not found: install the pipecat-ai wheel "
        "(pip install --no-deps pipecat-ai) or use turn.end_of_turn: silence"
    )


def pcm_to_float(pcm16k: bytes) -> npt.NDArray[np.float32]:
    usable = len(pcm16k) - len(pcm16k) % 2
    return np.frombuffer(pcm16k[:usable], dtype="<i2").astype(np.float32) * _INT16_SCALE


class SmartTurnModel:
    """The shared ONNX session. Create one per process (`models.get_turn_model`)."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        self.path = path or default_model_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session: Any = ort.InferenceSession(
            str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in self.session.get_inputs()]
        if names != ["input_features"]:
            raise TurnModelError(f"{self.path}: unexpected inputs {names}; expected Smart Turn v3")

    def probability(self, pcm16k: bytes) -> float:
        """How likely the turn that ends with this audio (16 kHz PCM) is complete. BLOCKING."""
        return self.probabilities([pcm16k])[0]

    def probabilities(self, utterances: Sequence[bytes]) -> list[float]:
        """One decision per utterance, as one batch. BLOCKING."""
        if not utterances:
            return []
        features = np.stack([log_mel(pcm_to_float(pcm)) for pcm in utterances])
        (out,) = self.session.run(["logits"], {"input_features": features})
        # The exported model ends in a sigmoid: its "logits" output is a probability.
        return [float(v) for v in np.asarray(out).reshape(-1)]


def seconds(pcm16k: bytes) -> float:
    return len(pcm16k) / (2 * SAMPLE_RATE)
