"""`callbridge dev` (what `make run` starts): the service and the ACS emulator side by side.

Both run in one process and event loop, wired to each other exactly as a deployment would
be wired to Azure: the service's ACS connection points at the emulator's endpoint with a
fresh access key, and the emulator delivers Event Grid events to the service's webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys

from callbridge.config import ConfigError
from callbridge.logs import setup_logging
from callbridge.profile import ProfileError


def run_dev(args: argparse.Namespace) -> int:
    from callbridge.devstack import running_stack
    from callbridge.server import run_loop

    setup_logging("INFO")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # The console and the browser phone need an admin token: keep the one the user
        # set, else make one for this run and print it.
        token = os.environ.get("CALLBRIDGE_ADMIN_TOKEN") or secrets.token_urlsafe(18)
        async with running_stack(
            port=args.port, emulator_port=args.emulator_port, admin_token=token
        ) as stack:
            url = stack.service_url
            print(
                f"\ncallbridge is answering calls at {url} (agent: {stack.settings.agent})\n"
                f"ACS emulator at {stack.emulator.endpoint} delivers calls to it.\n\n"
                "Place a call from another terminal:\n"
                "  .venv/bin/callbridge call --audio samples/hello.wav\n"
                f"Talk to the agent in a browser:  {url}/phone\n"
                f"Watch calls in the console:      {url}/console\n"
                f"Admin token (console, phone and API): {token}\n"
                "Ctrl-C stops both.\n",
                flush=True,
            )
            await stop.wait()
            print("stopping...", flush=True)

    try:
        run_loop(main())
    except KeyboardInterrupt:
        pass
    except (ConfigError, ValueError, ProfileError) as exc:
        print(f"callbridge: configuration error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"callbridge: cannot listen: {exc}", file=sys.stderr)
        return 2
    return 0
