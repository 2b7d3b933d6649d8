"""Traces: every inference attempt of a warmup run, saved, loaded, streamed and validated.

See ``docs/trace-format.md`` for the schema and :mod:`llenergymeasure.traces.io`
for the storage formats.
"""

from llenergymeasure.traces.io import (
    TraceWriter,
    load_trace,
    load_traces,
    partial_path_for,
    save_trace,
    sidecar_path_for,
)
from llenergymeasure.traces.model import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TRACE_SCHEMA_VERSION,
    EnvironmentInfo,
    RunInfo,
    ShadowDecision,
    Trace,
    TraceFormatError,
    TraceMetadata,
)

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TRACE_SCHEMA_VERSION",
    "EnvironmentInfo",
    "RunInfo",
    "ShadowDecision",
    "Trace",
    "TraceFormatError",
    "TraceMetadata",
    "TraceWriter",
    "load_trace",
    "load_traces",
    "partial_path_for",
    "save_trace",
    "sidecar_path_for",
]
