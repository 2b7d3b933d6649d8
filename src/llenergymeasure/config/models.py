"""Configuration models (pydantic v2, frozen, no unknown fields)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:  # the criteria layer is imported lazily, when a criterion is built
    from llenergymeasure.criteria.base import Criterion
    from llenergymeasure.criteria.stopping import StopRule

__all__ = ["WarmupConfig"]


class WarmupConfig(BaseModel):
    """How warmup runs and when it stops.

    With ``criterion=None`` the stop test is the rolling coefficient of
    variation built from ``cv_threshold``, ``window_size`` and ``ddof``:
    convergence is checked once there are ``max(min_prompts, window_size)``
    successful samples, on the last ``window_size`` of them, and warmup stops
    as soon as the CV is below ``cv_threshold``. Any registered criterion can
    be used instead through a spec string in ``criterion``.

    Examples
    --------
    >>> WarmupConfig(cv_threshold=0.10, max_prompts=20, window_size=5, min_prompts=5)
    WarmupConfig(enabled=True, convergence_detection=True, cv_threshold=0.1, ...)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Run warmup at all; False returns at once.")
    convergence_detection: bool = Field(
        True,
        description="Stop when the criterion converges; False runs exactly max_prompts attempts.",
    )
    cv_threshold: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Rolling CV below which the window counts as converged (0 < x < 1).",
    )
    max_prompts: int = Field(
        50, ge=1, description="Maximum number of inference attempts, failed ones included."
    )
    window_size: int = Field(5, ge=2, description="Number of trailing samples in the CV window.")
    min_prompts: int = Field(
        5, ge=1, description="Successful samples needed before the first convergence check."
    )
    ddof: Literal[0, 1] = Field(
        1,
        description="Delta degrees of freedom of the standard deviation: 1 (default) is the "
        "sample standard deviation, 0 the population formula, which reads sqrt((w-1)/w) "
        "times lower on a window of w samples.",
    )
    criterion: str | None = Field(
        None,
        description="Spec string of any registered criterion (e.g. "
        "'all_of(rolling_cv:threshold=0.02,min_duration:seconds=60)'); None uses the rolling "
        "CV built from cv_threshold, window_size and ddof.",
    )
    patience: int = Field(
        1, ge=1, description="Consecutive passing checks needed to stop."
    )
    check_every: int = Field(
        1, ge=1, description="Check the criterion every this many successful samples."
    )

    @field_validator("criterion")
    @classmethod
    def _valid_criterion(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from llenergymeasure.criteria.registry import make_criterion

        make_criterion(value)  # raises CriterionConfigError (a ValueError) when invalid
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> WarmupConfig:
        if self.criterion is not None:
            # The CV fields build the default rolling CV only: with a criterion spec they
            # would be ignored. Their defaults are allowed, so that a full model_dump()
            # validates back; any other value is an error naming both fields.
            ignored = [
                f"{name}={getattr(self, name)!r}"
                for name in ("cv_threshold", "window_size", "ddof")
                if getattr(self, name) != type(self).model_fields[name].default
            ]
            if ignored:
                raise ValueError(
                    f"criterion={self.criterion!r} and {', '.join(ignored)} were both given: "
                    "cv_threshold, window_size and ddof configure the default rolling CV "
                    "(criterion=None) and would be ignored; put them in the spec instead, "
                    "e.g. 'rolling_cv:window=5,threshold=0.05,ddof=1'"
                )
        if self.min_prompts > self.max_prompts:
            raise ValueError(
                f"min_prompts ({self.min_prompts}) must be <= max_prompts ({self.max_prompts})"
            )
        if (
            self.enabled
            and self.convergence_detection
            and self.criterion is None
            and self.window_size > self.max_prompts
        ):
            raise ValueError(
                f"window_size ({self.window_size}) must be <= max_prompts ({self.max_prompts}) "
                "when convergence detection is on: a longer window can never fill"
            )
        return self

    @property
    def min_samples(self) -> int:
        """Successful samples before the first check: ``max(min_prompts, window_size)``."""
        if self.criterion is None:
            return max(self.min_prompts, self.window_size)
        return self.min_prompts

    def make_criterion(self) -> Criterion:
        """Build the configured criterion (a fresh instance)."""
        from llenergymeasure.criteria.registry import make_criterion

        if self.criterion is not None:
            return make_criterion(self.criterion)
        return make_criterion(
            "rolling_cv", window=self.window_size, threshold=self.cv_threshold, ddof=self.ddof
        )

    def make_stop_rule(self) -> StopRule:
        """The :class:`~llenergymeasure.criteria.StopRule` the driver uses."""
        from llenergymeasure.criteria.stopping import StopRule

        return StopRule(
            min_samples=self.min_samples, check_every=self.check_every, patience=self.patience
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WarmupConfig:
        """Read a configuration from a YAML (``.yaml``, ``.yml``) or JSON (``.json``) file.

        The file holds one mapping of field names to values (the format
        `to_file` writes); fields left out keep their defaults.

        Parameters
        ----------
        path : path-like
            The file; its suffix chooses the format.

        Returns
        -------
        WarmupConfig
            The configuration, validated exactly as the constructor validates it.

        Raises
        ------
        FileNotFoundError
            If there is no such file.
        llenergymeasure.config.files.ConfigFileError
            A `ValueError` naming the file: an unknown suffix, a file that does
            not parse, a key given twice, an unknown key (named, with the known
            keys), or a value that fails validation (the key and the reason).

        Examples
        --------
        A file written by `to_file` reads back equal:

        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "warmup.yaml"
        >>> cfg = WarmupConfig(criterion="rolling_cv:window=8,threshold=0.02", max_prompts=200)
        >>> WarmupConfig.from_file(cfg.to_file(path)) == cfg
        True
        """
        from llenergymeasure.config.files import read_config_file

        return read_config_file(cls, path)

    def to_file(
        self, path: str | os.PathLike[str], *, comment: str | None = None, overwrite: bool = True
    ) -> Path:
        """Write every field to a YAML or JSON file (by suffix) that `from_file` reads back equal.

        Parameters
        ----------
        path : path-like
            ``.yaml``/``.yml`` or ``.json``; written atomically.
        comment : str, optional
            ``#`` comment lines at the top of a YAML file (e.g. where the
            setting came from); not allowed for JSON.
        overwrite : bool, default True
            False raises `FileExistsError` when the file exists.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        from llenergymeasure.config.files import write_config_file

        return write_config_file(self, path, comment=comment, overwrite=overwrite)
