"""Generated input at the public ACS routes (hypothesis): Event Grid deliveries, Call
Automation callbacks and the media WebSocket.

What a caller and an operator rely on, whatever arrives: no 5xx (Event Grid and ACS retry
those), no crash, nothing done for a request without the right secret or token, only
well-formed events acted on, and every other call unaffected. The expected outcome of each
request is worked out independently, from the documented contract (the oracle below).

Each test starts one app (FakeControl for ACS's REST side, the echo agent, records in a
temporary SQLite file) on an event loop of its own and runs its examples on that loop one
after another; the app's background work (answers, bridges, agents, records) runs during
each example. The examples are derandomized: every run tries the same cases. 5,100 in all,
about 35 s on the 2-core development machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import os
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from callbridge.app import create_app
from callbridge.call.observer import CallOutcome
from callbridge.config import Settings, load_settings
from callbridge.core.call_info import CallInfo
from callbridge.telephony.acs.call_tokens import CallTokens
from tests.fakes import FakeControl
from tests.unit import fuzz_inputs as fz

# Hypothesis keeps a cache (and, unless told not to, an example database) under
# ./.hypothesis; the working tree is not the place for it.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "callbridge-hypothesis")

# A failing example that holds a 200,000-character string is reported all the same.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SECRET = "eventgrid-secret-123456"
SIGNING_KEY = "fuzz-signing-key-0123456789"
MAX_BODY = 1 << 20
MAX_DEPTH = 32
MAX_WS_MESSAGE = 65536
ENDING_CALLBACKS = {"CallDisconnected", "MediaStreamingFailed", "AnswerFailed"}

# Examples (one request, one upgrade, or one batch of frames each): 5,100 in all, times
# CALLBRIDGE_FUZZ_SCALE for a long run (20: 102,000; README, "Tests and benchmarks").
SCALE = max(1, int(os.environ.get("CALLBRIDGE_FUZZ_SCALE", "1")))
GRID_BYTES, GRID_JSON, GRID_NEAR_VALID, GRID_UNAUTHORISED = (
    600 * SCALE,
    400 * SCALE,
    700 * SCALE,
    400 * SCALE,
)
CALLBACK_BODIES, CALLBACK_FORGED = 900 * SCALE, 600 * SCALE
MEDIA_FRAMES, MEDIA_UPGRADES = 900 * SCALE, 600 * SCALE

T = TypeVar("T")


def fuzz_settings(max_examples: int) -> Callable[[T], T]:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


def make_settings(folder: Path, **kw: Any) -> Settings:
    return load_settings(
        acs_connection="endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        public_url="https://bridge.example.com",
        eventgrid_secret=SECRET,
        signing_key=SIGNING_KEY,
        agent="echo",
        database_url=f"sqlite+aiosqlite:///{folder / 'calls.db'}",
        recordings_dir=str(folder / "recordings"),
        # No call ends by itself while the examples run: each end is one the test caused.
        media_connect_timeout_s=3600,
        **kw,
    )


def http(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    return httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30)


def incoming() -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "eventType": fz.INCOMING_CALL,
            "data": {
                "to": {"kind": "phoneNumber", "rawId": "4:+18005550100"},
                "from": {"kind": "phoneNumber", "rawId": "4:+14255550123"},
                "incomingCallContext": str(uuid.uuid4()),
                "serverCallId": "s",
                "correlationId": "c",
            },
        }
    ]


def disconnected() -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "type": "Microsoft.Communication.CallDisconnected",
            "specversion": "1.0",
            "source": "calling/callConnections/conn",
            "data": {"callConnectionId": "conn", "resultInformation": {"code": 200}},
        }
    ]


class Ends:
    """A call observer that keeps each call's end reason."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def call_started(self, info: CallInfo) -> None:
        pass

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        pass

    def tool_ran(self, call_id: str, run: Any) -> None:
        pass

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        pass

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        pass

    def call_ended(self, call_id: str, outcome: CallOutcome) -> None:
        self.reasons[call_id] = outcome.reason


