"""An OtelObserver wired to an in-memory span exporter, for the telemetry tests."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from callbridge.telemetry.observer import OtelObserver


class Recorded:
    def __init__(self, *, turns_from_transcripts: bool = False) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.metrics = InMemoryMetricReader()
        meter = MeterProvider(metric_readers=[self.metrics]).get_meter("test")
        self.observer = OtelObserver(
            provider.get_tracer("test"), meter, turns_from_transcripts=turns_from_transcripts
        )

    def spans(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()

    def trace_of(self, call_id: str) -> list[ReadableSpan]:
        """Every span of the trace whose root is the call `call_id`."""
        spans = self.spans()
        (root,) = [
            s for s in spans if s.name == "call" and s.attributes["callbridge.call.id"] == call_id
        ]
        trace_id = root.context.trace_id
        return [s for s in spans if s.context.trace_id == trace_id]

    def metric_points(self) -> dict[str, list[object]]:
        data = self.metrics.get_metrics_data()
        out: dict[str, list[object]] = {}
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_name(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> str | None:
    if span.parent is None:
        return None
    (parent,) = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parent.name
