"""The criterion contract shared by the online driver and the offline replay.

A *criterion* looks at a stream of samples (latencies, temperatures, ...) and
says, after every sample, a statistic and whether it *passes*. A
`StopRule` turns those verdicts into a
stop. Every criterion has two forms that must agree exactly:

* online: `Criterion.update` consumes one value and updates
  ``statistic_``, ``passed_`` and ``n_seen_``;
* offline: `Criterion.evaluate` takes a whole array and returns an
  `Evaluation` whose entry ``t`` depends only on ``x[: t + 1]``.

The design follows the estimator conventions of scikit-learn (configuration
in the constructor, learnt state with a trailing underscore) and the online
API of river (``update`` returns ``self``).
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llenergymeasure.criteria._spec import format_spec, param_names

try:  # Python >= 3.11
    from typing import Self
except ImportError:  # pragma: no cover - Python 3.10
    from typing_extensions import Self

__all__ = [
    "COST_CLASSES",
    "SWEEP_OPERATORS",
    "TIE_SLACK",
    "Criterion",
    "CriterionConfigError",
    "CriterionParams",
    "Evaluation",
    "InvalidSampleError",
    "Signals",
    "snap",
]

#: A mapping from signal name (``"latency_ms"``, ``"temperature_c"``, ...) to values.
Signals = Mapping[str, Any]

DEFAULT_SIGNAL = "latency_ms"
_INF = math.inf

#: Relative slack of a comparison with a limit: a quantity that lies exactly on a limit
#: (frequent with quantised timings) rounds to either side of it depending on the unit of
#: the series (s, ms, µs); a slack of `TIE_SLACK` times the data's magnitude on the
#: compared difference makes the verdict the same in every unit.
TIE_SLACK = 1e-12
#: Significant digits kept by `snap`.
SNAP_DIGITS = 12

#: The values of `Criterion.cost_class`, cheapest first.
COST_CLASSES: tuple[str, ...] = ("light", "moderate", "heavy")
#: The comparison operators a `Criterion.sweep_parameter` may declare.
SWEEP_OPERATORS: tuple[str, ...] = ("<", "<=", ">", ">=")


class CriterionConfigError(ValueError):
    """A criterion was given an unknown name, an unknown parameter or a bad value."""


class InvalidSampleError(ValueError):
    """A sample fed to a criterion is NaN or infinite.

    Attributes
    ----------
    index : int
        0-based position of the offending sample in the stream.
    value : float
        The offending value.
    signal : str
        The signal the criterion was watching.
    """

    def __init__(self, index: int, value: float, signal: str) -> None:
        self.index = int(index)
        self.value = float(value)
        self.signal = signal
        super().__init__(
            f"sample {self.index} of signal {signal!r} is {value!r}; criteria accept only "
            "finite values (record failed attempts as failures, not as samples)"
        )


class CriterionParams(BaseModel):
    """Base of every criterion's parameter model (frozen, no unknown fields).

    Every criterion declares a nested ``Params`` subclass whose fields are its
    parameters, each constrained and described; the registry lists them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: str = Field(
        DEFAULT_SIGNAL,
        min_length=1,
        description="Name of the recorded signal the criterion watches "
        "(e.g. 'latency_ms', 'temperature_c', 'power_w').",
    )


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Offline verdicts of a criterion over a series.

    Attributes
    ----------
    statistic : ndarray of float
        The criterion's statistic after each sample, NaN where undefined
        (for example before a window is full).
    passed : ndarray of bool
        Whether the criterion passes after each sample.
    truncation : ndarray of int or None
        For truncation methods: after each sample, how many leading samples
        should be discarded (-1 where undefined). ``None`` for criteria that
        do not estimate a truncation point.
    """

    statistic: NDArray[np.float64]
    passed: NDArray[np.bool_]
    truncation: NDArray[np.int64] | None = field(default=None)

    def __post_init__(self) -> None:
        stat = np.asarray(self.statistic, dtype=np.float64)
        passed = np.asarray(self.passed, dtype=bool)
        if stat.shape != passed.shape or stat.ndim != 1:
            raise ValueError(
                f"statistic and passed must be 1-D arrays of one length, got {stat.shape} "
                f"and {passed.shape}"
            )
        object.__setattr__(self, "statistic", stat)
        object.__setattr__(self, "passed", passed)
        if self.truncation is not None:
            trunc = np.asarray(self.truncation, dtype=np.int64)
            if trunc.shape != stat.shape:
                raise ValueError("truncation must have the same length as statistic")
            object.__setattr__(self, "truncation", trunc)

    def __len__(self) -> int:
        return int(self.statistic.shape[0])

    def __getitem__(self, item: slice) -> Evaluation:
        if not isinstance(item, slice):
            raise TypeError("Evaluation supports slicing only")
        trunc = None if self.truncation is None else self.truncation[item]
        return Evaluation(self.statistic[item], self.passed[item], trunc)


def snap(values: ArrayLike) -> NDArray[np.float64]:
    """Round a dimensionless statistic to `SNAP_DIGITS` (12) significant digits.

    A ratio such as IQR / median that lies exactly on a threshold (0.1 from values
    on a 0.1 grid) comes out as 0.1, 0.09999999999999998 or 0.10000000000000002
    depending on the unit of the series; rounded to 12 significant digits, it is
    0.1 in every unit, so `statistic < threshold` gives one verdict in s, ms and µs
    and a threshold sweep on the statistic stays exact. NaN, infinities and 0 are
    kept. The online and offline forms call this same function.
    """
    a = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exp = np.floor(np.log10(np.abs(a)))
        scale = 10.0 ** (SNAP_DIGITS - 1 - exp)
        out = np.round(a * scale) / scale
    return np.where(np.isfinite(out), out, a)


@dataclass(frozen=True)
class Truncation:
    """The one-shot truncation of a whole series by a truncation method (`truncate`).

    Attributes
    ----------
    index : int or None
        How many leading samples to discard; `None` when the criterion does not pass on
        the whole series (its cut is not usable, e.g. an MSER cut in the second half).
    reason : str
        Why: the cut and the statistic it was accepted or rejected on.
    """

    index: int | None
    reason: str


def first_minimum(values: NDArray[np.float64], scale: float) -> int:
    """Index of the first value within rounding of the minimum (a tie-safe `argmin`).

    `values` are in squared signal units (sums of squares, variances); two of them that
    are equal mathematically differ in their last bits, and which is smaller can depend
    on the unit of the series. The first index within `1e-9` of the minimum, relative to
    it, or within `TIE_SLACK * scale**2` (`scale`: the series' magnitude, for a minimum
    of 0) is taken, so that the choice is the same in every unit.
    """
    low = float(np.min(values))
    tol = max(1e-9 * abs(low), TIE_SLACK * scale * scale)
    return int(np.argmax(values <= low + tol))


def _as_signal_array(x: ArrayLike | Signals, signal: str) -> NDArray[np.float64]:
    """Pick ``signal`` from a mapping or DataFrame, or take ``x`` as the array."""
    if isinstance(x, Mapping) or hasattr(x, "columns"):
        try:
            values = x[signal]  # type: ignore[index]
        except KeyError:
            names = list(x.keys()) if isinstance(x, Mapping) else list(x.columns)  # type: ignore[union-attr]
            raise KeyError(f"signal {signal!r} not among the recorded signals {names}") from None
        return np.asarray(values, dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


def check_finite(x: NDArray[np.float64], signal: str, offset: int = 0) -> None:
    """Raise `InvalidSampleError` at the first non-finite value of ``x``."""
    if x.ndim != 1:
        raise ValueError(f"a criterion evaluates a 1-D series, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidSampleError(offset + i, float(x[i]), signal)


def _as_time_array(t: ArrayLike | None, n: int) -> NDArray[np.float64] | None:
    if t is None:
        return None
    arr = np.asarray(t, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"times must have one entry per sample ({n}), got shape {arr.shape}")
    return arr


class Criterion(abc.ABC):
    """Base class of all convergence criteria.

    Subclasses set the class attributes, declare a nested ``Params`` model
    (a `CriterionParams` subclass) and implement `_reset` and
    `_update`; they should override `_evaluate` with a vectorised
    form that agrees with `_update`.

    Parameters
    ----------
    **params
        Values for the fields of the criterion's ``Params`` model.

    Attributes
    ----------
    params : CriterionParams
        The validated configuration.
    statistic_ : float
        Statistic after the last update (NaN while undefined).
    passed_ : bool
        Whether the criterion passed at the last update.
    n_seen_ : int
        Number of values seen since the last `reset`.
    truncation_ : int or None
        For truncation methods, the current estimate of the number of leading
        samples to discard (-1 while undefined); ``None`` otherwise.
    """

    #: Registry key and the first token of the spec string.
    name: ClassVar[str] = ""
    #: The parameter model.
    Params: ClassVar[type[CriterionParams]] = CriterionParams
    #: True when multiplying the series by a positive constant changes no verdict.
    scale_invariant: ClassVar[bool] = False
    #: True when the criterion needs sample times (seconds since the first sample).
    needs_time: ClassVar[bool] = False
    #: True when the criterion estimates a truncation point.
    yields_truncation: ClassVar[bool] = False
    #: True when the criterion is meant to find the start of a steady state
    #: (checked on synthetic warmups with a known start); budgets are not.
    detects_steady_state: ClassVar[bool] = True
    #: True for the composites (`all_of`, `any_of`) that combine child criteria.
    is_composite: ClassVar[bool] = False
    #: `(parameter, operator)` when the verdict is exactly `statistic <operator> value` of
    #: that parameter and the statistic does not depend on it, so that one evaluation
    #: serves a whole sweep of values (e.g. `("threshold", "<")`); `None` otherwise.
    #: The operator is one of `"<"`, `"<="`, `">"`, `">="`.
    sweep_parameter: ClassVar[tuple[str, str] | None] = None
    #: Offline cost of `evaluate` on a 3,000-sample series with the default parameters:
    #: `"light"` (milliseconds), `"moderate"` (tens of milliseconds to about a second,
    #: or more on a dense check schedule), `"heavy"` (seconds: kept out of default sets).
    cost_class: ClassVar[str] = "light"
    #: Short label of the statistic for progress bars and logs.
    statistic_label: ClassVar[str] = "stat"
    #: Display the statistic and threshold as percentages.
    statistic_is_percent: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as exc:
            raise CriterionConfigError(
                _format_validation_error(self.name, exc, self.Params)
            ) from None
        self._validate()
        self.reset()

    # ------------------------------------------------------------------ config
    def _validate(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Cross-parameter checks; raise `CriterionConfigError`."""

    def get_params(self) -> dict[str, Any]:
        """Return the parameters as a plain dict (``signal`` included)."""
        return self.params.model_dump()

    @property
    def signal(self) -> str:
        """Name of the signal this criterion watches."""
        return self.params.signal

    @property
    def signals(self) -> tuple[str, ...]:
        """Every signal the criterion reads (composites read several)."""
        return (self.params.signal,)

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass (at least 1).

        `evaluate(x).passed[: min_samples - 1]` is all False for every series `x`.
        """
        return 1

    @property
    def threshold(self) -> float | None:
        """Threshold the statistic is compared with, for display; None if not applicable."""
        value = getattr(self.params, "threshold", None)
        return None if value is None else float(value)

    @property
    def spec(self) -> str:
        """Canonical spec string; ``make_criterion(c.spec)`` rebuilds an equal criterion."""
        return format_spec(self.name, self.get_params(), self.Params)

    def clone(self) -> Self:
        """A fresh, unfitted criterion with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.params == self.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.spec))

    # ------------------------------------------------------------------ online
    def reset(self) -> Self:
        """Forget every value seen; return ``self``."""
        self.statistic_: float = math.nan
        self.passed_: bool = False
        self.n_seen_: int = 0
        self.truncation_: int | None = -1 if self.yields_truncation else None
        self._reset()
        return self

    def update(self, x: float | Signals, t: float | None = None) -> Self:
        """Consume one value and update ``statistic_`` / ``passed_``.

        Parameters
        ----------
        x : float or mapping
            The new value, or a mapping of signal name to value from which the
            criterion picks its ``signal``.
        t : float, optional
            Time of the sample in seconds since the first sample (needed by
            time-based criteria, ignored by the others).

        Returns
        -------
        Criterion
            ``self``.

        Raises
        ------
        InvalidSampleError
            If the value is NaN or infinite.
        """
        if x.__class__ is not float:  # fast path for the common case
            if isinstance(x, Mapping):
                try:
                    x = x[self.signal]
                except KeyError:
                    raise KeyError(
                        f"signal {self.signal!r} not among the recorded signals {list(x)}"
                    ) from None
            x = float(x)  # type: ignore[arg-type]
        if not -_INF < x < _INF:  # type: ignore[operator]  # NaN fails both comparisons
            raise InvalidSampleError(self.n_seen_, x, self.signal)  # type: ignore[arg-type]
        if t.__class__ is not float:
            if t is not None:
                t = float(t)  # type: ignore[arg-type]
            elif self.needs_time:
                raise ValueError(f"criterion {self.name!r} needs sample times; pass t=")
        self._update(x, t)  # type: ignore[arg-type]
        self.n_seen_ += 1
        return self

    @abc.abstractmethod
    def _reset(self) -> None:
        """Reset the subclass's own state."""

    @abc.abstractmethod
    def _update(self, x: float, t: float | None) -> None:
        """Consume one finite value; set ``statistic_``, ``passed_`` (and ``truncation_``)."""

    # ----------------------------------------------------------------- offline
    def evaluate(self, x: ArrayLike | Signals, t: ArrayLike | None = None) -> Evaluation:
        """Evaluate the criterion after every sample of a whole series.

        Pure: the criterion's online state is not touched.

        Parameters
        ----------
        x : array_like or mapping
            The series, or a mapping / DataFrame of signals from which the
            criterion picks its ``signal``.
        t : array_like, optional
            Sample times in seconds since the first sample.

        Returns
        -------
        Evaluation
            Entry ``i`` depends only on ``x[: i + 1]``.

        Raises
        ------
        InvalidSampleError
            At the first NaN or infinite value.
        """
        arr = _as_signal_array(x, self.signal)
        check_finite(arr, self.signal)
        times = _as_time_array(t, arr.shape[0])
        if self.needs_time and times is None:
            raise ValueError(f"criterion {self.name!r} needs sample times; pass t=")
        return self._evaluate(arr, times)

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        """Reference offline form: replay `_update` on a fresh copy."""
        return self._replay(x, t)

    def _replay(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        twin = copy.deepcopy(self).reset()
        n = x.shape[0]
        stat = np.full(n, np.nan)
        passed = np.zeros(n, dtype=bool)
        trunc = np.full(n, -1, dtype=np.int64) if self.yields_truncation else None
        for i in range(n):
            twin.update(x[i], None if t is None else t[i])
            stat[i] = twin.statistic_
            passed[i] = twin.passed_
            if trunc is not None:
                trunc[i] = twin.truncation_
        return Evaluation(stat, passed, trunc)

    # -------------------------------------------------------------- truncation
    def truncate(self, x: ArrayLike | Signals, t: ArrayLike | None = None) -> Truncation:
        """The one-shot truncation of a whole series (truncation methods only).

        `Evaluation.truncation` holds the cut after every sample, but a cut is
        meaningful only where the criterion passes: an MSER cut in the second half of
        the series, or a PELT steady run shorter than `min_segment`, is no truncation
        point. `truncate` analyses the whole series once and returns the cut when the
        criterion passes on it, else `None`, with the reason either way.

        Parameters
        ----------
        x : array_like or mapping
            The whole series (or a mapping / DataFrame of signals).
        t : array_like, optional
            Sample times in seconds, for criteria that need them.

        Returns
        -------
        Truncation

        Raises
        ------
        TypeError
            If the criterion does not estimate a truncation point (`yields_truncation`
            is False).
        InvalidSampleError
            At the first NaN or infinite value.
        """
        if not self.yields_truncation:
            raise TypeError(
                f"criterion {self.name!r} does not estimate a truncation point "
                "(yields_truncation is False); use evaluate()"
            )
        arr = _as_signal_array(x, self.signal)
        check_finite(arr, self.signal)
        times = _as_time_array(t, arr.shape[0])
        if self.needs_time and times is None:
            raise ValueError(f"criterion {self.name!r} needs sample times; pass t=")
        n = arr.shape[0]
        if n < self.min_samples:
            return Truncation(
                None, f"{n} samples: {self.name} needs at least {self.min_samples} to cut"
            )
        stat, passed, cut = self._whole_series(arr, times)
        verdict = format_statistic(
            self.statistic_label, stat, self.threshold, self.statistic_is_percent
        )
        if passed and cut >= 0:
            return Truncation(int(cut), f"{self.name} passes on {n} samples ({verdict}): cut {cut}")
        return Truncation(
            None,
            f"{self.name} does not pass on {n} samples ({verdict}): its cut {cut} is not usable",
        )

    def _whole_series(
        self, x: NDArray[np.float64], t: NDArray[np.float64] | None
    ) -> tuple[float, bool, int]:
        """Statistic, verdict and truncation after the last sample of the whole series.

        The default takes the last entry of `evaluate`; criteria that analyse the prefix
        only at check points override it with one analysis of the whole series.
        """
        ev = self._evaluate(x, t)
        trunc = -1 if ev.truncation is None else int(ev.truncation[-1])
        return float(ev.statistic[-1]), bool(ev.passed[-1]), trunc

    # ------------------------------------------------------------------ display
    def describe(self) -> str:
        """One line with the current statistic against the threshold."""
        return format_statistic(self.statistic_label, self.statistic_, self.threshold,
                                self.statistic_is_percent)


def format_statistic(label: str, value: float, threshold: float | None, percent: bool) -> str:
    """Format ``label=value`` (and the target) for logs and progress bars."""

    def fmt(v: float) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        return f"{v:.2%}" if percent else f"{v:.4g}"

    text = f"{label}={fmt(value)}"
    if threshold is not None:
        text += f" target={fmt(threshold)}"
    return text


def _format_validation_error(
    name: str, exc: ValidationError, params: type[CriterionParams]
) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(parameters)"
        if err["type"] == "extra_forbidden":
            parts.append(
                f"unknown parameter {loc!r} (valid parameters: {', '.join(param_names(params))})"
            )
        else:
            parts.append(f"parameter {loc!r}: {err['msg']} (got {err.get('input')!r})")
    return f"criterion {name!r}: " + "; ".join(parts)
