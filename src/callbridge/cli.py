"""The `callbridge` command: serve, dev (service + emulator), emulator, call."""

from __future__ import annotations

import argparse
import sys

from callbridge.config import ConfigError, load_settings
from callbridge.logs import setup_logging
from callbridge.profile import ProfileError


def _serve(args: argparse.Namespace) -> int:
    from callbridge.app import create_app
    from callbridge.server import run_server, uvicorn_server

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    try:
        settings = load_settings(**overrides)
        app = create_app(settings, upgrade_schema_in_child=True)
    except (ConfigError, ValueError, ProfileError) as exc:
        print(f"callbridge: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_json)
    run_server(uvicorn_server(app, settings))
    return 0


def _dev(args: argparse.Namespace) -> int:
    from callbridge.devrun import run_dev

    return run_dev(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callbridge", description="AI voice agents on Azure Communication Services"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (configured by CALLBRIDGE_* variables)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=_serve)

    dev = sub.add_parser("dev", help="run the service and the ACS emulator side by side")
    dev.add_argument("--port", type=int, default=8080, help="service port")
    dev.add_argument("--emulator-port", type=int, default=8765)
    dev.set_defaults(func=_dev)

    from callbridge.emulator.cli import register
    from callbridge.scenarios.cli import register as register_scenarios

    register(sub)
    register_scenarios(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
