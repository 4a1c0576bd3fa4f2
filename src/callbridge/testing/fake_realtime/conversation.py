"""A fake session's conversation: its items and the client events that edit them
(``conversation.item.create`` / ``.truncate`` / ``.delete`` / ``.retrieve``).

Refusals carry the error codes and messages the real services send, e.g. truncating
past the audio an item holds. Item shapes differ per dialect (GA items carry
``object: "realtime.item"`` and get ``conversation.item.done``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from callbridge.testing.fake_realtime.script import new_id
from callbridge.testing.fake_realtime.wire import part_type

if TYPE_CHECKING:
    from callbridge.testing.fake_realtime.session import FakeSession


class FakeConversation:
    def __init__(self, session: FakeSession) -> None:
        self.session = session
        self.items: list[dict[str, Any]] = []
        self.audio_ms: dict[str, int] = {}  # assistant audio item -> ms it holds

    def last_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def shape(self, item: dict[str, Any]) -> dict[str, Any]:
        """The item as this dialect shows it."""
        if self.session.dialect == "ga":
            item["object"] = "realtime.item"  # every GA item carries object
        else:
            item.pop("object", None)
        return item

    def add(
        self, item: dict[str, Any], previous: str | None, done: bool = False, root: bool = False
    ) -> None:
        """Insert ``item`` after ``previous`` (at the end for None, first for root)."""
        if root:
            self.items.insert(0, item)
        elif previous is None:
            self.items.append(item)
        else:
            at = next(i for i, x in enumerate(self.items) if x["id"] == previous)
            self.items.insert(at + 1, item)
        self.session.emit("conversation.item.created", previous_item_id=previous, item=item)
        if done and self.session.dialect == "ga":
            self.session.emit("conversation.item.done", previous_item_id=previous, item=item)

    # --- client events --------------------------------------------------------------------
    def create(self, ev: dict[str, Any]) -> None:
        session = self.session
        eid = ev.get("event_id")
        item = ev.get("item")
        if not isinstance(item, dict):
            session.send_error(
                "invalid_request_error",
                "missing_required_parameter",
                "Missing required parameter: 'item'.",
                eid,
            )
            return
        problem = self.check(item)
        if problem:
            session.send_error("invalid_request_error", "invalid_value", problem, eid)
            return
        previous = ev.get("previous_item_id")
        ids = [i["id"] for i in self.items]
        if previous not in (None, "root") and previous not in ids:
            session.send_error(
                "invalid_request_error",
                "item_not_found",
                f"Previous item with id '{previous}' not found.",
                eid,
            )
            return
        item = self.shape({**item, "id": item.get("id") or new_id("item")})
        if previous == "root":
            self.add(item, None, done=True, root=True)
        else:
            self.add(
                item, previous if previous is not None else (ids[-1] if ids else None), done=True
            )

    def check(self, item: dict[str, Any]) -> str | None:
        """Why the service would refuse to create ``item``, or None."""
        kind = item.get("type")
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role not in ("user", "assistant", "system") or not isinstance(content, list):
                return "a message needs a role (user, assistant, system) and content"
            dialect = self.session.dialect
            allowed = (
                {"input_text", "input_audio", "input_image"}
                if role in ("user", "system")
                else {part_type(dialect, "text"), part_type(dialect, "audio")}
            )
            for part in content:
                if not isinstance(part, dict) or part.get("type") not in allowed:
                    got = part.get("type") if isinstance(part, dict) else part
                    return f"Invalid value: '{got}' is not a {role} content type here."
            return None
        if kind == "function_call":
            if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
                return "a function_call needs call_id, name and arguments (strings)"
            return None
        if kind == "function_call_output":
            if not isinstance(item.get("output"), str):
                return "Invalid type for 'item.output': expected a string."
            call_id = item.get("call_id")
            if not any(
                i.get("type") == "function_call" and i.get("call_id") == call_id for i in self.items
            ):
                return f"Tool call ID '{call_id}' not found in conversation."
            return None
        return f"Invalid value: '{kind}'."

    def truncate(self, ev: dict[str, Any]) -> None:
        session = self.session
        eid = ev.get("event_id")
        item_id = ev.get("item_id")
        end = ev.get("audio_end_ms")
        item = next((i for i in self.items if i["id"] == item_id), None)
        if item is None:
            session.send_error(
                "invalid_request_error",
                "item_not_found",
                f"Item with item_id '{item_id}' not found.",
                eid,
            )
            return
        held = self.audio_ms.get(str(item_id))
        if item.get("role") != "assistant" or not held or not isinstance(end, int):
            # The real message (also reported in livekit/agents#6157).
            session.send_error(
                "invalid_request_error",
                "unsupported_content_type",
                "Only model output audio messages can be truncated",
                eid,
            )
            return
        if end > held:
            # The real message for a truncate past the audio sent.
            session.send_error(
                "invalid_request_error",
                "invalid_value",
                f"Audio content of {held}ms is already shorter than {end}ms",
                eid,
            )
            return
        self.audio_ms[str(item_id)] = end
        for part in item.get("content") or []:
            transcript = part.get("transcript")
            if isinstance(transcript, str) and held:
                words = transcript.split()
                part["transcript"] = " ".join(words[: int(len(words) * end / held)])
        session.emit(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=ev.get("content_index", 0),
            audio_end_ms=end,
        )

    def delete(self, ev: dict[str, Any]) -> None:
        item_id = ev.get("item_id")
        before = len(self.items)
        self.items[:] = [i for i in self.items if i["id"] != item_id]
        if len(self.items) == before:
            self.session.send_error(
                "invalid_request_error",
                "item_not_found",
                f"Item with item_id '{item_id}' not found.",
                ev.get("event_id"),
            )
            return
        self.session.emit("conversation.item.deleted", item_id=item_id)

    def retrieve(self, ev: dict[str, Any]) -> None:
        item = next((i for i in self.items if i["id"] == ev.get("item_id")), None)
        if item is None:
            self.session.send_error(
                "invalid_request_error", "item_not_found", "Item not found.", ev.get("event_id")
            )
            return
        self.session.emit("conversation.item.retrieved", item=item)
