"""The call store on SQLAlchemy's asyncio engine: a SQLite file by default, PostgreSQL by URL.

Nothing here blocks the event loop: aiosqlite runs SQLite in its own thread and asyncpg is
asynchronous. A batch of writes goes in one transaction, so a crash leaves either all of
it or none. Every write is idempotent (a call row is inserted once, an end is an update,
a child row carries its write's unique key), so the writer's journal can replay writes
that may already be in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from callbridge.core.child import failure, start_module
from callbridge.store import schema as t
from callbridge.store.base import HeldElsewhere
from callbridge.store.records import (
    INCOMPLETE_REASON,
    AnalyticsSaved,
    CallDetailRow,
    CallEnded,
    CallQuery,
    CallRow,
    CallStarted,
    EventAdded,
    EventRow,
    LatencyAdded,
    LatencyRow,
    OrphanCall,
    ToolRan,
    ToolRow,
    TranscriptAdded,
    TurnRow,
    Write,
    clean_text,
    clean_write,
)

log = logging.getLogger(__name__)

_REPLAY_BATCH = 500
# The child that upgrades the schema for `callbridge serve` (store/upgrade.py): where it
# finds the URL, and how long it may take (a big table under another replica's lock).
UPGRADE_URL_ENV = "CALLBRIDGE_UPGRADE_DATABASE_URL"
UPGRADE_TIMEOUT_S = 600.0


class StoreError(Exception):
    """The records database cannot be opened or migrated; the message says what to fix."""


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the database is busy, restarting or unreachable, not refusing the data."""
    if isinstance(exc, sa.exc.DBAPIError):
        return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or bool(
            exc.connection_invalidated
        )
    return isinstance(exc, OSError | TimeoutError | sa.exc.DisconnectionError)


def first_line(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0]


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite:///) and pick the
    asyncio driver callbridge ships with."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _dumps(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _loads_obj(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_value": value}


