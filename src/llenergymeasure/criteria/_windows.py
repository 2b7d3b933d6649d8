"""Shared machinery for criteria that test the trailing window of ``w`` samples.

A *windowed* criterion computes its statistic from the last ``w`` values only.
Subclasses implement :meth:`WindowedCriterion._window_stats`, a vectorised
function of a C-contiguous ``(m, w)`` array of windows (one window per row).
The online form keeps a ring buffer and calls it on a single ``(1, w)`` row;
the offline form calls it on contiguous chunks of the sliding windows. Both
paths therefore run the same numpy reductions on rows laid out the same way,
so online and offline verdicts agree.
"""

from __future__ import annotations

import abc

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from llenergymeasure.criteria.base import Criterion, Evaluation

__all__ = ["WindowedCriterion", "iter_window_chunks"]

#: Rows of the (m, w) window matrix processed at once by the offline form.
_CHUNK_ELEMENTS = 1 << 20


def iter_window_chunks(x: NDArray[np.float64], w: int, first: int):
    """Yield ``(start, windows)`` for the windows ending at ``first, first + 1, ...``.

    ``windows`` is a C-contiguous ``(m, w)`` copy whose row ``j`` holds
    ``x[start + j - w + 1 : start + j + 1]``; chunks are sized to bound memory.
    """
    n = x.shape[0]
    if n <= first:
        return
    view = sliding_window_view(x, w)  # row r ends at index r + w - 1
    rows = max(1, _CHUNK_ELEMENTS // w)
    r0 = first - (w - 1)
    while r0 < view.shape[0]:
        r1 = min(r0 + rows, view.shape[0])
        yield r0 + w - 1, np.ascontiguousarray(view[r0:r1])
        r0 = r1


class WindowedCriterion(Criterion):
    """Base of the criteria whose statistic depends only on the last ``w`` samples."""

    @abc.abstractmethod
    def _window_len(self) -> int:
        """Number of trailing samples the statistic uses."""

    def _first_index(self) -> int:
        """0-based index of the first sample after which the statistic is defined."""
        return self._window_len() - 1

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass (its first defined index + 1)."""
        return self._first_index() + 1

    @abc.abstractmethod
    def _window_stats(
        self, windows: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Statistic and verdict of every row of a C-contiguous ``(m, w)`` array."""

    def _reset(self) -> None:
        w = self._window_len()
        self._buf = np.zeros(w)
        self._count = 0

    def _update(self, x: float, t: float | None) -> None:
        w = self._buf.shape[0]
        self._buf[self._count % w] = x
        self._count += 1
        if self._count - 1 < self._first_index():
            return
        j = self._count % w
        row = np.concatenate([self._buf[j:], self._buf[:j]])[None, :]
        stat, passed = self._window_stats(row)
        self.statistic_ = float(stat[0])
        self.passed_ = bool(passed[0])

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        n = x.shape[0]
        stat = np.full(n, np.nan)
        passed = np.zeros(n, dtype=bool)
        for start, windows in iter_window_chunks(x, self._window_len(), self._first_index()):
            s, p = self._window_stats(windows)
            stat[start : start + s.shape[0]] = s
            passed[start : start + s.shape[0]] = p
        return Evaluation(stat, passed)
