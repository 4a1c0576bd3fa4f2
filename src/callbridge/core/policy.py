"""How one call is run beyond its conversation: silence, limits, keypad barge-in,
transfer mode and recording. Built from the agent profile; the defaults suit a call with
no profile (the echo agent)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class CallPolicy:
    silence_reprompt_after_s: float | None = None  # None: no silence handling
    silence_hangup_after_s: float | None = None
    limit_notice_before_s: float = 0.0  # spoken notice this long before the maximum
    dtmf_barge_in: bool = False
    transfer_mode: Literal["cold", "warm"] = "cold"
    transfer_ring_timeout_s: int = 30
    transfer_stay_muted: bool = False
    record_local: bool = False
    record_acs: bool = False
