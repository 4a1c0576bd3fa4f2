"""ACS calls across replicas: a call lives where its media lands (docs/scale-out.md).

With shared state on Redis, the replica that answers a call writes its directory entry
(owner, line, call connection, who is calling) and keeps the call's transcript there as it
grows. Callbacks, which the balancer sends to any replica, go into the call's event log;
the replica holding the call reads that log in order. When the media socket lands on
another replica, that replica *adopts* the call: it builds the session from the directory,
takes the ownership, and the first holder lets go without ending anything. When the owner
dies (its heartbeat lapses), a survivor takes the call over and asks Call Automation to
restart media streaming; ACS opens a new socket, the balancer lands it on a live replica,
and that one adopts the call with the conversation so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from callbridge.call.session import CallSession
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolRun
from callbridge.shared import SharedState, SharedStateError
from callbridge.telephony.acs.control import CallControlError, CallGone
from callbridge.telephony.acs.events import CallEvent

if TYPE_CHECKING:
    from callbridge.call.observer import CallOutcome
    from callbridge.telephony.acs.edge import AcsEdge

log = logging.getLogger(__name__)

WATCH_S = 0.5  # how often a replica looks for calls that moved away or lost their owner
EVENTS_BLOCK_MS = 200  # a call new here waits at most this for its first events
TAKEOVER_TTL_S = 20.0  # one survivor restarts a dead owner's call; again after this
MOVES_AT_ONCE = 6
HAND_OVER_S = 15.0  # a stopping replica's time to move its calls before it drains the rest
# A call whose restarted media no replica took within this gets it restarted again: a start
# request lost on the way, or a socket that never arrived, must not leave the caller in
# silence until something else moves the call.
REATTACH_RETRY_S = 5.0
# A start sent right after a stop may find ACS still stopping (how real ACS treats it is
# unconfirmed: docs/scale-out.md): a refused start is tried again after 0.25 s, then 0.5 s.
START_TRIES = 3


def snapshot(session: CallSession, state: str) -> dict[str, str]:
    """The directory fields that let another replica take the call on."""
    info = session.info
    started = time.time() - (time.monotonic() - session.started_at)
    return {
        "state": state,
        "started": f"{started:.3f}",
        "line": session.line.name,
        "connection": session.leg_id,
        "caller": info.caller,
        "callee": info.callee,
        "correlation": info.correlation_id,
        "variables": json.dumps(info.variables),
    }


def event_payload(ev: CallEvent) -> str:
    return json.dumps(dataclasses.asdict(ev))


def event_from(payload: str) -> CallEvent:
    return CallEvent(**json.loads(payload))


class TranscriptKeeper:
    """A `CallObserver` that keeps each call's transcript in the directory, for the
    replica that holds the call next."""

    def __init__(self, shared: SharedState, spawn: Any) -> None:
        self._shared = shared
        self._spawn = spawn

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        self._spawn(_quiet(self._shared.add_line(call_id, role, text)))

    def call_started(self, info: CallInfo) -> None:
        return None

    def tool_ran(self, call_id: str, run: ToolRun) -> None:
        return None

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        return None

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        return None

    def call_ended(self, call_id: str, outcome: CallOutcome) -> None:
        return None


async def _quiet(op: Any) -> None:
    try:
        await op
    except SharedStateError as exc:
        log.debug("shared state not updated: %s", exc)


class Replicas:
    """The edge's dealings with the other replicas (only with distributed shared state)."""

    def __init__(self, edge: AcsEdge, shared: SharedState) -> None:
        self._edge = edge
        self._shared = shared
        self._reading: dict[str, tuple[CallSession, str]] = {}  # call id -> (session, last)
        self._tried: set[str] = set()  # calls a drain has tried to move
        self._states: dict[str, str] = {}  # agent state waiting to be written, per call

    # --- the agent's dialog, for whoever holds the call next ----------------------------
    def keep_agent_state(self, session: CallSession, state: str) -> None:
        """Write the agent's latest state into the call's directory entry; a state that
        comes while one is being written replaces it (only the latest matters)."""
        writing = session.call_id in self._states
        self._states[session.call_id] = state
        if not writing:
            self._edge.spawn(self._write_states(session.call_id))

    async def _write_states(self, call_id: str) -> None:
        while (state := self._states.get(call_id)) is not None:
            try:
                await self._shared.set_fields(call_id, {"agent_state": state})
            except SharedStateError as exc:
                log.debug("agent state not kept for call %s: %s", call_id, exc)
            if self._states.get(call_id) is state:
                del self._states[call_id]

    # --- callbacks, in order, wherever they arrive ------------------------------------
    async def log_events(self, call_id: str, events: list[CallEvent]) -> bool:
        """Put callbacks into the call's event log; False if the log is unreachable."""
        try:
            for ev in events:
                await self._shared.append_event(call_id, event_payload(ev))
        except SharedStateError as exc:
            log.warning("callback not logged for the call's holder: %s", exc)
            return False
        return True

    def read_events(self, session: CallSession, after: str = "0") -> None:
        """Apply the call's logged callbacks here, in order, for as long as it is held here
        (one reader for every call of the replica: `pump`)."""
        self._reading[session.call_id] = (session, after)

    async def pump(self) -> None:
        """Read the event logs of every call held here, in one blocking command at a time,
        and apply each event to its call, in order."""
        shared = self._shared
        while True:
            for call_id, (session, _) in list(self._reading.items()):
                if session.ended:
                    del self._reading[call_id]
            after = {call_id: last for call_id, (_, last) in self._reading.items()}
            try:
                got = await shared.read_events(after, EVENTS_BLOCK_MS)
            except SharedStateError as exc:
                log.debug("event log unreachable: %s", exc)
                await asyncio.sleep(WATCH_S)
                continue
            read: dict[str, str] = {}
            for call_id, event_id, payload in got:
                held = self._reading.get(call_id)
                if held is None:
                    continue
                session = held[0]
                self._reading[call_id] = (session, event_id)
                read[call_id] = event_id
                try:
                    ev = event_from(payload)
                except (TypeError, ValueError):
                    log.warning("unreadable event in the log of call %s", call_id)
                    continue
                try:
                    await self._edge.apply_callback(session, ev)
                except Exception:
                    log.exception("callback %s of call %s failed", ev.name, call_id)
            for call_id, event_id in read.items():
                try:
                    await shared.set_fields(call_id, {"events_read": event_id})
                except SharedStateError:
                    pass

    # --- adoption -----------------------------------------------------------------------
    async def adopt(self, call_id: str) -> CallSession | None:
        """Build the session of a call whose media socket landed here, from the directory;
        None if the directory does not know it or it has ended."""
        try:
            entry = await self._shared.get_call(call_id)
            # Answered a moment ago by another replica: its answer may still be returning.
            for _ in range(40):
                if not entry or entry.get("connection"):
                    break
                await asyncio.sleep(0.05)
                entry = await self._shared.get_call(call_id)
            history = await self._shared.lines(call_id) if entry else []
        except SharedStateError as exc:
            log.warning("cannot adopt call %s: %s", call_id, exc)
            return None
        if not entry or not entry.get("connection") or entry.get("state") == "ended":
            return None
        session = self._edge.resume_session(call_id, entry, history)
        try:
            await self._shared.put_call(
                call_id, {"state": "media"}, self._edge.settings.max_call_duration_s + 600
            )
        except SharedStateError as exc:
            log.warning("directory not updated for adopted call %s: %s", call_id, exc)
        log.info(
            "adopted call %s from replica %s (%d transcript lines)",
            call_id,
            entry.get("owner"),
            len(history),
        )
        session.note_event("handed_over", from_replica=entry.get("owner", ""))
        self.read_events(session, entry.get("events_read", "0"))
        return session

    async def may_reattach(self, call_id: str, connection_id: str | None) -> bool:
        """Whether a spent media token may open a socket for `call_id` here: a survivor
        restarted the call's media after its owner died, and the upgrade names the call's
        own call connection."""
        try:
            entry = await self._shared.get_call(call_id)
        except SharedStateError:
            return False
        return bool(
            entry
            and entry.get("state") == "reattach"
            and connection_id
            and entry.get("connection") == connection_id
        )

    # --- a drain: the calls go on on the other replicas ---------------------------------
    async def hand_over_all(self, settle_s: float) -> int:
        """The replica is stopping: move each of its calls to another replica (ACS closes
        the media socket and opens a new one, which the balancer, seeing this replica not
        ready, lands on another). Returns how many calls were moved; 0 when no other
        replica is alive (then the calls are drained here)."""
        shared = self._shared
        try:
            others = await shared.alive_replicas() - {shared.replica_id}
        except SharedStateError as exc:
            log.warning("drain: cannot see the other replicas (%s): ending calls here", exc)
            return 0
        if not others or not self._movable():
            return 0
        # The balancer must see this replica not ready before ACS reconnects. It stays
        # alive meanwhile (its heartbeat says draining): its calls are its own to move.
        await asyncio.sleep(settle_s)
        # A few at a time: each move is a burst of work at ACS and at the replica that
        # adopts the call; all at once would stretch every caller's silence.
        gate = asyncio.Semaphore(MOVES_AT_ONCE)

        async def move(session: CallSession) -> bool:
            async with gate:
                return await self._move(session)

        moved = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HAND_OVER_S
        # Passes until nothing is left: a socket already on its way here when the balancer
        # took this replica out lands and is adopted, and moves on in the next pass.
        while loop.time() < deadline:
            sessions = self._movable()
            if not sessions:
                waiting = [
                    s
                    for s in self._edge.calls.values()
                    if not s.ended and s.call_id not in self._tried
                ]
                if not waiting:
                    break
                await asyncio.sleep(0.2)  # calls still being adopted here
                continue
            moved += sum(await asyncio.gather(*(move(s) for s in sessions)))
        log.warning("drain: %d call(s) handed to other replicas", moved)
        return moved

    async def going(self) -> None:
        """The replica is about to exit: the others stop counting on it at once."""
        self._edge.heartbeat_stopped = True
        try:
            await self._shared.stop_heartbeat()
        except SharedStateError as exc:
            log.warning("heartbeat not removed (it lapses by itself): %s", exc)

    def _movable(self) -> list[CallSession]:
        return [
            s
            for s in self._edge.calls.values()
            if s.media_attached
            and not s.ended
            and not s.moving
            and s.leg_id
            and s.call_id not in self._tried
        ]

    async def _move(self, session: CallSession) -> bool:
        if session.ended:
            return False
        session.moving = True
        self._tried.add(session.call_id)  # one attempt: a call that cannot move drains here
        try:
            await self._shared.set_fields(
                session.call_id, {"state": "reattach", "reattach_at": f"{time.time():.3f}"}
            )
            await self._edge.control.stop_media_streaming(session.leg_id)
            await self._start_media(session.leg_id)
        except CallGone:
            session.moving = False
            await session.disconnected("the call was over at ACS")
            return False
        except (SharedStateError, CallControlError, OSError) as exc:
            log.warning("call %s could not be handed over: %s", session.call_id, exc)
            session.moving = False
            return False
        with contextlib.suppress(TimeoutError):  # its socket closed here: on to the next
            await asyncio.wait_for(session.wait_ended(), 3.0)
        return True

    # --- calls that moved away, calls whose owner died ---------------------------------
    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                await self._let_go_of_moved()
                await self._take_over_orphans()
            except SharedStateError as exc:
                log.debug("replica watch skipped: %s", exc)

    async def _let_go_of_moved(self) -> None:
        me = self._shared.replica_id
        for session in list(self._edge.calls.values()):
            if session.ended or session.media_attached or not session.leg_id:
                continue
            entry = await self._shared.get_call(session.call_id)
            owner = entry.get("owner") if entry else None
            if owner and owner != me:
                log.info("call %s is held by replica %s now: letting go", session.call_id, owner)
                await session.hand_over(owner)

    async def _take_over_orphans(self) -> None:
        me = self._shared.replica_id
        for call_id in await self._shared.call_ids():
            if call_id in self._edge.calls:
                continue
            entry = await self._shared.get_call(call_id)
            if entry and entry.get("state") == "reattach":
                await self._retry_reattach(call_id, entry)
                continue
            if not entry or entry.get("state") not in ("answered", "media"):
                continue
            owner = entry.get("owner", "")
            if not owner or owner == me or await self._shared.is_alive(owner):
                continue
            if not await self._shared.claim([f"takeover:{call_id}:{owner}"], TAKEOVER_TTL_S):
                continue  # another survivor has it
            await self._restart_media(call_id, entry, owner)

    async def _restart_media(self, call_id: str, entry: dict[str, str], dead: str) -> None:
        connection = entry.get("connection", "")
        log.warning("replica %s is gone: restarting the media of call %s", dead, call_id)
        now = f"{time.time():.3f}"
        await self._shared.put_call(
            call_id, {"state": "reattach", "lost_at": now, "reattach_at": now}, 3600
        )
        try:
            await self._start_media(connection)
        except (CallControlError, OSError) as exc:
            log.warning("could not restart the media of call %s: %s", call_id, exc)

    async def _start_media(self, connection_id: str) -> None:
        """`startMediaStreaming`, tried again when Call Automation refuses it (not when it
        no longer knows the call)."""
        for attempt in range(START_TRIES):
            try:
                await self._edge.control.start_media_streaming(connection_id)
                return
            except CallGone:
                raise
            except CallControlError as exc:
                if attempt == START_TRIES - 1:
                    raise
                log.info("media start refused (%s): trying again", exc)
                await asyncio.sleep(0.25 * 2**attempt)

    async def _retry_reattach(self, call_id: str, entry: dict[str, str]) -> None:
        """A call waiting for its media socket: if none came within `REATTACH_RETRY_S`, one
        replica (the first to claim this attempt) stops and restarts its media."""
        since = entry.get("reattach_at", "")
        try:
            waited = time.time() - float(since)
        except ValueError:
            return  # written by an older replica: nothing to time it by
        if waited < REATTACH_RETRY_S:
            return
        if not await self._shared.claim([f"reattach:{call_id}:{since}"], TAKEOVER_TTL_S):
            return  # another replica retries it
        log.warning(
            "call %s: no replica took its media within %.0f s; restarting it", call_id, waited
        )
        await self._shared.set_fields(call_id, {"reattach_at": f"{time.time():.3f}"})
        connection = entry.get("connection", "")
        try:
            # Whatever half-open socket ACS has for it goes; no stream to stop is fine.
            with contextlib.suppress(CallControlError):
                await self._edge.control.stop_media_streaming(connection)
            await self._start_media(connection)
        except CallGone:
            log.info("call %s was over at ACS", call_id)
            await self._shared.drop_call(call_id)
        except (CallControlError, OSError) as exc:
            log.warning("could not restart the media of call %s: %s", call_id, exc)
