"""Prefix mean / sd shared by laaber_cv and nvbench_stdrel: known answers, online == offline."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure.criteria._cumulative import RunningMeanSD, cumulative_mean_sd

values = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1, max_size=60,
)


def test_known_answer() -> None:
    mean, sd = cumulative_mean_sd(np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]))
    assert mean[-1] == 5.0
    assert math.isclose(sd[-1], math.sqrt(32.0 / 7.0), rel_tol=1e-15)
    assert mean[0] == 2.0 and math.isnan(sd[0])
    assert sd[1] == math.sqrt(2.0)


def test_empty() -> None:
    mean, sd = cumulative_mean_sd(np.empty(0))
    assert mean.shape == sd.shape == (0,)


def test_large_mean_small_spread_keeps_precision() -> None:
    rng = np.random.default_rng(1)
    x = 1e6 + 1e-3 * rng.standard_normal(500)
    _, sd = cumulative_mean_sd(x)
    assert math.isclose(sd[-1], float(np.std(x, ddof=1)), rel_tol=1e-6)


@settings(max_examples=50, deadline=None)
@given(values)
def test_matches_numpy_and_online_twin(xs: list[float]) -> None:
    x = np.asarray(xs)
    mean, sd = cumulative_mean_sd(x)
    mom = RunningMeanSD()
    scale = max(1.0, float(np.max(np.abs(x))))
    for i, v in enumerate(xs):
        mom.push(v)
        assert mom.n == i + 1
        assert mom.mean() == mean[i]
        assert abs(mean[i] - float(np.mean(x[: i + 1]))) <= 1e-9 * scale
        if i >= 1:
            assert mom.sd() == sd[i]
            assert abs(sd[i] - float(np.std(x[: i + 1], ddof=1))) <= 1e-6 * scale
