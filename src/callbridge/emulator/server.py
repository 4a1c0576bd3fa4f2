"""``AcsEmulator``: the HTTP server (REST, JWKS, control API) and the call launcher."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import secrets
import socket
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from .call import CallEnv, EmulatedCall
from .control import control_routes
from .eventgrid import EventGridDelivery
from .humans import Human, Humans
from .jwt_issuer import DEFAULT_ISSUER, DEFAULT_RESOURCE_ID, JwtIssuer
from .live import LiveCaller
from .report import CallReport
from .rest import RestApi, RestLogEntry
from .rest_operations import CallTables
from .script import CallScript
from .targets import TargetResponder

log = logging.getLogger("callbridge.emulator")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AcsEmulator:
    """A local stand-in for ACS that talks to the service only over the public protocol."""

    def __init__(
        self,
        webhook_url: str,
        access_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        event_schema: str = "eventgrid",
        issuer: str = DEFAULT_ISSUER,
        resource_id: str = DEFAULT_RESOURCE_ID,
        acs_number: str = "+18005550100",
        answer_timeout_s: float = 10.0,
        target_responder: TargetResponder | None = None,
        humans: Humans | Mapping[str, Human | str] | None = None,
    ) -> None:
        """``humans``: how transfer / add-participant targets respond, e.g.
        ``{"+14255550100": "decline"}`` (see :mod:`.humans`; later ``emu.humans.set``).
        ``target_responder`` replaces the humans altogether."""
        if not _is_loopback(host):
            raise ValueError(f"the ACS emulator binds to loopback only, not {host!r}")
        try:
            self._key = base64.b64decode(access_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("access_key must be base64 (see generate_access_key())") from exc
        if event_schema not in ("eventgrid", "cloudevents"):
            raise ValueError("event_schema must be 'eventgrid' or 'cloudevents'")
        self.webhook_url = webhook_url
        self.access_key = access_key
        self.host = host
        self.port = port
        self.event_schema = event_schema
        self.issuer = issuer
        self.audience = resource_id
        self.acs_number = acs_number
        self.answer_timeout_s = answer_timeout_s
        self.humans = humans if isinstance(humans, Humans) else Humans(humans)
        self.target_responder: TargetResponder = target_responder or self.humans
        self.calls: list[EmulatedCall] = []
        self._tables = CallTables()
        self._rest = RestApi(self._tables, lambda: self._key)
        self._jwt: JwtIssuer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._eventgrid: EventGridDelivery | None = None
        self._runner: web.AppRunner | None = None
        self._validate_lock = asyncio.Lock()
        self._call_tasks: set[asyncio.Task[CallReport]] = set()

    @staticmethod
    def generate_access_key() -> str:
        """A random 256-bit key, base64 like a real ACS access key."""
        return base64.b64encode(secrets.token_bytes(32)).decode("ascii")

    # ------------------------------------------------------------------ addresses

    @property
    def started(self) -> bool:
        return self._runner is not None

    @property
    def endpoint(self) -> str:
        """What the service uses as its ACS endpoint (``CallAutomationClient(endpoint, ...)``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint}/calling/keys"

    @property
    def openid_configuration_url(self) -> str:
        return f"{self.endpoint}/calling/.well-known/acsopenidconfiguration"

    @property
    def rest_log(self) -> list[RestLogEntry]:
        return self._rest.log

    @property
    def jwt(self) -> JwtIssuer:
        if self._jwt is None:
            raise RuntimeError("AcsEmulator.start() has not been called")
        return self._jwt

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._jwt = await asyncio.to_thread(JwtIssuer, self.issuer, self.audience)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._eventgrid = EventGridDelivery(self._session, self.event_schema)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/calling/keys", self._jwks)
        app.router.add_get("/calling/.well-known/acsopenidconfiguration", self._openid)
        app.router.add_routes(control_routes(self))
        app.router.add_route("*", "/calling/{tail:.*}", self._rest.handle)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        log.info("ACS emulator listening on %s (JWKS %s)", self.endpoint, self.jwks_url)

    async def stop(self) -> None:
        """Cancel running calls, close every socket and the HTTP server."""
        tasks = list(self._call_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AcsEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ calls

    async def validate_webhook(self) -> None:
        """Event Grid subscription validation handshake; raises WebhookValidationError."""
        if self._eventgrid is None:
            raise RuntimeError("AcsEmulator.start() has not been called")
        async with self._validate_lock:
            await self._eventgrid.validate(self.webhook_url)

    async def place_call(self, script: CallScript) -> CallReport:
        """Ring the service's webhook and run the whole call; returns when it has ended."""
        call, task = await self._launch(script, live=False)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                return call.report  # the emulator was stopped under this call
            raise

    async def start_call(self, script: CallScript | None = None) -> LiveCaller:
        """Ring the service's webhook and hand back the call to drive it live.

        Returns once IncomingCall has been delivered (the service may already have
        answered). The script's audio, if any, plays first; ``tail_s`` defaults to
        never, so the call lasts until a side hangs up or ``max_duration_s``.
        """
        call, task = await self._launch(script or CallScript(), live=True)
        live = LiveCaller(call, task)
        delivered = asyncio.ensure_future(call.delivered.wait())
        try:
            await asyncio.wait({delivered, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            delivered.cancel()
        if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
            raise exc  # a bug in the call runner, not an outcome of the call
        return live

    async def _launch(
        self, script: CallScript, *, live: bool
    ) -> tuple[EmulatedCall, asyncio.Task[CallReport]]:
        await self.validate_webhook()
        assert self._session is not None and self._eventgrid is not None
        env = CallEnv(
            session=self._session,
            issuer=self.jwt,
            eventgrid=self._eventgrid,
            webhook_url=self.webhook_url,
            acs_number=self.acs_number,
            answer_timeout_s=self.answer_timeout_s,
            responder=self.target_responder,
        )
        call = EmulatedCall(env, script, live=live)
        self.calls.append(call)
        self._tables.by_context[call.incoming_call_context] = call
        task = asyncio.create_task(call.run(), name="acs-emulator-call")
        self._call_tasks.add(task)
        task.add_done_callback(self._call_tasks.discard)
        return call, task

    # ------------------------------------------------------------------ JWKS

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwt.jwks())

    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwt.openid_configuration(self.jwks_url))


async def run_emulator_forever(emu: AcsEmulator) -> None:
    """Run ``emu`` inside the current event loop until cancelled, then stop it cleanly.

    Usage from another command: ``task = asyncio.create_task(run_emulator_forever(emu))``;
    cancel the task to shut down. Starts ``emu`` if it is not started yet.
    """
    await emu.start()
    try:
        await asyncio.Event().wait()
    finally:
        await emu.stop()
