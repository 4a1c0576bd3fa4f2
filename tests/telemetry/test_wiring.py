"""Telemetry on and off through the environment: off imports nothing of the SDK; OTLP
exports a real call's trace and its log lines to a local OTLP/HTTP sink; Azure Monitor is
wired from a connection string (its exporters are built; nothing is sent to Azure)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from callbridge import telemetry
from callbridge.devstack import running_stack
from callbridge.emulator import CallScript
from callbridge.telemetry.setup import exporters_from_env, start_telemetry
from callbridge.telemetry.sink import OtlpSink
from tests.e2e.harness import hello_pcm16k


def test_off_loads_nothing_of_the_sdk() -> None:
    code = textwrap.dedent(
        """
        import sys
        from callbridge.app import create_app
        from callbridge.config import load_settings
        settings = load_settings(
            acs_connection="endpoint=http://127.0.0.1:9/;accesskey=" + "a" * 44,
            public_url="http://127.0.0.1:9", eventgrid_secret="s" * 24, agent="echo",
        )
        app = create_app(settings)
        assert app.state.telemetry is None
        loaded = [m for m in sys.modules if m.startswith(
            ("opentelemetry.sdk", "opentelemetry.exporter", "azure.monitor"))]
        assert not loaded, loaded
        """
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (telemetry.OTLP_ENV, telemetry.AZURE_MONITOR_ENV)
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert telemetry.from_env(agent="echo", env={}) is None


@pytest.mark.e2e
async def test_otlp_exports_the_call_and_its_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # as `callbridge serve` logs
    with OtlpSink() as sink:
        monkeypatch.setenv(telemetry.OTLP_ENV, sink.endpoint)
        async with running_stack(agent="echo") as stack:
            assert stack.edge.observers[-1] is not None
            report = await stack.emulator.place_call(
                CallScript(audio=hello_pcm16k()[:48000], hangup_after_s=2.0)
            )
            assert report.answered
            for _ in range(100):
                if not stack.edge.calls:
                    break
                await asyncio.sleep(0.05)
            call_id = stack.edge.finished[-1].call_id
        # The service's stop flushed its telemetry.
        traces = [ExportTraceServiceRequest.FromString(b) for b in sink.bodies["/v1/traces"]]
        logs = [ExportLogsServiceRequest.FromString(b) for b in sink.bodies["/v1/logs"]]
        assert sink.counts["/v1/metrics"] >= 1
    spans = [
        span
        for request in traces
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    roots = [
        s
        for s in spans
        if s.name == "call"
        and any(
            a.key == "callbridge.call.id" and a.value.string_value == call_id for a in s.attributes
        )
    ]
    assert len(roots) == 1
    trace_id = roots[0].trace_id
    names = {s.name for s in spans if s.trace_id == trace_id}
    assert {"call", "answer", "media connected", "hang-up"} <= names, names
    resource = traces[0].resource_spans[0].resource
    service = {a.key: a.value.string_value for a in resource.attributes}["service.name"]
    assert service == "callbridge"
    records = [
        r
        for request in logs
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]
    of_call = [r for r in records if r.trace_id == trace_id]
    assert of_call, [r.body.string_value for r in records][:20]


def test_azure_monitor_is_wired_from_the_connection_string(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    env = {
        telemetry.AZURE_MONITOR_ENV: "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=http://127.0.0.1:9/"
    }
    exporters = exporters_from_env(env)
    assert exporters.names == ["azure_monitor"]
    kinds = [type(e).__name__ for e in (*exporters.spans, *exporters.metrics, *exporters.logs)]
    assert kinds == [
        "AzureMonitorTraceExporter",
        "AzureMonitorMetricExporter",
        "AzureMonitorLogExporter",
    ]
    on = start_telemetry(env, agent="local")
    assert on.backends == ["azure_monitor"]
    assert len(on.tracer_provider._active_span_processor._span_processors) == 1
    on.tracer_provider.shutdown()
    on.logger_provider.shutdown()
