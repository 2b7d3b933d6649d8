"""Per-row scores the figures need, read from a scored frame or derived from replay rows.

A frame from :func:`llenergymeasure.analysis.scoring.score` already has ``wee``,
``wee_s``, ``abs_wee_s`` and ``relative_bias``. A bare replay frame
(:func:`llenergymeasure.analysis.replay.replay`) has what they are made of, and
:func:`with_scores` fills them in with the definitions of :mod:`~.scoring`:

.. math::

    \\mathrm{WEE} = (k + 1) - r, \\qquad
    \\mathrm{waste} = t_k - t_{r-1}, \\qquad
    \\mathrm{bias} = \\bar x_{k+1:} / \\bar x_{r:} - 1,

with ``k = stop_index``, ``r = reference_start``, ``t_k = stop_time_s``,
``t_{r-1} = reference_start_s``, and the two means ``post_stop_mean`` and
``reference_mean``. Rows without a stop or without a reference (``r`` null or -1)
get NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llenergymeasure.analysis.figures._style import FigureDataError, finite

__all__ = ["with_scores"]


def with_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with ``wee``, ``wee_s``, ``abs_wee_s`` and ``relative_bias``.

    Columns already present are kept as they are (a scored frame is returned
    unchanged but for the copy).

    Raises
    ------
    FigureDataError
        When a missing score cannot be derived because a replay column is missing.
    """
    out = frame.copy()
    stop = finite(out["stop_index"]) if "stop_index" in out.columns else None
    ref = finite(out["reference_start"]) if "reference_start" in out.columns else None

    def need(*cols: str) -> None:
        missing = [c for c in cols if c not in out.columns]
        if missing:
            raise FigureDataError(
                f"the frame has no {missing[0]!r} column, needed to derive the scores "
                "(pass a replay or scored frame)"
            )

    has_ref = None
    if ref is not None:
        has_ref = np.isfinite(ref) & (ref >= 0)
    if "wee" not in out.columns:
        need("stop_index", "reference_start")
        ok = has_ref & np.isfinite(stop)
        wee = np.where(ok, stop + 1 - ref, np.nan)
        out["wee"] = pd.array(np.where(ok, wee, 0).astype(np.int64), dtype="Int64")
        out.loc[~ok, "wee"] = pd.NA
    if "wee_s" not in out.columns:
        need("stop_time_s", "reference_start_s", "reference_start")
        t = finite(out["stop_time_s"])
        r0 = finite(out["reference_start_s"])
        out["wee_s"] = np.where(has_ref & np.isfinite(t), t - r0, np.nan)
    if "abs_wee_s" not in out.columns:
        out["abs_wee_s"] = np.abs(finite(out["wee_s"]))
    if "relative_bias" not in out.columns:
        need("post_stop_mean", "reference_mean", "reference_start")
        post = finite(out["post_stop_mean"])
        mean = finite(out["reference_mean"])
        with np.errstate(invalid="ignore", divide="ignore"):
            out["relative_bias"] = np.where(has_ref, post / mean - 1.0, np.nan)
    return out
