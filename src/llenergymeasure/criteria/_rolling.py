"""Numerically stable rolling moments, online and offline, with identical arithmetic.

Both forms use the same *blocked, shifted sums*. The series is cut into blocks
of ``w`` samples. Every window of ``w`` samples ending in block ``k`` is the
suffix of block ``k - 1`` plus a prefix of block ``k``, and it always contains
the first sample of block ``k``, ``c_k``. Sums are taken of ``x - c_k``, which
stays of the order of the spread inside the window, so

.. math::

    \\bar x = c_k + S_1 / w, \\qquad
    \\sum (x - \\bar x)^2 = S_2 - S_1^2 / w

loses no precision to a large mean (values near 1e6 with 1e-3 noise are
handled to full float64 accuracy), and no error accumulates along the series,
unlike running sums of squares. This is the two-block decomposition of van
Herk (1992) and Gil & Werman (1993), applied to shifted sums (Chan, Golub &
LeVeque 1983 on the shifted formula).

The online form keeps a ring buffer of ``w`` values; at the start of every
block it computes the suffix sums of the previous block in O(w), so an update
costs O(1) amortised. The offline form does the same sums with ``numpy.cumsum``
on a reshaped array in O(n). Because the additions happen in the same order,
the two agree to the last bit in practice, and always to far below 1e-9
relative.

References
----------
.. [1] M. van Herk, "A fast algorithm for local minimum and maximum filters on
   rectangular and octagonal kernels", Pattern Recognition Letters 13(7), 1992.
.. [2] J. Gil and M. Werman, "Computing 2-D min, median, and max filters",
   IEEE TPAMI 15(5), 1993.
.. [3] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the
   sample variance: analysis and recommendations", The American Statistician
   37(3), 1983.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["RollingMoments", "rolling_moments"]


def rolling_moments(
    x: NDArray[np.float64], w: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and sum of squared deviations of every trailing window of ``w`` samples.

    Parameters
    ----------
    x : ndarray of float, shape (n,)
        The series.
    w : int
        Window length (>= 1).

    Returns
    -------
    mean, m2 : ndarray of float, shape (n,)
        ``mean[t]`` and ``m2[t] = sum((x[t-w+1:t+1] - mean[t])**2)``; NaN for
        ``t < w - 1``. ``m2`` is clipped at 0.
    """
    n = x.shape[0]
    mean = np.full(n, np.nan)
    m2 = np.full(n, np.nan)
    if n < w:
        return mean, m2
    nb = -(-n // w)  # number of blocks
    padded = np.zeros(nb * w)
    padded[:n] = x
    blocks = padded.reshape(nb, w)
    ref = blocks[:, :1]  # c_k, the first value of each block
    # Prefix sums of block k relative to c_k.
    d_own = blocks - ref
    p1 = np.cumsum(d_own, axis=1)
    p2 = np.cumsum(d_own * d_own, axis=1)
    # Suffix sums of block k-1 relative to c_k, computed from the block's end
    # backwards (the order the online form uses). Column j holds the sum of
    # positions j+1 .. w-1; the last column is 0.
    s1 = np.zeros((nb, w))
    s2 = np.zeros((nb, w))
    if nb > 1:
        d_prev = blocks[:-1] - ref[1:]
        rev1 = np.cumsum(d_prev[:, ::-1], axis=1)[:, ::-1]
        rev2 = np.cumsum((d_prev * d_prev)[:, ::-1], axis=1)[:, ::-1]
        s1[1:, :-1] = rev1[:, 1:]
        s2[1:, :-1] = rev2[:, 1:]
    t1 = (p1 + s1).reshape(-1)[:n]
    t2 = (p2 + s2).reshape(-1)[:n]
    c = np.repeat(ref[:, 0], w)[:n]
    out_mean = c + t1 / w
    out_m2 = np.maximum(t2 - t1 * t1 / w, 0.0)
    mean[w - 1 :] = out_mean[w - 1 :]
    m2[w - 1 :] = out_m2[w - 1 :]
    return mean, m2


class RollingMoments:
    """Online twin of `rolling_moments`: O(1) amortised per value.

    Plain Python floats and lists (no numpy scalars on the hot path); the
    additions are done in the same order as the offline ``numpy.cumsum``
    calls, so both forms give the same bits.

    Parameters
    ----------
    w : int
        Window length (>= 1).
    """

    __slots__ = ("_buf", "_i", "_p1", "_p2", "_ref", "_s1", "_s2", "w")

    def __init__(self, w: int) -> None:
        self.w = int(w)
        self.reset()

    def reset(self) -> None:
        """Forget every value."""
        self._buf = [0.0] * self.w
        self._i = 0  # values seen
        self._ref = 0.0
        self._p1 = 0.0
        self._p2 = 0.0
        self._s1 = [0.0] * self.w
        self._s2 = [0.0] * self.w

    @property
    def count(self) -> int:
        """Number of values seen."""
        return self._i

    def push(self, x: float) -> tuple[float, float] | None:
        """Add a value; return ``(mean, m2)`` of the last ``w`` values once there are ``w``."""
        w = self.w
        i = self._i
        j = i % w
        if j == 0:
            # A new block starts: its first value is the new reference. The
            # suffix sums of the previous block (still in the buffer) are
            # recomputed relative to it, from the block's end backwards, as
            # the offline form's reversed cumsum does.
            self._ref = x
            if i > 0:
                buf, s1, s2 = self._buf, self._s1, self._s2
                a1 = a2 = 0.0
                s1[w - 1] = s2[w - 1] = 0.0
                for k in range(w - 1, 0, -1):
                    d = buf[k] - x
                    a1 += d
                    a2 += d * d
                    s1[k - 1] = a1
                    s2[k - 1] = a2
            self._p1 = 0.0
            self._p2 = 0.0
        ref = self._ref
        d = x - ref
        # Locals instead of attribute round trips; the same operations in the same order.
        t1 = self._p1 + d
        t2 = self._p2 + d * d
        self._p1 = t1
        self._p2 = t2
        self._buf[j] = x
        i += 1
        self._i = i
        if i < w:
            return None
        if i > w:
            t1 = t1 + self._s1[j]
            t2 = t2 + self._s2[j]
        m2 = t2 - t1 * t1 / w
        return ref + t1 / w, (m2 if m2 > 0.0 else 0.0)

    def window(self) -> np.ndarray:
        """The last ``min(count, w)`` values, oldest first."""
        n = min(self._i, self.w)
        if self._i <= self.w:
            return np.array(self._buf[:n])
        j = self._i % self.w
        return np.array(self._buf[j:] + self._buf[:j])
