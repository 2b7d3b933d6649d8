"""pyperf's warmup calibration test: compare the two halves of the recent samples."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._windows import WindowedCriterion
from llenergymeasure.criteria.base import TIE_SLACK, CriterionParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["PyperfHalves"]


class PyperfHalvesParams(CriterionParams):
    """Parameters of `PyperfHalves` (defaults of pyperf 2.x ``_worker.py``)."""

    sample_size: int = Field(
        20,
        ge=3,
        description="Samples in each half (pyperf WARMUP_SAMPLE_SIZE = 20); the test window "
        "is the last 2 * sample_size samples.",
    )
    min_warmups: int = Field(
        1,
        ge=0,
        description="Samples always discarded before the first test (pyperf starts "
        "calibration at nwarmup = 1).",
    )
    outlier_iqr: float = Field(
        1.5,
        gt=0,
        description="The first sample of the first half is a high outlier above "
        "Q3 + outlier_iqr * IQR of the other samples (pyperf: 1.5).",
    )
    max_mean_increase: float = Field(
        0.10,
        gt=0,
        description="Largest allowed (mean1 - mean2) / mean2 (pyperf: +0.10).",
    )
    max_mean_decrease: float = Field(
        0.5,
        gt=0,
        description="Largest allowed (mean2 - mean1) / mean2 (pyperf: 0.5, i.e. the "
        "mean difference may go down to -0.5).",
    )
    max_mad_diff: float = Field(
        0.10, gt=0, description="Largest allowed |MAD1 - MAD2| / MAD2 (pyperf: 0.10)."
    )
    max_q1_diff: float = Field(
        0.05, gt=0, description="Largest allowed |Q1(S1) - Q1(S2)| / Q1(S2) (pyperf: 0.05)."
    )
    max_q3_diff: float = Field(
        0.05, gt=0, description="Largest allowed |Q3(S1) - Q3(S2)| / Q3(S2) (pyperf: 0.05)."
    )


def _percentile_sorted(v: NDArray[np.float64], p: float) -> NDArray[np.float64]:
    """pyperf's ``percentile`` (linear interpolation) on rows that are already sorted."""
    k = (v.shape[1] - 1) * p
    f = int(np.floor(k))
    c = int(np.ceil(k))
    if f != c:
        return v[:, f] * (c - k) + v[:, c] * (k - f)
    return v[:, int(k)].copy()


