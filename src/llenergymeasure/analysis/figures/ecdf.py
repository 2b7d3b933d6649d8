r"""Figure 3: empirical CDF of the warmup estimation error (WEE) per criterion.

For one criterion setting with runs :math:`j = 1..n` that have a reference start, the
curve is

.. math::

    \hat F(w) = \frac{1}{n} \#\{ j : \mathrm{WEE}_j \le w \},

with runs that never stopped counted in :math:`n` but never below any :math:`w` (their
error is :math:`+\infty`), so a curve that tops out below 1 shows the share of runs the
setting failed to stop. Negative WEE means a premature stop. The error is the signed
time waste :math:`t_k - t_{r-1}` in seconds by default, or ``wee`` in samples.

References
----------
.. [1] L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
   assessment of steady state performance in Java software: are we there yet?",
   Empirical Software Engineering 28(1):13, 2023 (WEE and the ±5 s tolerance band).
.. [2] A. W. van der Vaart, *Asymptotic Statistics*, Cambridge University Press, 1998,
   ch. 19 (the empirical distribution function).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from llenergymeasure.analysis.figures._scores import with_scores
from llenergymeasure.analysis.figures._style import (
    empty_note,
    finite,
    new_axes,
    paper_style,
    place_legend,
    require_columns,
    series_styles,
    setting_labels,
    shows_in_notebook,
    si_formatter,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_wee_ecdf", "wee_ecdf_data"]

_UNSET: Any = object()


def wee_ecdf_data(
    results: pd.DataFrame,
    *,
    value: str = "wee_s",
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """ECDF points of the WEE of each criterion setting.

    Parameters
    ----------
    results : DataFrame
        Replay or scored rows (scores derived when missing).
    value : {"wee_s", "wee", "abs_wee_s"} or another per-run column
        The error; ``wee_s`` is the signed time waste in seconds, ``wee`` in samples.
    labels : sequence of str, optional
        Keep only these setting labels (see
        :func:`~llenergymeasure.analysis.figures.setting_labels`).

    Returns
    -------
    DataFrame
        One row per stopped run with a reference: ``label``, ``value`` (sorted within
        each label), ``ecdf`` (:math:`i / n`, ``n`` counting every referenced run of
        the label, stopped or not), ``n`` and ``n_never_stopped``. Labels with
        referenced runs but no stop have no rows; their ``n`` is in
        ``DataFrame.attrs["n_by_label"]``.
    """
    frame = with_scores(results)
    require_columns(frame, value)
    frame = frame.assign(label=setting_labels(frame))
    require_columns(frame, "reference_start")
    ref = finite(frame["reference_start"])
    frame = frame[np.isfinite(ref) & (ref >= 0)]
    if labels is not None:
        frame = frame[frame["label"].isin(list(labels))]
    parts = []
    n_by_label: dict[str, int] = {}
    for lab, g in frame.groupby("label", sort=False):
        v = finite(g[value])
        n = int(v.size)
        n_by_label[str(lab)] = n
        fin = np.sort(v[np.isfinite(v)])
        parts.append(pd.DataFrame({
            "label": str(lab),
            "value": fin,
            "ecdf": np.arange(1, fin.size + 1, dtype=np.float64) / n,
            "n": n,
            "n_never_stopped": n - fin.size,
        }))
    cols = ["label", "value", "ecdf", "n", "n_never_stopped"]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    out.attrs["n_by_label"] = n_by_label
    out.attrs["value"] = value
    return out


def _symlog_ticks(ax: Axes, lin: float, top: float, *, seconds: bool) -> None:
    """Ticks at 0, ±lin and the powers of ten beyond 2 lin (no crowding around 0), written
    with SI prefixes when the values are seconds."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = [0.0, lin, -lin]
    k = int(np.ceil(np.log10(3 * lin))) if lin > 0 else 0  # no label crowding ±lin
    while 10.0**k <= top * 1.0001:
        ticks += [10.0**k, -(10.0**k)]
        k += 1
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_minor_locator(NullLocator())
    if seconds:
        ax.xaxis.set_major_formatter(si_formatter("s", per_tick=True))


@shows_in_notebook
def plot_wee_ecdf(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    tolerance_s: float | None = 5.0,
    symlog: bool = True,
    xlabel: str | None = None,
    columns: float = 1,
    tolerance: float | object | None = _UNSET,
) -> Axes:
    """Step curves of :func:`wee_ecdf_data`, with the tolerance band shaded.

    Parameters
    ----------
    data : DataFrame
        From :func:`wee_ecdf_data`.
    ax : Axes, optional
        Where to draw; a new figure when None.
    tolerance_s : float or None, default 5.0
        Half-width of the "exact" band around 0, in the plotted unit (Traini et al.'s
        5 s); None for none.
    symlog : bool, default True
        Symmetric-log x axis, linear within ±``tolerance``, when the errors span more
        than 20 tolerances (milliseconds to minutes, both signs); linear otherwise.
    xlabel : str, optional
        Axis label; from the plotted column when None.
    columns : float, default 1
        Width of a new figure.
    tolerance : float or None
        Deprecated name of `tolerance_s`.

    Returns
    -------
    Axes
    """
    if tolerance is not _UNSET:
        warnings.warn("plot_wee_ecdf(tolerance=...) is deprecated: use tolerance_s=",
                      DeprecationWarning, stacklevel=3)
        tolerance_s = tolerance  # type: ignore[assignment]
    tolerance = tolerance_s
    with paper_style():
        ax = new_axes(ax, columns)
        if data.empty:
            return empty_note(ax, "no stopped run with a reference start")
        styles = series_styles(pd.unique(data["label"]))
        for lab, g in data.groupby("label", sort=False):
            st = styles[lab]
            xs = np.concatenate(([g["value"].iloc[0]], g["value"].to_numpy()))
            ys = np.concatenate(([0.0], g["ecdf"].to_numpy()))
            ax.step(xs, ys, where="post", color=st["color"], ls=st["linestyle"], lw=0.9,
                    label=str(lab))
        unit = " s" if str(data.attrs.get("value", "wee_s")).endswith("_s") else ""
        if tolerance is not None:
            ax.axvspan(-tolerance, tolerance, color="0.9", lw=0, zorder=0,
                       label=f"±{tolerance:g}{unit} band")
        ax.axvline(0.0, color="k", lw=0.5)
        if symlog:
            v = finite(data["value"])
            small = np.abs(v[v != 0])
            lin = float(tolerance) if tolerance else (float(np.min(small)) if small.size
                                                      else 1.0)
            if small.size and float(np.max(small)) > 20.0 * lin:
                ax.set_xscale("symlog", linthresh=lin)
                _symlog_ticks(ax, lin, float(np.max(small)),
                              seconds=data.attrs.get("value", "wee_s").endswith("_s"))
        ax.set_ylim(0.0, 1.02)
        value = data.attrs.get("value", "wee_s")
        default = {"wee_s": "time waste (s)", "wee": "WEE (samples)",
                   "abs_wee_s": "|time waste| (s)"}.get(value, value)
        ax.set_xlabel(xlabel or default)
        ax.set_ylabel("fraction of runs")
        place_legend(ax, loc="lower right")
    return ax
