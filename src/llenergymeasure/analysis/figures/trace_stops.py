"""Figure 1: a latency trace with each criterion's stop and the reference start marked.

The data step :func:`trace_stops_data` pairs one run's samples with the stops the
replay frame records for it; :func:`plot_trace_stops` draws one run and
:func:`plot_trace_grid` several runs as small multiples sharing one legend. A stop at
index ``k`` ends warmup after sample ``k`` (the replay convention), so its marker is
drawn at sample ``k`` (or at its end time ``t_k``); the reference start ``r`` is the
first steady sample, marked by a shaded warmup span ``[0, r)``.

References
----------
.. [1] E. R. Tufte, *Envisioning Information*, Graphics Press, 1990 (small multiples).
.. [2] L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
   assessment of steady state performance in Java software: are we there yet?",
   Empirical Software Engineering 28(1):13, 2023 (stops against labelled steady starts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from llenergymeasure.analysis.corpus import Corpus, CorpusError
from llenergymeasure.analysis.figures._style import (
    FigureDataError,
    figure_size,
    finite,
    new_axes,
    paper_style,
    require_columns,
    series_styles,
    setting_labels,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["TraceStops", "plot_trace_grid", "plot_trace_stops", "trace_stops_data"]


@dataclass(frozen=True)
class TraceStops:
    """One run's samples and the stops of every criterion setting on it.

    Attributes
    ----------
    trace_id, run_id : str
        The run.
    x : ndarray
        Successful samples (e.g. latency in ms), in order.
    t : ndarray
        End time of each sample, seconds from the run's start.
    reference_start : int or None
        First steady sample; None when unknown or when the run has no steady state.
    stops : DataFrame
        One row per setting that stopped: ``label``, ``stop_index``, ``stop_time_s``,
        ``value`` (the sample at the stop), in stop order; settings that never stopped
        are listed in :attr:`never_stopped`.
    never_stopped : tuple of str
        Labels of the settings that did not stop on this run.
    signal : str
        Name of the plotted signal.
    """

    trace_id: str
    run_id: str
    x: NDArray[np.float64]
    t: NDArray[np.float64]
    reference_start: int | None
    stops: pd.DataFrame
    never_stopped: tuple[str, ...] = ()
    signal: str = "latency_ms"


def trace_stops_data(
    results: pd.DataFrame,
    traces: Any,
    trace_id: str,
    run_id: str,
    *,
    signal: str = "latency_ms",
    criteria: Sequence[str] | None = None,
) -> TraceStops:
    """Collect one run's samples and the stops ``results`` records on it.

    Parameters
    ----------
    results : DataFrame
        Replay (or scored) rows: ``trace_id``, ``run_id``, ``spec``, ``stop_index``,
        ``stop_time_s`` (``criterion`` and ``param_*`` give shorter labels).
    traces : Corpus, or anything `Corpus.build` accepts
        The replayed runs (identified as replay identifies them).
    trace_id, run_id : str
        The run to draw.
    signal : str, default "latency_ms"
        The column to plot.
    criteria : sequence of str, optional
        Keep only these labels, criterion names or specs.

    Returns
    -------
    TraceStops

    Raises
    ------
    FigureDataError
        When the run is not among ``traces`` or ``results`` has no row for it.
    """
    require_columns(results, "trace_id", "run_id", "spec", "stop_index")
    try:
        run = Corpus.build(traces, signals=(signal,)).get(trace_id, run_id)
    except CorpusError as exc:
        raise FigureDataError(str(exc)) from exc
    x = run.signals[signal]
    t = run.times if run.times is not None else np.full(x.size, np.nan)
    ref = run.reference_start
    rows = results.assign(label=setting_labels(results))
    rows = rows[(rows["trace_id"].astype(str) == str(trace_id))
                & (rows["run_id"].astype(str) == str(run_id))]
    if criteria is not None:
        keep = set(criteria)
        mask = rows["label"].isin(keep) | rows["spec"].isin(keep)
        if "criterion" in rows.columns:
            mask |= rows["criterion"].isin(keep)
        rows = rows[mask]
    if rows.empty:
        raise FigureDataError(f"results hold no row for trace {trace_id!r} run {run_id!r}")
    k = finite(rows["stop_index"])
    stopped = np.isfinite(k)
    sub = rows[stopped]
    idx = k[stopped].astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= x.size):
        raise FigureDataError(
            f"trace {trace_id!r} run {run_id!r}: a stop_index lies outside 0..{x.size - 1}"
        )
    stops = pd.DataFrame({
        "label": sub["label"].to_numpy(dtype=object),
        "stop_index": idx,
        "stop_time_s": t[idx] if idx.size else np.array([], dtype=np.float64),
        "value": x[idx] if idx.size else np.array([], dtype=np.float64),
    }).sort_values(["stop_index", "label"], kind="mergesort").reset_index(drop=True)
    never = tuple(str(v) for v in rows.loc[~stopped, "label"])
    return TraceStops(
        str(trace_id), str(run_id), x, t,
        None if ref is None or ref < 0 else int(ref), stops, never, signal,
    )


def _draw(data: TraceStops, ax: Axes, *, log: bool, x_axis: str, styles: dict[str, Any],
          legend: bool) -> None:
    xs = data.t if x_axis == "time" else np.arange(data.x.size)
    ax.plot(xs, data.x, color="0.55", lw=0.6, zorder=1, label=data.signal)
    if data.reference_start is not None and data.x.size:
        r = data.reference_start
        end = (data.t[r - 1] if r > 0 else 0.0) if x_axis == "time" else r - 0.5
        start = 0.0 if x_axis == "time" else -0.5
        ax.axvspan(start, end, color="0.88", lw=0, zorder=0, label="reference warmup")
        ax.axvline(end, color="k", lw=0.8, ls="--", zorder=2, label="reference start")
    for _, row in data.stops.iterrows():
        st = styles[row["label"]]
        pos = row["stop_time_s"] if x_axis == "time" else row["stop_index"]
        ax.axvline(pos, color=st["color"], ls=st["linestyle"], lw=0.7, alpha=0.8, zorder=2)
        ax.plot([pos], [row["value"]], marker=st["marker"], color=st["color"], ls="none",
                ms=4, mec="white", mew=0.4, zorder=3, label=row["label"])
    if log:
        from matplotlib.ticker import LogFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False,
                                                  minor_thresholds=(2, 0.5)))
    ax.set_xlabel("time (s)" if x_axis == "time" else "sample index")
    ax.set_ylabel(data.signal.replace("_ms", " (ms)"))
    ax.set_title(f"{data.trace_id} / {data.run_id}")
    if data.never_stopped:
        ax.annotate(f"never stopped: {len(data.never_stopped)}", (0.99, 0.98),
                    xycoords="axes fraction", ha="right", va="top", fontsize="small")
    if legend:
        ax.legend(loc="upper right", fontsize="x-small", ncols=1 + len(data.stops) // 8)


def plot_trace_stops(
    data: TraceStops,
    *,
    ax: Axes | None = None,
    log: bool = False,
    x_axis: Literal["index", "time"] = "index",
    legend: bool = True,
    columns: float = 1,
) -> Axes:
    """Draw one run with a marker and a line at each criterion's stop.

    Parameters
    ----------
    data : TraceStops
        From :func:`trace_stops_data`.
    ax : Axes, optional
        Where to draw; a new figure ``columns`` journal columns wide when None.
    log : bool, default False
        Logarithmic latency axis (warmup spikes are often 10-100x the plateau).
    x_axis : {"index", "time"}
        Sample index or seconds from the run's start.
    legend : bool, default True
        Draw the legend.
    columns : float, default 1
        Width of a new figure (1 or 2 columns, or inches).

    Returns
    -------
    Axes
    """
    if x_axis not in ("index", "time"):
        raise ValueError(f"x_axis must be 'index' or 'time', got {x_axis!r}")
    with paper_style():
        ax = new_axes(ax, columns)
        styles = series_styles(data.stops["label"])
        _draw(data, ax, log=log, x_axis=x_axis, styles=styles, legend=legend)
    return ax


def plot_trace_grid(
    datas: Sequence[TraceStops],
    *,
    ncols: int = 2,
    log: bool = False,
    x_axis: Literal["index", "time"] = "index",
    columns: float = 2,
    panel_height: float = 1.6,
) -> Figure:
    """Several runs as small multiples with one shared legend.

    Parameters
    ----------
    datas : sequence of TraceStops
        One per panel.
    ncols : int, default 2
        Panels per row.
    log, x_axis
        As in :func:`plot_trace_stops`.
    columns : float, default 2
        Figure width (1 or 2 journal columns, or inches).
    panel_height : float, default 1.6
        Height of one row of panels, inches.

    Returns
    -------
    Figure
    """
    if not datas:
        raise FigureDataError("plot_trace_grid needs at least one run")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    from matplotlib.figure import Figure

    ncols = min(ncols, len(datas))
    nrows = math.ceil(len(datas) / ncols)
    labels = [lab for d in datas for lab in d.stops["label"]]
    styles = series_styles(sorted(dict.fromkeys(labels)))
    with paper_style():
        width, _ = figure_size(columns)
        fig = Figure(figsize=(width, panel_height * nrows + 0.5))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, data in zip(axes.flat, datas, strict=False):
            _draw(data, ax, log=log, x_axis=x_axis, styles=styles, legend=False)
        for ax in list(axes.flat)[len(datas):]:
            ax.set_visible(False)
        handles: dict[str, Any] = {}
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(lab, h)
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                       ncols=min(4, len(handles)), fontsize="x-small")
    return fig
