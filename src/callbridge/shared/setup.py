"""The shared state a replica is configured for, and the check at its start."""

from __future__ import annotations

from callbridge.config import Settings
from callbridge.shared.state import MemoryState, SharedState, SharedStateError


class SharedStateUnavailable(RuntimeError):
    """A replica configured for Redis cannot reach it at start."""


def shared_state(settings: Settings) -> SharedState:
    """Redis when `CALLBRIDGE_REDIS_URL` is set (nothing is connected yet), else memory."""
    if not settings.redis_url:
        return MemoryState(settings.replica_id)
    from callbridge.shared.redis_state import RedisState

    return RedisState(settings.redis_url, settings.replica_id, settings.redis_prefix)


async def check_shared_state(shared: SharedState, url: str) -> None:
    """At start, Redis must answer: a replica that cannot see the others' state would
    answer their calls twice and honour spent tokens. (Later outages are ridden out:
    docs/scale-out.md.)"""
    ping = getattr(shared, "ping", None)
    if ping is None:
        return
    try:
        await ping()
    except SharedStateError as exc:
        raise SharedStateUnavailable(
            f"CALLBRIDGE_REDIS_URL={_safe(url)} cannot be reached: {exc}"
        ) from None


def _safe(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}" if user else f"{scheme}{sep}***@{host}"
