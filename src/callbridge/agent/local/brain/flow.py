"""The `flow` brain: intents, slots and reply templates from the profile — no model.

Deterministic and fast (well under 5 ms a turn), so the offline agent answers as soon as
Whisper has the words. One turn:

1. hear (hearing.py): tokens of the transcript, and every slot value in them (dates and
   times first, so their numbers aren't read as party sizes), marking the words they used;
2. if a question is open (a slot prompt, a yes/no confirmation) the answer goes to it,
   unless the caller clearly asks for something else;
3. else the best-scoring intent starts; slots said along with it are kept, remembered ones
   (the restaurant just recommended) are reused, missing ones are asked for;
4. with every required slot there, confirm if the intent says so, then run its tool and
   fill its reply from the slots and the tool result.

Nothing understood (or silence) gets the profile's reprompts in turn; after `max_misses`
in a row the brain gives up politely and runs the fallback (transfer or goodbye).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from callbridge.agent.local.brain.base import ToolRunner
from callbridge.agent.local.brain.common import Reprompts, Speech, call_tool, finish_call
from callbridge.agent.local.brain.hearing import HeardTurn, TurnReader
from callbridge.agent.local.brain.matcher import IntentMatcher
from callbridge.agent.local.brain.slots import SlotValue
from callbridge.agent.local.brain.turn_hints import digits_hint
from callbridge.agent.sentences import sentences
from callbridge.core.template import render
from callbridge.profile import FlowSettings, IntentSpec, Profile, TurnSection, call_variables

log = logging.getLogger(__name__)

_SWITCH_MARGIN = 0.2  # how much surer another intent must be to abandon an open question


@dataclass
class _Active:
    """The intent being worked on: what it has, what it waits for."""

    name: str
    spec: IntentSpec
    slots: dict[str, SlotValue] = field(default_factory=dict)
    pending: str | None = None  # slot just asked for
    confirming: bool = False  # a yes/no question is open
    confirmed: bool = False


class FlowBrain:
    def __init__(
        self,
        profile: Profile,
        variables: Mapping[str, str] | None = None,
        *,
        today: Callable[[], dt.date] = dt.date.today,
        max_history: int = 40,
    ) -> None:
        if profile.flow is None:
            raise ValueError("the flow brain needs a profile with a flow section")
        self._profile = profile
        self._flow: FlowSettings = profile.flow
        self._vars = dict(variables if variables is not None else call_variables())
        self._max_history = max_history
        self._matcher = IntentMatcher({k: v.examples for k, v in self._flow.intents.items()})
        self._reader = TurnReader(self._flow, today)
        self._memory: dict[str, SlotValue] = {}
        self._active: _Active | None = None
        self._last_intent: str | None = None
        self._offer: str | None = None  # intent the last reply offered ("book it?")
        self._reprompts = Reprompts(profile)
        self._done = False  # transferred or said goodbye
        self.history: list[tuple[str, str]] = []  # ("caller" | "agent", text)

    # --- the Brain protocol ------------------------------------------------------------

    def greeting(self) -> str:
        text = render(self._profile.greeting, self._vars)
        if text:
            self._log("agent", text)
        return text

    async def turn(self, text: str, run_tool: ToolRunner) -> Speech:
        self._log("caller", text)
        # aclosing: on a barge-in the agent closes this generator; the inner ones must
        # close now too (recording what was said), not whenever they're collected.
        heard = self._reader.read(text, self._active.pending if self._active else None)
        async with aclosing(self._spoken(self._respond(heard, run_tool))) as pieces:
            async for piece in pieces:
                yield piece

    async def digits(self, digits: str, run_tool: ToolRunner) -> Speech:
        self._log("caller", f"[keypad] {digits}")
        async with aclosing(self._spoken(self._on_digits(digits, run_tool))) as pieces:
            async for piece in pieces:
                yield piece

    def heard(self, text: str) -> None:
        for i in range(len(self.history) - 1, -1, -1):
            if self.history[i][0] == "agent":
                if text.strip():
                    self.history[i] = ("agent", text.strip())
                else:
                    del self.history[i]
                return

    def apology(self) -> str:
        return render(self._profile.apology, self._vars)

    @property
    def fallback(self) -> str:
        return self._profile.fallback

    async def aclose(self) -> None:
        """Nothing to release; here so the agent can close any brain the same way."""

    # --- carrying the dialog on at another replica (docs/scale-out.md) -------------------

    def state(self) -> dict[str, Any]:
        """Where the dialog stands, as JSON-able data: `restore` on a fresh brain of the
        same profile goes on from here (the call moved to another replica)."""
        active = self._active
        return {
            "memory": _slots_out(self._memory),
            "active": None
            if active is None
            else {
                "name": active.name,
                "slots": _slots_out(active.slots),
                "pending": active.pending,
                "confirming": active.confirming,
                "confirmed": active.confirmed,
            },
            "last_intent": self._last_intent,
            "offer": self._offer,
            "items": self._reader.items,
            "misses": self._reprompts.misses,
            "done": self._done,
            "history": [list(h) for h in self.history],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Go on from `state` (see `state`); what this profile does not know (an intent or
        slot renamed since) is left out. Raises ValueError for state of another shape."""
        try:
            intents, slots = self._flow.intents, self._flow.slots
            active = state.get("active")
            self._memory = _slots_in(state.get("memory") or {}, slots)
            self._active = None
            if isinstance(active, dict) and active.get("name") in intents:
                name = str(active["name"])
                pending = active.get("pending")
                self._active = _Active(
                    name,
                    intents[name],
                    _slots_in(active.get("slots") or {}, slots),
                    pending if pending in slots else None,
                    bool(active.get("confirming")),
                    bool(active.get("confirmed")),
                )
            last, offer = state.get("last_intent"), state.get("offer")
            self._last_intent = last if last in intents else None
            self._offer = offer if offer in intents else None
            items = state.get("items")
            if isinstance(items, list):
                self._reader.items = [dict(i) for i in items if isinstance(i, dict)]
            self._reprompts.misses = int(state.get("misses") or 0)
            self._done = bool(state.get("done"))
            self.history = [(str(w), str(t)) for w, t in state.get("history") or []]
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"not a flow brain's state: {exc}") from None

    # --- turn taking (optional: the agent uses them when a brain has them) ---------------

    @property
    def turn_section(self) -> TurnSection:
        """The profile's turn-taking settings."""
        return self._profile.turn

    def completes(self, text: str) -> bool | None:
        """Do these words finish the caller's turn, as far as the dialog can tell? (False:
        a number it waits for is still short; None: no opinion.) See turn_hints."""
        active = self._active
        asked = self._flow.slots.get(active.pending) if active and active.pending else None
        return digits_hint(text, asked, self._flow.slots.values())

    # --- plumbing ------------------------------------------------------------------------

    async def _spoken(self, texts: Speech) -> Speech:
        """Each reply text as sentences; what was said goes to the history even when
        the caller interrupts and the agent stops iterating."""
        said: list[str] = []
        try:
            async with aclosing(texts):
                async for text in texts:
                    for sentence in sentences(text):
                        said.append(sentence)
                        yield sentence
        finally:
            if said:
                self._log("agent", " ".join(said))

    def _log(self, who: str, text: str) -> None:
        self.history.append((who, text))
        del self.history[: -self._max_history]

    def _context(
        self, active: _Active | None, result: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Template values: call variables < remembered slots < tool result < this
        intent's slots (so `{order_number}` is said digit by digit, as the caller gave it)."""
        ctx: dict[str, Any] = dict(self._vars)
        ctx.update({k: v.spoken for k, v in self._memory.items()})
        if result:
            ctx.update(result)
        if active:
            ctx.update({k: v.spoken for k, v in active.slots.items()})
        return ctx

    # --- the dialog ----------------------------------------------------------------------

    async def _respond(self, heard: HeardTurn, run_tool: ToolRunner) -> Speech:
        if self._done:
            return
        if not heard.toks:
            async for text in self._miss(run_tool):
                yield text
            return
        for name, hit in heard.found.items():
            if self._flow.slots[name].remember:
                self._memory[name] = hit.value
        offer, self._offer = self._offer, None
        if offer and self._active is None:
            if self._reader.yes(heard) or self._reader.no(heard):
                self._reprompts.understood()
                if self._reader.no(heard):
                    yield render(self._flow.declined, self._context(None))
                    return
                async for text in self._start(offer, heard, run_tool):
                    yield text
                return
        active = self._active
        own: dict[str, SlotValue] = {}
        if active:
            own = {
                k: f.value
                for k, f in heard.found.items()
                if k in active.spec.slots() and active.slots.get(k) != f.value
            }
        # "Never mind" — or a plain "no" to a slot question — drops the task rather than
        # ending the call through the goodbye intent.
        refused = active is not None and active.pending is not None and self._reader.no(heard)
        if active and not own and (self._reader.cancel(heard) or refused):
            self._active = None
            self._reprompts.understood()
            yield render(self._flow.cancelled, self._context(None))
            return
        if active and active.confirming:
            if own:
                active.slots.update(own)
                active.confirming = False
                self._reprompts.understood()
                async for text in self._advance(active, run_tool):
                    yield text
                return
            if self._reader.yes(heard):
                active.confirming, active.confirmed = False, True
                self._reprompts.understood()
                async for text in self._advance(active, run_tool):
                    yield text
                return
            if self._reader.no(heard):
                active.confirming = False
                self._reprompts.understood()
                yield render(self._flow.amend, self._context(active))
                return
        strong = [k for k in heard.found if self._flow.slots[k].type == "choice"]
        scores = self._matcher.scores(heard.toks, heard.found.keys(), heard.used, strong)
        if self._last_intent in scores:
            scores[self._last_intent] += 0.05  # follow-ups lean to the topic at hand
        best = max(scores, key=lambda k: scores[k]) if scores else None
        score = scores.get(best, 0.0) if best else 0.0
        threshold = self._flow.threshold
        log.debug("heard %s -> %s %.2f (found %s)", heard.toks, best, score, list(heard.found))
        if active:
            answered = active.pending in own
            other = best is not None and best != active.name and score >= threshold
            if other and (not answered or score >= threshold + _SWITCH_MARGIN):
                active = None  # the caller moved on; what they gave stays remembered
            elif own or (best == active.name and score >= threshold):
                active.slots.update(own)
                self._reprompts.understood()
                async for text in self._advance(active, run_tool):
                    yield text
                return
            else:
                async for text in self._miss(run_tool):
                    yield text
                return
        if best is None or score < threshold:
            best = self._follow_up(heard)
        if best is None:
            async for text in self._miss(run_tool):
                yield text
            return
        self._reprompts.understood()
        async for text in self._start(best, heard, run_tool):
            yield text

    def _follow_up(self, heard: HeardTurn) -> str | None:
        """Just a new value for the last question ("And on Sunday?" after the opening
        hours): ask it again with that value."""
        if self._last_intent is None:
            return None
        last = self._flow.intents[self._last_intent]
        return self._last_intent if any(s in heard.found for s in last.slots()) else None

    async def _start(self, name: str, heard: HeardTurn, run_tool: ToolRunner) -> Speech:
        spec = self._flow.intents[name]
        active = _Active(name, spec)
        for slot in spec.slots():
            if slot in heard.found:
                active.slots[slot] = heard.found[slot].value
            elif self._flow.slots[slot].remember and slot in self._memory:
                active.slots[slot] = self._memory[slot]
        async for text in self._advance(active, run_tool):
            yield text

    async def _advance(self, active: _Active, run_tool: ToolRunner) -> Speech:
        """Ask for the next missing slot, or confirm, or do it."""
        self._active = active
        for slot in active.spec.required:
            if slot not in active.slots:
                active.pending = slot
                yield render(self._flow.slots[slot].prompt, self._context(active))
                return
        active.pending = None
        if active.spec.confirm and not active.confirmed:
            active.confirming = True
            yield render(active.spec.confirm, self._context(active))
            return
        async for text in self._execute(active, run_tool):
            yield text

    async def _execute(self, active: _Active, run_tool: ToolRunner) -> Speech:
        spec = active.spec
        self._active = None
        self._memory.update(active.slots)
        if spec.action:
            text = render(spec.reply, self._context(active)) if spec.reply else None
            async for out in self._act(spec.action, text, run_tool):
                yield out
            return
        self._last_intent = active.name  # the topic, for follow-ups and a transfer summary
        if spec.before:
            yield render(spec.before, self._context(active))
        result: dict[str, Any] = {}
        if spec.tool:
            renamed = {slot: arg for arg, slot in spec.args.items()}
            args = {renamed.get(k, k): v.value for k, v in active.slots.items()}
            result = await call_tool(run_tool, spec.tool, args)
            if "error" in result:
                async for out in self._tool_failed(active, result):
                    yield out
                return
            self._note(result)
        if spec.reply:
            yield render(spec.reply, self._context(active, result))
        self._offer = spec.offer

    async def _tool_failed(self, active: _Active, result: dict[str, Any]) -> Speech:
        reason = str(result.get("reason") or "")
        errors = active.spec.errors
        text = errors.get(reason) or errors.get("default") or self._flow.tool_error
        yield render(text, {**self._context(active), "error": result["error"], "reason": reason})
        retry = active.spec.retry_slot
        if retry and (reason in errors or "default" in errors):
            # e.g. an order number that doesn't exist: ask for it again, keep the rest.
            active.slots.pop(retry, None)
            self._memory.pop(retry, None)
            active.pending, active.confirmed = retry, False
            self._active = active

    def _note(self, result: Mapping[str, Any]) -> None:
        """Keep a listed result for follow-ups ("the second one"); the first item is the
        one recommended, so a remembered slot that points into lists starts there."""
        for value in result.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                self._reader.items = value
                for name, slot in self._flow.slots.items():
                    first = value[0].get(slot.from_list) if slot.from_list else None
                    if first and slot.remember:
                        self._memory[name] = SlotValue(str(first), str(first))
                return

    def resume(self) -> None:
        """A transfer failed: the caller is still here, so the dialog goes on."""
        self._done = False

    async def _act(self, action: str, text: str | None, run_tool: ToolRunner) -> Speech:
        self._done = True
        self._active = None
        async for out in finish_call(
            self._profile, self._vars, action, run_tool, text=text, summary=self._summary()
        ):
            yield out

    def _summary(self) -> str:
        """One line for the human who takes the call."""
        said = [t for who, t in self.history if who == "caller" and t][-3:]
        topic = f"was working on {self._last_intent}; " if self._last_intent else ""
        return (
            f"Caller {topic}last said: " + " / ".join(said) if said else "Caller asked for a person"
        )

    async def _miss(self, run_tool: ToolRunner) -> Speech:
        if self._reprompts.miss():
            yield render(self._profile.give_up, self._vars)
            async for text in self._act(self._profile.fallback, None, run_tool):
                yield text
            return
        active = self._active
        ctx = self._context(active)
        if active and active.pending:
            slot = self._flow.slots[active.pending]
            again = slot.reprompt or f"{self._flow.didnt_catch} {slot.prompt}"
            yield render(again, ctx)
        elif active and active.confirming and active.spec.confirm:
            yield render(f"{self._flow.didnt_catch} {active.spec.confirm}", ctx)
        else:
            yield render(self._reprompts.text(), ctx)

    async def _on_digits(self, digits: str, run_tool: ToolRunner) -> Speech:
        """Keypad entry fills a digits slot: the one asked for, or the only intent's that
        needs one (a caller who types their order number unprompted)."""
        if self._done:
            return
        value = "".join(ch for ch in digits if ch.isdigit())
        active = self._active
        target: str | None = None
        if active and active.pending and self._flow.slots[active.pending].type == "digits":
            target = active.pending
        elif active is None:
            wanting = [
                (name, slot)
                for name, intent in self._flow.intents.items()
                for slot in intent.required
                if self._flow.slots[slot].type == "digits"
            ]
            if len(wanting) == 1:
                active = _Active(wanting[0][0], self._flow.intents[wanting[0][0]])
                target = wanting[0][1]
        if active is None or target is None:
            async for text in self._miss(run_tool):
                yield text
            return
        slot = self._flow.slots[target]
        if not value or not slot.min_length <= len(value) <= slot.max_length:
            self._active = active
            active.pending = target
            async for text in self._miss(run_tool):
                yield text
            return
        self._reprompts.understood()
        active.slots[target] = SlotValue(value, " ".join(value))
        async for text in self._advance(active, run_tool):
            yield text


def _slots_out(slots: Mapping[str, SlotValue]) -> dict[str, list[Any]]:
    return {name: [v.value, v.spoken] for name, v in slots.items()}


def _slots_in(raw: Mapping[str, Any], known: Mapping[str, Any]) -> dict[str, SlotValue]:
    out: dict[str, SlotValue] = {}
    for name, (value, spoken) in raw.items():
        if name in known and isinstance(value, str | int):
            out[name] = SlotValue(value, str(spoken))
    return out
