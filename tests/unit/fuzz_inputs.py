"""Hypothesis strategies for tests/unit/test_fuzz_routes.py: hostile and near-valid Event
Grid deliveries, Call Automation callbacks and ACS media frames, and the JSON writer that
can spell what Python's `json.dumps` will not (integers past the digit limit, NaN, deep
nesting, lone surrogates in UTF-8 or UTF-16)."""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from typing import Any

from hypothesis import strategies as st

INCOMING_CALL = "Microsoft.Communication.IncomingCall"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
CALLBACK_PREFIX = "Microsoft.Communication."


class Raw(str):
    """A JSON fragment written as it is (e.g. 5,000 digits, `NaN`, `1e400`)."""


def to_json(value: Any, *, ascii_only: bool = True) -> str:
    """`value` as JSON text, iteratively: generated nesting may go deeper than Python's
    recursion limit allows a recursive encoder (json.dumps) to follow."""
    out: list[str] = []
    # Work items: a value to write, or a literal piece of text (the punctuation between).
    stack: list[tuple[bool, Any]] = [(False, value)]
    while stack:
        literal, item = stack.pop()
        if literal:
            out.append(item)
        elif isinstance(item, Raw):
            out.append(str(item))
        elif isinstance(item, dict):
            parts: list[tuple[bool, Any]] = [(True, "{")]
            for i, (k, v) in enumerate(item.items()):
                key = json.dumps(str(k), ensure_ascii=ascii_only)
                parts += [(True, ("," if i else "") + key + ":"), (False, v)]
            parts.append((True, "}"))
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            parts = [(True, "[")]
            for i, v in enumerate(item):
                if i:
                    parts.append((True, ","))
                parts.append((False, v))
            parts.append((True, "]"))
            stack.extend(reversed(parts))
        else:
            out.append(json.dumps(item, ensure_ascii=ascii_only))
    return "".join(out)


# How a JSON document goes on the wire: escaped ASCII (a lone surrogate as "\ud800"), or
# raw UTF-8/16/32 with any lone surrogate encoded as is (which json.loads(bytes) accepts).
ENCODINGS = ("ascii", "utf-8", "utf-16-le", "utf-16-be", "utf-32")


def encode(value: Any, encoding: str) -> bytes:
    if encoding == "ascii":
        return to_json(value).encode("ascii")
    return to_json(value, ascii_only=False).encode(encoding, "surrogatepass")


# --- scalars -------------------------------------------------------------------------------
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "null",
        "4:",
        "4:+14255550123",
        "8:acs:resource_user",
        "\x00",
        "\u202e",
        "\u2028",
        "\ufeff",
        "😀" * 3,
        "a\\b\"c'",
        "../../etc/passwd",
        "%s%n{0}",
        "Robert'); DROP TABLE calls;--",
    ]
)


def _huge(char: str, size: int, extra: int, big: bool) -> str:
    return char * (size + extra * big)


# Long strings: mostly up to 5,000 characters, one in four up to 200,000 (a body or frame
# past its size limit).
HUGE_TEXT = st.builds(
    _huge,
    st.sampled_from(["x", "é", "😀", "\x00", '"', "\\", "\u2028"]),
    st.integers(100, 5000),
    st.integers(0, 195_000),
    st.sampled_from([False, False, False, True]),
)


