"""Wall and GPU timing of one inference, and NVML side channels around it.

Three measurements, each honest about when it is unavailable:

* **Wall time** (:func:`timed_call`): :func:`time.perf_counter_ns` read
  after synchronising the model's CUDA device before the call and after it,
  so kernels queued by earlier work are not charged to this call and kernels
  launched by it are not missed.
* **GPU time** (``gpu_time_ms``): a pair of CUDA events recorded on the
  current stream around the call; :meth:`torch.cuda.Event.elapsed_time` is the
  device-side time between them. Only on CUDA; elsewhere it is ``None``, one
  warning is logged and the inference callable's ``gpu_timing_status`` says
  why.
* **NVML side channels** (:class:`NvmlSampler`): power, the cumulative energy
  counter, temperature, SM/memory clocks and clock-throttle reasons, read just
  before and just after each inference through ``pynvml`` (the
  ``nvidia-ml-py`` package, extra ``gpu``). Without the package, or without
  an NVIDIA GPU, the sampler is *off*: it logs one warning, its
  :attr:`NvmlSampler.status` says why, it returns no fields, and the run goes
  on. It never returns made-up numbers.

torch is imported lazily; importing this module needs neither torch nor a GPU.

References
----------
.. [1] NVIDIA, "NVML API Reference Manual", device queries
   ``nvmlDeviceGetTotalEnergyConsumption``, ``nvmlDeviceGetPowerUsage``,
   ``nvmlDeviceGetClockInfo``, ``nvmlDeviceGetCurrentClocksThrottleReasons``.
.. [2] Z. Yang, K. Adamek, W. Armour, "Part-time Power Measurements:
   nvidia-smi's Lack of Attention", arXiv:2312.02741, 2023 (power is sampled
   for only part of each update period on A100/H100; short kernels can fall
   in the blind spots).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_THROTTLE_MASK",
    "THROTTLE_REASONS",
    "NvmlSampler",
    "NvmlSnapshot",
    "ThrottleFilter",
    "Timing",
    "device_index",
    "energy_per_token_mj",
    "is_cuda_device",
    "nvml_fields",
    "synchronize",
    "throttle_reason_names",
    "timed_call",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def is_cuda_device(device: Any) -> bool:
    """Whether ``device`` (a ``torch.device``, a string or None) is a CUDA device."""
    if device is None:
        return False
    kind = getattr(device, "type", None)
    if kind is None:
        kind = str(device).split(":", 1)[0]
    return kind == "cuda"


def device_index(device: Any) -> int:
    """The CUDA ordinal of ``device`` (``cuda`` without an index means 0)."""
    if isinstance(device, str):
        return int(device.split(":", 1)[1]) if ":" in device else 0
    idx = getattr(device, "index", None)
    return 0 if idx is None else int(idx)


def synchronize(device: Any) -> None:
    """Wait for every kernel queued on ``device`` when it is a CUDA device; else do nothing."""
    if is_cuda_device(device):
        import torch

        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """Timing of one call.

    Attributes
    ----------
    start_ns, end_ns : int
        :func:`time.perf_counter_ns` at the start and end of the timed region
        (after the synchronisations).
    gpu_time_ms : float or None
        Device time between two CUDA events around the call, in ms; None when
        not requested or not on CUDA.
    """

    start_ns: int
    end_ns: int
    gpu_time_ms: float | None = None

    @property
    def wall_ms(self) -> float:
        """Wall time of the call in milliseconds."""
        return (self.end_ns - self.start_ns) / 1e6


def timed_call(
    fn: Callable[[], T], *, device: Any = None, gpu_timing: bool = False
) -> tuple[T, Timing]:
    """Call ``fn()`` and time it on the wall clock, optionally with CUDA events too.

    Parameters
    ----------
    fn : callable
        The work to time (no arguments).
    device : torch.device, str or None
        The device ``fn`` runs on. When it is a CUDA device, it is synchronised
        before the start clock is read and again before the end clock is read.
    gpu_timing : bool, default False
        Also record CUDA events around the call on the current stream of
        ``device`` and report their elapsed time as ``gpu_time_ms``. Ignored
        (``gpu_time_ms=None``) when ``device`` is not CUDA.

    Returns
    -------
    result, Timing
        ``fn``'s return value and its timing.

    Notes
    -----
    The wall time includes host overhead (Python, kernel launches, the
    tokenizer-free ``generate`` loop); the event time is what the GPU stream
    saw between the two events, which excludes the host time before the first
    kernel is queued but includes any idle gaps the stream had in between.
    """
    on_cuda = is_cuda_device(device)
    if not on_cuda:
        start = time.perf_counter_ns()
        result = fn()
        end = time.perf_counter_ns()
        return result, Timing(start, end, None)
    import torch

    torch.cuda.synchronize(device)
    events = None
    if gpu_timing:
        with torch.cuda.device(device):
            events = (
                torch.cuda.Event(enable_timing=True),
                torch.cuda.Event(enable_timing=True),
            )
            events[0].record()
    start = time.perf_counter_ns()
    result = fn()
    if events is not None:
        with torch.cuda.device(device):
            events[1].record()
    torch.cuda.synchronize(device)
    end = time.perf_counter_ns()
    gpu_ms = float(events[0].elapsed_time(events[1])) if events is not None else None
    return result, Timing(start, end, gpu_ms)


# --------------------------------------------------------------------------- NVML


@dataclass(frozen=True)
class NvmlSnapshot:
    """One reading of the NVML side channels of a device.

    Every field but ``time_ns`` is None when the device does not support that
    query (NVML raised ``NVMLError``, e.g. NOT_SUPPORTED on pre-Volta GPUs for
    the energy counter).

    Attributes
    ----------
    time_ns : int
        :func:`time.perf_counter_ns` right after the energy counter was read.
    energy_mj : int or None
        Cumulative energy since the driver was loaded, millijoules.
    power_mw : int or None
        Power reading, milliwatts (NVML's own moving average; see the notes of
        :func:`nvml_fields`).
    temperature_c : int or None
        GPU core temperature, degrees Celsius.
    sm_clock_mhz, mem_clock_mhz : int or None
        Current SM and memory clocks, MHz.
    throttle_reasons : int or None
        Bit mask of active clock-throttle (clock-event) reasons.
    """

    time_ns: int
    energy_mj: int | None
    power_mw: int | None
    temperature_c: int | None
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    throttle_reasons: int | None


def nvml_fields(before: NvmlSnapshot, after: NvmlSnapshot) -> dict[str, float | int]:
    """Per-inference side-channel fields from the readings before and after it.

    Parameters
    ----------
    before, after : NvmlSnapshot
        Readings taken just before and just after the inference.

    Returns
    -------
    dict
        A subset of ``energy_mj``, ``power_w``, ``temperature_c``,
        ``sm_clock_mhz``, ``mem_clock_mhz``, ``throttle_reasons``: a field is
        present only when the readings it needs are available.

    Notes
    -----
    * ``energy_mj`` is the counter delta
      :math:`E = E_\\text{after} - E_\\text{before}` (mJ). A negative delta (a
      driver reload between the readings) is dropped with a warning, never
      reported.
    * ``power_w`` is the average power over the interval from the energy
      counter, :math:`P = E / \\Delta t` with :math:`\\Delta t` the time between
      the two readings, because mJ / ms = W. Without an energy counter it is the
      mean of the two instantaneous power readings,
      :math:`(P_\\text{before} + P_\\text{after}) / 2`, which is only a rough
      proxy: NVML's power reading is itself an average over a window that need
      not coincide with the inference, and on A100/H100 it is refreshed from
      samples covering only part of each period (arXiv:2312.02741).
    * ``temperature_c``, ``sm_clock_mhz`` and ``mem_clock_mhz`` are the
      readings *after* the inference (the state the load left the GPU in);
      ``throttle_reasons`` is the bitwise OR of the two masks (any reason active
      at either end).
    """
    out: dict[str, float | int] = {}
    dt_ms = (after.time_ns - before.time_ns) / 1e6
    if before.energy_mj is not None and after.energy_mj is not None:
        delta = after.energy_mj - before.energy_mj
        if delta < 0:
            logger.warning(
                "NVML energy counter went backwards (%d -> %d mJ); energy_mj dropped",
                before.energy_mj,
                after.energy_mj,
            )
        else:
            out["energy_mj"] = float(delta)
            if dt_ms > 0:
                out["power_w"] = delta / dt_ms
    if "power_w" not in out and before.power_mw is not None and after.power_mw is not None:
        out["power_w"] = (before.power_mw + after.power_mw) / 2000.0
    if after.temperature_c is not None:
        out["temperature_c"] = after.temperature_c
    if after.sm_clock_mhz is not None:
        out["sm_clock_mhz"] = after.sm_clock_mhz
    if after.mem_clock_mhz is not None:
        out["mem_clock_mhz"] = after.mem_clock_mhz
    masks = [m for m in (before.throttle_reasons, after.throttle_reasons) if m is not None]
    if masks:
        combined = 0
        for m in masks:
            combined |= int(m)
        out["throttle_reasons"] = combined
    return out


class NvmlSampler:
    """Reads NVML side channels of one GPU around each inference.

    Parameters
    ----------
    index : int, default 0
        NVML device index (the CUDA ordinal when ``CUDA_VISIBLE_DEVICES`` is
        not remapping devices).
    nvml : module or None
        The NVML binding to use. None imports ``pynvml`` (package
        ``nvidia-ml-py``); tests pass an object with the same functions.
    clock : callable, default time.perf_counter_ns
        Monotonic nanosecond clock used to time the readings.

    Attributes
    ----------
    active : bool
        True when NVML is initialised and the device handle was obtained.
    status : str
        ``"on: <GPU name>"`` or ``"off: <reason>"``.
    unsupported : tuple of str
        Queries the device refused (their fields are left out).

    Notes
    -----
    When the binding is missing or NVML cannot be initialised, the sampler is
    off: one warning is logged, :attr:`status` says why, :meth:`snapshot`
    returns None and :meth:`fields` an empty dict. Use it as a context manager
    (or call :meth:`close`) to shut NVML down.
    """

    _QUERIES = ("energy", "power", "temperature", "sm_clock", "mem_clock", "throttle")

    def __init__(
        self,
        index: int = 0,
        *,
        nvml: Any = None,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.index = int(index)
        self._clock = clock
        self._nvml: Any = None
        self._handle: Any = None
        self._unsupported: set[str] = set()
        self.active = False
        if nvml is None:
            try:
                import pynvml as nvml  # type: ignore[import-not-found,no-redef]
            except ImportError:
                self._off("pynvml is not installed (pip install 'llenergymeasure[gpu]')")
                return
        error_cls = getattr(nvml, "NVMLError", Exception)
        try:
            nvml.nvmlInit()
        except error_cls as exc:
            self._off(f"NVML could not be initialised ({exc}); no NVIDIA driver or GPU?")
            return
        try:
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
        except error_cls as exc:
            self._off(f"no NVML device with index {self.index} ({exc})")
            try:
                nvml.nvmlShutdown()
            except error_cls:
                pass
            return
        self._nvml = nvml
        self.active = True
        name = self._query("name", nvml.nvmlDeviceGetName, self._handle) if hasattr(
            nvml, "nvmlDeviceGetName"
        ) else None
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        self.gpu_name = str(name) if name is not None else f"device {self.index}"
        self.status = f"on: {self.gpu_name}"
        logger.info("NVML side channels on for %s (index %d)", self.gpu_name, self.index)

    def _off(self, reason: str) -> None:
        self.active = False
        self.gpu_name = None
        self.status = f"off: {reason}"
        logger.warning("NVML side channels are off: %s; the run goes on without them", reason)

    @property
    def unsupported(self) -> tuple[str, ...]:
        """Queries the device refused so far (their fields are left out)."""
        return tuple(sorted(self._unsupported))

    def _query(self, what: str, func: Callable[..., Any], *args: Any) -> Any:
        if what in self._unsupported:
            return None
        error_cls = getattr(self._nvml, "NVMLError", Exception)
        try:
            return func(*args)
        except error_cls as exc:
            self._unsupported.add(what)
            logger.warning("NVML query %s is not available on this device (%s)", what, exc)
            return None

    def snapshot(self) -> NvmlSnapshot | None:
        """Read every side channel now; None when the sampler is off."""
        if not self.active:
            return None
        nv, h = self._nvml, self._handle
        energy = self._query("energy", nv.nvmlDeviceGetTotalEnergyConsumption, h)
        t = self._clock()
        power = self._query("power", nv.nvmlDeviceGetPowerUsage, h)
        temp = self._query(
            "temperature", nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU
        )
        sm = self._query("sm_clock", nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM)
        mem = self._query("mem_clock", nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM)
        reasons_fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        reasons = self._query("throttle", reasons_fn, h) if reasons_fn is not None else None
        return NvmlSnapshot(
            time_ns=int(t),
            energy_mj=None if energy is None else int(energy),
            power_mw=None if power is None else int(power),
            temperature_c=None if temp is None else int(temp),
            sm_clock_mhz=None if sm is None else int(sm),
            mem_clock_mhz=None if mem is None else int(mem),
            throttle_reasons=None if reasons is None else int(reasons),
        )

    def max_sm_clock_mhz(self) -> int | None:
        """The device's maximum SM clock (`nvmlDeviceGetMaxClockInfo`), MHz; None when unknown."""
        if not self.active:
            return None
        nv = self._nvml
        func = getattr(nv, "nvmlDeviceGetMaxClockInfo", None)
        if func is None:
            return None
        value = self._query("max_sm_clock", func, self._handle, nv.NVML_CLOCK_SM)
        return None if value is None or int(value) <= 0 else int(value)

    def fields(
        self, before: NvmlSnapshot | None, after: NvmlSnapshot | None
    ) -> dict[str, float | int]:
        """:func:`nvml_fields` of two snapshots; empty when either is None (sampler off)."""
        if before is None or after is None:
            return {}
        return nvml_fields(before, after)

    def measure(self, fn: Callable[[], T]) -> tuple[T, dict[str, float | int]]:
        """Call ``fn()`` between two snapshots and return its result and the fields."""
        before = self.snapshot()
        result = fn()
        after = self.snapshot()
        return result, self.fields(before, after)

    def close(self) -> None:
        """Shut NVML down (idempotent)."""
        if self.active and self._nvml is not None:
            error_cls = getattr(self._nvml, "NVMLError", Exception)
            try:
                self._nvml.nvmlShutdown()
            except error_cls as exc:
                logger.warning("nvmlShutdown failed: %s", exc)
        self.active = False
        if self.status.startswith("on"):
            self.status = "off: closed"

    def __enter__(self) -> NvmlSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NvmlSampler(index={self.index}, status={self.status!r})"


