"""Importer of pyperf JSON result files (format ``"version": "1.0"``, plain or gzip).

A pyperf file holds benchmarks; each benchmark holds runs, one per worker
process, with ``"warmups": [[loops, value], ...]`` and ``"values": [...]``.
pyperf stores every value *normalised per loop iteration*; the raw timing
it measured is ``value x loops x inner_loops``, with ``loops`` and
``inner_loops`` taken from the run's metadata, else the benchmark's, else the
file's common metadata, else 1 (a warmup carries its own ``loops``).

Each worker process becomes one run ``<benchmark>#run<k>`` (``k`` counts the
benchmark's runs from 0) with

* one attempt per warmup, then one per value, ``latency_ms`` = time per
  iteration in ms, ``warmup`` = True for the warmups;
* ``t_end_ns`` = the cumulative raw timings (the process's measured time,
  without the harness's own overhead between values);
* provenance: file, benchmark, run index, ``loops``, ``inner_loops``, the
  run's ``date`` when present, and ``calibration=True`` for a run that has
  warmups only (pyperf's loop calibration run, which doubles ``loops`` from
  one warmup to the next).

pyperf's own per-run mean of the values is therefore the mean of the
non-warmup ``latency_ms`` of a run (divided by 1000 for seconds).

References
----------
.. [1] V. Stinner et al., pyperf, "JSON format" and "Runs, values, warmups,
   outer and inner loops", https://pyperf.readthedocs.io (``pyperf/_bench.py``,
   ``Run._get_raw_values``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from llenergymeasure.traces.importers._common import ImportedRun, build_trace, number, read_json
from llenergymeasure.traces.model import Trace, TraceFormatError

__all__ = ["import_pyperf", "looks_like_pyperf"]

_UNITS_MS = {"second": 1e3}
_FILE_TAGS = ("hostname", "cpu_model_name", "python_version", "perf_version", "platform")


def looks_like_pyperf(data: Any) -> bool:
    """A JSON object with ``version`` and a ``benchmarks`` list (a pyperf suite or benchmark)."""
    return isinstance(data, dict) and "version" in data and isinstance(data.get("benchmarks"), list)


def _count(md: dict[str, Any], key: str, file: str, where: str) -> int | None:
    if key not in md:
        return None
    v = md[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise TraceFormatError(f"expected a positive integer, got {v!r}", file=file,
                               field=f"{where}.metadata.{key}")
    return v


def import_pyperf(path: str | os.PathLike[str]) -> Trace:
    """Read a pyperf JSON file (``.json`` or ``.json.gz``), one run per worker process.

    Parameters
    ----------
    path : path-like
        The result file.

    Returns
    -------
    Trace
        ``latency_ms`` per iteration, a ``warmup`` column, and the provenance
        described in the module docstring.

    Raises
    ------
    TraceFormatError
        On an unsupported version, a non-time unit, or a malformed benchmark
        or run (naming the file and the JSON path of the field).
    """
    p = Path(path)
    f = str(p)
    data = read_json(p)
    if not looks_like_pyperf(data):
        raise TraceFormatError("not a pyperf file: expected an object with 'version' and "
                               "'benchmarks'", file=f)
    version = str(data["version"])
    if not version.startswith("1."):
        raise TraceFormatError(f"unsupported pyperf format version {version!r} (expected 1.x)",
                               file=f, field="version")
    file_md = data.get("metadata") or {}
    if not isinstance(file_md, dict):
        raise TraceFormatError("expected an object", file=f, field="metadata")
    runs: list[ImportedRun] = []
    names: list[str] = []
    for b, bench in enumerate(data["benchmarks"]):
        where_b = f"benchmarks[{b}]"
        if not isinstance(bench, dict) or not isinstance(bench.get("runs"), list):
            raise TraceFormatError("expected an object with a 'runs' list", file=f, field=where_b)
        bench_md = bench.get("metadata") or {}
        if not isinstance(bench_md, dict):
            raise TraceFormatError("expected an object", file=f, field=f"{where_b}.metadata")
        merged = {**file_md, **bench_md}
        name = str(merged.get("name", f"benchmark{b}"))
        if name in names:
            name = f"{name}[{b}]"
        names.append(name)
        unit = merged.get("unit", "second")
        if unit not in _UNITS_MS:
            raise TraceFormatError(
                f"unit {unit!r} is not a time; only 'second' benchmarks can be imported",
                file=f, field=f"{where_b}.metadata.unit",
            )
        to_ms = _UNITS_MS[unit]
        bench_loops = _count(bench_md, "loops", f, where_b) or _count(file_md, "loops", f, "")
        bench_inner = (_count(bench_md, "inner_loops", f, where_b)
                       or _count(file_md, "inner_loops", f, ""))
        for r, run in enumerate(bench["runs"]):
            where = f"{where_b}.runs[{r}]"
            if not isinstance(run, dict):
                raise TraceFormatError("expected an object", file=f, field=where)
            run_md = run.get("metadata") or {}
            if not isinstance(run_md, dict):
                raise TraceFormatError("expected an object", file=f, field=f"{where}.metadata")
            loops = _count(run_md, "loops", f, where) or bench_loops or 1
            inner = _count(run_md, "inner_loops", f, where) or bench_inner or 1
            warmups = run.get("warmups") or []
            values = run.get("values") or []
            if not isinstance(warmups, list) or not isinstance(values, list):
                raise TraceFormatError("expected lists", file=f, field=f"{where}.warmups/values")
            lat: list[float] = []
            raw: list[float] = []
            for w, item in enumerate(warmups):
                if not isinstance(item, list) or len(item) != 2:
                    raise TraceFormatError("expected a [loops, value] pair", file=f,
                                           field=f"{where}.warmups[{w}]")
                w_loops = number(item[0], file=f, field=f"{where}.warmups[{w}][0]")
                if not float(w_loops).is_integer():
                    raise TraceFormatError(f"loops must be an integer, got {item[0]!r}", file=f,
                                           field=f"{where}.warmups[{w}][0]")
                v = number(item[1], file=f, field=f"{where}.warmups[{w}][1]")
                lat.append(v * to_ms)
                raw.append(v * w_loops * inner)
            for i, value in enumerate(values):
                v = number(value, file=f, field=f"{where}.values[{i}]")
                lat.append(v * to_ms)
                raw.append(v * loops * inner)
            if not lat:
                raise TraceFormatError("run has neither warmups nor values", file=f, field=where)
            n_w = len(warmups)
            flags = np.zeros(len(lat), dtype=bool)
            flags[:n_w] = True
            provenance: dict[str, Any] = {
                "format": "pyperf",
                "file": f,
                "benchmark": name,
                "benchmark_index": b,
                "run": r,
                "loops": loops,
                "inner_loops": inner,
                "n_warmups": n_w,
                "n_values": len(values),
                "calibration": len(values) == 0,
                "unit": unit,
            }
            for key in ("date", "calibrate_loops", "recalibrate_loops", "calibrate_warmups"):
                if key in run_md:
                    provenance[key] = run_md[key]
            raw_ns = np.rint(np.asarray(raw) * 1e9).astype(np.int64)
            runs.append(
                ImportedRun(
                    run_id=f"{name}#run{r}",
                    latency_ms=np.asarray(lat, dtype=np.float64),
                    t_end_ns=np.cumsum(raw_ns),
                    warmup=flags,
                    provenance=provenance,
                )
            )
    tags = {k: str(file_md[k]) for k in _FILE_TAGS if k in file_md}
    tags["pyperf_version"] = version
    tags["benchmarks"] = ",".join(names)
    return build_trace(runs, file=p, source_format="pyperf", tags=tags,
                       model={"name": ",".join(names), "harness": "pyperf"})
