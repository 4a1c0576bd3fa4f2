"""Connection settings of the two realtime backends, from `CALLBRIDGE_*` environment variables
(and `.env`), checked when the service starts: each problem is one line saying what to set.

URL rules (docs/realtime.md, "Environment"): the Voice Live SDK always appends
`/voice-live/realtime` to the endpoint, the openai SDK appends `/realtime` to the WebSocket
base URL, and Azure OpenAI's GA endpoint refuses an `api-version`.
"""

from __future__ import annotations

from typing import Literal, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callbridge.config import ConfigError

AuthMode = Literal["auto", "key", "entra"]


class VoiceLiveSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLBRIDGE_VOICELIVE_", env_file=".env", extra="ignore", frozen=True
    )

    endpoint: str = Field(
        description="the Foundry resource, e.g. https://<resource>.services.ai.azure.com"
    )
    api_key: SecretStr | None = Field(
        default=None, description="resource key; unset: Entra ID (DefaultAzureCredential)"
    )
    auth: AuthMode = "auto"  # auto: the key if set, else Entra ID
    model: str | None = Field(default=None, description="model mode, e.g. gpt-realtime")
    agent_name: str | None = Field(default=None, description="agent mode: Foundry agent name")
    project: str | None = Field(default=None, description="agent mode: Foundry project name")
    agent_version: str | None = None
    api_version: str = "2026-07-15"
    token_scope: str = "https://ai.azure.com/.default"
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        url = urlsplit(value.strip())
        if url.scheme not in ("https", "http", "wss", "ws") or not url.netloc:
            raise ValueError("must be a URL such as https://<resource>.services.ai.azure.com")
        if url.path.rstrip("/").endswith("/voice-live/realtime"):
            raise ValueError(
                "must be the resource URL without /voice-live/realtime (the SDK appends it)"
            )
        return value.strip().rstrip("/")

    def check(self) -> list[str]:
        problems: list[str] = []
        agent = bool(self.agent_name or self.project)
        if agent and not (self.agent_name and self.project):
            problems.append(
                "agent mode needs both CALLBRIDGE_VOICELIVE_AGENT_NAME and "
                "CALLBRIDGE_VOICELIVE_PROJECT"
            )
        if agent and self.model:
            problems.append(
                "set CALLBRIDGE_VOICELIVE_MODEL (model mode) or the agent settings, not both"
            )
        if not agent and not self.model:
            problems.append(
                "CALLBRIDGE_VOICELIVE_MODEL is not set: the model (e.g. gpt-realtime), or set "
                "CALLBRIDGE_VOICELIVE_AGENT_NAME and CALLBRIDGE_VOICELIVE_PROJECT for agent mode"
            )
        if agent and not self.use_entra:
            # Agent mode takes Microsoft Entra ID only (voice-live-agents-quickstart): with a
            # key every connect would fail and each caller would hear only the fallback.
            change = (
                "set CALLBRIDGE_VOICELIVE_AUTH=entra"
                if self.auth == "key"
                else "unset CALLBRIDGE_VOICELIVE_API_KEY or set CALLBRIDGE_VOICELIVE_AUTH=entra"
            )
            problems.append(
                "agent mode (CALLBRIDGE_VOICELIVE_AGENT_NAME) needs Microsoft Entra ID, not a "
                f"key: {change} (or set CALLBRIDGE_VOICELIVE_MODEL for model mode instead)"
            )
        elif self.auth == "key" and self.api_key is None:
            problems.append("CALLBRIDGE_VOICELIVE_API_KEY is not set (AUTH=key asks for one)")
        return problems

    @property
    def use_entra(self) -> bool:
        return self.auth == "entra" or (self.auth == "auto" and self.api_key is None)

    @property
    def agent_mode(self) -> bool:
        return bool(self.agent_name)


class OpenAIRealtimeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLBRIDGE_OPENAI_", env_file=".env", extra="ignore", frozen=True
    )

    base_url: str = Field(
        default="https://api.openai.com/v1",
        description="https://api.openai.com/v1, or https://<resource>.openai.azure.com/openai/v1",
    )
    websocket_url: str | None = Field(
        default=None, description="WebSocket base URL; default: base_url with ws(s)://"
    )
    api_key: SecretStr | None = Field(default=None, description="the API key")
    auth: AuthMode = "auto"  # auto: the key if set, else Entra ID for *.azure.com
    model: str = Field(default="gpt-realtime", description="model, or Azure deployment name")
    token_scope: str = "https://ai.azure.com/.default"
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_openai_url(value)

    @field_validator("websocket_url")
    @classmethod
    def _websocket_url(cls, value: str | None) -> str | None:
        return _check_openai_url(value) if value and value.strip() else None

    @property
    def ws_base_url(self) -> str:
        """Always given to the SDK: old SDKs force wss:// when only base_url is set."""
        if self.websocket_url:
            return self.websocket_url
        url = urlsplit(self.base_url)
        scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
        return urlunsplit((scheme, url.netloc, url.path, url.query, ""))

    @property
    def is_azure(self) -> bool:
        host = urlsplit(self.ws_base_url).hostname or ""
        return host.endswith(".azure.com")

    @property
    def use_entra(self) -> bool:
        if self.auth == "entra":
            return True
        return self.auth == "auto" and self.api_key is None and self.is_azure

    def check(self) -> list[str]:
        if self.api_key is None and not self.use_entra:
            how = "" if self.auth == "key" else " (Entra ID works for *.azure.com endpoints)"
            return [f"CALLBRIDGE_OPENAI_API_KEY is not set: the API key{how}"]
        return []


def _check_openai_url(value: str) -> str:
    url = urlsplit(value.strip())
    if url.scheme not in ("https", "http", "wss", "ws") or not url.netloc:
        raise ValueError("must be a URL such as https://api.openai.com/v1")
    if url.path.rstrip("/").endswith("/realtime"):
        raise ValueError("must not end with /realtime (the SDK appends it)")
    if "api-version" in parse_qs(url.query):
        raise ValueError(
            "must not carry api-version: Azure OpenAI's GA endpoint is "
            "https://<resource>.openai.azure.com/openai/v1 (an api-version gives 401)"
        )
    return value.strip().rstrip("/")


S = TypeVar("S", "VoiceLiveSettings", "OpenAIRealtimeSettings")


def _load(cls: type[S], prefix: str) -> S:
    try:
        settings = cls()  # type: ignore[call-arg]  # (read from the environment)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            env = f"{prefix}{name.upper()}"
            if err["type"] == "missing":
                info = cls.model_fields.get(name)
                what = (info.description if info else "") or "required"
                lines.append(f"{env} is not set: {what}")
            else:
                lines.append(f"{env} {str(err['msg']).removeprefix('Value error, ')}")
        raise ConfigError("; ".join(lines)) from None
    problems = settings.check()
    if problems:
        raise ConfigError("; ".join(problems))
    return settings


def load_voicelive_settings() -> VoiceLiveSettings:
    return _load(VoiceLiveSettings, "CALLBRIDGE_VOICELIVE_")


def load_openai_settings() -> OpenAIRealtimeSettings:
    return _load(OpenAIRealtimeSettings, "CALLBRIDGE_OPENAI_")