def _utf16(data: bytes) -> str:
    return data[: len(data) // 2 * 2].decode("utf-16-le", "surrogatepass")


def no_surrogates(text: str) -> str:
    return "".join(ch for ch in text if not "\ud800" <= ch <= "\udfff")


# Text drawn as bytes (one hypothesis choice, where st.text draws each character): any
# UTF-16 code units, so CJK, astral pairs, controls, and lone surrogates about as often.
ANY_TEXT = st.binary(max_size=48).map(_utf16)
LATIN1_TEXT = st.binary(max_size=32).map(lambda b: b.decode("latin-1"))
ASCII_TEXT = st.binary(max_size=32).map(lambda b: bytes(c & 0x7F for c in b).decode("ascii"))
LONE_SURROGATE_TEXT = st.builds(lambda a, s: a + s, LATIN1_TEXT, SURROGATE)
# Text that UTF-8 can carry (what a well-formed event may hold anywhere).
GOOD_TEXT = st.one_of(
    ASCII_TEXT,
    ANY_TEXT.map(no_surrogates),
    LATIN1_TEXT,
    ODD_TEXT,
    HUGE_TEXT,
)
TEXT = st.one_of(GOOD_TEXT, ANY_TEXT, LONE_SURROGATE_TEXT)
KEY = st.one_of(LATIN1_TEXT, ANY_TEXT, ODD_TEXT)

RAW_NUMBER = st.one_of(
    st.integers(1, 4400).map(lambda n: Raw("9" * n)),  # past 4300 digits: not parseable
    st.integers(4295, 4305).map(lambda n: Raw("-" + "1" * n)),
    st.sampled_from(
        [Raw(t) for t in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E-400", "-0")]
        + [Raw("0." + "0" * 5000 + "1"), Raw("1" + "0" * 300 + ".5e-300")]
    ),
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(),  # NaN and the infinities included (json.dumps writes NaN, Infinity)
    RAW_NUMBER,
    TEXT,
)


def _nest(depth: int, inner: Any, kind: str) -> Any:
    for _ in range(depth):
        inner = [inner] if kind == "list" else {"k": inner}
    return inner


# Containers around the 32-level limit of callbridge.telephony.acs.events.
DEEP = st.builds(
    _nest,
    st.integers(25, 40),
    st.one_of(st.none(), st.text(max_size=3)),
    st.sampled_from(["list", "dict"]),
)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEY, inner, max_size=4),
    max_leaves=8,
)
VALUE = st.one_of(JSON, DEEP)
# What a fuzzed field gets: mostly one value, sometimes a whole document (cheaper to draw).
FIELD = st.one_of(SCALAR, SCALAR, DEEP, JSON)


# --- near-valid documents: a valid template with fuzzed fields ------------------------------
# (Every strategy is built once, here: one built inside a draw is validated anew each time.)
Path = tuple[str, ...]
BOOL = st.booleans()
UUID = st.uuids().map(str)
NONEMPTY_TEXT = GOOD_TEXT.map(lambda t: t or "-")
_serial = itertools.count()
# A new id at every draw. Hypothesis draws from a small pool and would repeat event ids
# and call contexts so often that the service would drop most events as redeliveries;
# the pool's ids still come now and then, to exercise exactly that.


def _fresh_id() -> str:
    return f"{next(_serial):08x}-fuzz-{uuid.uuid4()}"


FRESH_ID = st.builds(_fresh_id)
ID = st.one_of(FRESH_ID, FRESH_ID, FRESH_ID, UUID, GOOD_TEXT.map(lambda t: t or _fresh_id()))
# Values that keep a document well-formed wherever they go.
GOOD_VALUE = st.one_of(
    GOOD_TEXT, st.none(), st.booleans(), st.integers(), st.floats(), st.lists(GOOD_TEXT, max_size=3)
)
_ACTION = st.sampled_from(["delete", "value", "text", "empty"])
_EMPTY: st.SearchStrategy[Any] = st.sampled_from(["", None, 0, False, [], {}])
_STRAY = st.sampled_from([False, False, True])


class Mutator:
    """Replaces or deletes up to two fields of a document (fields at `paths`), and may add
    a stray one at the top or in `data`."""

    def __init__(self, paths: list[Path]) -> None:
        self.chosen = st.lists(st.sampled_from(paths), max_size=2, unique=True)

    def __call__(self, draw: st.DrawFn, doc: dict[str, Any]) -> None:
        for path in draw(self.chosen):
            parent: Any = doc
            for key in path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
            if not isinstance(parent, dict):
                continue
            action = draw(_ACTION)
            if action == "delete":
                parent.pop(path[-1], None)
            elif action == "empty":
                parent[path[-1]] = draw(_EMPTY)
            else:
                parent[path[-1]] = draw(FIELD if action == "value" else TEXT)
        if draw(_STRAY):
            target = doc
            if isinstance(doc.get("data"), dict) and draw(BOOL):
                target = doc["data"]
            target[draw(KEY)] = draw(FIELD)


