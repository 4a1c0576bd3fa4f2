"""Service settings: `CALLBRIDGE_*` environment variables and `.env`, validated at start."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    eventgrid_secret: str = Field(
        min_length=16, description="shared secret Event Grid sends with every delivery"
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
    media_connect_timeout_s: float = Field(default=15.0, gt=0)
    idle_timeout_s: float = Field(default=30.0, gt=0)
    max_call_duration_s: float = Field(default=3600.0, gt=0)
    media_token_ttl_s: float = Field(default=60.0, gt=0, le=60)
    max_ws_message_bytes: int = Field(default=65536, ge=4096)
    outbound_chunk_ms: int = Field(default=20, ge=10, le=200)
    playout_lead_ms: int = Field(default=60, ge=0, le=1000)
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

    @field_validator("acs_jwt_audience")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # CALLBRIDGE_ADMIN_TOKEN= (empty) means "not set", not "a too-short token".
        return value or None

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
    return settings


def _describe(field: str) -> str:
    info = Settings.model_fields.get(field)
    return (info.description if info and info.description else "required") or "required"
