"""The trace: every inference attempt of one or more warmup runs, with its metadata.

A :class:`Trace` holds a :class:`pandas.DataFrame` with one row per attempt and
a :class:`TraceMetadata` (pydantic) describing how, where and with what
configuration the runs were recorded. The schema (version
:data:`TRACE_SCHEMA_VERSION`) is documented in ``docs/trace-format.md``; the
storage formats (Parquet, CSV with a JSON sidecar, JSON Lines) live in
:mod:`llenergymeasure.traces.io`.

Canonical column dtypes after loading (:func:`normalize_frame`):

* ``run_id`` str (object), ``index`` int64, ``ok`` bool, ``error`` str or None;
* ``t_start_ns``, ``t_end_ns``, ``wall_start_ns``, ``input_tokens``,
  ``output_tokens``, ``throttle_reasons``: pandas nullable ``Int64``
  (imports may lack the timestamps);
* every other known column float64 (NaN where not measured), ``warmup``
  pandas nullable ``boolean``.

Columns the schema does not know are kept as they are.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TRACE_SCHEMA_VERSION",
    "ColumnSpec",
    "EnvironmentInfo",
    "RunInfo",
    "ShadowDecision",
    "Trace",
    "TraceFormatError",
    "TraceMetadata",
    "check_runs",
    "metadata_from_dict",
    "normalize_frame",
]

logger = logging.getLogger(__name__)

#: Version of the trace schema written by this package.
TRACE_SCHEMA_VERSION = 1


class TraceFormatError(ValueError):
    """A trace file (or in-memory trace) does not follow the schema.

    The message names the file, the line or row, and the field.

    Attributes
    ----------
    file : str or None
        Path of the offending file (``"<memory>"`` for an in-memory trace).
    line : int or None
        1-based line of a text file (JSON Lines, CSV).
    row : int or None
        0-based row of the attempt table.
    field : str or None
        Column or metadata field at fault.
    reason : str
        What is wrong.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | os.PathLike[str] | None = None,
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.line = line
        self.row = row
        self.field = field
        self.reason = reason
        parts = [self.file or "<trace>"]
        if line is not None:
            parts.append(f"line {line}")
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field {field!r}")
        super().__init__(": ".join(parts) + ": " + reason)


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the attempt table.

    Attributes
    ----------
    dtype : str
        Canonical pandas dtype (``"float64"``, ``"Int64"``, ``"int64"``,
        ``"bool"``, ``"boolean"``, ``"str"``).
    unit : str
        Physical unit, ``""`` when dimensionless.
    description : str
        What the column holds.
    nullable : bool
        Whether missing values are allowed.
    """

    dtype: str
    unit: str
    description: str
    nullable: bool = True


#: Columns every trace has (one row per attempt).
REQUIRED_COLUMNS: dict[str, ColumnSpec] = {
    "run_id": ColumnSpec("str", "", "Identifier of the run the attempt belongs to.", False),
    "index": ColumnSpec(
        "int64", "", "0-based attempt number within the run (failed attempts included).", False
    ),
    "t_start_ns": ColumnSpec(
        "Int64", "ns", "Start of the attempt, monotonic clock, from the run's start."
    ),
    "t_end_ns": ColumnSpec(
        "Int64", "ns", "End of the attempt, monotonic clock, from the run's start."
    ),
    "wall_start_ns": ColumnSpec("Int64", "ns", "Start of the attempt, UTC epoch (time.time_ns)."),
    "latency_ms": ColumnSpec(
        "float64", "ms", "Latency reported for the attempt; NaN for a failed attempt."
    ),
    "ok": ColumnSpec("bool", "", "True when the attempt succeeded and yielded a sample.", False),
    "error": ColumnSpec("str", "", "Exception type and message of a failed attempt, else null."),
}

#: Columns recorded when measured.
OPTIONAL_COLUMNS: dict[str, ColumnSpec] = {
    "gpu_time_ms": ColumnSpec("float64", "ms", "GPU time of the inference (CUDA events)."),
    "ttft_ms": ColumnSpec("float64", "ms", "Time to first token."),
    "input_tokens": ColumnSpec("Int64", "tokens", "Prompt tokens."),
    "output_tokens": ColumnSpec("Int64", "tokens", "Generated tokens."),
    "power_w": ColumnSpec("float64", "W", "Mean GPU board power over the inference."),
    "energy_mj": ColumnSpec(
        "float64", "mJ", "GPU energy over the inference (NVML energy-counter delta)."
    ),
    "temperature_c": ColumnSpec("float64", "degC", "GPU temperature at the end of the inference."),
    "sm_clock_mhz": ColumnSpec("float64", "MHz", "SM clock at the end of the inference."),
    "mem_clock_mhz": ColumnSpec("float64", "MHz", "Memory clock at the end of the inference."),
    "throttle_reasons": ColumnSpec("Int64", "", "NVML clock-throttle-reasons bit mask."),
    "throttled": ColumnSpec(
        "boolean", "", "The driver's throttle filter flagged the sample: kept out of the criterion."
    ),
    "energy_per_token_mj": ColumnSpec(
        "float64", "mJ/token", "GPU energy per generated token (energy_mj / output_tokens)."
    ),
    "warmup": ColumnSpec("boolean", "", "Imported traces: the source flagged a warmup iteration."),
    # Server mode (llenergymeasure.core.openai_client): what the client sees of one request.
    "connect_ms": ColumnSpec(
        "float64", "ms", "Set-up of the request's connection (TCP, TLS); not part of the latency."
    ),
    "output_chunks": ColumnSpec("Int64", "events", "Streamed events that carried text."),
    "itl_count": ColumnSpec(
        "Int64", "gaps", "Inter-token gaps of the request (text-carrying events - 1)."
    ),
    "itl_mean_ms": ColumnSpec("float64", "ms", "Mean inter-token latency of the request."),
    "itl_p50_ms": ColumnSpec("float64", "ms", "Median inter-token latency of the request."),
    "itl_p90_ms": ColumnSpec(
        "float64", "ms", "90th percentile of the request's inter-token latencies."
    ),
    "itl_p99_ms": ColumnSpec(
        "float64", "ms", "99th percentile of the request's inter-token latencies."
    ),
    "itl_max_ms": ColumnSpec("float64", "ms", "Longest inter-token latency of the request."),
}

ALL_COLUMNS: dict[str, ColumnSpec] = {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}
_TIMESTAMPS = ("t_start_ns", "t_end_ns", "wall_start_ns")


class ShadowDecision(BaseModel):
    """Where a shadow criterion would have stopped the run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stop_index: int | None = Field(
        None, ge=0, description="Successful-sample index of the would-be stop; None: no stop."
    )
    converged: bool = Field(False, description="True when the stop is a convergence.")
    reason: str = Field("", description="One human sentence.")


