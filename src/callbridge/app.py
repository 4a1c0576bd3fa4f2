"""The FastAPI application: ACS routes, health and stats, wired to one AcsEdge."""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from callbridge import __version__
from callbridge.agent.backends import AgentRuntime, agent_runtime
from callbridge.api.records import Records
from callbridge.config import Settings
from callbridge.telephony.acs.acs_jwt import AcsJwtVerifier
from callbridge.telephony.acs.call_tokens import CallTokens
from callbridge.telephony.acs.control import AcsCallControl, CallControl
from callbridge.telephony.acs.edge import AcsEdge
from callbridge.telephony.acs.routes import acs_router
from callbridge.telephony.browser.edge import BrowserEdge
from callbridge.telephony.browser.routes import browser_phone_router
from callbridge.web.routes import console_router


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def create_app(
    settings: Settings,
    *,
    control: CallControl | None = None,
    agent: AgentRuntime | None = None,
) -> FastAPI:
    """Raises ValueError or ProfileError for a bad agent setting or profile."""
    runtime = agent or agent_runtime(settings.agent, settings.profile)
    edge = AcsEdge(
        settings,
        control or AcsCallControl(settings.acs),
        runtime.factory,
        CallTokens(settings.signing_key),
        tools_for=runtime.tools_for,
        policy_for=runtime.policy_for,
        ivr_for=runtime.ivr_for,
    )
    # Call records, live console feed and metrics: observers of every call.
    records = Records(settings)
    edge.observers.extend(records.observers)
    # The browser phone's calls take the same path as ACS calls, with the same observers
    # (the very list, so observers added to edge.observers see browser calls too).
    browser = BrowserEdge(
        settings,
        runtime.factory,
        admin_token=settings.admin_token,
        tools_for=runtime.tools_for,
        observers=edge.observers,
        active_elsewhere=lambda: len(edge.calls),
        policy_for=runtime.policy_for,
    )
    verifier = (
        AcsJwtVerifier(settings.acs_jwks_url, settings.acs_jwt_issuer, settings.acs_jwt_audience)
        if settings.acs_jwks_url and settings.acs_jwt_audience
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await records.start()  # creates or upgrades the schema; fails start if it cannot
        # Models load before the first call is accepted, so no caller waits for them.
        if runtime.warm_up is not None:
            await runtime.warm_up()
        yield
        await browser.shutdown()
        await edge.shutdown()
        await records.stop()  # after the calls: their ends are written, nothing is lost

    app = FastAPI(title="callbridge", version=__version__, lifespan=lifespan)
    app.state.edge = edge
    app.include_router(acs_router(edge, verifier))
    records.install(app)  # /api/..., /metrics
    app.state.browser_edge = browser
    app.include_router(browser_phone_router(browser))
    app.include_router(console_router())

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {
            "status": "ok",
            "active_calls": len(edge.calls),
            "max_calls": settings.max_calls,
            "agent": settings.agent,
        }

    @app.get("/stats")
    async def stats() -> dict[str, object]:
        """Counters and outbound pacing figures (used by bench/bridge_load.py)."""
        lateness = [v for s in edge.finished for v in s.stats.lateness_ms]
        return {
            **edge.counters,
            "active_calls": len(edge.calls),
            "finished_calls": len(edge.finished),
            "frames_in": sum(s.stats.frames_in for s in edge.finished),
            "chunks_out": sum(s.stats.chunks_out for s in edge.finished),
            "bytes_out": sum(s.stats.bytes_out for s in edge.finished),
            "barge_ins": sum(s.stats.barge_ins for s in edge.finished),
            "pacing_lateness_ms": {
                "count": len(lateness),
                "p50": _percentile(lateness, 50),
                "p99": _percentile(lateness, 99),
                "max": max(lateness, default=0.0),
            },
        }

    return app
