"""`/api/calls`: past and current calls from the store, and their recordings."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse

from callbridge.api.auth import require_admin
from callbridge.api.schemas import CallDetail, CallList, ErrorOut, call_detail, call_summary
from callbridge.store.base import CallStore
from callbridge.store.records import CallQuery

OutcomeFilter = Literal["resolved", "transferred", "abandoned", "failed", "incomplete"]
MAX_LIMIT = 500

_TIME_HELP = (
    "ISO 8601 date (2025-11-23) or date-time (2025-11-23T16:00:00Z; no zone means UTC), "
    "or epoch seconds"
)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no or wrong admin token"},
    422: {"model": ErrorOut, "description": "a bad parameter; the detail says which"},
    503: {"model": ErrorOut, "description": "CALLBRIDGE_ADMIN_TOKEN is not set"},
}


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


def calls_router(store: CallStore, recordings_dir: Path) -> APIRouter:
    router = APIRouter(
        prefix="/api", tags=["calls"], dependencies=[Depends(require_admin)], responses=ERRORS
    )

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
        rows, total = await store.list_calls(
            CallQuery(outcome, q or None, start, end, limit, offset)
        )
        return CallList(calls=[call_summary(r) for r in rows], total=total)

    @router.get(
        "/calls/{call_id}",
        response_model=CallDetail,
        responses={404: {"model": ErrorOut, "description": "no such call"}},
    )
    async def get_call(call_id: str) -> CallDetail:
        """One call with its transcript, tools, events, timings and analytics."""
        detail = await store.get_call(call_id)
        if detail is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        return call_detail(detail)

    @router.get(
        "/calls/{call_id}/recording",
        response_class=FileResponse,
        responses={
            200: {"content": {"audio/wav": {}}, "description": "the recording"},
            404: {"model": ErrorOut, "description": "no such call or no recording"},
        },
    )
    async def get_recording(call_id: str) -> FileResponse:
        """The call's recording (WAV); supports Range requests."""
        detail = await store.get_call(call_id)
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

    return router


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
