"""Results of a warmup run."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WarmupResult", "WarmupStatus"]

WarmupStatus = Literal["converged", "not_converged", "fixed", "disabled", "all_failed"]


class WarmupResult(BaseModel):
    """What a warmup run did and why it stopped.

    ``final_cv`` is the criterion's statistic on the last evaluated window
    (for the default rolling CV, the CV of the last ``window_size``
    successful samples); it is NaN when no window was evaluated, never a
    placeholder. NaN and infinities survive the JSON round trip
    (``model_dump_json`` writes them as the JSON constants ``NaN`` /
    ``Infinity``, which ``model_validate_json`` reads back).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    converged: bool = Field(description="True when the criterion converged (or warmup is "
                            "fixed/disabled and ran as asked).")
    status: WarmupStatus = Field(description="How the run ended.")
    final_cv: float = Field(description="Statistic of the last evaluated window; NaN if none.")
    target_cv: float = Field(description="Threshold the statistic was compared with.")
    iterations_completed: int = Field(ge=0, description="Successful samples (len(latencies_ms)).")
    attempts: int = Field(ge=0, description="Calls of the inference callable.")
    failures: int = Field(ge=0, description="Attempts that raised or returned an invalid value.")
    failure_types: dict[str, int] = Field(
        default_factory=dict, description="Failure kind (exception type name) -> count."
    )
    max_prompts: int = Field(ge=0, description="The attempt cap in force.")
    latencies_ms: list[float] = Field(
        default_factory=list, description="Latencies of the successful samples, in order."
    )
    stop_reason: str = Field("", description="One human sentence saying why warmup stopped.")
    duration_s: float = Field(0.0, ge=0, description="Wall time of the warmup, in seconds.")
    criterion: str = Field("", description="Spec string of the criterion used.")
    trace_path: str | None = Field(
        None, description="Final trace file of the run, when it was recorded."
    )

    @property
    def has_statistic(self) -> bool:
        """Whether any window was evaluated."""
        return not math.isnan(self.final_cv)

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
