"""Synthetic generators: seeded, and their returned truths are real plateau starts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from llenergymeasure.analysis.synthetic import SYNTHETIC_KINDS, generate, make_corpus, make_trace

SETTLING = ["decay", "step", "throttle", "spikes", "lognormal", "outliers"]


@pytest.mark.parametrize("kind", sorted(SYNTHETIC_KINDS))
def test_seeded_and_positive(kind: str) -> None:
    a = generate(kind, 600, 7)
    b = generate(kind, 600, 7)
    c = generate(kind, 600, 8)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert a.x.shape == (600,) and np.all(a.x > 0) and np.all(np.isfinite(a.x))


@pytest.mark.parametrize("kind", SETTLING)
def test_plateau_starts_at_truth(kind: str) -> None:
    s = generate(kind, 3000, 3)
    r = s.steady_start
    assert r is not None and 0 < r < 2000
    x = s.x
    tail = x[r:]
    # no trend after the truth (robust slope ~ 0 relative to the level)
    slope = stats.theilslopes(tail[::3])[0] / np.median(tail)
    assert abs(slope) * tail.size < 0.01
    # the first half of the warmup is clearly off the plateau
    assert abs(np.mean(x[: max(1, r // 2)]) / np.mean(tail) - 1) > 0.02
    # a later start would not change the plateau level (it really is the plateau)
    assert abs(np.mean(x[r : r + 1000]) / np.mean(x[-1000:]) - 1) < 0.02


@pytest.mark.parametrize("kind", ["drift", "none"])
def test_no_steady_state_kinds_keep_moving(kind: str) -> None:
    s = generate(kind, 3000, 5)
    assert s.steady_start is None
    halves = np.array_split(s.x[1500:], 2)
    assert abs(np.mean(halves[1]) / np.mean(halves[0]) - 1) > 0.02


def test_flat_is_steady_from_zero() -> None:
    s = generate("flat", 1000, 1)
    assert s.steady_start == 0
    assert abs(s.x[:100].mean() / s.x[-100:].mean() - 1) < 0.02


def test_unknown_kind_and_bad_params() -> None:
    with pytest.raises(KeyError, match="unknown synthetic kind"):
        generate("sawtooth", 100, 0)
    with pytest.raises(ValueError, match="tau"):
        generate("decay", 100, 0, tau=-1.0)


def test_make_trace_truth_and_timestamps() -> None:
    tr = make_trace("step", 400, 11, n_runs=2, gap_ms=1.0)
    assert tr.run_ids == ["run0", "run1"]
    for rid in tr.run_ids:
        x = tr.samples(rid)
        t = tr.sample_times_s(rid)
        # end times = cumulative latencies + one gap per earlier attempt
        expect = np.cumsum(x) / 1e3 + np.arange(x.size) * 1e-3
        np.testing.assert_allclose(t, expect, atol=1e-5)
        assert tr.run_info(rid).reference_start == round(0.15 * 400)
    none = make_trace("none", 200, 1)
    assert none.run_info("run0").reference_start == -1


def test_make_corpus_layout() -> None:
    corpus = make_corpus(["flat", "decay"], n_traces=2, n=200, seed=4)
    ids = [t.metadata.tags["trace_id"] for t in corpus]
    assert ids == ["flat-0", "flat-1", "decay-0", "decay-1"]
    again = make_corpus(["flat", "decay"], n_traces=2, n=200, seed=4)
    np.testing.assert_array_equal(corpus[3].samples("run0"), again[3].samples("run0"))
