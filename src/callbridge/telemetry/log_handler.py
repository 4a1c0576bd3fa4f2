"""Log records as OpenTelemetry logs, each tied to its call's trace.

The service's log lines already carry the call id (callbridge/logs.py). The call's spans
are built after the fact (observer.py), so no span is "current" when a call logs: this
handler looks the call's root span up by the call id and puts it in the record's context,
so a log line of a call carries the call's trace and span ids
(https://opentelemetry.io/docs/specs/otel/logs/data-model/#trace-context-fields).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext

from callbridge.logs import call_id_var

# The exporters' own loggers: their records would feed back into the export.
_OWN_LOGGERS = ("opentelemetry", "azure.monitor", "urllib3", "requests")
_FORMATTER = logging.Formatter()


def severity(levelno: int) -> tuple[SeverityNumber, str]:
    if levelno >= logging.CRITICAL:
        return SeverityNumber.FATAL, "FATAL"
    if levelno >= logging.ERROR:
        return SeverityNumber.ERROR, "ERROR"
    if levelno >= logging.WARNING:
        return SeverityNumber.WARN, "WARN"
    if levelno >= logging.INFO:
        return SeverityNumber.INFO, "INFO"
    return SeverityNumber.DEBUG, "DEBUG"


class CallLogHandler(logging.Handler):
    def __init__(
        self,
        provider: LoggerProvider,
        span_of_call: Callable[[str], SpanContext | None],
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self._provider = provider
        self._span_of_call = span_of_call

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_OWN_LOGGERS):
            return
        try:
            call_id = str(getattr(record, "call_id", "") or call_id_var.get())
            span = self._span_of_call(call_id) if call_id != "-" else None
            context = Context()
            if span is not None:
                context = trace.set_span_in_context(NonRecordingSpan(span), context)
            attributes: dict[str, str] = {"logger": record.name}
            if call_id != "-":
                attributes["callbridge.call.id"] = call_id
            if record.exc_info and record.exc_info[0] is not None:
                attributes["exception.type"] = record.exc_info[0].__name__
                attributes["exception.stacktrace"] = _FORMATTER.formatException(record.exc_info)
            number, text = severity(record.levelno)
            self._provider.get_logger(record.name).emit(
                LogRecord(
                    timestamp=int(record.created * 1e9),
                    context=context,
                    severity_number=number,
                    severity_text=text,
                    body=record.getMessage(),
                    attributes=attributes,
                )
            )
        except Exception:
            self.handleError(record)
