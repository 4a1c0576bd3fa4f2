"""A tiny OTLP/HTTP receiver on loopback that keeps what it is sent and answers 200: for
tests and for `bench/bridge_load.py --telemetry` (the cost of exporting, without a
collector). `python -m callbridge.telemetry.sink --port 4318` runs one by hand.

It accepts POST /v1/traces, /v1/metrics and /v1/logs (OTLP/HTTP, protobuf or JSON:
https://opentelemetry.io/docs/specs/otlp/#otlphttp) and answers each with an empty
success response.
"""

from __future__ import annotations

import argparse
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs")


class OtlpSink:
    def __init__(self, port: int = 0, *, keep: bool = True) -> None:
        self.bodies: dict[str, list[bytes]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path not in PATHS:
                    self.send_response(404)
                    self.end_headers()
                    return
                with sink._lock:
                    sink.counts[self.path] += 1
                    if keep:
                        sink.bodies[self.path].append(body)
                self.send_response(200)
                self.send_header("Content-Type", self.headers.get("Content-Type") or "")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OtlpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="an OTLP/HTTP sink on 127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    port = parser.parse_args().port
    with OtlpSink(port, keep=False) as sink:
        print(f"export OTEL_EXPORTER_OTLP_ENDPOINT={sink.endpoint}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