class RunInfo(BaseModel):
    """What is known about one run of a trace.

    ``stop_index`` and ``reference_start`` count *successful samples* of the
    run (the entries of :meth:`Trace.samples`), like
    :meth:`~llenergymeasure.criteria.StopRule.stop_index`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    run_id: str = Field(min_length=1, description="Identifier of the run (the run_id column).")
    stop_index: int | None = Field(
        None, ge=0, description="Sample index at which the recording criterion stopped."
    )
    stop_reason: str = Field("", description="Why the run stopped.")
    status: str = Field(
        "imported",
        min_length=1,
        description="A WarmupResult status, 'interrupted', 'recording' or 'imported'.",
    )
    shadow: dict[str, ShadowDecision] = Field(
        default_factory=dict, description="Shadow criterion spec -> would-be stop."
    )
    interrupted: bool = Field(False, description="The run was cut short (Ctrl-C or a crash).")
    reference_start: int | None = Field(
        None,
        ge=-1,
        description="Labelled steady-state start (samples); None unknown, -1 no steady state.",
    )
    labels: dict[str, Any] = Field(
        default_factory=dict, description="Labels of the run (fork label, changepoints, ...)."
    )
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="Source format, file, benchmark, fork index, ..."
    )


def _version_of(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


class EnvironmentInfo(BaseModel):
    """Software and hardware a trace was recorded on.

    Filled by `llenergymeasure.core.environment.capture_environment()`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    python: str | None = Field(None, description="Python version.")
    platform: str | None = Field(None, description="Operating system (platform.platform()).")
    numpy: str | None = Field(None, description="numpy version.")
    torch: str | None = Field(None, description="torch version, if installed.")
    transformers: str | None = Field(None, description="transformers version, if installed.")
    cuda: str | None = Field(None, description="CUDA version torch was built with.")
    driver: str | None = Field(None, description="NVIDIA driver version.")
    gpu_name: str | None = Field(None, description="Name of the GPU used.")
    hostname: str | None = Field(None, description="Host name.")
    cpu: str | None = Field(None, description="CPU model.")
    cpu_count: int | None = Field(None, ge=1, description="Logical CPUs.")


