"""Tools a profile declares itself: a Python callable or an HTTP endpoint, with a JSON
schema for their arguments (checked by the registry before they run)."""

from __future__ import annotations

import importlib
import inspect
import os
import re
from typing import Any

from callbridge.core.tools import ToolContext, ToolHandler, ToolSpec
from callbridge.profile import HttpToolSettings, ToolEntry

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UserToolError(ValueError):
    """A user tool that cannot be set up (module missing, env var unset...)."""


def _expand(value: str) -> str:
    """Fill ${NAME} from the environment; a missing variable is a setup error."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise UserToolError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(sub, value)


def python_handler(target: str) -> ToolHandler:
    """`package.module:function`; the function takes (arguments) or (arguments, context)."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        func = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise UserToolError(f"cannot load {target}: {exc}") from None
    if not callable(func):
        raise UserToolError(f"{target} is not callable")
    takes_context = len(inspect.signature(func).parameters) >= 2

    def handler(args: dict[str, Any], ctx: ToolContext) -> Any:
        return func(args, ctx) if takes_context else func(args)

    return handler


def http_handler(http: HttpToolSettings, timeout_s: float) -> ToolHandler:
    """Calls the endpoint with the arguments (JSON body, or query string for GET/DELETE) and
    the call's id; a non-2xx answer becomes an error result the agent can explain."""
    # Loaded here, as the line is built: only a profile with an HTTP tool needs it
    # (docs/architecture.md, "Memory"), and never mid-call, where an import stalls the loop.
    import httpx

    for value in http.headers.values():
        _expand(value)  # fail at start, not mid-call, when a secret is missing

    async def handler(args: dict[str, Any], ctx: ToolContext) -> Any:
        headers = {k: _expand(v) for k, v in http.headers.items()}
        headers.setdefault("X-Callbridge-Call-Id", ctx.call_id)
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            if http.method in ("GET", "DELETE"):
                resp = await client.request(http.method, http.url, params=args, headers=headers)
            else:
                resp = await client.request(http.method, http.url, json=args, headers=headers)
        if resp.status_code >= 400:
            return {"error": f"the service answered {resp.status_code}: {resp.text[:200]}"}
        try:
            return resp.json()
        except ValueError:
            return {"result": resp.text[:2000]}

    return handler


def user_tool(entry: ToolEntry) -> ToolSpec:
    """The tool a profile's `python`/`http` entry declares; raises UserToolError when it
    cannot be set up."""
    params = entry.parameters or {"type": "object", "properties": {}}
    if entry.python:
        handler = python_handler(entry.python)
    elif entry.http is not None:
        handler = http_handler(entry.http, entry.timeout_s)
    else:
        raise UserToolError(f"tool {entry.name} has neither `python` nor `http`")
    return ToolSpec(entry.name, entry.description, params, handler, timeout_s=entry.timeout_s)
