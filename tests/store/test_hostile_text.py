"""Text the databases cannot store (a lone surrogate, NUL) from a caller id, a display
name, a transcript or a tool: the call's record is still written, with U+FFFD in its place,
and reads back through the API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callbridge.call.observer import CallOutcome, Observers
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolRun
from callbridge.store import RecordWriter, SqlCallStore
from callbridge.store.records import (
    CallStarted,
    ToolRan,
    TranscriptAdded,
    clean_text,
    clean_write,
)

from .conftest import client, make_app, make_settings, records

BAD = "\ud800"  # JSON can carry it ("\ud800"); UTF-8 cannot encode it
FFFD = "\ufffd"


def test_clean_text_and_writes() -> None:
    assert clean_text("+1425555" + BAD) == "+1425555" + FFFD
    assert clean_text("a\x00b\udfffc") == f"a{FFFD}b{FFFD}c"
    assert clean_text("Zoë 😀") == "Zoë 😀"  # valid text is left alone
    plain = CallStarted("c", "+1", "+2", "p", "", 1.0)
    assert clean_write(plain) is plain
    tool = clean_write(ToolRan("c", "t" + BAD, {"k" + BAD: [BAD, 1]}, BAD, True, 1.0, 2.0))
    assert tool == ToolRan("c", "t" + FFFD, {"k" + FFFD: [FFFD, 1]}, FFFD, True, 1.0, 2.0)
    assert clean_write(TranscriptAdded("c", "caller", "hi" + BAD, 1.0)).text == "hi" + FFFD


async def test_unstorable_text_is_replaced_not_refused(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlCallStore(db_url)
    await store.open()
    writer = RecordWriter(store, profile="echo", retry_max_s=0.1)
    await writer.start()
    try:
        obs = Observers([writer])
        obs.call_started(CallInfo("c1", "+1425\ud800", "+1800\x00", 24000, correlation_id=BAD))
        obs.transcript("c1", "caller", "my name is \udc00nn", time.time())
        obs.tool_ran("c1", ToolRun("lookup", {"name" + BAD: "x" + BAD}, '"' + BAD + '"', True, 2))
        obs.event("c1", "dtmf", {"digits": BAD})
        obs.call_ended("c1", CallOutcome("resolved", "caller said " + BAD))
        await writer.flush()
        detail = await store.get_call("c1")
    finally:
        await writer.close(2)
        await store.close()
    assert "refused a write" not in caplog.text
    assert detail is not None
    call = detail.call
    assert (call.caller, call.callee, call.correlation_id) == ("+1425" + FFFD, "+1800" + FFFD, FFFD)
    assert (call.status, call.reason) == ("ended", "caller said " + FFFD)
    assert [t.text for t in detail.transcript] == [f"my name is {FFFD}nn"]
    (tool,) = detail.tools
    assert tool.arguments == {"name" + FFFD: "x" + FFFD} and tool.output == f'"{FFFD}"'
    assert detail.events[0].detail == {"digits": FFFD}


async def test_the_api_serves_such_a_call(sqlite_url: str, tmp_path: Path) -> None:
    app = make_app(make_settings(sqlite_url, tmp_path))
    async with app.router.lifespan_context(app), client(app) as http:
        rec = records(app)
        obs = Observers(rec.observers)
        obs.call_started(CallInfo("c2", "Ann " + BAD, "+18005550100", 24000))
        obs.transcript("c2", "caller", "hello " + BAD, time.time())
        # In progress: the live view (from memory) must encode too.
        live = await http.get("/api/live")
        assert live.status_code == 200
        assert live.json()["calls"][0]["caller"] == "Ann " + FFFD
        obs.call_ended("c2", CallOutcome("abandoned", "caller hung up"))
        await rec.writer.flush()
        r = await http.get("/api/calls/c2")
        assert r.status_code == 200
        assert r.json()["caller"] == "Ann " + FFFD
        assert r.json()["transcript"][0]["text"] == "hello " + FFFD
        listed = await http.get("/api/calls", params={"q": "Ann"})
        assert [c["id"] for c in listed.json()["calls"]] == ["c2"]
        # A NUL in a read's parameters is no database error either.
        assert (await http.get("/api/calls/c%002")).status_code == 404
        assert (await http.get("/api/calls", params={"q": "a\x00"})).status_code == 200
