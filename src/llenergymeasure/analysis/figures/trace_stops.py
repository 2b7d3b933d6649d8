"""Figure 1: a latency trace with each criterion's stop and the reference start marked.

The data step :func:`trace_stops_data` pairs one run's samples with the stops the
replay frame records for it; :func:`plot_trace_stops` draws one run and
:func:`figure_trace_grid` several runs as small multiples sharing one legend. A stop at
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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from llenergymeasure.analysis.corpus import Corpus, CorpusError
from llenergymeasure.analysis.figures._style import (
    FigureDataError,
    cap_series,
    figure_size,
    finite,
    legend_columns,
    new_axes,
    paper_style,
    require_columns,
    series_styles,
    setting_labels,
    shorten,
    show_in_notebook,
    signal_unit,
    unit_axis,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "TraceStops",
    "figure_trace_grid",
    "plot_trace_grid",
    "plot_trace_stops",
    "trace_stops_data",
]


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


def _title(data: TraceStops, width: int) -> str:
    """``trace / run`` (just the run when it already names the trace), cut to ``width``."""
    name = data.run_id if data.run_id.startswith(data.trace_id) else (
        f"{data.trace_id} / {data.run_id}")
    if data.never_stopped:
        note = f" ({len(data.never_stopped)} never stopped)"
        return shorten(name, max(12, width - len(note))) + note
    return shorten(name, width)


def _order_labels(labels: Sequence[str]) -> list[str]:
    """Distinct labels, one setting of each criterion first, then the others (stable)."""
    distinct = list(dict.fromkeys(labels))
    firsts: list[str] = []
    rest: list[str] = []
    seen: set[str] = set()
    for lab in distinct:
        base = lab.split("(", 1)[0]
        (rest if base in seen else firsts).append(lab)
        seen.add(base)
    return firsts + rest


def _zoom_end(data: TraceStops, styles: dict[str, Any]) -> int | None:
    """Samples to show when every stop and the reference start lie in the first quarter
    of a long run (the stops would be a sliver at the left edge); None shows the run."""
    n = data.x.size
    events = [int(k) for k, lab in zip(data.stops["stop_index"], data.stops["label"],
                                       strict=True) if lab in styles]
    if data.reference_start is not None:
        events.append(data.reference_start)
    if n < 400 or not events:
        return None
    end = max(200, int(2.5 * (max(events) + 1)))
    return end if end < n // 4 * 3 else None


def _draw(data: TraceStops, ax: Axes, *, log: bool | str, x_axis: str,
          styles: dict[str, Any], legend: bool, title_width: int = 60,
          zoom: bool | str = "auto") -> None:
    from matplotlib.ticker import MaxNLocator

    shown = _zoom_end(data, styles) if zoom == "auto" else None
    if shown is not None:
        data = TraceStops(data.trace_id, data.run_id, data.x[:shown], data.t[:shown],
                          data.reference_start, data.stops, data.never_stopped, data.signal)
    xs = data.t if x_axis == "time" else np.arange(data.x.size)
    ax.plot(xs, data.x, color="0.55", lw=0.6, zorder=1, label=signal_unit(data.signal)[0])
    if data.reference_start is not None and data.x.size:
        r = data.reference_start
        end = (data.t[r - 1] if r > 0 else 0.0) if x_axis == "time" else r - 0.5
        start = 0.0 if x_axis == "time" else -0.5
        ax.axvspan(start, end, color="0.88", lw=0, zorder=0, label="reference warmup")
        ax.axvline(end, color="k", lw=0.8, ls="--", zorder=2, label="reference start")
    for _, row in data.stops.iterrows():
        st = styles.get(row["label"])
        if st is None:  # beyond the series cap: summarised, not drawn
            continue
        pos = row["stop_time_s"] if x_axis == "time" else row["stop_index"]
        ax.axvline(pos, color=st["color"], ls=st["linestyle"], lw=0.7, alpha=0.8, zorder=2)
        ax.plot([pos], [row["value"]], marker=st["marker"], color=st["color"], ls="none",
                ms=4, mec="white", mew=0.4, zorder=3, label=row["label"])
    unit_axis(ax, "y", data.signal, data.x, log=log)
    if x_axis == "time":
        unit_axis(ax, "x", "time_s", xs, log=False)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True))
        ax.set_xlabel("sample index")
    if shown is not None:
        ax.set_xlabel(f"{ax.get_xlabel()} (first {shown} samples)")
    ax.set_title(_title(data, title_width))
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        dropped = [lab for lab in data.stops["label"] if lab not in styles]
        title = f"+{len(set(dropped))} more settings not drawn" if dropped else None
        ax.legend(handles, [shorten(lab, 40) for lab in labels], loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="x-small",
                  title=title, title_fontsize="x-small")


def _styles(labels: Sequence[str], max_series: int | None) -> tuple[dict[str, Any], list[str]]:
    kept, dropped = cap_series(_order_labels(labels), max_series)
    return series_styles(kept), dropped


def plot_trace_stops(
    data: TraceStops,
    *,
    ax: Axes | None = None,
    log: bool | Literal["auto"] = "auto",
    x_axis: Literal["index", "time"] = "index",
    legend: bool = True,
    columns: float = 1,
    max_series: int | None = 8,
) -> Axes:
    """Draw one run with a marker and a line at each criterion's stop.

    Parameters
    ----------
    data : TraceStops
        From `trace_stops_data`.
    ax : Axes, optional
        Where to draw; a new figure `columns` journal columns wide when None (shown at
        once in a Jupyter notebook).
    log : bool or "auto", default "auto"
        Logarithmic value axis; `"auto"` when the largest sample is more than 30 times the
        smallest (warmup spikes are often 10-100x the plateau).
    x_axis : {"index", "time"}
        Sample index or seconds from the run's start.
    legend : bool, default True
        Draw the legend, outside the axes on the right.
    columns : float, default 1
        Width of a new figure (1 or 2 columns, or inches).
    max_series : int or None, default 8
        Draw at most this many settings (one per criterion first); the legend says how many
        more there are. None draws all.

    Returns
    -------
    Axes
    """
    if x_axis not in ("index", "time"):
        raise ValueError(f"x_axis must be 'index' or 'time', got {x_axis!r}")
    created = ax is None
    with paper_style():
        ax = new_axes(ax, columns)
        styles, _ = _styles(list(data.stops["label"]), max_series)
        width_in = ax.figure.get_size_inches()[0]
        _draw(data, ax, log=log, x_axis=x_axis, styles=styles, legend=legend,
              title_width=max(20, int(width_in * 0.6 * 72 / 5)))
    if created:
        show_in_notebook(ax.figure)
    return ax


def figure_trace_grid(
    datas: Sequence[TraceStops],
    *,
    ncols: int | None = None,
    log: bool | Literal["auto"] = "auto",
    x_axis: Literal["index", "time"] = "index",
    columns: float = 2,
    panel_height: float = 1.6,
    max_series: int | None = 8,
) -> Figure:
    """Several runs as small multiples with one shared legend below them.

    Parameters
    ----------
    datas : sequence of TraceStops
        One per panel.
    ncols : int, optional
        Panels per row; default 1 for one run, 2 otherwise (3 for a figure wider than 8 in).
    log, x_axis
        As in `plot_trace_stops` (`"auto"` decides per panel).
    columns : float, default 2
        Figure width (1 or 2 journal columns, or inches); the width never grows with the
        number of runs or the length of their names (titles are shortened in the middle).
    panel_height : float, default 1.6
        Height of one row of panels, inches.
    max_series : int or None, default 8
        Draw the stops of at most this many settings (one per criterion first); the legend
        says how many more there are. None draws all.

    Returns
    -------
    Figure
    """
    if not datas:
        raise FigureDataError("figure_trace_grid needs at least one run")
    width, _ = figure_size(columns)
    if ncols is None:
        ncols = 1 if len(datas) == 1 else (3 if width > 8 else 2)
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    from matplotlib.figure import Figure

    ncols = min(ncols, len(datas))
    nrows = math.ceil(len(datas) / ncols)
    labels = sorted({lab for d in datas for lab in d.stops["label"]})
    styles, dropped = _styles(labels, max_series)
    title_width = max(16, int(width / ncols * 0.85 * 72 / 4.6))
    with paper_style():
        fig = Figure(figsize=(width, panel_height * nrows + 0.6))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, data in zip(axes.flat, datas, strict=False):
            _draw(data, ax, log=log, x_axis=x_axis, styles=styles, legend=False,
                  title_width=title_width)
        for ax in list(axes.flat)[len(datas):]:
            ax.set_visible(False)
        handles: dict[str, Any] = {}
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(lab, h)
        if handles:
            names = [shorten(lab, 40) for lab in handles]
            title = (f"+{len(dropped)} more settings not drawn (choose with criteria=)"
                     if dropped else None)
            fig.legend(list(handles.values()), names, loc="outside lower center",
                       ncols=legend_columns(names, width), fontsize="x-small", title=title,
                       title_fontsize="x-small")
    return fig


def plot_trace_grid(datas: Sequence[TraceStops], **kwargs: Any) -> Figure:
    """Deprecated alias of `figure_trace_grid` (`plot_*` renderers return an `Axes`;
    `figure_*` functions return a `Figure`)."""
    warnings.warn(
        "plot_trace_grid is deprecated: use figure_trace_grid (same arguments, returns the "
        "Figure)", DeprecationWarning, stacklevel=2,
    )
    return figure_trace_grid(datas, **kwargs)
