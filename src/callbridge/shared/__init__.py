"""Call state shared by every replica: in memory for one process, on Redis for many
(`CALLBRIDGE_REDIS_URL`; docs/scale-out.md)."""

from callbridge.shared.state import MemoryState, SharedState, SharedStateError

__all__ = ["MemoryState", "SharedState", "SharedStateError"]
