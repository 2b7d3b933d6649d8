r"""Figure 6: forest plot of the relative bias of the post-stop mean, with CIs.

The relative bias of a stop at ``k`` on a run with reference start ``r`` is
:math:`b = \bar x_{k+1:} / \bar x_{r:} - 1` (:mod:`llenergymeasure.analysis.scoring`).
:func:`bias_forest_data` gives one row per criterion setting:

``level="setting"`` (default)
    the mean (or median) of :math:`b` over the setting's stopped, referenced runs,
    with a seeded percentile bootstrap CI over runs (``scipy.stats.bootstrap``);
    a setting with a single run gets a degenerate CI only when all runs agree, else
    NaN bounds (no resampling is possible).
``level="run"``
    one row per run and setting, with the run's own bootstrap CI of the ratio of means
    from :func:`~llenergymeasure.analysis.scoring.score` (``bias_ci_low - 1``,
    ``bias_ci_high - 1``); needs a scored frame.

:func:`plot_forest` draws each estimate as a point with a horizontal CI bar and a
vertical line at zero bias; values are shown in percent.

References
----------
.. [1] S. Lewis and M. Clarke, "Forest plots: trying to see the wood and the trees",
   BMJ 322(7300):1479-1480, 2001.
.. [2] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
   Hall, 1993 (percentile intervals).
.. [3] T. Kalibera and R. Jones, "Rigorous benchmarking in reasonable time", ISMM 2013
   (CIs of ratios of means).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from llenergymeasure.analysis.figures._scores import with_scores
from llenergymeasure.analysis.figures._style import (
    FigureDataError,
    empty_note,
    finite,
    new_axes,
    paper_style,
    setting_labels,
    shows_in_notebook,
)
from llenergymeasure.analysis.scoring import percentile_ci

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["bias_forest_data", "plot_forest"]


def _boot_ci(v: np.ndarray, stat: str, confidence: float, n_resamples: int, seed: int
             ) -> tuple[float, float]:
    if v.size == 0:
        return np.nan, np.nan
    if np.ptp(v) == 0:
        return float(v[0]), float(v[0])
    if v.size < 2:
        return np.nan, np.nan
    return percentile_ci((v,), np.mean if stat == "mean" else np.median,
                         confidence=confidence, n_resamples=n_resamples, seed=seed)


def bias_forest_data(
    results: pd.DataFrame,
    *,
    level: Literal["setting", "run"] = "setting",
    statistic: Literal["mean", "median"] = "mean",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Estimates and CIs of the relative bias per setting (or per run and setting).

    Parameters
    ----------
    results : DataFrame
        Replay or scored rows (``relative_bias`` derived when missing).
    level : {"setting", "run"}
        Aggregate over runs with a bootstrap CI, or one row per run with its own CI.
    statistic : {"mean", "median"}
        The estimate at ``level="setting"``.
    confidence : float, default 0.95
        CI level, in (0, 1).
    n_resamples : int, default 2000
        Bootstrap resamples.
    seed : int, default 0
        The bootstrap of the i-th setting uses ``seed + i``.

    Returns
    -------
    DataFrame
        ``label``, ``estimate``, ``ci_low``, ``ci_high`` (relative bias, fractions),
        ``n`` (runs behind the estimate) and, at ``level="run"``, ``trace_id`` and
        ``run_id``; settings in the frame's order.
    """
    if level not in ("setting", "run"):
        raise ValueError(f"level must be 'setting' or 'run', got {level!r}")
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    frame = with_scores(results)
    frame = frame.assign(label=setting_labels(frame), _b=finite(frame["relative_bias"]))
    cols = ["label", "estimate", "ci_low", "ci_high", "n"]
    if level == "run":
        for c in ("bias_ci_low", "bias_ci_high"):
            if c not in frame.columns:
                raise FigureDataError(
                    f"level='run' needs a scored frame (column {c!r}); "
                    "see llenergymeasure.analysis.scoring.score"
                )
        rows = frame[np.isfinite(frame["_b"])]
        return pd.DataFrame({
            "label": rows["label"].to_numpy(dtype=object),
            "trace_id": rows["trace_id"].astype(str).to_numpy(),
            "run_id": rows["run_id"].astype(str).to_numpy(),
            "estimate": rows["_b"].to_numpy(),
            "ci_low": finite(rows["bias_ci_low"]) - 1.0,
            "ci_high": finite(rows["bias_ci_high"]) - 1.0,
            "n": 1,
        })
    recs = []
    for i, (lab, g) in enumerate(frame.groupby("label", sort=False)):
        v = g["_b"].to_numpy()
        v = v[np.isfinite(v)]
        est = (np.mean(v) if statistic == "mean" else np.median(v)) if v.size else np.nan
        lo, hi = _boot_ci(v, statistic, confidence, n_resamples, seed + i)
        recs.append({"label": str(lab), "estimate": float(est), "ci_low": lo, "ci_high": hi,
                     "n": int(v.size)})
    out = pd.DataFrame(recs, columns=cols)
    out.attrs.update(statistic=statistic, confidence=confidence)
    return out


@shows_in_notebook
def plot_forest(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    percent: bool = True,
    sort: bool = False,
    columns: float = 1,
) -> Axes:
    """Forest plot of :func:`bias_forest_data`: a point and a CI bar per row.

    Parameters
    ----------
    data : DataFrame
        From :func:`bias_forest_data`.
    ax : Axes, optional
        Where to draw; a new figure (its height grows with the rows) when None.
    percent : bool, default True
        Show the bias in percent.
    sort : bool, default False
        Order rows by estimate.
    columns : float, default 1
        Width of a new figure.

    Returns
    -------
    Axes
    """
    with paper_style():
        rows = data[np.isfinite(finite(data["estimate"]))]
        n = len(rows)
        ax = new_axes(ax, columns, aspect=max(0.5, min(2.5, 0.12 + 0.075 * n)))
        if rows.empty:
            return empty_note(ax, "no stopped run with a reference start")
        if sort:
            rows = rows.sort_values("estimate", kind="mergesort")
        scale = 100.0 if percent else 1.0
        est = finite(rows["estimate"]) * scale
        lo = finite(rows["ci_low"]) * scale
        hi = finite(rows["ci_high"]) * scale
        ypos = np.arange(n)[::-1]
        has = np.isfinite(lo) & np.isfinite(hi)
        err = np.vstack([np.where(has, est - lo, 0.0), np.where(has, hi - est, 0.0)])
        ax.errorbar(est, ypos, xerr=np.clip(err, 0.0, None), fmt="o", color="#0072B2",
                    ecolor="#0072B2", elinewidth=0.8, capsize=1.5, ms=3, zorder=3)
        ax.axvline(0.0, color="k", lw=0.6, ls="--", zorder=1)
        names = rows["label"].astype(str)
        if "run_id" in rows.columns:
            names = names + " · " + rows["trace_id"].astype(str) + "/" + rows["run_id"]
        ax.set_yticks(ypos, list(names), fontsize="xx-small")
        ax.set_ylim(-0.7, n - 0.3)
        conf = data.attrs.get("confidence", 0.95)
        unit = " (%)" if percent else ""
        ax.set_xlabel(f"relative bias of the post-stop mean{unit}, {conf:.0%} CI")
    return ax
