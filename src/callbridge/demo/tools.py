"""The Contoso demo line's tools: order status, opening hours, restaurants, bookings.

The data is small bundled JSON (package data), so the demo works offline. Tools accept
what either brain sends: the flow brain passes normalised values (ISO dates, "19:30"),
an LLM may pass "tomorrow" or "7:30 pm", so both are parsed. Failures a caller should hear
about come back as `{"error": <a sentence to say>, "reason": <short code>}`; the flow
profile picks a reply by `reason`, an LLM reads the sentence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from callbridge.agent.local.brain.slots import (
    WEEKDAYS,
    make_choice,
    parse_date,
    parse_time,
    say_date,
    say_time,
    similar,
)
from callbridge.agent.local.brain.text import join_words, tokens
from callbridge.core.tools import ToolContext, ToolSpec

Today = Callable[[], dt.date]
Result = dict[str, Any]

# Top-level fields of each tool's result, so profile checks can tell a reply template
# that names a result field from one with a typo.
RESULT_FIELDS: dict[str, frozenset[str]] = {
    "order_status": frozenset({"order_number", "status", "eta", "details", "items", "note"}),
    "opening_hours": frozenset({"day", "open", "opens", "closes", "summary"}),
    "find_restaurants": frozenset({"cuisine", "area", "count", "restaurants", "note"}),
    "restaurant_details": frozenset(
        {
            "name",
            "cuisine",
            "area",
            "address",
            "phone",
            "price",
            "rating",
            "hours",
            "today",
            "highlights",
            "max_party",
        }
    ),
    "make_reservation": frozenset(
        {"confirmation_code", "restaurant", "party_size", "date", "time", "name", "address"}
    ),
}

# How each area sounds after a restaurant's name ("Luigi's Trattoria, in midtown").
_WHERE = {
    "downtown": "downtown",
    "midtown": "in midtown",
    "harbor": "by the harbor",
    "old town": "in the old town",
}

# Words callers use for a cuisine without naming it.
CUISINE_WORDS: dict[str, list[str]] = {
    "italian": ["pizza", "pasta", "italy", "trattoria"],
    "japanese": ["sushi", "ramen", "japan", "sashimi"],
    "indian": ["curry", "india", "tandoori", "masala"],
    "mexican": ["tacos", "taco", "burrito", "mexico", "tex mex"],
}


@cache
def _data(name: str) -> Any:
    return json.loads(resources.files("callbridge.demo").joinpath("data", name).read_text())


def _error(message: str, reason: str) -> Result:
    return {"error": message, "reason": reason}


def _clock(hhmm: str) -> dt.time:
    return dt.time.fromisoformat(hhmm)


def _span(hours: list[str]) -> str:
    return f"from {say_time(_clock(hours[0]))} to {say_time(_clock(hours[1]))}"


def week_summary(weekly: dict[str, list[str] | None]) -> str:
    """ "Monday to Friday from 8 AM to 8 PM and Saturday from 9 AM to 6 PM; closed on
    Sunday" — runs of days with the same hours said once."""
    runs: list[tuple[str, str, list[str] | None]] = []
    for day in WEEKDAYS:
        hours = weekly.get(day)
        if runs and runs[-1][2] == hours:
            runs[-1] = (runs[-1][0], day, hours)
        else:
            runs.append((day, day, hours))

    def days(first: str, last: str) -> str:
        a, b = first.capitalize(), last.capitalize()
        return a if first == last else f"{a} to {b}"

    open_parts = [f"{days(a, b)} {_span(h)}" for a, b, h in runs if h]
    closed = [days(a, b) for a, b, h in runs if not h]
    text = join_words(open_parts)
    if closed:
        text += f"; closed on {join_words(closed)}"
    return text


def _find_restaurant(name: str) -> dict[str, Any] | None:
    """A restaurant by a name as heard: "luigis", "Luigi's", "bella napoli", "sakura"."""
    said = tokens(name)
    best: tuple[int, dict[str, Any]] | None = None
    for r in _data("restaurants.json")["restaurants"]:
        words = tokens(r["name"])
        hits = sum(1 for w in words if len(w) >= 4 and any(similar(w, s) for s in said))
        if said == words:
            hits += 10
        if hits and (best is None or hits > best[0]):
            best = (hits, r)
    return best[1] if best else None