def _rel_diff(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(a - b) / b``; 0 when ``a == b == 0`` and +-inf when only ``b`` is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / b
    return np.where((a == b), 0.0, out)


def _rel_tolerance(b: NDArray[np.float64], scale: NDArray[np.float64]) -> NDArray[np.float64]:
    """Slack on ``(a - b) / b`` from an absolute slack ``TIE_SLACK * scale`` on ``a - b``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tol = TIE_SLACK * scale / np.abs(b)
    return np.where(b != 0, tol, 0.0)


def _mad(v: NDArray[np.float64]) -> NDArray[np.float64]:
    med = np.median(v, axis=1, keepdims=True)
    return np.median(np.abs(med - v), axis=1)


@register_criterion
class PyperfHalves(WindowedCriterion):
    r"""pyperf's warmup calibration: the two halves of the last ``2 s`` samples agree.

    pyperf (``WorkerTask.test_calibrate_warmups``) takes the ``2 s`` values
    after the candidate warmups (``s = 20``), splits them into halves
    :math:`S_1` (older) and :math:`S_2` (newer) and accepts when none of these
    holds:

    * the first value of :math:`S_1` is a high outlier:
      :math:`x > Q_3 + 1.5\,\mathrm{IQR}` of the other :math:`2s-1` values;
    * :math:`\Delta_\mu = (\bar S_1 - \bar S_2)/\bar S_2 \notin [-0.5, +0.10]`;
    * :math:`|\mathrm{MAD}_1 - \mathrm{MAD}_2| / \mathrm{MAD}_2 > 0.10`;
    * :math:`|Q_1(S_1) - Q_1(S_2)| / Q_1(S_2) > 0.05`;
    * :math:`|Q_3(S_1) - Q_3(S_2)| / Q_3(S_2) > 0.05`.

    Quantiles use pyperf's linear interpolation
    (:math:`k = (n-1)p`), the MAD is the median of absolute deviations from the
    median. pyperf rejects one more warmup at a time, which in a stream is
    exactly the test on the trailing window of ``2 s`` samples; pyperf begins
    with one warmup, hence ``min_warmups = 1``: the statistic is first defined
    after ``2 s + min_warmups`` samples. The asymmetric mean band tolerates a
    first half that is much *faster* than the second but only 10 % slower.

    The statistic is the largest of the ratios of each deviation to its limit
    (:math:`\Delta_\mu / 0.10` when positive, :math:`-\Delta_\mu / 0.5` when
    negative, and the MAD, Q1, Q3 deviations over theirs), or :math:`+\infty`
    when the first value is an outlier; the verdict is pyperf's comparisons
    themselves, so the criterion passes when pyperf accepts (a ratio of 1 is at
    the limit, which pyperf accepts). Every comparison has a slack of
    $10^{-12}$ times the window's largest magnitude on the difference it
    bounds, so that a value lying exactly on a limit (frequent with quantised
    timings) is accepted in any unit: computed in s, ms or µs the same tie
    rounds to either side of the limit, and without the slack the verdict
    would depend on the unit. pyperf divides by zero when
    ``MAD2``, ``Q1`` or ``Q3`` of the second half is 0; here ``0/0`` counts as
    no difference and ``d/0`` as an infinite one. Each check sorts the window:
    O(s log s) per sample.

    Parameters
    ----------
    sample_size : int, default 20
        pyperf ``WARMUP_SAMPLE_SIZE``.
    min_warmups : int, default 1
        pyperf's initial ``nwarmup``.
    outlier_iqr, max_mean_increase, max_mean_decrease, max_mad_diff, max_q1_diff, max_q3_diff
        pyperf's hard-coded limits 1.5, 0.10, 0.5, 0.10, 0.05, 0.05.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] V. Stinner et al., pyperf, ``pyperf/_worker.py``
       (``test_calibrate_warmups``, ``calibrate_warmups``) and ``pyperf/_utils.py``
       (``percentile``, ``median_abs_dev``), https://github.com/psf/pyperf.
    """

    name = "pyperf_halves"
    Params = PyperfHalvesParams
    scale_invariant = True
    statistic_label = "halves"

    def __init__(
        self, sample_size: int = 20, *, signal: str = "latency_ms", **limits: float
    ) -> None:
        super().__init__(sample_size=sample_size, signal=signal, **limits)

    @property
    def threshold(self) -> float:
        return 1.0

    def _window_len(self) -> int:
        return 2 * self.params.sample_size

    def _first_index(self) -> int:
        return 2 * self.params.sample_size + self.params.min_warmups - 1

    def _window_stats(
        self, windows: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        p = self.params
        s = p.sample_size
        s1 = windows[:, :s]
        s2 = windows[:, s:]
        rest = np.sort(windows[:, 1:], axis=1)
        q1 = _percentile_sorted(rest, 0.25)
        q3 = _percentile_sorted(rest, 0.75)
        scale = np.max(np.abs(windows), axis=1)
        outlier_max = q3 + p.outlier_iqr * (q3 - q1)
        outlier = ~(windows[:, 0] <= outlier_max + TIE_SLACK * scale)

        mean2 = np.mean(s2, axis=1)
        mean_diff = _rel_diff(np.mean(s1, axis=1), mean2)
        s1s = np.sort(s1, axis=1)
        s2s = np.sort(s2, axis=1)
        q1_2 = _percentile_sorted(s2s, 0.25)
        q3_2 = _percentile_sorted(s2s, 0.75)
        q1_diff = _rel_diff(_percentile_sorted(s1s, 0.25), q1_2)
        q3_diff = _rel_diff(_percentile_sorted(s1s, 0.75), q3_2)
        mad2 = _mad(s2)
        mad_diff = _rel_diff(_mad(s1), mad2)

        mean_tol = _rel_tolerance(mean2, scale)
        passed = (
            ~outlier
            & (-p.max_mean_decrease - mean_tol <= mean_diff)
            & (mean_diff <= p.max_mean_increase + mean_tol)
            & ~(np.abs(mad_diff) > p.max_mad_diff + _rel_tolerance(mad2, scale))
            & ~(np.abs(q1_diff) > p.max_q1_diff + _rel_tolerance(q1_2, scale))
            & ~(np.abs(q3_diff) > p.max_q3_diff + _rel_tolerance(q3_2, scale))
        )
        mean_ratio = np.where(
            mean_diff >= 0, mean_diff / p.max_mean_increase, -mean_diff / p.max_mean_decrease
        )
        stat = np.max(
            np.stack(
                [
                    mean_ratio,
                    np.abs(mad_diff) / p.max_mad_diff,
                    np.abs(q1_diff) / p.max_q1_diff,
                    np.abs(q3_diff) / p.max_q3_diff,
                ]
            ),
            axis=0,
        )
        stat = np.where(outlier, np.inf, stat)
        return stat, passed
