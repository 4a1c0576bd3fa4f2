"""The records on SQLite and PostgreSQL: a call written through the observer and read back
through the API; a crash leaves calls incomplete; a shutdown loses nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from callbridge.store import SqlCallStore
from callbridge.store.records import CallQuery
from callbridge.store.schema import VERSION_TABLE, metadata

from .calls import CALLEE, CALLER, begin_call, incoming_call, play_call, write_wav
from .conftest import SECRET, client, make_app, make_settings, records


async def settle(app: object) -> None:
    rec = records(app)  # type: ignore[arg-type]
    await rec.writer.flush()
    await rec.analyzer.drain()
    await rec.writer.flush()


async def test_call_round_trip(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    write_wav(Path(settings.recordings_dir) / "call.wav")
    app = make_app(settings)
    async with app.router.lifespan_context(app), client(app) as http:
        rec = records(app)
        call_id = play_call(rec.observers, recording="call.wav")
        other = play_call(rec.observers, outcome="abandoned")
        await settle(app)

        listing = (await http.get("/api/calls")).json()
        assert listing["total"] == 2
        summary = next(c for c in listing["calls"] if c["id"] == call_id)
        assert summary["caller"] == CALLER and summary["callee"] == CALLEE
        assert summary["profile"] == "echo"
        assert summary["status"] == "ended" and summary["outcome"] == "resolved"
        assert summary["reason"] == "agent ended the call"
        assert summary["turns"] == 4
        assert summary["has_recording"] is True
        assert summary["duration_s"] is not None and summary["duration_s"] >= 0
        assert summary["sentiment"]["label"] == "positive"
        assert "order 10023" in summary["summary"]

        detail = (await http.get(f"/api/calls/{call_id}")).json()
        assert [t["role"] for t in detail["transcript"]] == ["agent", "caller", "agent", "caller"]
        assert detail["transcript"][1]["text"] == "Hi, I want to know where my order 10023 is."
        assert detail["correlation_id"] == "corr-1"
        (tool,) = detail["tools"]
        assert tool["name"] == "order_status" and tool["arguments"] == {"order": "10023"}
        assert tool["ok"] is True and tool["duration_ms"] == 12.5
        assert [e["name"] for e in detail["events"]] == ["answered", "barge_in"]
        assert detail["events"][1]["detail"] == {"heard_ms": 840}
        # The timings arrive after the end (as CallSession reports them): still recorded.
        assert detail["latencies"] == [{"stt_ms": 210.0, "first_audio_ms": 640.0, "text": "order"}]
        analytics = detail["analytics"]
        assert analytics["summary_source"] == "extractive" and analytics["redacted"] is False
        assert analytics["analyzed_at"] is not None
        assert detail["recording_url"] == f"/api/calls/{call_id}/recording"

        wav = await http.get(detail["recording_url"])
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
        assert wav.content[:4] == b"RIFF"
        none = await http.get(f"/api/calls/{other}/recording")
        assert none.status_code == 404 and "no recording" in none.json()["detail"]

        async def ids(**params: str) -> set[str]:
            r = await http.get("/api/calls", params=params)
            assert r.status_code == 200, r.text
            return {c["id"] for c in r.json()["calls"]}

        assert await ids(outcome="abandoned") == {other}
        assert await ids(q="ORDER 10023") == {call_id, other}  # transcript text, any case
        assert await ids(q=call_id[:10]) == {call_id}
        assert await ids(q="100%") == set()  # % is a character, not a wildcard
        today = dt.datetime.now(dt.UTC).date()
        assert await ids(since=str(today)) == {call_id, other}
        assert await ids(until=str(today)) == set()
        assert await ids(since="2000-01-01T00:00:00Z", until="2000-01-02") == set()
        page = (await http.get("/api/calls", params={"limit": 1, "offset": 1})).json()
        assert page["total"] == 2 and len(page["calls"]) == 1


async def test_redaction_of_the_stored_record(db_url: str, tmp_path: Path) -> None:
    app = make_app(make_settings(db_url, tmp_path, pii_redaction=True))
    async with app.router.lifespan_context(app), client(app) as http:
        call_id = play_call(records(app).observers, card=True)
        await settle(app)
        detail = (await http.get(f"/api/calls/{call_id}")).json()
    texts = [t["text"] for t in detail["transcript"]]
    assert "Can I pay with my card [CARD]?" in texts
    assert "Hi, I want to know where my order 10023 is." in texts  # order numbers stay
    payment = next(t for t in detail["tools"] if t["name"] == "take_payment")
    assert payment["arguments"] == {"card": "[CARD]"}
    assert detail["analytics"]["redacted"] is True
    # Nothing the caller or a tool said keeps the card number (timestamps may hold "4111").
    spoken = [*texts, detail["analytics"]["summary"]]
    spoken += [str(t["arguments"]) + str(t["output"]) for t in detail["tools"]]
    assert not any("4111" in s for s in spoken), spoken


async def test_crash_leaves_calls_incomplete(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    crashed = make_app(settings)
    ctx = crashed.router.lifespan_context(crashed)
    await ctx.__aenter__()
    rec = records(crashed)
    cut = begin_call(rec.observers)
    await rec.writer.flush()
    # A crash: no shutdown, the process is gone. Only the database connection goes away.
    await rec.writer.close(timeout_s=0)
    await rec.store.close()

    restarted = make_app(settings)
    async with restarted.router.lifespan_context(restarted), client(restarted) as http:
        await settle(restarted)
        calls = (await http.get("/api/calls", params={"outcome": "incomplete"})).json()["calls"]
        assert [c["id"] for c in calls] == [cut]
        (call,) = calls
        assert call["status"] == "incomplete" and call["outcome"] is None
        assert call["ended_at"] is None and "service stopped" in call["reason"]
        assert call["turns"] == 2
        # Incomplete calls are analysed too (their transcripts may need redaction).
        assert call["summary"] is not None


async def test_shutdown_writes_everything(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    app = make_app(settings)
    records(app).analyzer.delay_s = 30.0  # pending at shutdown: run then, not dropped
    async with app.router.lifespan_context(app):
        call_id = play_call(records(app).observers)
        # ... and the service stops at once, with everything still queued.
    store = SqlCallStore(settings.database_url)
    await store.open()
    try:
        detail = await store.get_call(call_id)
        assert detail is not None
        assert detail.call.status == "ended" and detail.call.outcome == "resolved"
        assert len(detail.transcript) == 4 and len(detail.tools) == 1
        assert len(detail.events) == 2 and len(detail.latencies) == 1
        assert detail.call.summary and detail.call.analyzed_at is not None
    finally:
        await store.close()


async def test_schema_matches_the_migrations(db_url: str) -> None:
    store = SqlCallStore(db_url)
    await store.open()
    await store.close()
    await store.open()  # a second start finds the schema at head and changes nothing
    try:
        async with store.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"version_table": VERSION_TABLE}),
                    metadata,
                )
            )
        assert diff == []
        assert (await store.list_calls(CallQuery()))[1] == 0
    finally:
        await store.close()


async def test_an_acs_call_is_recorded(sqlite_url: str, tmp_path: Path) -> None:
    """The real path: IncomingCall → CallSession → edge.observers → the store."""
    app = make_app(make_settings(sqlite_url, tmp_path))
    control = app.state.edge.control
    async with app.router.lifespan_context(app), client(app) as http:
        await http.post(f"/acs/incoming?key={SECRET}", json=incoming_call())
        await asyncio.wait_for(control.answered.wait(), 3)
        callback = control.answers[0][1].removeprefix("https://bridge.example.com")
        hang_up = {
            "id": "e1",
            "type": "Microsoft.Communication.CallDisconnected",
            "specversion": "1.0",
            "source": "calling/callConnections/conn-1",
            "data": {"callConnectionId": "conn-1", "resultInformation": {"code": 200}},
        }
        assert (await http.post(callback, json=[hang_up])).status_code == 200
        await settle(app)
        (call,) = (await http.get("/api/calls")).json()["calls"]
        detail = (await http.get(f"/api/calls/{call['id']}")).json()
    assert call["caller"] == "+14255550123" and call["callee"] == "+18005550100"
    assert call["outcome"] == "abandoned" and call["reason"].startswith("call disconnected")
    assert [e["name"] for e in detail["events"]] == ["answered", "CallDisconnected"]
    assert detail["correlation_id"] == "c"
