"""Turning a criterion's verdicts into a stop: `StopRule`.

One rule serves both the online driver and offline replay, so a trace replayed
offline stops exactly where the driver would have stopped on it.

With `n = t + 1` samples seen, a *check* happens at sample index `t` when
`n >= min_samples` and `(n - min_samples) % check_every == 0`. At each
check the criterion's verdict for `t` is read; the rule stops at the first
check that completes `patience` consecutive passing checks (a failing check
resets the count). Independently, when `max_samples` is set the rule stops
at index `max_samples - 1` (the cap) if it has not stopped before; such a
stop is not a convergence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llenergymeasure.criteria.base import Evaluation

__all__ = ["StopDecision", "StopRule", "StopTracker"]


@dataclass(frozen=True)
class StopDecision:
    """Where and why a `StopRule` stopped.

    Attributes
    ----------
    index : int
        0-based index of the sample at which the rule stopped.
    converged : bool
        True when the criterion passed `patience` consecutive checks; False
        when the rule stopped at `max_samples`.
    reason : str
        One human sentence.
    """

    index: int
    converged: bool
    reason: str


class StopRule(BaseModel):
    """Minimum samples, check cadence, patience and cap shared by driver and replay.

    Parameters
    ----------
    min_samples : int, default 1
        No check before this many samples.
    check_every : int, default 1
        Check every this many samples from `min_samples` on.
    patience : int, default 1
        Number of consecutive passing checks needed to stop.
    max_samples : int or None, default None
        Stop (without convergence) at this many samples.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_samples: int = Field(1, ge=1, description="No check before this many samples.")
    check_every: int = Field(1, ge=1, description="Check every this many samples.")
    patience: int = Field(1, ge=1, description="Consecutive passing checks needed to stop.")
    max_samples: int | None = Field(
        None, ge=1, description="Stop without convergence at this many samples (None: no cap)."
    )

    def is_check(self, n: int) -> bool:
        """Whether a check happens when `n` samples have been seen."""
        return n >= self.min_samples and (n - self.min_samples) % self.check_every == 0

    def check_indices(self, n: int) -> np.ndarray:
        """0-based sample indices of the checks within `n` samples."""
        return np.arange(self.min_samples - 1, n, self.check_every, dtype=np.int64)

    def decide(self, evaluation: Evaluation | np.ndarray) -> StopDecision | None:
        """Offline decision over a whole evaluation.

        Parameters
        ----------
        evaluation : Evaluation or ndarray of bool
            The criterion's verdicts (or the `passed` array itself).

        Returns
        -------
        StopDecision or None
            None when neither convergence nor the cap is reached.
        """
        passed = evaluation.passed if isinstance(evaluation, Evaluation) else np.asarray(
            evaluation, dtype=bool
        )
        n = passed.shape[0]
        idx = self.converged_index(passed)
        if idx is not None and (self.max_samples is None or idx < self.max_samples):
            return StopDecision(idx, True, self.converged_reason(idx))
        if self.max_samples is not None and n >= self.max_samples:
            return StopDecision(self.max_samples - 1, False, self.cap_reason())
        return None

    def converged_index(self, passed: np.ndarray) -> int | None:
        """First index at which `patience` consecutive checks have passed (no cap)."""
        checks = self.check_indices(passed.shape[0])
        if checks.size == 0:
            return None
        ok = passed[checks]
        if self.patience == 1:
            hits = np.flatnonzero(ok)
            return int(checks[hits[0]]) if hits.size else None
        # Length of the run of passes ending at each check.
        idx = np.arange(ok.size)
        last_fail = np.maximum.accumulate(np.where(~ok, idx, -1))
        run = idx - last_fail
        hits = np.flatnonzero(run >= self.patience)
        return int(checks[hits[0]]) if hits.size else None

    def stop_index(self, evaluation: Evaluation | np.ndarray) -> int | None:
        """0-based index of the sample at which warmup stops, or None.

        The stop is either a convergence or the `max_samples` cap; use
        `decide` to tell which.
        """
        decision = self.decide(evaluation)
        return None if decision is None else decision.index

    def tracker(self) -> StopTracker:
        """A fresh online twin of this rule."""
        return StopTracker(self)

    def converged_reason(self, idx: int) -> str:
        """The sentence of a convergence at sample index `idx`."""
        extra = f" on {self.patience} consecutive checks" if self.patience > 1 else ""
        return f"the criterion passed{extra} at sample {idx + 1}"

    def cap_reason(self) -> str:
        """The sentence of a stop at the `max_samples` cap."""
        return f"reached the cap of {self.max_samples} samples without convergence"

    def no_stop_reason(self, n: int) -> str:
        """The sentence of a run of `n` samples on which the rule never stopped."""
        if n == 0:
            return "no successful samples to replay"
        if n < self.min_samples:
            return (f"only {n} samples, fewer than min_samples={self.min_samples}: "
                    "no check happened")
        extra = f" on {self.patience} consecutive checks" if self.patience > 1 else ""
        return f"the criterion never passed{extra} within the {n} samples of the trace"

    def sweep(
        self, statistic: np.ndarray, values: np.ndarray, op: str
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Stops for many values of a sweep parameter at once.

        For a criterion whose verdict is a comparison of its statistic with one
        parameter (its `sweep_parameter`): `passed == statistic < value` for
        `op="<"` (NaN never passes) or `passed == statistic >= value` for
        `op=">="`. The first passing check is found for every value together
        from a running minimum (`<`) or maximum (`>=`) of the statistic at the
        checks and a binary search, so the cost is one pass over the statistic
        plus $O(m \log c)$ for $m$ values and $c$ checks. With patience $p > 1$
        the statistic at check $j$ is first replaced by its worst value over
        checks $j - p + 1 .. j$: $p$ passing checks in a row end at $j$ exactly
        when that worst value passes. The cap is applied as `decide` does.

        Parameters
        ----------
        statistic : ndarray of float
            The criterion's statistic after every sample.
        values : ndarray of float
            Values of the swept parameter.
        op : {"<", ">="}
            How the statistic is compared with a value.

        Returns
        -------
        stop : ndarray of int64
            Stop index for each value, -1 where the rule does not stop.
        converged : ndarray of bool
            Whether each stop is a convergence (not the cap).

        Raises
        ------
        ValueError
            An unknown `op`.
        """
        if op not in ("<", ">="):
            raise ValueError(f"op must be '<' or '>=', got {op!r}")
        stat = np.asarray(statistic, dtype=np.float64)
        vals = np.asarray(values, dtype=np.float64)
        n = stat.shape[0]
        checks = self.check_indices(n)
        conv_idx = np.full(vals.shape[0], -1, dtype=np.int64)
        p = self.patience
        if checks.size >= p:
            below = op == "<"
            fill = np.inf if below else -np.inf  # NaN never passes
            s = stat[checks]
            s = np.where(np.isnan(s), fill, s)
            if p > 1:
                win = np.lib.stride_tricks.sliding_window_view(s, p)
                worst = win.max(axis=1) if below else win.min(axis=1)
                s = np.concatenate([np.full(p - 1, fill), worst])
            if below:
                pos = np.searchsorted(-np.minimum.accumulate(s), -vals, side="right")
            else:
                pos = np.searchsorted(np.maximum.accumulate(s), vals, side="left")
            hit = pos < checks.size
            conv_idx[hit] = checks[pos[hit]]
        converged = conv_idx >= 0
        cap = self.max_samples
        if cap is None:
            return conv_idx, converged
        converged &= conv_idx < cap
        stop = np.where(converged, conv_idx, cap - 1 if n >= cap else -1)
        return stop.astype(np.int64, copy=False), converged


class StopTracker:
    """Online twin of `StopRule`: feed one verdict per sample.

    Parameters
    ----------
    rule : StopRule
        The rule to follow.

    Attributes
    ----------
    n : int
        Samples observed.
    consecutive : int
        Passing checks in a row so far.
    decision : StopDecision or None
        Set once the rule has stopped.
    """

    def __init__(self, rule: StopRule) -> None:
        self.rule = rule
        self.n = 0
        self.consecutive = 0
        self.decision: StopDecision | None = None
        # The (frozen) rule's fields as plain attributes: `observe` runs once per sample.
        self._min = rule.min_samples
        self._every = rule.check_every
        self._patience = rule.patience
        self._cap = rule.max_samples

    def observe(self, passed: bool) -> StopDecision | None:
        """Record the verdict for the next sample; return the decision if the rule stops now."""
        if self.decision is not None:
            raise RuntimeError("the stop rule has already stopped; start a new tracker")
        n = self.n = self.n + 1
        # `StopRule.is_check(n)`, spelled out
        if n >= self._min and (self._every == 1 or (n - self._min) % self._every == 0):
            if not passed:
                self.consecutive = 0
            else:
                self.consecutive += 1
                if self.consecutive >= self._patience:
                    self.decision = StopDecision(n - 1, True, self.rule.converged_reason(n - 1))
                    return self.decision
        if self._cap is not None and n >= self._cap:
            self.decision = StopDecision(n - 1, False, self.rule.cap_reason())
            return self.decision
        return None

    @property
    def is_check(self) -> bool:
        """Whether the last observed sample was a check."""
        return self.n > 0 and self.rule.is_check(self.n)
