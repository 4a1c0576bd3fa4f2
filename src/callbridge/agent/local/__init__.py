"""The offline agent: Silero VAD, Whisper, a dialog brain and a Piper voice, all local."""
