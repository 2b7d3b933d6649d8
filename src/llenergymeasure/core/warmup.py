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
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llenergymeasure.config.models import WarmupConfig
from llenergymeasure.criteria.base import Criterion
from llenergymeasure.criteria.registry import make_criterion
from llenergymeasure.criteria.stopping import StopRule
from llenergymeasure.domain.metrics import WarmupResult
from llenergymeasure.domain.trace import EnvironmentInfo, RunInfo, ShadowDecision, TraceMetadata
from llenergymeasure.progress import WarmupProgress
from llenergymeasure.traces.io import TraceWriter

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


class _Shadow:
    """A shadow criterion: fed the same samples, with its own stop tracker."""

    def __init__(self, key: str, criterion: Criterion, rule: StopRule) -> None:
        self.key = key
        self.criterion = criterion
        self.tracker = rule.tracker()
        self.failure: str | None = None

    def observe(self, latency: float, extras: Mapping[str, Any], t_s: float) -> None:
        if self.failure is not None or self.tracker.decision is not None:
            return
        try:
            self.criterion.update(_criterion_feed(latency, extras, self.criterion), t_s)
        except (KeyError, ValueError) as exc:  # missing signal, NaN side channel
            self.failure = f"could not be evaluated at sample {self.tracker.n}: {exc}"
            logger.warning("shadow criterion %s %s", self.key, self.failure)
            return
        self.tracker.observe(self.criterion.passed_)

    def decision(self) -> ShadowDecision:
        d = self.tracker.decision
        if d is not None:
            return ShadowDecision(stop_index=d.index, converged=d.converged, reason=d.reason)
        if self.failure is not None:
            return ShadowDecision(reason=self.failure)
        return ShadowDecision(reason=f"did not stop within {self.tracker.n} samples")


def _make_shadows(
    specs: Sequence[str | Criterion], criterion: Criterion, rule: StopRule
) -> list[_Shadow]:
    shadows: list[_Shadow] = []
    for item in specs:
        if isinstance(item, Criterion):
            key, crit = item.spec, item.clone()
        elif isinstance(item, str):
            key, crit = item, make_criterion(item)
        else:
            raise TypeError(
                f"shadow criteria must be spec strings or Criterion objects, got {item!r}"
            )
        if any(s.key == key for s in shadows):
            raise ValueError(f"shadow criterion {key!r} is given twice")
        shadows.append(_Shadow(key, crit, rule))
    return shadows


def _new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


