"""OpenTelemetry traces, metrics and logs of the calls (docs/telemetry.md).

On when `APPLICATIONINSIGHTS_CONNECTION_STRING` (Azure Monitor) or
`OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP over HTTP) is set; otherwise `from_env` returns None
and nothing of the OpenTelemetry SDK is imported. This module imports nothing of it either:
the SDK is loaded by `callbridge.telemetry.setup` only when telemetry is on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callbridge.telemetry.setup import Telemetry

AZURE_MONITOR_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
OTLP_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"

__all__ = ["AZURE_MONITOR_ENV", "OTLP_ENV", "enabled", "from_env"]


def enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get(AZURE_MONITOR_ENV, "").strip() or env.get(OTLP_ENV, "").strip())


def from_env(*, agent: str, env: Mapping[str, str] | None = None) -> Telemetry | None:
    """The exporters the environment asks for, or None (telemetry off, nothing loaded).
    `agent`: the backend (`CALLBRIDGE_AGENT`), which says where turn timings come from."""
    env = os.environ if env is None else env
    if not enabled(env):
        return None
    try:
        from callbridge.telemetry.setup import start_telemetry
    except ImportError as exc:  # a ValueError is reported as a configuration error
        raise ValueError(
            f"{AZURE_MONITOR_ENV} or {OTLP_ENV} is set, but OpenTelemetry is not installed"
            f" ({exc.name}): pip install 'callbridge[telemetry]'"
        ) from exc
    return start_telemetry(env, agent=agent)
