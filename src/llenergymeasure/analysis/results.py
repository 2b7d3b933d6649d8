"""The replay result table: its columns, their accumulation per chunk of runs, and the frame.

`ResultColumns` accumulates the outcome of every (run, setting) pair of a
chunk as flat lists (no dict per row) and derives every result column with
numpy; `result_frame` joins the chunks and the settings' own columns into one
tidy `pandas.DataFrame` with the columns of `RESULT_COLUMNS` (and
`param_<name>` after `spec`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from llenergymeasure.analysis.corpus import RunRecord
from llenergymeasure.analysis.replay_decide import Verdict
from llenergymeasure.analysis.replay_grid import Setting
from llenergymeasure.criteria.base import Evaluation
from llenergymeasure.criteria.stopping import StopRule

__all__ = ["RESULT_COLUMNS", "ResultColumns", "result_frame"]

#: Columns every result table has, in order (`param_*` columns follow `spec`).
RESULT_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "run_id",
    "criterion",
    "spec",
    "n_samples",
    "failures",
    "stop_index",
    "stop_time_s",
    "stopped",
    "converged",
    "statistic",
    "truncation",
    "samples_used",
    "seconds_used",
    "post_stop_mean",
    "reason",
    "reference_start",
    "reference_start_s",
    "reference_mean",
)

_INT_COLUMNS = ("stop_index", "truncation", "reference_start")


class ResultColumns:
    """Result columns of a chunk of runs, accumulated as flat lists.

    Per row: the setting's global position, the run's position in the chunk,
    the stop index (-1: none), convergence, the statistic, the truncation (-1:
    none) and the time (NaN without times) and cumulative latency at the stop.
    Per run: its identifiers, sizes and reference columns.
    """

    def __init__(self) -> None:
        self.setting: list[int] = []
        self.run: list[int] = []
        self.stop: list[int] = []
        self.conv: list[bool] = []
        self.stat: list[float] = []
        self.trunc: list[int] = []
        self.t_at: list[float] = []
        self.c_at: list[float] = []
        self.runs: list[tuple[str, str, int, int, float, float, int | None, float, float]] = []

    def add_run(self, run: RunRecord, times: NDArray[np.float64],
                csum: NDArray[np.float64]) -> int:
        """Record a run's own columns; return its position in the chunk.

        `times` is the run's times, or NaN everywhere when it has none.
        """
        n = run.n
        total = float(csum[-1]) if n else 0.0
        ref = run.reference_start
        ref_s = ref_mean = math.nan
        if ref is not None and 0 <= ref < max(n, 1):
            ref_s = float(times[ref - 1]) if ref > 0 else 0.0
            before = float(csum[ref - 1]) if ref > 0 else 0.0
            ref_mean = (total - before) / (n - ref) if n > ref else math.nan
        last = float(times[-1]) if n else 0.0
        self.runs.append((run.trace_id, run.run_id, n, run.failures, last, total, ref, ref_s,
                          ref_mean))
        return len(self.runs) - 1

    def add(self, setting: int, run: int, verdict: Verdict | None,
            times: NDArray[np.float64], csum: NDArray[np.float64]) -> None:
        """One row: `verdict` None for a run without samples."""
        self.setting.append(setting)
        self.run.append(run)
        d = None if verdict is None else verdict.decision
        if d is None:
            self.stop.append(-1)
            self.conv.append(False)
            self.t_at.append(0.0)
            self.c_at.append(0.0)
        else:
            self.stop.append(d.index)
            self.conv.append(d.converged)
            self.t_at.append(float(times[d.index]))
            self.c_at.append(float(csum[d.index]))
        self.stat.append(math.nan if verdict is None else verdict.statistic)
        self.trunc.append(-1 if verdict is None or d is None else verdict.truncation)

    def add_sweep(self, first: int, run: int, ev: Evaluation, stop: NDArray[np.int64],
                  conv: NDArray[np.bool_], times: NDArray[np.float64],
                  csum: NDArray[np.float64]) -> None:
        """The rows of a sweep group (settings `first, first + 1, ...`) on one run."""
        m = stop.shape[0]
        stopped = stop >= 0
        at = np.where(stopped, stop, ev.statistic.shape[0] - 1)
        self.setting.extend(range(first, first + m))
        self.run.extend([run] * m)
        self.stop.extend(stop.tolist())
        self.conv.extend(conv.tolist())
        self.stat.extend(ev.statistic[at].tolist())
        if ev.truncation is None:
            self.trunc.extend([-1] * m)
        else:
            self.trunc.extend(np.where(stopped, ev.truncation[at], -1).tolist())
        self.t_at.extend(np.where(stopped, times[at], 0.0).tolist())
        self.c_at.extend(np.where(stopped, csum[at], 0.0).tolist())

    def arrays(self, rule: StopRule) -> dict[str, NDArray[Any]]:
        """Every result column but the settings' own (criterion, spec, parameters)."""
        run = np.asarray(self.run, dtype=np.int64)
        per_run = list(zip(*self.runs, strict=True)) if self.runs else [()] * 9
        tid, rid, n_r, fail_r, last_r, total_r, ref_r, ref_s_r, ref_mean_r = per_run
        n = np.asarray(n_r, dtype=np.int64)[run]
        stop = np.asarray(self.stop, dtype=np.int64)
        stopped = stop >= 0
        conv = np.asarray(self.conv, dtype=bool) & stopped
        t_at = np.asarray(self.t_at, dtype=np.float64)
        tail = n - stop - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            post = (np.asarray(total_r, dtype=np.float64)[run]
                    - np.asarray(self.c_at, dtype=np.float64)) / tail
        trunc = np.asarray(self.trunc, dtype=np.int64)
        ref_known = np.array([r is not None for r in ref_r], dtype=bool)
        ref_val = np.array([-1 if r is None else r for r in ref_r], dtype=np.float64)
        cache: dict[tuple[int, bool, int], str] = {}

        def reason(k: int, c: bool, size: int) -> str:
            key = (k, c, size if k < 0 else -1)
            text = cache.get(key)
            if text is None:
                if k < 0:
                    text = rule.no_stop_reason(size)
                elif c:
                    text = rule.converged_reason(k)
                else:
                    text = rule.cap_reason()
                cache[key] = text
            return text

        return {
            "setting": np.asarray(self.setting, dtype=np.int64),
            "trace_id": np.asarray(tid, dtype=object)[run],
            "run_id": np.asarray(rid, dtype=object)[run],
            "n_samples": n,
            "failures": np.asarray(fail_r, dtype=np.int64)[run],
            "stop_index": np.where(stopped, stop, np.nan),
            "stop_time_s": np.where(stopped, t_at, np.nan),
            "stopped": stopped,
            "converged": conv,
            "statistic": np.asarray(self.stat, dtype=np.float64),
            "truncation": np.where(stopped & (trunc >= 0), trunc, np.nan),
            "samples_used": np.where(stopped, stop + 1, n),
            "seconds_used": np.where(stopped, t_at, np.asarray(last_r, dtype=np.float64)[run]),
            "post_stop_mean": np.where(stopped & (tail > 0), post, np.nan),
            "reason": np.asarray(
                [reason(k, c, s) for k, c, s in zip(stop.tolist(), conv.tolist(), n.tolist(),
                                                     strict=True)],
                dtype=object,
            ),
            "reference_start": np.where(ref_known, ref_val, np.nan)[run],
            "reference_start_s": np.asarray(ref_s_r, dtype=np.float64)[run],
            "reference_mean": np.asarray(ref_mean_r, dtype=np.float64)[run],
        }


