"""Test calls with a script: a caller who speaks, keys digits, interrupts and hangs up,
and what the agent's replies, tools and the call's end must be."""
