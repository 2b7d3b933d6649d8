"""Per-row scores the figures need, read from a scored frame or derived from replay rows.

A frame from `llenergymeasure.analysis.scoring.score` already has `wee`, `wee_s`,
`abs_wee_s` and `relative_bias`. For a bare replay frame, `with_scores` fills them in
with `llenergymeasure.analysis.scoring.row_scores`, the same definitions `score` uses
(rows without a stop or without a reference get NaN).
"""

from __future__ import annotations

import pandas as pd

from llenergymeasure.analysis.figures._style import FigureDataError
from llenergymeasure.analysis.scoring import ScoringError, row_scores

__all__ = ["with_scores"]

_SCORES = ("wee", "wee_s", "abs_wee_s", "relative_bias")


def with_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with `wee`, `wee_s`, `abs_wee_s` and `relative_bias`.

    Columns already present are kept as they are (a scored frame is returned
    unchanged but for the copy).

    Raises
    ------
    FigureDataError
        When a missing score cannot be derived because a replay column is missing.
    """
    out = frame.copy()
    missing = [c for c in _SCORES if c not in out.columns]
    if not missing:
        return out
    try:
        derived = row_scores(out)
    except ScoringError as exc:
        raise FigureDataError(str(exc)) from exc
    for col in missing:
        out[col] = derived[col]
    return out
