"""The `llm` brain: any OpenAI-compatible chat-completions endpoint, with tool calling.

Works with OpenAI, Azure OpenAI (`https://<res>.openai.azure.com/openai/v1/`), Ollama,
vLLM and llama.cpp's server. One turn streams the model's answer and yields each sentence
as soon as it is complete, so speech starts before the model is done. When the model asks
for tools, they run through `run_tool` (in the call session), their results go back as
`tool` messages and the model continues — at most `max_tool_rounds` times, then it must
answer in words. Any failure (refused connection, 5xx, no first token within `timeout`)
raises BrainError at once: the agent apologises and falls back instead of leaving the
caller in silence while a client retries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, cast

from openai import AsyncOpenAI
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
)

from callbridge.agent.local.brain.base import BrainError, ToolRunner
from callbridge.agent.local.brain.common import Reprompts, Speech, call_tool, finish_call
from callbridge.agent.sentences import SentenceSplitter
from callbridge.core.template import render
from callbridge.profile import Profile, TurnSection, call_variables

log = logging.getLogger(__name__)

Message = dict[str, Any]
# After these the call is over or handed on: no further model round is needed.
_FINAL_TOOLS = frozenset({"end_call", "transfer_to_human"})


def chat_tools(schemas: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """ToolRegistry.schemas() (flat, Realtime-style) in chat-completions form."""
    out = []
    for s in schemas:
        function = {"name": s["name"], "description": s.get("description", "")}
        function["parameters"] = s.get("parameters") or {"type": "object", "properties": {}}
        out.append({"type": "function", "function": function})
    return out


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Round:
    """What one model response held besides the sentences already yielded."""

    text: str = ""
    calls: dict[int, _ToolCall] = field(default_factory=dict)


class LlmBrain:
    def __init__(
        self,
        profile: Profile,
        tool_schemas: Sequence[Mapping[str, Any]] = (),
        variables: Mapping[str, str] | None = None,
        *,
        client: AsyncOpenAI | None = None,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self._profile = profile
        self._settings = profile.llm
        self._vars = dict(variables if variables is not None else call_variables())
        self._tools = chat_tools(tool_schemas)
        key_env = self._settings.api_key_env
        api_key = (os.environ.get(key_env) if key_env else None) or "not-needed"
        # No SDK retries: a retry would hold the caller in silence; the agent apologises.
        self._own_client = client is None
        self._client = client or AsyncOpenAI(
            base_url=self._settings.base_url,
            api_key=api_key,
            timeout=self._settings.timeout,
            max_retries=0,
        )
        persona = render(profile.persona, self._vars)
        day = today()
        self._system = f"{persona}\n\nToday is {day:%A}, {day:%B} {day.day}, {day:%Y}.".strip()
        self.messages: list[Message] = []  # the conversation, without the system prompt
        self._reprompts = Reprompts(profile)
        self._done = False

    # --- the Brain protocol ------------------------------------------------------------

    def greeting(self) -> str:
        text = render(self._profile.greeting, self._vars)
        if text:
            self.messages.append({"role": "assistant", "content": text})
        return text

    async def turn(self, text: str, run_tool: ToolRunner) -> Speech:
        if self._done:
            return
        if not text.strip():
            async for piece in self._miss(run_tool):
                yield piece
            return
        self._reprompts.understood()
        self.messages.append({"role": "user", "content": text})
        # aclosing: a barge-in closes this generator; _reply must record what was said
        # (and close the HTTP stream) right then.
        async with aclosing(self._reply(run_tool)) as pieces:
            async for piece in pieces:
                yield piece

    async def digits(self, digits: str, run_tool: ToolRunner) -> Speech:
        # The model sees keypad input as what it is; it knows which question is open.
        async with aclosing(self.turn(f"(The caller typed: {digits})", run_tool)) as pieces:
            async for piece in pieces:
                yield piece

    def heard(self, text: str) -> None:
        for i in range(len(self.messages) - 1, -1, -1):
            msg = self.messages[i]
            if msg["role"] != "assistant" or not msg.get("content"):
                continue
            if text.strip():
                msg["content"] = text.strip()
            elif msg.get("tool_calls"):
                msg["content"] = None
            else:
                del self.messages[i]
            return

    def state(self) -> dict[str, Any]:
        """The conversation as JSON-able data: `restore` on a fresh brain of the same
        profile goes on from here (the call moved to another replica)."""
        return {"messages": self.messages, "misses": self._reprompts.misses, "done": self._done}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Go on from `state` (see `state`); raises ValueError for state of another shape."""
        messages = state.get("messages")
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and m.get("role") in ("user", "assistant", "tool") for m in messages
        ):
            raise ValueError("not an llm brain's state: messages")
        self.messages = [dict(m) for m in messages]
        self._reprompts.misses = int(state.get("misses") or 0)
        self._done = bool(state.get("done"))

    def apology(self) -> str:
        return render(self._profile.apology, self._vars)

    @property
    def turn_section(self) -> TurnSection:
        """The profile's turn-taking settings (the agent applies them at the call's start)."""
        return self._profile.turn

    @property
    def fallback(self) -> str:
        return self._profile.fallback

    async def aclose(self) -> None:
        """Close the HTTP client this brain made (not one it was given)."""
        if self._own_client:
            await self._client.close()

    # --- the model loop ----------------------------------------------------------------

    async def _reply(self, run_tool: ToolRunner) -> Speech:
        unrecorded: list[str] = []  # said but not yet in the history
        said_anything = used_tools = finished = False
        rounds = self._settings.max_tool_rounds
        try:
            for n in range(rounds + 1):
                current = _Round()
                # The last round offers no tools, so the model has to answer in words.
                async with aclosing(self._round(current, with_tools=n < rounds)) as sentences:
                    async for sentence in sentences:
                        unrecorded.append(sentence)
                        said_anything = True
                        yield sentence
                calls = [c for _, c in sorted(current.calls.items()) if c.name]
                if not calls or n == rounds:
                    self._add({"role": "assistant", "content": current.text or None})
                    unrecorded.clear()
                    break
                used_tools = True
                final = [c.name for c in calls if c.name in _FINAL_TOOLS]
                if final and not said_anything:
                    # The model hung up or transferred without a word: say the profile's.
                    closing = (
                        self._profile.goodbye
                        if final[0] == "end_call"
                        else self._profile.transfer.announce
                    )
                    sentence = render(closing, self._vars)
                    current.text = sentence
                    said_anything = True
                    yield sentence
                results = [await self._run(run_tool, c) for c in calls]
                self._add_tool_round(current.text, calls, results)
                unrecorded.clear()
                if final:
                    self._done = True
                    break
            finished = True
        except BrainError:
            raise
        except Exception as exc:
            raise BrainError(f"{self._settings.base_url}: {type(exc).__name__}: {exc}") from exc
        finally:
            # Cut short by an error or a barge-in: keep what was said, for heard().
            if not finished and unrecorded:
                self._add({"role": "assistant", "content": " ".join(unrecorded)})
        if not said_anything and not used_tools:
            raise BrainError("the model answered with nothing")

    async def _round(self, out: _Round, *, with_tools: bool) -> Speech:
        kwargs: dict[str, Any] = {
            "model": self._settings.model,
            "messages": cast("list[ChatCompletionMessageParam]", self._request_messages()),
            "temperature": self._settings.temperature,
        }
        if self._settings.max_tokens:
            kwargs["max_tokens"] = self._settings.max_tokens
        if with_tools and self._tools:
            kwargs["tools"] = cast("list[ChatCompletionToolUnionParam]", self._tools)
        timeout = self._settings.timeout
        if not self._settings.stream:
            whole = await asyncio.wait_for(
                self._client.chat.completions.create(**kwargs, stream=False), timeout
            )
            for sentence in self._take_whole(whole, out):
                yield sentence
            return
        stream = await asyncio.wait_for(
            self._client.chat.completions.create(**kwargs, stream=True), timeout
        )
        splitter = SentenceSplitter()
        chunks = aiter(stream)
        try:
            while True:
                try:
                    # Each piece must come within the timeout: a stalled stream is down.
                    chunk = await asyncio.wait_for(anext(chunks), timeout)
                except StopAsyncIteration:
                    break
                for sentence in self._take_chunk(chunk, out, splitter):
                    yield sentence
        finally:
            await stream.close()
        for sentence in splitter.flush():
            yield sentence

    def _take_chunk(
        self, chunk: ChatCompletionChunk, out: _Round, splitter: SentenceSplitter
    ) -> list[str]:
        if not chunk.choices:
            return []  # a usage-only chunk
        delta = chunk.choices[0].delta
        sentences: list[str] = []
        if delta.content:
            out.text += delta.content
            sentences = splitter.feed(delta.content)
        for tc in delta.tool_calls or []:
            index = tc.index if tc.index is not None else len(out.calls)
            acc = out.calls.setdefault(index, _ToolCall())
            acc.id = tc.id or acc.id
            if tc.function is not None:
                name = tc.function.name or ""
                if name and name != acc.name:
                    acc.name += name
                acc.arguments += tc.function.arguments or ""
        return sentences

    def _take_whole(self, whole: ChatCompletion, out: _Round) -> list[str]:
        if not whole.choices:
            return []
        message = whole.choices[0].message
        out.text = message.content or ""
        for i, tc in enumerate(message.tool_calls or []):
            function = getattr(tc, "function", None)
            if function is not None:
                out.calls[i] = _ToolCall(tc.id, function.name, function.arguments or "")
        splitter = SentenceSplitter()
        return splitter.feed(out.text) + splitter.flush()

    async def _run(self, run_tool: ToolRunner, call: _ToolCall) -> str:
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return json.dumps({"error": f"the arguments were not valid JSON: {exc}"})
        if not isinstance(args, dict):
            return json.dumps({"error": "the arguments must be a JSON object"})
        return json.dumps(await call_tool(run_tool, call.name, args))

    # --- history -----------------------------------------------------------------------

    def _request_messages(self) -> list[Message]:
        return [{"role": "system", "content": self._system}, *self.messages]

    def _add(self, message: Message) -> None:
        if message.get("content") or message.get("tool_calls"):
            self.messages.append(message)
        self._trim()

    def _add_tool_round(self, text: str, calls: list[_ToolCall], results: list[str]) -> None:
        """The assistant's tool calls and all their results, added together so the
        history never holds a call without its result (servers reject that)."""
        wire = []
        for c in calls:
            c.id = c.id or f"call_{uuid.uuid4().hex[:12]}"
            wire.append(
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments or "{}"},
                }
            )
        self.messages.append({"role": "assistant", "content": text or None, "tool_calls": wire})
        for c, result in zip(calls, results, strict=True):
            self.messages.append({"role": "tool", "tool_call_id": c.id, "content": result})
        self._trim()

    def _trim(self) -> None:
        """Keep about the last `max_history` messages, cutting at a caller's message so
        a tool result never loses the call it answers, and never into the current turn."""
        excess = len(self.messages) - self._settings.max_history
        if excess <= 0:
            return
        users = [i for i, m in enumerate(self.messages) if m["role"] == "user"]
        if not users:
            del self.messages[:excess]
            return
        later = [i for i in users if i >= excess]
        del self.messages[: later[0] if later else users[-1]]

    # --- not understood ----------------------------------------------------------------

    async def _miss(self, run_tool: ToolRunner) -> Speech:
        """Speech nobody could make out: reprompt without asking the model (it has no
        words to work with), and after `max_misses` in a row, the fallback."""
        if self._reprompts.miss():
            self._done = True
            yield render(self._profile.give_up, self._vars)
            summary = "The caller could not be understood."
            async for piece in finish_call(
                self._profile, self._vars, self._profile.fallback, run_tool, summary=summary
            ):
                yield piece
            return
        text = render(self._reprompts.text(), self._vars)
        self.messages.append({"role": "assistant", "content": text})
        yield text