class Service:
    """One app with FakeControl, started once; the examples run on its event loop, which
    runs only while an example (or a check) does."""

    def __init__(self, folder: Path, **kw: Any) -> None:
        self.control = FakeControl()
        self.app = create_app(make_settings(folder, **kw), control=self.control)
        self.edge = self.app.state.edge
        self.ends = Ends()
        self.edge.observers.append(self.ends)
        self.http = http(self.app)
        self._runner: asyncio.Runner | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The app started (lifespan, in a task of its own) on a loop of its own."""
        with asyncio.Runner() as runner:
            self._runner = runner
            up, down = asyncio.Event(), asyncio.Event()

            async def hold() -> None:
                async with self.app.router.lifespan_context(self.app), self.http:
                    up.set()
                    await down.wait()

            holder = runner.get_loop().create_task(hold())
            started = runner.get_loop().create_task(up.wait())
            runner.run(asyncio.wait([holder, started], return_when=asyncio.FIRST_COMPLETED))
            if holder.done():  # the app did not start: say why
                started.cancel()
                holder.result()
            try:
                yield
            finally:
                down.set()
                runner.run(asyncio.wait([holder]))
                holder.result()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the app's loop (background tasks run meanwhile) and wait for it."""
        assert self._runner is not None
        return self._runner.run(coro)

    async def post(self, url: str, what: str, **kw: Any) -> httpx.Response:
        try:
            return await self.http.post(url, **kw)
        except httpx.InvalidURL:
            reject()  # longer than any HTTP client sends (64 KiB): it never reaches the app
        except httpx.HTTPError:
            raise  # the client's own complaint (not one of the app's)
        except Exception as exc:  # the app raised: a 500 and a traceback in service
            body = kw.get("content", b"")
            raise AssertionError(f"POST {what} crashed the app; body[:300]={body[:300]!r}") from exc

    async def answer_call(self) -> tuple[str, str, str]:
        """A good IncomingCall, answered: (call id, callback path with token, media path)."""
        answered = len(self.control.answers)
        r = await self.http.post(f"/acs/incoming?key={SECRET}", json=incoming())
        assert r.status_code == 200, r.text
        assert await until(lambda: len(self.control.answers) > answered), (
            f"a good call was not answered ({len(self.edge.calls)} calls up, "
            f"{len(self.control.rejects)} rejected as busy)"
        )
        _, callback, media, _ = self.control.answers[answered]
        path = callback.removeprefix("https://bridge.example.com")
        call_id = path.split("?")[0].rsplit("/", 1)[1]
        assert call_id in self.edge.calls
        return call_id, path, "/" + media.split("/", 3)[3]

    def live(self, call_id: str) -> bool:
        session = self.edge.calls.get(call_id)
        return session is not None and not session.ended

    async def healthy(self) -> None:
        r = await self.http.get("/healthz")
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text


