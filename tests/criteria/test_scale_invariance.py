"""Units and scale: a criterion that declares `scale_invariant` gives the same verdicts in s,
ms and µs (issue 8, item 6).

For every registered criterion that declares it (and representative composites), on
hypothesis series that include exact ties and values quantised to a grid, the verdicts
(`passed`) and truncations of `evaluate(x * f)` equal those of `evaluate(x)` for
`f` in {1e-3, 1e3, 1e6}. Sample times are those of the original series: the signal is
rescaled, not the clock. On real Traini forks, the two criteria that used to break this
(`pyperf_halves` at ties with its limits, `pelt` with its absolute variance floor) give
the same verdicts and cuts in the three units.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from llenergymeasure.criteria import Criterion, available_criteria, criterion_class, make_criterion

FACTORS = (1e-3, 1e3, 1e6)

#: Settings that reach verdicts of both kinds on series of tens of samples.
SMALL: dict[str, dict[str, Any]] = {
    "kelly_ssd": {"window": 10},
    "geweke": {"window": 20},
    "kpss": {"window": 20},
    "pyperf_halves": {"sample_size": 5},
    "laaber_rciw": {"n_boot": 50, "sample_size": 20},
    "laaber_kld": {"sample_size": 20, "grid": 50},
    "nvbench_entropy": {"window": 20},
    "nvbench_stdrel": {"min_time": 0.05},
    "trend": {"window": 10},
    "iqr_median": {"window": 8},
    "mad_median": {"window": 8},
    "rciw": {"window": 8},
    "pelt": {"min_samples": 10, "every": 3, "min_segment": 8},
    "max_ess": {"min_samples": 10, "every": 3},
    "red_sse": {"min_samples": 10, "every": 3},
    "mser5": {"min_batches": 3},
}
COMPOSITES = [
    "all_of(rolling_cv:window=6,threshold=0.05,fixed_count:n=8)",
    "any_of(mad_median:window=6,threshold=0.05,min_duration:seconds=0.5)",
]
INVARIANT = [
    n for n in available_criteria()
    if not criterion_class(n).is_composite and criterion_class(n).scale_invariant
]


def build(spec: str) -> Criterion:
    if spec in SMALL:
        return make_criterion(spec, **SMALL[spec])
    return make_criterion(spec)


@st.composite
def tied_series(draw: st.DrawFn) -> NDArray[np.float64]:
    """Positive series with exact ties: quantised to a grid, with repeated runs and plateaus."""
    n = draw(st.integers(1, 70))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["grid", "two_values", "runs", "smooth"]))
    level = draw(st.sampled_from([1.0, 10.0, 123.0]))
    i = np.arange(n)
    warm = 1 + draw(st.sampled_from([0.0, 0.3, 2.0])) * np.exp(-i / 6.0)
    if kind == "two_values":  # only two distinct values: every statistic sits on a tie
        x = level * np.where(rng.random(n) < draw(st.floats(0.05, 0.95)), 1.0, 1.1)
    elif kind == "runs":  # runs of one repeated value
        x = level * warm * np.repeat(1 + 0.05 * rng.integers(0, 3, n), 1)[:n]
        x = np.repeat(x[: (n + 2) // 3], 3)[:n]
    else:
        x = level * warm * np.exp(0.05 * rng.standard_normal(n))
    if kind in ("grid", "runs"):
        grid = draw(st.sampled_from([0.1, 0.5, 1.0]))
        x = np.maximum(np.round(x / grid) * grid, grid)
    return x


def times(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.cumsum(x) / 1000.0


def assert_same_verdicts(crit: Criterion, x: NDArray[np.float64], what: str) -> None:
    t = times(x) if crit.needs_time else None
    base = crit.evaluate(x, t)
    for f in FACTORS:
        scaled = crit.evaluate(x * f, t)
        np.testing.assert_array_equal(scaled.passed, base.passed, err_msg=f"{what}: x * {f}")
        if base.truncation is not None:
            assert scaled.truncation is not None
            np.testing.assert_array_equal(
                scaled.truncation, base.truncation, err_msg=f"{what}: truncation, x * {f}"
            )


def test_the_fixed_criteria_declare_scale_invariance() -> None:
    for name in ("pelt", "pyperf_halves", "nvbench_stdrel"):
        assert criterion_class(name).scale_invariant, name


@pytest.mark.parametrize("spec", INVARIANT + COMPOSITES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=tied_series())
def test_same_verdicts_in_s_ms_and_us(spec: str, x: NDArray[np.float64]) -> None:
    crit = build(spec)
    assert crit.scale_invariant
    assert_same_verdicts(crit, x, spec)


@pytest.mark.parametrize("spec", INVARIANT)
def test_same_verdicts_at_default_settings(spec: str) -> None:
    """The defaults too, on a quantised warmup long enough for every window."""
    rng = np.random.default_rng(3)
    i = np.arange(700)
    x = np.round((10 * (1 + np.exp(-i / 60)) + 0.2 * rng.standard_normal(700)) / 0.1) * 0.1
    assert_same_verdicts(make_criterion(spec), x, spec)


def test_pyperf_halves_accepts_a_tie_with_its_limit_in_every_unit() -> None:
    """Q1 of the first half 5% above that of the second, exactly: pyperf accepts, in any unit."""
    s2 = np.array([100.0, 100.0, 100.0, 100.0, 100.0])
    s1 = np.array([105.0, 105.0, 105.0, 105.0, 105.0])  # mean, Q1, Q3 all +5%: on the limit
    crit = make_criterion("pyperf_halves:sample_size=5,min_warmups=0,max_mean_increase=0.05")
    x = np.concatenate([s1, s2])
    for f in (1.0, *FACTORS, 1e-6, 0.7):
        assert crit.evaluate(x * f).passed[-1], f


# ------------------------------------------------------------------- real series
def traini_forks(shared_data: Path, n: int = 800) -> list[NDArray[np.float64]]:
    folder = shared_data / "traini-dev" / "timeseries" / "all"
    out = []
    for path in sorted(folder.glob("*.json"))[::3]:
        data = json.loads(path.read_text())
        out.extend(np.asarray(data[k][:n], dtype=np.float64) for k in (0, 7))
    return out


def test_pyperf_halves_real_series_same_verdicts(shared_data: Path) -> None:
    crit = make_criterion("pyperf_halves")
    for x in traini_forks(shared_data):
        assert_same_verdicts(crit, x * 1e3, "pyperf_halves")


def test_pelt_real_series_same_cut(shared_data: Path) -> None:
    crit = make_criterion("pelt")
    for x in traini_forks(shared_data, n=600)[::2]:
        cuts = {f: crit.truncate(x * f).index for f in (1.0, *FACTORS)}
        assert len(set(cuts.values())) == 1, cuts
