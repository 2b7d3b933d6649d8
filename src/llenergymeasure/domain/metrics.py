"""Results of a warmup run."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["WarmupResult", "WarmupStatus"]

WarmupStatus = Literal["converged", "not_converged", "fixed", "disabled", "all_failed"]

#: Deprecated field names -> their replacements (accepted on input with a warning).
_DEPRECATED_FIELDS = {"final_cv": "final_statistic", "target_cv": "target_statistic"}


class WarmupResult(BaseModel):
    """What a warmup run did and why it stopped.

    `final_statistic` is the criterion's statistic after the last sample it
    was fed, and `statistic_label` says what it is: `"CV"` for the rolling
    CV (the CV of the last `window_size` successful samples), `"n"` (the
    sample count) for `fixed_count`, `"elapsed_s"` for the duration criteria,
    and so on; `target_statistic` is the threshold it is compared with (NaN
    when the criterion has none, e.g. a composite). `final_statistic` is NaN
    when nothing was evaluated (no sample, or warmup disabled), never a
    placeholder. NaN and infinities survive the JSON round trip
    (`model_dump_json` writes them as the JSON constants `NaN` /
    `Infinity`, which `model_validate_json` reads back).

    `final_cv` and `target_cv` are deprecated aliases of `final_statistic`
    and `target_statistic` (read-only properties that emit a
    `DeprecationWarning`; accepted on input, with the same warning): they held
    a non-CV statistic for every criterion but the rolling CV.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    converged: bool = Field(description="True when the criterion converged (or warmup is "
                            "fixed/disabled and ran as asked).")
    status: WarmupStatus = Field(description="How the run ended.")
    final_statistic: float = Field(
        description="The criterion's statistic after its last sample (what `statistic_label` "
        "names); NaN if nothing was evaluated."
    )
    target_statistic: float = Field(
        description="Threshold the statistic was compared with; NaN if the criterion has none."
    )
    statistic_label: str = Field(
        "", description="What the statistic is (e.g. 'CV', 'n', 'elapsed_s'), from the criterion."
    )
    iterations_completed: int = Field(
        ge=0, description="Samples fed to the criterion (len(latencies_ms)): successful attempts "
        "up to the stop, throttled ones excluded."
    )
    attempts: int = Field(ge=0, description="Calls of the inference callable up to the stop.")
    failures: int = Field(
        ge=0, description="Attempts that raised, timed out or returned an invalid value."
    )
    failure_types: dict[str, int] = Field(
        default_factory=dict,
        description="Failure kind (exception type name, 'TimeoutError' for a timed-out attempt) "
        "-> count.",
    )
    throttled_samples: int = Field(
        0,
        ge=0,
        description="Successful attempts flagged by the throttle filter and kept out of the "
        "criterion (0 without a filter).",
    )
    max_prompts: int = Field(ge=0, description="The attempt cap in force.")
    latencies_ms: list[float] = Field(
        default_factory=list, description="Latencies of the samples fed to the criterion, in order."
    )
    stop_reason: str = Field("", description="One human sentence saying why warmup stopped.")
    duration_s: float = Field(0.0, ge=0, description="Wall time of the warmup, in seconds.")
    criterion: str = Field("", description="Spec string of the criterion used.")
    trace_path: str | None = Field(
        None, description="Final trace file of the run, when it was recorded."
    )

    @model_validator(mode="before")
    @classmethod
    def _deprecated_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in _DEPRECATED_FIELDS):
            data = dict(data)
            for old, new in _DEPRECATED_FIELDS.items():
                if old in data:
                    warnings.warn(f"WarmupResult field {old!r} is deprecated; use {new!r}",
                                  DeprecationWarning, stacklevel=4)
                    value = data.pop(old)
                    if new in data:
                        raise ValueError(f"give {new!r} or its deprecated alias {old!r}, not both")
                    data[new] = value
        return data

    @property
    def final_cv(self) -> float:
        """Deprecated alias of `final_statistic` (which need not be a CV)."""
        warnings.warn("WarmupResult.final_cv is deprecated: use final_statistic (and "
                      "statistic_label, which says what it is)", DeprecationWarning, stacklevel=2)
        return self.final_statistic

    @property
    def target_cv(self) -> float:
        """Deprecated alias of `target_statistic`."""
        warnings.warn("WarmupResult.target_cv is deprecated: use target_statistic",
                      DeprecationWarning, stacklevel=2)
        return self.target_statistic

    @property
    def has_statistic(self) -> bool:
        """Whether the criterion evaluated anything."""
        return not math.isnan(self.final_statistic)

    def __repr_args__(self) -> Any:
        """Fields as pydantic prints them, long lists (the latencies) cut to their ends."""
        for name, value in super().__repr_args__():
            if isinstance(value, list) and len(value) > 6:
                yield name, _Elided(value)
            else:
                yield name, value

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
            f"<td style='text-align:left'>{html.escape(repr(v))}</td></tr>"
            for k, v in self.__repr_args__()
        )
        return f"<table><caption>WarmupResult</caption>{rows}</table>"


class _Elided:
    """Repr of a long list: its first and last values and its length."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def __repr__(self) -> str:
        head = ", ".join(f"{v:.4g}" if isinstance(v, float) else repr(v) for v in self.values[:3])
        tail = ", ".join(f"{v:.4g}" if isinstance(v, float) else repr(v)
                         for v in self.values[-2:])
        return f"[{head}, …, {tail}] ({len(self.values)} values)"
