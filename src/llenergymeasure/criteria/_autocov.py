"""Autocovariances of every suffix of a series at once, lag by lag, plus an FFT fallback.

Truncation rules (maximum ESS, minimum SSE) need, for every candidate origin
:math:`i`, autocovariance sums of the suffix :math:`x_{i:n}` about *its own* mean
:math:`\\mu_i`:

.. math::

    \\Gamma_k(i) = \\sum_{j=i}^{n-1-k} (x_j - \\mu_i)(x_{j+k} - \\mu_i).

With :math:`d = x - r` for a reference :math:`r` (the median of the second half
of the series, close to the steady level), :math:`D_i = \\sum_{j \\ge i} d_j`,
:math:`\\delta_i = D_i / (n - i)` and :math:`P_k(i) = \\sum_{j=i}^{n-1-k} d_j d_{j+k}`,

.. math::

    \\Gamma_k(i) = P_k(i) - \\delta_i\\,(D_i - D_{n-k} + D_{i+k}) + (n - i - k)\\,\\delta_i^2,

so one lag costs O(n) for *all* origins (a reversed cumulative sum of
:math:`d_j d_{j+k}`). Looping over the few lags a rule needs is far cheaper than
one autocorrelation function per origin; origins that need many lags are
handed to an FFT (`fft_autocov`, O(m log m) per origin).

This module is private: it holds no criterion of its own.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

__all__ = ["SuffixAutocov", "constant_suffix", "fft_autocov"]


def constant_suffix(x: NDArray[np.float64]) -> NDArray[np.bool_]:
    """``out[i]`` is True when every value of ``x[i:]`` is equal (exactly)."""
    rev = x[::-1]
    lo = np.minimum.accumulate(rev)[::-1]
    hi = np.maximum.accumulate(rev)[::-1]
    return lo == hi


def fft_autocov(seg: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unnormalised autocovariance sums of ``seg`` about its mean, lags 0..m-1, by FFT."""
    m = seg.shape[0]
    d = seg - seg.mean()
    nfft = sfft.next_fast_len(2 * m - 1, real=True)
    f = sfft.rfft(d, nfft)
    return sfft.irfft(f.real * f.real + f.imag * f.imag, nfft)[:m]


class SuffixAutocov:
    """Lag-by-lag autocovariance sums of every suffix of ``x``.

    Parameters
    ----------
    x : ndarray of float, shape (n,)
        The series.
    """

    def __init__(self, x: NDArray[np.float64]) -> None:
        n = x.shape[0]
        self.n = n
        ref = float(np.median(x[n // 2 :])) if n else 0.0
        self.d = x - ref
        self.D = np.zeros(n + 1)
        self.D[:n] = np.cumsum(self.d[::-1])[::-1]
        self.m = (n - np.arange(n)).astype(np.float64)
        self.delta = self.D[:n] / self.m

    def lag(self, k: int, origins: NDArray[np.int64]) -> NDArray[np.float64]:
        """:math:`\\Gamma_k(i)` for each origin ``i`` (every ``i <= n - 1 - k``)."""
        n = self.n
        if origins.size == 0:
            return np.zeros(0)
        i0 = int(origins.min())
        d = self.d
        q = d[i0 : n - k] * d[i0 + k :]
        p = np.cumsum(q[::-1])[::-1]
        dl = self.delta[origins]
        a = self.D[origins] - self.D[n - k]
        b = self.D[origins + k]
        out = p[origins - i0] - dl * (a + b) + (self.m[origins] - k) * dl * dl
        if k == 0:
            out = np.maximum(out, 0.0)
        return out
