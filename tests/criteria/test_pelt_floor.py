"""PELT's variance floor: ruptures' additive floor, R changepoint's replacement floor."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import ruptures as rpt
from hypothesis import given, settings
from hypothesis import strategies as st
from ruptures.costs import CostNormal

from llenergymeasure.criteria.base import CriterionConfigError
from llenergymeasure.criteria.pelt import (
    NORMAL_VAR_FLOOR,
    R_CHANGEPOINT_VAR_FLOOR,
    pelt_changepoints,
    segment_costs,
)


def _jmh_like(seed: int, n: int = 600) -> tuple[np.ndarray, int]:
    """Times in seconds (~1e-5 s, sd ~1e-7 s): variances far below both floors."""
    rng = np.random.default_rng(seed)
    cp = int(rng.integers(100, n - 100))
    x = np.where(np.arange(n) < cp, 1.5e-5, 1.0e-5) + rng.normal(0, 1e-7, n)
    return x, cp


def _naive_optimum(x: np.ndarray, beta: float, cost: str, min_size: int) -> float:
    """Optimal partitioning without pruning; per-segment variances from np.var."""
    n = x.size
    f = np.full(n + 1, np.inf)
    f[0] = 0.0
    for s in range(min_size, n + 1):
        for t in [0, *range(min_size, s - min_size + 1)]:
            v = float(np.var(x[t:s]))
            if cost == "l2":
                c = (s - t) * v
            else:
                c = (s - t) * math.log(v if v > 0 else R_CHANGEPOINT_VAR_FLOOR)
            f[s] = min(f[s], f[t] + c + beta)
    return float(f[n])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replace_floor_finds_steps_the_additive_floor_hides(seed: int) -> None:
    x, cp = _jmh_like(seed)
    pen = 15 * math.log(x.size)
    # 1e-6 (ruptures) dwarfs a variance of 1e-14 s^2: every segment costs m log 1e-6.
    assert pelt_changepoints(x, pen) == [x.size]
    got = pelt_changepoints(x, pen, var_floor=R_CHANGEPOINT_VAR_FLOOR, var_floor_mode="replace")
    assert got == [cp, x.size]
    # The replacement floor leaves the cost scale-equivariant: the same breakpoints in ms.
    assert pelt_changepoints(x * 1e3, pen, var_floor_mode="replace") == got


def test_replace_mode_matches_ruptures_without_diagonal() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 1e-3, 120), rng.normal(5e-3, 3e-3, 90)])
    pen = 4 * math.log(x.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        algo = rpt.Pelt(custom_cost=CostNormal(add_small_diag=False), jump=1, min_size=2)
        ref = algo.fit(x).predict(pen=pen)
    assert pelt_changepoints(x, pen, var_floor_mode="replace") == ref


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), mult=st.sampled_from([0.2, 1.0, 4.0]))
def test_pelt_l2_reaches_the_unpruned_optimum(seed: int, mult: float) -> None:
    """With min_size=1 the l2 cost makes PELT's pruning exact: the optimum is reached."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    x = np.round(rng.normal(0, 1, n) + np.where(np.arange(n) < n // 2, 0.0, 3.0))
    beta = mult * math.log(n)
    bk = pelt_changepoints(x, beta, cost="l2", min_size=1)
    ours = float(segment_costs(x, bk, "l2").sum()) + beta * len(bk)
    assert ours == pytest.approx(_naive_optimum(x, beta, "l2", 1), rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), quantum=st.sampled_from([0.0, 0.5]))
def test_pelt_replace_floor_is_near_the_unpruned_optimum(seed: int, quantum: float) -> None:
    """Normal cost, R floor: never below the optimum; ruptures' breakpoints when continuous.

    With a minimum segment length PELT's pruning is not exact (in ruptures and R alike):
    a start pruned at ``s`` may be needed at ``s + 1``, where no split is feasible, so the
    objective may exceed the exhaustive optimum (e.g. seed 478: 21.32 against 18.81, with
    ruptures giving the same breakpoints as ours).
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 40))
    x = rng.normal(0, 1, n) + np.where(np.arange(n) < n // 2, 0.0, 3.0)
    if quantum:
        x = np.round(x / quantum) * quantum
    beta = 4.0 * math.log(n)
    kw = {"var_floor": R_CHANGEPOINT_VAR_FLOOR, "var_floor_mode": "replace"}
    bk = pelt_changepoints(x, beta, **kw)
    ours = float(segment_costs(x, bk, **kw).sum()) + beta * len(bk)
    best = _naive_optimum(x, beta, "normal", 2)
    assert ours >= best - 1e-7 * abs(best) - 1e-9
    if not quantum:  # no zero variances: ruptures' CostNormal without diagonal applies
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            algo = rpt.Pelt(custom_cost=CostNormal(add_small_diag=False), jump=1, min_size=2)
            assert bk == algo.fit(x).predict(pen=beta)


def test_segment_costs_known_answers() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 7.0, 7.0, 7.0])
    add = segment_costs(x, [4, 7])
    np.testing.assert_allclose(add, [4 * math.log(1.25 + NORMAL_VAR_FLOOR),
                                     3 * math.log(NORMAL_VAR_FLOOR)], rtol=1e-12)
    rep = segment_costs(x, [4, 7], var_floor=1e-11, var_floor_mode="replace")
    np.testing.assert_allclose(rep, [4 * math.log(1.25), 3 * math.log(1e-11)], rtol=1e-12)
    np.testing.assert_allclose(segment_costs(x, [4, 7], "l2"), [5.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="breakpoints must increase"):
        segment_costs(x, [4, 4, 7])


@pytest.mark.parametrize("bad", [0.0, -1e-9, math.inf, math.nan])
def test_bad_floor_is_a_config_error(bad: float) -> None:
    x = np.arange(10.0)
    with pytest.raises(CriterionConfigError, match="var_floor must be"):
        pelt_changepoints(x, 1.0, var_floor=bad)
    with pytest.raises(CriterionConfigError, match="var_floor_mode"):
        pelt_changepoints(x, 1.0, var_floor_mode="clip")  # type: ignore[arg-type]