@functools.cache
def _package_version() -> str:
    # Read once per process: importlib.metadata scans sys.path (milliseconds per call).
    return _version_of("llenergymeasure") or "0.0.0"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TraceMetadata(BaseModel):
    """Everything about a trace that is not a per-attempt measurement."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    schema_version: int = Field(
        TRACE_SCHEMA_VERSION, ge=0, description="Trace schema version of the data."
    )
    created: datetime = Field(default_factory=_utcnow, description="Creation time (UTC).")
    package_version: str = Field(
        default_factory=_package_version, description="llenergymeasure version that wrote it."
    )
    config: dict[str, Any] | None = Field(
        None, description="WarmupConfig.model_dump() of the recording, or None."
    )
    criterion: str | None = Field(None, description="Spec of the recording criterion, or None.")
    environment: EnvironmentInfo | None = Field(
        None, description="Where it was recorded (None when unknown, e.g. for imports)."
    )
    model: dict[str, Any] = Field(
        default_factory=dict, description="Model: name or config summary, dtype, device."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Free-form tags.")
    runs: list[RunInfo] = Field(default_factory=list, description="One entry per run.")

    def run_info(self, run_id: str) -> RunInfo:
        """The :class:`RunInfo` of ``run_id``; KeyError if absent."""
        for run in self.runs:
            if run.run_id == run_id:
                return run
        raise KeyError(f"no run {run_id!r} in this trace (runs: {[r.run_id for r in self.runs]})")

    def with_run(self, info: RunInfo) -> TraceMetadata:
        """A copy with ``info`` replacing the run of the same id (or appended)."""
        runs = [r for r in self.runs if r.run_id != info.run_id]
        ids = [r.run_id for r in self.runs]
        if info.run_id in ids:
            runs.insert(ids.index(info.run_id), info)
        else:
            runs.append(info)
        return self.model_copy(update={"runs": runs})


def metadata_from_dict(raw: Mapping[str, Any], *, file: str | None, line: int | None = None
                       ) -> TraceMetadata:
    """Validate a metadata mapping, turning pydantic errors into :class:`TraceFormatError`."""
    try:
        return TraceMetadata.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "metadata"
        raise TraceFormatError(
            f"invalid metadata: {err['msg']} (got {err.get('input')!r})",
            file=file,
            line=line,
            field=f"metadata.{loc}",
        ) from None


# --------------------------------------------------------------------- columns
_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


class _Locator:
    """Maps a 0-based row to the ``line=`` / ``row=`` of an error."""

    def __init__(self, file: str | None, lines: Sequence[int] | np.ndarray | None) -> None:
        self.file = file
        self.lines = lines

    def error(self, reason: str, row: int | None, field: str | None) -> TraceFormatError:
        line = None
        if row is not None and self.lines is not None:
            line = int(self.lines[row])
            row_arg = None
        else:
            row_arg = row
        return TraceFormatError(reason, file=self.file, line=line, row=row_arg, field=field)


def _bad_type(loc: _Locator, name: str, spec: ColumnSpec, values: pd.Series, row: int
              ) -> TraceFormatError:
    return loc.error(
        f"expected {spec.dtype} ({spec.description.rstrip('.')}), got {values.iloc[row]!r}",
        row,
        name,
    )


def _coerce_numeric(col: pd.Series, name: str, spec: ColumnSpec, loc: _Locator) -> pd.Series:
    if pd.api.types.is_bool_dtype(col.dtype):
        raise _bad_type(loc, name, spec, col, 0)
    if pd.api.types.is_numeric_dtype(col.dtype):
        num = col
    else:
        obj = col.astype(object)
        is_bool = obj.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        if is_bool.any():
            raise _bad_type(loc, name, spec, col, _first(is_bool))
        present = obj.notna().to_numpy(dtype=bool).copy()
        if present.any():
            blank = obj[present].map(lambda v: isinstance(v, str) and v.strip() == "")
            present[np.flatnonzero(present)[blank.to_numpy(dtype=bool)]] = False
        sub = pd.to_numeric(obj[present], errors="coerce")
        bad_sub = sub.isna().to_numpy(dtype=bool)
        if bad_sub.any():
            raise _bad_type(loc, name, spec, col, int(np.flatnonzero(present)[_first(bad_sub)]))
        if present.all():
            num = sub
        elif pd.api.types.is_integer_dtype(sub.dtype):
            num = pd.Series(pd.array([pd.NA] * len(col), dtype="Int64"), index=col.index)
            num[present] = sub.to_numpy()
        else:
            num = pd.Series(np.full(len(col), np.nan), index=col.index)
            num[present] = sub.to_numpy(dtype="float64")
    if spec.dtype == "float64":
        return num.astype("float64")
    if pd.api.types.is_integer_dtype(num.dtype):
        if spec.dtype == "int64":
            na = num.isna().to_numpy(dtype=bool)
            if na.any():
                raise loc.error("missing value in a non-nullable column", _first(na), name)
            return num.astype("int64")
        return num.astype("Int64")
    arr = num.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(arr)
    bad = np.isinf(arr) | (finite & (arr != np.floor(np.where(finite, arr, 0.0))))
    bad |= finite & (np.abs(arr) >= 2.0**63)  # beyond the 64-bit integers
    if bad.any():
        raise _bad_type(loc, name, spec, col, _first(bad))
    if spec.dtype == "int64":
        if np.isnan(arr).any():
            raise loc.error("missing value in a non-nullable column", _first(np.isnan(arr)), name)
        return pd.Series(arr.astype(np.int64), index=col.index)
    return num.astype("Int64")


def _coerce_bool(col: pd.Series, name: str, spec: ColumnSpec, loc: _Locator) -> pd.Series:
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype(spec.dtype)

    def conv(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, str):
            s = v.strip().lower()
            if s == "":
                return None
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
        return _INVALID

    converted = col.map(conv)
    bad = converted.map(lambda v: v is _INVALID).to_numpy(dtype=bool)
    if bad.any():
        raise _bad_type(loc, name, spec, col, _first(bad))
    return converted.astype("boolean")


_INVALID = object()


def _coerce_str(col: pd.Series, name: str, spec: ColumnSpec, loc: _Locator) -> pd.Series:
    if col.dtype != object and not pd.api.types.is_string_dtype(col.dtype):
        if col.isna().all():
            return pd.Series([None] * len(col), index=col.index, dtype=object)
        raise _bad_type(loc, name, spec, col, _first(col.notna().to_numpy(bool)))
    if col.dtype != object:
        col = col.astype(object)
    kind = pd.api.types.infer_dtype(col, skipna=True)
    if kind not in ("string", "empty"):
        bad = col.map(lambda v: not (v is None or isinstance(v, str) or v is pd.NA
                                     or (isinstance(v, float) and np.isnan(v))))
        raise _bad_type(loc, name, spec, col, _first(bad.to_numpy(bool)))
    if kind == "empty":  # every value missing: make them all None
        return pd.Series(np.full(len(col), None, dtype=object), index=col.index)
    na = col.isna().to_numpy(dtype=bool)
    return col.where(~na, None) if na.any() else col


def normalize_frame(
    df: pd.DataFrame,
    *,
    file: str | None = "<memory>",
    lines: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Check an attempt table against the schema and give it the canonical dtypes.

    Parameters
    ----------
    df : DataFrame
        The attempts, one row each.
    file : str, optional
        File name for error messages.
    lines : sequence of int, optional
        1-based text line of each row (JSON Lines, CSV); errors then name the
        line rather than the row.

    Returns
    -------
    DataFrame
        A new frame with canonical dtypes (see the module docstring), index
        reset; unknown columns are kept unchanged.

    Raises
    ------
    TraceFormatError
        On a missing required column, a value of the wrong type, a missing
        value in a non-nullable column, a duplicated or decreasing ``index``
        within a run, decreasing timestamps within a run, an attempt ending
        before it starts, or a successful attempt without a positive latency.
    """
    loc = _Locator(file, lines)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise TraceFormatError(
            f"missing required column(s) {missing} (columns present: {list(df.columns)})",
            file=file,
            line=1 if lines is not None else None,
            field=missing[0],
        )
    df = df.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    for name in df.columns:
        col = df[name]
        spec = ALL_COLUMNS.get(str(name))
        if spec is None:
            out[name] = col
            continue
        if spec.dtype in ("float64", "Int64", "int64"):
            col = _coerce_numeric(col, name, spec, loc)
        elif spec.dtype in ("bool", "boolean"):
            col = _coerce_bool(col, name, spec, loc)
        else:
            col = _coerce_str(col, name, spec, loc)
        if not spec.nullable:
            na = col.isna().to_numpy(dtype=bool)
            if na.any():
                raise loc.error("missing value in a non-nullable column", _first(na), name)
            if spec.dtype == "bool":
                col = col.astype(bool)
        out[name] = col
    frame = pd.DataFrame(out, index=df.index)
    _check_order(frame, loc)
    return frame


