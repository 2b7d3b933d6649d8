"""Progress bars for long-running work (tqdm)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
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
        self._due = 0.0  # monotonic time from which a lazy postfix is computed again
        self._pending: tuple[Callable[[], str], int] | None = None

    def advance(self, postfix: str | Callable[[], str], failures: int = 0) -> None:
        """Count one attempt and show ``postfix``.

        ``postfix`` may be a function returning the text: it is then called at
        most once per redraw interval of the bar (tqdm's ``mininterval``), and
        once more by `close`, so that building the text (a criterion's
        ``describe``) is not paid on every attempt of a fast loop.
        """
        bar = self.bar
        if bar is None:
            return
        if callable(postfix):
            self._pending = (postfix, failures)
            now = time.monotonic()
            if now < self._due:
                bar.update(1)
                return
            self._due = now + bar.mininterval
            postfix = postfix()
        else:
            self._pending = None
        bar.set_postfix_str(postfix if not failures else f"{postfix} failures={failures}",
                            refresh=False)
        bar.update(1)

    def close(self) -> None:
        """Close the bar (idempotent), showing the latest postfix."""
        if self.bar is not None:
            if self._pending is not None:
                make, failures = self._pending
                text = make()
                self.bar.set_postfix_str(text if not failures else f"{text} failures={failures}",
                                         refresh=False)
                self._pending = None
            self.bar.close()
            self.bar = None