class _Recorder:
    """Writes one trace row per attempt (or does nothing without a trace path)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        config: WarmupConfig,
        spec: str,
        shadows: Sequence[_Shadow],
        *,
        record_after_stop: int,
        trace_format: str | None,
        model: Mapping[str, Any] | None,
        tags: Mapping[str, str] | None,
        run_id: str | None,
    ) -> None:
        self.writer: TraceWriter | None = None
        self.trace_format = trace_format
        self.final_path: str | None = None
        self._warned: set[str] = set()
        if path is None:
            return
        run = RunInfo(
            run_id=run_id or _new_run_id(),
            status="recording",
            provenance={
                "source": "llenergymeasure.warmup_until_converged",
                "record_after_stop": record_after_stop,
                "shadow_criteria": [s.key for s in shadows],
            },
        )
        metadata = TraceMetadata(
            config=config.model_dump(mode="json"),
            criterion=spec,
            environment=EnvironmentInfo.capture(),
            model=dict(model or {}),
            tags={str(k): str(v) for k, v in (tags or {}).items()},
            runs=[run],
        )
        self.writer = TraceWriter(path, metadata, format=self.trace_format)

    def record(
        self,
        index: int,
        t_start: int,
        t_end: int,
        wall_start: int,
        latency: float | None,
        extras: Mapping[str, Any],
        error: str | None,
    ) -> None:
        if self.writer is None:
            return
        row: dict[str, Any] = {
            "index": index,
            "t_start_ns": t_start,
            "t_end_ns": t_end,
            "wall_start_ns": wall_start,
            "latency_ms": latency,
            "ok": error is None,
            "error": error,
        }
        for key, value in extras.items():
            if key in row or key == "run_id":
                if key not in self._warned:
                    self._warned.add(key)
                    logger.warning("not recording field %r returned by the inference callable: "
                                   "it is a reserved trace column", key)
                continue
            row[key] = value
        self.writer.write_attempt(row)

    def finalize(self, **updates: Any) -> None:
        if self.writer is None:
            return
        fmt = self.trace_format
        final = self.writer.finalize(format=fmt, **updates)
        self.final_path = str(final)


def warmup_until_converged(
    run_single_inference: InferenceFn,
    config: WarmupConfig,
    *,
    show_progress: bool = True,
    trace_path: str | os.PathLike[str] | None = None,
    shadow_criteria: Sequence[str | Criterion] = (),
    record_after_stop: int = 0,
    trace_format: str | None = None,
    model: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
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
    trace_path : path-like, optional
        Record every attempt to this trace file (format by suffix:
        ``.jsonl``, ``.parquet``, ``.csv``). Attempts stream to
        ``<trace_path>.partial.jsonl`` and the final file is written
        atomically at the end (see :class:`~llenergymeasure.traces.TraceWriter`).
    shadow_criteria : sequence of str or Criterion, default ()
        Criteria evaluated on the same samples, with the same
        :class:`~llenergymeasure.criteria.StopRule`, that never stop the run;
        their would-be stops are stored in the trace metadata
        (``RunInfo.shadow``, keyed by the spec as given, or ``Criterion.spec``).
    record_after_stop : int, default 0
        Keep measuring this many attempts after the stop (recorded in the
        trace and fed to the shadow criteria; the result still reports the
        stop). Ignored without ``trace_path``.
    trace_format : {"jsonl", "parquet", "csv"}, optional
        Final format, overriding the suffix of ``trace_path``.
    model : mapping, optional
        Model description stored in the trace metadata.
    tags : mapping of str to str, optional
        Free-form tags stored in the trace metadata.
    run_id : str, optional
        Run identifier in the trace (default: UTC time and a random suffix).

    Returns
    -------
    WarmupResult
        Non-convergence is reported in the result (``converged=False``), never
        raised; ``trace_path`` is the final trace file, if any.

    Notes
    -----
    * At most ``max_prompts`` attempts are made. Every successful latency is fed
      to the criterion; the :class:`~llenergymeasure.criteria.StopRule` from
      :meth:`WarmupConfig.make_stop_rule` decides, on successful samples only,
      when to stop (for the default rolling CV: the first time the CV of the
      last ``window_size`` samples is below ``cv_threshold`` once there are
      ``max(min_prompts, window_size)`` samples).
    * Sample times given to time-based criteria are the seconds from the start
      of the first attempt to the end of each successful one, as
      :meth:`~llenergymeasure.traces.Trace.sample_times_s` gives them back.
    * An exception raised by the callable, or a return value that is not a
      finite positive latency, is a *failed attempt*: logged as a warning,
      counted in ``failures`` / ``failure_types`` and toward ``max_prompts``,
      never recorded as a sample (the trace keeps it with ``ok=False`` and
      ``error``). If every attempt fails the status is ``"all_failed"``.
    * ``KeyboardInterrupt`` propagates after the progress bar is closed; with
      a trace, the trace is first finalised with ``interrupted=True`` and
      status ``"interrupted"``. Any other exception escaping the loop
      finalises it with status ``"error"``.
    """
    if record_after_stop < 0:
        raise ValueError(f"record_after_stop must be >= 0, got {record_after_stop}")
    criterion = config.make_criterion()
    spec = criterion.spec
    threshold = criterion.threshold
    target = math.nan if threshold is None else float(threshold)
    rule = config.make_stop_rule()
    shadows = _make_shadows(shadow_criteria, criterion, rule)
    extra_attempts = record_after_stop if trace_path is not None else 0
    recorder = _Recorder(
        trace_path, config, spec, shadows, record_after_stop=extra_attempts,
        trace_format=trace_format, model=model, tags=tags, run_id=run_id,
    )

    if not config.enabled:
        logger.info("warmup disabled")
        recorder.finalize(status="disabled", stop_reason="warmup is disabled")
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
            trace_path=recorder.final_path,
        )

    tracker = rule.tracker()
    progress = WarmupProgress(config.max_prompts, enabled=show_progress)
    latencies: list[float] = []
    failure_types: Counter[str] = Counter()
    attempts = 0
    decision = None
    first_start: int | None = None
    run_start = time.perf_counter_ns()

    def attempt(index: int) -> tuple[float, dict[str, Any], float] | None:
        """One call of the callable, recorded; the sample and its time, or None on failure."""
        nonlocal first_start
        wall = time.time_ns()
        t_start = time.perf_counter_ns() - run_start
        if first_start is None:
            first_start = t_start
        try:
            value = run_single_inference()
            t_end = time.perf_counter_ns() - run_start
            latency, extras = normalize_sample(value)
        except Exception as exc:  # a failed inference is recorded, never fatal
            t_end = time.perf_counter_ns() - run_start
            kind = type(exc).__name__
            failure_types[kind] += 1
            logger.warning("warmup attempt %d failed with %s: %s", index + 1, kind, exc)
            recorder.record(index, t_start, t_end, wall, None, {}, f"{kind}: {exc}")
            return None
        recorder.record(index, t_start, t_end, wall, latency, extras, None)
        return latency, extras, (t_end - first_start) / 1e9

    n_recorded = 0
    try:
        while attempts < config.max_prompts:
            attempts += 1
            sample = attempt(attempts - 1)
            if sample is None:
                progress.advance(criterion.describe(), sum(failure_types.values()))
                continue
            latency, extras, t_s = sample
            latencies.append(latency)
            criterion.update(_criterion_feed(latency, extras, criterion), t_s)
            for shadow in shadows:
                shadow.observe(latency, extras, t_s)
            progress.advance(criterion.describe(), sum(failure_types.values()))
            if config.convergence_detection:
                decision = tracker.observe(criterion.passed_)
                if decision is not None and decision.converged:
                    break
        progress.close()
        # The warmup ends at the stop: attempts recorded after it are not warmup time.
        duration = (time.perf_counter_ns() - run_start) / 1e9
        failures_at_stop = Counter(failure_types)
        n_recorded = attempts
        for k in range(extra_attempts):
            sample = attempt(attempts + k)
            n_recorded += 1
            if sample is not None:
                for shadow in shadows:
                    shadow.observe(*sample)
    except BaseException as exc:
        progress.close()
        interrupted = isinstance(exc, KeyboardInterrupt)
        try:
            recorder.finalize(
                status="interrupted" if interrupted else "error",
                interrupted=True,
                stop_index=decision.index if decision is not None and decision.converged
                else None,
                stop_reason=("interrupted by the user (KeyboardInterrupt)" if interrupted
                             else f"stopped by {type(exc).__name__}: {exc}"),
                shadow={s.key: s.decision() for s in shadows},
            )
        except Exception as fin_exc:  # keep the original exception; the partial file remains
            logger.error("could not finalise the trace: %s", fin_exc)
        raise
    failure_types = failures_at_stop

    failures = sum(failure_types.values())
    n = len(latencies)
    final = float(criterion.statistic_)
    stop_index = None
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
        stop_index = decision.index
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
    recorder.finalize(
        status=status,
        stop_index=stop_index,
        stop_reason=reason,
        shadow={s.key: s.decision() for s in shadows},
    )
    if recorder.final_path is not None:
        logger.info("trace of %d attempts written to %s", n_recorded, recorder.final_path)
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
        trace_path=recorder.final_path,
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
