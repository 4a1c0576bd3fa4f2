"""Fake Azure Voice Live and OpenAI Realtime servers on loopback, for the official SDKs.

They answer the WebSocket upgrade exactly where each SDK connects: Voice Live at
`/voice-live/realtime?api-version=…&model=…` (or the agent parameters) with an `api-key`
header or a bearer token; OpenAI GA at `<prefix>/realtime?model=…` with `Authorization:
Bearer`, refusing the retired beta header. No redirects, no TLS. Anything else gets the
HTTP status a real service would give.

    async with FakeRealtimeServer("ga", Script([Say("Hello!")])) as fake:
        os.environ.update(fake.env())      # CALLBRIDGE_OPENAI_BASE_URL, ..._API_KEY, ...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from callbridge.testing.fake_realtime.script import Script, ScriptChooser
from callbridge.testing.fake_realtime.session import FakeSession
from callbridge.testing.fake_realtime.wire import Dialect

log = logging.getLogger(__name__)


class FakeRealtimeServer:
    def __init__(
        self,
        dialect: Dialect,
        script: Script | ScriptChooser | None = None,
        *,
        api_key: str = "test-key",
        tokens: Collection[str] = ("entra-token",),
        prefix: str = "/v1",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.dialect: Dialect = dialect
        self._script = script if script is not None else Script()
        self.api_key = api_key
        self.tokens = set(tokens)  # Entra ID bearer tokens taken as valid
        self.prefix = prefix.rstrip("/")
        self.host = host
        self.port = port
        self.sessions: list[FakeSession] = []
        self.rejected: list[tuple[int, str]] = []  # (HTTP status, why) of refused upgrades
        self.refusing = False  # refuse every upgrade with 503 (a service that is down)
        self._server: Server | None = None

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> FakeRealtimeServer:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._check_upgrade,
            max_size=16 * 1024 * 1024,  # Voice Live takes appends of up to 15 MiB
        )
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else 0
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> FakeRealtimeServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- where clients go -------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Voice Live: the endpoint; OpenAI: the base URL (http, mapped to ws by the SDK)."""
        base = f"http://{self.host}:{self.port}"
        return base if self.dialect == "voicelive" else base + self.prefix

    def env(self, model: str = "gpt-realtime") -> dict[str, str]:
        """The environment that points callbridge's backend at this fake."""
        if self.dialect == "voicelive":
            return {
                "CALLBRIDGE_VOICELIVE_ENDPOINT": self.url,
                "CALLBRIDGE_VOICELIVE_API_KEY": self.api_key,
                "CALLBRIDGE_VOICELIVE_MODEL": model,
            }
        return {
            "CALLBRIDGE_OPENAI_BASE_URL": self.url,
            "CALLBRIDGE_OPENAI_API_KEY": self.api_key,
            "CALLBRIDGE_OPENAI_MODEL": model,
        }

    def script_for(self, session: FakeSession) -> Script:
        return self._script if isinstance(self._script, Script) else self._script(session)

    # --- what happened ----------------------------------------------------------------------
    def client_events(self, kind: str) -> list[dict[str, Any]]:
        return [e for s in self.sessions for e in s.client_events(kind)]

    async def wait_for(
        self, condition: Callable[[], object], timeout_s: float = 5.0, what: str = ""
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not condition():
            if loop.time() > deadline:
                raise TimeoutError(f"fake {self.dialect} server: {what or 'condition'} not met")
            await asyncio.sleep(0.01)

    # --- the upgrade ------------------------------------------------------------------------
    def _check_upgrade(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = dict(parse_qsl(url.query))
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        status, why = self._refusal(url.path, query, headers)
        if status is None:
            return None
        self.rejected.append((int(status), why))
        return connection.respond(status, why + "\n")

    def _refusal(
        self, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[HTTPStatus | None, str]:
        if self.refusing:
            return HTTPStatus.SERVICE_UNAVAILABLE, "service unavailable"
        auth = headers.get("authorization", "")
        if self.dialect == "voicelive":
            if path != "/voice-live/realtime":
                return HTTPStatus.NOT_FOUND, f"no such path {path}"
            if "api-version" not in query:
                return HTTPStatus.BAD_REQUEST, "api-version is required"
            agent = "agent-name" in query or "agent-project-name" in query
            if agent and not ("agent-name" in query and "agent-project-name" in query):
                return HTTPStatus.BAD_REQUEST, "agent-name needs agent-project-name"
            if not agent and not query.get("model"):
                return HTTPStatus.BAD_REQUEST, "model is required"
            key_ok = headers.get("api-key") == self.api_key or query.get("api-key") == self.api_key
            if not (key_ok or auth.removeprefix("Bearer ") in self.tokens):
                return HTTPStatus.UNAUTHORIZED, "missing or wrong api-key / bearer token"
            return None, ""
        if path != f"{self.prefix}/realtime":
            return HTTPStatus.NOT_FOUND, f"no such path {path}"
        if "api-version" in query:
            return HTTPStatus.UNAUTHORIZED, "api-version is not accepted on the GA endpoint"
        if "openai-beta" in headers:
            return HTTPStatus.BAD_REQUEST, "beta_api_shape_disabled"  # the real refusal
        if not query.get("model"):
            return HTTPStatus.BAD_REQUEST, "model is required"
        if auth.removeprefix("Bearer ") not in {self.api_key, *self.tokens}:
            return HTTPStatus.UNAUTHORIZED, "Incorrect API key provided"
        return None, ""

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        url = urlsplit(request.path)
        session = FakeSession(
            self,
            self.dialect,
            url.path,
            dict(parse_qsl(url.query)),
            {k.lower(): v for k, v in request.headers.raw_items()},
        )
        self.sessions.append(session)
        await session.run(ws)
