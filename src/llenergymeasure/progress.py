"""Progress bars for long-running work (tqdm)."""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm.auto import tqdm

__all__ = ["WarmupProgress", "progress_bar"]


def progress_bar(
    total: int | None, desc: str, unit: str, *, enabled: bool = True, file: IO[str] | None = None,
    **kwargs: Any,
) -> tqdm | None:
    """A tqdm bar, or None when ``enabled`` is False (no bar object is created at all)."""
    if not enabled:
        return None
    return tqdm(
        total=total, desc=desc, unit=unit, file=file if file is not None else sys.stderr,
        dynamic_ncols=True, leave=True, **kwargs,
    )


class WarmupProgress:
    """The warmup bar: total ``max_prompts``, description "Warmup", unit "prompt".

    The postfix shows the criterion's current statistic against its target
    (for the rolling CV: ``CV=3.21% target=5.00%``) and the failure count
    when there are failures.

    Parameters
    ----------
    total : int
        Attempt cap.
    enabled : bool
        False creates no bar at all.
    file : file-like, optional
        Where to draw (default ``sys.stderr``).
    """

    def __init__(self, total: int, *, enabled: bool = True, file: IO[str] | None = None) -> None:
        self.bar = progress_bar(total, "Warmup", "prompt", enabled=enabled, file=file)

    def advance(self, postfix: str, failures: int = 0) -> None:
        """Count one attempt and show ``postfix``."""
        if self.bar is None:
            return
        text = postfix if not failures else f"{postfix} failures={failures}"
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Close the bar (idempotent)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
