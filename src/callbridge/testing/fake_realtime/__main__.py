"""Run a fake realtime server by hand, e.g. to try callbridge without a cloud account:

    python -m callbridge.testing.fake_realtime --dialect ga --port 8765 \\
        --say "We are open from nine to five." --say "Goodbye!"

It prints the environment that points callbridge at it (CALLBRIDGE_OPENAI_* or
CALLBRIDGE_VOICELIVE_*); every caller turn gets the next --say line (then "Okay.").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from callbridge.testing.fake_realtime.script import Say, Script
from callbridge.testing.fake_realtime.server import FakeRealtimeServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m callbridge.testing.fake_realtime")
    parser.add_argument("--dialect", choices=["ga", "voicelive"], default="ga")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--say", action="append", default=[], help="a reply, in order")
    args = parser.parse_args(argv)
    script = Script([Say(text) for text in args.say])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.dialect, args.port, script))


async def _serve(dialect: str, port: int, script: Script) -> None:
    fake = FakeRealtimeServer("ga" if dialect == "ga" else "voicelive", script, port=port)
    async with fake:
        backend = "openai" if dialect == "ga" else "voicelive"
        print(f"fake {dialect} realtime server on 127.0.0.1:{fake.port}; point callbridge at it:")
        print(f"  export CALLBRIDGE_AGENT={backend}")
        for key, value in fake.env().items():
            print(f"  export {key}={value}")
        await asyncio.Event().wait()


if __name__ == "__main__":
    main()