def _party(number: str) -> dict[str, Any]:
    return {
        "kind": "phoneNumber",
        "rawId": f"4:{number}",
        "phoneNumber": {"value": number},
    }


def _grid_envelope(draw: st.DrawFn, event_type: Any, data: dict[str, Any]) -> dict[str, Any]:
    event_id = draw(ID)
    if draw(BOOL):  # CloudEvents 1.0
        return {
            "id": event_id,
            "source": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Communication",
            "specversion": "1.0",
            "type": event_type,
            "time": "2024-05-01T10:00:00Z",
            "data": data,
        }
    return {
        "id": event_id,
        "topic": "/subscriptions/x",
        "subject": "/phonenumber/18005550100",
        "eventType": event_type,
        "eventTime": "2024-05-01T10:00:00Z",
        "dataVersion": "1.0",
        "data": data,
    }


GRID_TYPE = st.one_of(
    st.sampled_from(
        [
            VALIDATION,
            INCOMING_CALL.lower(),
            INCOMING_CALL + " ",
            "Microsoft.Communication.CallStarted",
            "Microsoft.Communication.RecordingFileStatusUpdated",
            "IncomingCall",
        ]
    ),
    TEXT,
    FIELD,
)
_mutate_incoming = Mutator(
    [
        ("id",),
        ("type",),
        ("eventType",),
        ("specversion",),
        ("data",),
        ("data", "incomingCallContext"),
        ("data", "from"),
        ("data", "from", "rawId"),
        ("data", "from", "kind"),
        ("data", "from", "phoneNumber"),
        ("data", "from", "phoneNumber", "value"),
        ("data", "to"),
        ("data", "to", "rawId"),
        ("data", "to", "phoneNumber"),
        ("data", "to", "phoneNumber", "value"),
        ("data", "serverCallId"),
        ("data", "correlationId"),
        ("data", "callerDisplayName"),
        ("data", "customContext"),
        ("data", "customContext", "sipHeaders"),
        ("data", "customContext", "voipHeaders"),
        ("data", "customContext", "sipHeaders", "X-User-To-User"),
    ]
)


@st.composite
def _incoming_event(draw: st.DrawFn) -> dict[str, Any]:
    data = {
        "to": _party("+18005550100"),
        "from": _party("+14255550123"),
        "incomingCallContext": draw(ID),
        "serverCallId": "server-call",
        "correlationId": draw(UUID),
        "callerDisplayName": "Ann",
        "customContext": {
            "sipHeaders": {"X-User-To-User": "order=42"},
            "voipHeaders": {"language": "en"},
        },
    }
    event = _grid_envelope(draw, INCOMING_CALL, data)
    _mutate_incoming(draw, event)
    return event


# An IncomingCall (EventGrid or CloudEvents schema) with up to two fields fuzzed.
INCOMING_EVENT = _incoming_event()

_PHONE = st.one_of(st.fixed_dictionaries({"value": GOOD_VALUE}), GOOD_VALUE)
_OPTIONAL_TEXT = st.one_of(GOOD_TEXT, st.none())
_HEADERS = st.dictionaries(GOOD_TEXT, GOOD_VALUE, max_size=3)
_CUSTOM_CONTEXT = st.one_of(
    st.fixed_dictionaries({}, optional={"sipHeaders": _HEADERS, "voipHeaders": _HEADERS}),
    st.sampled_from([None, "", 0, False, [], {}]),  # falsy: no custom context
)


def _good_party(draw: st.DrawFn) -> dict[str, Any]:
    party: dict[str, Any] = {"rawId": draw(NONEMPTY_TEXT)}
    if draw(BOOL):
        party["kind"] = draw(GOOD_VALUE)
    if draw(BOOL):
        party["phoneNumber"] = draw(_PHONE)
    return party


