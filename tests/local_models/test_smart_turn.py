"""Smart Turn v3 run with onnxruntime: our features match pipecat's, and the model tells a
finished question from a sentence left hanging (real model, synthesised speech)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from callbridge.agent.local import models
from callbridge.agent.local.setup import TurnSettings
from callbridge.agent.local.turn_features import FRAMES, N_MELS, WINDOW_SAMPLES, log_mel
from callbridge.agent.local.turn_model import default_model_path
from tests.local_models.audio import silence, speech16k


def _pipecat_features() -> object:
    """pipecat's own numpy feature code, loaded from the wheel's file (pipecat itself is
    never imported: its package needs dependencies we do not install)."""
    path = default_model_path().parents[1] / "_whisper_features.py"
    if not path.is_file():
        pytest.skip("pipecat's feature code is not in this pipecat-ai wheel")
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute_whisper_log_mel_features


@pytest.mark.parametrize("seconds", [0.5, 3.0, 8.0, 11.0])
def test_features_match_pipecats(seconds: float) -> None:
    reference = _pipecat_features()
    rng = np.random.default_rng(7)
    audio = (rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)
    # pipecat pads at the front (or keeps the last 8 s) before its features.
    fitted = (
        audio[-WINDOW_SAMPLES:]
        if audio.size >= WINDOW_SAMPLES
        else np.pad(audio, (WINDOW_SAMPLES - audio.size, 0))
    )
    ours = log_mel(audio)
    assert ours.shape == (N_MELS, FRAMES) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference(fitted), atol=1e-5)  # type: ignore[operator]


def _p(*pcm: bytes) -> float:
    model = models.get_turn_model()
    assert model is not None, models.turn_model_missing()
    return model.probability(b"".join(pcm))


FINISHED = [
    "What are your opening hours?",
    "Where is my order?",
    "Can I speak to someone, please?",
    "How much does delivery cost?",
    "Could you check my order?",
]
HANGING = [
    "I would like to",
    "My order number is",
    "I want to book a table for",
    "Can you tell me about the",
    "I was wondering if",
    "The problem is that",
]


def test_finished_questions_score_high_and_hanging_sentences_lower() -> None:
    # The scenario caller's voice (pitch 1.15). Piper reads any text as a whole sentence,
    # falling at the end, so single synthesised "hanging" sentences are a coin toss for
    # the model (one wheel scored "I would like to" 0.44, another 0.72) -- hence the
    # agent's checks on the words too (end_of_turn.dangles, the brain's hint). What the
    # agent relies on the model for: a finished question is recognised at once (answered
    # without the longer wait), and hanging speech scores lower on the whole.
    def scores(texts: list[str]) -> list[float]:
        return [_p(silence(300), speech16k(t, pitch=1.15), silence(100)) for t in texts]

    done, hanging = scores(FINISHED), scores(HANGING)
    # Clear of the default threshold: the agent answers every one at once.
    assert min(done) > TurnSettings().complete_threshold + 0.3, dict(
        zip(FINISHED, done, strict=True)
    )
    assert sum(hanging) / len(hanging) < sum(done) / len(done) - 0.3, dict(
        zip(HANGING, hanging, strict=True)
    )


def test_the_model_file_comes_from_the_pipecat_wheel() -> None:
    path = default_model_path()
    assert path.suffix == ".onnx" and "smart-turn-v3" in path.name
    assert path.parts[-6:-1] == ("pipecat", "audio", "turn", "smart_turn", "data")
