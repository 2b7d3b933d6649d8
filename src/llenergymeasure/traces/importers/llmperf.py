"""Importer of LLMPerf individual responses (`*_individual_responses.json`).

LLMPerf's `token_benchmark_ray.py` writes, beside its summary, a JSON list with
one record per request **in completion order** (the order in which the
concurrent clients got their responses back):

* `end_to_end_latency_s` (s) becomes `latency_ms` (ms);
* `ttft_s` (s) becomes `ttft_ms` (ms);
* `inter_token_latency_s` (s) becomes `inter_token_latency_ms` (ms): the
  request's mean gap between output tokens, as LLMPerf reports it;
* `number_input_tokens`, `number_output_tokens`, `number_total_tokens` become
  `input_tokens`, `output_tokens`, `total_tokens`;
* `request_output_throughput_token_per_s` becomes `output_throughput_tok_s`;
* `error_code` is kept as a column (text), and with `error_msg` makes a failed
  attempt's `error`;
* other fields (`GEN_TEXT`, ...) are not imported.

A record whose `error_code` is not null is a **failed attempt**: `ok` False,
`latency_ms` NaN, `error` = `"error_code <code>: <error_msg>"` (the message
left out when empty); its other columns keep the file's values, which are
zeros for a request that got no answer (HTTP 429, ...) and real measurements
for one rejected afterwards (the leaderboard's code -100, "Output too few
tokens"). A file becomes one run `requests`; `request_index` is the position
in the file.

**Times.** The records carry no timestamps, so `t_start_ns` / `t_end_ns` are
null and the sample times fall back to the cumulative end-to-end latencies:
as if the requests had run one after another. With concurrent clients the
real elapsed time is shorter; time-based criteria read busy time.

References
----------
- Anyscale / Ray project, LLMPerf, `token_benchmark_ray.py` and
  `llmperf/common_metrics.py` (the metric names),
  https://github.com/ray-project/llmperf.
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

__all__ = ["import_llmperf", "llmperf_run", "looks_like_llmperf"]

#: file field in s -> column in ms
_SECONDS = {
    "ttft_s": "ttft_ms",
    "inter_token_latency_s": "inter_token_latency_ms",
}
#: file field -> token-count column
_COUNTS = {
    "number_input_tokens": "input_tokens",
    "number_output_tokens": "output_tokens",
    "number_total_tokens": "total_tokens",
}


def looks_like_llmperf(data: Any) -> bool:
    """A non-empty JSON list whose first entry has `ttft_s` and `end_to_end_latency_s`."""
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and "ttft_s" in data[0]
        and "end_to_end_latency_s" in data[0]
    )


def _num(rec: dict[str, Any], key: str, *, file: str, where: str) -> float:
    v = rec.get(key)
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise TraceFormatError(f"expected a finite number, got {v!r}", file=file,
                               field=f"{where}.{key}")
    return float(v)


def llmperf_run(records: list[Any], *, file: str, run_id: str = "requests",
                field_prefix: str = "") -> ImportedRun:
    """One run from a list of LLMPerf request records (see the module docstring).

    Raises
    ------
    TraceFormatError
        When a record is not an object, a number field holds something else,
        or a successful record has no positive end-to-end latency (naming the
        file and the record).
    """
    if not isinstance(records, list) or not records:
        raise TraceFormatError("expected a non-empty list of request records", file=file,
                               field=field_prefix.rstrip(".") or None)
    n = len(records)
    lat = np.full(n, np.nan)
    ok = np.ones(n, dtype=bool)
    err: list[str | None] = [None] * n
    cols: dict[str, np.ndarray] = {c: np.full(n, np.nan) for c in _SECONDS.values()}
    counts: dict[str, list[int | None]] = {c: [None] * n for c in _COUNTS.values()}
    thr = np.full(n, np.nan)
    codes: list[Any] = [None] * n
    for i, rec in enumerate(records):
        where = f"{field_prefix}[{i}]"
        if not isinstance(rec, dict):
            raise TraceFormatError("expected a request record (an object)", file=file,
                                   field=where)
        code = rec.get("error_code")
        e2e = _num(rec, "end_to_end_latency_s", file=file, where=where)
        for key, col in _SECONDS.items():
            cols[col][i] = _num(rec, key, file=file, where=where) * 1e3
        for key, col in _COUNTS.items():
            v = rec.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise TraceFormatError(f"expected a token count, got {v!r}", file=file,
                                       field=f"{where}.{key}")
            counts[col][i] = v
        thr[i] = _num(rec, "request_output_throughput_token_per_s", file=file, where=where)
        if code is not None:
            if isinstance(code, bool) or not isinstance(code, (int, str)):
                raise TraceFormatError(f"expected an error code, got {code!r}", file=file,
                                       field=f"{where}.error_code")
            codes[i] = code
            msg = rec.get("error_msg") or ""
            ok[i] = False
            err[i] = f"error_code {code}: {msg}" if msg else f"error_code {code}"
            continue
        if not (e2e > 0):
            raise TraceFormatError(f"a successful request needs a positive end-to-end latency, "
                                   f"got {rec.get('end_to_end_latency_s')!r}", file=file,
                                   field=f"{where}.end_to_end_latency_s")
        lat[i] = e2e * 1e3
    extra: dict[str, Any] = {"request_index": np.arange(n, dtype=np.int64)}
    extra.update(cols)
    for col, vals in counts.items():
        extra[col] = pd.array(vals, dtype="Int64")
    extra["output_throughput_tok_s"] = thr
    extra["error_code"] = np.array([None if c is None else str(c) for c in codes],
                                   dtype=object)
    provenance = {
        "format": "llmperf",
        "file": file,
        "n_requests": n,
        "n_failed": int((~ok).sum()),
        "error_codes": sorted({str(c) for c in codes if c is not None}),
        "order": "completion order",
    }
    return ImportedRun(run_id=run_id, latency_ms=lat, ok=ok, error=err, extra=extra,
                       provenance=provenance)


def import_llmperf(path: str | os.PathLike[str]) -> Trace:
    """Read an LLMPerf individual-responses JSON file as one run of requests.

    Parameters
    ----------
    path : path-like
        The `*_individual_responses.json` file (plain or gzip).

    Returns
    -------
    Trace
        One run `requests`: end-to-end latency per request, with TTFT,
        inter-token latency and token counts as columns; failed requests kept
        (see the module docstring).

    Raises
    ------
    TraceFormatError
        On a malformed record (naming the file and the record).
    """
    p = Path(path)
    f = str(p)
    data = read_json(p)
    if not looks_like_llmperf(data):
        raise TraceFormatError("not LLMPerf individual responses: expected a list of records "
                               "with 'ttft_s' and 'end_to_end_latency_s'", file=f)
    run = llmperf_run(data, file=f)
    return build_trace([run], file=p, source_format="llmperf",
                       model={"name": p.stem, "harness": "LLMPerf"})
