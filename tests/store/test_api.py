"""The records API's guard and validation, the live feed (JSON and SSE), /metrics, and the
writer's behaviour when the database is down."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from callbridge.analytics.post_call import PostCallAnalyzer
from callbridge.call.observer import HANDED_OFF, Observers
from callbridge.store import SqlCallStore
from callbridge.store.records import Write
from callbridge.store.writer import RecordWriter

from .calls import begin_call, finish_call, play_call, write_wav
from .conftest import TOKEN, client, make_app, make_settings, records


async def test_token_required(app: FastAPI) -> None:
    async with client(app, token=None) as http:
        missing = await http.get("/api/calls")
        assert missing.status_code == 401
        assert "Authorization: Bearer" in missing.json()["detail"]
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await http.get("/api/live", headers={"Authorization": "Bearer nope-nope-nope"})
        assert wrong.status_code == 401 and wrong.json()["detail"] == "The admin token is wrong."
        assert (await http.get("/api/calls", params={"token": "x" * 20})).status_code == 401
        assert (
            await http.get("/api/calls", headers={"Authorization": f"Bearer {TOKEN}"})
        ).is_success
        # The OpenAPI document and /metrics are not behind the token.
        schema = (await http.get("/openapi.json")).json()
        assert {"/api/calls", "/api/calls/{call_id}", "/api/live"} <= set(schema["paths"])
        assert (await http.get("/metrics")).status_code == 200


async def test_disabled_without_a_token(sqlite_url: str, tmp_path: Path) -> None:
    app = make_app(make_settings(sqlite_url, tmp_path, admin_token=""))
    async with app.router.lifespan_context(app), client(app) as http:
        for path in ("/api/calls", "/api/live", "/api/live/events", "/api/calls/x/recording"):
            r = await http.get(path)
            assert r.status_code == 503, path
            assert "CALLBRIDGE_ADMIN_TOKEN" in r.json()["detail"]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"since": "yesterday"}, "since: 'yesterday' is not a date or time"),
        ({"until": "2025-13-01"}, "until: '2025-13-01' is not a date or time"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "is after until"),
        ({"outcome": "happy"}, "outcome: Input should be 'resolved'"),
        ({"limit": "0"}, "limit: Input should be greater than or equal to 1"),
        ({"limit": "501"}, "limit: Input should be less than or equal to 500"),
        ({"limit": "ten"}, "limit: Input should be a valid integer"),
        ({"offset": "-1"}, "offset: Input should be greater than or equal to 0"),
    ],
)
async def test_bad_parameters(app: FastAPI, params: dict[str, str], says: str) -> None:
    async with client(app) as http:
        r = await http.get("/api/calls", params=params)
    assert r.status_code == 422
    assert says in r.json()["detail"]


async def test_unknown_call(app: FastAPI) -> None:
    async with client(app) as http:
        for path in ("/api/calls/nope", "/api/calls/nope/recording"):
            r = await http.get(path)
            assert r.status_code == 404 and r.json()["detail"] == "no call with id 'nope'"


async def test_recording_outside_the_folder_is_not_served(app: FastAPI, tmp_path: Path) -> None:
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF")
    call_id = play_call(records(app).observers, recording=str(outside))
    await records(app).writer.flush()
    async with client(app) as http:
        r = await http.get(f"/api/calls/{call_id}/recording")
        assert r.status_code == 404 and "CALLBRIDGE_RECORDINGS_DIR" in r.json()["detail"]
        gone = play_call(records(app).observers, recording="missing.wav")
        await records(app).writer.flush()
        r = await http.get(f"/api/calls/{gone}/recording")
        assert r.status_code == 404 and "missing" in r.json()["detail"]


async def test_live_calls(app: FastAPI) -> None:
    observers = records(app).observers
    call_id = begin_call(observers)
    async with client(app) as http:
        (live,) = (await http.get("/api/live")).json()["calls"]
        assert live["id"] == call_id and live["profile"] == "echo"
        assert [t["role"] for t in live["transcript"]] == ["agent", "caller"]
        # While in progress the call is in the records too, as active.
        await records(app).writer.flush()
        (listed,) = (await http.get("/api/calls")).json()["calls"]
        assert listed["status"] == "active" and listed["outcome"] is None
        finish_call(observers, call_id)
        assert (await http.get("/api/live")).json() == {"calls": []}


async def test_a_call_handed_to_another_replica_leaves_this_ones_live_view(
    app: FastAPI,
) -> None:
    """It goes on elsewhere: off this replica's live calls and active-call gauge, with no
    end recorded here (the replica holding it last writes that)."""
    observers = records(app).observers
    call_id = begin_call(observers)
    Observers(list(observers)).event(call_id, HANDED_OFF, {"to": "replica-2"})
    async with client(app) as http:
        assert (await http.get("/api/live")).json() == {"calls": []}
        assert "callbridge_active_calls 0.0" in (await http.get("/metrics")).text
        await records(app).writer.flush()
        (listed,) = (await http.get("/api/calls")).json()["calls"]
        assert listed["status"] == "active"
        detail = (await http.get(f"/api/calls/{call_id}")).json()
        assert [e["name"] for e in detail["events"]][-1] == HANDED_OFF


async def _read_events(
    app: FastAPI, path: str, want: int, after_first: Callable[[], object]
) -> list[tuple[str, Any]]:
    """Drive the ASGI app by hand (httpx's ASGI transport waits for a response to end, and
    an event stream does not): read `want` events, calling `after_first` once the first
    has arrived, then disconnect as a browser would."""
    received: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    disconnect = asyncio.Event()
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"t")],
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
    }

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        await received.put(message)

    task = asyncio.create_task(app(scope, receive, send))
    start = await asyncio.wait_for(received.get(), 5)
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-type"].startswith(b"text/event-stream")
    events: list[tuple[str, Any]] = []
    buffer = ""
    try:
        while len(events) < want:
            message = await asyncio.wait_for(received.get(), 5)
            buffer += message.get("body", b"").decode()
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                lines = [line.split(": ", 1) for line in block.splitlines() if ": " in line]
                fields = {key: value for key, value in lines}
                if "event" in fields:
                    events.append((fields["event"], json.loads(fields["data"])))
                    if len(events) == 1:
                        after_first()
    finally:
        disconnect.set()
        await asyncio.wait_for(task, 5)
    return events


async def test_event_stream(app: FastAPI) -> None:
    observers = records(app).observers
    already = begin_call(observers)
    played: list[str] = []
    events = await _read_events(
        app,
        f"/api/live/events?token={TOKEN}",
        want=8,
        after_first=lambda: played.append(play_call(observers)),
    )
    assert [name for name, _ in events] == [
        "snapshot",
        "call_started",
        "transcript",
        "transcript",
        "tool",
        "transcript",
        "transcript",
        "call_ended",
    ]
    assert [c["id"] for c in events[0][1]["calls"]] == [already]
    call_id = played[0]
    started = events[1][1]
    assert started["call_id"] == call_id and started["caller"] == "+14255550123"
    assert started["profile"] == "echo" and started["started_at"].endswith("Z")
    assert events[2][1]["role"] == "agent" and events[2][1]["text"].startswith("Hello")
    tool = events[4][1]
    assert tool["name"] == "order_status" and tool["arguments"] == {"order": "10023"}
    assert tool["ok"] is True and tool["duration_ms"] == 12.5
    ended = events[7][1]
    assert ended["call_id"] == call_id and ended["outcome"] == "resolved"
    assert ended["reason"] == "agent ended the call"
    # The stream's subscription is gone once the browser disconnects.
    assert not records(app).live._subscribers


async def test_slow_stream_is_closed() -> None:
    from callbridge.api.live import LiveHub

    hub = LiveHub(max_backlog=3)
    sub = hub.subscribe()
    observers = [hub]
    play_call(observers)  # 7 events into a backlog of 3
    items = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert items[-1] is None and len(items) == 4  # three events, then "stop"
    assert sub.closed and not hub._subscribers


async def test_metrics(app: FastAPI) -> None:
    observers = records(app).observers
    live = begin_call(observers)
    play_call(observers)
    play_call(observers, outcome="failed")
    async with client(app, token=None) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "callbridge_active_calls 1.0" in text
    assert 'callbridge_calls_total{outcome="resolved"} 1.0' in text
    assert 'callbridge_calls_total{outcome="failed"} 1.0' in text
    assert 'callbridge_calls_total{outcome="transferred"} 0.0' in text
    assert "callbridge_voice_to_voice_seconds_count 2.0" in text
    assert 'callbridge_voice_to_voice_seconds_bucket{le="0.8"} 2.0' in text  # 640 ms
    assert 'callbridge_tool_seconds_count{ok="true",tool="order_status"} 2.0' in text
    assert "callbridge_barge_ins_total 2.0" in text
    assert 'callbridge_errors_total{kind="call_failed"} 1.0' in text
    finish_call(observers, live)


class FlakyStore(SqlCallStore):
    """Refuses writes (the database is down) while `down` is set."""

    down = True

    async def write(self, batch: Sequence[Write]) -> None:
        if self.down:
            raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError("down"))
        await super().write(batch)


async def test_database_down_at_shutdown(sqlite_url: str, tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    store = FlakyStore(sqlite_url)
    await store.open()
    writer = RecordWriter(store, profile="p", spill_path=spill, retry_max_s=0.05)
    await writer.start()
    call_id = play_call([writer])
    await writer.close(timeout_s=0.3)  # the database never came back
    await store.close()
    assert len(spill.read_text().splitlines()) == 10  # every write of the call

    # Next start: the spilled writes are replayed once the database takes them.
    store = FlakyStore(sqlite_url)
    store.down = False
    await store.open()
    writer = RecordWriter(store, spill_path=spill)
    await writer.start()
    await writer.flush()
    assert not spill.exists() and not spill.with_name(spill.name + ".replaying").exists()
    detail = await store.get_call(call_id)
    await writer.close()
    await store.close()
    assert detail is not None and detail.call.outcome == "resolved"
    assert len(detail.transcript) == 4 and detail.call.profile == "p"


async def test_writer_survives_an_outage(sqlite_url: str) -> None:
    store = FlakyStore(sqlite_url)
    await store.open()
    errors: list[int] = []
    writer = RecordWriter(store, retry_max_s=0.02, on_error=lambda: errors.append(1))
    await writer.start()
    call_id = play_call([writer])
    await asyncio.sleep(0.1)
    assert errors  # retrying, nothing dropped
    store.down = False
    await asyncio.wait_for(writer.flush(), 5)
    detail = await store.get_call(call_id)
    await writer.close()
    await store.close()
    assert detail is not None and len(detail.transcript) == 4


class BrokenSummarizer:
    async def summarize(self, turns: object, outcome: object, reason: object) -> str:
        raise ConnectionError("no LLM here")


async def test_llm_failure_falls_back_to_extractive(sqlite_url: str) -> None:
    store = SqlCallStore(sqlite_url)
    await store.open()
    writer = RecordWriter(store)
    analyzer = PostCallAnalyzer(store, writer, summarizer=BrokenSummarizer(), delay_s=0)
    await writer.start()
    call_id = play_call([writer])
    await writer.flush()
    await analyzer.drain()
    await writer.flush()
    detail = await store.get_call(call_id)
    await analyzer.close()
    await writer.close()
    await store.close()
    assert detail is not None
    assert detail.call.summary_source == "extractive"
    assert detail.call.summary is not None and "order 10023" in detail.call.summary


def test_live_feed_is_redacted_when_redaction_is_on() -> None:
    from callbridge.api.live import LiveHub

    hub = LiveHub(redaction=True)
    call_id = begin_call([hub])
    hub.transcript(call_id, "caller", "it's 4111 1111 1111 1111", 0.0)
    (call,) = hub.snapshot().calls
    assert call.transcript[-1].text == "it's [CARD]"
    assert call.transcript[-2].text == "Hi, I want to know where my order 10023 is."


def test_database_settings() -> None:
    from callbridge.config import ConfigError
    from callbridge.store.sql import normalize_url, safe_url

    assert normalize_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert normalize_url("postgresql://h/db") == "postgresql+asyncpg://h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert safe_url("postgresql+asyncpg://u:secret@h/db") == "postgresql+asyncpg://u:***@h/db"
    with pytest.raises(ConfigError, match="CALLBRIDGE_DATABASE_URL must be sqlite"):
        make_settings("mysql://h/db", Path("."))
    with pytest.raises(ConfigError, match="CALLBRIDGE_ADMIN_TOKEN"):
        make_settings("sqlite:///x.db", Path("."), admin_token="short")
    assert make_settings("sqlite:///x.db", Path("."), admin_token="").admin_token is None


async def test_unreachable_database_fails_the_start(tmp_path: Path) -> None:
    from callbridge.store import StoreError

    store = SqlCallStore("postgresql://nobody:pw@127.0.0.1:1/x")
    with pytest.raises(StoreError, match=r"cannot open .*127\.0\.0\.1:1/x") as err:
        await store.open()
    assert "pw" not in str(err.value)


# --- ?token= only where a browser cannot send a header -------------------------------------
async def test_url_token_only_for_the_recording_and_the_event_stream(
    app: FastAPI, tmp_path: Path
) -> None:
    rec = records(app)
    write_wav(Path(rec.settings.recordings_dir) / "url.wav")
    call_id = play_call(rec.observers, recording="url.wav")
    await rec.writer.flush()
    async with client(app, token=None) as http:
        for path in ("/api/calls", f"/api/calls/{call_id}", "/api/live"):
            r = await http.get(path, params={"token": TOKEN})
            assert r.status_code == 401, path
            assert "?token= is accepted only by a call's recording" in r.json()["detail"]
            assert r.headers["www-authenticate"] == "Bearer"
            # The header still works there, with or without a ?token= beside it.
            ok = await http.get(
                path, params={"token": "x"}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert ok.status_code == 200, path
        # <audio src> cannot send a header: the recording takes ?token=.
        audio = await http.get(f"/api/calls/{call_id}/recording", params={"token": TOKEN})
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        wrong = await http.get(f"/api/calls/{call_id}/recording", params={"token": "x" * 20})
        assert wrong.status_code == 401
        missing = await http.get(f"/api/calls/{call_id}/recording")
        assert "?token=<token>" in missing.json()["detail"]
        # The OpenAPI document says the same.
        paths = (await http.get("/openapi.json")).json()["paths"]

    def schemes(path: str) -> set[str]:
        return {name for entry in paths[path]["get"]["security"] for name in entry}

    assert schemes("/api/calls") == schemes("/api/live") == {"HTTPBearer"}
    assert schemes("/api/calls/{call_id}") == {"HTTPBearer"}
    assert schemes("/api/calls/{call_id}/recording") == {"HTTPBearer", "APIKeyQuery"}
    assert schemes("/api/live/events") == {"HTTPBearer", "APIKeyQuery"}
    # EventSource cannot send a header: the stream takes ?token= (test_event_stream reads it).
    events = await _read_events(app, f"/api/live/events?token={TOKEN}", want=1, after_first=list)
    assert events[0][0] == "snapshot"


# --- the database down or stalled: 503 in bounded time, never a 500 or a hang --------------
UNAVAILABLE = "the records database is unavailable: "


async def test_database_down_answers_503(app: FastAPI, tmp_path: Path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    store = records(app).store
    assert isinstance(store, SqlCallStore)
    # Point the store at a database that cannot be opened (its folder does not exist).
    working, store._engine = (
        store._engine,
        create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'records.db'}"),
    )
    try:
        async with client(app) as http:
            for path in ("/api/calls", "/api/calls/abc", "/api/calls/abc/recording"):
                r = await asyncio.wait_for(http.get(path), 10)
                assert r.status_code == 503, (path, r.text)
                assert r.json()["detail"].startswith(UNAVAILABLE), path
                assert "unable to open database file" in r.json()["detail"]
            # Calls in progress come from memory: still there.
            assert (await http.get("/api/live")).status_code == 200
    finally:
        assert store._engine is not None
        await store._engine.dispose()
        store._engine = working


async def test_database_errors_answer_503(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    store = records(app).store

    async def refused(*_: object) -> None:
        raise sa.exc.OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))

    async def not_open(*_: object) -> None:
        raise RuntimeError("the call store is not open")

    async with client(app) as http:
        for fail in (refused, not_open):
            monkeypatch.setattr(store, "list_calls", fail)
            monkeypatch.setattr(store, "get_call", fail)
            for path in ("/api/calls", "/api/calls/abc", "/api/calls/abc/recording"):
                r = await http.get(path)
                assert r.status_code == 503, (path, r.text)
                assert r.json()["detail"].startswith(UNAVAILABLE)


class StalledStore:
    """A database that accepts the connection and never answers."""

    async def list_calls(self, *_: object) -> None:
        await asyncio.Event().wait()

    async def get_call(self, *_: object) -> None:
        await asyncio.Event().wait()


async def test_stalled_database_answers_503_in_time(tmp_path: Path) -> None:
    from callbridge.api.auth import AdminAuth
    from callbridge.api.calls import calls_router

    app = FastAPI()
    app.state.admin_auth = AdminAuth(TOKEN)
    app.include_router(calls_router(StalledStore(), tmp_path, read_timeout_s=0.2))  # type: ignore[arg-type]
    async with client(app) as http:
        for path in ("/api/calls", "/api/calls/abc", "/api/calls/abc/recording"):
            t0 = time.monotonic()
            r = await asyncio.wait_for(http.get(path), 5)
            assert time.monotonic() - t0 < 2
            assert r.status_code == 503
            assert r.json() == {"detail": UNAVAILABLE + "no answer within 0.2 s"}


async def test_stalled_database_in_the_app_is_bounded_by_default(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records(app).store, "get_call", StalledStore().get_call)
    async with client(app) as http:
        r = await asyncio.wait_for(http.get("/api/calls/abc"), 10)
    assert r.status_code == 503
    assert r.json()["detail"] == UNAVAILABLE + "no answer within 5 s"


async def test_the_live_console_follows_a_call_the_keypad_menu_moves() -> None:
    from callbridge.api.live import LiveHub
    from callbridge.core.call_info import CallInfo

    hub = LiveHub("fallback name")
    sub = hub.subscribe()
    hub.call_started(CallInfo("m1", "+1555", "+1800", 24000, line="Main line"))
    assert hub.snapshot().calls[0].profile == "Main line"
    hub.event("m1", "ivr", {"digits": "2", "profile": "dining", "line": "Dining line"})
    assert hub.snapshot().calls[0].profile == "Dining line"
    names = [sub.queue.get_nowait()[0] for _ in range(sub.queue.qsize())]  # type: ignore[index]
    assert names == ["call_started", "call_moved"]
