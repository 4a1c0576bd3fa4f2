"""The FastAPI application: ACS routes, health and stats, wired to one AcsEdge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from callbridge import __version__, telemetry
from callbridge.api.live_relay import LiveRelay
from callbridge.api.records import Records
from callbridge.call.registry import CallRegistry
from callbridge.config import Settings
from callbridge.lines.switchboard import Switchboard, build_switchboard
from callbridge.pending_tasks import pending_tasks
from callbridge.shared.setup import check_shared_state, shared_state
from callbridge.telephony.acs.acs_jwt import AcsJwtVerifier
from callbridge.telephony.acs.call_tokens import CallTokens
from callbridge.telephony.acs.control import AcsCallControl, CallControl
from callbridge.telephony.acs.edge import AcsEdge
from callbridge.telephony.acs.routes import acs_router
from callbridge.telephony.browser.edge import BrowserEdge
from callbridge.telephony.browser.routes import browser_phone_router
from callbridge.web.routes import console_router

log = logging.getLogger(__name__)

STEP_S = 15.0  # the longest any one step of the shutdown may take


async def _bounded(what: str, step: Coroutine[object, object, object], within_s: float) -> None:
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=within_s)
    if done:
        task.result()
        return
    log.error("stopping: %s took over %g s; going on without it", what, within_s)
    for line in pending_tasks():  # before the cancel: where the step itself was stuck
        log.error("stopping: pending %s", line)
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)


def create_app(
    settings: Settings,
    *,
    control: CallControl | None = None,
    lines: Switchboard | None = None,
    upgrade_schema_in_child: bool = False,
) -> FastAPI:
    """Raises ValueError or ProfileError for a bad agent setting or profile.
    `upgrade_schema_in_child`: a long-lived service (`callbridge serve`) upgrades a records
    schema that is behind in a child process, so it never holds Alembic (store/sql.py)."""
    switchboard = lines or build_switchboard(settings.agent, settings.profile)
    # One registry for every edge's calls: one per-replica cap, totals of every call.
    registry = CallRegistry(settings.max_calls)
    shared = shared_state(settings)
    edge = AcsEdge(
        settings,
        control or AcsCallControl(settings.acs),
        switchboard,
        CallTokens(settings.signing_key),
        registry,
        shared,
    )
    # Call records, live console feed and metrics: observers of every call.
    records = Records(settings, upgrade_schema_in_child=upgrade_schema_in_child)
    edge.observers.extend(records.observers)
    # OpenTelemetry, when APPLICATIONINSIGHTS_CONNECTION_STRING or OTEL_EXPORTER_OTLP_ENDPOINT
    # is set (docs/telemetry.md): one more observer; None (nothing loaded) otherwise.
    otel = telemetry.from_env(agent=settings.agent)
    if otel is not None:
        edge.observers.append(otel.observer)
    # The browser phone's calls take the same path as ACS calls, with the same observers
    # (the very list, so observers added to edge.observers see browser calls too).
    browser = BrowserEdge(
        settings, switchboard, registry, admin_token=settings.admin_token, observers=edge.observers
    )
    # With several replicas, every replica's console shows every call (docs/scale-out.md).
    relay = LiveRelay(records.live, shared) if edge.replicas is not None else None
    verifier = (
        AcsJwtVerifier(settings.acs_jwks_url, settings.acs_jwt_issuer, settings.acs_jwt_audience)
        if settings.acs_jwks_url and settings.acs_jwt_audience
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.redis_url:  # a replica of many must reach the state they share
            await check_shared_state(shared, settings.redis_url)
        edge.start()
        if relay is not None:
            relay.start()
        # Creates or upgrades the schema (fails the start if it cannot) and marks the calls
        # a crash left without an end incomplete; other live replicas' calls are theirs.
        await records.start(edge.held_elsewhere if edge.replicas is not None else None)
        # Calls a crash left live: hung up at once, so no caller waits in dead air.
        edge.hang_up_left_behind(
            [(o.call_id, o.connection_id) for o in records.orphans if o.connection_id]
        )
        # Models load before the first call is accepted, so no caller waits for them.
        await switchboard.prepare(settings.sample_rate)
        if otel is not None:
            otel.attach_logging()  # after the service's logging is set up
        yield
        # Each step bounded, and named in the log if it runs out: the process must exit in
        # bounded time whatever a peer does (records are journaled, so nothing is lost).
        await _bounded("ending browser calls", browser.shutdown(), STEP_S)
        await _bounded("ending ACS calls", edge.shutdown(), STEP_S)
        if relay is not None:  # the calls' last events, to the other replicas' consoles
            await _bounded("closing the live feed", relay.stop(), STEP_S)
        # After the calls: their ends are written, nothing is lost.
        await _bounded("flushing the records", records.stop(), STEP_S)
        if otel is not None:  # flushes the last calls' telemetry
            await _bounded("flushing telemetry", asyncio.to_thread(otel.shutdown), STEP_S)
        await _bounded("closing the shared state", shared.close(), STEP_S)

    app = FastAPI(title="callbridge", version=__version__, lifespan=lifespan)
    app.state.edge = edge
    app.state.telemetry = otel
    app.include_router(acs_router(edge, verifier))
    records.install(app)  # /api/..., /metrics
    app.state.browser_edge = browser
    app.include_router(browser_phone_router(browser))
    app.include_router(console_router())

    async def drain() -> None:
        """SIGTERM: stop taking calls (readiness fails), tell each caller, end the calls,
        then let the server stop; the lifespan's shutdown flushes the records."""
        registry.draining = True  # readiness fails from now on
        if edge.replicas is not None:  # other replicas take the calls on (docs/scale-out.md)
            await edge.replicas.hand_over_all(settle_s=settings.drain_settle_s)
            await registry.wait_empty(settings.drain_settle_s + 5.0)
        late = await registry.drain(settings.drain_timeout_s)
        if edge.replicas is not None:
            await edge.replicas.going()
        if late:
            log.warning("%d call(s) ended without their notice at the drain bound", late)

    app.state.drain = drain

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: a balancer sends no new calls to a replica that is draining."""
        if registry.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {
            "status": "ok",
            "active_calls": len(registry.calls),
            "max_calls": settings.max_calls,
            "agent": settings.agent,
        }

    @app.get("/stats")
    async def stats() -> dict[str, object]:
        """Counters and outbound pacing figures (used by bench/bridge_load.py)."""
        totals = registry.totals
        return {
            **edge.counters,
            "browser_calls": browser.counters["calls"],
            "active_calls": len(registry.calls),
            "finished_calls": totals.calls,
            "frames_in": totals.frames_in,
            "chunks_out": totals.chunks_out,
            "bytes_out": totals.bytes_out,
            "barge_ins": totals.barge_ins,
            "replies": totals.replies,
            "pacing_lateness_ms": totals.lateness_summary(),
        }

    return app
