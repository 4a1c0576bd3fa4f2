"""Cloud speech-to-speech agents: Azure Voice Live and OpenAI Realtime.

One `RealtimeAgent` (agent.py: the AgentSession calls and the connection, on top of
server_events.py: the service's events, barge-in, audio to the bridge) holds everything the
two services share: audio in and out, response and item bookkeeping (ledger.py), barge-in
with truncation, tool round trips, the custom-voice (hybrid) mode and session continuity.
What every call of a backend shares is its `RealtimeSetup` (setup.py). What differs is
small and lives beside it: the wire dialect (dialects.py), the SDK connection (voicelive.py,
openai_rt.py) and the settings. The hand-over to the offline agent when the model is gone
for good is not here: a `FallbackAgent` (agent/fallback.py) wraps the realtime agent.

This package stays import-light on purpose: the SDKs load only when a backend is built.
"""
