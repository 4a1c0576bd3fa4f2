"""Cloud speech-to-speech agents: Azure Voice Live and OpenAI Realtime.

One `RealtimeAgent` (agent.py) holds everything the two services share: audio in and out,
response and item bookkeeping, barge-in with truncation, tool round trips, the custom-voice
(hybrid) mode and session continuity. What differs is small and lives beside it: the wire
dialect (dialects.py), the SDK connection (voicelive.py, openai_rt.py) and the settings.

This package stays import-light on purpose: `callbridge.profile` imports `options` from it,
and the SDKs load only when a backend is built (runtime.py).
"""