def _check_order(frame: pd.DataFrame, loc: _Locator) -> None:
    """Index strictly increasing and timestamps non-decreasing within each run."""
    n = len(frame)
    if n == 0:
        return
    codes, _ = pd.factorize(frame["run_id"], sort=False)
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    idx = frame["index"].to_numpy(dtype=np.int64)
    neg = idx < 0
    if neg.any():
        raise loc.error(f"attempt index must be >= 0, got {idx[_first(neg)]}", _first(neg), "index")
    step = np.diff(idx[order]) <= 0
    bad = same & step
    if bad.any():
        r = int(order[1:][_first(bad)])
        raise loc.error("attempt index must increase strictly within a run", r, "index")
    start = frame["t_start_ns"].to_numpy(dtype="float64", na_value=np.nan)
    end = frame["t_end_ns"].to_numpy(dtype="float64", na_value=np.nan)
    backwards = end < start
    if backwards.any():
        raise loc.error("attempt ends before it starts (t_end_ns < t_start_ns)",
                        _first(backwards), "t_end_ns")
    for name in _TIMESTAMPS:
        t = frame[name].to_numpy(dtype="float64", na_value=np.nan)[order]
        dec = same & (np.diff(t) < 0)
        if dec.any():
            r = int(order[1:][_first(dec)])
            raise loc.error("timestamps must not decrease within a run", r, name)
    ok = frame["ok"].to_numpy(dtype=bool)
    lat = frame["latency_ms"].to_numpy(dtype="float64")
    bad_lat = ok & ~(np.isfinite(lat) & (lat > 0))
    if bad_lat.any():
        raise loc.error(
            f"a successful attempt needs a finite positive latency, got {lat[_first(bad_lat)]!r}",
            _first(bad_lat),
            "latency_ms",
        )


