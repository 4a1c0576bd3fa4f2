"""The record writer's journal: every write on local disk until the database has it.

The RecordWriter's journal thread appends each write (one JSON line, `records.to_json`) to
the current segment of the journal and hands it to the database task only then: a crash
(SIGKILL, OOM, power loss after the next fsync) loses no write the observers made, however
long the database has been down. Segments are removed (the current one truncated) once
every write in them is committed; at the next start what is left is read back and replayed
(`RecordWriter.recover`), which is safe because every write is idempotent (keyed child
rows, an end is an update).

Layout: a directory of slots, one per running writer (several worker processes may share a
journal directory), each `<root>/<n>/` with a `lock` file the owner holds with flock and
segments `00000001.jsonl`, `00000002.jsonl`, ... A starting writer takes the first slot no
live process holds and reads what earlier runs left in every slot no live process holds.

Everything here blocks: it runs on the writer's journal thread (or in a worker thread at
start and stop), never on the event loop. Nothing raises to the caller: a journal that
cannot be written (disk full, read-only) is logged and the writes go on in memory only,
as before the journal existed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from callbridge.store.records import Write, from_json, with_key

log = logging.getLogger(__name__)

SEGMENT_BYTES = 1 << 20  # a segment is closed at 1 MiB (only while the database lags)
MAX_BYTES = 64 << 20  # beyond 64 MiB uncommitted, new writes are kept in memory only


@dataclass(slots=True)
class _Segment:
    path: Path
    last_seq: int  # every write in it has this sequence number or a lower one
    size: int


class Journal:
    def __init__(
        self,
        root: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.root = root
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.slot: Path | None = None  # this writer's slot, once `recover` has taken one
        self._lock_fd: int | None = None
        self._recovered: list[Path] = []  # files read at recovery, removed once committed
        self._dead_slots: list[tuple[Path, int]] = []  # dead writers' slots, locked till then
        self._closed: list[_Segment] = []
        self._fd: int | None = None  # the current segment
        self._path: Path | None = None
        self._number = 0
        self._size = 0  # bytes of whole lines in the current segment
        self._last_seq = 0  # the newest write in the current segment
        self._total = 0  # bytes in all segments
        self._committed = 0
        self._dirty = False  # written since the last fsync
        self._failing: str | None = None  # why the journal is not being written, if so
        self._unjournaled = 0  # writes kept in memory only in the current failure
        self._write = os.write  # a test replaces it to fill the disk

    @property
    def enabled(self) -> bool:
        return self.slot is not None

    # --- recovery ----------------------------------------------------------------------------
    def recover(self, spills: list[Path]) -> list[Write]:
        """Take a slot and return, oldest first, the writes earlier runs left: the segments
        of every slot no live writer holds, then the spill files `spills` (oldest first;
        moved into this slot). The files stay until `adopt_recovered`'s writes are committed or
        `drop_recovered` is called."""
        try:
            self._take_slot()
        except OSError as exc:
            log.error(
                "cannot use the records journal %s: %s; record writes are kept in memory "
                "only until they are written",
                self.root,
                exc,
            )
            self._release_dead_slots()
            self._release()
        files: list[Path] = []
        if self.slot is not None:
            files += _segments(self.slot)
            for slot, _fd in self._dead_slots:
                files += _segments(slot)
        files += self._take_spills([p for p in spills if p.exists()])
        self._recovered = files
        writes: list[Write] = []
        for path in files:
            writes += _read(path)
        if self.slot is not None:
            self._number = max((_number(p) for p in _segments(self.slot)), default=0)
        return writes

    def adopt_recovered(self, last_seq: int) -> None:
        """The recovered writes were queued as sequence numbers 1..`last_seq`: remove their
        files once those are committed."""
        adopted = [_Segment(p, last_seq, _size(p)) for p in self._recovered]
        self._closed[:0] = adopted
        self._total += sum(s.size for s in adopted)
        self._recovered = []
        self.committed(self._committed)

    def drop_recovered(self) -> None:
        """The recovered writes are committed (the store replayed them at open)."""
        for path in self._recovered:
            _unlink(path)
        self._recovered = []
        self._release_dead_slots()

    def _take_slot(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        numbers = sorted(
            int(p.name) for p in self.root.iterdir() if p.name.isdigit() and p.is_dir()
        )
        for n in numbers:
            slot = self.root / str(n)
            fd = _try_lock(slot)
            if fd is None:  # a live writer's
                continue
            if self.slot is None:
                self.slot, self._lock_fd = slot, fd
            else:
                self._dead_slots.append((slot, fd))
        n = max(numbers, default=0)
        while self.slot is None:
            n += 1
            slot = self.root / str(n)
            try:
                slot.mkdir(mode=0o700)
            except FileExistsError:  # another writer starting at the same moment
                continue
            fd = _try_lock(slot)
            if fd is not None:
                self.slot, self._lock_fd = slot, fd

    def _take_spills(self, spills: list[Path]) -> list[Path]:
        """Move the spill files into this slot as its next segments, so the spill path is
        free for this run's own spill at its stop (which must not be removed with them)."""
        if not spills:
            return []
        if self.slot is None:
            # No journal: the spill files are read where they are, gathered in one file
            # beside them, as before the journal.
            gathered = next(
                (p for p in spills if p.name.endswith(".replaying")),
                spills[0].with_name(spills[0].name + ".replaying"),
            )
            spills = [p for p in spills if p != gathered]
            try:
                with gathered.open("ab") as f:
                    for path in spills:
                        f.write(path.read_bytes())
                    f.flush()
                    os.fsync(f.fileno())
                for path in spills:
                    _unlink(path)
            except OSError as exc:
                log.error("cannot gather the spill files in %s: %s", gathered, exc)
                return spills
            return [gathered]
        moved = []
        n = max((_number(p) for p in _segments(self.slot)), default=0)
        for path in spills:
            n += 1
            target = self.slot / f"{n:08d}.jsonl"
            try:
                os.replace(path, target)
            except OSError:  # another file system: copy, then remove
                try:
                    target.write_bytes(path.read_bytes())
                    _fsync_path(target)
                    _unlink(path)
                except OSError as exc:
                    log.error("cannot move the spill file %s into the journal: %s", path, exc)
                    moved.append(path)
                    continue
            moved.append(target)
        _fsync_path(self.slot)
        return moved

    # --- appending ---------------------------------------------------------------------------
    def append(self, lines: list[tuple[int, bytes]]) -> int:
        """Append `lines` (each a write's sequence number and its JSON line, newline
        included) and hand them to the OS; returns how many were, from the first: all but
        those beyond the size bound, none when the disk refuses (logged once per failure)."""
        if self.slot is None or not lines:
            return 0
        room, fit = self.max_bytes - self._total, 0
        for _, text in lines:
            if len(text) > room:
                break
            room -= len(text)
            fit += 1
        if fit < len(lines):
            self._fail(
                len(lines) - fit,
                f"the journal is full: {self._total} bytes the database has not taken "
                f"(at most {self.max_bytes})",
            )
        if not fit:
            return 0
        data = b"".join(text for _, text in lines[:fit])
        try:
            if self._fd is None or self._size >= self.segment_bytes:
                self._rotate()
            assert self._fd is not None
            view = memoryview(data)
            while view:
                written = self._write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self._cut_back()
            self._fail(len(lines), f"cannot write it: {exc}")
            return 0
        self._size += len(data)
        self._total += len(data)
        self._last_seq = lines[fit - 1][0]
        self._dirty = True
        if self._failing is not None and fit == len(lines):
            log.warning(
                "the records journal %s is written again (%d writes were kept in memory only)",
                self.slot,
                self._unjournaled,
            )
            self._failing, self._unjournaled = None, 0
        return fit

    def sync(self) -> None:
        """fsync what was appended since the last sync."""
        if self._fd is None or not self._dirty:
            return
        try:
            os.fdatasync(self._fd)
            self._dirty = False
        except OSError as exc:
            log.error("cannot fsync the records journal %s: %s", self._path, exc)

    def committed(self, seq: int) -> None:
        """Every write up to `seq` is in the database: remove the segments that hold only
        such writes, and empty the current one if it does."""
        self._committed = max(self._committed, seq)
        while self._closed and self._closed[0].last_seq <= self._committed:
            segment = self._closed.pop(0)
            _unlink(segment.path)
            self._total -= segment.size
        if not self._closed:
            self._release_dead_slots()
        if self._fd is not None and self._size and self._last_seq <= self._committed:
            try:
                os.ftruncate(self._fd, 0)
            except OSError as exc:
                log.warning("cannot empty the records journal %s: %s", self._path, exc)
                self._close_segment()
                return
            self._total -= self._size
            self._size = 0

    def close(self, *, discard: bool) -> None:
        """Release the journal; with `discard`, remove every file in it first (what it held
        is committed or in the spill file)."""
        if not discard:
            self.sync()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if discard:
            current = [self._path] if self._path is not None else []
            for path in [s.path for s in self._closed] + self._recovered + current:
                _unlink(path)
            self._closed, self._recovered, self._path = [], [], None
            self._size = self._total = 0
            if self.slot is not None:
                _fsync_path(self.slot)
        self._release_dead_slots()
        self._release()

    # --- inside ------------------------------------------------------------------------------
    def _rotate(self) -> None:
        self._close_segment()
        assert self.slot is not None
        self._number += 1
        path = self.slot / f"{self._number:08d}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._path, self._size, self._last_seq = path, 0, 0
        _fsync_path(self.slot)  # the new file's name survives a power loss

    def _close_segment(self) -> None:
        if self._fd is None or self._path is None:
            return
        self.sync()
        os.close(self._fd)
        self._fd = None
        if self._size and self._last_seq > self._committed:
            self._closed.append(_Segment(self._path, self._last_seq, self._size))
        else:
            _unlink(self._path)
            self._total -= self._size
        self._path, self._size = None, 0

    def _cut_back(self) -> None:
        """After a failed write, remove the part of a line it may have left (so the next
        line does not run on from it); failing that, start a new segment next time."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self._close_segment()

    def _fail(self, count: int, why: str) -> None:
        self._unjournaled += count
        if self._failing is None:
            log.error(
                "records journal %s: %s; record writes are kept in memory only until it can be "
                "written again (a crash before the database takes them loses them)",
                self.slot,
                why,
            )
            self._failing = why

    def _release_dead_slots(self) -> None:
        for _slot, fd in self._dead_slots:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor releases its flock
        self._dead_slots = []

    def _release(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None
        self.slot = None


def _try_lock(slot: Path) -> int | None:
    """The slot's lock, held; None when a live writer holds it."""
    fd = os.open(slot / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def _segments(slot: Path) -> list[Path]:
    try:
        found = [p for p in slot.iterdir() if p.suffix == ".jsonl" and p.stem.isdigit()]
    except OSError:
        return []
    return sorted(found, key=_number)


def _number(path: Path) -> int:
    return int(path.stem) if path.stem.isdigit() else 0


def _read(path: Path) -> list[Write]:
    """The writes in a journal segment or spill file. A line a crash cut (or a power loss
    filled with NULs) is skipped with a warning; the others are kept."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.error("cannot read %s (its record writes are not replayed): %s", path, exc)
        return []
    writes: list[Write] = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            write = from_json(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning(
                "skipped line %d of %s, unreadable (cut by a crash?): %s: %.80r",
                number,
                path,
                exc,
                line,
            )
            continue
        writes.append(with_key(write, content_key(line)))
    return writes


def content_key(line: bytes) -> str:
    """The key of a write from a file of an older version (which carries none): from the
    line's content, so the same write gets the same key however often it is replayed."""
    return "h" + hashlib.sha256(line.strip()).hexdigest()[:40]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)


def _fsync_path(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
