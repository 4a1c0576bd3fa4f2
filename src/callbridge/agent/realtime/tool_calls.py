"""The model's function calls (docs/realtime.md, "Tools").

A call is collected from `response.function_call_arguments.done` and run only once its
response completed (`.done` also comes for cancelled responses, with arguments cut short).
Outputs go back as `function_call_output` items only after that response's `response.done`,
followed by one response.create for the batch; the calls of a cancelled response are never
run and their items leave the conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from callbridge.agent.base import ToolCall
from callbridge.agent.realtime.ledger import Conversation, Entry, PendingCall, ResponseState
from callbridge.agent.realtime.requests import ResponseRequests


class ToolCalls:
    def __init__(
        self,
        conversation: Conversation,
        create_item: Callable[[Entry, str | None], None],
        delete_item: Callable[[str], None],
        requests: ResponseRequests,
        emit: Callable[[ToolCall], None],
    ) -> None:
        self._conv = conversation
        self._create_item = create_item
        self._delete_item = delete_item
        self._requests = requests
        self._emit = emit
        self._pending: dict[str, PendingCall] = {}  # running, or output not sent yet
        self._names: dict[str, str] = {}  # call id -> name (Voice Live's .done has none)

    def named(self, item: dict[str, Any]) -> None:
        self._names[str(item.get("call_id"))] = str(item.get("name") or "")

    def arguments_done(self, st: ResponseState, ev: dict[str, Any]) -> None:
        call_id = str(ev.get("call_id"))
        name = str(ev.get("name") or self._names.get(call_id, ""))
        st.calls.append(PendingCall(call_id, name, str(ev.get("arguments") or ""), st.id))

    def start(self, st: ResponseState) -> None:
        """The response completed: its calls go to the bridge's tool registry."""
        for call in st.calls:
            self._pending[call.call_id] = call
            try:
                arguments = json.loads(call.arguments or "{}")
            except json.JSONDecodeError:
                arguments = None
            if isinstance(arguments, dict):
                self._emit(ToolCall(call.call_id, call.name, arguments))
            else:  # broken JSON: the model hears why instead of the tool running
                call.output = json.dumps({"error": "the arguments were not a JSON object"})

    def abandon(self, st: ResponseState) -> None:
        """A cancelled or failed response: its calls are not run, their items go."""
        for call in st.calls:
            entry = self._call_entry(call.call_id)
            if entry is not None and entry.item_id:
                self._delete_item(entry.item_id)

    def lost(self, st: ResponseState) -> None:
        """The session went down under the response: its calls are forgotten."""
        for call in st.calls:
            self._pending.pop(call.call_id, None)
            entry = self._call_entry(call.call_id)
            if entry is not None:
                self._conv.entries.remove(entry)

    def result(self, call_id: str, output: str) -> bool:
        call = self._pending.get(call_id)
        if call is None:
            return False  # a fallback action, or a call whose session was lost
        call.output = output
        return True

    def waiting(self, response_id: str) -> bool:
        return any(
            c.response_id == response_id and c.output is None for c in self._pending.values()
        )

    def flush(self, done: Callable[[str], bool], caller_speaking: bool) -> None:
        """Send the outputs whose response is done; then one response.create per response
        whose calls have all answered (parallel calls: one for all)."""
        finished: set[str] = set()
        for call in list(self._pending.values()):
            if call.output is None or call.sent or not done(call.response_id):
                continue
            self._create_item(
                Entry("function_call_output", call_id=call.call_id, output=call.output), None
            )
            call.sent = True
            finished.add(call.response_id)
        for response_id in finished:
            calls = [c for c in self._pending.values() if c.response_id == response_id]
            if any(not c.sent for c in calls):
                continue
            for call in calls:
                del self._pending[call.call_id]
            if not caller_speaking:  # else the caller's turn brings a response
                self._requests.request({})

    def _call_entry(self, call_id: str) -> Entry | None:
        return next(
            (e for e in self._conv.entries if e.kind == "function_call" and e.call_id == call_id),
            None,
        )
