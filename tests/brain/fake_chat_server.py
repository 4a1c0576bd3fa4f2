"""A local stand-in for an OpenAI-compatible chat-completions endpoint.

Speaks the wire format real servers (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp) use:
`POST /v1/chat/completions`, JSON in; with `"stream": true` server-sent events of
`chat.completion.chunk` objects — `choices[0].delta.content` pieces, `delta.tool_calls`
with `index`, `id`, `function.name` in the first fragment and `function.arguments` in
several, a last chunk with `finish_reason`, then `data: [DONE]`; without streaming one
`chat.completion` object. Errors come as `{"error": {...}}` with the HTTP status.

Each test scripts the replies in order (`server.script(...)`) and afterwards reads
`server.requests` to check what the brain sent (messages, tools, tool results).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """One scripted answer."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    status: int = 200  # anything else: an error body with this status
    delay_s: float = 0.0  # before the response starts (time to first byte)
    chunk_delay_s: float = 0.0  # between stream chunks
    stall_after: int | None = None  # stop sending (but keep the socket open) after N chunks
    chunk_chars: int = 6  # content is streamed in pieces of this size


def call(name: str, arguments: dict[str, Any] | str | None = None) -> tuple[str, Any]:
    return name, arguments if arguments is not None else {}


class FakeChatServer:
    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._n = 0
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply | str) -> None:
        for r in replies:
            self.replies.append(Reply(text=r) if isinstance(r, str) else r)

    async def start(self) -> FakeChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the endpoint --------------------------------------------------------------------

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if not self.replies:
            return _error(500, "the test scripted no reply for this request")
        reply = self.replies.popleft()
        if reply.delay_s:
            try:  # a slow server, but one that lets the test end at once
                await asyncio.wait_for(self._closing.wait(), reply.delay_s)
            except TimeoutError:
                pass
        if reply.status != 200:
            return _error(reply.status, f"scripted failure {reply.status}")
        self._n += 1
        cid = f"chatcmpl-{self._n}"
        if body.get("stream"):
            return await self._stream(request, body, reply, cid)
        return web.json_response(self._whole(reply, cid))

    def _calls(self, reply: Reply) -> list[dict[str, Any]]:
        out = []
        for i, (name, args) in enumerate(reply.tool_calls):
            text = args if isinstance(args, str) else json.dumps(args)
            out.append(
                {
                    "id": f"call_{self._n}_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": text},
                }
            )
        return out

    def _whole(self, reply: Reply, cid: str) -> dict[str, Any]:
        calls = self._calls(reply)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def _chunk(self, cid: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], reply: Reply, cid: str
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        chunks = [self._chunk(cid, {"role": "assistant", "content": ""})]
        text = reply.text
        for i in range(0, len(text), reply.chunk_chars):
            chunks.append(self._chunk(cid, {"content": text[i : i + reply.chunk_chars]}))
        for index, tc in enumerate(self._calls(reply)):
            head = {
                "index": index,
                "id": tc["id"],
                "type": "function",
                "function": {"name": tc["function"]["name"], "arguments": ""},
            }
            chunks.append(self._chunk(cid, {"tool_calls": [head]}))
            args = tc["function"]["arguments"]
            for j in range(0, len(args), 7):
                piece = {"index": index, "function": {"arguments": args[j : j + 7]}}
                chunks.append(self._chunk(cid, {"tool_calls": [piece]}))
        chunks.append(self._chunk(cid, {}, "tool_calls" if reply.tool_calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = self._chunk(cid, {})
            usage["choices"] = []
            usage["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            chunks.append(usage)
        for n, chunk in enumerate(chunks):
            if reply.stall_after is not None and n >= reply.stall_after:
                await self._closing.wait()  # silent until the test ends: the client must time out
                return resp
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _error(status: int, message: str) -> web.Response:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status)
