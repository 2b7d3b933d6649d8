"""Importer of a generic CSV of latencies, through a column mapping.

The mapping (:class:`CsvMapping`, or keyword arguments of
:func:`import_csv`) says which column holds what:

* ``latency_col`` (default ``"latency_ms"``): the latency of each attempt,
  in ``unit`` (``ns``, ``us``, ``ms``, ``s``, ``min``; default ``ms``) or
  multiplied by ``scale`` to give ms when ``scale`` is set;
* ``run_col`` (optional): the run each row belongs to; rows keep their file
  order within a run, runs are ordered by first appearance. Without it the
  whole file is one run named after the file;
* ``time_col`` (optional): the *end* time of each attempt, in ``time_unit``
  (default ``s``), from any origin. The origin is moved to the start of the
  run's first attempt (its end minus its latency), so ``t_end_ns`` counts
  from the run's start like a recorded trace; ``t_start_ns`` is then each
  attempt's end minus its latency (clipped at the previous end). Without it
  the trace falls back to cumulative latencies;
* ``ok_col`` (optional): success flags (``1/0``, ``true/false``,
  ``yes/no``, ``t/f``); a failed row may leave the latency empty.

Other columns whose names are known optional trace columns (``ttft_ms``,
``power_w``, ...) are carried over as they are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from llenergymeasure.traces.importers._common import TIME_UNITS_MS, ImportedRun, build_trace
from llenergymeasure.traces.model import OPTIONAL_COLUMNS, Trace, TraceFormatError

__all__ = ["CsvMapping", "import_csv", "looks_like_latency_csv"]

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


class CsvMapping(BaseModel):
    """Which CSV column holds what, and in which unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_col: str = Field("latency_ms", min_length=1, description="Column of latencies.")
    unit: str = Field("ms", pattern=r"^(ns|us|µs|ms|s|min)$",
                      description="Unit of latency_col (ignored when scale is set).")
    scale: float | None = Field(None, gt=0, description="Factor from latency_col to ms.")
    run_col: str | None = Field(None, min_length=1, description="Column of run identifiers.")
    time_col: str | None = Field(None, min_length=1,
                                 description="Column of attempt end times (any origin).")
    time_unit: str = Field("s", pattern=r"^(ns|us|µs|ms|s|min)$",
                           description="Unit of time_col.")
    ok_col: str | None = Field(None, min_length=1, description="Column of success flags.")
    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator.")

    @property
    def factor_ms(self) -> float:
        """Milliseconds per unit of ``latency_col``."""
        return float(self.scale) if self.scale is not None else TIME_UNITS_MS[self.unit]


def looks_like_latency_csv(path: str | os.PathLike[str], delimiter: str = ",") -> bool:
    """A text file whose header row has a ``latency_ms`` column (the default mapping)."""
    try:
        with Path(path).open("r", encoding="utf-8", newline="") as fh:
            header = fh.readline()
    except (OSError, UnicodeDecodeError):
        return False
    names = [h.strip().strip('"') for h in header.rstrip("\r\n").split(delimiter)]
    return "latency_ms" in names


