"""Importer of vLLM serving-benchmark results (`benchmark_serving.py --save-result`).

The file is the JSON object that vLLM's `benchmarks/benchmark_serving.py` (and
`vllm bench serve --save-result`) writes for one benchmark run: per-request lists
in **request order** (the order in which the client issued the requests, which
is also their arrival order at the server) and the run's summary fields.

* `ttfts` (s): time to first token of each request (0 for a failed one);
* `itls` (s): one list per request, the gaps between consecutive streamed
  chunks after the first (the decode steps as the client saw them);
* `input_lens`, `output_lens` (tokens): prompt and output length of each
  request (output 0 for a failed one);
* `errors`: the error text of each request, `""` when it succeeded;
* `generated_texts`: the generated text (not imported);
* summary fields: `duration`, `request_rate`, `completed`, `mean_ttft_ms`, ...

One file becomes one trace with two runs:

* `ttft`: one attempt per request, in request order: `latency_ms` = TTFT in ms,
  `ttft_ms` (the same), `request_index` (0-based position in the file),
  `input_tokens`, `output_tokens`, `decode_steps` (length of the request's ITL
  list) and `e2e_latency_ms` = TTFT + sum of the ITLs (the client's end-to-end
  latency up to the last chunk);
* `decode`: one attempt per entry of the ITL lists, request after request in
  request order and, within a request, in stream order: `latency_ms` = the
  ITL in ms, `request_index`, `decode_step` (1 for the gap between the first
  and the second chunk). A request whose ITL list is empty (one output chunk)
  adds no row.

A request with a non-empty `errors` entry is a failed attempt (`ok` False,
`latency_ms` NaN, `error` = the file's text) in both runs — in the decode run
one failed row at the request's place, with `decode_step` 0. A request
without error text whose TTFT is 0 produced no token: it is a failed attempt
too, with the reason said. A zero ITL (two chunks read at the same instant) is
kept as a failed decode attempt ("zero inter-token latency"), since a sample
needs a positive latency.

**Times.** The file records no send time per request (only the run's
`duration`, `request_rate` and `burstiness`; with a finite rate the client drew
random gaps between sends), so `t_start_ns` / `t_end_ns` are null in both runs
and the trace's sample times fall back to the cumulative latencies: as if the
requests, and within the decode run their steps, ran one after another. Within
one request that is exact up to the request's first token (the ITLs are
consecutive gaps); across requests it is not wall time, because requests
overlap on the server. Time-based criteria (`min_duration`, `max_duration`)
therefore read "client-observed busy time", not elapsed time.

References
----------
- vLLM project, `benchmarks/benchmark_serving.py` (`calculate_metrics`,
  `benchmark`: the `result` dictionary saved by `--save-result`),
  https://github.com/vllm-project/vllm.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llenergymeasure.traces.importers._common import ImportedRun, build_trace, read_json
from llenergymeasure.traces.model import Trace, TraceFormatError

__all__ = ["import_vllm", "looks_like_vllm", "vllm_runs"]

#: The per-request lists of a result (all of the same length when present).
_PER_REQUEST = ("ttfts", "itls", "input_lens", "output_lens", "errors", "generated_texts")


def looks_like_vllm(data: Any) -> bool:
    """A JSON object with the per-request lists `ttfts` and `itls` of a vLLM serving run."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("ttfts"), list)
        and isinstance(data.get("itls"), list)
    )