def _cuisine(value: str) -> str | None:
    choices = [make_choice(c, syn) for c, syn in CUISINE_WORDS.items()]
    said = tokens(value)
    for choice in choices:
        for phrase in choice.phrases:
            if any(
                all(similar(said[i + k], w) for k, w in enumerate(phrase))
                for i in range(len(said) - len(phrase) + 1)
            ):
                return choice.canonical
    return None


def demo_tools(today: Today = dt.date.today) -> list[ToolSpec]:
    """The demo tools; `today` is injectable so tests get stable dates."""
    bookings: dict[str, Result] = {}

    def order_status(args: dict[str, Any], ctx: ToolContext) -> Result:
        number = "".join(ch for ch in str(args["order_number"]) if ch.isdigit())
        spoken = " ".join(number) or str(args["order_number"])
        order = next(
            (o for o in _data("orders.json")["orders"] if o["order_number"] == number), None
        )
        if order is None:
            return _error(f"I can't find an order with the number {spoken}.", "not_found")
        now = today()
        eta = ""
        details = ""
        if order["eta_days"] is not None:
            when = now + dt.timedelta(days=order["eta_days"])
            eta = say_date(when, now)
            if order["status"] == "delivered":
                ago = (now - when).days
                said = "yesterday" if ago == 1 else f"on {when.strftime('%A')}"
                details = f"It was delivered {said}."
            else:
                details = (
                    f"It should arrive {eta if eta in ('today', 'tomorrow') else 'on ' + eta}."
                )
        note = order.get("note", "")
        return {
            "order_number": number,
            "status": order["status"],
            "eta": eta,
            "details": " ".join(s for s in (details, note) if s),
            "items": order["items"],
            "note": note,
        }

    def opening_hours(args: dict[str, Any], ctx: ToolContext) -> Result:
        data = _data("opening_hours.json")
        weekly: dict[str, list[str] | None] = data["weekly"]
        if not args.get("day"):
            return {"summary": f"We're open {week_summary(weekly)}."}
        now = today()
        day = parse_date(str(args["day"]), now)
        if day is None:
            return _error(f"I'm not sure which day {args['day']} is.", "bad_day")
        said, comma = say_date(day, now), ""
        if said in ("today", "tomorrow"):
            # Alone it would not confirm the day a caller named ("Are you open on
            # Saturday?" asked on a Friday): the weekday goes with it.
            said, comma = f"{said}, {day.strftime('%A')}", ","
        else:
            said = f"on {said}"
        holiday = data["holidays"].get(day.strftime("%m-%d"))
        hours = None if holiday else weekly.get(WEEKDAYS[day.weekday()])
        if not hours:
            why = f" for {holiday}" if holiday else ""
            return {"day": said, "open": False, "summary": f"We're closed {said}{why}."}
        opens, closes = say_time(_clock(hours[0])), say_time(_clock(hours[1]))
        return {
            "day": said,
            "open": True,
            "opens": opens,
            "closes": closes,
            "summary": f"{said[0].upper()}{said[1:]}{comma} we're open from {opens} to {closes}.",
        }

    def find_restaurants(args: dict[str, Any], ctx: ToolContext) -> Result:
        cuisine = _cuisine(str(args["cuisine"]))
        known = join_words([c.capitalize() for c in CUISINE_WORDS], "or")
        if cuisine is None:
            return _error(
                f"I don't have any {args['cuisine']} restaurants on my list. "
                f"I can recommend {known} places.",
                "not_found",
            )
        found = [r for r in _data("restaurants.json")["restaurants"] if r["cuisine"] == cuisine]
        note = ""
        area = str(args.get("area") or "").strip().lower()
        if area:
            local = [r for r in found if similar(r["area"], area) or area in r["area"]]
            if local:
                found = local
            else:
                note = f"I have no {cuisine.capitalize()} places in {area}, but there are others."
        found.sort(key=lambda r: -float(r["rating"]))
        keep = ("name", "area", "address", "phone", "price", "rating")
        return {
            "cuisine": cuisine.capitalize(),
            "area": area,
            "count": len(found),
            "restaurants": [{**{k: r[k] for k in keep}, "where": _WHERE[r["area"]]} for r in found],
            "note": note,
        }

    def restaurant_details(args: dict[str, Any], ctx: ToolContext) -> Result:
        r = _find_restaurant(str(args["name"]))
        if r is None:
            return _error(f"I don't know a restaurant called {args['name']}.", "not_found")
        hours_today = r["hours"].get(WEEKDAYS[today().weekday()])
        return {
            "name": r["name"],
            "cuisine": r["cuisine"].capitalize(),
            "area": r["area"],
            "address": r["address"],
            "phone": r["phone"],
            "price": r["price"],
            "rating": r["rating"],
            "hours": week_summary(r["hours"]),
            "today": f"open today {_span(hours_today)}" if hours_today else "closed today",
            "highlights": r["highlights"],
            "max_party": r["max_party"],
        }

    def make_reservation(args: dict[str, Any], ctx: ToolContext) -> Result:
        r = _find_restaurant(str(args["restaurant"]))
        if r is None:
            return _error(f"I don't know a restaurant called {args['restaurant']}.", "not_found")
        party = int(args["party_size"])
        if not 1 <= party <= r["max_party"]:
            return _error(
                f"{r['name']} takes phone bookings for 1 to {r['max_party']} people.",
                "party_size",
            )
        now = today()
        day = parse_date(str(args["date"]), now)
        at = parse_time(str(args["time"]))
        if day is None or at is None:
            what = "day" if day is None else "time"
            return _error(f"I didn't understand the {what} for the booking.", f"bad_{what}")
        if day < now:
            return _error("That date is in the past.", "past")
        hours = r["hours"].get(WEEKDAYS[day.weekday()])
        weekday = day.strftime("%A")
        if not hours:
            return _error(f"{r['name']} is closed on {weekday}s.", "closed")
        opens, closes = _clock(hours[0]), _clock(hours[1])
        # The last table is an hour before closing; "00:00" closing means midnight.
        last = (dt.datetime.combine(day, closes) - dt.timedelta(hours=1)).time()
        if closes == dt.time(0, 0):
            last = dt.time(23, 0)
        if not opens <= at <= last:
            return _error(
                f"On {weekday}s {r['name']} takes bookings {_span([hours[0], last.isoformat()])}.",
                "closed",
            )
        name = str(args.get("name") or "").strip()
        key = f"{r['name']}|{day}|{at}|{party}|{name}|{len(bookings)}"
        code = _code(key)
        booking = {
            "confirmation_code": code,
            "restaurant": r["name"],
            "party_size": party,
            "date": say_date(day, now),
            "time": say_time(at),
            "name": name,
            "address": r["address"],
        }
        bookings[code] = booking
        return booking

    return [
        ToolSpec(
            "order_status",
            "Look up a Contoso order by its order number: status, delivery date, items.",
            {
                "type": "object",
                "properties": {
                    "order_number": {"type": "string", "description": "digits only, e.g. 4512"}
                },
                "required": ["order_number"],
            },
            order_status,
        ),
        ToolSpec(
            "opening_hours",
            "Contoso's opening hours, for the week or for one day.",
            {
                "type": "object",
                "properties": {
                    "day": {
                        "type": "string",
                        "description": "a weekday, 'today', 'tomorrow' or a date (YYYY-MM-DD); "
                        "leave out for the whole week",
                    }
                },
            },
            opening_hours,
        ),
        ToolSpec(
            "find_restaurants",
            "Recommend restaurants of a cuisine, optionally in an area of town. Cuisines: "
            "Italian, Japanese, Indian, Mexican. Areas: downtown, midtown, harbor, old town.",
            {
                "type": "object",
                "properties": {
                    "cuisine": {"type": "string"},
                    "area": {"type": "string"},
                },
                "required": ["cuisine"],
            },
            find_restaurants,
        ),
        ToolSpec(
            "restaurant_details",
            "Details of one restaurant: address, phone, opening hours, menu highlights.",
            {
                "type": "object",
                "properties": {"name": {"type": "string", "description": "restaurant name"}},
                "required": ["name"],
            },
            restaurant_details,
        ),
        ToolSpec(
            "make_reservation",
            "Book a table; returns a confirmation code. Confirm the details with the caller "
            "before booking.",
            {
                "type": "object",
                "properties": {
                    "restaurant": {"type": "string"},
                    "party_size": {"type": "integer", "minimum": 1},
                    "date": {"type": "string", "description": "YYYY-MM-DD, or 'tomorrow'"},
                    "time": {"type": "string", "description": "HH:MM, 24 hour"},
                    "name": {"type": "string", "description": "name for the booking"},
                },
                "required": ["restaurant", "party_size", "date", "time"],
            },
            make_reservation,
        ),
    ]


_CODE_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY346789"  # no look-alikes (0/O, 1/I, 5/S, 2/Z, B/8)


def _code(key: str) -> str:
    n = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    out = ""
    for _ in range(6):
        n, i = divmod(n, len(_CODE_ALPHABET))
        out += _CODE_ALPHABET[i]
    return out
