"""Importer of Megatron-LM golden-values JSON (functional-test metrics of one training run).

A golden-values file maps a metric name to
`{"start_step", "end_step", "step_interval", "values": {"<step>": value}}`;
the values are TensorBoard scalars logged at the listed steps. The
`iteration-time` metric is the mean wall-clock seconds per training iteration
over the log interval ending at that step, and becomes the run
`iteration-time`:

* one attempt per logged step, in step order: `latency_ms` = the value in ms
  (time per iteration), `step` = the logged step, `steps_covered` = the number
  of training steps the value stands for;
* **stride.** Only every `step_interval`-th step is listed (and some files list
  fewer than their declared interval: the steps actually present are what
  count). A logged point at step $s_k$ stands for the $s_k - s_{k-1}$ steps
  since the previous logged point; the first one stands for its own step only
  (the steps before it are not in the file). The times are accumulated over
  all covered steps:
  $t^{\\mathrm{end}}_k = \\sum_{j \\le k} v_j (s_j - s_{j-1})$ with the first
  term $v_0$, and `t_start_ns` is the previous end (0 first). That is exact
  when the value is the mean over the interval, and an estimate (the unlogged
  steps taken at the logged step's time) when it is one step's time;
* a value written `"nan"` (Megatron writes it for steps the run did not reach)
  is a failed attempt (`ok` False, reason in `error`); since the time of the
  steps it covers is unknown, `t_start_ns` / `t_end_ns` are null from the first
  such point on (a run whose gaps all trail keeps the times of its measured
  steps);
* every other metric that has values at the same steps (`lm loss`,
  `num-zeros`, `mem-allocated-bytes`, ...) becomes an extra column with its
  name in lower case and runs of other characters replaced by `_` (`lm_loss`,
  `num_zeros`, ...), NaN at the steps where it has no value; metrics logged at
  none of these steps are listed in the provenance (`metrics_not_aligned`).

Provenance: `metric`, the declared `start_step`, `end_step`, `step_interval`,
the distinct gaps between logged steps (`step_gaps`), `n_missing` and the
columns added. The GPU named at the end of the file name
(`..._dgx_h100.json`) is kept in the tag `gpu`.

References
----------
- NVIDIA, Megatron-LM, `tests/functional_tests` golden values and
  `megatron/training/training.py` (`training_log`: `iteration-time` is the
  elapsed time since the last log divided by the iterations in between),
  https://github.com/NVIDIA/Megatron-LM.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from llenergymeasure.traces.importers._common import ImportedRun, build_trace, read_json
from llenergymeasure.traces.model import ALL_COLUMNS, Trace, TraceFormatError

__all__ = ["ITERATION_TIME", "import_megatron", "iteration_time_run", "looks_like_megatron",
           "megatron_run", "stride_times_ns"]

#: The metric that becomes the run.
ITERATION_TIME = "iteration-time"

_GPU_IN_NAME = re.compile(r"dgx_([a-z0-9]+)$", re.IGNORECASE)
_NOT_NAME = re.compile(r"[^0-9a-z]+")


def looks_like_megatron(data: Any) -> bool:
    """A non-empty JSON object whose entries are all metric objects with a `values` object."""
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(m, dict) and isinstance(m.get("values"), dict)
                for m in data.values())
    )


def stride_times_ns(steps: np.ndarray, seconds: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample times of logged per-iteration times, honouring the steps between logged points.

    Parameters
    ----------
    steps : ndarray of int
        Logged steps, strictly increasing.
    seconds : ndarray of float
        Mean seconds per iteration at each logged step (NaN: not logged).

    Returns
    -------
    t_start_ns, t_end_ns : ndarray of float
        From the start of the first logged step, ns; NaN from the first NaN
        value on (the time of the steps it covers is unknown).
    steps_covered : ndarray of int
        $s_k - s_{k-1}$, and 1 for the first point.
    """
    steps = np.asarray(steps, dtype=np.int64)
    seconds = np.asarray(seconds, dtype=np.float64)
    covered = np.diff(steps, prepend=steps[0] - 1) if steps.size else steps.copy()
    dur_ns = seconds * covered * 1e9
    # NaN propagates through the cumulative sum: every time after a gap is unknown
    end = np.rint(np.cumsum(dur_ns))
    start = np.concatenate([[0.0], end[:-1]]) if end.size else end.copy()
    return start, end, covered


def _step_key(key: str, *, file: str, field: str) -> int:
    try:
        step = int(key)
    except ValueError:
        raise TraceFormatError(f"expected an integer step, got {key!r}", file=file,
                               field=field) from None
    if step < 0:
        raise TraceFormatError(f"expected a step >= 0, got {key!r}", file=file, field=field)
    return step


def _value(v: Any, *, file: str, field: str) -> float:
    """A metric value: a finite number, or NaN for `"nan"` / null (not logged)."""
    if v is None or (isinstance(v, str) and v.strip().lower() == "nan"):
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TraceFormatError(f"expected a number or 'nan', got {v!r}", file=file, field=field)
    if math.isinf(v):
        raise TraceFormatError(f"expected a finite number, got {v!r}", file=file, field=field)
    return float(v)


def _column_name(metric: str) -> str:
    name = _NOT_NAME.sub("_", metric.lower()).strip("_") or "metric"
    return f"metric_{name}" if name in ALL_COLUMNS or name in ("step", "steps_covered") else name


