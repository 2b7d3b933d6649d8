"""Figure 2: cost against error per criterion setting, with the Pareto front.

:func:`cost_error_data` aggregates the runs of each setting to one point, by default
the median seconds spent in warmup (cost) against the median absolute time waste
:math:`|t_k - t_{r-1}|` (error), and marks the settings no other setting beats on both
(:func:`llenergymeasure.analysis.scoring.pareto_front`: no worse on both, strictly
better on one). :func:`plot_cost_error` draws the points, the front as a step line and
labels the front's points. With the replayed runs, `fixed_count_curve` gives the
fixed-count curve (`llenergymeasure.analysis.scoring.fixed_count_frontier`: the cost
and error of `fixed_count:n` for many `n` on the same runs), drawn as a dashed line:
a setting above it is worse than a fixed count of the same cost.

References
----------
.. [1] V. Pareto, *Manuale di economia politica*, 1906; for the use in benchmark
   stopping rules, C. Laaber, S. Würsten, H. C. Gall and P. Leitner, "Dynamically
   reconfiguring software microbenchmarks", ESEC/FSE 2020 (time saved against result
   change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from llenergymeasure.analysis.figures._scores import with_scores
from llenergymeasure.analysis.figures._style import (
    FigureDataError,
    annotate_without_overlap,
    empty_note,
    finite,
    new_axes,
    paper_style,
    place_legend,
    require_columns,
    series_styles,
    setting_labels,
    shows_in_notebook,
    unit_axis,
)
from llenergymeasure.analysis.scoring import fixed_count_frontier, pareto_front

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["cost_error_data", "fixed_count_curve", "plot_cost_error"]

#: Frontier columns of `fixed_count_frontier` matching a cost or (error, agg).
_FRONTIER_COST = {("seconds_used", "median"): "median_seconds_used",
                  ("seconds_used", "mean"): "seconds_used",
                  ("samples_used", "median"): "samples_used",
                  ("samples_used", "mean"): "samples_used"}
_FRONTIER_ERROR = {("abs_wee_s", "median"): "median_abs_wee_s",
                   ("abs_wee_s", "mean"): "mean_abs_wee_s"}


def fixed_count_curve(
    corpus: Any,
    *,
    cost: str = "seconds_used",
    error: str = "abs_wee_s",
    agg: Literal["median", "mean"] = "median",
    counts: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The fixed-count curve in the axes of `cost_error_data`: columns `n`, `cost`, `error`.

    Parameters
    ----------
    corpus : Corpus, or anything `Corpus.build` accepts
        The replayed runs (with reference starts).
    cost, error, agg
        As in `cost_error_data`; supported: cost `seconds_used` or `samples_used`,
        error `abs_wee_s` (median or mean).
    counts : sequence of int, optional
        The counts (default: those of `fixed_count_frontier`).

    Raises
    ------
    FigureDataError
        An axis the curve does not provide.
    """
    if (cost, agg) not in _FRONTIER_COST or (error, agg) not in _FRONTIER_ERROR:
        raise FigureDataError(f"no fixed-count curve for cost {cost!r} and {agg} {error!r}")
    front = fixed_count_frontier(corpus, counts)
    return pd.DataFrame({"n": front["n"], "cost": front[_FRONTIER_COST[(cost, agg)]],
                         "error": front[_FRONTIER_ERROR[(error, agg)]]})


def cost_error_data(
    results: pd.DataFrame,
    *,
    cost: str = "seconds_used",
    error: str = "abs_wee_s",
    agg: Literal["median", "mean"] = "median",
) -> pd.DataFrame:
    """One point per criterion setting: aggregated cost and error, and the Pareto flag.

    Parameters
    ----------
    results : DataFrame
        Replay or scored rows (one per run x setting). Missing score columns
        (``wee_s``, ``abs_wee_s``, ``relative_bias``) are derived from the replay
        columns.
    cost, error : str
        Per-run columns to aggregate; both are minimised. ``"abs_relative_bias"`` is
        accepted as an error and computed from ``relative_bias``.
    agg : {"median", "mean"}
        How the runs of a setting are combined (NaN skipped: never-stopped or
        unreferenced runs count in ``n_runs`` but not in the error).

    Returns
    -------
    DataFrame
        Columns ``label``, ``criterion`` (when present), ``spec``, ``cost``,
        ``error``, ``n_runs``, ``n_error`` (runs with a finite error),
        ``on_front`` (bool), sorted by cost.
    """
    if agg not in ("median", "mean"):
        raise ValueError(f"agg must be 'median' or 'mean', got {agg!r}")
    frame = with_scores(results)
    frame["abs_relative_bias"] = np.abs(finite(frame["relative_bias"]))
    require_columns(frame, cost, error)
    frame = frame.assign(label=setting_labels(frame), _c=finite(frame[cost]),
                         _e=finite(frame[error]))
    keys = [c for c in ("label", "criterion", "spec") if c in frame.columns]
    g = frame.groupby(keys, sort=False, dropna=False)
    out = g.agg(cost=("_c", agg), error=("_e", agg), n_runs=("_c", "size"),
                n_error=("_e", "count")).reset_index()
    front = pareto_front(out, cost="cost", quality="error")
    out["on_front"] = out.index.isin(front.index)
    return out.sort_values(["cost", "error"], kind="mergesort").reset_index(drop=True)


