"""The tools a profile may name: the built-in call-control tools, the demo tools, and user
tools a profile declares (checked by building them)."""

from __future__ import annotations

from callbridge.core.tools import builtin_tools
from callbridge.demo.tools import RESULT_FIELDS, demo_tools
from callbridge.lines.user_tools import UserToolError, user_tool
from callbridge.profile import ToolCatalogue, ToolEntry

BUILTIN_RESULT_FIELDS = frozenset({"ok", "note"})


def default_catalogue() -> ToolCatalogue:
    """What `load_profile` checks a profile against."""
    # "+0": any transfer target, so transfer_to_human is known whatever the profile says;
    # whether the profile has a target is checked by the profile itself.
    builtins = builtin_tools("+0")
    specs = {spec.name: spec for spec in builtins + demo_tools()}
    result_fields = {**RESULT_FIELDS, **{spec.name: BUILTIN_RESULT_FIELDS for spec in builtins}}
    return ToolCatalogue(specs, result_fields, check_user_tool)


def check_user_tool(entry: ToolEntry) -> str | None:
    """What stops a user tool from being set up (module missing, env var unset...)."""
    try:
        user_tool(entry)
    except UserToolError as exc:
        return str(exc)
    return None
