"""``callbridge emulator`` and ``callbridge call`` subcommands.

The service's CLI (written elsewhere) calls :func:`register` with its subparsers. The
emulator itself and the HTTP client load only when one of these commands runs: every
`callbridge serve` builds this parser, and a replica should not carry the emulator
(docs/architecture.md, "Memory").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .humans import Human

DEFAULT_PORT = 8765
DEFAULT_WEBHOOK = "http://127.0.0.1:8080/acs/incoming"
START_HINT = "start one with `callbridge emulator` (or `make run`)"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    emu = subparsers.add_parser("emulator", help="run the local ACS emulator until Ctrl-C")
    emu.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    emu.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("CALLBRIDGE_EMULATOR_PORT", DEFAULT_PORT)),
        help="port (env CALLBRIDGE_EMULATOR_PORT, default 8765)",
    )
    emu.add_argument(
        "--webhook",
        default=os.environ.get("CALLBRIDGE_EMULATOR_WEBHOOK", DEFAULT_WEBHOOK),
        help="service's Event Grid webhook URL incl. query (env CALLBRIDGE_EMULATOR_WEBHOOK)",
    )
    emu.add_argument(
        "--access-key",
        default=os.environ.get("CALLBRIDGE_EMULATOR_ACCESS_KEY"),
        help="base64 ACS access key the service signs with (env CALLBRIDGE_EMULATOR_ACCESS_KEY)",
    )
    emu.add_argument("--schema", choices=["eventgrid", "cloudevents"], default="eventgrid")
    emu.add_argument(
        "--human",
        action="append",
        default=[],
        metavar="TARGET=BEHAVIOUR[,ring=S][,says=WAV][,timeout=S]",
        help="how a transfer/add-participant target responds: answer|decline|busy|no_answer "
        "(repeatable; TARGET is +E.164, 8:acs:..., or * for everyone else)",
    )
    emu.set_defaults(func=run_emulator_command)

    call = subparsers.add_parser("call", help="place one call through a running ACS emulator")
    call.add_argument("--audio", required=True, help="caller audio: 16-bit PCM WAV")
    call.add_argument(
        "--dtmf", action="append", default=[], metavar="T:DIGIT", help="e.g. 1.5:4 or 3:#"
    )
    call.add_argument("--hangup-after", type=float, default=None, metavar="S")
    call.add_argument("--duplicate", action="store_true", help="deliver IncomingCall twice")
    call.add_argument("--record", default=None, metavar="OUT.wav", help="stereo WAV")
    call.add_argument("--from-number", default=None)
    call.add_argument("--to-number", default=None, help="the number called (default: ACS number)")
    call.add_argument(
        "--sip-header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="IncomingCall customContext.sipHeaders, e.g. X-MS-Custom-Ticket=123 (repeatable)",
    )
    call.add_argument(
        "--voip-header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="IncomingCall customContext.voipHeaders (repeatable)",
    )
    call.add_argument("--max-duration", type=float, default=None, metavar="S")
    call.add_argument(
        "--emulator",
        default=f"http://127.0.0.1:{os.environ.get('CALLBRIDGE_EMULATOR_PORT', DEFAULT_PORT)}",
    )
    call.add_argument("--json", action="store_true", help="print the report as JSON")
    call.set_defaults(func=call_command)


def run_emulator_command(args: argparse.Namespace) -> int:
    from .humans import parse_human_spec
    from .server import AcsEmulator, run_emulator_forever

    if not args.access_key:
        print(
            "error: no ACS access key: set CALLBRIDGE_EMULATOR_ACCESS_KEY or pass --access-key "
            f"(the same base64 key the service uses; e.g. {AcsEmulator.generate_access_key()})",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        humans: dict[str, Human] = dict(parse_human_spec(spec) for spec in args.human)
        emu = AcsEmulator(
            args.webhook,
            args.access_key,
            host=args.host,
            port=args.port,
            event_schema=args.schema,
            humans=humans,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        await emu.start()
        print(f"ACS emulator listening on {emu.endpoint}")
        print(f"  webhook:  {emu.webhook_url} ({emu.event_schema})")
        print(f"  JWKS:     {emu.jwks_url}")
        print(f"  issuer:   {emu.issuer}")
        print(f"  audience: {emu.audience}")
        for target, human in sorted(emu.humans.to_dict()["targets"].items()):
            print(f"  human:    {target} -> {human['behaviour']} (ring {human['ring_s']:g} s)")
        sys.stdout.flush()
        forever = asyncio.create_task(run_emulator_forever(emu))
        # Ctrl-C is handled by asyncio.run; make `kill` (SIGTERM) shut down cleanly too.
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, forever.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await forever

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


def _parse_dtmf(items: list[str]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for item in items:
        t, sep, digit = item.partition(":")
        if not sep or not digit:
            raise ValueError(f"--dtmf {item!r}: expected SECONDS:DIGIT, e.g. 1.5:4")
        out.append([float(t), digit])
    return out


def _parse_headers(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{flag} {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def call_command(args: argparse.Namespace) -> int:
    import httpx

    audio = Path(args.audio)
    if not audio.is_file():
        print(f"error: audio file {audio} not found", file=sys.stderr)
        return 2
    try:
        dtmf = _parse_dtmf(args.dtmf)
        sip = _parse_headers(args.sip_header, "--sip-header")
        voip = _parse_headers(args.voip_header, "--voip-header")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    body: dict[str, Any] = {
        "audio_path": str(audio.resolve()),
        "dtmf": dtmf,
        "hangup_after_s": args.hangup_after,
        "duplicate_delivery": args.duplicate,
        "record_path": str(Path(args.record).resolve()) if args.record else None,
        "max_duration_s": args.max_duration,
        "from_number": args.from_number,
        "to_number": args.to_number,
    }
    if sip or voip:
        body["custom_context"] = {"sipHeaders": sip, "voipHeaders": voip}
    url = args.emulator.rstrip("/")
    try:
        resp = httpx.post(
            f"{url}/emulator/calls", json=body, timeout=httpx.Timeout(10.0, read=None)
        )
    except httpx.HTTPError as exc:
        print(f"error: ACS emulator not reachable at {url} ({exc}); {START_HINT}", file=sys.stderr)
        return 2
    if resp.status_code != 200:
        try:
            detail = resp.json().get("error", resp.text)
        except ValueError:
            detail = resp.text
        print(f"error: emulator answered HTTP {resp.status_code}: {detail}", file=sys.stderr)
        if resp.status_code == 502:
            print(
                "hint: is the service running and serving its webhook? (`make run`)",
                file=sys.stderr,
            )
        return 2 if resp.status_code == 400 else 1
    report = resp.json()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_summary(report))
    return 0 if report.get("answered") and report.get("media_both_ways") else 1


def _summary(r: dict[str, Any]) -> str:
    lines = [f"answered: {'yes' if r.get('answered') else 'no'}"]
    if r.get("media_connected"):
        lines.append(
            f"media: caller -> service {r['frames_sent']} frames; service -> caller "
            f"{r['frames_received']} frames ({r['outbound_bytes']} bytes) "
            f"[{r.get('audio_format')} {r.get('sample_rate')} Hz]"
        )
    else:
        lines.append("media: not connected")
    segs = r.get("heard_segments") or []
    if segs:
        lines.append("caller heard the agent:")
        lines += [f"  {a:6.2f}s - {b:6.2f}s" for a, b in segs]
    else:
        lines.append("caller heard nothing from the agent")
    if r.get("stop_audio_times"):
        lines.append("StopAudio at: " + ", ".join(f"{t:.2f}s" for t in r["stop_audio_times"]))
    for a in r.get("target_actions") or []:
        lines.append(f"{a['action']} {a['target']}: {a['outcome']}")
    if r.get("transfer_target"):
        lines.append(f"transferred to {r['transfer_target']}")
    if r.get("ended_with_human"):
        lines.append(f"the caller ended up with {r['ended_with_human']}")
    for rec in r.get("recordings") or []:
        states = " -> ".join(f"{s['state']}({s['by']})" for s in rec["states"])
        lines.append(f"call recording: {states}")
    if r.get("recording_path"):
        lines.append(f"recording: {r['recording_path']}")
    lines.append(f"ended by {r.get('ended_by')}: {r.get('end_reason')} ({r.get('duration_s')} s)")
    return "\n".join(lines)


__all__ = ["register"]