def _numeric(col: pd.Series, name: str, file: str) -> np.ndarray:
    """Column as float64; empty cells NaN; a non-number names its line (header = line 1)."""
    text = col.astype("string").str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna() & (text != "")
    if bad.any():
        row = int(np.argmax(bad.to_numpy(bool)))
        raise TraceFormatError(f"expected a number, got {text.iloc[row]!r}", file=file,
                               line=row + 2, field=name)
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def import_csv(path: str | os.PathLike[str], mapping: CsvMapping | None = None,
               **options: Any) -> Trace:
    """Read a generic CSV of latencies.

    Parameters
    ----------
    path : path-like
        The CSV file (first line: column names).
    mapping : CsvMapping, optional
        Column mapping; keyword ``options`` build one when omitted
        (``latency_col=``, ``unit=``, ``scale=``, ``run_col=``, ``time_col=``,
        ``time_unit=``, ``ok_col=``, ``delimiter=``).

    Returns
    -------
    Trace
        One run per distinct ``run_col`` value (or one run); provenance holds
        the file, the mapping and the run's first line.

    Raises
    ------
    TraceFormatError
        On a missing column, a cell that is not a number or a flag, a
        successful row without a positive latency, or end times that go
        backwards within a run (naming file, line and column).
    """
    if mapping is None:
        mapping = CsvMapping(**options)
    elif options:
        mapping = mapping.model_copy(update=options)
    p = Path(path)
    f = str(p)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, sep=mapping.delimiter,
                         skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TraceFormatError(f"cannot parse the CSV ({exc})", file=f) from None
    df.columns = [str(c).strip() for c in df.columns]
    for role in ("latency_col", "run_col", "time_col", "ok_col"):
        col = getattr(mapping, role)
        if col is not None and col not in df.columns:
            raise TraceFormatError(
                f"{role}={col!r} is not a column (columns: {list(df.columns)})",
                file=f, line=1, field=col,
            )
    if df.empty:
        raise TraceFormatError("no data rows", file=f, line=2)
    lat = _numeric(df[mapping.latency_col], mapping.latency_col, f) * mapping.factor_ms
    if mapping.ok_col is not None:
        flags = df[mapping.ok_col].astype("string").str.strip().str.lower()
        bad = ~flags.isin(_TRUE | _FALSE)
        if bad.any():
            row = int(np.argmax(bad.to_numpy(bool)))
            raise TraceFormatError(
                f"expected a flag (1/0, true/false, yes/no), got {df[mapping.ok_col].iloc[row]!r}",
                file=f, line=row + 2, field=mapping.ok_col,
            )
        ok = flags.isin(_TRUE).to_numpy(bool)
    else:
        ok = np.ones(len(df), dtype=bool)
    bad_lat = ok & ~(np.isfinite(lat) & (lat > 0))
    if bad_lat.any():
        row = int(np.argmax(bad_lat))
        raise TraceFormatError(
            f"a successful row needs a finite positive latency, got "
            f"{df[mapping.latency_col].iloc[row]!r}",
            file=f, line=row + 2, field=mapping.latency_col,
        )
    times = None
    if mapping.time_col is not None:
        times = _numeric(df[mapping.time_col], mapping.time_col, f) * TIME_UNITS_MS[
            mapping.time_unit] * 1e6
        missing = np.isnan(times)
        if missing.any():
            row = int(np.argmax(missing))
            raise TraceFormatError("missing end time", file=f, line=row + 2,
                                   field=mapping.time_col)
    if mapping.run_col is not None:
        run_ids = df[mapping.run_col].astype(str).str.strip().to_numpy(dtype=object)
    else:
        stem = p.name[: -len(".csv")] if p.name.lower().endswith(".csv") else p.name
        run_ids = np.full(len(df), stem, dtype=object)
    codes, uniques = pd.factorize(run_ids, sort=False)
    extra_cols = [c for c in df.columns if c in OPTIONAL_COLUMNS and c != "warmup"
                  and c not in (mapping.latency_col, mapping.time_col, mapping.ok_col,
                                mapping.run_col)]
    extras = {c: _numeric(df[c], c, f) for c in extra_cols}
    runs = []
    for code, run_id in enumerate(uniques):
        rows = np.flatnonzero(codes == code)
        r_lat = lat[rows]
        r_ok = ok[rows]
        t_end = t_start = None
        if times is not None:
            end = times[rows]
            dec = np.diff(end) < 0
            if dec.any():
                row = int(rows[1:][np.argmax(dec)])
                raise TraceFormatError("end times go backwards within the run", file=f,
                                       line=row + 2, field=mapping.time_col)
            first_lat = r_lat[0] * 1e6 if np.isfinite(r_lat[0]) else 0.0
            origin = end[0] - first_lat
            t_end = np.rint(end - origin).astype(np.int64)
            lat_ns = np.nan_to_num(r_lat * 1e6, nan=0.0)
            prev_end = np.concatenate([[0], t_end[:-1]])
            t_start = np.minimum(np.maximum(np.rint(t_end - lat_ns), prev_end), t_end)
        run = ImportedRun(
            run_id=str(run_id),
            latency_ms=np.where(r_ok, r_lat, np.nan),
            t_end_ns=t_end,
            t_start_ns=None if t_start is None else t_start.astype(np.int64),
            ok=r_ok,
            error=[None if o else f"failed ({mapping.ok_col} is false)" for o in r_ok],
            extra={c: v[rows] for c, v in extras.items()},
            provenance={
                "format": "csv",
                "file": f,
                "first_line": int(rows[0]) + 2,
                "mapping": mapping.model_dump(exclude_none=True),
            },
        )
        runs.append(run)
    return build_trace(runs, file=p, source_format="csv")

