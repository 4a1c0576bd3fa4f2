"""The Contoso demo tools through the shared registry (schema checks included)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callbridge.core.tools import ToolContext, ToolRegistry
from callbridge.demo.tools import RESULT_FIELDS, demo_tools

from .conftest import TODAY, RecordingActions


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry(demo_tools(lambda: TODAY))


async def run(registry: ToolRegistry, name: str, /, **args: Any) -> dict[str, Any]:
    ctx = ToolContext("c", "+1", "+2", {}, RecordingActions())
    result = await registry.run(name, args, ctx)
    out: dict[str, Any] = json.loads(result.output)
    if "error" not in out:
        assert set(out) <= RESULT_FIELDS[name]  # what profile checks rely on
    return out


def test_every_tool_has_a_schema_and_declared_results() -> None:
    specs = demo_tools()
    assert [s.name for s in specs] == list(RESULT_FIELDS)
    for spec in specs:
        assert spec.parameters["type"] == "object" and spec.description


async def test_order_status(registry: ToolRegistry) -> None:
    out = await run(registry, "order_status", order_number="4512")
    assert out["status"] == "out for delivery" and out["eta"] == "today"
    assert out["items"] == ["a stainless steel kettle", "two coffee mugs"]
    out = await run(registry, "order_status", order_number="#7 7 8 8")
    assert out["details"] == "It was delivered on Sunday."
    out = await run(registry, "order_status", order_number="9021")
    assert out["details"] == "You have not been charged." and out["eta"] == ""
    out = await run(registry, "order_status", order_number="0000")
    assert out == {"error": "I can't find an order with the number 0 0 0 0.", "reason": "not_found"}


async def test_opening_hours(registry: ToolRegistry) -> None:
    out = await run(registry, "opening_hours")
    assert out["summary"] == (
        "We're open Monday to Friday from 8 AM to 8 PM and Saturday from 9 AM to 6 PM; "
        "closed on Sunday."
    )
    out = await run(registry, "opening_hours", day="saturday")
    assert out["open"] and out["summary"] == "On Saturday we're open from 9 AM to 6 PM."
    out = await run(registry, "opening_hours", day="2025-12-25")
    assert not out["open"] and "Christmas Day" in out["summary"]
    out = await run(registry, "opening_hours", day="someday")
    assert out["reason"] == "bad_day"


async def test_find_restaurants(registry: ToolRegistry) -> None:
    out = await run(registry, "find_restaurants", cuisine="pizza")
    assert out["cuisine"] == "Italian" and out["count"] == 3
    assert out["restaurants"][0]["name"] == "Pasta Fresca"  # best rated first
    out = await run(registry, "find_restaurants", cuisine="Japanese", area="midtown")
    assert [r["name"] for r in out["restaurants"]] == ["Hana Ramen"]
    out = await run(registry, "find_restaurants", cuisine="indian", area="harbour")
    assert out["count"] == 2 and "no Indian places in harbour" in out["note"]
    out = await run(registry, "find_restaurants", cuisine="greek")
    assert out["reason"] == "not_found" and "Italian, Japanese, Indian or Mexican" in out["error"]


async def test_restaurant_details(registry: ToolRegistry) -> None:
    out = await run(registry, "restaurant_details", name="luigis")
    assert out["name"] == "Luigi's Trattoria" and out["address"] == "12 Elm Street"
    assert out["today"] == "open today from noon to 10 PM"
    assert out["hours"].endswith("closed on Monday")
    out = await run(registry, "restaurant_details", name="the golden spoon")
    assert out["reason"] == "not_found"


async def test_make_reservation(registry: ToolRegistry) -> None:
    booking = dict(restaurant="Bella Napoli", party_size=2, date="tomorrow", time="7:30 pm")
    out = await run(registry, "make_reservation", **booking, name="Ada")
    assert out["restaurant"] == "Bella Napoli" and out["date"] == "tomorrow"
    assert out["time"] == "7:30 PM" and len(out["confirmation_code"]) == 6
    again = await run(registry, "make_reservation", **booking, name="Ada")
    assert again["confirmation_code"] != out["confirmation_code"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"restaurant": "Nowhere"}, "not_found"),
        ({"party_size": 30}, "party_size"),
        ({"date": "2025-06-01"}, "past"),
        ({"date": "monday", "restaurant": "Pasta Fresca"}, "closed"),
        ({"time": "23:30"}, "closed"),  # last table an hour before closing
        ({"time": "whenever"}, "bad_time"),
    ],
)
async def test_make_reservation_refusals(
    registry: ToolRegistry, changes: dict[str, Any], reason: str
) -> None:
    booking = {"restaurant": "Bella Napoli", "party_size": 2, "date": "2025-06-05", "time": "19:00"}
    out = await run(registry, "make_reservation", **{**booking, **changes})
    assert out["reason"] == reason and out["error"]


async def test_the_registry_checks_argument_types(registry: ToolRegistry) -> None:
    out = await run(
        registry, "make_reservation", restaurant="x", party_size="4", date="today", time="7"
    )
    assert out["error"].startswith("bad arguments: 'party_size'")