def megatron_run(data: dict[str, Any], *, file: str, run_id: str = ITERATION_TIME
                 ) -> ImportedRun:
    """The `iteration-time` run of one parsed golden-values object.

    Raises
    ------
    TraceFormatError
        When there is no `iteration-time` metric, a step is not an integer,
        a value is neither a number nor `"nan"`, or an iteration time is not
        positive (naming the file and the JSON path).
    """
    if not looks_like_megatron(data):
        raise TraceFormatError("not a Megatron-LM golden-values file: expected an object of "
                               "metrics, each with a 'values' object", file=file)
    if ITERATION_TIME not in data:
        raise TraceFormatError(f"no {ITERATION_TIME!r} metric (metrics: {sorted(data)})",
                               file=file, field=ITERATION_TIME)
    metric = data[ITERATION_TIME]
    where = f"{ITERATION_TIME}.values"
    pairs = sorted((_step_key(k, file=file, field=f"{where}.{k}"), k)
                   for k in metric["values"])
    if not pairs:
        raise TraceFormatError("no logged step", file=file, field=where)
    for (a, ka), (b, _) in itertools.pairwise(pairs):
        if a == b:
            raise TraceFormatError(f"step {a} is listed twice", file=file, field=f"{where}.{ka}")
    steps = np.array([s for s, _ in pairs], dtype=np.int64)
    secs = np.array([_value(metric["values"][k], file=file, field=f"{where}.{k}")
                     for _, k in pairs])
    bad = np.isfinite(secs) & (secs <= 0)
    if bad.any():
        k = pairs[int(np.argmax(bad))][1]
        raise TraceFormatError(f"expected a positive iteration time, got {secs[bad][0]!r}",
                               file=file, field=f"{where}.{k}")
    extra: dict[str, np.ndarray] = {}
    added: dict[str, str] = {}
    not_aligned: list[str] = []
    for name, m in data.items():
        if name == ITERATION_TIME:
            continue
        vals = {}
        for key, v in m["values"].items():
            vals[_step_key(key, file=file, field=f"{name}.values.{key}")] = _value(
                v, file=file, field=f"{name}.values.{key}")
        if not any(int(s) in vals for s in steps):
            not_aligned.append(name)
            continue
        col = _column_name(name)
        while col in extra or col in ("step", "steps_covered"):
            col = f"{col}_"
        extra[col] = np.array([vals.get(int(s), math.nan) for s in steps], dtype=np.float64)
        added[col] = name
    provenance: dict[str, Any] = {
        "format": "megatron",
        "file": file,
        "metric": ITERATION_TIME,
        "start_step": metric.get("start_step"),
        "end_step": metric.get("end_step"),
        "step_interval": metric.get("step_interval"),
        "columns": added,
    }
    if not_aligned:
        provenance["metrics_not_aligned"] = not_aligned
    return iteration_time_run(steps, secs, run_id=run_id, extra=extra, provenance={
        k: v for k, v in provenance.items() if v is not None})


def iteration_time_run(steps: np.ndarray, seconds: np.ndarray, *,
                       run_id: str = ITERATION_TIME, extra: dict[str, np.ndarray] | None = None,
                       provenance: dict[str, Any] | None = None) -> ImportedRun:
    """The run of logged per-iteration times, with the stride honoured (`stride_times_ns`).

    Parameters
    ----------
    steps : ndarray of int
        Logged steps, strictly increasing.
    seconds : ndarray of float
        Mean seconds per iteration at each step; NaN where nothing was logged
        (a failed attempt).
    run_id : str, default "iteration-time"
        Id of the run.
    extra : dict, optional
        More columns.
    provenance : dict, optional
        The run's provenance; `step_gaps`, `n_logged` and `n_missing` are added.

    Returns
    -------
    ImportedRun
        `latency_ms` in ms per iteration, times from `stride_times_ns`,
        columns `step` and `steps_covered`.
    """
    steps = np.asarray(steps, dtype=np.int64)
    secs = np.asarray(seconds, dtype=np.float64)
    ok = np.isfinite(secs)
    start, end, covered = stride_times_ns(steps, secs)
    prov = dict(provenance or {})
    prov.update({"step_gaps": sorted({int(g) for g in np.diff(steps)}),
                 "n_logged": int(steps.size), "n_missing": int((~ok).sum())})
    return ImportedRun(
        run_id=run_id,
        latency_ms=secs * 1e3,
        t_start_ns=start,
        t_end_ns=end,
        ok=ok,
        error=[None if o else f"no value logged at step {s} ('nan' in the file)"
               for o, s in zip(ok, steps, strict=True)],
        extra={"step": steps, "steps_covered": covered, **(extra or {})},
        provenance=prov,
    )


def import_megatron(path: str | os.PathLike[str]) -> Trace:
    """Read a Megatron-LM golden-values JSON file: its `iteration-time` metric as one run.

    Parameters
    ----------
    path : path-like
        The golden-values file (plain or gzip).

    Returns
    -------
    Trace
        One run `iteration-time` (see the module docstring).

    Raises
    ------
    TraceFormatError
        On a malformed file or a missing `iteration-time` metric (naming the
        file and the JSON path of the field).
    """
    p = Path(path)
    f = str(p)
    data = read_json(p)
    run = megatron_run(data, file=f)
    tags = {"metrics": ",".join(data)}
    stem = p.name.split(".")[0]
    m = _GPU_IN_NAME.search(stem)
    if m:
        tags["gpu"] = m.group(1).lower()
    return build_trace([run], file=p, source_format="megatron", tags=tags,
                       model={"name": stem, "harness": "Megatron-LM functional test"})
