"""A service process that records calls while its database goes down, then waits to be
killed (test_journal.py sends it SIGKILL). Run: python -m tests.store.journal_child URL.

It prints one JSON line, {"ready": {...the call ids...}}, once every write is accepted
(journaled); nothing is ever written to the database after the outage begins.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence

import sqlalchemy as sa

from callbridge.api.records import journal_path, spill_path
from callbridge.store import RecordWriter, SqlCallStore
from callbridge.store.records import Write

from .calls import begin_call, finish_call, play_call


class DownStore(SqlCallStore):
    """The database goes away when `down` is set: every write fails as a lost server."""

    down = False

    async def write(self, batch: Sequence[Write]) -> None:
        if self.down:
            raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError("down"))
        await super().write(batch)


async def main(url: str) -> None:
    store = DownStore(url)
    await store.open()
    writer = RecordWriter(
        store,
        profile="p",
        spill_path=spill_path(url),
        journal_dir=journal_path(url),
        retry_max_s=0.05,
    )
    assert writer.journal is not None
    # Crash between a commit and the journal forgetting it: the journal keeps every write,
    # committed or not, so the replay meets writes that are in the database already.
    writer.journal.committed = lambda seq: None  # type: ignore[method-assign]
    await writer.start()

    before = begin_call([writer], leg_id="conn-before")  # committed before the outage
    await writer.flush()
    store.down = True
    finish_call([writer], before)
    cut = begin_call([writer], leg_id="conn-cut")  # the kill cuts it
    whole = play_call([writer])  # a whole call during the outage
    unanswered = begin_call([writer], leg_id=None)  # cut before it was answered
    await writer.journaled()
    ids = {"before": before, "cut": cut, "whole": whole, "unanswered": unanswered}
    print(json.dumps({"ready": ids}), flush=True)
    await asyncio.sleep(3600)  # the database never comes back; SIGKILL comes first


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
