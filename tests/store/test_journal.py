"""The writer's journal: writes survive a crash (SIGKILL) during a database outage, are
replayed once at the next start, and the calls the crash cut are listed with their call
connection ids so they can be hung up."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from callbridge.api.records import Records, journal_path, spill_path
from callbridge.store import RecordWriter, SqlCallStore
from callbridge.store.journal import Journal, content_key
from callbridge.store.migrate import alembic_config
from callbridge.store.records import (
    CallEnded,
    CallStarted,
    EventAdded,
    OrphanCall,
    ToolRan,
    TranscriptAdded,
    Write,
    to_json,
)
from callbridge.store.sql import normalize_url

from .calls import begin_call, play_call
from .conftest import make_settings

REPO = Path(__file__).resolve().parents[2]


class DownStore(SqlCallStore):
    """Refuses every write as a lost server would, while `down` is set."""

    down = True

    async def write(self, batch: Sequence[Write]) -> None:
        if self.down:
            raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError("down"))
        await super().write(batch)


def segments(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.jsonl"))


def journal_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in segments(root))


async def read_line(stream: asyncio.StreamReader, timeout_s: float) -> bytes:
    return await asyncio.wait_for(stream.readline(), timeout_s)


# --- a real crash -----------------------------------------------------------------------------
async def test_sigkill_during_an_outage_loses_nothing(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.store.journal_child",
        sqlite_url,
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await read_line(child.stdout, 60)
        assert line, "the child process ended before it was ready"
        ids = json.loads(line)["ready"]
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    journal = journal_path(sqlite_url)
    assert segments(journal), "the child journaled nothing"
    # The kill cut the last line in the middle (as if it came during the write).
    with segments(journal)[-1].open("ab") as f:
        f.write(b'{"type": "EventAdded", "call_id": "x", "name": "hal')

    records = Records(make_settings(sqlite_url, tmp_path))
    caplog.set_level(logging.WARNING)
    await records.start()
    try:
        store = records.store
        assert "skipped line" in caplog.text and "cut by a crash" in caplog.text

        before = await store.get_call(ids["before"])
        assert before is not None
        assert (before.call.status, before.call.outcome) == ("ended", "resolved")
        # Committed before the outage and journaled too: in once, not twice.
        assert len(before.transcript) == 4 and len(before.tools) == 1
        assert [e.name for e in before.events] == ["answered", "barge_in"]
        assert len(before.latencies) == 1

        whole = await store.get_call(ids["whole"])
        assert whole is not None and whole.call.status == "ended"
        assert whole.call.caller == "+14255550123" and whole.call.profile == "p"
        assert len(whole.transcript) == 4 and len(whole.tools) == 1
        assert [e.name for e in whole.events] == ["answered", "barge_in"]

        for key in ("cut", "unanswered"):
            cut = await store.get_call(ids[key])
            assert cut is not None and cut.call.status == "incomplete"
            assert len(cut.transcript) == 2
        assert [(o.call_id, o.connection_id) for o in records.orphans] == [
            (ids["cut"], "conn-cut"),
            (ids["unanswered"], None),
        ]
        # Replayed and committed: the old journal is gone.
        assert journal_bytes(journal) == 0
        assert not spill_path(sqlite_url).exists()
    finally:
        await records.stop()

    # The next start replays nothing again and finds no orphans.
    again = Records(make_settings(sqlite_url, tmp_path))
    await again.start()
    try:
        assert again.orphans == []
        detail = await again.store.get_call(ids["before"])
        assert detail is not None and len(detail.transcript) == 4
    finally:
        await again.stop()


# --- the store's side: idempotent writes, the orphans -------------------------------------------
def a_call(call_id: str, key: str) -> list[Write]:
    return [
        CallStarted(call_id, "+1", "+2", "p", "", 100.0),
        EventAdded(call_id, "answered", {"leg_id": f"leg-{call_id}"}, 100.5, key=f"{key}1"),
        TranscriptAdded(call_id, "caller", "hello", 101.0, key=f"{key}2"),
        ToolRan(call_id, "t", {"a": 1}, "{}", True, 2.0, 102.0, key=f"{key}3"),
        CallEnded(call_id, "resolved", "done", 103.0, recording_path="r.wav", key=f"{key}4"),
    ]


async def test_writes_applied_twice_are_in_once(db_url: str) -> None:
    store = SqlCallStore(db_url)
    await store.open()
    try:
        writes = a_call("c1", "k")
        await store.write(writes)
        await store.write(writes)  # a replay of a journal that was committed already
        await store.write(writes[1:3])
        orphans = await store.open(replay=writes)  # and once more at a start
        detail = await store.get_call("c1")
    finally:
        await store.close()
    assert orphans == []
    assert detail is not None and detail.call.status == "ended"
    assert len(detail.events) == 1 and len(detail.transcript) == 1 and len(detail.tools) == 1
    assert detail.recordings == ["r.wav"]


async def test_a_database_of_the_previous_revision_is_upgraded(db_url: str) -> None:
    engine = create_async_engine(normalize_url(db_url))
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0001"))
        await conn.execute(sa.text("INSERT INTO calls (id, started_at) VALUES ('old', 1.0)"))
        for _ in range(2):  # rows without keys: NULLs never clash
            await conn.execute(
                sa.text(
                    "INSERT INTO call_transcript (call_id, role, text, at) "
                    "VALUES ('old', 'caller', 'hi', 1.0)"
                )
            )
    await engine.dispose()
    store = SqlCallStore(db_url)
    try:
        assert await store.open() == [OrphanCall("old", None, 1.0, "")]
        await store.write(a_call("new", "n"))
        detail = await store.get_call("old")
        assert detail is not None and len(detail.transcript) == 2
    finally:
        await store.close()


async def test_the_calls_a_stop_cut_are_listed_with_their_connection(db_url: str) -> None:
    store = SqlCallStore(db_url)
    await store.open()
    ended, cut, unanswered, menu = a_call("ended", "e"), a_call("cut", "c"), "unanswered", "menu"
    await store.write(ended)
    await store.write(cut[:3])  # answered, no end
    await store.write([CallStarted(unanswered, "+1", "+2", "p", "", 104.0)])
    # An answered event without a connection id (the browser phone) and one with.
    await store.write(
        [
            CallStarted(menu, "+1", "+2", "p", "", 99.0),
            EventAdded(menu, "answered", {"leg_id": ""}, 99.1, key="m1"),
        ]
    )
    await store.close()

    orphans = await store.open()
    try:
        assert orphans == [
            OrphanCall(menu, None, 99.0, "p"),
            OrphanCall("cut", "leg-cut", 100.0, "p"),
            OrphanCall(unanswered, None, 104.0, "p"),
        ]
        assert await store.open() == []  # marked: the next start does not list them again
        detail = await store.get_call("cut")
        assert detail is not None and detail.call.status == "incomplete"
    finally:
        await store.close()


async def test_the_orphans_take_the_replayed_writes_into_account(db_url: str) -> None:
    store = SqlCallStore(db_url)
    await store.open()
    first, second = a_call("first", "f"), a_call("second", "s")
    await store.write(first[:3])  # the end of "first" was in the journal only
    await store.close()
    # "second" was in the journal only, and cut: without its answer it would have no id.
    orphans = await store.open(replay=[first[-1], *second[:2]])
    try:
        assert orphans == [OrphanCall("second", "leg-second", 100.0, "p")]
        detail = await store.get_call("first")
        assert detail is not None and detail.call.status == "ended"
    finally:
        await store.close()


async def test_a_crash_mid_call_gives_records_its_orphans(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(sqlite_url, tmp_path)
    crashed = Records(settings)
    await crashed.start()
    cut = begin_call(crashed.observers, leg_id="conn-9")
    done = play_call(crashed.observers)
    await crashed.writer.flush()
    # The service goes away with a call in progress (the records of both are written).
    await crashed.writer.close(timeout_s=0)
    await crashed.store.close()

    restarted = Records(settings)
    await restarted.start()
    try:
        assert [(o.call_id, o.connection_id) for o in restarted.orphans] == [(cut, "conn-9")]
        assert done not in {o.call_id for o in restarted.orphans}
    finally:
        await restarted.stop()


# --- the journal itself -------------------------------------------------------------------------
def line(write: Write) -> bytes:
    data = to_json(write)
    assert data is not None
    return json.dumps(data).encode() + b"\n"


def test_an_unreadable_line_is_skipped_and_the_rest_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slot = tmp_path / "journal" / "1"
    slot.mkdir(parents=True)
    one, two = (TranscriptAdded("c", "caller", f"line {i}", 1.0, key=f"k{i}") for i in (1, 2))
    # A line cut by a crash, then (after a power loss) a block of NULs, then whole lines.
    (slot / "00000001.jsonl").write_bytes(line(one) + line(two)[:20])
    (slot / "00000002.jsonl").write_bytes(b"\0" * 64 + b"\n" + line(two) + b"\n")
    spill = tmp_path / "spill.jsonl"
    old = line(EventAdded("c", "barge_in", {"heard_ms": 1}, 2.0))  # no key: an older version
    spill.write_bytes(old)

    journal = Journal(tmp_path / "journal")
    caplog.set_level(logging.WARNING)
    writes = journal.recover([spill])
    assert [w for w in writes if isinstance(w, TranscriptAdded)] == [one, two]
    (event,) = [w for w in writes if isinstance(w, EventAdded)]
    # A key from the line's content: the same old line replayed twice is added once.
    assert event.key == content_key(old)
    assert caplog.text.count("skipped line") == 2
    assert not spill.exists()  # moved into the journal (the spill path is free again)
    journal.drop_recovered()
    journal.close(discard=False)
    assert segments(tmp_path / "journal") == []


@pytest.mark.parametrize("usable", [True, False])
def test_spill_files_of_older_versions_are_replayed_in_order(tmp_path: Path, usable: bool) -> None:
    spill = tmp_path / "records.db.unwritten.jsonl"
    replaying = spill.with_name(spill.name + ".replaying")  # an older version's, mid-replay
    older, newer = (TranscriptAdded("c", "caller", text, 1.0) for text in ("older", "newer"))
    replaying.write_bytes(line(older))
    spill.write_bytes(line(newer))
    (tmp_path / "file").write_text("")
    root = tmp_path / "journal" if usable else tmp_path / "file" / "journal"

    journal = Journal(root)
    writes = journal.recover([replaying, spill])
    assert [w.text for w in writes if isinstance(w, TranscriptAdded)] == ["older", "newer"]
    assert journal.enabled is usable
    assert not spill.exists()  # free for this run's own spill at its stop
    journal.drop_recovered()
    journal.close(discard=False)
    assert not replaying.exists() and segments(tmp_path / "journal") == []


def test_each_live_writer_has_its_own_slot(tmp_path: Path) -> None:
    root = tmp_path / "journal"
    live = Journal(root)
    assert live.recover([]) == []
    write = TranscriptAdded("c", "caller", "hi", 1.0, key="k")
    assert live.append([(1, line(write))]) == 1
    other = Journal(root)
    assert other.recover([]) == []  # the live writer's journal is not the other's to replay
    assert other.slot != live.slot
    live.close(discard=False)  # dies without committing: its lock goes with it
    third = Journal(root)
    assert third.recover([]) == [write]
    for j in (other, third):
        j.close(discard=False)


async def test_the_journal_empties_once_the_database_has_the_writes(
    sqlite_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "journal"
    store = DownStore(sqlite_url)
    await store.open()
    writer = RecordWriter(store, journal_dir=root, retry_max_s=0.02)
    await writer.start()
    try:
        play_call([writer])
        await writer.journaled()
        held = journal_bytes(root)
        assert held > 1000  # every write of the call, on disk while the database is down
        store.down = False
        await asyncio.wait_for(writer.flush(), 5)
        await writer.journaled()  # the journal thread has taken the commit marks too
        assert journal_bytes(root) == 0
    finally:
        await writer.close(2)
        await store.close()
    assert segments(root) == []


async def test_a_full_disk_keeps_the_writes_in_memory(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "journal"
    store = DownStore(sqlite_url)
    await store.open()
    writer = RecordWriter(store, journal_dir=root, retry_max_s=0.02)
    await writer.start()
    assert writer.journal is not None

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    try:
        caplog.set_level(logging.WARNING)
        writer.journal._write = full  # the disk fills up
        call_id = play_call([writer])  # the call goes on
        await writer.journaled()
        assert caplog.text.count("No space left on device") == 1  # said once, not per write
        writer.journal._write = os.write  # space again
        other = play_call([writer])
        await writer.journaled()
        assert "is written again" in caplog.text
        assert journal_bytes(root) > 0
        store.down = False
        await asyncio.wait_for(writer.flush(), 5)
        for cid in (call_id, other):
            detail = await store.get_call(cid)
            assert detail is not None and len(detail.transcript) == 4
    finally:
        await writer.close(2)
        await store.close()


async def test_a_journal_that_cannot_be_made_is_not_fatal(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = SqlCallStore(sqlite_url)
    writer = RecordWriter(store, journal_dir=blocker / "journal")
    await store.open(replay=await writer.recover())
    await writer.start(recovered_written=True)
    try:
        call_id = play_call([writer])
        await writer.flush()
        detail = await store.get_call(call_id)
        assert detail is not None and len(detail.transcript) == 4
        assert "cannot use the records journal" in caplog.text
    finally:
        await writer.close()
        await store.close()


async def test_the_journal_is_bounded(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "journal"
    store = DownStore(sqlite_url)
    await store.open()
    writer = RecordWriter(
        store,
        journal_dir=root,
        retry_max_s=0.02,
        journal_max_bytes=4000,
        journal_segment_bytes=1000,
    )
    await writer.start()
    try:
        caplog.set_level(logging.WARNING)
        calls = []
        for _ in range(5):
            calls.append(play_call([writer]))
            await writer.journaled()
        assert 1000 < journal_bytes(root) <= 4000
        assert len(segments(root)) > 1  # rotated
        assert caplog.text.count("the journal is full") == 1
        store.down = False
        await asyncio.wait_for(writer.flush(), 5)  # nothing dropped
        for cid in calls:
            detail = await store.get_call(cid)
            assert detail is not None and len(detail.transcript) == 4
    finally:
        await writer.close(2)
        await store.close()
    assert segments(root) == []


async def test_a_clean_stop_during_an_outage_spills(sqlite_url: str, tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    store = DownStore(sqlite_url)
    await store.open()
    writer = RecordWriter(store, spill_path=spill, retry_max_s=0.02)
    await writer.start()
    call_id = play_call([writer])
    await writer.close(timeout_s=0.2)
    await store.close()
    assert len(spill.read_text().splitlines()) == 10
    assert segments(tmp_path / "spill.journal") == []  # in the spill file, not twice

    store = DownStore(sqlite_url)
    store.down = False
    writer = RecordWriter(store, spill_path=spill)
    orphans = await store.open(replay=await writer.recover())
    await writer.start(recovered_written=True)
    await writer.close()
    detail = await store.get_call(call_id)
    await store.close()
    assert orphans == [] and not spill.exists()
    assert detail is not None and len(detail.transcript) == 4
