"""Figure 4: sensitivity heatmap of one criterion over a two-parameter grid.

:func:`sensitivity_data` pivots the runs of one criterion's settings into a table
indexed by one parameter (rows) and another (columns), each cell the aggregate (median
by default) of a per-run metric over the runs of that setting, e.g. the median
absolute time waste of ``rolling_cv`` over ``threshold x window``. Other parameters
must be constant, or be fixed with ``fixed=``. :func:`plot_sensitivity` draws the table
as an annotated heatmap with the colour-blind-safe ``cividis`` map.

References
----------
.. [1] A. Saltelli et al., *Global Sensitivity Analysis: The Primer*, Wiley, 2008
   (one-at-a-time and grid designs).
.. [2] J. R. Nuñez, C. R. Anderton and R. S. Renslow, "Optimizing colormaps with
   consideration for color vision deficiency to enable accurate interpretation of
   scientific data", PLoS ONE 13(7):e0199239, 2018 (cividis).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from llenergymeasure.analysis.figures._scores import with_scores
from llenergymeasure.analysis.figures._style import (
    FigureDataError,
    empty_note,
    finite,
    new_axes,
    paper_style,
    require_columns,
    shows_in_notebook,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["grid_parameters", "plot_sensitivity", "sensitivity_data"]


def _pcol(name: str) -> str:
    return name if name.startswith("param_") else f"param_{name}"


def grid_parameters(results: pd.DataFrame, criterion: str) -> list[str]:
    """Parameters (without ``param_``) that take more than one value for ``criterion``."""
    rows = results[results["criterion"] == criterion]
    cols = [c for c in rows.columns if c.startswith("param_") and c != "param_signal"]
    specs = rows.drop_duplicates("spec")
    return [c[len("param_"):] for c in cols if specs[c].nunique(dropna=True) > 1]


def _largest_grid(results: pd.DataFrame) -> tuple[str, list[str]] | None:
    best: tuple[int, int, str, list[str]] | None = None
    for crit in pd.unique(results["criterion"]):
        params = grid_parameters(results, crit)
        if not params:
            continue
        n = results.loc[results["criterion"] == crit, "spec"].nunique()
        key = (min(len(params), 2), n)
        if best is None or key > best[:2]:
            best = (*key, str(crit), params)
    return None if best is None else (best[2], best[3])


def sensitivity_data(
    results: pd.DataFrame,
    criterion: str | None = None,
    *,
    x: str | None = None,
    y: str | None = None,
    value: str = "abs_wee_s",
    agg: Literal["median", "mean"] = "median",
    fixed: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Pivot a criterion's grid into a ``y x x`` table of an aggregated per-run metric.

    Parameters
    ----------
    results : DataFrame
        Replay or scored rows with ``criterion`` and ``param_*`` columns.
    criterion : str, optional
        The criterion; when None, the one with the most settings among those with a
        two-parameter grid (else a one-parameter grid).
    x, y : str, optional
        Parameters on the columns and rows (with or without the ``param_`` prefix).
        Default: the varying parameters, in column order (``y`` the first, ``x`` the
        second); with one varying parameter the table has one row.
    value : str, default "abs_wee_s"
        Per-run metric (scores derived when missing; ``"abs_relative_bias"`` and
        ``"stopped"`` accepted).
    agg : {"median", "mean"}
        How the runs of a cell are combined (NaN skipped).
    fixed : mapping, optional
        Values of other varying parameters to hold fixed, ``{"ddof": 1}``.

    Returns
    -------
    DataFrame
        Index: ``y`` values (a single ``""`` row when there is no ``y``), columns:
        ``x`` values, both sorted; NaN where no run of the cell has a finite value.
        ``attrs`` holds ``criterion``, ``x``, ``y``, ``value``, ``agg`` and ``counts``
        (the number of runs per cell, same shape).

    Raises
    ------
    FigureDataError
        No criterion with a grid, an unknown parameter, or another parameter varying
        and not fixed.
    """
    if agg not in ("median", "mean"):
        raise ValueError(f"agg must be 'median' or 'mean', got {agg!r}")
    require_columns(results, "criterion")
    if criterion is None:
        found = _largest_grid(results)
        if found is None:
            raise FigureDataError("no criterion in the results has a parameter grid")
        criterion = found[0]
    frame = with_scores(results[results["criterion"] == criterion])
    if frame.empty:
        known = sorted(pd.unique(results["criterion"]).astype(str))
        raise FigureDataError(f"no rows for criterion {criterion!r} (criteria: {known})")
    frame["abs_relative_bias"] = np.abs(finite(frame["relative_bias"]))
    require_columns(frame, value)
    for key, val in (fixed or {}).items():
        col = _pcol(key)
        if col not in frame.columns:
            raise FigureDataError(f"criterion {criterion!r} has no parameter {key!r}")
        frame = frame[frame[col] == val]
        if frame.empty:
            raise FigureDataError(f"no setting of {criterion!r} has {key}={val!r}")
    varying = grid_parameters(frame, criterion)
    if y is None and x is None:
        if not varying:
            raise FigureDataError(f"criterion {criterion!r} has a single setting: no grid")
        y, x = (varying[0], varying[1]) if len(varying) >= 2 else (None, varying[0])
    elif x is None:
        raise FigureDataError("give x (the column parameter) when y is given")
    axes = [a for a in (y, x) if a is not None]
    for a in axes:
        if _pcol(a) not in frame.columns:
            raise FigureDataError(f"criterion {criterion!r} has no parameter {a!r}")
    rest = [p for p in varying if p not in {a[len("param_"):] if a.startswith("param_")
                                             else a for a in axes}]
    if rest:
        raise FigureDataError(
            f"parameter(s) {rest} of {criterion!r} also vary; pass fixed={{...}} for them"
        )
    xc = _pcol(x)
    yc = _pcol(y) if y is not None else None
    frame = frame.assign(_v=finite(frame[value]), _y="" if yc is None else frame[yc])
    g = frame.groupby(["_y", xc], sort=True)
    table = g["_v"].agg(agg).unstack(xc)
    counts = g["_v"].size().unstack(xc)
    table.index.name = y
    table.columns.name = x
    table.attrs.update(criterion=criterion, x=x, y=y, value=value, agg=agg, counts=counts)
    return table


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


