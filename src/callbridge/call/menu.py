"""The keypad menu: play the prompt, collect digits from the media stream, pick a route.

The choice becomes a call variable; a route names another line, which the session then
takes from `Lines` (the same step that picked the first line by called number).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from callbridge.audio.playout import Playout
from callbridge.call.line import KeypadMenu
from callbridge.call.media_leg import CallerDtmf, MediaLeg
from callbridge.core.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MenuChoice:
    digits: str
    route: str | None  # the line the digits route to, if any


async def collect_digits(
    leg: MediaLeg,
    menu: KeypadMenu,
    on_audio: Callable[[bytes], None],
    clock: Clock,
    prompt_s: float = 0.0,
) -> str | None:
    """Digits until max_digits, the terminator, or `timeout_s` after the last key (or after
    the `prompt_s`-long prompt has played, when none came). None when the leg closed."""
    digits = ""
    deadline = clock.now() + prompt_s + menu.timeout_s
    while True:
        left = deadline - clock.now()
        if left <= 0:
            return digits
        try:
            item = await clock.wait_for(leg.receive(), left)
        except TimeoutError:
            return digits
        if item is None:
            return None
        if isinstance(item, CallerDtmf):
            if item.digit == menu.terminator:
                return digits
            digits += item.digit
            if len(digits) >= menu.max_digits:
                return digits
            deadline = clock.now() + menu.timeout_s
        else:
            on_audio(item.pcm)


async def run_menu(
    leg: MediaLeg,
    playout: Playout,
    menu: KeypadMenu,
    on_audio: Callable[[bytes], None],
    clock: Clock,
) -> MenuChoice | None:
    """Play the menu, collect a valid choice (or the last try); None if the caller left."""
    text = menu.prompt
    digits = ""
    for _attempt in range(menu.attempts):
        playout.start_reply()
        prompt = await menu.speak(text, leg.sample_rate)
        playout.enqueue(prompt)
        # The caller has `timeout_s` once the prompt has played (keys may come sooner).
        prompt_s = playout.buffered_ms() / 1000.0
        got = await collect_digits(leg, menu, on_audio, clock, prompt_s)
        if playout.speaking:  # keys pressed over the prompt stop it
            playout.flush()
            await leg.stop_audio()
        if got is None:
            return None
        digits = got
        if digits and (not menu.routes or digits in menu.routes):
            break
        text = f"{menu.invalid} {menu.prompt}"
    route = menu.routes.get(digits)
    log.info("menu: caller keyed %r -> %s", digits, route or "this line")
    return MenuChoice(digits, route)
