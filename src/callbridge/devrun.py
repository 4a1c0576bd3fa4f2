"""`callbridge dev` (what `make run` starts): the service and the ACS emulator side by side.

Both run in one process and event loop, wired to each other exactly as a deployment would
be wired to Azure: the service's ACS connection points at the emulator's endpoint with a
fresh access key, and the emulator delivers Event Grid events to the service's webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

from callbridge.config import ConfigError, load_settings
from callbridge.logs import setup_logging


def run_dev(args: argparse.Namespace) -> int:
    from callbridge.app import create_app
    from callbridge.emulator import AcsEmulator
    from callbridge.server import uvicorn_server

    access_key = AcsEmulator.generate_access_key()
    secret = secrets.token_urlsafe(24)
    service_url = f"http://127.0.0.1:{args.port}"
    emu = AcsEmulator(
        f"{service_url}/acs/incoming?key={secret}", access_key, port=args.emulator_port
    )
    emulator_url = f"http://127.0.0.1:{args.emulator_port}"
    try:
        settings = load_settings(
            acs_connection=f"endpoint={emulator_url}/;accesskey={access_key}",
            public_url=service_url,
            eventgrid_secret=secret,
            host="127.0.0.1",
            port=args.port,
            acs_jwks_url=f"{emulator_url}/calling/keys",
            acs_jwt_issuer=emu.issuer,
            acs_jwt_audience=emu.audience,
        )
        app = create_app(settings)
    except (ConfigError, ValueError) as exc:
        print(f"callbridge: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_json)

    async def main() -> None:
        server = uvicorn_server(app, settings)
        service = asyncio.create_task(server.serve())
        while not server.started:
            if service.done():
                return
            await asyncio.sleep(0.05)
        await emu.start()
        print(
            f"\ncallbridge is answering calls at {service_url} (agent: {settings.agent})\n"
            f"ACS emulator at {emu.endpoint} delivers calls to it.\n\n"
            "Place a call from another terminal:\n"
            "  .venv/bin/callbridge call --audio samples/hello.wav\n"
            "Ctrl-C stops both.\n",
            flush=True,
        )
        try:
            await service
        finally:
            await emu.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"callbridge: cannot listen: {exc}", file=sys.stderr)
        return 2
    return 0
