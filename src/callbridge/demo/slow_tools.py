"""A user tool for the examples: an account lookup whose backend is slow (and so times out
under a short tool timeout) — shows how a profile declares a Python tool."""

from __future__ import annotations

import asyncio
from typing import Any

BALANCES = {"4512": "42 dollars and 10 cents", "7781": "zero dollars"}


async def account_balance(args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(float(args.get("delay_s", 3.0)))
    return {"balance": BALANCES.get(str(args.get("account", "")), "unknown")}
