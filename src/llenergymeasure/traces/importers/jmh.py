"""Importer of JMH result JSON (``-rf json``): a list of benchmark results.

Each result's ``primaryMetric.rawData`` is a list of forks, each a list of
per-iteration scores in ``primaryMetric.scoreUnit``. Each fork becomes one
run ``<benchmark>#<params>#fork<k>`` (``<params>`` as ``a=1&b=2``, sorted by
name) with ``latency_ms`` = time per operation in ms:

* time units (``s/op``, ``ms/op``, ``us/op``, ``ns/op``, ``min/op``) are
  scaled;
* throughput units (``ops/s``, ``ops/ms``, ``ops/us``, ``ops/ns``,
  ``ops/min``) are inverted, :math:`1 / \\text{throughput}`, then scaled;
* sample mode without ``rawData`` uses ``primaryMetric.rawDataHistogram``
  (forks x iterations x ``[value, count]`` pairs): the iteration's score is
  the count-weighted mean.

``t_end_ns`` is the cumulative iteration time: ``measurementTime`` (e.g.
``"10 s"``) per iteration, or in single-shot mode (``ss``) the score times
``measurementBatchSize``; None when neither is known. JMH's JSON records
the *measurement* iterations only: the ``warmupIterations`` that ran before
them in every fork (if any) are not in the file, so the imported runs start
after them; their count and time are kept in the provenance
(``warmup_iterations``, ``warmup_time``) and ``warmup`` is False throughout.

References
----------
.. [1] OpenJDK, "Java Microbenchmark Harness (JMH)", result formats
   (``org.openjdk.jmh.results.format.JSONResultFormat``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from llenergymeasure.traces.importers._common import (
    TIME_UNITS_MS,
    ImportedRun,
    build_trace,
    number,
    numbers,
    read_json,
)
from llenergymeasure.traces.model import Trace, TraceFormatError

__all__ = ["import_jmh", "looks_like_jmh", "unit_to_ms"]

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|min)\s*$")


def looks_like_jmh(data: Any) -> bool:
    """A non-empty list whose first entry has ``benchmark`` and ``primaryMetric``."""
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and "benchmark" in data[0]
        and "primaryMetric" in data[0]
    )


def unit_to_ms(unit: str) -> tuple[float, bool]:
    """How to turn a score in ``unit`` into ms per operation.

    Returns
    -------
    factor : float
        Milliseconds per unit of time of ``unit``.
    inverse : bool
        True for a throughput (ops per time): ms/op = factor / score; else
        ms/op = score x factor.

    Raises
    ------
    ValueError
        If ``unit`` is neither ``<time>/op`` nor ``ops/<time>``.
    """
    u = unit.strip()
    if u.endswith("/op"):
        t = u[: -len("/op")]
        if t in TIME_UNITS_MS:
            return TIME_UNITS_MS[t], False
    if u.startswith("ops/"):
        t = u[len("ops/"):]
        if t in TIME_UNITS_MS:
            return TIME_UNITS_MS[t], True
    raise ValueError(f"unit {unit!r} is neither <time>/op nor ops/<time>")


def _duration_ns(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    m = _DURATION.match(text)
    if m is None:
        return None
    return round(float(m.group(1)) * TIME_UNITS_MS[m.group(2)] * 1e6)


def _histogram_means(hist: Any, *, file: str, field: str) -> list[list[float]]:
    if not isinstance(hist, list):
        raise TraceFormatError("expected forks x iterations of [value, count] pairs", file=file,
                               field=field)
    forks = []
    for k, fork in enumerate(hist):
        if not isinstance(fork, list):
            raise TraceFormatError("expected a list of iterations", file=file,
                                   field=f"{field}[{k}]")
        means = []
        for i, it in enumerate(fork):
            where = f"{field}[{k}][{i}]"
            if not isinstance(it, list) or not it:
                raise TraceFormatError("expected [value, count] pairs", file=file, field=where)
            total = 0.0
            count = 0.0
            for j, pair in enumerate(it):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise TraceFormatError("expected a [value, count] pair", file=file,
                                           field=f"{where}[{j}]")
                v = number(pair[0], file=file, field=f"{where}[{j}][0]")
                c = number(pair[1], file=file, field=f"{where}[{j}][1]")
                total += v * c
                count += c
            means.append(total / count)
        forks.append(means)
    return forks


def import_jmh(path: str | os.PathLike[str]) -> Trace:
    """Read a JMH JSON result file, one run per benchmark and fork.

    Parameters
    ----------
    path : path-like
        The JSON file written by ``-rf json``.

    Returns
    -------
    Trace
        ``latency_ms`` per operation; provenance per run: file, benchmark,
        params, mode, fork, unit, warmup and measurement settings.

    Raises
    ------
    TraceFormatError
        On a malformed result, an unknown unit, or missing raw data (naming
        the file and the JSON path of the field).
    """
    p = Path(path)
    f = str(p)
    data = read_json(p)
    if not looks_like_jmh(data):
        raise TraceFormatError("not a JMH result: expected a list of objects with 'benchmark' "
                               "and 'primaryMetric'", file=f)
    runs: list[ImportedRun] = []
    names: list[str] = []
    for b, res in enumerate(data):
        where = f"[{b}]"
        if not isinstance(res, dict):
            raise TraceFormatError("expected an object", file=f, field=where)
        bench = res.get("benchmark")
        if not isinstance(bench, str) or not bench:
            raise TraceFormatError("expected the benchmark name", file=f,
                                   field=f"{where}.benchmark")
        metric = res.get("primaryMetric")
        if not isinstance(metric, dict):
            raise TraceFormatError("expected an object", file=f, field=f"{where}.primaryMetric")
        unit = metric.get("scoreUnit")
        try:
            factor, inverse = unit_to_ms(str(unit))
        except ValueError as exc:
            raise TraceFormatError(str(exc), file=f,
                                   field=f"{where}.primaryMetric.scoreUnit") from None
        params = res.get("params") or {}
        if not isinstance(params, dict):
            raise TraceFormatError("expected an object", file=f, field=f"{where}.params")
        param_str = "&".join(f"{k}={params[k]}" for k in sorted(params))
        name = f"{bench}#{param_str}"
        names.append(name)
        if "rawData" in metric:
            raw = metric["rawData"]
            field = f"{where}.primaryMetric.rawData"
            if not isinstance(raw, list) or not raw:
                raise TraceFormatError("expected a non-empty list of forks", file=f, field=field)
            forks = [numbers(fk, file=f, field=f"{field}[{k}]") for k, fk in enumerate(raw)]
        elif "rawDataHistogram" in metric:
            field = f"{where}.primaryMetric.rawDataHistogram"
            forks = [np.asarray(m, dtype=np.float64)
                     for m in _histogram_means(metric["rawDataHistogram"], file=f, field=field)]
        else:
            raise TraceFormatError("no rawData nor rawDataHistogram", file=f,
                                   field=f"{where}.primaryMetric")
        mode = res.get("mode")
        batch = res.get("measurementBatchSize", 1)
        iter_ns = _duration_ns(res.get("measurementTime"))
        for k, scores in enumerate(forks):
            if len(scores) == 0:
                raise TraceFormatError("fork has no iterations", file=f, field=f"{field}[{k}]")
            ms = factor / scores if inverse else scores * factor
            if mode == "ss":
                b_size = batch if isinstance(batch, int) and batch > 0 else 1
                t_end = np.cumsum(np.rint(ms * b_size * 1e6).astype(np.int64))
            elif iter_ns is not None:
                t_end = iter_ns * np.arange(1, len(ms) + 1, dtype=np.int64)
            else:
                t_end = None
            provenance = {
                "format": "jmh",
                "file": f,
                "benchmark": bench,
                "params": dict(params),
                "result_index": b,
                "fork": k,
                "mode": mode,
                "unit": unit,
                "jmh_version": res.get("jmhVersion"),
                "threads": res.get("threads"),
                "warmup_iterations": res.get("warmupIterations"),
                "warmup_time": res.get("warmupTime"),
                "measurement_iterations": res.get("measurementIterations"),
                "measurement_time": res.get("measurementTime"),
                "measurement_batch_size": res.get("measurementBatchSize"),
            }
            runs.append(
                ImportedRun(
                    run_id=f"{name}#fork{k}",
                    latency_ms=ms,
                    t_end_ns=t_end,
                    warmup=np.zeros(len(ms), dtype=bool),
                    provenance={k2: v for k2, v in provenance.items() if v is not None},
                )
            )
    return build_trace(runs, file=p, source_format="jmh", tags={"benchmarks": ",".join(names)},
                       model={"name": ",".join(names), "harness": "JMH"})