def result_frame(parts: list[dict[str, NDArray[Any]]], settings: list[Setting]) -> pd.DataFrame:
    """One DataFrame from the chunks' column arrays (one concatenation per column).

    The settings' own columns (criterion, spec, `param_*`) are built once per
    setting and gathered by each row's setting position; the parameter columns
    get the dtypes pandas infers from the settings' values.
    """
    if not parts or sum(p["setting"].shape[0] for p in parts) == 0:
        return finish_frame(pd.DataFrame(columns=list(RESULT_COLUMNS)))
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    which = cols.pop("setting")
    own = pd.DataFrame.from_records(
        [{"criterion": s.name, "spec": s.spec, **{f"param_{k}": v for k, v in s.params.items()}}
         for s in settings]
    )
    data: dict[str, Any] = {}
    for name in RESULT_COLUMNS[:4]:
        data[name] = cols[name] if name in cols else own[name].to_numpy()[which]
    for name in own.columns:
        if name.startswith("param_"):
            data[name] = own[name].take(which).to_numpy()
    for name in RESULT_COLUMNS[4:]:
        data[name] = cols[name]
    return finish_frame(pd.DataFrame(data))


def finish_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Column order and dtypes of every result table."""
    params = sorted(c for c in df.columns if c.startswith("param_"))
    order = list(RESULT_COLUMNS[:4]) + params + list(RESULT_COLUMNS[4:])
    df = df.reindex(columns=order)
    for col in _INT_COLUMNS:
        df[col] = pd.array(df[col].astype("Float64"), dtype="Int64")
    for col in ("stopped", "converged"):
        df[col] = df[col].astype(bool)
    for col in ("n_samples", "failures", "samples_used"):
        df[col] = df[col].astype(np.int64)
    for col in ("trace_id", "run_id", "criterion", "spec", "reason"):
        df[col] = df[col].astype(str)
    return df
