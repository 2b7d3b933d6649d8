r"""Figure 5: pairwise agreement between criterion settings on where warmup ends.

Two measures over the runs (``trace_id``, ``run_id``) both settings were replayed on:

``"tolerance"`` (default)
    The fraction of runs on which the two settings *agree*:

    .. math::

        A_{ab} = \frac{1}{n} \sum_{j=1}^{n}
        \begin{cases}
        1 & \text{both stopped and } |s_{aj} - s_{bj}| \le \delta \\
        1 & \text{neither stopped} \\
        0 & \text{otherwise,}
        \end{cases}

    with :math:`s` the stop index (``unit="samples"``) or the stop time in seconds
    (``unit="seconds"``) and :math:`\delta` the tolerance. Not stopping is a verdict
    ("no steady state seen"), so two settings that both decline to stop agree.
    :math:`A` is symmetric with a unit diagonal.
``"spearman"``
    Spearman's rank correlation :math:`\rho_{ab}` of the stop positions over the runs
    both settings stopped on (``scipy.stats.spearmanr``); NaN with fewer than three
    such runs or when either side is constant.

References
----------
.. [1] C. Spearman, "The proof and measurement of association between two things",
   American Journal of Psychology 15(1):72-101, 1904.
.. [2] J. M. Bland and D. G. Altman, "Statistical methods for assessing agreement
   between two methods of clinical measurement", The Lancet 327(8476):307-310, 1986
   (agreement within a tolerance rather than correlation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from llenergymeasure.analysis.figures._style import (
    empty_note,
    finite,
    new_axes,
    paper_style,
    require_columns,
    setting_labels,
    shows_in_notebook,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["agreement_matrix", "plot_agreement"]


def agreement_matrix(
    results: pd.DataFrame,
    *,
    method: Literal["tolerance", "spearman"] = "tolerance",
    tolerance: float = 10,
    unit: Literal["samples", "seconds"] = "samples",
) -> pd.DataFrame:
    """Pairwise agreement of the stops of every criterion setting (see the module notes).

    Parameters
    ----------
    results : DataFrame
        Replay rows: ``trace_id``, ``run_id``, ``spec``, ``stop_index`` (and
        ``stop_time_s`` for ``unit="seconds"``).
    method : {"tolerance", "spearman"}
        Fraction of runs within ``tolerance`` (and joint non-stops), or rank correlation.
    tolerance : float, default 10
        :math:`\\delta`, in ``unit``; ignored by ``"spearman"``.
    unit : {"samples", "seconds"}
        Compare stop indices or stop times.

    Returns
    -------
    DataFrame
        Square, symmetric, indexed and labelled by setting label (in the frame's
        order). ``attrs["n_runs"]`` holds the matrix of runs compared per pair.
    """
    if method not in ("tolerance", "spearman"):
        raise ValueError(f"method must be 'tolerance' or 'spearman', got {method!r}")
    if unit not in ("samples", "seconds"):
        raise ValueError(f"unit must be 'samples' or 'seconds', got {unit!r}")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    col = "stop_index" if unit == "samples" else "stop_time_s"
    require_columns(results, "trace_id", "run_id", "spec", col)
    frame = results.assign(label=setting_labels(results), _s=finite(results[col]))
    wide = frame.pivot_table(index=["trace_id", "run_id"], columns="label", values="_s",
                             aggfunc="first", dropna=False, sort=False)
    present = frame.pivot_table(index=["trace_id", "run_id"], columns="label",
                                values="spec", aggfunc="size", sort=False).notna()
    labels = list(pd.unique(frame["label"]))
    wide = wide.reindex(columns=labels)
    present = present.reindex(index=wide.index, columns=labels, fill_value=False)
    s = wide.to_numpy(dtype=np.float64)
    p = present.to_numpy(dtype=bool)
    m = len(labels)
    out = np.full((m, m), np.nan)
    n_runs = np.zeros((m, m), dtype=np.int64)
    for a in range(m):
        for b in range(a, m):
            both = p[:, a] & p[:, b]
            sa, sb = s[both, a], s[both, b]
            fa, fb = np.isfinite(sa), np.isfinite(sb)
            if method == "tolerance":
                n = int(both.sum())
                agree = (fa & fb & (np.abs(sa - sb) <= tolerance)) | (~fa & ~fb)
                val = float(agree.mean()) if n else np.nan
            else:
                joint = fa & fb
                n = int(joint.sum())
                if a == b:
                    val = 1.0 if n >= 3 and np.ptp(sa[joint]) > 0 else np.nan
                elif n < 3 or np.ptp(sa[joint]) == 0 or np.ptp(sb[joint]) == 0:
                    val = np.nan
                else:
                    val = float(stats.spearmanr(sa[joint], sb[joint]).statistic)
            out[a, b] = out[b, a] = val
            n_runs[a, b] = n_runs[b, a] = n
    mat = pd.DataFrame(out, index=pd.Index(labels, name="setting"),
                       columns=pd.Index(labels, name="setting"))
    mat.attrs.update(method=method, tolerance=tolerance, unit=unit,
                     n_runs=pd.DataFrame(n_runs, index=labels, columns=labels))
    return mat


@shows_in_notebook
def plot_agreement(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    annotate: bool | None = None,
    cmap: str | None = None,
    columns: float = 1,
) -> Axes:
    """Draw :func:`agreement_matrix` as a heatmap (lower triangle and diagonal).

    Parameters
    ----------
    data : DataFrame
        From :func:`agreement_matrix`.
    ax : Axes, optional
        Where to draw; a new figure when None.
    annotate : bool, optional
        Write each cell's value; by default when there are at most 12 settings.
    cmap : str, optional
        ``"cividis"`` for fractions (0..1), ``"PuOr"`` (diverging, colour-blind safe)
        for correlations (-1..1) by default.
    columns : float, default 1
        Width of a new figure.

    Returns
    -------
    Axes
    """
    method = data.attrs.get("method", "tolerance")
    with paper_style():
        ax = new_axes(ax, columns, aspect=0.9)
        vals = data.to_numpy(dtype=np.float64)
        m = vals.shape[0]
        if m == 0 or not np.isfinite(vals).any():
            return empty_note(ax, "no pair of settings shares a run")
        shown = np.where(np.tril(np.ones((m, m), dtype=bool)), vals, np.nan)
        corr = method == "spearman"
        im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap or ("PuOr" if corr else "cividis"),
                       vmin=-1.0 if corr else 0.0, vmax=1.0, interpolation="nearest")
        labels = [str(v) for v in data.index]
        ax.set_xticks(range(m), labels, rotation=60, ha="right", rotation_mode="anchor",
                      fontsize="xx-small")
        ax.set_yticks(range(m), labels, fontsize="xx-small")
        ax.spines[:].set_visible(False)
        if annotate is None:
            annotate = m <= 12
        if annotate:
            for (i, j), v in np.ndenumerate(shown):
                if np.isfinite(v):
                    dark = (v < 0.5) if not corr else abs(v) > 0.6
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5,
                            color="white" if dark else "black")
        if corr:
            label = "Spearman ρ of stop indices"
        else:
            unit = data.attrs.get("unit", "samples")
            tol = data.attrs.get("tolerance", "")
            label = f"fraction of runs within ±{tol:g} {unit}" if tol != "" else "agreement"
        ax.figure.colorbar(im, ax=ax, label=label, shrink=0.85)
    return ax