def records_engine(url_text: str) -> AsyncEngine:
    """The asyncio engine for a records database URL (normalized); raises StoreError."""
    try:
        url = make_url(url_text)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"CALLBRIDGE_DATABASE_URL is not a database URL: {exc}") from None
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            # Each pooled connection would get its own empty database.
            raise StoreError(
                "CALLBRIDGE_DATABASE_URL: an in-memory SQLite database cannot hold call "
                "records; name a file, e.g. sqlite+aiosqlite:///./var/callbridge.db"
            )
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # Wait for a lock held by another process (a second worker) instead of failing.
        kwargs["connect_args"] = {"timeout": 30}
    try:
        engine = create_async_engine(url, **kwargs)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StoreError(
            f"cannot use CALLBRIDGE_DATABASE_URL={safe_url(url_text)}: {exc}"
        ) from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class SqlCallStore:
    """The CallStore on SQLAlchemy (see callbridge.store.CallStore)."""

    def __init__(self, url: str, *, upgrade_in_child: bool = False) -> None:
        """`upgrade_in_child`: a schema that is behind is upgraded by a child process
        (`callbridge serve`: the service then never holds Alembic; see `_migrate`)."""
        self.url = normalize_url(url)
        self._upgrade_in_child = upgrade_in_child
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the call store is not open")
        return self._engine

    # --- lifecycle -------------------------------------------------------------------------
    async def open(
        self, replay: Sequence[Write] = (), held_elsewhere: HeldElsewhere | None = None
    ) -> list[OrphanCall]:
        """Create or upgrade the schema; apply `replay` (the writes an earlier run journaled
        and may not have committed); then mark the calls a stop of the service left without
        an end incomplete and return them (see `mark_incomplete`). Raises StoreError."""
        engine = records_engine(self.url)
        try:
            await _migrate(engine, self._upgrade_in_child)
        except (OSError, sa.exc.DBAPIError) as exc:
            await engine.dispose()
            raise StoreError(
                f"cannot open the call records database {safe_url(self.url)}: "
                f"{str(exc).splitlines()[0]}"
            ) from None
        self._engine = engine
        try:
            if replay:
                await self._replay(replay)
            # After the replay: an end that was only in the journal closes its call, a
            # start that was only there opens one the stop cut.
            orphans = await self.mark_incomplete(held_elsewhere)
        except (OSError, sa.exc.DBAPIError) as exc:
            self._engine = None
            await engine.dispose()
            raise StoreError(
                f"cannot replay the record writes an earlier run left into "
                f"{safe_url(self.url)} (they are kept for the next start): {first_line(exc)}"
            ) from None
        if orphans:
            log.warning("%d call(s) cut by a stop of the service marked incomplete", len(orphans))
        return orphans

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _replay(self, writes: Sequence[Write]) -> None:
        """Apply `writes` in batches; a write the database refuses outright is logged and
        skipped (as the writer does), a transient error raises."""
        for i in range(0, len(writes), _REPLAY_BATCH):
            batch = writes[i : i + _REPLAY_BATCH]
            try:
                await self.write(batch)
                continue
            except sa.exc.DBAPIError as exc:
                if is_transient(exc):
                    raise
            for w in batch:
                try:
                    await self.write([w])
                except sa.exc.DBAPIError as exc:
                    if is_transient(exc):
                        raise
                    log.error(
                        "the records database refused a replayed write, skipped: %r (%s)",
                        w,
                        first_line(exc),
                    )
        log.info("replayed %d record writes an earlier run left", len(writes))

    async def mark_incomplete(
        self, held_elsewhere: HeldElsewhere | None = None
    ) -> list[OrphanCall]:
        """Mark every call still active (its end never came: the service stopped during it)
        incomplete, and return those calls, oldest first, each with its call connection id
        (from its `answered` event) so it can still be hung up.

        With several replicas on one database, the calls `held_elsewhere` names are live
        on another replica and left alone; each call is returned to one starting replica
        only (UPDATE ... RETURNING)."""
        c = t.calls.c
        unfinished = sa.and_(c.status == "active", c.ended_at.is_(None))
        async with self.engine.connect() as conn:
            active = [str(r[0]) for r in await conn.execute(sa.select(c.id).where(unfinished))]
        held = await held_elsewhere(active) if held_elsewhere and active else set()
        cut_ids = [i for i in active if i not in held]
        cut: list[tuple[str, float, str]] = []
        async with self.engine.begin() as conn:
            for i in range(0, len(cut_ids), _REPLAY_BATCH):
                result = await conn.execute(
                    t.calls.update()
                    .where(unfinished, c.id.in_(cut_ids[i : i + _REPLAY_BATCH]))
                    .values(status="incomplete", reason=INCOMPLETE_REASON)
                    .returning(c.id, c.started_at, c.profile)
                )
                cut += [(str(r[0]), float(r[1]), str(r[2])) for r in result]
            legs: dict[str, str] = {}
            ids = [call_id for call_id, _, _ in cut]
            for i in range(0, len(ids), _REPLAY_BATCH):
                answered = await conn.execute(
                    sa.select(t.events.c.call_id, t.events.c.detail)
                    .where(
                        t.events.c.name == "answered",
                        t.events.c.call_id.in_(ids[i : i + _REPLAY_BATCH]),
                    )
                    .order_by(t.events.c.id)
                )
                for call_id, detail in answered:
                    leg = _loads_obj(detail).get("leg_id")
                    if isinstance(leg, str) and leg:
                        legs[call_id] = leg  # the last one, should there be several
        orphans = [OrphanCall(i, legs.get(i), started, profile) for i, started, profile in cut]
        return sorted(orphans, key=lambda o: (o.started_at, o.call_id))

    # --- writes ----------------------------------------------------------------------------
    async def write(self, batch: Sequence[Write]) -> None:
        """Apply `batch` in order, in one transaction (text made storable first:
        `records.clean_write`)."""
        batch = [clean_write(w) for w in batch]
        async with self.engine.begin() as conn:
            # Child rows of the same kind are inserted together (one executemany); they are
            # flushed before any write to a call row, so the order of a call's life holds.
            pending: dict[sa.Table, list[dict[str, Any]]] = {}

            async def flush() -> None:
                for table, rows in pending.items():
                    # A row whose write key is in already was added by this very write.
                    await conn.execute(self._insert(table), rows)
                pending.clear()

            for w in batch:
                child = _child_row(w)
                if child is not None:
                    pending.setdefault(child[0], []).append(child[1])
                    continue
                await flush()
                if isinstance(w, CallStarted):
                    await self._call_started(conn, w)
                elif isinstance(w, CallEnded):
                    await self._call_ended(conn, w)
                elif isinstance(w, AnalyticsSaved):
                    await self._analytics(conn, w)
            await flush()

    def _insert(self, table: sa.Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING in the open dialect (a replayed write is a no-op)."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    async def _call_started(self, conn: AsyncConnection, w: CallStarted) -> None:
        await conn.execute(
            self._insert(t.calls).values(
                id=w.call_id,
                caller=w.caller,
                callee=w.callee,
                profile=w.profile,
                correlation_id=w.correlation_id,
                status="active",
                started_at=w.started_at,
            )
        )

    async def _call_ended(self, conn: AsyncConnection, w: CallEnded) -> None:
        values = {
            "status": "ended",
            "ended_at": w.ended_at,
            "outcome": w.outcome,
            "reason": w.reason,
            "transferred_to": w.transferred_to,
        }
        if w.profile:  # a keypad menu may have moved the call to another line
            values["profile"] = w.profile
        result = await conn.execute(
            t.calls.update().where(t.calls.c.id == w.call_id).values(values)
        )
        if result.rowcount == 0:
            # The start was never seen (an observer added mid-call): keep the end anyway.
            await conn.execute(
                self._insert(t.calls).values(id=w.call_id, started_at=w.ended_at, **values)
            )
        if w.recording_path:
            await conn.execute(
                self._insert(t.recordings).values(
                    call_id=w.call_id,
                    path=w.recording_path,
                    at=w.ended_at,
                    write_key=w.key or None,
                )
            )

    async def _analytics(self, conn: AsyncConnection, w: AnalyticsSaved) -> None:
        await conn.execute(
            t.calls.update()
            .where(t.calls.c.id == w.call_id)
            .values(
                summary=w.summary,
                summary_source=w.summary_source,
                sentiment_compound=w.sentiment_compound,
                sentiment_label=w.sentiment_label,
                redacted=w.redacted,
                analyzed_at=w.analyzed_at,
            )
        )
        for row_id, text in w.transcript_texts.items():
            await conn.execute(
                t.transcript.update().where(t.transcript.c.id == row_id).values(text=text)
            )
        for row_id, (arguments, output) in w.tool_texts.items():
            await conn.execute(
                t.tools.update()
                .where(t.tools.c.id == row_id)
                .values(arguments=_dumps(arguments), output=output)
            )

    # --- reads -----------------------------------------------------------------------------
    def _summary_select(self) -> sa.Select[Any]:
        turns = (
            sa.select(sa.func.count())
            .where(t.transcript.c.call_id == t.calls.c.id)
            .scalar_subquery()
            .label("turns")
        )
        has_recording = (
            sa.exists().where(t.recordings.c.call_id == t.calls.c.id).label("has_recording")
        )
        return sa.select(t.calls, turns, has_recording)

    async def list_calls(self, query: CallQuery) -> tuple[list[CallRow], int]:
        """Calls matching `query`, newest first, and how many match in all."""
        conds = _conditions(query)
        async with self.engine.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(t.calls).where(*conds))
            result = await conn.execute(
                self._summary_select()
                .where(*conds)
                .order_by(t.calls.c.started_at.desc(), t.calls.c.id)
                .limit(query.limit)
                .offset(query.offset)
            )
            rows = [_call_row(r._mapping) for r in result]
        return rows, int(total or 0)

    async def get_call(self, call_id: str) -> CallDetailRow | None:
        call_id = clean_text(call_id)  # PostgreSQL refuses a NUL even in a parameter
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(self._summary_select().where(t.calls.c.id == call_id))
            ).first()
            if found is None:
                return None

            async def rows(table: sa.Table) -> list[Any]:
                result = await conn.execute(
                    sa.select(table).where(table.c.call_id == call_id).order_by(table.c.id)
                )
                return [r._mapping for r in result]

            return CallDetailRow(
                call=_call_row(found._mapping),
                transcript=[
                    TurnRow(r["id"], r["role"], r["text"], r["at"])
                    for r in await rows(t.transcript)
                ],
                tools=[
                    ToolRow(
                        r["id"],
                        r["name"],
                        _loads_obj(r["arguments"]),
                        r["output"],
                        bool(r["ok"]),
                        r["duration_ms"],
                        r["at"],
                    )
                    for r in await rows(t.tools)
                ],
                events=[
                    EventRow(r["name"], _loads_obj(r["detail"]), r["at"])
                    for r in await rows(t.events)
                ],
                latencies=[
                    LatencyRow(_loads_obj(r["timings"]), r["at"]) for r in await rows(t.latencies)
                ],
                recordings=[r["path"] for r in await rows(t.recordings)],
            )

    async def unanalyzed_calls(self, limit: int = 100) -> list[str]:
        """Finished calls whose analysis never ran (the service stopped first), newest first."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(t.calls.c.id)
                # Incomplete calls too: with redaction on, their transcripts need it as much.
                .where(
                    t.calls.c.status.in_(("ended", "incomplete")), t.calls.c.analyzed_at.is_(None)
                )
                .order_by(t.calls.c.started_at.desc())
                .limit(limit)
            )
            return [str(r[0]) for r in result]


def _child_row(w: Write) -> tuple[sa.Table, dict[str, Any]] | None:
    if isinstance(w, TranscriptAdded):
        return t.transcript, {
            "call_id": w.call_id,
            "role": w.role,
            "text": w.text,
            "at": w.at,
            "write_key": w.key or None,
        }
    if isinstance(w, ToolRan):
        return t.tools, {
            "call_id": w.call_id,
            "name": w.name,
            "arguments": _dumps(w.arguments),
            "output": w.output,
            "ok": w.ok,
            "duration_ms": w.duration_ms,
            "at": w.at,
            "write_key": w.key or None,
        }
    if isinstance(w, EventAdded):
        return t.events, {
            "call_id": w.call_id,
            "name": w.name,
            "detail": _dumps(w.detail),
            "at": w.at,
            "write_key": w.key or None,
        }
    if isinstance(w, LatencyAdded):
        return t.latencies, {
            "call_id": w.call_id,
            "timings": _dumps(w.timings),
            "at": w.at,
            "write_key": w.key or None,
        }
    return None


def _conditions(query: CallQuery) -> list[sa.ColumnElement[bool]]:
    c = t.calls.c
    conds: list[sa.ColumnElement[bool]] = []
    if query.outcome == "incomplete":
        conds.append(c.status == "incomplete")
    elif query.outcome:
        conds.append(c.outcome == query.outcome)
    if query.since is not None:
        conds.append(c.started_at >= query.since)
    if query.until is not None:
        conds.append(c.started_at < query.until)
    if query.q:
        escaped = clean_text(query.q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        in_transcript = sa.exists().where(
            t.transcript.c.call_id == c.id, t.transcript.c.text.ilike(pattern, escape="\\")
        )
        conds.append(
            sa.or_(
                *(
                    col.ilike(pattern, escape="\\")
                    for col in (c.id, c.caller, c.callee, c.profile, c.reason, c.summary)
                ),
                in_transcript,
            )
        )
    return conds


def _call_row(m: Any) -> CallRow:
    return CallRow(
        id=m["id"],
        caller=m["caller"],
        callee=m["callee"],
        profile=m["profile"],
        correlation_id=m["correlation_id"],
        status=m["status"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        outcome=m["outcome"],
        reason=m["reason"],
        transferred_to=m["transferred_to"],
        turns=int(m["turns"] or 0),
        has_recording=bool(m["has_recording"]),
        summary=m["summary"],
        summary_source=m["summary_source"],
        sentiment_compound=m["sentiment_compound"],
        sentiment_label=m["sentiment_label"],
        redacted=bool(m["redacted"]),
        analyzed_at=m["analyzed_at"],
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: the API reads while the writer writes, and a second process can share the file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


async def _migrate(engine: AsyncEngine, in_child: bool = False) -> None:
    """Bring the schema to the newest revision. Alembic (and its ~11 MB) is imported only
    when there is something to do: a restart against a migrated database skips it. With
    `in_child` that work goes to a child process, and the memory with it; if the child
    fails, the upgrade runs here, so the error is reported as it always was."""
    try:
        async with engine.connect() as conn:
            version = (
                await conn.execute(sa.text(f"SELECT version_num FROM {t.VERSION_TABLE}"))
            ).scalar_one_or_none()
    except sa.exc.DBAPIError:
        version = None  # no version table yet: a new database
    if version == t.HEAD_REVISION:
        return
    if in_child and await _upgrade_in_child(engine.url.render_as_string(hide_password=False)):
        return
    from alembic.util import CommandError

    from callbridge.store import migrate

    try:
        await migrate.upgrade(engine)
    except CommandError as exc:  # e.g. a revision a newer callbridge wrote (a rollback)
        raise StoreError(
            f"cannot bring the records schema of {safe_url(str(engine.url))} to {t.HEAD_REVISION}"
            f": {first_line(exc)} (was it upgraded by a newer callbridge? run that version, "
            "or point CALLBRIDGE_DATABASE_URL at another database)"
        ) from None


async def _upgrade_in_child(url: str) -> bool:
    """`python -m callbridge.store.upgrade` on `url` (given in its environment, never on a
    command line others can read); True when it brought the schema to the newest revision."""
    started = time.monotonic()
    try:
        proc = await start_module(
            "callbridge.store.upgrade", env={**os.environ, UPGRADE_URL_ENV: url}
        )
    except OSError as exc:  # no process to be had (out of memory, of pids): do it here
        log.warning("cannot start the schema upgrade process: %s", exc)
        return False
    # A stop during start (cancellation) leaves the child to finish: SQLite's DDL is not
    # transactional, so a migration cut half-way could leave half a schema. Only one that
    # gives no answer at all is killed.
    try:
        _, err = await asyncio.wait_for(proc.communicate(), UPGRADE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        log.warning("the schema upgrade process gave no answer in %.0f s", UPGRADE_TIMEOUT_S)
        return False
    if proc.returncode != 0:
        log.warning("the schema upgrade process failed: %s", failure(err, proc.returncode))
        return False
    log.info(
        "records schema upgraded to %s in a child process (%.1f s)",
        t.HEAD_REVISION,
        time.monotonic() - started,
    )
    return True