@st.composite
def _wellformed_incoming(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {
        "to": _good_party(draw),
        "from": _good_party(draw),
        "incomingCallContext": draw(ID),
    }
    for key in ("serverCallId", "correlationId", "callerDisplayName"):
        if draw(BOOL):
            data[key] = draw(_OPTIONAL_TEXT)
    if draw(BOOL):
        data["customContext"] = draw(_CUSTOM_CONTEXT)
    event = _grid_envelope(draw, INCOMING_CALL, data)
    event["id"] = draw(ID)
    return event


# An IncomingCall with nothing wrong in it but odd values wherever text may go.
WELLFORMED_INCOMING = _wellformed_incoming()

_mutate_other = Mutator([("id",), ("data",), ("data", "validationCode"), ("specversion",)])


@st.composite
def _other_grid_event(draw: st.DrawFn) -> dict[str, Any]:
    data = {"validationCode": draw(ID), "validationUrl": "https://x/y"}
    event = _grid_envelope(draw, draw(GRID_TYPE), data)
    _mutate_other(draw, event)
    return event


# A subscription validation or another event type, fuzzed likewise.
OTHER_GRID_EVENT = _other_grid_event()

_GRID_KINDS = {
    "good": WELLFORMED_INCOMING,
    "near": INCOMING_EVENT,
    "other": OTHER_GRID_EVENT,
    "any": FIELD,
}
_GRID_COUNT = st.sampled_from([1, 1, 1, 2, 3])
_GRID_KIND = st.sampled_from(["good", "good", "near", "near", "other", "any"])


@st.composite
def _grid_delivery(draw: st.DrawFn) -> Any:
    events = [draw(_GRID_KINDS[draw(_GRID_KIND)]) for _ in range(draw(_GRID_COUNT))]
    if len(events) == 1 and isinstance(events[0], dict) and draw(BOOL):
        return events[0]
    return events


# What Event Grid might POST: an array of well-formed and near-valid events (or anything
# else in their place), or one bare event.
GRID_DELIVERY = _grid_delivery()


# --- Call Automation callbacks -------------------------------------------------------------
CALLBACK_NAMES = [
    "CallConnected",
    "CallDisconnected",
    "ParticipantsUpdated",
    "AddParticipantSucceeded",
    "AddParticipantFailed",
    "CallTransferAccepted",
    "CallTransferFailed",
    "RecordingStateChanged",
    "MediaStreamingStarted",
    "MediaStreamingStopped",
    "MediaStreamingFailed",
    "AnswerFailed",
    "PlayCompleted",
    "PlayFailed",
    "PlayCanceled",
]
# The events whose handling reads more than the type come up more often.
_NAME = st.sampled_from(
    [
        *CALLBACK_NAMES,
        *(["AddParticipantSucceeded"] * 3),
        *(["RecordingStateChanged"] * 2),
        "AddParticipantFailed",
        "CallTransferFailed",
    ]
)
# How the type is spelled: in full, without the prefix (the same event to the service),
# in the wrong case (another event), or anything.
_SPELLING = st.sampled_from(["full", "full", "full", "bare", "lower", "fuzzed"])
_COMMON_PATHS: list[Path] = [
    ("id",),
    ("type",),
    ("data",),
    ("data", "callConnectionId"),
    ("data", "correlationId"),
    ("data", "operationContext"),
    ("data", "resultInformation"),
    ("data", "resultInformation", "code"),
    ("data", "resultInformation", "subCode"),
    ("data", "resultInformation", "message"),
]
# The fields each event's handling reads, fuzzed more often for that event.
_READ_BY: dict[str, list[Path]] = {
    "AddParticipantSucceeded": [("data", "participant"), ("data", "participant", "rawId")],
    "AddParticipantFailed": [("data", "participant"), ("data", "resultInformation")],
    "CallTransferFailed": [("data", "resultInformation", "message")],
    "RecordingStateChanged": [("data", "state")],
    "ParticipantsUpdated": [("data", "participants")],
}
_mutate_callback = {
    name: Mutator(_COMMON_PATHS + _READ_BY.get(name, []) * 4) for name in CALLBACK_NAMES
}


@st.composite
def _callback_event(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(_NAME)
    spelling = draw(_SPELLING)
    event_type: Any = {
        "full": CALLBACK_PREFIX + name,
        "bare": name,
        "lower": CALLBACK_PREFIX + name.lower(),
    }.get(spelling)
    if event_type is None:
        event_type = draw(TEXT)
    event = {
        "id": draw(ID),
        "source": "calling/callConnections/conn-1",
        "type": event_type,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": "2024-05-01T10:00:01Z",
        "data": {
            "callConnectionId": "conn-1",
            "serverCallId": "server-call",
            "correlationId": "corr",
            "operationContext": "op",
            "resultInformation": {"code": 200, "subCode": 0, "message": "ok"},
            "participant": _party("+14255550199"),
            "participants": [{"identifier": _party("+14255550123"), "isMuted": False}],
            "state": "active",
        },
    }
    _mutate_callback[name](draw, event)
    return event


CALLBACK_EVENT = _callback_event()
_CODE = st.one_of(st.sampled_from([200, 400, 408, 500, 8522, 0, -1, True]), GOOD_VALUE)
_PARTICIPANT = st.one_of(
    st.fixed_dictionaries({"rawId": GOOD_VALUE}, optional={"kind": GOOD_VALUE}), GOOD_VALUE
)


@st.composite
def _wellformed_callback(draw: st.DrawFn) -> dict[str, Any]:
    """A callback the parser takes, with odd values where the service reads loosely."""
    data: dict[str, Any] = {"callConnectionId": draw(_OPTIONAL_TEXT)}
    if draw(BOOL):
        data["correlationId"] = draw(_OPTIONAL_TEXT)
    if draw(BOOL):
        data["operationContext"] = draw(GOOD_VALUE)
    if draw(BOOL):
        data["resultInformation"] = {
            "code": draw(_CODE),
            "subCode": draw(_CODE),
            "message": draw(GOOD_VALUE),
        }
    if draw(BOOL):
        data["participant"] = draw(_PARTICIPANT)
    if draw(BOOL):
        data["state"] = draw(GOOD_VALUE)
    return {
        "id": draw(ID),
        "type": CALLBACK_PREFIX + draw(_NAME),
        "specversion": "1.0",
        "source": "calling/callConnections/conn-1",
        "data": data,
    }


WELLFORMED_CALLBACK = _wellformed_callback()
_CALLBACK_KINDS = {"good": WELLFORMED_CALLBACK, "near": CALLBACK_EVENT, "any": FIELD}
_CALLBACK_KIND = st.sampled_from(["good", "good", "near", "near", "any"])


@st.composite
def _callback_body(draw: st.DrawFn) -> Any:
    events = [draw(_CALLBACK_KINDS[draw(_CALLBACK_KIND)]) for _ in range(draw(_GRID_COUNT))]
    if len(events) == 1 and isinstance(events[0], dict) and draw(BOOL):
        return events[0]
    return events


# What Call Automation might POST: well-formed and near-valid callbacks, or one bare event.
CALLBACK_BODY = _callback_body()
_ENDING = st.sampled_from(["CallDisconnected", "MediaStreamingFailed", "AnswerFailed"])


@st.composite
def _ending_callbacks(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [
        {
            "id": draw(ID),
            "type": CALLBACK_PREFIX + draw(_ENDING),
            "specversion": "1.0",
            "source": "calling/callConnections/conn-1",
            "data": {"callConnectionId": "conn-1", "resultInformation": {"code": 200}},
        }
    ]


# A well-formed CallDisconnected (or MediaStreamingFailed, AnswerFailed): ends the call.
ENDING_CALLBACKS = _ending_callbacks()


# --- media frames -----------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


B64 = st.one_of(
    st.binary(max_size=960).map(_b64),
    st.sampled_from(["", "=", "AA", "AAA", "AAAA====", "!!!!", "AA==AA==", "ÄÄÄÄ", "A\nAAA"]),
    LATIN1_TEXT,
    st.integers(1, 200).map(lambda n: _b64(b"\x01" * (2 * n + 1))),  # an odd byte count
    st.integers(10_000, 60_000).map(lambda n: "A" * (4 * (n // 4))),  # big, maybe oversized
)
_KIND = st.one_of(
    st.sampled_from(["AudioData", "audiodata", "AUDIODATA", "DtmfData", "dtmfData"]),
    st.sampled_from(["AudioMetadata", "audioMetadata", "TranscriptionData", "StopAudio", ""]),
    TEXT,
    FIELD,
)
_SILENT = st.one_of(BOOL, FIELD)
_mutate_audio = Mutator(
    [("kind",), ("audioData",), ("audioData", "data"), ("audioData", "timestamp")]
)


@st.composite
def _audio_data(draw: st.DrawFn) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "kind": "AudioData",
        "audioData": {
            "timestamp": "2024-05-01T10:00:01.000Z",
            "participantRawID": "4:+14255550123",
            "data": draw(B64),
            "silent": draw(_SILENT),
        },
    }
    _mutate_audio(draw, frame)
    return frame


_TONE = st.one_of(
    st.sampled_from([*"0123456789*#ABCDabcd", "pound", "Asterisk", "star", "ten"]),
    TEXT,
    FIELD,
)
_mutate_dtmf = Mutator([("kind",), ("dtmfData",), ("dtmfData", "data")])


@st.composite
def _dtmf_data(draw: st.DrawFn) -> dict[str, Any]:
    frame = {"kind": "DtmfData", "dtmfData": {"data": draw(_TONE), "participantRawID": "4:+1"}}
    _mutate_dtmf(draw, frame)
    return frame


NUMBER = st.one_of(st.sampled_from([16000, 24000, 8000, 0, -1]), SCALAR)
_ENCODING_NAME = st.one_of(st.just("PCM"), TEXT)
_mutate_metadata = Mutator([("kind",), ("audioMetadata",), ("audioMetadata", "sampleRate")])


@st.composite
def _audio_metadata(draw: st.DrawFn) -> dict[str, Any]:
    frame = {
        "kind": "AudioMetadata",
        "audioMetadata": {
            "subscriptionId": draw(UUID),
            "encoding": draw(_ENCODING_NAME),
            "sampleRate": draw(NUMBER),
            "channels": draw(NUMBER),
            "length": draw(NUMBER),
        },
    }
    _mutate_metadata(draw, frame)
    return frame


AUDIO_DATA, DTMF_DATA, AUDIO_METADATA = _audio_data(), _dtmf_data(), _audio_metadata()
_FRAME_DOC = st.one_of(
    AUDIO_DATA,
    AUDIO_DATA,
    DTMF_DATA,
    AUDIO_METADATA,
    st.fixed_dictionaries({"kind": _KIND}, optional={"audioData": FIELD}),
    VALUE,
)
_AS_BINARY = st.sampled_from([False, False, False, False, True])
_ENCODING = st.sampled_from(ENCODINGS)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def _json_frame(draw: st.DrawFn) -> str | bytes:
    doc = draw(_FRAME_DOC)
    if draw(_AS_BINARY):  # the same text sent as a binary frame
        return encode(doc, draw(_ENCODING))
    text = to_json(doc, ascii_only=draw(BOOL))
    # A text frame is UTF-8 on the wire: a lone surrogate can only come escaped.
    return text if _is_unicode(text) else to_json(doc)


JSON_FRAME = _json_frame()
MEDIA_FRAME = st.one_of(
    JSON_FRAME,
    JSON_FRAME,
    JSON_FRAME,
    st.binary(max_size=2048),
    ANY_TEXT.map(no_surrogates),
    HUGE_TEXT,
)
