"""`/api/calls`: past and current calls from the store, and their recordings.

Every read of the store is bounded (`read_timeout_s`): while the database is down or
stalled the API answers 503 "the records database is unavailable: ..." in that time,
never a 500 and never a hang.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse

from callbridge.api.auth import require_admin, require_admin_or_url_token
from callbridge.api.schemas import CallDetail, CallList, ErrorOut, call_detail, call_summary
from callbridge.store.base import CallStore
from callbridge.store.records import CallQuery

log = logging.getLogger(__name__)

OutcomeFilter = Literal["resolved", "transferred", "abandoned", "failed", "rejected", "incomplete"]
MAX_LIMIT = 500
READ_TIMEOUT_S = 5.0
UNAVAILABLE = "the records database is unavailable"
T = TypeVar("T")

_TIME_HELP = (
    "ISO 8601 date (2025-11-23) or date-time (2025-11-23T16:00:00Z; no zone means UTC), "
    "or epoch seconds"
)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no or wrong admin token"},
    422: {"model": ErrorOut, "description": "a bad parameter; the detail says which"},
    503: {
        "model": ErrorOut,
        "description": "CALLBRIDGE_ADMIN_TOKEN is not set, or the records database is "
        f"unavailable (down, or no answer within {READ_TIMEOUT_S:g} s)",
    },
}


async def read_store(read: Awaitable[T], timeout_s: float = READ_TIMEOUT_S) -> T:
    """A store read, or a 503 saying why the database did not answer within `timeout_s`."""
    try:
        return await asyncio.wait_for(read, timeout_s)
    except TimeoutError:
        detail = f"{UNAVAILABLE}: no answer within {timeout_s:g} s"
        log.warning("records API: %s", detail)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        detail = f"{UNAVAILABLE}: {_first_line(exc)}"
        log.warning("records API: %s", detail)
    except Exception as exc:  # a driver's own error type, a store closed at shutdown
        detail = f"{UNAVAILABLE}: {_first_line(exc)}"
        log.exception("records API: %s", detail)
    raise HTTPException(503, detail)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_time(name: str, value: str | None) -> float | None:
    """A query's time bound as epoch seconds; 422 saying what is accepted when unparsable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise HTTPException(
            422, f"{name}: {value!r} is not a date or time; use an {_TIME_HELP}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def calls_router(
    store: CallStore, recordings_dir: Path, *, read_timeout_s: float = READ_TIMEOUT_S
) -> APIRouter:
    # The JSON routes take the token in the header only; the recording, which <audio src>
    # fetches without headers, also as ?token=.
    router = APIRouter(dependencies=[Depends(require_admin)])
    media = APIRouter(dependencies=[Depends(require_admin_or_url_token)])

    @router.get("/calls", response_model=CallList)
    async def list_calls(
        outcome: Annotated[
            OutcomeFilter | None,
            Query(description="an outcome, or incomplete for calls cut by a service stop"),
        ] = None,
        q: Annotated[
            str | None,
            Query(
                max_length=200,
                description="text in the id, numbers, profile, reason, summary or transcript",
            ),
        ] = None,
        since: Annotated[str | None, Query(description=f"started at or after: {_TIME_HELP}")] = (
            None
        ),
        until: Annotated[str | None, Query(description=f"started before: {_TIME_HELP}")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> CallList:
        """Calls, newest first."""
        start, end = parse_time("since", since), parse_time("until", until)
        if start is not None and end is not None and start > end:
            raise HTTPException(422, f"since ({since}) is after until ({until})")
        rows, total = await read_store(
            store.list_calls(CallQuery(outcome, q or None, start, end, limit, offset)),
            read_timeout_s,
        )
        return CallList(calls=[call_summary(r) for r in rows], total=total)

    @router.get(
        "/calls/{call_id}",
        response_model=CallDetail,
        responses={404: {"model": ErrorOut, "description": "no such call"}},
    )
    async def get_call(call_id: str) -> CallDetail:
        """One call with its transcript, tools, events, timings and analytics."""
        detail = await read_store(store.get_call(call_id), read_timeout_s)
        if detail is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        return call_detail(detail)

    @media.get(
        "/calls/{call_id}/recording",
        response_class=FileResponse,
        responses={
            200: {"content": {"audio/wav": {}}, "description": "the recording"},
            404: {"model": ErrorOut, "description": "no such call or no recording"},
        },
    )
    async def get_recording(call_id: str) -> FileResponse:
        """The call's recording (WAV); supports Range requests. Takes the token as
        `?token=` too, for `<audio src>`."""
        detail = await read_store(store.get_call(call_id), read_timeout_s)
        if detail is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        if not detail.recordings:
            raise HTTPException(404, f"call {call_id!r} has no recording")
        # Path resolution touches the disk: off the event loop.
        path = await asyncio.to_thread(_recording_file, recordings_dir, detail.recordings[-1])
        if path is None:
            raise HTTPException(
                404,
                f"the recording of call {call_id!r} is not in CALLBRIDGE_RECORDINGS_DIR "
                f"({recordings_dir}), so it is not served",
            )
        if not await asyncio.to_thread(path.is_file):
            raise HTTPException(404, f"the recording file of call {call_id!r} is missing")
        return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")

    api = APIRouter(prefix="/api", tags=["calls"], responses=ERRORS)
    api.include_router(router)
    api.include_router(media)
    return api


def _recording_file(recordings_dir: Path, stored: str) -> Path | None:
    """The file a stored recording path names, if it lies inside the recordings folder
    (the only place files are served from, whatever a record says). A relative path may be
    relative to the service's working directory (recordings/x.wav) or to the folder."""
    root = recordings_dir.resolve()
    path = Path(stored)
    candidates = [path] if path.is_absolute() else [path, root / path]
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_relative_to(root):
            return resolved
    return None