async def until(ready: Callable[[], bool], within: float = 5.0) -> bool:
    """Wait up to `within` s for `ready()`: a few turns of the loop at first, then a
    millisecond at a time. Whether it came true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    for turn in itertools.count():
        if ready():
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0 if turn < 50 else 0.001)
    raise AssertionError("unreachable")


async def settle() -> None:
    """Let the app's background tasks (answers, rejects) take their next steps."""
    for _ in range(4):
        await asyncio.sleep(0)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Whatever the app logged with a traceback (a failed bridge, observer or task)."""
    fmt = logging.Formatter()
    return [
        f"{r.name}: {r.getMessage()}\n{fmt.formatException(r.exc_info)}"
        for r in caplog.records
        if r.exc_info
    ]


# --- what the routes must do: the documented contract, written out as an oracle ---------------
class Malformed(Exception):
    pass


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _load_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a body, or Malformed for anything events.py promises a 400 for."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise Malformed from None
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if LONE_SURROGATE.search(value):
                raise Malformed
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise Malformed
            items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
            for key, item in items:
                stack.append((item, depth + 1))
                if key is not None:
                    stack.append((key, depth + 1))
    events = [doc] if isinstance(doc, dict) else doc
    if not isinstance(events, list) or not events:
        raise Malformed
    if not all(isinstance(e, dict) for e in events):
        raise Malformed
    return events


def _text(obj: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if not required and value is None:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise Malformed
    return value


def _party_ok(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise Malformed
    _text(obj, "rawId")


@dataclass
class GridExpected:
    status: int
    calls: list[tuple[str, str]] = field(default_factory=list)  # (event id, call context)
    validation_code: str | None = None


def expect_grid(body: bytes) -> GridExpected:
    """What an authorised POST /acs/incoming of `body` must do."""
    if len(body) > MAX_BODY:
        return GridExpected(413)
    try:
        events = _load_events(body)
        parsed: list[tuple[str, str, str]] = []
        for ev in events:
            etype = ev.get("type" if "specversion" in ev else "eventType")
            if not isinstance(etype, str):
                raise Malformed
            eid = _text(ev, "id")
            data = ev.get("data")
            if etype == fz.VALIDATION:
                if not isinstance(data, dict):
                    raise Malformed
                parsed.append(("validation", eid, _text(data, "validationCode")))
            elif etype == fz.INCOMING_CALL:
                if not isinstance(data, dict) or not isinstance(
                    data.get("customContext") or {}, dict
                ):
                    raise Malformed
                ctx = _text(data, "incomingCallContext")
                _party_ok(data.get("from"))
                _party_ok(data.get("to"))
                for key in ("serverCallId", "correlationId", "callerDisplayName"):
                    _text(data, key, required=False)
                parsed.append(("call", eid, ctx))
    except Malformed:
        return GridExpected(400)
    expected = GridExpected(200)
    for kind, eid, value in parsed:
        if kind == "validation":  # answered at once: later events are not looked at
            expected.validation_code = value
            break
        expected.calls.append((eid, value))
    return expected


@dataclass
class CallbackExpected:
    status: int
    events: list[tuple[str, str]] = field(default_factory=list)  # (event id, name)


def expect_callback(body: bytes) -> CallbackExpected:
    """What an authorised POST /acs/callbacks/{call_id} of `body` must do."""
    if len(body) > MAX_BODY:
        return CallbackExpected(413)
    try:
        events = []
        for ev in _load_events(body):
            etype = ev.get("type")
            if not isinstance(etype, str) or not etype:
                raise Malformed
            data = ev.get("data")
            if not isinstance(data, dict):
                raise Malformed
            _text(data, "callConnectionId", required=False)
            _text(data, "correlationId", required=False)
            events.append((_text(ev, "id"), etype.removeprefix(fz.CALLBACK_PREFIX)))
    except Malformed:
        return CallbackExpected(400)
    return CallbackExpected(200, events)


# --- who may ask: delivery keys and call tokens --------------------------------------------------
WRONG_KEY = st.one_of(
    st.sampled_from(
        [SECRET[:-1], SECRET + "x", SECRET.upper(), SECRET[::-1], SECRET + "\x00", "Bearer"]
    ),
    st.text(max_size=40),
).filter(lambda v: v != SECRET)
# A header value as an HTTP server hands it on: latin-1, no surrounding whitespace.
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
    min_size=1,
    max_size=40,
)
WRONG_HEADER_KEY = st.one_of(
    st.sampled_from([SECRET[:-1], SECRET + "x", SECRET.upper(), "Bearer"]), HEADER_TEXT
).filter(lambda v: v != SECRET)


@dataclass(frozen=True)
class Credentials:
    params: dict[str, str]
    headers: dict[str, bytes]
    authorised: bool


RIGHT_CREDENTIALS = st.sampled_from(
    [
        Credentials({"key": SECRET}, {}, True),
        Credentials({}, {"x-callbridge-key": SECRET.encode()}, True),
        *(
            Credentials({}, {"authorization": (scheme + SECRET).encode()}, True)
            for scheme in ("Bearer ", "bearer ", "BEARER ", "Bearer  ")
        ),
    ]
)


_MAYBE_WRONG_QUERY = st.one_of(st.none(), WRONG_KEY)
_MAYBE_WRONG_HEADER = st.one_of(st.none(), st.just(SECRET), WRONG_HEADER_KEY)
_SCHEME = st.sampled_from(["Bearer ", "bearer ", "Basic ", "Token ", "Bearer:", ""])


@st.composite
def _wrong_credentials(draw: st.DrawFn) -> Credentials:
    params: dict[str, str] = {}
    headers: dict[str, bytes] = {}
    query = draw(_MAYBE_WRONG_QUERY)
    if query is not None:
        params["key"] = query
    header = draw(_MAYBE_WRONG_HEADER)
    if header is not None:
        headers["x-callbridge-key"] = header.encode("latin-1")
    scheme = draw(_SCHEME)
    bearer = draw(_MAYBE_WRONG_HEADER)
    if bearer is not None:
        headers["authorization"] = (scheme + bearer).encode("latin-1")
    # The first place with a non-empty key decides (the query, the header, the bearer).
    auth = headers.get("authorization", b"").decode("latin-1")
    offered = (
        params.get("key")
        or headers.get("x-callbridge-key", b"").decode("latin-1")
        or (auth[7:].strip() if auth.lower().startswith("bearer ") else "")
    )
    return Credentials(params, headers, offered == SECRET)


# Keys in any of the three places, each maybe wrong: mostly not authorised.
WRONG_CREDENTIALS = _wrong_credentials()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed(body: str) -> str:
    """`body` signed with the service's own key: a genuine signature over any claims."""
    key = hashlib.sha256(SIGNING_KEY.encode()).digest()
    return f"{body}.{_b64(hmac.new(key, body.encode('ascii'), hashlib.sha256).digest())}"


ASCII_TEXT = fz.LATIN1_TEXT.map(lambda t: t.encode("ascii", "ignore").decode())
SHORT_TEXT = st.one_of(fz.LATIN1_TEXT, fz.ANY_TEXT.map(fz.no_surrogates), fz.ODD_TEXT)
# How a token is forged; resolved against the live call when the example runs.
FORGED_TOKEN = st.one_of(
    st.tuples(st.sampled_from(["missing", "empty", "other-key", "media", "expired"])),
    st.tuples(st.just("text"), SHORT_TEXT),
    st.tuples(st.just("dotted"), SHORT_TEXT, SHORT_TEXT),  # body.signature, any text
    st.tuples(
        st.just("mutated"),
        st.sampled_from(["flip", "cut", "append", "swap", "dot"]),
        st.integers(0, 200),
        st.characters(max_codepoint=0x7E),
    ),
    st.tuples(st.just("other-call"), st.uuids().map(lambda u: u.hex)),
    st.tuples(st.just("signed-claims"), fz.FIELD, st.sampled_from(fz.ENCODINGS)),
    st.tuples(st.just("signed-text"), ASCII_TEXT),
)


