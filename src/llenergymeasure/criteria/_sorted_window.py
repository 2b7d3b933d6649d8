"""Rolling order statistics, online and offline, with identical arithmetic.

Quantiles follow NumPy's default ``method="linear"`` (Hyndman & Fan type 7):
for a sorted sample :math:`s_0 \\le \\dots \\le s_{m-1}` and probability ``q``,

.. math::

    h = (m - 1) q, \\quad j = \\lfloor h \\rfloor, \\quad g = h - j, \\qquad
    Q(q) = s_j + g (s_{j+1} - s_j)

evaluated exactly as ``numpy.percentile`` does (the interpolation is taken
from the upper point when ``g >= 0.5``), so `linear_quantile` equals
``numpy.percentile(x, 100 q)`` to the last bit. The median is the middle value,
or the mean of the two middle values (``numpy.median``).

The online form (`SortedWindow`) keeps a ring buffer and a sorted list
updated with `bisect.insort` and a bisected removal: O(log w) comparisons
per update plus an O(w) ``memmove``. The offline form sorts every trailing
window with ``numpy.sort`` on a sliding-window view, in chunks. Sorting and
selection are exact, so both forms produce the same order statistics.

References
----------
.. [1] R. J. Hyndman and Y. Fan, "Sample quantiles in statistical packages",
   The American Statistician 50(4), 1996.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

__all__ = ["SortedWindow", "linear_quantile", "median_sorted", "sorted_windows"]

#: Rows per chunk when sorting trailing windows offline (bounds memory).
_CHUNK_ELEMENTS = 1 << 22


def _index_weight(m: int, q: float) -> tuple[int, int, float]:
    h = (m - 1) * q
    j = int(np.floor(h))
    g = h - j
    return j, min(j + 1, m - 1), g


def linear_quantile(s: NDArray[np.float64] | list[float], q: float) -> NDArray[np.float64] | float:
    """Quantile ``q`` of sorted data along the last axis, as ``numpy.percentile``.

    Parameters
    ----------
    s : ndarray or list of float
        Sorted values (1-D: a sample; 2-D: one sorted sample per row).
    q : float
        Probability in [0, 1].

    Returns
    -------
    float or ndarray
        The quantile (one per row for 2-D input).
    """
    if isinstance(s, list):
        j, k, g = _index_weight(len(s), q)
        a, b = s[j], s[k]
        diff = b - a
        return b - diff * (1 - g) if g >= 0.5 else a + diff * g
    j, k, g = _index_weight(s.shape[-1], q)
    a = s[..., j]
    b = s[..., k]
    diff = b - a
    return b - diff * (1 - g) if g >= 0.5 else a + diff * g


def median_sorted(s: NDArray[np.float64] | list[float]) -> NDArray[np.float64] | float:
    """Median of sorted data along the last axis, as ``numpy.median``."""
    m = len(s) if isinstance(s, list) else s.shape[-1]
    h = m // 2
    if isinstance(s, list):
        return s[h] if m % 2 else (s[h - 1] + s[h]) / 2.0
    return s[..., h] if m % 2 else (s[..., h - 1] + s[..., h]) / 2.0


class SortedWindow:
    """Ring buffer of the last ``w`` values plus the same values sorted.

    Parameters
    ----------
    w : int or None
        Window length; ``None`` keeps every value (a cumulative window).
    """

    __slots__ = ("_ring", "sorted", "w")

    def __init__(self, w: int | None) -> None:
        self.w = w
        self._ring: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self.sorted)

    def push(self, x: float) -> None:
        """Add ``x``, dropping the oldest value once the window is full."""
        if self.w is not None and len(self._ring) == self.w:
            old = self._ring.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        self._ring.append(x)
        bisect.insort(self.sorted, x)

    def values(self) -> NDArray[np.float64]:
        """The window's values, oldest first."""
        return np.fromiter(self._ring, dtype=np.float64, count=len(self._ring))


def sorted_windows(x: NDArray[np.float64], w: int) -> Iterator[tuple[int, NDArray[np.float64]]]:
    """Yield ``(start, rows)``: every trailing window of ``w`` values, sorted, in chunks.

    Row ``r`` of a chunk is ``sorted(x[start + r : start + r + w])``, i.e. the
    window ending at index ``start + r + w - 1``.
    """
    n = x.shape[0]
    if n < w:
        return
    view = sliding_window_view(x, w)
    rows = max(1, _CHUNK_ELEMENTS // w)
    for start in range(0, view.shape[0], rows):
        yield start, np.sort(view[start : start + rows], axis=1)
