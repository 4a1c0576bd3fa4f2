"""Dialog brains for the offline agent: `flow` (a YAML profile) and `llm` (chat completions).

`make_brain(profile, registry, call)` gives a fresh brain for one call. The brains are
imported on demand: the flow brain shouldn't pay for importing the OpenAI SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callbridge.agent.local.brain.base import Brain
    from callbridge.core.call_info import CallInfo
    from callbridge.core.tools import ToolRegistry
    from callbridge.profile import Profile


def make_brain(profile: Profile, registry: ToolRegistry, call: CallInfo | None = None) -> Brain:
    """The brain the profile names, for one call (brains keep per-call history).

    `registry` is the call's tools (`ToolRegistry(profile_tools(profile))`); the llm brain
    offers their schemas to the model, the flow brain calls the ones its intents name.
    `call` fills the persona/greeting templates ({caller}, {callee}, SIP headers).
    """
    from callbridge.profile import call_variables

    variables = call_variables(
        call.caller if call else "", call.callee if call else "", call.variables if call else {}
    )
    if profile.brain == "llm":
        from callbridge.agent.local.brain.llm import LlmBrain

        return LlmBrain(profile, registry.schemas(), variables)
    from callbridge.agent.local.brain.flow import FlowBrain

    return FlowBrain(profile, variables)