def forge(case: tuple[Any, ...], call_id: str, real: str, tokens: CallTokens) -> str | None:
    """The token `case` describes, for the call `call_id` whose genuine token is `real`."""
    kind = case[0]
    if kind == "missing":
        return None
    if kind == "empty":
        return ""
    if kind == "other-key":
        return CallTokens("some-other-signing-key-42").mint(call_id, "callback", 600)
    if kind == "media":
        return tokens.mint(call_id, "media", 60)
    if kind == "expired":
        return tokens.mint(call_id, "callback", -5)
    if kind == "text":
        return str(case[1])
    if kind == "dotted":
        return f"{case[1]}.{case[2]}"
    if kind == "mutated":
        op, at, ch = str(case[1]), int(case[2]) % len(real), str(case[3])
        if op == "flip":
            return real[:at] + ch + real[at + 1 :]
        if op == "cut":
            return real[:at]
        if op == "append":
            return real + ch
        if op == "swap":
            body, _, sig = real.partition(".")
            return f"{sig}.{body}"
        return real.replace(".", ch, 1)
    if kind == "other-call":
        return tokens.mint(str(case[1]), "callback", 600)
    if kind == "signed-claims":
        return signed(_b64(fz.encode(case[1], case[2])))
    return signed(str(case[1]))


# --- 1. POST /acs/incoming ----------------------------------------------------------------------
RAW_BODY = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda n: b"[" * n + b"]" * n, st.integers(1, 100_000)),
    st.builds(lambda n: b'{"a":' * n + b"1" + b"}" * n, st.integers(25, 40)),
    st.integers(MAX_BODY - 2, MAX_BODY + 2).map(lambda n: b" " * (n - 2) + b"[]"),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"[{}]", b"\xef\xbb\xbf[]", b'"\xed\xa0\x80"']),
)


class GridFuzz:
    def __init__(self, service: Service) -> None:
        self.s = service
        self.seen_ids: set[str] = set()
        self.seen_contexts: set[str] = set()
        # Ids and contexts of a delivery that failed half-way: taken or not, who knows.
        self.unsure: set[str] = set()
        self.keep: set[str] = set()  # calls the examples must leave alone
        self.cases = {"bytes": 0, "json": 0, "near-valid": 0, "unauthorised": 0}
        self.statuses: dict[int, int] = {}

    async def deliver(self, body: bytes, creds: Credentials, kind: str) -> None:
        s = self.s
        self.cases[kind] += 1
        answers, rejects = len(s.control.answers), len(s.control.rejects)
        expected = expect_grid(body)
        try:
            r = await s.post(
                "/acs/incoming",
                "/acs/incoming",
                params=creds.params,
                headers=creds.headers,
                content=body,
            )
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, f"{r.status_code} {r.text[:300]} for {body[:300]!r}"
        except AssertionError:
            # (So that the examples hypothesis runs after this failure are judged right.)
            for event_id, ctx in expected.calls:
                self.unsure.update((event_id, ctx))
            raise
        if not creds.authorised:
            assert r.status_code == 401, r.text[:300]
            await settle()
            assert len(s.control.answers) == answers and len(s.control.rejects) == rejects
            return
        assert r.status_code == expected.status, f"{r.text[:300]} for {body[:300]!r}"
        if r.status_code == 200 and expected.validation_code is not None:
            assert r.json() == {"validationResponse": expected.validation_code}
        # Event Grid delivers at least once: a call is answered once per event id and context.
        fresh: list[str] = []
        maybe: list[str] = []
        for event_id, ctx in expected.calls:
            if event_id in self.seen_ids or ctx in self.seen_contexts:
                continue
            self.seen_ids.add(event_id)
            self.seen_contexts.add(ctx)
            (maybe if {event_id, ctx} & self.unsure else fresh).append(ctx)

        def taken() -> list[str]:
            return [a[0] for a in s.control.answers[answers:]] + [
                r[0] for r in s.control.rejects[rejects:]
            ]

        await until(lambda: len(taken()) >= len(fresh))  # (compared just below)
        await settle()
        extra = Counter(taken()) - Counter(fresh)
        assert not Counter(fresh) - Counter(taken()), f"calls not answered for {body[:300]!r}"
        assert not extra - Counter(maybe), f"calls answered for {body[:300]!r}: {extra}"
        # Hang the new calls up (as ACS would): the cap never fills, records get their ends.
        for call_id, session in list(s.edge.calls.items()):
            if call_id not in self.keep:
                await session.disconnected("call disconnected (fuzz case done)")


def fuzz_eventgrid(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    make_run: Callable[[Service, GridFuzz], Callable[[], None]],
) -> GridFuzz:
    """Run `kind` examples at one app, beside a call that must not notice; then the next
    good call must be answered as ever."""
    caplog.set_level(logging.WARNING)
    service = Service(tmp_path)
    fuzz = GridFuzz(service)
    with service.running():
        bystander, _, _ = service.run(service.answer_call())
        fuzz.keep.add(bystander)
        fuzz.seen_contexts.update(a[0] for a in service.control.answers)
        make_run(service, fuzz)()

        async def after() -> None:
            assert service.live(bystander)
            await service.healthy()
            answered = len(service.control.answers)
            good, _, _ = await service.answer_call()
            assert len(service.control.answers) == answered + 1 and service.live(good)

        service.run(after())
    print(f"\n/acs/incoming, {kind}: {fuzz.cases[kind]} cases, statuses {fuzz.statuses}")
    assert tracebacks(caplog) == []
    return fuzz