def _seconds(value: Any, *, file: str, field: str) -> float:
    """A finite non-negative number of seconds, else a `TraceFormatError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TraceFormatError(f"expected a number of seconds, got {value!r}", file=file,
                               field=field)
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise TraceFormatError(f"expected a finite number >= 0, got {value!r}", file=file,
                               field=field)
    return v


def _seconds_list(values: list[Any], *, file: str, field: str) -> np.ndarray:
    """A list of finite non-negative numbers of seconds as float64, naming the first bad entry."""
    if all(type(v) is float or type(v) is int for v in values):
        arr = np.asarray(values, dtype=np.float64)
        if np.isfinite(arr).all() and (arr >= 0).all():
            return arr
    for j, v in enumerate(values):
        _seconds(v, file=file, field=f"{field}[{j}]")
    return np.asarray(values, dtype=np.float64)  # every entry passed: a subclass of a number


def _tokens(value: Any, *, file: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TraceFormatError(f"expected a token count (integer >= 0), got {value!r}",
                               file=file, field=field)
    return value


def vllm_runs(result: dict[str, Any], *, file: str, prefix: str = "",
              field_prefix: str = "") -> list[ImportedRun]:
    """The `ttft` and `decode` runs of one vLLM serving result (see the module docstring).

    Parameters
    ----------
    result : dict
        One parsed result object (a `--save-result` file, or one run of a file
        that gathers several).
    file : str
        Source file, for provenance and error messages.
    prefix : str, default ""
        Prepended to the run ids (`"<prefix>ttft"`, `"<prefix>decode"`).
    field_prefix : str, default ""
        Prepended to the JSON paths named in errors (e.g. `"runs.qps_01."`).

    Returns
    -------
    list of ImportedRun
        The `ttft` run then the `decode` run.

    Raises
    ------
    TraceFormatError
        On a missing or mistyped list, lists of different lengths, or a value
        that is not a number (naming the file and the JSON path).
    """
    if not looks_like_vllm(result):
        raise TraceFormatError("not a vLLM serving result: expected an object with the lists "
                               "'ttfts' and 'itls'", file=file, field=field_prefix or None)
    n = len(result["ttfts"])
    for key in _PER_REQUEST:
        if key in result and result[key] is not None:
            if not isinstance(result[key], list) or len(result[key]) != n:
                got = len(result[key]) if isinstance(result[key], list) else type(
                    result[key]).__name__
                raise TraceFormatError(
                    f"expected a list of {n} entries (one per request, like 'ttfts'), got {got}",
                    file=file, field=f"{field_prefix}{key}")
    if n == 0:
        raise TraceFormatError("the run has no requests", file=file,
                               field=f"{field_prefix}ttfts")
    errors = result.get("errors") or [""] * n
    in_lens = result.get("input_lens")
    out_lens = result.get("output_lens")

    ttft_ms = np.empty(n)
    ok = np.ones(n, dtype=bool)
    err: list[str | None] = [None] * n
    e2e_ms = np.full(n, np.nan)
    steps = np.zeros(n, dtype=np.int64)
    d_lat: list[np.ndarray] = []
    d_ok: list[np.ndarray] = []
    d_err: list[str | None] = []
    d_req: list[np.ndarray] = []
    d_step: list[np.ndarray] = []
    for i in range(n):
        e = errors[i]
        if e is not None and not isinstance(e, str):
            raise TraceFormatError(f"expected the error text, got {e!r}", file=file,
                                   field=f"{field_prefix}errors[{i}]")
        ttft = _seconds(result["ttfts"][i], file=file, field=f"{field_prefix}ttfts[{i}]")
        raw = result["itls"][i]
        if not isinstance(raw, list):
            raise TraceFormatError(f"expected a list of seconds, got {type(raw).__name__}",
                                   file=file, field=f"{field_prefix}itls[{i}]")
        itl = _seconds_list(raw, file=file, field=f"{field_prefix}itls[{i}]")
        ttft_ms[i] = ttft * 1e3
        steps[i] = itl.size
        if e:
            reason: str | None = e
        elif ttft == 0:
            reason = "no token received (TTFT 0 and no error text)"
        else:
            reason = None
        if reason is not None:
            ok[i] = False
            err[i] = reason
            d_lat.append(np.array([np.nan]))
            d_ok.append(np.array([False]))
            d_err.append(reason)
            d_req.append(np.array([i]))
            d_step.append(np.array([0]))
            continue
        e2e_ms[i] = (ttft + float(itl.sum())) * 1e3
        if itl.size:
            zero = itl == 0
            d_lat.append(np.where(zero, np.nan, itl * 1e3))
            d_ok.append(~zero)
            if zero.any():
                d_err.extend("zero inter-token latency (two chunks read at the same instant)"
                             if z else None for z in zero)
            else:
                d_err.extend([None] * itl.size)
            d_req.append(np.full(itl.size, i))
            d_step.append(np.arange(1, itl.size + 1))

    def tok_col(values: Any, key: str) -> Any:
        if values is None:
            return pd.array([None] * n, dtype="Int64")
        return pd.array([_tokens(v, file=file, field=f"{field_prefix}{key}[{i}]")
                         for i, v in enumerate(values)], dtype="Int64")

    summary = {k: v for k, v in result.items()
               if k not in _PER_REQUEST and not isinstance(v, (list, dict))}
    common = {
        "format": "vllm",
        "file": file,
        "backend": result.get("backend"),
        "model_id": result.get("model_id"),
        "date": result.get("date"),
        "request_rate": result.get("request_rate"),
        "n_requests": n,
        "n_failed": int((~ok).sum()),
        "summary": summary,
    }
    common = {k: v for k, v in common.items() if v is not None}
    ttft_run = ImportedRun(
        run_id=f"{prefix}ttft",
        latency_ms=np.where(ok, ttft_ms, np.nan),
        ok=ok,
        error=err,
        extra={
            "request_index": np.arange(n, dtype=np.int64),
            "ttft_ms": ttft_ms,
            "input_tokens": tok_col(in_lens, "input_lens"),
            "output_tokens": tok_col(out_lens, "output_lens"),
            "decode_steps": steps,
            "e2e_latency_ms": e2e_ms,
        },
        provenance={**common, "signal": "time to first token per request, request order"},
    )
    lat = np.concatenate(d_lat) if d_lat else np.zeros(0)
    dok = np.concatenate(d_ok) if d_ok else np.zeros(0, dtype=bool)
    decode_run = ImportedRun(
        run_id=f"{prefix}decode",
        latency_ms=lat,
        ok=dok,
        error=d_err,
        extra={
            "request_index": np.concatenate(d_req).astype(np.int64) if d_req
            else np.zeros(0, dtype=np.int64),
            "decode_step": np.concatenate(d_step).astype(np.int64) if d_step
            else np.zeros(0, dtype=np.int64),
        },
        provenance={**common, "signal": "inter-token latency per decode step, requests in "
                                        "request order, steps in stream order",
                    "n_steps": int(dok.sum())},
    )
    if not len(lat):
        raise TraceFormatError("no decode step in any request (every ITL list is empty)",
                               file=file, field=f"{field_prefix}itls")
    return [ttft_run, decode_run]


def import_vllm(path: str | os.PathLike[str]) -> Trace:
    """Read a vLLM serving-benchmark result (`--save-result` JSON) as a trace of two runs.

    Parameters
    ----------
    path : path-like
        The result file (`.json`, plain or gzip).

    Returns
    -------
    Trace
        Runs `ttft` (one attempt per request) and `decode` (one attempt per
        decode step), described in the module docstring; tags `backend`,
        `model_id`, `request_rate`.

    Raises
    ------
    TraceFormatError
        When the file is not a vLLM result or a field is malformed (naming
        the file and the JSON path of the field).
    """
    p = Path(path)
    f = str(p)
    data = read_json(p)
    runs = vllm_runs(data, file=f)
    tags = {k: str(data[k]) for k in ("backend", "model_id", "request_rate", "date")
            if data.get(k) is not None}
    return build_trace(runs, file=p, source_format="vllm", tags=tags,
                       model={"name": data.get("model_id") or "unknown",
                              "harness": "vllm benchmark_serving"})
