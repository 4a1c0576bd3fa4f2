"""After a barge-in: make the service's copy of each interrupted item what the caller heard.

docs/realtime.md, "Barge-in", step 3: an audio item is truncated to the milliseconds heard,
clamped to the audio received for it (the service refuses more: "Audio content of X ms is
already shorter than Y ms"); an item nobody heard is deleted (a truncate to 0 is refused:
"Only model output audio messages can be truncated"). A text item (custom voice) cannot be
truncated, so it is replaced by the words that were spoken. The decision waits for the
item's response to be done, so the clamp knows all the audio the item got.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callbridge.agent.realtime.ledger import Conversation, Entry, ItemState


class Truncation:
    def __init__(
        self,
        send: Callable[[dict[str, Any]], bool],
        conversation: Conversation,
        create_item: Callable[[Entry, str | None], None],
        on_heard: Callable[[ItemState], None],
        server_truncates: bool = False,
    ) -> None:
        self._send = send
        self._conv = conversation
        self._create_item = create_item
        self._on_heard = on_heard  # the heard part of a cut reply, for the transcript
        self._server_truncates = server_truncates  # Voice Live auto_truncate (docs/realtime.md)

    def decide(self, item: ItemState, heard_ms: float) -> None:
        """The caller heard `heard_ms` of `item`; acted on once its response is done."""
        if item.heard_ms is not None or item.settled:
            return
        item.heard_ms = heard_ms
        if item.response.done:
            self.settle(item)

    def settle(self, item: ItemState) -> None:
        item.settled = True
        heard = item.heard_ms
        if heard is None or item.response.out_of_band or item.response.lost:
            return  # not in the conversation, or in a session that is gone
        if item.text_mode:
            self._settle_text(item)
            return
        if heard >= item.received_ms - 1.0 and item.response.status == "completed":
            item.heard_ms = None  # heard all of it
            return
        end_ms = int(min(heard, item.received_ms))
        if end_ms <= 0:
            self.delete(item.item_id)
        elif not self._server_truncates:
            self._send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item.item_id,
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                }
            )
        if item.response.dropped and end_ms > 0:
            self._on_heard(item)

    def _settle_text(self, item: ItemState) -> None:
        text = item.heard_transcript().strip()
        entry = self._conv.find(item.item_id)
        if text == item.transcript.strip():
            item.heard_ms = None
        elif entry is not None and text:
            after = self._conv.previous_id(entry)
            self.delete(item.item_id)
            self._create_item(Entry("assistant", text=text), after)
        else:
            self.delete(item.item_id)

    def delete(self, item_id: str) -> None:
        self._send({"type": "conversation.item.delete", "item_id": item_id})
        self._conv.remove(item_id)
