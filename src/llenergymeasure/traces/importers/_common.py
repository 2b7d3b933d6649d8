"""Shared pieces of the importers: the per-run arrays and their assembly into a Trace."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llenergymeasure.traces.model import (
    RunInfo,
    Trace,
    TraceFormatError,
    TraceMetadata,
    check_runs,
    normalize_frame,
)

__all__ = ["TIME_UNITS_MS", "ImportedRun", "build_trace", "is_gzip", "read_json"]

#: Milliseconds per unit of time.
TIME_UNITS_MS: dict[str, float] = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "ms": 1.0,
    "s": 1e3,
    "min": 60e3,
}


@dataclass
class ImportedRun:
    """One run of an imported file as plain arrays (before it becomes trace rows).

    Attributes
    ----------
    run_id : str
        Identifier of the run.
    latency_ms : ndarray of float
        Per-attempt latency (time per iteration / operation), ms; NaN where
        the attempt failed.
    t_end_ns : ndarray of int or None
        End of each attempt from the run's start (ns); None when the source
        has no timing of its own (the trace then falls back to cumulative
        latencies). A float array may hold NaN where one attempt's time is
        unknown (stored as null).
    t_start_ns : ndarray of int or None
        Start of each attempt; None: the previous attempt's end (0 first),
        i.e. back-to-back attempts.
    ok : ndarray of bool or None
        Success flags (None: all successful).
    error : list of (str or None) or None
        Error text of failed attempts.
    warmup : ndarray of bool or None
        The source flagged the attempt as a warmup iteration.
    extra : dict of str to ndarray
        Other columns (known optional columns or source-specific ones).
    reference_start, labels, provenance
        Fields of the run's `RunInfo`.
    """

    run_id: str
    latency_ms: np.ndarray
    t_end_ns: np.ndarray | None = None
    t_start_ns: np.ndarray | None = None
    ok: np.ndarray | None = None
    error: list[str | None] | None = None
    warmup: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    reference_start: int | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """The run's attempt rows."""
        n = len(self.latency_ms)
        cols: dict[str, Any] = {
            "run_id": np.full(n, self.run_id, dtype=object),
            "index": np.arange(n, dtype=np.int64),
        }
        if self.t_end_ns is None:
            cols["t_start_ns"] = pd.array([None] * n, dtype="Int64")
            cols["t_end_ns"] = pd.array([None] * n, dtype="Int64")
        else:
            end = _nullable_ns(self.t_end_ns)
            if self.t_start_ns is not None:
                start = _nullable_ns(self.t_start_ns)
            else:
                start = pd.array([0, *end[:-1]], dtype="Int64") if n else end
            cols["t_start_ns"] = start
            cols["t_end_ns"] = end
        cols["wall_start_ns"] = pd.array([None] * n, dtype="Int64")
        cols["latency_ms"] = np.asarray(self.latency_ms, dtype=np.float64)
        cols["ok"] = np.ones(n, dtype=bool) if self.ok is None else np.asarray(self.ok, bool)
        cols["error"] = [None] * n if self.error is None else list(self.error)
        if self.warmup is not None:
            cols["warmup"] = pd.array(np.asarray(self.warmup, dtype=bool), dtype="boolean")
        for name, values in self.extra.items():
            cols[name] = values
        return pd.DataFrame(cols)

    def info(self) -> RunInfo:
        """The run's `RunInfo` (status `"imported"`)."""
        return RunInfo(
            run_id=self.run_id,
            status="imported",
            stop_reason="imported",
            reference_start=self.reference_start,
            labels=self.labels,
            provenance=self.provenance,
        )


def _nullable_ns(values: Any) -> Any:
    """Nanosecond times as a nullable `Int64` array (NaN or None become null)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return pd.array(arr.astype(np.int64), dtype="Int64")
    f = np.asarray(arr, dtype=np.float64)
    known = np.isfinite(f)
    out = pd.array(np.where(known, f, 0).astype(np.int64), dtype="Int64")
    out[~known] = pd.NA
    return out


def build_trace(
    runs: list[ImportedRun],
    *,
    file: str | os.PathLike[str],
    source_format: str,
    tags: dict[str, str] | None = None,
    model: dict[str, Any] | None = None,
) -> Trace:
    """Assemble imported runs into a validated `Trace`.

    Parameters
    ----------
    runs : list of ImportedRun
        At least one.
    file : path-like
        Source file (for error messages and the tags).
    source_format : str
        Importer name, stored in the tag `source_format`.
    tags : dict, optional
        More tags (values are turned into strings).
    model : dict, optional
        What was benchmarked (stored as `metadata.model`).

    Raises
    ------
    TraceFormatError
        If there is no run, or the assembled rows break the trace schema.
    """
    if not runs:
        raise TraceFormatError("no runs found in the file", file=str(file))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise TraceFormatError(f"two runs have the id {dup!r}", file=str(file), field="run_id")
    frame = pd.concat([r.frame() for r in runs], ignore_index=True)
    frame = normalize_frame(frame, file=str(file))
    all_tags = {"source_format": source_format, "source_file": str(file)}
    all_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
    metadata = TraceMetadata(
        environment=None,
        model=dict(model or {}),
        tags=all_tags,
        runs=[r.info() for r in runs],
    )
    # normalize_frame + check_runs is Trace.validate() without normalising twice
    check_runs(frame, metadata, file=str(file))
    return Trace(frame, metadata)


def is_gzip(path: Path) -> bool:
    """Whether `path` starts with the gzip magic bytes."""
    try:
        with path.open("rb") as fh:
            return fh.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file (gzip-compressed or not).

    Raises
    ------
    TraceFormatError
        Naming the file and the line of a syntax error.
    """
    p = Path(path)
    try:
        raw = gzip.decompress(p.read_bytes()) if is_gzip(p) else p.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TraceFormatError(f"cannot read the file ({exc})", file=str(p)) from None
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"not UTF-8 text ({exc})", file=str(p)) from None
    except json.JSONDecodeError as exc:
        raise TraceFormatError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", file=str(p), line=exc.lineno
        ) from None


def number(value: Any, *, file: str, field: str, positive: bool = True) -> float:
    """`value` as a finite float (positive unless told), else a `TraceFormatError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TraceFormatError(f"expected a number, got {value!r}", file=file, field=field)
    v = float(value)
    if not np.isfinite(v) or (positive and v <= 0):
        raise TraceFormatError(
            f"expected a finite {'positive ' if positive else ''}number, got {value!r}",
            file=file,
            field=field,
        )
    return v


def numbers(values: Any, *, file: str, field: str) -> np.ndarray:
    """A list of finite positive numbers as float64, naming the first bad entry."""
    if not isinstance(values, list):
        raise TraceFormatError(
            f"expected a list of numbers, got {type(values).__name__}", file=file, field=field
        )
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or any(isinstance(v, bool) for v in values):
        for i, v in enumerate(values):
            number(v, file=file, field=f"{field}[{i}]")
        raise TraceFormatError("expected a flat list of numbers", file=file, field=field)
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise TraceFormatError(
            f"expected a finite positive number, got {values[i]!r}",
            file=file,
            field=f"{field}[{i}]",
        )
    return arr
