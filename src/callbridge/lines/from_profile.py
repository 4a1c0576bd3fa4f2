"""What a call with a given profile uses besides its agent: tools, policy, notice texts."""

from __future__ import annotations

from collections.abc import Mapping

from callbridge.core.policy import CallPolicy
from callbridge.core.tools import ToolSpec, builtin_tools
from callbridge.demo.tools import demo_tools
from callbridge.lines.user_tools import user_tool
from callbridge.profile import Profile, ToolEntry, render_text


def call_policy(profile: Profile) -> CallPolicy:
    """How calls with this profile are run beyond the conversation."""
    return CallPolicy(
        silence_reprompt_after_s=profile.silence.reprompt_after_s,
        silence_hangup_after_s=profile.silence.hangup_after_s,
        limit_notice_before_s=profile.limits.notice_before_end_s,
        dtmf_barge_in=profile.dtmf_barge_in,
        transfer_mode=profile.transfer.mode,
        transfer_ring_timeout_s=profile.transfer.ring_timeout_s,
        transfer_stay_muted=profile.transfer.stay_muted,
        record_local=profile.recording.local,
        record_acs=profile.recording.acs,
    )


def notice_texts(profile: Profile, variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the agent says for each call notice (see agent.base.NOTICES)."""
    texts = {
        "caller_silent": profile.silence.reprompt,
        "silence_goodbye": profile.silence.goodbye,
        "ending_soon": profile.limits.notice,
        "limit_goodbye": profile.limits.goodbye,
        "transfer_failed": profile.transfer.failed,
        "briefing": profile.transfer.brief,
    }
    return {k: render_text(v, variables) if variables else v for k, v in texts.items()}


def profile_tools(profile: Profile) -> list[ToolSpec]:
    """The tool specs a call with this profile gets (give them to a ToolRegistry)."""
    specs = builtin_tools(profile.transfer.target, profile.transfer.queues)
    enabled = set(profile.tool_names())
    specs += [spec for spec in demo_tools() if spec.name in enabled]
    specs += [
        user_tool(entry)
        for entry in profile.tools
        if isinstance(entry, ToolEntry) and (entry.python or entry.http)
    ]
    return specs