#: Readable names of the score columns a heatmap can show.
_VALUE_LABELS = {
    "abs_wee_s": "|time waste| (s)",
    "wee_s": "time waste (s)",
    "wee": "WEE (samples)",
    "abs_relative_bias": "|relative bias|",
    "relative_bias": "relative bias",
    "seconds_used": "warmup time (s)",
    "samples_used": "warmup samples",
}


@shows_in_notebook
def plot_sensitivity(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    annotate: bool = True,
    cmap: str = "cividis",
    log_color: bool = False,
    colorbar_label: str | None = None,
    columns: float = 1,
) -> Axes:
    """Draw :func:`sensitivity_data` as an annotated heatmap.

    Parameters
    ----------
    data : DataFrame
        From :func:`sensitivity_data`.
    ax : Axes, optional
        Where to draw; a new figure when None.
    annotate : bool, default True
        Write each cell's value.
    cmap : str, default "cividis"
        Colour map (keep it perceptually uniform and colour-blind safe).
    log_color : bool, default False
        Logarithmic colour scale (positive values only).
    colorbar_label : str, optional
        Defaults to ``"<agg> <value>"``.
    columns : float, default 1
        Width of a new figure.

    Returns
    -------
    Axes
    """
    from matplotlib.colors import LogNorm

    with paper_style():
        ax = new_axes(ax, columns, aspect=0.75)
        vals = data.to_numpy(dtype=np.float64)
        if not np.isfinite(vals).any():
            return empty_note(ax, "no cell of the grid has a finite value")
        norm = None
        if log_color:
            pos = vals[np.isfinite(vals) & (vals > 0)]
            if pos.size:
                norm = LogNorm(vmin=float(pos.min()), vmax=float(pos.max()))
        im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, norm=norm, aspect="auto",
                       origin="lower", interpolation="nearest")
        ax.set_xticks(range(vals.shape[1]), [_fmt(v) for v in data.columns])
        ax.set_yticks(range(vals.shape[0]), [_fmt(v) for v in data.index])
        ax.spines[:].set_visible(False)
        if annotate:
            lo, hi = im.norm.vmin, im.norm.vmax
            for (i, j), v in np.ndenumerate(vals):
                if not np.isfinite(v):
                    ax.text(j, i, "–", ha="center", va="center", fontsize="xx-small")
                    continue
                frac = float(im.norm(v)) if hi > lo else 0.5
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize="xx-small",
                        color="white" if frac < 0.5 else "black")
        attrs = data.attrs
        ax.set_xlabel(str(attrs.get("x") or data.columns.name or ""))
        ax.set_ylabel(str(attrs.get("y") or data.index.name or ""))
        if attrs.get("criterion"):
            ax.set_title(str(attrs["criterion"]))
        value = _VALUE_LABELS.get(str(attrs.get("value", "")), str(attrs.get("value", "")))
        label = colorbar_label or f"{attrs.get('agg', '')} {value}".strip()
        ax.figure.colorbar(im, ax=ax, label=label, shrink=0.9)
    return ax
