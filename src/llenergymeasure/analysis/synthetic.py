r"""Seeded synthetic latency series shaped like GPU / LLM inference warmups, with their truth.

Every generator returns a :class:`SyntheticSeries`: the latencies (ms) and the true
steady-state start (the first sample of the plateau) or None when the series never
settles. The model is multiplicative,

.. math::

    x_i = \mu \, (1 + w_i) \, \varepsilon_i,

with a deterministic warmup shape :math:`w_i` and noise :math:`\varepsilon_i` of mean 1
(Gaussian :math:`1 + \sigma z` or lognormal :math:`e^{\sigma z - \sigma^2/2}`). For
smooth shapes the truth is the first ``i`` after which :math:`|w_j - w_\infty| \le`
``rtol`` for all ``j >= i``.

Kinds (:data:`SYNTHETIC_KINDS`): ``flat``, ``decay`` (exponential decay to a plateau:
cache fills, allocator warmup), ``step`` (compilation then autotuning: two level drops),
``throttle`` (short decay, a boost-clock plateau, then thermal throttling raising the
latency to a slower plateau), ``drift`` (slow linear drift that never settles),
``spikes`` (periodic spikes on a decaying series), ``lognormal`` (heavy-tailed noise),
``outliers`` (isolated large outliers), ``none`` (a geometric random walk: no steady
state at all).

References
----------
.. [1] E. Barrett et al., "Virtual machine warmup blows hot and cold", OOPSLA 2017
   (flat / warmup / slowdown / no-steady-state shapes).
.. [2] K. Pawlikowski, "Steady-state simulation of queueing processes: a survey of
   problems and solutions", ACM Computing Surveys 22(2), 1990 (initial transients).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SYNTHETIC_KINDS",
    "SyntheticSeries",
    "generate",
    "make_corpus",
    "make_trace",
]


@dataclass(frozen=True)
class SyntheticSeries:
    """A generated series and its truth.

    Attributes
    ----------
    x : numpy.ndarray
        Latencies in ms.
    steady_start : int or None
        First sample of the steady state; None when there is none.
    kind : str
        Generator name.
    params : dict
        The generator's parameters.
    """

    x: NDArray[np.float64]
    steady_start: int | None
    kind: str
    params: dict[str, Any]


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng(seed)


def _noise(rng: np.random.Generator, n: int, sigma: float, heavy: bool = False) -> NDArray:
    z = rng.standard_normal(n)
    if heavy:
        return np.exp(sigma * z - 0.5 * sigma * sigma)
    return np.maximum(1.0 + sigma * z, 0.05)


def _settle_index(w: NDArray[np.float64], rtol: float) -> int:
    """First i with |w_j - w_end| <= rtol for all j >= i."""
    bad = np.flatnonzero(np.abs(w - w[-1]) > rtol)
    return 0 if bad.size == 0 else int(bad[-1]) + 1


def _decay_shape(n: int, amplitude: float, tau: float) -> NDArray[np.float64]:
    return amplitude * np.exp(-np.arange(n) / tau) if tau > 0 else np.zeros(n)


def _series(
    n: int, seed: Any, plateau_ms: float, w: NDArray[np.float64], sigma: float,
    heavy: bool = False,
) -> NDArray[np.float64]:
    """The multiplicative model ``plateau_ms * (1 + w) * noise`` with seeded noise."""
    return plateau_ms * (1 + w) * _noise(_rng(seed), n, sigma, heavy)


def _known_kind(kind: str) -> None:
    if kind not in SYNTHETIC_KINDS:
        raise KeyError(f"unknown synthetic kind {kind!r}; known: {sorted(SYNTHETIC_KINDS)}")


def _check(n: int, **positive: float) -> None:
    if n < 10:
        raise ValueError(f"n must be >= 10, got {n}")
    for name, v in positive.items():
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be finite and > 0, got {v}")


def flat(
    n: int, seed: Any = None, *, plateau_ms: float = 20.0, noise: float = 0.02
) -> SyntheticSeries:
    """Steady from the first sample."""
    _check(n, plateau_ms=plateau_ms, noise=noise)
    x = plateau_ms * _noise(_rng(seed), n, noise)
    return SyntheticSeries(x, 0, "flat", {"plateau_ms": plateau_ms, "noise": noise})


def decay(
    n: int,
    seed: Any = None,
    *,
    plateau_ms: float = 20.0,
    amplitude: float = 1.0,
    tau: float = 40.0,
    noise: float = 0.02,
    rtol: float = 0.005,
) -> SyntheticSeries:
    """Exponential decay :math:`w_i = A e^{-i/\\tau}` to the plateau."""
    _check(n, plateau_ms=plateau_ms, amplitude=amplitude, tau=tau, noise=noise, rtol=rtol)
    w = _decay_shape(n, amplitude, tau)
    x = _series(n, seed, plateau_ms, w, noise)
    start = _settle_index(w, rtol)
    prm = {"plateau_ms": plateau_ms, "amplitude": amplitude, "tau": tau, "noise": noise}
    return SyntheticSeries(x, start if start < n else None, "decay", prm)


def step(
    n: int,
    seed: Any = None,
    *,
    plateau_ms: float = 20.0,
    levels: Sequence[float] = (2.0, 0.4),
    at: Sequence[float] = (0.05, 0.15),
    noise: float = 0.02,
) -> SyntheticSeries:
    """Level drops (compilation, then autotuning): ``w = levels[j]`` until ``at[j] * n``."""
    _check(n, plateau_ms=plateau_ms, noise=noise)
    if len(levels) != len(at) or not levels:
        raise ValueError("levels and at must be non-empty and of equal length")
    cuts = [round(a * n) for a in at]
    if any(not 0 < c < n for c in cuts) or cuts != sorted(cuts):
        raise ValueError(f"step positions {list(at)} must be increasing fractions in (0, 1)")
    w = np.zeros(n)
    prev = 0
    for lev, c in zip(levels, cuts, strict=True):
        w[prev:c] = lev
        prev = c
    x = _series(n, seed, plateau_ms, w, noise)
    prm = {"plateau_ms": plateau_ms, "levels": list(levels), "at": list(at), "noise": noise}
    return SyntheticSeries(x, cuts[-1], "step", prm)


def throttle(
    n: int,
    seed: Any = None,
    *,
    plateau_ms: float = 20.0,
    amplitude: float = 0.5,
    tau: float = 10.0,
    boost_until: float = 0.2,
    slowdown: float = 0.15,
    ramp: float = 0.05,
    noise: float = 0.02,
    rtol: float = 0.005,
) -> SyntheticSeries:
    """Boost then thermal throttling: a fast plateau, then a logistic rise to a slower one.

    ``w_i = A e^{-i/tau} + s / (1 + exp(-(i - b n) / (r n)))``; the steady state is the
    throttled plateau, so the boost plateau is a false steady state.
    """
    _check(n, plateau_ms=plateau_ms, tau=tau, slowdown=slowdown, ramp=ramp, noise=noise)
    i = np.arange(n)
    z = np.clip((i - boost_until * n) / (ramp * n), -50, 50)
    w = _decay_shape(n, amplitude, tau) + slowdown / (1 + np.exp(-z))
    x = _series(n, seed, plateau_ms, w, noise)
    start = _settle_index(w, rtol)
    prm = {"plateau_ms": plateau_ms, "boost_until": boost_until, "slowdown": slowdown,
           "ramp": ramp, "noise": noise}
    return SyntheticSeries(x, start if start < 0.9 * n else None, "throttle", prm)


def drift(
    n: int,
    seed: Any = None,
    *,
    plateau_ms: float = 20.0,
    amplitude: float = 0.5,
    tau: float = 20.0,
    slope: float = 0.3,
    noise: float = 0.02,
) -> SyntheticSeries:
    """A decay, then a slow linear drift of ``slope`` (relative) over the run: never steady."""
    _check(n, plateau_ms=plateau_ms, slope=slope, noise=noise)
    w = _decay_shape(n, amplitude, tau) + slope * np.arange(n) / n
    x = _series(n, seed, plateau_ms, w, noise)
    prm = {"plateau_ms": plateau_ms, "slope": slope, "noise": noise}
    return SyntheticSeries(x, None, "drift", prm)


def spikes(
    n: int,
    seed: Any = None,
    *,
    plateau_ms: float = 20.0,
    amplitude: float = 1.0,
    tau: float = 40.0,
    period: int = 50,
    spike: float = 1.5,
    noise: float = 0.02,
    rtol: float = 0.005,
) -> SyntheticSeries:
    """Periodic spikes (every ``period`` samples, ``+spike`` relative) on a decay.

    The spikes belong to the steady state (a recurring cost such as a KV-cache
    reallocation or a garbage collection), so the truth is the decay's.
    """
    base = decay(n, seed, plateau_ms=plateau_ms, amplitude=amplitude, tau=tau, noise=noise,
                 rtol=rtol)
    if period < 2:
        raise ValueError(f"period must be >= 2, got {period}")
    x = base.x.copy()
    x[period - 1 :: period] *= 1 + spike
    return SyntheticSeries(x, base.steady_start, "spikes", {**base.params, "period": period,
                                                             "spike": spike})


def lognormal(
    n: int,
    seed: Any = None,
    *,
    plateau_ms: float = 20.0,
    amplitude: float = 1.0,
    tau: float = 40.0,
    sigma: float = 0.25,
    rtol: float = 0.005,
) -> SyntheticSeries:
    """A decay with heavy-tailed lognormal noise of log-sd ``sigma`` (mean 1)."""
    _check(n, plateau_ms=plateau_ms, amplitude=amplitude, tau=tau, sigma=sigma)
    w = _decay_shape(n, amplitude, tau)
    x = _series(n, seed, plateau_ms, w, sigma, heavy=True)
    prm = {"plateau_ms": plateau_ms, "amplitude": amplitude, "tau": tau, "sigma": sigma}
    return SyntheticSeries(x, _settle_index(w, rtol), "lognormal", prm)


def outliers(
    n: int,
    seed: Any = None,
    *,
    plateau_ms: float = 20.0,
    amplitude: float = 1.0,
    tau: float = 40.0,
    rate: float = 0.01,
    size: float = 4.0,
    noise: float = 0.02,
    rtol: float = 0.005,
) -> SyntheticSeries:
    """A decay with isolated outliers: each sample is ``(1 + size)`` times slower w.p. ``rate``."""
    rng = _rng(seed)
    base = decay(n, rng, plateau_ms=plateau_ms, amplitude=amplitude, tau=tau, noise=noise,
                 rtol=rtol)
    x = base.x.copy()
    hit = rng.random(n) < rate
    x[hit] *= 1 + size
    return SyntheticSeries(x, base.steady_start, "outliers",
                           {**base.params, "rate": rate, "size": size})


def no_steady_state(
    n: int, seed: Any = None, *, plateau_ms: float = 20.0, step_sd: float = 0.02
) -> SyntheticSeries:
    """A geometric random walk (log-increments of sd ``step_sd``): no steady state."""
    _check(n, plateau_ms=plateau_ms, step_sd=step_sd)
    x = plateau_ms * np.exp(np.cumsum(_rng(seed).normal(0.0, step_sd, n)))
    return SyntheticSeries(x, None, "none", {"plateau_ms": plateau_ms, "step_sd": step_sd})


#: Registry of generators: ``kind -> f(n, seed, **params) -> SyntheticSeries``.
SYNTHETIC_KINDS: dict[str, Callable[..., SyntheticSeries]] = {
    "flat": flat,
    "decay": decay,
    "step": step,
    "throttle": throttle,
    "drift": drift,
    "spikes": spikes,
    "lognormal": lognormal,
    "outliers": outliers,
    "none": no_steady_state,
}


def generate(kind: str, n: int, seed: Any = None, **params: Any) -> SyntheticSeries:
    """Generate one series of a registered kind."""
    _known_kind(kind)
    return SYNTHETIC_KINDS[kind](n, seed, **params)


def make_trace(
    kind: str,
    n: int,
    seed: int = 0,
    *,
    n_runs: int = 1,
    gap_ms: float = 0.5,
    trace_id: str | None = None,
    **params: Any,
) -> Any:
    """A :class:`~llenergymeasure.traces.Trace` of ``n_runs`` synthetic runs of one kind.

    Timestamps come from the cumulative latencies plus a fixed ``gap_ms`` between
    attempts; ``RunInfo.reference_start`` is the truth (``-1`` when there is no steady
    state) and ``provenance`` records the generator, seed and parameters. The trace's
    ``tags["trace_id"]`` is ``trace_id`` (default ``f"{kind}-{seed}"``).
    """
    from llenergymeasure.traces.model import RunInfo, Trace, TraceMetadata

    seeds = np.random.SeedSequence(seed).spawn(n_runs)
    rows: list[dict[str, Any]] = []
    runs = []
    wall0 = 1_700_000_000 * 10**9
    for r, ss in enumerate(seeds):
        s = generate(kind, n, np.random.default_rng(ss), **params)
        rid = f"run{r}"
        lat_ns = np.round(s.x * 1e6).astype(np.int64)
        gap = round(gap_ms * 1e6)
        starts = np.concatenate(([0], np.cumsum(lat_ns + gap)[:-1]))
        for i in range(n):
            rows.append({
                "run_id": rid, "index": i, "t_start_ns": int(starts[i]),
                "t_end_ns": int(starts[i] + lat_ns[i]), "wall_start_ns": wall0 + int(starts[i]),
                "latency_ms": float(s.x[i]), "ok": True, "error": None,
            })
        runs.append(RunInfo(
            run_id=rid, status="imported",
            reference_start=-1 if s.steady_start is None else s.steady_start,
            labels={"synthetic_kind": kind},
            provenance={"source": "synthetic", "kind": kind, "seed": seed, "run": r,
                        "params": {k: v for k, v in s.params.items()}},
        ))
    meta = TraceMetadata(tags={"trace_id": trace_id or f"{kind}-{seed}", "synthetic": kind},
                         runs=runs)
    return Trace.from_rows(rows, meta)


def make_corpus(
    kinds: Sequence[str] | None = None, n_traces: int = 5, n: int = 1000, seed: int = 0,
    **kwargs: Any,
) -> list[Any]:
    """``n_traces`` traces per kind (all kinds by default), seeded from one ``seed``."""
    kinds = list(kinds) if kinds is not None else list(SYNTHETIC_KINDS)
    for k in kinds:
        _known_kind(k)
    children = np.random.SeedSequence(seed).spawn(len(kinds) * n_traces)
    out = []
    for j, k in enumerate(kinds):
        for i in range(n_traces):
            child = int(children[j * n_traces + i].generate_state(1)[0])
            out.append(make_trace(k, n, child, trace_id=f"{k}-{i}", **kwargs))
    return out
