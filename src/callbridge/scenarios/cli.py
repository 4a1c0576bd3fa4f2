"""`callbridge test-call scenarios/*.yaml`: run scenario calls and print a pass/fail table."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "test-call",
        help="run scenario calls (YAML caller scripts) against the service and the emulator",
    )
    p.add_argument("scenarios", nargs="+", help="scenario files, e.g. scenarios/*.yaml")
    p.add_argument("--agent", default="local", help="agent backend of the service (local)")
    p.add_argument("--profile", default=None, help="agent profile (default: CALLBRIDGE_PROFILE)")
    p.add_argument("--concurrency", type=int, default=3, help="scenarios run at once")
    p.add_argument("--json", dest="json_path", help="also write the results as JSON here")
    p.add_argument("-v", "--verbose", action="store_true", help="log the service's calls")
    p.set_defaults(func=run_test_call)


def run_test_call(args: argparse.Namespace) -> int:
    from callbridge.profile import ProfileError
    from callbridge.scenarios.model import ScenarioError, load_scenario

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-5s %(name)s %(message)s",
    )
    try:
        scenarios = [load_scenario(p) for p in args.scenarios]
    except ScenarioError as exc:
        print(f"callbridge test-call: {exc}", file=sys.stderr)
        return 2
    try:
        results = asyncio.run(_run(args, scenarios))
    except ProfileError as exc:
        print(f"callbridge test-call: {exc}", file=sys.stderr)
        return 2
    from callbridge.scenarios.runner import format_table

    print(format_table(results))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps([r.to_dict() for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


async def _run(args: argparse.Namespace, scenarios: list[Any]) -> list[Any]:
    from callbridge.scenarios.runner import run_scenario_files

    print(
        f"running {len(scenarios)} scenario call(s) through the ACS emulator "
        f"(agent {args.agent}), {args.concurrency} at a time...",
        flush=True,
    )
    return await run_scenario_files(
        scenarios, agent=args.agent, profile=args.profile, concurrency=args.concurrency
    )