# ------------------------------------------------------------------ throttling

#: NVML clock-event ("throttle") reason bits, from `nvmlClocksEventReasons` /
#: `nvmlClocksThrottleReasons` in the NVML API reference.
THROTTLE_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}

#: Reasons that flag a sample by default: the hardware and thermal slowdowns and
#: the power brake (`0x8 | 0x20 | 0x40 | 0x80`). Left out: `gpu_idle` (set
#: between inferences), the clock *settings* (`0x2`, `0x100`: a choice, not a
#: throttle), `sync_boost`, and `sw_power_cap`, which is the normal state of a
#: GPU under sustained load at its power limit: flagging it would discard the
#: steady state itself. Add it (`reasons_mask=DEFAULT_THROTTLE_MASK | 0x4`) to
#: be stricter.
DEFAULT_THROTTLE_MASK = 0x8 | 0x20 | 0x40 | 0x80


def throttle_reason_names(mask: int) -> list[str]:
    """Names of the reason bits set in an NVML throttle mask (unknown bits as hex)."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = int(mask) & ~sum(THROTTLE_REASONS)
    if unknown:
        names.append(hex(unknown))
    return names


class ThrottleFilter(BaseModel):
    """When a sample counts as *throttled* and is kept out of the stopping criterion.

    NVBench's cold measurements discard a sample taken while the SM clock is
    below `--throttle-threshold` (default 75 %) of the device's clock rate,
    count the discards, and sleep `--throttle-recovery-delay` (default 0.05 s)
    before the next sample [1]. This filter does the same for the warmup
    driver with the NVML readings the inference callable returns (see
    `NvmlSampler`): a sample is throttled when

    * `throttle_reasons & reasons_mask` is non-zero (any selected NVML reason
      was active at the start or the end of the call), or
    * `sm_clock_mhz < min_sm_clock_fraction * max_sm_clock_mhz` (when both the
      fraction and the reference clock are set).

    A throttled attempt is recorded in the trace (`throttled=True`) with its
    latency, but neither the criterion nor the shadow criteria see it, and it is
    not a sample of `WarmupResult.latencies_ms`; `WarmupResult.throttled_samples`
    counts it. A sample without `throttle_reasons` and `sm_clock_mhz` (NVML off)
    is never flagged; the driver warns once when that happens.

    References
    ----------
    1. NVIDIA, NVBench, `docs/cli_help.md` (`--throttle-threshold`,
       `--throttle-recovery-delay`) and `nvbench/detail/measure_cold.cuh`
       (`m_throttle_discard_count`), https://github.com/NVIDIA/nvbench.
    2. NVIDIA, "NVML API Reference Manual", `nvmlClocksEventReasons`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    reasons_mask: int = Field(
        DEFAULT_THROTTLE_MASK,
        ge=0,
        description="NVML throttle-reason bits that flag a sample (default: HW slowdown, SW and "
        "HW thermal slowdown, HW power brake = 0xE8); 0 disables the reason test.",
    )
    min_sm_clock_fraction: float | None = Field(
        0.75,
        gt=0,
        le=1,
        description="Flag a sample whose SM clock is below this fraction of max_sm_clock_mhz "
        "(NVBench's default threshold is 75 %); None disables the clock test.",
    )
    max_sm_clock_mhz: float | None = Field(
        None,
        gt=0,
        description="Reference SM clock in MHz (e.g. NvmlSampler.max_sm_clock_mhz()); None "
        "disables the clock test.",
    )
    recovery_delay_s: float = Field(
        0.05,
        ge=0,
        description="Sleep this long after a throttled sample before the next attempt, as "
        "NVBench's --throttle-recovery-delay (default 0.05 s); 0 does not sleep.",
    )

    @classmethod
    def for_sampler(cls, sampler: NvmlSampler, **kwargs: Any) -> ThrottleFilter:
        """A filter whose reference clock is the sampler's `max_sm_clock_mhz()`, if known."""
        return cls(max_sm_clock_mhz=sampler.max_sm_clock_mhz(), **kwargs)

    @property
    def uses_clock(self) -> bool:
        """Whether the SM-clock test is on."""
        return self.min_sm_clock_fraction is not None and self.max_sm_clock_mhz is not None

    def is_throttled(self, fields: Any) -> bool | None:
        """Whether the recorded `fields` (a mapping) show a throttle; None when they cannot tell.

        Parameters
        ----------
        fields : mapping
            What the inference callable returned besides `latency_ms`.

        Returns
        -------
        bool or None
            True or False, or None when neither `throttle_reasons` nor (with the
            clock test on) `sm_clock_mhz` was returned.
        """
        known = False
        reasons = fields.get("throttle_reasons")
        if reasons is not None and self.reasons_mask:
            known = True
            if int(reasons) & self.reasons_mask:
                return True
        if self.uses_clock:
            clock = fields.get("sm_clock_mhz")
            if clock is not None:
                known = True
                limit = self.min_sm_clock_fraction * self.max_sm_clock_mhz  # type: ignore[operator]
                if float(clock) < limit:
                    return True
        return False if known else None


def energy_per_token_mj(energy_mj: Any, output_tokens: Any) -> float | None:
    """GPU energy per generated token, mJ/token; None when it cannot be computed.

    Parameters
    ----------
    energy_mj : float or None
        NVML energy-counter delta over the inference (`nvml_fields`), mJ.
    output_tokens : int or None
        Tokens the inference generated.

    Returns
    -------
    float or None
        `energy_mj / output_tokens`, or None when either is missing, not a
        finite number, or `output_tokens < 1`. The counter's resolution caveats
        apply (see `nvml_fields`): on short calls it is quantised.
    """
    if energy_mj is None or output_tokens is None:
        return None
    try:
        e, n = float(energy_mj), float(output_tokens)
    except (TypeError, ValueError):
        return None
    if not (n >= 1 and math.isfinite(e) and math.isfinite(n) and e >= 0):
        return None
    return e / n
