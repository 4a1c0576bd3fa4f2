"""The OpenTelemetry SDK, set up from the standard environment variables.

One set of providers (traces, metrics, logs) with an exporter per backend asked for:
OTLP over HTTP/protobuf when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads the
other `OTEL_EXPORTER_OTLP_*` variables itself:
https://opentelemetry.io/docs/specs/otel/protocol/exporter/), Azure Monitor when
`APPLICATIONINSIGHTS_CONNECTION_STRING` is set, both at once if both are. The Azure
Monitor exporters are those of the `azure-monitor-opentelemetry` distro; its
`configure_azure_monitor()` is not called, because it also instruments FastAPI, whose ASGI
middleware would make spans of every WebSocket message (50 a second per call on the media
socket) and sets process-wide providers. The providers here are the service's own (not
the global ones), so several apps in one process (tests, `callbridge dev`) do not clash.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from callbridge import __version__
from callbridge.telemetry import AZURE_MONITOR_ENV, OTLP_ENV
from callbridge.telemetry.log_handler import CallLogHandler
from callbridge.telemetry.observer import OtelObserver

log = logging.getLogger(__name__)

SCOPE = "callbridge"
# The backends whose agents keep per-turn timings (STT, brain, TTS): agent/local.
TIMED_AGENTS = frozenset({"local"})


@dataclass
class Exporters:
    spans: list[SpanExporter] = field(default_factory=list)
    metrics: list[MetricExporter] = field(default_factory=list)
    logs: list[LogRecordExporter] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def exporters_from_env(env: Mapping[str, str]) -> Exporters:
    out = Exporters()
    if env.get(OTLP_ENV, "").strip():
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        out.spans.append(OTLPSpanExporter())
        out.metrics.append(OTLPMetricExporter())
        out.logs.append(OTLPLogExporter())
        out.names.append("otlp")
    connection = env.get(AZURE_MONITOR_ENV, "").strip()
    if connection:
        from azure.monitor.opentelemetry.exporter import (
            AzureMonitorLogExporter,
            AzureMonitorMetricExporter,
            AzureMonitorTraceExporter,
        )

        out.spans.append(AzureMonitorTraceExporter(connection_string=connection))
        out.metrics.append(AzureMonitorMetricExporter(connection_string=connection))
        out.logs.append(AzureMonitorLogExporter(connection_string=connection))
        out.names.append("azure_monitor")
    return out


def resource() -> Resource:
    """`service.name` callbridge unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say."""
    detected = Resource.create({SERVICE_VERSION: __version__})
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: "callbridge"}))
    return detected


class Telemetry:
    """The providers, the call observer that feeds them and the log handler."""

    def __init__(
        self,
        span_processors: list[SpanProcessor],
        metric_readers: list[MetricReader],
        log_processors: list[BatchLogRecordProcessor],
        *,
        agent: str,
        backends: list[str] | None = None,
    ) -> None:
        res = resource()
        self.backends = backends or []
        self.tracer_provider = TracerProvider(resource=res)
        for processor in span_processors:
            self.tracer_provider.add_span_processor(processor)
        self.meter_provider = MeterProvider(resource=res, metric_readers=metric_readers)
        self.logger_provider = LoggerProvider(resource=res)
        for log_processor in log_processors:
            self.logger_provider.add_log_record_processor(log_processor)
        self.observer = OtelObserver(
            self.tracer_provider.get_tracer(SCOPE, __version__),
            self.meter_provider.get_meter(SCOPE, __version__),
            turns_from_transcripts=agent not in TIMED_AGENTS,
        )
        self.log_handler = CallLogHandler(self.logger_provider, self.observer.span_context)

    def attach_logging(self) -> None:
        """Send the service's log records too (once its logging is set up)."""
        root = logging.getLogger()
        if self.log_handler not in root.handlers:
            root.addHandler(self.log_handler)

    def shutdown(self) -> None:
        """Flush what is buffered and stop the exporters (at the service's stop)."""
        logging.getLogger().removeHandler(self.log_handler)
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            try:
                provider.shutdown()
            except Exception:
                log.exception("telemetry: %s did not shut down", type(provider).__name__)


def start_telemetry(env: Mapping[str, str], *, agent: str) -> Telemetry:
    exporters = exporters_from_env(env)
    telemetry = Telemetry(
        [BatchSpanProcessor(e) for e in exporters.spans],
        [PeriodicExportingMetricReader(e) for e in exporters.metrics],
        [BatchLogRecordProcessor(e) for e in exporters.logs],
        agent=agent,
        backends=exporters.names,
    )
    log.info("telemetry on: %s", ", ".join(exporters.names))
    return telemetry
