"""Named criterion presets for GPU recordings.

`gpu_stable_spec()` builds the spec string of "latency, temperature and SM
clock all stable": an `all_of` of three criteria watching three signals that
the inference callable returns when NVML side channels are on
(`create_warmup_inference_fn(..., nvml=True)`). `GPU_STABLE` is the preset
with its default settings. Use either as `WarmupConfig(criterion=...)` or as a
shadow criterion.
"""

from __future__ import annotations

__all__ = ["GPU_STABLE", "GPU_STABLE_STRICT", "gpu_stable_spec"]


def gpu_stable_spec(
    *,
    latency_window: int = 10,
    latency_cv: float = 0.02,
    temperature_window: int = 30,
    temperature_alpha: float = 0.05,
    clock_window: int = 10,
    clock_cv: float = 0.01,
) -> str:
    """Spec of "latency, temperature and SM clock all stable".

    Parameters
    ----------
    latency_window, latency_cv : int, float
        `rolling_cv` on `latency_ms`: the CV of the last `latency_window`
        samples below `latency_cv`.
    temperature_window, temperature_alpha : int, float
        `trend` on `temperature_c` (mode `ttest`): no significant OLS slope
        over the last `temperature_window` samples at two-sided level
        `temperature_alpha`. A slope test, not a CV, because degrees Celsius
        have an arbitrary zero (a CV of a temperature depends on the unit);
        NVML reports whole degrees, and a flat quantised window has slope 0
        and passes.
    clock_window, clock_cv : int, float
        `rolling_cv` on `sm_clock_mhz`: the SM clock's relative spread over the
        last `clock_window` samples below `clock_cv` (1 % of 1,980 MHz is about
        20 MHz, one or two clock bins).

    Returns
    -------
    str
        An `all_of(...)` spec string: it passes only when all three pass.

    Notes
    -----
    The criterion needs the three signals in every sample: without NVML the
    driver raises a `KeyError` naming the missing signals at the first sample
    (as a shadow criterion it is reported as not evaluable). Combine it with
    `ThrottleFilter` to keep throttled samples out of it.

    Examples
    --------
    >>> gpu_stable_spec()
    'all_of(rolling_cv:window=10,threshold=0.02,trend:signal=temperature_c,window=30,mode=ttest,alpha=0.05,rolling_cv:signal=sm_clock_mhz,window=10,threshold=0.01)'
    """
    return (
        f"all_of(rolling_cv:window={latency_window},threshold={latency_cv},"
        f"trend:signal=temperature_c,window={temperature_window},mode=ttest,"
        f"alpha={temperature_alpha},"
        f"rolling_cv:signal=sm_clock_mhz,window={clock_window},threshold={clock_cv})"
    )


#: "Latency, temperature and SM clock all stable", default settings of `gpu_stable_spec`.
GPU_STABLE = gpu_stable_spec()

#: A stricter variant: 1 % latency CV over 20 samples, temperature over 60 samples.
GPU_STABLE_STRICT = gpu_stable_spec(latency_window=20, latency_cv=0.01, temperature_window=60)
