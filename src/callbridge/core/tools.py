"""The tool registry every agent backend shares, and the built-in call-control tools.

Tools run in the call session, not in a backend: transfer and hang-up need call control,
and every backend (offline or realtime) then gets the same tools. A tool's result goes back
to the agent as a JSON string; failures and timeouts come back as `{"error": ...}` so the
agent can explain them instead of leaving the caller in silence.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class CallActions(Protocol):
    """What tools may do to the call they run in."""

    async def transfer(self, target: str, summary: str) -> None:
        """Hand the caller to a human at `target` (phone number or ACS user id)."""

    async def hang_up(self) -> None:
        """End the call once the agent's current words have been heard."""


@dataclass
class ToolContext:
    call_id: str
    caller: str
    callee: str
    variables: dict[str, str]
    actions: CallActions
    transcript: list[tuple[str, str]] = field(default_factory=list)


ToolHandler = Callable[[dict[str, Any], ToolContext], Awaitable[Any] | Any]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    handler: ToolHandler
    timeout_s: float = 10.0

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function declaration."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


@dataclass(frozen=True)
class ToolRun:
    name: str
    arguments: dict[str, Any]
    output: str  # JSON text handed back to the agent
    ok: bool
    duration_ms: float


class ToolRegistry:
    def __init__(self, specs: list[ToolSpec] | None = None) -> None:
        self._specs: dict[str, ToolSpec] = {}
        for spec in specs or []:
            self.add(spec)

    def add(self, spec: ToolSpec) -> None:
        self._specs[spec.name] = spec

    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> ToolSpec | None:
        return self._specs.get(name)

    def schemas(self) -> list[dict[str, Any]]:
        return [spec.schema() for spec in self._specs.values()]

    async def run(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> ToolRun:
        started = time.perf_counter()

        def done(output: Any, ok: bool) -> ToolRun:
            text = output if isinstance(output, str) else json.dumps(output, default=str)
            ms = (time.perf_counter() - started) * 1000
            log.info("tool %s(%s) -> %s in %.0f ms", name, arguments, text[:200], ms)
            return ToolRun(name, arguments, text, ok, ms)

        spec = self._specs.get(name)
        if spec is None:
            return done({"error": f"there is no tool named {name}"}, False)
        problem = check_arguments(spec.parameters, arguments)
        if problem:
            return done({"error": f"bad arguments: {problem}"}, False)
        try:
            result = spec.handler(arguments, ctx)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, spec.timeout_s)
        except TimeoutError:
            return done({"error": f"{name} did not answer within {spec.timeout_s:g} s"}, False)
        except Exception as exc:
            log.exception("tool %s failed", name)
            return done({"error": f"{name} failed: {exc}"}, False)
        return done(result if result is not None else {"ok": True}, True)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def check_arguments(schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """A small JSON-schema check (object, required, property types, enums)."""
    if not isinstance(arguments, dict):
        return "arguments are not an object"
    for key in schema.get("required", []):
        if key not in arguments:
            return f"missing {key!r}"
    props: dict[str, Any] = schema.get("properties", {})
    for key, value in arguments.items():
        prop = props.get(key)
        if prop is None:
            if schema.get("additionalProperties") is False:
                return f"unknown argument {key!r}"
            continue
        expected = prop.get("type")
        if expected in _JSON_TYPES:
            ok = isinstance(value, _JSON_TYPES[expected])
            if expected in ("integer", "number") and isinstance(value, bool):
                ok = False
            if not ok:
                return f"{key!r} should be of type {expected}"
        if "enum" in prop and value not in prop["enum"]:
            return f"{key!r} should be one of {prop['enum']}"
    return None


def builtin_tools(
    transfer_target: str | None, queues: dict[str, str] | None = None
) -> list[ToolSpec]:
    """`transfer_to_human` (when a target is configured) and `end_call`. With queues, the
    agent may name one (`queue`) and the caller goes to that queue's number."""

    async def end_call(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        await ctx.actions.hang_up()
        return {"ok": True, "note": "the call ends after your goodbye"}

    specs = [
        ToolSpec(
            "end_call",
            "End the call after saying goodbye, when the caller is done.",
            {"type": "object", "properties": {}},
            end_call,
        )
    ]
    if transfer_target:
        queue_map = dict(queues or {})

        async def transfer(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
            summary = str(args.get("summary") or args.get("reason") or "")
            queue = args.get("queue")
            target = queue_map.get(str(queue), transfer_target) if queue else transfer_target
            await ctx.actions.transfer(target, summary)
            return {"ok": True, "note": "transferring the caller to a person now"}

        properties: dict[str, Any] = {
            "summary": {
                "type": "string",
                "description": "one sentence on what the caller needs",
            }
        }
        if queue_map:
            properties["queue"] = {
                "type": "string",
                "enum": sorted(queue_map),
                "description": "which team to transfer to",
            }

        specs.append(
            ToolSpec(
                "transfer_to_human",
                "Transfer the caller to a human agent when they ask for a person or the "
                "agent cannot help.",
                {"type": "object", "properties": properties},
                transfer,
            )
        )
    return specs
