"""The deployment files agree with the service: routes, probes, settings, drain bounds.
(Their syntax is checked by `make deploy-check`: hadolint, checkov, the compose schema.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from callbridge.agent.realtime.settings import OpenAIRealtimeSettings, VoiceLiveSettings
from callbridge.app import create_app
from callbridge.config import Settings, load_settings
from tests.fakes import FakeControl

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def _seconds(value: str) -> float:
    return float(value.removesuffix("s"))


SETTINGS: dict[str, type[BaseSettings]] = {
    "CALLBRIDGE_VOICELIVE_": VoiceLiveSettings,
    "CALLBRIDGE_OPENAI_": OpenAIRealtimeSettings,
    "CALLBRIDGE_": Settings,
}


def _settings_var(name: str) -> str:
    prefix = next(p for p in SETTINGS if name.startswith(p))
    field = name.removeprefix(prefix).lower()
    assert field in SETTINGS[prefix].model_fields, f"{name} is not a setting"
    return name


def test_the_webhook_path_in_the_template_is_the_service_route() -> None:
    settings = load_settings(
        _env_file=None,
        acs_connection="endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        public_url="https://bridge.example.com",
        eventgrid_secret="s" * 20,
        agent="echo",
    )
    paths = create_app(settings, control=FakeControl()).openapi()["paths"]
    assert "post" in paths["/acs/incoming"]
    assert "get" in paths["/healthz"] and "get" in paths["/readyz"]
    main = (INFRA / "main.bicep").read_text()
    assert "/acs/incoming'" in main and "/acs/incoming?key=" in main


def test_probes_and_drain_in_the_container_app() -> None:
    app = (INFRA / "modules/app.bicep").read_text()
    assert re.search(r"type: 'Liveness'\s+httpGet: \{ path: '/healthz'", app)
    assert re.search(r"type: 'Readiness'[^\n]*\n\s+httpGet: \{ path: '/readyz'", app)
    assert "stickySessions: { affinity: 'none' }" in app
    assert "terminationGracePeriodSeconds: drainSeconds + 10" in app
    assert "concurrentRequests" in app
    main = (INFRA / "main.bicep").read_text()
    assert re.search(r"@minValue\(2\)[^\n]*\n(@[^\n]*\n)*param minReplicas int = 2", main)
    for name in re.findall(r"name: '(CALLBRIDGE_[A-Z_]+)'", app):
        _settings_var(name)


def test_event_grid_subscription_uses_entra_delivery_auth_for_incoming_calls() -> None:
    grid = (INFRA / "modules/eventgrid.bicep").read_text()
    assert "azureActiveDirectoryTenantId: entraTenantId" in grid
    assert "azureActiveDirectoryApplicationIdOrUri: entraAppId" in grid
    assert "includedEventTypes: ['Microsoft.Communication.IncomingCall']" in grid
    assert "endpointType: 'WebHook'" in grid


def test_parameters_file_names_only_template_parameters() -> None:
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = set(re.findall(r"^param (\w+)", (INFRA / "main.bicep").read_text(), re.M))
    assert set(params) <= declared
    required = {
        name
        for name in declared
        if re.search(rf"^param {name} \w+$", (INFRA / "main.bicep").read_text(), re.M)
    }
    assert required <= set(params), required - set(params)


def test_every_module_the_template_uses_exists() -> None:
    for module in re.findall(r"module \w+ '([^']+)'", (INFRA / "main.bicep").read_text()):
        assert (INFRA / module).is_file(), module


def test_compose_runs_replicas_behind_the_balancer_with_a_grace_period() -> None:
    services = _compose()["services"]
    bridge = services["callbridge"]
    env = bridge["environment"]
    assert "CALLBRIDGE_REDIS_URL" in env and env["CALLBRIDGE_REDIS_URL"].startswith("redis://")
    for name in env:
        _settings_var(name)
    assert _seconds(bridge["stop_grace_period"]) > float(env["CALLBRIDGE_DRAIN_TIMEOUT_S"])
    assert "${CALLBRIDGE_REPLICAS:-2}" in str(bridge["deploy"]["replicas"])
    assert services["acs-emulator"]["network_mode"] == "service:lb"
    assert {"redis", "postgres", "lb", "secrets-init"} <= set(services)
    haproxy = (ROOT / "deploy/haproxy/haproxy.cfg").read_text()
    assert "option httpchk GET /readyz" in haproxy
    assert "timeout tunnel" in haproxy
    assert "server-template cb" in haproxy and "callbridge:8080" in haproxy


def test_compose_secrets_are_named_like_settings() -> None:
    source = (ROOT / "deploy/compose/init_secrets.py").read_text()
    for name in re.findall(r'"(CALLBRIDGE_[A-Z_]+)"', source):
        _settings_var(name)


def test_azure_yaml_deploys_the_dockerfile_to_container_apps() -> None:
    data = yaml.safe_load((ROOT / "azure.yaml").read_text())
    service = data["services"]["callbridge"]
    assert service["host"] == "containerapp"
    assert (ROOT / service["docker"]["path"]).is_file()
    for hook in data["hooks"].values():
        assert (ROOT / hook["run"]).is_file()
    app = (INFRA / "modules/app.bicep").read_text()
    assert "'azd-service-name': 'callbridge'" in app
