"""Publication figures of a replay: data steps, renderers, style and save helpers.

Each figure has a pure *data step* returning a DataFrame (or a small dataclass) that
the tests check numerically, and a *renderer* ``plot_x(data, *, ax=None, ...) -> Axes``
that draws on ``ax`` or on a new figure it shows at once in a Jupyter notebook. Functions
named ``figure_*`` (small multiples, whole paper figures) return a ``Figure``:

========================  ==========================  ===========================
figure                    data step                   renderer
========================  ==========================  ===========================
trace with stops          :func:`trace_stops_data`    :func:`plot_trace_stops`,
                                                      :func:`figure_trace_grid`
cost vs error, Pareto     :func:`cost_error_data`     :func:`plot_cost_error`
ECDF of WEE               :func:`wee_ecdf_data`       :func:`plot_wee_ecdf`
sensitivity heatmap       :func:`sensitivity_data`    :func:`plot_sensitivity`
criterion agreement       :func:`agreement_matrix`    :func:`plot_agreement`
bias CI forest plot       :func:`bias_forest_data`    :func:`plot_forest`
========================  ==========================  ===========================

Renderers draw inside :func:`paper_style` (the shipped ``paper.mplstyle``, applied in a
context manager: global rcParams are never changed) on figures created without
:mod:`matplotlib.pyplot`, so nothing accumulates in pyplot's figure manager.
:data:`PAPER_FIGURES` maps a name to ``f(results) -> Figure`` for every figure that
needs only a results frame (what ``llem-warmup figures`` and the demo draw);
:func:`save_all_figures` adds the trace panels when the traces are given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from llenergymeasure.analysis.figures._scores import with_scores
from llenergymeasure.analysis.figures._style import (
    FORMATS,
    OKABE_ITO,
    ONE_COLUMN_IN,
    TWO_COLUMN_IN,
    FigureDataError,
    cap_series,
    data_hash,
    empty_note,
    figure_size,
    paper_style,
    save_figure,
    series_styles,
    setting_labels,
    shorten,
    signal_unit,
    style_path,
    unit_axis,
)
from llenergymeasure.analysis.figures.agreement import agreement_matrix, plot_agreement
from llenergymeasure.analysis.figures.cost_error import (
    cost_error_data,
    fixed_count_curve,
    plot_cost_error,
)
from llenergymeasure.analysis.figures.ecdf import plot_wee_ecdf, wee_ecdf_data
from llenergymeasure.analysis.figures.forest import bias_forest_data, plot_forest
from llenergymeasure.analysis.figures.sensitivity import (
    grid_parameters,
    plot_sensitivity,
    sensitivity_data,
)
from llenergymeasure.analysis.figures.trace_stops import (
    TraceStops,
    figure_trace_grid,
    plot_trace_grid,
    plot_trace_stops,
    trace_stops_data,
)
from llenergymeasure.analysis.scoring import ScoringError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FORMATS",
    "OKABE_ITO",
    "ONE_COLUMN_IN",
    "PAPER_FIGURES",
    "TWO_COLUMN_IN",
    "FigureDataError",
    "TraceStops",
    "agreement_matrix",
    "best_settings",
    "bias_forest_data",
    "cap_series",
    "cost_error_data",
    "figure_agreement",
    "figure_bias_forest",
    "figure_cost_error",
    "figure_sensitivity",
    "figure_size",
    "figure_trace_grid",
    "figure_traces",
    "figure_wee_ecdf",
    "fixed_count_curve",
    "grid_parameters",
    "paper_style",
    "plot_agreement",
    "plot_cost_error",
    "plot_forest",
    "plot_sensitivity",
    "plot_trace_grid",
    "plot_trace_stops",
    "plot_wee_ecdf",
    "save_all_figures",
    "save_figure",
    "sensitivity_data",
    "series_styles",
    "setting_labels",
    "shorten",
    "signal_unit",
    "style_path",
    "trace_stops_data",
    "unit_axis",
    "wee_ecdf_data",
    "with_scores",
]

logger = logging.getLogger(__name__)


def _new_figure(columns: float = 1, aspect: float = 0.68) -> Figure:
    from matplotlib.figure import Figure

    with paper_style():
        return Figure(figsize=figure_size(columns, aspect))


def _one(draw: Callable[[Any], Any], columns: float, aspect: float) -> Figure:
    fig = _new_figure(columns, aspect)
    with paper_style():
        ax = fig.add_subplot()
        try:
            draw(ax)
        except FigureDataError as exc:
            empty_note(ax, str(exc))
    return fig


def figure_cost_error(results: pd.DataFrame, corpus: Any = None) -> Figure:
    """Cost (median warmup seconds) against error (median |time waste|), Pareto front,
    and the fixed-count curve on the same runs when `corpus` (the replayed runs) is given."""
    curve = None
    if corpus is not None:
        try:
            curve = fixed_count_curve(corpus)
        except ScoringError as exc:  # no reference start: no curve
            logger.info("no fixed-count curve: %s", exc)
    return _one(lambda ax: plot_cost_error(cost_error_data(results), ax=ax, logx=True,
                                           frontier=curve), 2, 0.5)


def best_settings(results: pd.DataFrame, *, max_settings: int = 10,
                  error: str = "abs_wee_s") -> pd.DataFrame:
    """The rows of ``results``, or of each criterion's best setting when there are many.

    When ``results`` holds more than ``max_settings`` settings, only the setting with
    the lowest median ``error`` of each criterion is kept (its first setting when no
    error is finite), so that curves stay readable.
    """
    if "spec" not in results.columns or results["spec"].nunique() <= max_settings:
        return results
    if "criterion" not in results.columns:
        return results
    scored = with_scores(results)
    med = scored.assign(_e=pd.to_numeric(scored[error], errors="coerce")).groupby(
        ["criterion", "spec"], sort=False)["_e"].median().reset_index()
    med["_rank"] = med["_e"].fillna(float("inf"))
    keep = med.sort_values("_rank", kind="mergesort").drop_duplicates("criterion")["spec"]
    return results[results["spec"].isin(set(keep))]


def figure_wee_ecdf(results: pd.DataFrame, *, tolerance_s: float = 5.0) -> Figure:
    """ECDF of the signed time waste per setting (each criterion's best setting when
    there are more than 10), ±``tolerance_s`` band shaded."""
    return _one(lambda ax: plot_wee_ecdf(wee_ecdf_data(best_settings(results)), ax=ax,
                                         tolerance_s=tolerance_s), 2, 0.5)


def figure_sensitivity(results: pd.DataFrame) -> Figure:
    """Median |time waste| over the largest two-parameter grid in ``results``."""
    return _one(lambda ax: plot_sensitivity(sensitivity_data(results), ax=ax), 1, 0.8)


def figure_agreement(results: pd.DataFrame) -> Figure:
    """Fraction of runs whose stops lie within 10 samples, every pair of settings."""
    n = int(results["spec"].nunique()) if "spec" in results.columns else 1
    cols = 1 if n <= 10 else 2
    return _one(lambda ax: plot_agreement(agreement_matrix(results), ax=ax), cols, 0.9)


def figure_bias_forest(results: pd.DataFrame) -> Figure:
    """Mean relative bias of the post-stop mean per setting, 95% bootstrap CI over runs."""
    n = int(results["spec"].nunique()) if "spec" in results.columns else 1
    return _one(lambda ax: plot_forest(bias_forest_data(results), ax=ax), 1,
                max(0.5, min(2.5, 0.12 + 0.075 * n)))


#: Figures drawn from a results frame alone: name -> ``f(results) -> Figure``.
#: A figure whose data is absent (no reference starts, no grid) shows a note saying so.
PAPER_FIGURES: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "cost_error": figure_cost_error,
    "wee_ecdf": figure_wee_ecdf,
    "sensitivity": figure_sensitivity,
    "agreement": figure_agreement,
    "bias_forest": figure_bias_forest,
}


def _pick_runs(results: pd.DataFrame, max_runs: int) -> list[tuple[str, str]]:
    """One run per trace first (referenced runs first), then more, up to ``max_runs``."""
    keys = results[["trace_id", "run_id"]].astype(str).drop_duplicates()
    if "reference_start" in results.columns:
        ref = results.groupby(["trace_id", "run_id"], sort=False)["reference_start"].first()
        r = pd.to_numeric(ref, errors="coerce")
        has = {(str(a), str(b)) for (a, b), v in r.items() if pd.notna(v) and v >= 0}
    else:
        has = set()
    pairs = [tuple(p) for p in keys.itertuples(index=False)]
    pairs.sort(key=lambda p: (p not in has))
    firsts, rest, seen = [], [], set()
    for p in pairs:
        (rest if p[0] in seen else firsts).append(p)
        seen.add(p[0])
    return (firsts + rest)[:max_runs]


def figure_traces(
    results: pd.DataFrame,
    traces: Any,
    *,
    max_runs: int = 6,
    log: bool | str = "auto",
    runs: Sequence[tuple[str, str]] | None = None,
    max_series: int | None = 8,
) -> Figure:
    """Small multiples of up to ``max_runs`` runs with the stops of up to ``max_series``
    settings marked (one per criterion first; the legend counts the others)."""
    chosen = list(runs) if runs is not None else _pick_runs(results, max_runs)
    datas = [trace_stops_data(results, traces, t, r) for t, r in chosen]
    return figure_trace_grid(datas, log=log, max_series=max_series)  # type: ignore[arg-type]


def save_all_figures(
    results_df: pd.DataFrame,
    traces: Any = None,
    out_dir: str | Path = "figures",
    formats: Sequence[str] = ("pdf", "png"),
    *,
    score: bool = True,
    tolerance_s: float = 5.0,
    show_progress: bool = False,
) -> list[Path]:
    """Draw and save every paper figure of a results frame.

    Parameters
    ----------
    results_df : DataFrame
        Replay or scored rows.
    traces : Trace, sequence of Trace or mapping, optional
        The replayed traces. When given, the frame is scored
        (:func:`~llenergymeasure.analysis.scoring.score`) unless it already is, and the
        ``traces`` small multiples are drawn too.
    out_dir : str or Path
        Folder for the files (created).
    formats : sequence of {"pdf", "svg", "png"}, default ("pdf", "png")
        Formats of each figure.
    score : bool, default True
        Score the frame against ``traces`` when it lacks the bias CI columns.
    tolerance_s : float, default 5.0
        Half-width of the "exact" time-waste band, seconds (scoring and the ECDF band).
    show_progress : bool, default False
        A progress bar over the figures (on a terminal).

    Raises
    ------
    FigureDataError
        When ``results_df`` is not a replay or scored frame (it lacks ``trace_id``,
        ``run_id``, ``spec`` or ``stop_index``).

    Returns
    -------
    list of Path
        Every file written, figure by figure in :data:`PAPER_FIGURES` order, then
        ``traces``.
    """
    from llenergymeasure.analysis.figures._style import require_columns

    require_columns(results_df, "trace_id", "run_id", "spec", "stop_index")
    out = Path(out_dir)
    frame = results_df
    if traces is not None:
        from llenergymeasure.analysis.corpus import Corpus

        traces = Corpus.build(traces)  # built once for every figure
    if traces is not None and score and "bias_ci_low" not in frame.columns:
        from llenergymeasure.analysis.scoring import score as score_frame

        frame = score_frame(frame, traces, tolerance_s=tolerance_s)
    desc = f"data sha256:{data_hash(frame)}"
    written: list[Path] = []
    items: list[tuple[str, Callable[[], Figure]]] = [
        (name, (lambda f=func: f(frame))) for name, func in PAPER_FIGURES.items()
    ]
    if traces is not None:  # the cost-error figure gains the fixed-count curve
        items = [(name, (lambda: figure_cost_error(frame, traces)) if name == "cost_error"
                  else make) for name, make in items]
    items = [(name, (lambda: figure_wee_ecdf(frame, tolerance_s=tolerance_s))
              if name == "wee_ecdf" else make) for name, make in items]
    if traces is not None:
        items.append(("traces", lambda: figure_traces(frame, traces)))
    from tqdm.auto import tqdm

    for name, make in tqdm(items, desc="figures", unit="figure", leave=False,
                           disable=None if show_progress else True):
        fig = make()
        written.extend(save_figure(fig, out / name, formats, description=desc))
        logger.info("figure %s -> %s", name, out)
    return written


