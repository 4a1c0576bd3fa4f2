"""What every layer may import: a call's identity, its policy, tools, end reasons, a clock.

This package imports nothing of callbridge's own (import-linter checks it in `make test`),
so the store, the agents and the edges can all speak of a call without depending on each
other. See docs/architecture.md for the layers.
"""
