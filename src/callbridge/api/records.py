"""Records: the store, its writer, post-call analytics, the live hub and the metrics, wired
for one app. `create_app` makes one, adds its observers to the edge, starts it in the
lifespan and installs its routes:

    records = Records(settings)
    edge.observers.extend(records.observers)
    records.install(app)            # /api/..., /metrics, app.state.admin_auth
    await records.start() ... await records.stop()   # in the lifespan, around the calls

After `start()`, `records.orphans` lists the calls an earlier run left without an end (a
crash, a kill), each with its ACS call connection id when it was answered, so that they
can still be hung up.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from callbridge.analytics.pii import redact, redact_object
from callbridge.analytics.post_call import PostCallAnalyzer
from callbridge.analytics.summary import LlmSummarizer, Summarizer
from callbridge.api.auth import AdminAuth
from callbridge.api.calls import calls_router
from callbridge.api.live import LiveHub, live_router
from callbridge.call.observer import CallObserver
from callbridge.config import Settings
from callbridge.metrics import CallMetrics, metrics_router
from callbridge.profile import LlmSettings
from callbridge.store.base import CallStore, HeldElsewhere
from callbridge.store.records import OrphanCall
from callbridge.store.sql import SqlCallStore, StoreError, normalize_url
from callbridge.store.writer import RecordWriter

log = logging.getLogger(__name__)


def profile_info(settings: Settings) -> tuple[str, LlmSettings | None]:
    """The name calls are recorded under (the profile's `name`; the agent's name for
    agents without a profile) and the LLM the profile configures, if any."""
    if settings.agent != "local":
        return settings.agent, None
    from callbridge.lines.catalogue import default_catalogue
    from callbridge.profile import ProfileError, load_profile

    try:
        profile = load_profile(settings.profile, default_catalogue())
    except ProfileError as exc:  # the agent runtime has reported it already
        log.warning("recording calls under the profile's file name: %s", exc)
        return Path(settings.profile).stem, None
    # An LLM summary only for a profile whose agent talks through that LLM: the demo
    # profile names a model for its optional llm brain but does not use it.
    return profile.name, profile.llm if profile.brain == "llm" and profile.llm.model else None


def spill_path(database_url: str) -> Path:
    """Where writes the database would not take at shutdown wait for the next start:
    next to a SQLite file, else in ./var."""
    try:
        url = make_url(normalize_url(database_url))
    except ArgumentError:  # the store reports a bad URL when it opens, with advice
        url = None
    if url and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(str(url.database))
        return db.with_name(db.name + ".unwritten.jsonl")
    return Path("var") / "unwritten-records.jsonl"


def journal_path(database_url: str) -> Path:
    """Where record writes wait on disk until the database has them: next to a SQLite
    file, else in ./var, one directory per database (a journal belongs to its database)."""
    try:
        url = make_url(normalize_url(database_url))
    except ArgumentError:
        url = None
    if url and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(str(url.database))
        return db.with_name(db.name + ".write-journal")
    name = f"{url.host or 'local'}-{url.port or ''}-{url.database or ''}" if url else "default"
    return Path("var") / "write-journal" / re.sub(r"[^A-Za-z0-9._-]", "_", name)


class Records:
    def __init__(
        self,
        settings: Settings,
        *,
        store: CallStore | None = None,
        summarizer: Summarizer | None = None,
        analysis_delay_s: float = 2.0,
        upgrade_schema_in_child: bool = False,
    ) -> None:
        profile, llm = profile_info(settings)
        self.settings = settings
        self.store: CallStore = store or SqlCallStore(
            settings.database_url, upgrade_in_child=upgrade_schema_in_child
        )
        self.metrics = CallMetrics()
        self.writer = RecordWriter(
            self.store,
            profile=profile,
            spill_path=spill_path(settings.database_url),
            journal_dir=journal_path(settings.database_url),
            on_error=lambda: self.metrics.error("store_write"),
        )
        if settings.pii_redaction:
            self.writer.redact_text, self.writer.redact_json = redact, redact_object
        if summarizer is None and llm is not None:
            summarizer = LlmSummarizer(llm)
        self.analyzer = PostCallAnalyzer(
            self.store,
            self.writer,
            redaction=settings.pii_redaction,
            summarizer=summarizer,
            delay_s=analysis_delay_s,
            on_error=lambda: self.metrics.error("analytics"),
        )
        self.live = LiveHub(profile, redaction=settings.pii_redaction)
        self.auth = AdminAuth(settings.admin_token)
        # Calls an earlier run left without an end, found at `start()` (after the replay of
        # its journal), with their call connection ids: to be hung up.
        self.orphans: list[OrphanCall] = []

    @property
    def observers(self) -> list[CallObserver]:
        return [self.writer, self.live, self.metrics]

    def install(self, app: FastAPI) -> None:
        app.state.records = self
        app.state.admin_auth = self.auth
        app.include_router(calls_router(self.store, Path(self.settings.recordings_dir)))
        app.include_router(live_router(self.live))
        app.include_router(metrics_router(self.metrics))
        app.add_exception_handler(RequestValidationError, _validation_error)

    async def start(self, held_elsewhere: HeldElsewhere | None = None) -> None:
        """Create or upgrade the schema, replay what an earlier run left in the journal, find
        the calls it left without an end (`orphans`; not those `held_elsewhere` says another
        live replica holds) and start recording; raises StoreError."""
        replay = await self.writer.recover()
        try:
            self.orphans = await self.store.open(replay=replay, held_elsewhere=held_elsewhere)
        except StoreError as exc:
            log.error("%s", exc)
            await self.writer.close()  # releases the journal; its files wait for next time
            raise
        await self.writer.start(recovered_written=True)
        await self.analyzer.start()
        if not self.auth.enabled:
            log.warning("records API and console disabled: CALLBRIDGE_ADMIN_TOKEN is not set")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """After the calls have ended: write every record, run pending analyses briefly,
        write those too, close the database."""
        self.live.close()
        # At most `timeout_s` in all, however slow or absent the database is: a stop must
        # not hang (what is not written by then goes to the spill file).
        try:
            # The ends of the calls just stopped must be in before analytics looks.
            await asyncio.wait_for(self.writer.flush(), timeout_s * 0.3)
        except TimeoutError:
            pass
        await self.analyzer.close(grace_s=timeout_s * 0.3)
        await self.writer.close(timeout_s * 0.4)
        await self.store.close()


async def _validation_error(request: Request, exc: Exception) -> Response:
    """Under /api, a bad parameter gets one readable sentence, like every other API error;
    elsewhere FastAPI's usual answer."""
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith("/api/"):
        return await request_validation_exception_handler(request, exc)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
        value = f" (got {err['input']!r})" if isinstance(err.get("input"), str | int) else ""
        problems.append(f"{where}: {err.get('msg', 'invalid')}{value}")
    return JSONResponse({"detail": "; ".join(problems)}, status_code=422)
