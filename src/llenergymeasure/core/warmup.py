"""The warmup driver: run inferences until a criterion says warmup has ended.

`warmup_until_converged` calls an inference callable repeatedly, feeds
every successful latency to the configured criterion and stops through the
same `StopRule` that offline replay uses, so
replaying a recorded trace stops exactly where the driver stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from llenergymeasure.config.models import WarmupConfig
from llenergymeasure.core.inference import (  # re-exported: importable from the driver module
    create_warmup_inference_fn as create_warmup_inference_fn,
)
from llenergymeasure.criteria.base import Criterion
from llenergymeasure.criteria.registry import make_criterion
from llenergymeasure.criteria.stopping import StopRule
from llenergymeasure.domain.metrics import WarmupResult
from llenergymeasure.progress import WarmupProgress, progress_bar
from llenergymeasure.traces.io import TraceWriter, encode_key, encode_value, value_problem
from llenergymeasure.traces.model import (
    ALL_COLUMNS,
    REQUIRED_COLUMNS,
    RunInfo,
    ShadowDecision,
    TraceMetadata,
)

if TYPE_CHECKING:  # core.timing and core.environment are imported when a run needs them
    from llenergymeasure.core.timing import ThrottleFilter

__all__ = [
    "LATENCY_MISMATCH_FACTOR",
    "InvalidLatencyError",
    "normalize_sample",
    "warmup_until_converged",
]

logger = logging.getLogger(__name__)

InferenceFn = Callable[[], Any]

#: The driver warns (once per run) when a returned latency and the time the
#: driver measured around the call differ by more than this factor.
LATENCY_MISMATCH_FACTOR = 10.0


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
    """A shadow criterion: fed the same samples, with its own stop tracker.

    The driver's main loop inlines `observe` (same steps, one call less per
    shadow and sample); the loop after the stop calls it.
    """

    __slots__ = ("criterion", "done", "failure", "key", "latency_only", "track", "tracker",
                 "update")

    def __init__(self, key: str, criterion: Criterion, rule: StopRule) -> None:
        self.key = key
        self.criterion = criterion
        self.tracker = rule.tracker()
        self.failure: str | None = None
        self.done = False
        self.latency_only = criterion.signals == ("latency_ms",)
        self.update = criterion.update
        self.track = self.tracker.observe

    def observe(self, latency: float, extras: Mapping[str, Any], t_s: float) -> bool:
        """Feed one sample; True once the shadow has stopped (or failed), then it ignores more."""
        if self.done:
            return True
        try:
            self.update(
                latency if self.latency_only else _criterion_feed(latency, extras, self.criterion),
                t_s,
            )
        except (KeyError, ValueError) as exc:  # missing signal, NaN side channel
            self.fail(exc)
            return True
        if self.track(self.criterion.passed_) is not None:
            self.done = True
        return self.done

    def fail(self, exc: Exception) -> None:
        """The sample could not be fed (missing signal, NaN side channel): stop observing."""
        self.failure = f"could not be evaluated at sample {self.tracker.n + 1}: {exc}"
        logger.warning("shadow criterion %s %s", self.key, self.failure)
        self.done = True

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


#: Trace columns the driver writes itself; a callable's field of the same name is not recorded.
_DRIVER_COLUMNS = frozenset({*REQUIRED_COLUMNS, "throttled"})
#: The fields of a callable that returned a plain latency (read-only: shared by every attempt).
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})
_INF = math.inf
_I64 = 2**63  # the Int64 columns hold 64-bit integers


class _Recorder:
    """Writes one trace row per attempt (or does nothing without a trace path).

    Rows are built as JSON text from a pre-serialised prefix (run id and key
    names), without an intermediate dict: the values the driver writes are
    plain ints, finite floats and strings, and the callable's fields are
    checked against the trace schema once per value, so the in-progress file
    is valid by construction and `finalize` need not re-parse it. For each
    field name the recorder keeps, after its first appearance, the encoded
    key and whether a plain `float` or `int` may go in as it is (any value
    may go in an unknown column; a float only in a float64 one, an int in a
    float64 or integer one): such values are written at once, the rest are
    checked by `value_problem` and encoded by `encode_value`, which write the
    same text.
    """

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
        overwrite: bool,
        append: bool,
        throttle: ThrottleFilter | None,
        timeout_s: float | None,
    ) -> None:
        self.writer: TraceWriter | None = None
        self.trace_format = trace_format
        self.final_path: str | None = None
        #: ns since the epoch at the driver's clock origin (set by the driver).
        self.wall0 = 0
        self._warned: set[str] = set()
        # `latency_ms` is in a returned mapping but written by the driver: skipped silently.
        self._keys: dict[str, tuple[str, bool, bool] | None] = {"latency_ms": None}
        # `, "key": ` of the fields where a plain float goes in as it is (filled by `_key`).
        self._float_as_is: dict[str, str] = {}
        if path is None:
            return
        from llenergymeasure.core.environment import capture_environment

        provenance: dict[str, Any] = {
            "source": "llenergymeasure.warmup_until_converged",
            "record_after_stop": record_after_stop,
            "shadow_criteria": [s.key for s in shadows],
        }
        if throttle is not None:
            provenance["throttle_filter"] = throttle.model_dump(mode="json")
        if timeout_s is not None:
            provenance["timeout_s"] = timeout_s
        run = RunInfo(run_id=run_id or _new_run_id(), status="recording", provenance=provenance)
        metadata = TraceMetadata(
            config=config.model_dump(mode="json"),
            criterion=spec,
            environment=capture_environment(),
            model=dict(model or {}),
            tags={str(k): str(v) for k, v in (tags or {}).items()},
            runs=[run],
        )
        self.writer = TraceWriter(path, metadata, overwrite=overwrite, append=append,
                                  format=self.trace_format)
        self._write = self.writer.line_writer()
        self._prefix = "{" + encode_key("run_id") + encode_value(run.run_id) + ', "index": '

    def _key(self, key: str) -> tuple[str, bool, bool] | None:
        """`(', "key": ', plain float ok?, plain int ok?)` for a field; None if not recorded."""
        entry: tuple[str, bool, bool] | None
        if key in _DRIVER_COLUMNS:
            logger.warning("not recording field %r returned by the inference callable: it is a "
                           "column the driver writes itself", key)
            entry = None
        else:
            spec = ALL_COLUMNS.get(key)
            dtype = None if spec is None else spec.dtype
            entry = (", " + encode_key(key), dtype in (None, "float64"),
                     dtype in (None, "float64", "Int64", "int64"))
            if entry[1]:
                self._float_as_is[key] = entry[0]
        self._keys[key] = entry
        return entry

    def sample(self, index: int, t_start: int, t_end: int, latency: float,
               fields: Mapping[str, Any], throttled: bool | None) -> None:
        """Write a successful attempt: `latency` (a finite float) and the callable's `fields`.

        `fields` may hold `latency_ms` itself and `None` values: neither is written.
        """
        line = (f'{self._prefix}{index}, "t_start_ns": {t_start}, "t_end_ns": {t_end}, '
                f'"wall_start_ns": {self.wall0 + t_start}, "latency_ms": {latency!r}, '
                '"ok": true, "error": null')
        if throttled is not None:
            line += ', "throttled": true' if throttled else ', "throttled": false'
        if fields:
            as_is = self._float_as_is
            for key, value in fields.items():
                if value.__class__ is float:  # the common case: a float for a float column
                    text = as_is.get(key)
                    if text is not None:
                        line += text + (repr(value) if -_INF < value < _INF else "null")
                        continue
                if value is None or key == "latency_ms":
                    continue
                entry = self._keys[key] if key in self._keys else self._key(key)
                if entry is None:
                    continue
                cls = value.__class__
                if cls is float and entry[1]:
                    line += entry[0] + (repr(value) if -_INF < value < _INF else "null")
                elif cls is int and entry[2] and -_I64 <= value < _I64:
                    line += entry[0] + int.__repr__(value)
                else:
                    problem = value_problem(key, value)
                    if problem is not None:
                        if key not in self._warned:
                            self._warned.add(key)
                            logger.warning("not recording %s (attempt %d); later values of the "
                                           "wrong type are dropped too", problem, index + 1)
                        continue
                    line += entry[0] + encode_value(value)
        self._write(line + "}")

    def failure(self, index: int, t_start: int, t_end: int, error: str) -> None:
        """Write a failed attempt with its `error` text."""
        self._write(f'{self._prefix}{index}, "t_start_ns": {t_start}, "t_end_ns": {t_end}, '
                    f'"wall_start_ns": {self.wall0 + t_start}, "latency_ms": null, "ok": false, '
                    f'"error": {encode_value(error)}}}')

    def finalize(self, **updates: Any) -> None:
        if self.writer is None:
            return
        final = self.writer.finalize(format=self.trace_format, validate=False, **updates)
        self.final_path = str(final)


class _Job:
    """One call handed to the worker thread."""

    __slots__ = ("done", "exc", "t_end", "t_start", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.exc: BaseException | None = None
        self.t_start = 0
        self.t_end = 0


class _TimedCaller:
    """Runs the inference callable in a daemon worker thread so that an attempt can time out.

    Python cannot stop a thread: on a timeout the call is *abandoned* — it
    keeps running in its thread, whose result is discarded, and that thread
    exits once the call returns. Later attempts run in a fresh worker thread,
    so the driver never waits on a hung call (they may overlap with the
    abandoned one while it is still running).
    """

    def __init__(self, fn: InferenceFn, timeout_s: float) -> None:
        self.fn = fn
        self.timeout_s = timeout_s
        self.abandoned: list[threading.Thread] = []
        self._start_worker()

    def _start_worker(self) -> None:
        jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        fn = self.fn
        perf = time.perf_counter_ns

        def loop() -> None:
            while True:
                job = jobs.get()
                if job is None:
                    return
                job.t_start = perf()
                try:
                    job.value = fn()
                except BaseException as exc:  # handed to the driver's thread
                    job.exc = exc
                job.t_end = perf()
                job.done.set()

        self._jobs = jobs
        self._thread = threading.Thread(target=loop, name="llem-warmup-inference", daemon=True)
        self._thread.start()

    def __call__(self) -> tuple[int, int, Any]:
        """`(t_start_ns, t_end_ns, value)` of one call; TimeoutError after `timeout_s`."""
        job = _Job()
        self._jobs.put(job)
        if not job.done.wait(self.timeout_s):
            self._jobs.put(None)  # the abandoned worker exits once its call returns
            self.abandoned.append(self._thread)
            self._start_worker()
            raise TimeoutError(
                f"no result within timeout_s={self.timeout_s:g} s; the call was abandoned and "
                "keeps running in a background thread (a thread cannot be stopped), its result "
                "will be discarded"
            )
        if job.exc is not None:
            raise job.exc
        return job.t_start, job.t_end, job.value

    def close(self) -> int:
        """Stop the idle worker; return how many abandoned calls are still running."""
        self._jobs.put(None)
        return sum(t.is_alive() for t in self.abandoned)


def _check_args(run_single_inference: Any, config: Any, record_after_stop: int,
                timeout_s: float | None, overwrite: bool, append: bool) -> None:
    if not callable(run_single_inference):
        raise TypeError(
            "run_single_inference must be a callable that runs one inference and returns its "
            f"latency in ms, got {type(run_single_inference).__name__} {run_single_inference!r}"
        )
    if not isinstance(config, WarmupConfig):
        raise TypeError(f"config must be a WarmupConfig, got {type(config).__name__}")
    if isinstance(record_after_stop, bool) or not isinstance(record_after_stop, int) \
            or record_after_stop < 0:
        raise ValueError(f"record_after_stop must be an int >= 0, got {record_after_stop!r}")
    if timeout_s is not None and (
        isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
        or not math.isfinite(timeout_s) or timeout_s <= 0
    ):
        raise ValueError(f"timeout_s must be a finite number of seconds > 0, got {timeout_s!r}")
    if overwrite and append:
        raise ValueError("overwrite=True and append=True exclude each other")


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
    overwrite: bool = False,
    append: bool = False,
    timeout_s: float | None = None,
    throttle: ThrottleFilter | None = None,
) -> WarmupResult:
    """Run inferences until the configured criterion converges or the cap is hit.

    Parameters
    ----------
    run_single_inference : callable
        Runs one inference and returns its latency in milliseconds (or a
        mapping / dataclass with `latency_ms` and other measured fields).
    config : WarmupConfig
        Criterion, cap and stop-rule settings.
    show_progress : bool, default True
        Draw a tqdm bar; False creates no bar at all.
    trace_path : path-like, optional
        Record every attempt to this trace file (format by suffix:
        `.jsonl`, `.parquet`, `.csv`). Attempts stream to
        `<trace_path>.partial.jsonl` and the final file is written
        atomically at the end (see `llenergymeasure.traces.TraceWriter`).
        A finished trace already there is never overwritten: a
        `TraceExistsError` naming the file is raised before the first call,
        unless `overwrite` or `append`.
    shadow_criteria : sequence of str or Criterion, default ()
        Criteria evaluated on the same samples, with the same `StopRule`, that
        never stop the run; their would-be stops are stored in the trace
        metadata (`RunInfo.shadow`, keyed by the spec as given, or
        `Criterion.spec`). They are fed when the trace is finalised, from the
        samples kept during the run (so that their cost does not fall between
        two calls), and not at all without `trace_path`.
    record_after_stop : int, default 0
        Keep measuring this many attempts after the stop (recorded in the
        trace and fed to the shadow criteria; the result still reports the
        stop). Ignored without `trace_path`.
    trace_format : {"jsonl", "parquet", "csv"}, optional
        Final format, overriding the suffix of `trace_path`.
    model : mapping, optional
        Model description stored in the trace metadata.
    tags : mapping of str to str, optional
        Free-form tags stored in the trace metadata.
    run_id : str, optional
        Run identifier in the trace (default: UTC time and a random suffix).
    overwrite : bool, default False
        Replace a finished trace at `trace_path` (atomically, when the run is
        finalised: the old file stays whole until then).
    append : bool, default False
        Add this run (a new run id) to the finished trace at `trace_path`
        (created when absent); the file keeps its format.
    timeout_s : float, optional
        Per-attempt timeout in seconds. Each call then runs in a daemon worker
        thread; a call with no result after `timeout_s` is a failed attempt
        (`TimeoutError` in `failure_types`). See the notes for what happens
        to the call itself.
    throttle : ThrottleFilter, optional
        Flag samples taken while the GPU throttles (NVML throttle reasons, or
        the SM clock below a fraction of its maximum) and keep them out of the
        criterion, NVBench-style (see `llenergymeasure.core.timing.ThrottleFilter`).

    Returns
    -------
    WarmupResult
        Non-convergence is reported in the result (`converged=False`), never
        raised; `trace_path` is the final trace file, if any.

    Raises
    ------
    TypeError
        `run_single_inference` is not callable, or `config` is not a
        `WarmupConfig` (before any call).
    ValueError
        A negative `record_after_stop`, a non-positive `timeout_s`, both
        `overwrite` and `append`, or (with `append`) a run id already in the
        file.
    TraceExistsError
        A finished trace is at `trace_path` and neither `overwrite` nor
        `append` was given.

    Notes
    -----
    * At most `max_prompts` attempts are made. Every successful latency is fed
      to the criterion; the `StopRule` from `WarmupConfig.make_stop_rule`
      decides, on samples only, when to stop (for the default rolling CV: the
      first time the CV of the last `window_size` samples is below
      `cv_threshold` once there are `max(min_prompts, window_size)` samples).
    * Sample times given to time-based criteria are the seconds from the start
      of the first attempt to the end of each sample, as
      `Trace.sample_times_s` gives them back.
    * An exception raised by the callable, a timed-out call, or a return value
      that is not a finite positive latency is a *failed attempt*: logged as a
      warning, counted in `failures` / `failure_types` and toward
      `max_prompts`, never a sample (the trace keeps it with `ok=False` and
      `error`). If every attempt fails the status is `"all_failed"`.
    * The driver times every call itself. When a returned latency and the
      measured call time differ by more than `LATENCY_MISMATCH_FACTOR` (10x)
      either way, one warning per run names both numbers: a callable that
      returns seconds instead of milliseconds is 1000x too small. The returned
      value is still what is recorded.
    * With `timeout_s`, a timed-out call cannot be killed (Python has no way
      to stop a thread): it is abandoned and keeps running in its daemon
      thread, its eventual result is discarded, and the next attempt starts at
      once in a fresh worker thread — so the driver never hangs on it, but
      later attempts may overlap with it while it runs (a warning says so, and
      the end of the run logs how many are still running). Daemon threads do
      not keep the interpreter alive at exit.
    * `KeyboardInterrupt` propagates after the progress bar is closed; with
      a trace, the trace is first finalised with `interrupted=True` and
      status `"interrupted"`. Any other exception escaping the loop
      finalises it with status `"error"`.
    """
    _check_args(run_single_inference, config, record_after_stop, timeout_s, overwrite, append)
    from llenergymeasure.core.timing import energy_per_token_mj

    criterion = config.make_criterion()
    spec = criterion.spec
    threshold = criterion.threshold
    target = math.nan if threshold is None else float(threshold)
    label = criterion.statistic_label
    rule = config.make_stop_rule()
    shadows = _make_shadows(shadow_criteria, criterion, rule)
    extra_attempts = record_after_stop if trace_path is not None else 0
    recorder = _Recorder(
        trace_path, config, spec, shadows, record_after_stop=extra_attempts,
        trace_format=trace_format, model=model, tags=tags, run_id=run_id,
        overwrite=overwrite, append=append, throttle=throttle, timeout_s=timeout_s,
    )

    if not config.enabled:
        logger.info("warmup disabled")
        recorder.finalize(status="disabled", stop_reason="warmup is disabled")
        return WarmupResult(
            converged=True, status="disabled", final_statistic=math.nan,
            target_statistic=target, statistic_label=label, iterations_completed=0,
            attempts=0, failures=0, max_prompts=config.max_prompts,
            stop_reason="warmup is disabled", duration_s=0.0, criterion=spec,
            trace_path=recorder.final_path,
        )

    tracker = rule.tracker()
    progress = WarmupProgress(config.max_prompts, enabled=show_progress)
    bar = progress.bar is not None
    caller = _TimedCaller(run_single_inference, timeout_s) if timeout_s is not None else None
    latencies: list[float] = []
    failure_types: Counter[str] = Counter()
    counts = {"failures": 0, "throttled": 0}
    check_units = True  # until the first latency-unit warning
    warn_no_throttle_info = True
    attempts = 0
    decision = None
    perf = time.perf_counter_ns
    call = run_single_inference
    write_sample = recorder.sample if recorder.writer is not None else None
    feed_latency_only = criterion.signals == ("latency_ms",)
    low, high = 1.0 / LATENCY_MISMATCH_FACTOR, LATENCY_MISMATCH_FACTOR
    inf = _INF
    run_start = perf()
    recorder.wall0 = time.time_ns()
    first_start: int | None = None

    def failed(index: int, t_submit: int, exc: Exception) -> None:
        """Count, log and record a failed attempt that started at `t_submit`."""
        nonlocal first_start
        t1 = perf()
        t_start = t_submit - run_start
        if first_start is None:
            first_start = t_start
        kind = type(exc).__name__
        failure_types[kind] += 1
        counts["failures"] += 1
        logger.warning("warmup attempt %d failed with %s: %s", index + 1, kind, exc)
        if write_sample is not None:
            recorder.failure(index, t_start, t1 - run_start, f"{kind}: {exc}")

    def attempt(index: int) -> tuple[float, Mapping[str, Any], float] | None:
        """One call, recorded; the sample, its fields and its time, or None (failed, throttled).

        The fields are the callable's mapping itself when it returned a dict
        (`latency_ms` and `None` values included: the recorder and
        `_criterion_feed` skip them), never modified.
        """
        nonlocal first_start, check_units, warn_no_throttle_info
        if caller is None:
            t0 = t_submit = perf()
            try:
                value = call()
            except Exception as exc:  # a failed inference is recorded, never fatal
                failed(index, t_submit, exc)
                return None
            t1 = perf()
        else:
            t_submit = perf()
            try:
                t0, t1, value = caller()
            except Exception as exc:
                failed(index, t_submit, exc)
                return None
        fields: Mapping[str, Any]
        if value.__class__ is float and 0.0 < value < inf:  # fast paths first
            latency = value
            fields = _NO_FIELDS
        elif (value.__class__ is dict and value.get("latency_ms").__class__ is float
              and 0.0 < value["latency_ms"] < inf):
            latency = value["latency_ms"]
            fields = value
        else:
            try:
                latency, fields = normalize_sample(value)
            except Exception as exc:
                failed(index, t_submit, exc)
                return None
        t_start = t0 - run_start
        t_end = t1 - run_start
        if first_start is None:
            first_start = t_start
        if check_units and t1 > t0:
            measured_ms = (t1 - t0) / 1e6
            ratio = latency / measured_ms
            if ratio > high or ratio < low:
                check_units = False
                logger.warning(
                    "the inference callable returned a latency of %.6g ms but the call took "
                    "%.6g ms as timed by the driver (attempt %d, %.3g x apart); is it returning "
                    "seconds instead of milliseconds, or timing something else? The returned "
                    "value is what is recorded (warned once per run)",
                    latency, measured_ms, index + 1, max(ratio, 1.0 / ratio),
                )
        throttled = None
        if (fields and "energy_mj" in fields and "output_tokens" in fields
                and fields.get("energy_per_token_mj") is None):
            per_token = energy_per_token_mj(fields["energy_mj"], fields["output_tokens"])
            if per_token is not None:  # a copy: the callable's mapping is not modified
                fields = {k: v for k, v in fields.items() if k != "energy_per_token_mj"}
                fields["energy_per_token_mj"] = per_token
        if throttle is not None:
            flag = throttle.is_throttled(fields)
            if flag is None and warn_no_throttle_info:
                warn_no_throttle_info = False
                logger.warning("throttle filter on, but the inference callable returns neither "
                               "throttle_reasons nor sm_clock_mhz (NVML off?): samples without "
                               "them are not flagged")
            throttled = bool(flag)
        if write_sample is not None:
            write_sample(index, t_start, t_end, latency, fields, throttled)
        if throttled:
            counts["throttled"] += 1
            logger.info("warmup attempt %d flagged as throttled (kept out of the criterion)",
                        index + 1)
            if throttle is not None and throttle.recovery_delay_s > 0:
                time.sleep(throttle.recovery_delay_s)
            return None
        return latency, fields, (t_end - first_start) / 1e9  # type: ignore[operator]

    # The shadow criteria are fed after the run, from the samples kept here (with a copy of
    # the callable's fields when a shadow watches one): they decide nothing during the run,
    # so their cost stays out of the time between calls. Same samples, same order, same
    # `_Shadow.observe` as online: the same decisions.
    shadow_feed: list[tuple[float, Mapping[str, Any], float]] = []
    copy_fields = None if all(s.latency_only for s in shadows) else dict

    def decide_shadows() -> dict[str, ShadowDecision]:
        """Feed the kept samples to the shadows (each until it stops); their decisions."""
        if recorder.writer is None:  # the decisions go to the trace only
            return {}
        live = list(shadows)
        for sample in shadow_feed:
            live = [s for s in live if not s.observe(*sample)]
            if not live:
                break
        shadow_feed.clear()
        return {s.key: s.decision() for s in shadows}

    n_recorded = 0
    try:
        max_prompts = config.max_prompts
        detect = config.convergence_detection
        update = criterion.update
        while attempts < max_prompts:
            attempts += 1
            sample = attempt(attempts - 1)
            if sample is None:
                if bar:
                    progress.advance(criterion.describe, counts["failures"])
                continue
            latency, fields, t_s = sample
            latencies.append(latency)
            update(latency if feed_latency_only else _criterion_feed(latency, fields, criterion),
                   t_s)
            if shadows:
                shadow_feed.append((latency, _NO_FIELDS if copy_fields is None
                                    else copy_fields(fields), t_s))
            if bar:
                progress.advance(criterion.describe, counts["failures"])
            if detect:
                decision = tracker.observe(criterion.passed_)
                if decision is not None and decision.converged:
                    break
        progress.close()
        # The warmup ends at the stop: attempts recorded after it are not warmup time.
        duration = (perf() - run_start) / 1e9
        failures_at_stop = Counter(failure_types)
        throttled_at_stop = counts["throttled"]
        n_recorded = attempts
        after = progress_bar(extra_attempts, "Recording after the stop", "prompt",
                             enabled=show_progress and extra_attempts > 0)
        try:
            for k in range(extra_attempts):
                sample = attempt(attempts + k)
                n_recorded += 1
                if sample is not None and shadows:
                    shadow_feed.append((sample[0], _NO_FIELDS if copy_fields is None
                                        else copy_fields(sample[1]), sample[2]))
                if after is not None:
                    after.update(1)
        finally:
            if after is not None:
                after.close()
    except BaseException as exc:
        progress.close()
        if caller is not None:
            caller.close()
        interrupted = isinstance(exc, KeyboardInterrupt)
        try:
            recorder.finalize(
                status="interrupted" if interrupted else "error",
                interrupted=True,
                stop_index=decision.index if decision is not None and decision.converged
                else None,
                stop_reason=("interrupted by the user (KeyboardInterrupt)" if interrupted
                             else f"stopped by {type(exc).__name__}: {exc}"),
                shadow=decide_shadows(),
            )
        except Exception as fin_exc:  # keep the original exception; the partial file remains
            logger.error("could not finalise the trace: %s", fin_exc)
        raise
    if caller is not None:
        running = caller.close()
        if running:
            logger.warning("%d timed-out call(s) of the inference callable are still running in "
                           "background threads; their results will be discarded", running)
    failure_types = failures_at_stop

    failures = sum(failure_types.values())
    n = len(latencies)
    final = float(criterion.statistic_)
    stop_index = None
    throttle_note = f", {throttled_at_stop} throttled" if throttle is not None else ""
    if n == 0 and throttled_at_stop == 0:
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
        reason = f"fixed warmup of {attempts} attempts ({n} samples{throttle_note})"
        logger.info("warmup: %s (%s)", reason, criterion.describe())
    elif decision is not None and decision.converged:
        status = "converged"
        converged = True
        stop_index = decision.index
        reason = (
            f"converged after {n} samples ({attempts} attempts{throttle_note}): "
            f"{_comparison(criterion)}; {decision.reason}"
        )
        logger.info("warmup converged after %d samples (%s)", n, _comparison(criterion))
    else:
        status = "not_converged"
        converged = False
        reason = (
            f"did not converge within max_prompts={config.max_prompts} attempts "
            f"({n} samples, {failures} failed{throttle_note}); last {criterion.describe()}"
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
        shadow=decide_shadows(),
    )
    if recorder.final_path is not None:
        logger.info("trace of %d attempts written to %s", n_recorded, recorder.final_path)
    return WarmupResult(
        converged=converged,
        status=status,
        final_statistic=final,
        target_statistic=target,
        statistic_label=label,
        iterations_completed=n,
        attempts=attempts,
        failures=failures,
        failure_types=dict(failure_types),
        throttled_samples=throttled_at_stop,
        max_prompts=config.max_prompts,
        latencies_ms=latencies,
        stop_reason=reason,
        duration_s=duration,
        criterion=spec,
        trace_path=recorder.final_path,
    )


def _comparison(criterion: Criterion) -> str:
    """`CV=3.21% < 5.00%` for threshold criteria, else the criterion's description."""
    thr = criterion.threshold
    stat = criterion.statistic_
    if thr is None or math.isnan(stat) or getattr(type(criterion), "is_composite", False):
        return criterion.describe()
    if criterion.statistic_is_percent:
        return f"{criterion.statistic_label}={stat:.2%} < {thr:.2%}"
    return f"{criterion.statistic_label}={stat:.4g} vs threshold {thr:.4g}"