def check_runs(frame: pd.DataFrame, metadata: TraceMetadata, *, file: str | None) -> None:
    """Every run in ``frame`` is described once in ``metadata.runs``.

    Raises
    ------
    TraceFormatError
        On a duplicated run id in the metadata or a run of the data that the
        metadata does not describe (naming its first row).
    """
    ids = [r.run_id for r in metadata.runs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise TraceFormatError(f"run {dup!r} is described twice", file=file, field="metadata.runs")
    if not len(frame):
        return
    codes, uniques = pd.factorize(frame["run_id"], sort=False)
    known = set(ids)
    for code, run_id in enumerate(uniques):
        if run_id not in known:
            r = _first(codes == code)
            raise TraceFormatError(
                f"run {run_id!r} has no entry in metadata.runs (known: {sorted(known)})",
                file=file,
                row=r,
                field="run_id",
            )


# ----------------------------------------------------------------------- trace
def _sample_mask(rows: pd.DataFrame) -> np.ndarray:
    """Rows that are samples: successful attempts not flagged ``throttled``."""
    ok = rows["ok"].to_numpy(dtype=bool)
    if "throttled" in rows.columns:
        ok = ok & ~rows["throttled"].to_numpy(dtype=bool, na_value=False)
    return ok


@dataclass
class Trace:
    """Recorded attempts of one or more runs and their metadata.

    Attributes
    ----------
    data : DataFrame
        One row per attempt; columns :data:`REQUIRED_COLUMNS` plus any of
        :data:`OPTIONAL_COLUMNS` (and unknown extra columns).
    metadata : TraceMetadata
        Schema version, configuration, environment, runs.
    trace_id : str or None
        Identifier of the trace in an analysis corpus: set by `load_trace` (the
        file stem) and `load_traces` (the path relative to the folder, suffix
        dropped); None for a trace built in memory.
    """

    data: pd.DataFrame
    metadata: TraceMetadata
    trace_id: str | None = None

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], metadata: TraceMetadata) -> Trace:
        """Build and validate a trace from attempt dicts (missing nullable fields become null)."""
        frame = pd.DataFrame(list(rows))
        for name, spec in REQUIRED_COLUMNS.items():
            if name not in frame.columns and (spec.nullable or not len(frame)):
                frame[name] = pd.Series([None] * len(frame), dtype=object)
        return cls(normalize_frame(frame), metadata).validate()

    def _data_run_ids(self) -> list[str]:
        """Distinct ``run_id`` values of the data, cached while ``data`` is the same object."""
        cache = self.__dict__.get("_run_id_cache")
        if cache is not None and cache[0] is self.data and cache[1] == len(self.data):
            return cache[2]
        ids = [str(r) for r in pd.unique(self.data["run_id"])]
        self.__dict__["_run_id_cache"] = (self.data, len(self.data), ids)
        return ids

    @property
    def run_ids(self) -> list[str]:
        """Run identifiers in metadata order (runs only in the data follow)."""
        ids = [r.run_id for r in self.metadata.runs]
        known = set(ids)
        return ids + [r for r in self._data_run_ids() if r not in known]

    def _rows(self, run_id: str | None) -> pd.DataFrame:
        if run_id is None:
            ids = self.run_ids
            if len(ids) != 1:
                raise ValueError(f"this trace holds {len(ids)} runs {ids}; pass run_id=")
            run_id = ids[0]
            if len(self._data_run_ids()) <= 1:
                return self.data
        if run_id not in self.run_ids:
            raise KeyError(f"no run {run_id!r} in this trace (runs: {self.run_ids})")
        return self.data[self.data["run_id"].to_numpy() == run_id]

    def run(self, run_id: str) -> Trace:
        """A single-run trace (data and metadata restricted to ``run_id``)."""
        rows = self._rows(run_id).reset_index(drop=True)
        runs = [r for r in self.metadata.runs if r.run_id == run_id]
        return Trace(rows, self.metadata.model_copy(update={"runs": runs}), self.trace_id)

    def iter_runs(self) -> Iterator[Trace]:
        """Yield one single-run trace per run."""
        for run_id in self.run_ids:
            yield self.run(run_id)

    def run_info(self, run_id: str | None = None) -> RunInfo:
        """The :class:`RunInfo` of ``run_id`` (of the only run when None)."""
        if run_id is None:
            ids = self.run_ids
            if len(ids) != 1:
                raise ValueError(f"this trace holds {len(ids)} runs {ids}; pass run_id=")
            run_id = ids[0]
        return self.metadata.run_info(run_id)

    def samples(self, run_id: str | None = None, signal: str = "latency_ms") -> np.ndarray:
        """Values of ``signal`` for the successful attempts of a run, in order.

        Attempts flagged ``throttled`` (by the driver's throttle filter) are not
        samples: the criterion never saw them, so replay leaves them out too.

        Parameters
        ----------
        run_id : str, optional
            The run; may be omitted when the trace holds one run.
        signal : str, default "latency_ms"
            Column to read.

        Returns
        -------
        ndarray of float64
        """
        rows = self._rows(run_id)
        if signal not in rows.columns:
            raise KeyError(f"signal {signal!r} not recorded (columns: {list(rows.columns)})")
        ok = _sample_mask(rows)
        return rows[signal].to_numpy(dtype="float64", na_value=np.nan)[ok]

    def sample_times_s(self, run_id: str | None = None) -> np.ndarray:
        """Seconds from the start of the run's first attempt to the end of each successful one.

        Falls back to the cumulative sum of the successful latencies when the
        run has no (complete) ``t_end_ns`` / ``t_start_ns`` timestamps.
        """
        rows = self._rows(run_id)
        ok = _sample_mask(rows)
        start = rows["t_start_ns"].to_numpy(dtype="float64", na_value=np.nan)
        end = rows["t_end_ns"].to_numpy(dtype="float64", na_value=np.nan)
        if len(rows) and not np.isnan(start[0]) and not np.isnan(end[ok]).any():
            t0 = rows["t_start_ns"].iloc[0]
            ends = rows["t_end_ns"].to_numpy(dtype="int64", na_value=0)[ok]
            return (ends - int(t0)) / 1e9
        return np.cumsum(rows["latency_ms"].to_numpy(dtype="float64")[ok]) / 1e3

    def validate(self) -> Trace:
        """Check data and metadata against the schema; return ``self``.

        Raises
        ------
        TraceFormatError
            On any schema violation (see :func:`normalize_frame`), a run in the
            data that the metadata does not describe, a duplicated run id in
            the metadata, or a schema version other than
            :data:`TRACE_SCHEMA_VERSION`.
        """
        if self.metadata.schema_version != TRACE_SCHEMA_VERSION:
            raise TraceFormatError(
                f"schema version {self.metadata.schema_version} in memory; migrate it first",
                file="<memory>",
                field="metadata.schema_version",
            )
        normalize_frame(self.data)
        check_runs(self.data, self.metadata, file="<memory>")
        return self

    def __len__(self) -> int:
        return len(self.data)

    def _summary(self) -> dict[str, str]:
        """The few facts `repr` and the notebook view show (never the whole table)."""
        ok = self.data["ok"] if "ok" in self.data.columns else pd.Series([], dtype=bool)
        failed = int((~ok.astype(bool)).sum()) if len(ok) else 0
        runs = self.run_ids
        tid = getattr(self, "trace_id", None) or self.metadata.tags.get("trace_id")
        shown = ", ".join(map(str, runs[:3])) + (", …" if len(runs) > 3 else "")
        out = {"runs": f"{len(runs)} [{shown}]",
               "attempts": f"{len(self.data)}" + (f" ({failed} failed)" if failed else "")}
        if tid:
            out = {"trace_id": str(tid), **out}
        extra = [c for c in self.data.columns if c not in REQUIRED_COLUMNS]
        out["columns"] = f"{len(self.data.columns)} [+{', '.join(extra)}]" if extra else (
            f"{len(self.data.columns)} [required]")
        out["criterion"] = str(self.metadata.criterion or "none recorded")
        return out

    def __repr__(self) -> str:
        quoted = {"trace_id", "criterion"}
        parts = [f"{k}={v!r}" if k in quoted else f"{k}={v}" for k, v in self._summary().items()]
        return "Trace(" + ", ".join(parts) + ")"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._summary().items()
        )
        return f"<table><caption>Trace</caption>{rows}</table>"