def test_fuzz_eventgrid_arbitrary_bytes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def make_run(service: Service, fuzz: GridFuzz) -> Callable[[], None]:
        @fuzz_settings(GRID_BYTES)
        @given(body=RAW_BODY, creds=RIGHT_CREDENTIALS)
        def arbitrary_bytes(body: bytes, creds: Credentials) -> None:
            service.run(fuzz.deliver(body, creds, "bytes"))

        return arbitrary_bytes

    fuzz_eventgrid(tmp_path, caplog, "bytes", make_run)


def test_fuzz_eventgrid_arbitrary_json(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def make_run(service: Service, fuzz: GridFuzz) -> Callable[[], None]:
        @fuzz_settings(GRID_JSON)
        @given(doc=fz.VALUE, encoding=st.sampled_from(fz.ENCODINGS), creds=RIGHT_CREDENTIALS)
        def arbitrary_json(doc: Any, encoding: str, creds: Credentials) -> None:
            service.run(fuzz.deliver(fz.encode(doc, encoding), creds, "json"))

        return arbitrary_json

    fuzz_eventgrid(tmp_path, caplog, "json", make_run)


def test_fuzz_eventgrid_near_valid_deliveries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def make_run(service: Service, fuzz: GridFuzz) -> Callable[[], None]:
        @fuzz_settings(GRID_NEAR_VALID)
        @given(
            doc=fz.GRID_DELIVERY,
            encoding=st.sampled_from(fz.ENCODINGS[:2]),
            creds=RIGHT_CREDENTIALS,
        )
        def near_valid(doc: Any, encoding: str, creds: Credentials) -> None:
            service.run(fuzz.deliver(fz.encode(doc, encoding), creds, "near-valid"))

        return near_valid

    fuzz = fuzz_eventgrid(tmp_path, caplog, "near-valid", make_run)
    # Both sides of the parser were exercised: many calls answered, many deliveries refused.
    assert fuzz.statuses.get(200, 0) > GRID_NEAR_VALID // 4
    assert fuzz.statuses.get(400, 0) > GRID_NEAR_VALID // 4


def test_fuzz_eventgrid_without_the_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def make_run(service: Service, fuzz: GridFuzz) -> Callable[[], None]:
        @fuzz_settings(GRID_UNAUTHORISED)
        @given(doc=fz.GRID_DELIVERY, creds=WRONG_CREDENTIALS)
        def unauthorised(doc: Any, creds: Credentials) -> None:
            service.run(fuzz.deliver(fz.encode(doc, "ascii"), creds, "unauthorised"))

        return unauthorised

    fuzz = fuzz_eventgrid(tmp_path, caplog, "unauthorised", make_run)
    assert fuzz.statuses.get(401, 0) > GRID_UNAUTHORISED // 2


# --- 2. POST /acs/callbacks/{call_id}?token=... ---------------------------------------------
CALLBACK_RAW = st.one_of(
    st.tuples(fz.CALLBACK_BODY, st.sampled_from(fz.ENCODINGS[:2])).map(lambda d: fz.encode(*d)),
    fz.CALLBACK_BODY.map(lambda doc: fz.encode(doc, "ascii")),
    fz.VALUE.map(lambda doc: fz.encode(doc, "ascii")),
    RAW_BODY,
)
# Whose call the path names: the live call's, or the call before it (ended, token genuine).
GENUINE_PATH = st.sampled_from([("live",), ("live",), ("live",), ("ended",)])
# Forged: a forged token for the live call, or its genuine token at another call's path.
FORGED_PATH = st.one_of(st.just(("live",)), st.tuples(st.just("other"), SHORT_TEXT))
FORGED_BODY = st.one_of(fz.ENDING_CALLBACKS, fz.CALLBACK_BODY).map(
    lambda doc: fz.encode(doc, "ascii")
)


def simple_segment(text: str) -> bool:
    return bool(text) and "/" not in text and text not in (".", "..")


class CallbackFuzz:
    def __init__(self, service: Service) -> None:
        self.s = service
        self.live_id = ""
        self.live_path = ""
        self.ended_path = ""
        self.seen: set[str] = set()
        self.unsure: set[str] = set()  # ids of a delivery that failed half-way
        self.cases = {"genuine token": 0, "forged token": 0}
        self.calls = 0
        self.statuses: dict[int, int] = {}

    async def new_call(self) -> None:
        if self.live_path:
            self.ended_path = self.live_path
        self.live_id, self.live_path, _ = await self.s.answer_call()
        self.calls += 1

    async def post(
        self, body: bytes, where: tuple[str, ...], token: tuple[Any, ...], kind: str
    ) -> None:
        s = self.s
        self.cases[kind] += 1
        if not s.live(self.live_id):
            await self.new_call()
        live_before = s.live(self.live_id)
        path, _, query = self.live_path.partition("?")
        genuine = query.removeprefix("token=")
        target = where[0]
        if target == "ended" and not self.ended_path:
            target = "live"
        if target == "ended":
            path, _, query = self.ended_path.partition("?")
        call_id = path.rsplit("/", 1)[1]
        if target == "other":
            call_id = str(where[1])
            path = "/acs/callbacks/" + quote(call_id, safe="")
        if token[0] == "genuine":
            value: str | None = query.removeprefix("token=")
        else:
            value = forge(token, call_id, genuine, s.edge.tokens)
        url = path if value is None else f"{path}?token={quote(value, safe='')}"
        what = f"token {value!r}, call id {call_id!r}, body {body[:300]!r}"
        expected = expect_callback(body)
        try:
            r = await s.post(url, "/acs/callbacks", content=body)
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, f"{r.status_code} {r.text[:300]} for {what}"
        except AssertionError:
            # (So that the examples hypothesis runs after this failure are judged right.)
            self.unsure.update(event_id for event_id, _ in expected.events)
            raise
        authorised = token[0] == "genuine" and target != "other"
        if token[0] == "mutated" and value == genuine and target == "live":
            authorised = True  # the mutation changed nothing
        if not authorised:
            if simple_segment(call_id):
                assert r.status_code == 401, f"{r.text[:300]} for {what}"
            else:  # a path no route takes as it stands: a 404, a redirect, never accepted
                assert r.status_code != 200, f"{r.text[:300]} for {what}"
            assert s.live(self.live_id) == live_before, f"the live call ended after {what}"
            return
        assert r.status_code == expected.status, f"{r.text[:300]} for {what}"
        ends = may_end = False
        if r.status_code == 200:
            for event_id, name in expected.events:
                ending = target == "live" and name in ENDING_CALLBACKS
                if event_id in self.unsure:
                    may_end = may_end or ending
                elif event_id not in self.seen:
                    ends = ends or ending
                # The service takes an event id once, whichever call it came for (ACS's
                # ids are unique; the fuzzer's short ones repeat across examples).
                self.seen.add(event_id)
        await settle()
        # The call ends with a CallDisconnected (or ACS saying its media or answer failed)
        # and with nothing else.
        if not may_end:
            assert s.live(self.live_id) == (live_before and not ends), f"for {what}"


def fuzz_callbacks(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    make_run: Callable[[Service, CallbackFuzz], Callable[[], None]],
) -> None:
    """Run `kind` examples at one app, beside a call that must not notice."""
    caplog.set_level(logging.WARNING)
    service = Service(tmp_path)
    fuzz = CallbackFuzz(service)
    with service.running():
        bystander, bystander_path, _ = service.run(service.answer_call())
        service.run(fuzz.new_call())
        make_run(service, fuzz)()

        async def after() -> None:
            # The other call heard nothing of it, and still ends by its own CallDisconnected.
            assert service.live(bystander)
            await service.healthy()
            r = await service.http.post(bystander_path, json=disconnected())
            assert r.status_code == 200 and not service.live(bystander)
            assert service.ends.reasons[bystander].startswith("call disconnected")

        service.run(after())
    print(
        f"\n/acs/callbacks, {kind}: {fuzz.cases[kind]} cases over {fuzz.calls} calls, "
        f"statuses {dict(sorted(fuzz.statuses.items()))}"
    )
    assert tracebacks(caplog) == []


def test_fuzz_callbacks_with_the_genuine_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def make_run(service: Service, fuzz: CallbackFuzz) -> Callable[[], None]:
        @fuzz_settings(CALLBACK_BODIES)
        @given(body=CALLBACK_RAW, where=GENUINE_PATH)
        def genuine(body: bytes, where: tuple[str, ...]) -> None:
            service.run(fuzz.post(body, where, ("genuine",), "genuine token"))

        return genuine

    fuzz_callbacks(tmp_path, caplog, "genuine token", make_run)


def test_fuzz_callbacks_with_forged_tokens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def make_run(service: Service, fuzz: CallbackFuzz) -> Callable[[], None]:
        @fuzz_settings(CALLBACK_FORGED)
        @given(
            body=FORGED_BODY,
            where=FORGED_PATH,
            token=st.one_of(st.just(("genuine",)), FORGED_TOKEN),
        )
        def forged(body: bytes, where: tuple[str, ...], token: tuple[Any, ...]) -> None:
            service.run(fuzz.post(body, where, token, "forged token"))

        return forged

    fuzz_callbacks(tmp_path, caplog, "forged token", make_run)


# --- 3. the media WebSocket -----------------------------------------------------------------
class Socket:
    """A WebSocket client speaking ASGI straight to the app (on the app's own loop)."""

    def __init__(self, app: FastAPI, path: str) -> None:
        self.path = path
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: list[MutableMapping[str, Any]] = []
        self.accepted = False
        self.close_code: int | None = None
        self.frames = 0
        self.oversized = False
        self.reader: asyncio.Task[Any] | None = None
        self.to_app.put_nowait({"type": "websocket.connect"})
        raw = quote(path, safe="/")
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "wss",
            "server": ("bridge.example.com", 443),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": path,
            "raw_path": raw.encode("utf-8", "surrogatepass"),
            "query_string": b"",
            "headers": [(b"host", b"bridge.example.com")],
            "subprotocols": [],
            "state": {},
        }
        self.task = asyncio.create_task(app(scope, self.to_app.get, self._from_app))

    async def _from_app(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.accept":
            self.accepted = True
        elif message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
        elif message["type"] == "websocket.send":
            self.from_app.append(message)

    async def opened(self) -> None:
        opened = await until(
            lambda: self.accepted or self.close_code is not None or self.task.done()
        )
        assert opened, f"no answer to the upgrade of {self.path}"

    def send(self, frame: str | bytes) -> None:
        self.frames += 1
        size = len(frame.encode("utf-8", "surrogatepass")) if isinstance(frame, str) else len(frame)
        self.oversized = self.oversized or max(len(frame), size) > MAX_WS_MESSAGE
        key = "text" if isinstance(frame, str) else "bytes"
        self.to_app.put_nowait({"type": "websocket.receive", key: frame})

    async def drained(self) -> None:
        """Wait until the app has read every frame sent (or closed), then a moment more."""
        await until(lambda: self.to_app.empty() or self.closed or self.reader_stopped())
        await settle()

    def reader_stopped(self) -> bool:
        """The call's reader of this socket (the session's `caller:<call id>` task) has
        stopped while the socket is open: the call no longer hears its caller."""
        if self.reader is None:
            name = "caller:" + self.path.split("/")[3]
            self.reader = next((t for t in asyncio.all_tasks() if t.get_name() == name), None)
        return self.reader is not None and self.reader.done() and not self.closed

    @property
    def closed(self) -> bool:
        return self.close_code is not None or self.task.done()

    def crash(self) -> BaseException | None:
        if self.task.done() and not self.task.cancelled():
            return self.task.exception()
        return None

    def check(self, what: str) -> None:
        """Fail, with the app's traceback, if the socket's handler or the call's reader of
        the socket died."""
        exc = self.crash()
        if exc is not None:
            raise AssertionError(f"the media socket handler crashed on {what}") from exc
        if self.reader_stopped():
            assert self.reader is not None
            cause = None if self.reader.cancelled() else self.reader.exception()
            raise AssertionError(f"the call stopped reading its media after {what}") from cause

    async def hang_up(self) -> None:
        if not self.closed:
            self.to_app.put_nowait({"type": "websocket.disconnect", "code": 1000})


def pcm_frame(pcm: bytes) -> str:
    data = base64.b64encode(pcm).decode("ascii")
    return json.dumps({"kind": "AudioData", "audioData": {"data": data, "silent": False}})


METADATA = json.dumps(
    {
        "kind": "AudioMetadata",
        "audioMetadata": {
            "subscriptionId": "sub",
            "encoding": "PCM",
            "sampleRate": 24000,
            "channels": 1,
            "length": 640,
        },
    }
)


PROBE = pcm_frame(bytes(960))  # 20 ms of silence: what every call's media is full of


class MediaFuzz:
    def __init__(self, service: Service) -> None:
        self.s = service
        self.sock: Socket | None = None
        self.call_id = ""
        self.callback = ""
        self.media_token = ""
        self.cases = 0
        self.frames = 0
        self.forged = 0
        self.closes: dict[int, int] = {}
        self.expected_ends: dict[str, tuple[str, ...]] = {}

    async def new_call(self, first_frame: str | None = None) -> Socket:
        await self.hang_up()
        self.call_id, self.callback, media = await self.s.answer_call()
        self.media_token = media.rsplit("/", 1)[1]
        self.sock = Socket(self.s.app, media)
        await self.sock.opened()
        self.sock.check("a genuine upgrade")
        assert self.sock.accepted, f"a genuine media upgrade was refused ({self.sock.close_code})"
        if first_frame is not None:
            self.sock.send(first_frame)
        return self.sock

    async def hang_up(self) -> None:
        """ACS ends the call: the socket closes and CallDisconnected follows. (A call whose
        socket the service closed ends by itself; one whose handler crashed is ended too, or
        such calls would fill the service up while hypothesis shrinks a failure.)"""
        if self.sock is not None and not self.sock.closed:
            await self.sock.hang_up()
            self.expected_ends[self.call_id] = ("call disconnected", "media socket closed")
        elif self.sock is None or self.sock.close_code is not None:
            return
        r = await self.s.http.post(self.callback, json=disconnected())
        assert r.status_code == 200

    async def still_heard(self, sock: Socket, what: str) -> None:
        """The call still takes its media: a good frame after the fuzzed ones is heard."""
        session = self.s.edge.calls.get(self.call_id)
        assert session is not None and not session.ended, f"the call ended after {what}"
        heard = session.stats.frames_in
        sock.send(PROBE)
        await until(lambda: session.stats.frames_in > heard or sock.closed or sock.reader_stopped())
        sock.check(what)
        assert session.stats.frames_in > heard or sock.closed, (
            f"the call stopped reading its media after {what}"
        )

    async def case(self, frames: list[str | bytes], fresh_call: bool) -> None:
        self.cases += 1
        sock = self.sock
        if sock is None or sock.closed or sock.reader_stopped() or fresh_call:
            sock = await self.new_call()
        for frame in frames:
            sock.send(frame)
            self.frames += 1
        await sock.drained()
        what = f"frames {[f[:200] for f in frames]!r}"
        sock.check(what)
        if not sock.closed:
            await self.still_heard(sock, what)
        if sock.close_code is not None:
            # The leg gives up on a call that sends nothing but garbage, or too much at once.
            code = sock.close_code
            self.closes[code] = self.closes.get(code, 0) + 1
            assert (code == 1007 and sock.frames >= 50) or (code == 1009 and sock.oversized), (
                f"media socket closed with {code} after {sock.frames} frames, the last {what}"
            )
            reason = "too many malformed" if code == 1007 else "oversized media message"
            self.expected_ends[self.call_id] = (reason,)

    async def forged_upgrade(self, case: tuple[Any, ...]) -> None:
        """Another upgrade for the live call, its token forged or replayed: refused, and
        nothing else happens."""
        self.forged += 1
        tokens = self.s.edge.tokens
        token = forge(case, self.call_id, self.media_token, tokens) or ""
        if case[0] == "media":  # a genuine media token, used once already
            tokens.verify(token, self.call_id, "media")
        forged = Socket(self.s.app, f"/acs/media/{self.call_id}/{token}")
        await forged.opened()
        forged.check(f"a media upgrade with token {token!r}")
        assert not forged.accepted, f"a forged media upgrade ({token!r}) was accepted"
        if simple_segment(token):
            assert forged.close_code == 4401, f"{forged.close_code} for token {token!r}"
        assert self.sock is not None
        await self.still_heard(self.sock, f"a media upgrade with token {token!r}")


FRAMES = st.lists(fz.MEDIA_FRAME, min_size=1, max_size=6)
FRESH_CALL = st.sampled_from([*[False] * 9, True])  # a new call now and then: open() again


def test_fuzz_media_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    service = Service(tmp_path)
    fuzz = MediaFuzz(service)
    with service.running():

        @fuzz_settings(MEDIA_FRAMES)
        @given(frames=FRAMES, fresh_call=FRESH_CALL)
        def media(frames: list[str | bytes], fresh_call: bool) -> None:
            service.run(fuzz.case(frames, fresh_call))

        media()
        service.run(fuzz.hang_up())
        service.run(well_behaved_call(service))

        async def ends() -> None:
            # Every fuzzed call ended the way its socket did (after the leg's 2 s grace).
            await until(lambda: all(c in service.ends.reasons for c in fuzz.expected_ends), 10)
            assert set(fuzz.expected_ends) <= set(service.ends.reasons)
            for cid, reasons in fuzz.expected_ends.items():
                reason = service.ends.reasons[cid]
                assert reason.startswith(reasons), (cid, reason)

        service.run(ends())
    print(
        f"\nmedia: {fuzz.cases} cases, {fuzz.frames} frames over {len(fuzz.expected_ends)} "
        f"calls, closes {fuzz.closes}"
    )
    assert tracebacks(caplog) == []


async def well_behaved_call(service: Service) -> None:
    """The service is up, and a well-behaved call is bridged: the echo agent says back what
    the caller said."""
    await service.healthy()
    call_id, callback, media_path = await service.answer_call()
    sock = Socket(service.app, media_path)
    await sock.opened()
    assert sock.accepted
    sock.send(METADATA)
    t = np.arange(24000) / 24000
    tone = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()
    for i in range(0, len(tone), 960):
        sock.send(pcm_frame(tone[i : i + 960]))
    for _ in range(50):
        sock.send(PROBE)
    await sock.drained()

    def echoed() -> bool:
        while sock.from_app:
            frame = json.loads(sock.from_app.pop().get("text") or "{}")
            if frame.get("Kind") == "AudioData" and any(
                base64.b64decode(frame["AudioData"]["Data"])
            ):
                return True
        return False

    assert await until(echoed, within=5), "the well-behaved caller never heard the echo"
    sock.check("a well-behaved call")
    assert sock.close_code is None and service.live(call_id)
    await sock.hang_up()
    r = await service.http.post(callback, json=disconnected())
    assert r.status_code == 200


def test_fuzz_media_upgrades_with_forged_tokens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    service = Service(tmp_path)
    fuzz = MediaFuzz(service)
    with service.running():
        service.run(fuzz.new_call(METADATA))

        @fuzz_settings(MEDIA_UPGRADES)
        @given(token=FORGED_TOKEN)
        def upgrades(token: tuple[Any, ...]) -> None:
            service.run(fuzz.forged_upgrade(token))

        upgrades()
        service.run(fuzz.hang_up())
        service.run(well_behaved_call(service))
    print(f"\nmedia upgrades: {fuzz.forged} forged")
    assert tracebacks(caplog) == []
