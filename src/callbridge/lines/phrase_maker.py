"""`python -m callbridge.lines.phrase_maker`: say a line's fixed phrases in its voice and
exit (status 1 and the reason on stderr if it cannot).

A realtime replica runs this once at start (lines/voices.py, `LineVoice.prepare`), so its
apology and goodbye play from memory while Piper and onnxruntime never enter the service
(docs/architecture.md, "Memory"). The request comes as JSON on stdin (`voice_path`,
`length_scale`, `texts`, `rate`, `folder`); the audio of text *i* goes to `folder/i.pcm`,
16-bit mono PCM at `rate`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def say_all(request: dict[str, Any]) -> None:
    from callbridge.agent.local.models import get_tts

    tts = get_tts(request["voice_path"])
    if request["length_scale"] != 1.0:
        tts = tts.with_options(length_scale=request["length_scale"])
    folder = Path(request["folder"])
    for i, text in enumerate(request["texts"]):
        with open(folder / f"{i}.pcm", "wb") as out:
            for pcm in tts.sentences(text, request["rate"]):
                out.write(pcm)


def main() -> int:
    try:
        say_all(json.load(sys.stdin))
    except Exception as exc:  # the service logs it and says the phrases when needed
        print(f"callbridge: cannot say the line's phrases: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
