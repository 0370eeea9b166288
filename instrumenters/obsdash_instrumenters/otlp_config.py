"""Which signals go out by OTLP, and over which protocol: the standard OTEL_EXPORTER_OTLP_* variables.

A signal is sent when OTEL_EXPORTER_OTLP_ENDPOINT or its own OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_ENDPOINT is
set (`obsdash wrap --otlp-endpoint URL` sets the first). The protocol is OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL, else
OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf. Headers, timeout, compression and certificates are read by the
official exporter itself from the same family of variables.

Stdlib only and tiny: providers.py reads it when the SDK is built, and `obsdash wrap` to check the exporter is
installed before it starts the app.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

SIGNALS = ("traces", "logs", "metrics")
PACKAGES = {
    "http/protobuf": ("opentelemetry.exporter.otlp.proto.http", "opentelemetry-exporter-otlp-proto-http"),
    "grpc": ("opentelemetry.exporter.otlp.proto.grpc", "opentelemetry-exporter-otlp-proto-grpc"),
}
"""Protocol → (module, distribution). http/json has no Python exporter."""
EXPORTERS = {
    "traces": ("trace_exporter", "OTLPSpanExporter"),
    "logs": ("_log_exporter", "OTLPLogExporter"),
    "metrics": ("metric_exporter", "OTLPMetricExporter"),
}
"""Signal → (submodule, class), the same names in the http and grpc packages."""


def configured(environ: Mapping[str, str]) -> dict[str, str]:
    """Signal → protocol, for each signal an OTLP endpoint is set for; empty when OTLP out is off."""
    general = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    default_protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    signals = {}
    for signal in SIGNALS:
        upper = signal.upper()
        if general or environ.get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT"):
            protocol = environ.get(f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL") or default_protocol
            signals[signal] = protocol.strip().lower()
    return signals


def exporter_path(signal: str, protocol: str) -> tuple[str, str]:
    """(module, class) of the official exporter of `signal` over `protocol`; KeyError for an unknown protocol."""
    submodule, name = EXPORTERS[signal]
    return f"{PACKAGES[protocol][0]}.{submodule}", name
