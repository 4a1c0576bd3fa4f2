"""Service settings: `CALLBRIDGE_*` environment variables, `.env` and secret files, validated
at start.

A setting may also come from a file, so Key Vault references mounted as files, Kubernetes
secret volumes and Compose secrets work unchanged (`_SecretFiles` below):

- `CALLBRIDGE_<NAME>_FILE=/path`: the file's content, trailing newlines stripped;
- a file named `CALLBRIDGE_<NAME>` (any case, `-` for `_`) in `CALLBRIDGE_SECRETS_DIR`, or in
  `/run/secrets` when that variable is unset and the folder exists.

No source silently wins: a setting given by the environment (or `.env`) and by a file, or by
two files, with different values stops the service at start, naming the sources (never the
values). Values passed in code (`load_settings(host=...)`, the CLI's `--host`/`--port`) win.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

AudioFormatName = Literal["pcm24KMono", "pcm16KMono"]
SAMPLE_RATES: dict[str, int] = {"pcm24KMono": 24000, "pcm16KMono": 16000}


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and what to set."""


@dataclass(frozen=True)
class AcsConnection:
    """Where ACS Call Automation lives and how to authenticate to it.

    Parsed from one setting: `endpoint=https://x.communication.azure.com/;accesskey=<base64>`
    for key auth, or just the endpoint URL for Entra ID (managed identity / developer login).
    """

    endpoint: str
    access_key: str | None

    @classmethod
    def parse(cls, value: str) -> AcsConnection:
        value = value.strip()
        if not value:
            raise ValueError("is empty")
        parts: dict[str, str] = {}
        if "=" in value.split(";", 1)[0]:
            for item in value.split(";"):
                if not item.strip():
                    continue
                key, sep, val = item.partition("=")
                if not sep:
                    raise ValueError(f"has a part without '=': {item!r}")
                parts[key.strip().lower()] = val.strip()
            endpoint = parts.get("endpoint") or ""
        else:
            endpoint = value
        url = urlsplit(endpoint)
        # Rebuilt lower-case: an upper-case scheme breaks the SDK's HMAC signing (docs/emulator.md).
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(
                "needs endpoint=https://<resource>.communication.azure.com/ "
                "(or http://127.0.0.1:<port>/ for the emulator)"
            )
        access_key = parts.get("accesskey")
        if access_key is not None:
            try:
                base64.b64decode(access_key, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("has an accesskey that is not valid base64") from exc
        return cls(endpoint=f"{url.scheme}://{url.netloc}", access_key=access_key)


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="CALLBRIDGE_", env_file=".env", extra="ignore", frozen=True
    )

    acs_connection: str = Field(
        description="endpoint=https://<res>.communication.azure.com/;accesskey=<key>, "
        "or the endpoint alone for Entra ID"
    )
    public_url: str = Field(
        description="the URL ACS reaches this service at, e.g. https://bridge.example.com"
    )
    eventgrid_secret: str | None = Field(
        default=None,
        min_length=16,
        description="shared secret Event Grid sends with every delivery (or set "
        "CALLBRIDGE_EVENTGRID_ENTRA_TENANT_ID and CALLBRIDGE_EVENTGRID_ENTRA_AUDIENCE to "
        "authenticate Event Grid with Entra ID instead)",
    )
    # Entra ID (Azure AD) delivery authentication of Event Grid webhooks
    # (https://learn.microsoft.com/azure/event-grid/secure-webhook-delivery):
    # telephony/acs/eventgrid_auth.py.
    eventgrid_entra_tenant_id: str | None = Field(
        default=None, description="the Entra tenant (directory) id Event Grid's tokens come from"
    )
    eventgrid_entra_audience: str | None = Field(
        default=None,
        description="the application (client) id and/or Application ID URI of the app "
        "registration Event Grid gets tokens for, comma-separated",
    )
    eventgrid_entra_role: str | None = Field(
        default=None,
        description="an app role the token must carry (roles claim), e.g. "
        "AzureEventGridSecureWebhookSubscriber; unset: any token of the tenant for the audience",
    )
    eventgrid_entra_openid_url: str | None = Field(
        default=None,
        description="OpenID configuration URL with the signing keys (jwks_uri); default: "
        "https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration",
    )
    signing_key: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        min_length=16,
        description="secret for per-call URL tokens; set the same value on every replica",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    agent: str = Field(default="local", description="local, voicelive, openai or echo")
    profile: str = Field(
        default="profiles/contoso.yaml", description="the agent profile (YAML) of the local agent"
    )
    audio_format: AudioFormatName = "pcm24KMono"
    max_calls: int = Field(default=100, ge=1)
    # Calls arriving together are answered this far apart (core/spacing.py): a burst's
    # set-ups spread instead of stalling the audio of the calls already talking.
    answer_spacing_ms: float = Field(default=20.0, ge=0, le=200)
    # Several replicas (docs/scale-out.md): the shared state on Redis, this replica's name in
    # it, and an optional cap on the calls of the whole service.
    redis_url: str | None = None
    redis_prefix: str = Field(default="callbridge:", min_length=1)
    replica_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", min_length=1
    )
    max_calls_total: int | None = Field(default=None, ge=1)
    # A stopping replica waits this long (the balancer's health-check interval × its fall
    # count) before handing its calls over, so their new media sockets land elsewhere.
    drain_settle_s: float = Field(default=1.0, ge=0, le=30)
    media_connect_timeout_s: float = Field(default=15.0, gt=0)
    idle_timeout_s: float = Field(default=30.0, gt=0)
    max_call_duration_s: float = Field(default=3600.0, gt=0)
    media_token_ttl_s: float = Field(default=60.0, gt=0, le=60)
    max_ws_message_bytes: int = Field(default=65536, ge=4096)
    outbound_chunk_ms: int = Field(default=20, ge=10, le=200)
    playout_lead_ms: int = Field(default=60, ge=0, le=1000)
    # The adaptive lead's ceiling (audio/playout.py): the lead grows with the jitter of the
    # caller's frame arrivals up to this; equal to playout_lead_ms = a fixed lead.
    playout_max_lead_ms: int = Field(default=400, ge=0, le=2000)
    # How long a call whose media socket broke waits for ACS to reopen it (0: not at all).
    media_reconnect_s: float = Field(default=5.0, ge=0, le=60)
    acs_jwks_url: str | None = None
    acs_jwt_issuer: str = "https://acscallautomation.communication.azure.com"
    acs_jwt_audience: str | None = None
    log_level: str = "INFO"
    log_json: bool = False
    # Call records, the records API and the console (callbridge.store, callbridge.api).
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/callbridge.db",
        description="where call records go: sqlite+aiosqlite:///path.db or "
        "postgresql+asyncpg://user:password@host/db",
    )
    admin_token: str | None = Field(
        default=None,
        min_length=16,
        description="the secret the records API and console need (Authorization: Bearer); "
        "unset: both are disabled",
    )
    pii_redaction: bool = Field(
        default=False,
        description="redact card and phone numbers, e-mails and national ids from stored "
        "transcripts after each call",
    )
    recordings_dir: str = Field(
        default="recordings", description="the folder call recordings are kept in and served from"
    )
    # Slow HTTP clients (callbridge.http_timeouts, callbridge.server).
    drain_timeout_s: float = Field(
        default=20.0,
        ge=0,
        description="on SIGTERM, how long calls get to hear the shutdown notice and end",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="a client gets this long to send a request's headers; then 408 and closed",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="and this long, after the headers, to send the request's body",
    )
    max_connections: int | None = Field(
        default=None,
        ge=1,
        description="open connections (WebSockets included) over which new HTTP requests "
        "get 503; unset: 4 per call of CALLBRIDGE_MAX_CALLS plus 512",
    )

    @field_validator("acs_connection")
    @classmethod
    def _check_connection(cls, value: str) -> str:
        AcsConnection.parse(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError("must be an http(s) URL such as https://bridge.example.com")
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = _SecretFiles(settings_cls, env_settings, dotenv_settings)
        return init_settings, env_settings, dotenv_settings, files

    @field_validator(
        "acs_jwt_audience",
        "eventgrid_entra_tenant_id",
        "eventgrid_entra_audience",
        "eventgrid_entra_role",
        "eventgrid_entra_openid_url",
    )
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @field_validator("eventgrid_secret", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        return value or None

    @field_validator("eventgrid_entra_tenant_id")
    @classmethod
    def _check_tenant(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            # Token issuers name the tenant by its id, never by a domain name.
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(
                "must be the tenant (directory) id, a GUID such as "
                "72f988bf-86f1-41af-91ab-2d7cd011db47 (az account show --query tenantId)"
            ) from None

    @field_validator("eventgrid_entra_openid_url")
    @classmethod
    def _check_openid_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL of an OpenID configuration document")
        return value

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # CALLBRIDGE_ADMIN_TOKEN= (empty) means "not set", not "a too-short token".
        return value or None

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis_url(cls, value: object) -> object:
        if not value:
            return None
        if not str(value).startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be redis://host:6379/0 (rediss:// for TLS, as Azure uses)")
        return value

    @model_validator(mode="after")
    def _replicas_share_their_signing_key(self) -> Settings:
        # Each replica checks URL tokens another one minted: a key made up at start
        # would differ on every replica and refuse every call's callbacks and media.
        if self.redis_url and "signing_key" not in self.model_fields_set:
            raise ValueError(
                "CALLBRIDGE_SIGNING_KEY must be set, the same on every replica, "
                "when CALLBRIDGE_REDIS_URL is set"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres:")):
            raise ValueError(
                "must be sqlite+aiosqlite:///path/to/file.db or "
                "postgresql+asyncpg://user:password@host:5432/database"
            )
        return value

    @property
    def acs(self) -> AcsConnection:
        return AcsConnection.parse(self.acs_connection)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATES[self.audio_format]

    @property
    def verify_acs_jwt(self) -> bool:
        return bool(self.acs_jwks_url)

    @property
    def eventgrid_entra_audiences(self) -> tuple[str, ...]:
        parts = (self.eventgrid_entra_audience or "").split(",")
        return tuple(p.strip() for p in parts if p.strip())

    @property
    def eventgrid_entra(self) -> bool:
        """Event Grid deliveries may authenticate with an Entra ID token."""
        return bool(self.eventgrid_entra_tenant_id and self.eventgrid_entra_audiences)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one line per bad setting."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            env = f"CALLBRIDGE_{field.upper()}"
            if err["type"] == "missing":
                lines.append(f"{env} is not set: {_describe(field)}")
            else:
                lines.append(f"{env} {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("; ".join(lines)) from None
    if settings.verify_acs_jwt and not settings.acs_jwt_audience:
        raise ConfigError(
            "CALLBRIDGE_ACS_JWT_AUDIENCE is not set: with CALLBRIDGE_ACS_JWKS_URL set, "
            "give the ACS resource id that ACS-signed tokens are issued for"
        )
    problems = _eventgrid_auth_problems(settings)
    if problems:
        raise ConfigError("; ".join(problems))
    return settings


def _eventgrid_auth_problems(settings: Settings) -> list[str]:
    """Half-set Entra settings, or no way at all to authenticate Event Grid."""
    tenant, audiences = settings.eventgrid_entra_tenant_id, settings.eventgrid_entra_audiences
    problems = []
    if tenant and not audiences:
        problems.append(
            "CALLBRIDGE_EVENTGRID_ENTRA_AUDIENCE is not set: with "
            "CALLBRIDGE_EVENTGRID_ENTRA_TENANT_ID set, give the application (client) id or "
            "Application ID URI of the app registration on the Event Grid subscription"
        )
    if audiences and not tenant:
        problems.append(
            "CALLBRIDGE_EVENTGRID_ENTRA_TENANT_ID is not set: with "
            "CALLBRIDGE_EVENTGRID_ENTRA_AUDIENCE set, give the tenant id Event Grid's "
            "tokens come from"
        )
    for extra in ("openid_url", "role"):
        if getattr(settings, f"eventgrid_entra_{extra}") and not tenant:
            problems.append(
                f"CALLBRIDGE_EVENTGRID_ENTRA_{extra.upper()} is set without "
                "CALLBRIDGE_EVENTGRID_ENTRA_TENANT_ID and CALLBRIDGE_EVENTGRID_ENTRA_AUDIENCE"
            )
    if not problems and not settings.eventgrid_secret and not settings.eventgrid_entra:
        problems.append(f"CALLBRIDGE_EVENTGRID_SECRET is not set: {_describe('eventgrid_secret')}")
    return problems


def _describe(field: str) -> str:
    info = Settings.model_fields.get(field)
    return (info.description if info and info.description else "required") or "required"


SECRETS_DIR_VAR = "CALLBRIDGE_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")
MAX_SECRET_FILE_BYTES = 64 * 1024
_PREFIX = "CALLBRIDGE_"


class _SecretFiles(PydanticBaseSettingsSource):
    """Settings from files: `CALLBRIDGE_<NAME>_FILE` and the secrets folder (module docstring).

    It runs after the environment and `.env` sources and compares: a value given both ways
    must be the same, else ConfigError names the two sources.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        env: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._env = env
        self._dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ reads every field at once.
        return None, field_name, False

    def _variables(self) -> dict[str, str]:
        """The process environment over `.env`, upper-case names."""
        merged: dict[str, str] = {}
        if isinstance(self._dotenv, EnvSettingsSource):
            merged.update({k.upper(): v for k, v in self._dotenv.env_vars.items() if v})
        merged.update({k.upper(): v for k, v in os.environ.items() if v})
        return merged

    def __call__(self) -> dict[str, Any]:
        fields = set(self.settings_cls.model_fields)
        variables = self._variables()
        found: dict[str, tuple[str, str]] = {}  # field -> (value, where it came from)
        problems: list[str] = []

        def take(name: str, path: Path, where: str) -> None:
            try:
                value = _read_secret_file(path)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                return
            if name in found and found[name][0] != value:
                problems.append(f"{_PREFIX}{name.upper()} differs in {found[name][1]} and {where}")
                return
            found[name] = (value, where)

        folder = variables.get(SECRETS_DIR_VAR)
        if folder is not None and not Path(folder).is_dir():
            problems.append(f"{SECRETS_DIR_VAR}={folder} is not a readable folder")
        elif folder is not None or DEFAULT_SECRETS_DIR.is_dir():
            root = Path(folder) if folder is not None else DEFAULT_SECRETS_DIR
            for path in sorted(_entries(root)):
                name = path.name.upper().replace("-", "_").removeprefix(_PREFIX).lower()
                if path.name.upper().replace("-", "_").startswith(_PREFIX) and name in fields:
                    take(name, path, str(path))
        for var, value in variables.items():
            name = var.removeprefix(_PREFIX).removesuffix("_FILE").lower()
            if var.startswith(_PREFIX) and var.endswith("_FILE") and name in fields:
                take(name, Path(value), f"{var}={value}")

        # The environment (or .env) and a file must agree.
        given = {**self._dotenv(), **self._env()}
        for name, (value, where) in found.items():
            if name in given and str(given[name]) != value:
                problems.append(
                    f"{_PREFIX}{name.upper()} is set in the environment and in {where} with "
                    "different values: keep one"
                )
        if problems:
            raise ConfigError("; ".join(problems))
        return {name: value for name, (value, _) in found.items()}


def _entries(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if not p.name.startswith(".") and not p.is_dir()]
    except OSError as exc:
        raise ConfigError(f"cannot list the secrets folder {root}: {exc.strerror}") from None


def _read_secret_file(path: Path) -> str:
    """The file's text without its trailing newline(s); ValueError says what is wrong."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ValueError(f"the file is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
