"""`Criterion.truncate(x)`: the one-shot cut of a whole series, or None and why.

Known answers on step series whose cut is known, the cut rejected when it falls in the
second half (MSER) or leaves too short a steady run (PELT), agreement with the last entry
of `evaluate` where the series' length is a check point (hypothesis), and real Traini forks.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from llenergymeasure.criteria import (
    InvalidSampleError,
    Truncation,
    available_criteria,
    criterion_class,
    make_criterion,
)

TRUNCATION_METHODS = [n for n in available_criteria() if criterion_class(n).yields_truncation]


def step(cut: int, n: int, seed: int = 0, high: float = 20.0) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return np.where(np.arange(n) < cut, high, 10.0) + rng.normal(0, 0.3, n)


def test_the_four_truncation_methods_are_covered() -> None:
    assert {"mser5", "max_ess", "red_sse", "pelt"} <= set(TRUNCATION_METHODS)


@pytest.mark.parametrize("name", ["mser5", "pelt"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_known_cut_of_a_step(name: str, seed: int) -> None:
    """A level shift of 33 noise sd at sample 100 of 500: the cut is at the step."""
    res = make_criterion(name).truncate(step(100, 500, seed))
    assert res.index == 100, res
    assert "passes" in res.reason and "cut 100" in res.reason


@pytest.mark.parametrize("name", ["max_ess", "red_sse"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_ess_and_red_sse_cut_of_a_step(name: str, seed: int) -> None:
    """Maximum ESS and minimum SSE weigh the suffix's length against its noise: the step,
    give or take a sample (one noisy sample beside the step moves their optimum)."""
    res = make_criterion(name).truncate(step(100, 500, seed))
    assert res.index is not None and abs(res.index - 100) <= 1, res


@pytest.mark.parametrize("name", ["mser5", "max_ess", "red_sse"])
def test_a_cut_in_the_second_half_is_not_usable(name: str) -> None:
    res = make_criterion(name).truncate(step(400, 500))
    assert res.index is None
    assert "does not pass" in res.reason
    cut = int(res.reason.split("its cut ")[1].split()[0])
    assert cut > 250, res.reason  # the rejected cut, in the second half


def test_pelt_rejects_a_steady_run_shorter_than_min_segment() -> None:
    x = step(480, 500)
    res = make_criterion("pelt:min_segment=30").truncate(x)
    assert res.index is None and "cut 480" in res.reason, res
    assert make_criterion("pelt:min_segment=20").truncate(x).index == 480


@pytest.mark.parametrize("name", ["mser5", "max_ess", "red_sse", "pelt"])
def test_too_short_a_series(name: str) -> None:
    crit = make_criterion(name)
    res = crit.truncate(step(3, crit.min_samples - 1))
    assert res.index is None and f"at least {crit.min_samples}" in res.reason


def test_truncation_is_frozen_and_only_for_truncation_methods() -> None:
    res = make_criterion("mser5").truncate(step(100, 500))
    assert isinstance(res, Truncation)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.index = 3  # type: ignore[misc]
    with pytest.raises(TypeError, match="'rolling_cv' does not estimate a truncation"):
        make_criterion("rolling_cv").truncate(step(100, 500))
    x = step(100, 500)
    x[7] = np.nan
    with pytest.raises(InvalidSampleError) as info:
        make_criterion("mser5").truncate(x)
    assert info.value.index == 7


#: Schedules on which every length >= min_samples is a check point.
EVERY_SAMPLE = {
    "mser5": "mser5:batch_size=1,min_batches=10",
    "max_ess": "max_ess:min_samples=10,every=1",
    "red_sse": "red_sse:min_samples=10,every=1",
    "pelt": "pelt:min_samples=10,every=1,min_segment=8",
}


@pytest.mark.parametrize("name", sorted(EVERY_SAMPLE))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(10, 120), cut=st.integers(0, 120), seed=st.integers(0, 2**16))
def test_truncate_is_the_last_passing_cut_of_evaluate(
    name: str, n: int, cut: int, seed: int
) -> None:
    """Where the length is a check point, `truncate` is evaluate's last entry, kept only
    where it passes: the documented meaning of `Evaluation.truncation`."""
    crit = make_criterion(EVERY_SAMPLE[name])
    x = step(min(cut, n), n, seed)
    ev = crit.evaluate(x)
    res = crit.truncate(x)
    assert ev.truncation is not None
    if ev.passed[-1]:
        assert res.index == int(ev.truncation[-1])
    else:
        assert res.index is None


# ------------------------------------------------------------------- real series
def traini_forks(shared_data: Path) -> list[NDArray[np.float64]]:
    folder = shared_data / "traini-dev" / "timeseries" / "all"
    out = []
    for path in sorted(folder.glob("*.json"))[::5]:
        data = json.loads(path.read_text())
        out.extend(np.asarray(data[k], dtype=np.float64) for k in (0, 4, 8))
    return out


@pytest.mark.parametrize("name", ["mser5", "red_sse"])
def test_real_series_cuts_are_usable_or_none(shared_data: Path, name: str) -> None:
    """On real forks a returned cut lies in the first `max_fraction` of the series (where
    the criterion passes), and a cut in the second half is never returned."""
    crit = make_criterion(name)
    frac = crit.params.max_fraction  # type: ignore[attr-defined]
    rejected = 0
    for x in traini_forks(shared_data):
        res = crit.truncate(x * 1e3)
        if res.index is None:
            rejected += 1
            assert "does not pass" in res.reason
        else:
            assert 0 <= res.index <= frac * x.size
        assert res == crit.truncate(x)  # the same cut in s
    assert rejected < len(traini_forks(shared_data))
