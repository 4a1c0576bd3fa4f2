"""PCM audio: frames, stateful resampling, outbound pacing and played-audio accounting."""