@shows_in_notebook
def plot_cost_error(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    logx: bool = False,
    logy: bool = False,
    annotate_front: bool = True,
    cost_label: str = "median warmup time (s)",
    error_label: str = "median |time waste| (s)",
    columns: float = 1,
    frontier: pd.DataFrame | None = None,
) -> Axes:
    """Scatter cost against error, with the Pareto front as a step line.

    Parameters
    ----------
    data : DataFrame
        From :func:`cost_error_data`.
    ax : Axes, optional
        Where to draw; a new figure when None.
    logx, logy : bool
        Logarithmic axes.
    annotate_front : bool, default True
        Write the labels of the settings on the front next to their points.
    cost_label, error_label : str
        Axis labels.
    columns : float, default 1
        Width of a new figure (1 or 2 journal columns, or inches).
    frontier : DataFrame, optional
        The fixed-count curve (`fixed_count_curve`), drawn as a dashed line.

    Returns
    -------
    Axes
    """
    with paper_style():
        ax = new_axes(ax, columns, aspect=0.8)
        ok = np.isfinite(finite(data["cost"])) & np.isfinite(finite(data["error"]))
        pts = data[ok]
        if pts.empty:
            return empty_note(ax, "no setting has a finite cost and error\n"
                              "(no run with a reference start stopped)")
        by_crit = pts["criterion"] if "criterion" in pts.columns else pts["label"]
        styles = series_styles(pd.unique(by_crit))
        for crit, g in pts.groupby(by_crit, sort=False):
            st = styles[crit]
            ax.scatter(g["cost"], g["error"], s=14, marker=st["marker"], color=st["color"],
                       edgecolors="white", linewidths=0.3, zorder=3, label=str(crit))
        if frontier is not None and len(frontier):
            curve = frontier[np.isfinite(finite(frontier["cost"]))
                             & np.isfinite(finite(frontier["error"]))].sort_values("cost")
            ax.plot(curve["cost"], curve["error"], color="0.4", ls="--", lw=0.9, zorder=1,
                    label="fixed count (same runs)")
        front = pts[pts["on_front"].astype(bool)].sort_values("cost")
        if len(front):
            ax.step(front["cost"], front["error"], where="post", color="k", lw=0.8,
                    zorder=2, label="Pareto front")
            if annotate_front:
                _label_front(ax, front, logx=logx, logy=logy)
        if logy:
            ax.set_yscale("symlog" if (pts["error"] <= 0).any() else "log")
        _unit_label(ax, "x", cost_label, pts["cost"], logx)
        _unit_label(ax, "y", error_label, pts["error"], False)
        place_legend(ax)
    return ax


def _unit_label(ax: Axes, which: str, label: str, values: Any, log: bool) -> None:
    """SI ticks for an axis labelled ``"... (s)"``; other labels are set as they are."""
    if label.endswith(" (s)"):
        unit_axis(ax, which, "value_s", values, log=log, label=label[: -len(" (s)")])
    else:
        if log:
            (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        (ax.set_xlabel if which == "x" else ax.set_ylabel)(label)


def _label_front(ax: Axes, front: pd.DataFrame, *, logx: bool, logy: bool) -> None:
    """Label the front's points without overlaps (scales set first: positions depend on
    them)."""
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("symlog" if (front["error"] <= 0).any() else "log")
    ax.figure.draw_without_rendering()
    annotate_without_overlap(
        ax, [(float(r["cost"]), float(r["error"]), str(r["label"]))
             for _, r in front.iterrows()])
