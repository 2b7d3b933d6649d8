"""The warmup driver: run inferences until a criterion says warmup has ended.

:func:`warmup_until_converged` calls an inference callable repeatedly, feeds
every successful latency to the configured criterion and stops through the
same :class:`~llenergymeasure.criteria.StopRule` that offline replay uses, so
replaying a recorded trace stops exactly where the driver stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from llenergymeasure.config.models import WarmupConfig
from llenergymeasure.criteria.base import Criterion
from llenergymeasure.domain.metrics import WarmupResult
from llenergymeasure.progress import WarmupProgress

__all__ = ["InvalidLatencyError", "normalize_sample", "warmup_until_converged"]

logger = logging.getLogger(__name__)

InferenceFn = Callable[[], Any]


class InvalidLatencyError(ValueError):
    """The inference callable returned something that is not a finite positive latency."""


def normalize_sample(value: Any) -> tuple[float, dict[str, Any]]:
    """Split a callable's return value into the latency and the other recorded fields.

    Parameters
    ----------
    value : float, mapping or dataclass
        A latency in milliseconds, or a mapping / dataclass instance with a
        ``latency_ms`` entry and any other measured fields.

    Returns
    -------
    latency_ms : float
        The latency, finite and positive.
    extras : dict
        The other fields (empty for a plain number).

    Raises
    ------
    InvalidLatencyError
        If there is no latency, or it is not a finite positive number.
    """
    extras: dict[str, Any] = {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        if "latency_ms" not in value:
            raise InvalidLatencyError(
                f"the inference callable returned a mapping without 'latency_ms' "
                f"(keys: {sorted(value)})"
            )
        extras = {k: v for k, v in value.items() if k != "latency_ms" and v is not None}
        value = value["latency_ms"]
    if isinstance(value, (bool, str, bytes)):
        raise InvalidLatencyError(f"latency must be a number of milliseconds, got {value!r}")
    try:
        latency = float(value)
    except (TypeError, ValueError):
        raise InvalidLatencyError(
            f"latency must be a number of milliseconds, got {type(value).__name__} {value!r}"
        ) from None
    if not math.isfinite(latency) or latency <= 0:
        raise InvalidLatencyError(f"latency must be finite and positive, got {latency!r} ms")
    return latency, extras


def _criterion_feed(latency: float, extras: Mapping[str, Any], criterion: Criterion) -> Any:
    """What to pass to ``criterion.update``: the latency, or a record of every signal."""
    if criterion.signals == ("latency_ms",):
        return latency
    record = {"latency_ms": latency}
    for key, v in extras.items():
        try:
            record[key] = float(v)
        except (TypeError, ValueError):
            continue
    missing = [s for s in criterion.signals if s not in record]
    if missing:
        raise KeyError(
            f"criterion {criterion.spec!r} watches {missing}, but the inference callable "
            f"returned only {sorted(record)}; return a mapping with these fields"
        )
    return record


def warmup_until_converged(
    run_single_inference: InferenceFn,
    config: WarmupConfig,
    *,
    show_progress: bool = True,
) -> WarmupResult:
    """Run inferences until the configured criterion converges or the cap is hit.

    Parameters
    ----------
    run_single_inference : callable
        Runs one inference and returns its latency in milliseconds (or a
        mapping / dataclass with ``latency_ms`` and other measured fields).
    config : WarmupConfig
        Criterion, cap and stop-rule settings.
    show_progress : bool, default True
        Draw a tqdm bar; False creates no bar at all.

    Returns
    -------
    WarmupResult
        Non-convergence is reported in the result (``converged=False``), never
        raised.

    Notes
    -----
    * At most ``max_prompts`` attempts are made. Every successful latency is fed
      to the criterion; the :class:`~llenergymeasure.criteria.StopRule` from
      :meth:`WarmupConfig.make_stop_rule` decides, on successful samples only,
      when to stop (for the default rolling CV: the first time the CV of the
      last ``window_size`` samples is below ``cv_threshold`` once there are
      ``max(min_prompts, window_size)`` samples).
    * An exception raised by the callable, or a return value that is not a
      finite positive latency, is a *failed attempt*: logged as a warning,
      counted in ``failures`` / ``failure_types`` and toward ``max_prompts``,
      never recorded as a sample. If every attempt fails the status is
      ``"all_failed"``.
    * ``KeyboardInterrupt`` propagates after the progress bar is closed.
    """
    criterion = config.make_criterion()
    spec = criterion.spec
    threshold = criterion.threshold
    target = math.nan if threshold is None else float(threshold)

    if not config.enabled:
        logger.info("warmup disabled")
        return WarmupResult(
            converged=True,
            status="disabled",
            final_cv=0.0,
            target_cv=target if config.criterion is not None else config.cv_threshold,
            iterations_completed=0,
            attempts=0,
            failures=0,
            max_prompts=config.max_prompts,
            stop_reason="warmup is disabled",
            duration_s=0.0,
            criterion=spec,
        )

    tracker = config.make_stop_rule().tracker()
    progress = WarmupProgress(config.max_prompts, enabled=show_progress)
    latencies: list[float] = []
    failure_types: Counter[str] = Counter()
    attempts = 0
    decision = None
    run_start = time.perf_counter_ns()
    try:
        while attempts < config.max_prompts:
            attempts += 1
            try:
                value = run_single_inference()
                latency, extras = normalize_sample(value)
            except Exception as exc:  # a failed inference is recorded, never fatal
                kind = type(exc).__name__
                failure_types[kind] += 1
                logger.warning("warmup attempt %d failed with %s: %s", attempts, kind, exc)
                progress.advance(criterion.describe(), sum(failure_types.values()))
                continue
            t_s = (time.perf_counter_ns() - run_start) / 1e9
            latencies.append(latency)
            criterion.update(_criterion_feed(latency, extras, criterion), t_s)
            progress.advance(criterion.describe(), sum(failure_types.values()))
            if config.convergence_detection:
                decision = tracker.observe(criterion.passed_)
                if decision is not None and decision.converged:
                    break
    finally:
        progress.close()
    duration = (time.perf_counter_ns() - run_start) / 1e9

    failures = sum(failure_types.values())
    n = len(latencies)
    final = float(criterion.statistic_)
    if n == 0:
        status = "all_failed"
        converged = False
        reason = (
            f"all {attempts} warmup attempts failed "
            f"({', '.join(f'{k} x{v}' for k, v in failure_types.most_common())})"
        )
        logger.warning("warmup: %s; no latency was recorded", reason)
    elif not config.convergence_detection:
        status = "fixed"
        converged = True
        reason = f"fixed warmup of {attempts} attempts ({n} successful)"
        logger.info("warmup: %s (%s)", reason, criterion.describe())
    elif decision is not None and decision.converged:
        status = "converged"
        converged = True
        reason = (
            f"converged after {n} prompts ({attempts} attempts): "
            f"{_comparison(criterion)}; {decision.reason}"
        )
        logger.info("warmup converged after %d prompts (%s)", n, _comparison(criterion))
    else:
        status = "not_converged"
        converged = False
        reason = (
            f"did not converge within max_prompts={config.max_prompts} attempts "
            f"({n} successful, {failures} failed); last {criterion.describe()}"
        )
        logger.warning(
            "warmup did not converge after %d attempts: final %s",
            attempts,
            criterion.describe(),
        )
    return WarmupResult(
        converged=converged,
        status=status,
        final_cv=final,
        target_cv=target,
        iterations_completed=n,
        attempts=attempts,
        failures=failures,
        failure_types=dict(failure_types),
        max_prompts=config.max_prompts,
        latencies_ms=latencies,
        stop_reason=reason,
        duration_s=duration,
        criterion=spec,
    )


def _comparison(criterion: Criterion) -> str:
    """``CV=3.21% < 5.00%`` for threshold criteria, else the criterion's description."""
    thr = criterion.threshold
    stat = criterion.statistic_
    if thr is None or math.isnan(stat) or criterion.name in ("all_of", "any_of"):
        return criterion.describe()
    if criterion.statistic_is_percent:
        return f"{criterion.statistic_label}={stat:.2%} < {thr:.2%}"
    return f"{criterion.statistic_label}={stat:.4g} vs threshold {thr:.4g}"
