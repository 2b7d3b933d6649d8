"""Replay settings: expand criterion specs and parameter grids, and group threshold sweeps.

`expand_grid` turns specs and a grid `{criterion: {parameter: [values]}}` into
criteria; `plan_units` groups the settings that differ only in the parameter a
criterion declares sweepable (`Criterion.sweep_parameter`), so that replay
computes their statistic once and decides every value with `StopRule.sweep`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.criteria.base import Criterion, CriterionConfigError
from llenergymeasure.criteria.registry import criterion_class, make_criterion

__all__ = ["Setting", "Unit", "expand_grid", "plan_units", "sweep_parameter_of"]


@dataclass(frozen=True)
class Setting:
    """One criterion configuration: its canonical spec, name and flattened parameters."""

    spec: str
    name: str
    params: dict[str, Any] = field(hash=False)


@dataclass
class Unit:
    """Settings replayed together: one, or a sweep group sharing one statistic.

    Attributes
    ----------
    settings : list of Setting
        The settings, in result order.
    sweep : (str, str) or None
        `(parameter, operator)` of a sweep group; None: one evaluation per setting.
    """

    settings: list[Setting]
    sweep: tuple[str, str] | None = None

    @property
    def values(self) -> list[float]:
        """The swept parameter's value of each setting (sweep groups only)."""
        if self.sweep is None:
            raise ValueError("not a sweep group")
        return [float(s.params[self.sweep[0]]) for s in self.settings]


def _as_spec_list(criteria: str | Criterion | Iterable[str | Criterion]) -> list[str | Criterion]:
    if isinstance(criteria, (str, Criterion)):
        return [criteria]
    return list(criteria)


def expand_grid(
    criteria: str | Criterion | Iterable[str | Criterion],
    grid: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> list[Criterion]:
    """Expand criterion specs and a parameter grid into a list of criteria.

    Parameters
    ----------
    criteria : str, Criterion or iterable of them
        Base specs (`"rolling_cv:window=10"`) or instances.
    grid : mapping, optional
        `{key: {parameter: [values, ...]}}`. A key names a criterion
        (`"rolling_cv"`) or is one of the given specs exactly; every base spec it
        matches is replaced by the cartesian product of the listed values (other
        parameters keep the spec's values). A key matching no base spec adds that
        criterion with its defaults, expanded.

    Returns
    -------
    list of Criterion
        Unique criteria (by canonical spec), in order.

    Raises
    ------
    CriterionConfigError
        An unknown criterion name or parameter, or a bad value; raised before any
        work, the message listing the valid names or parameters.

    Examples
    --------
    >>> [c.spec for c in expand_grid("rolling_cv", {"rolling_cv": {"window": [5, 10]}})]
    ['rolling_cv:window=5,threshold=0.05,ddof=1', 'rolling_cv:window=10,threshold=0.05,ddof=1']
    """
    bases = _as_spec_list(criteria)
    grid = dict(grid or {})
    for key, axes in grid.items():
        if not isinstance(axes, Mapping) or not axes:
            raise CriterionConfigError(
                f"grid entry {key!r} must map parameter names to lists of values, got {axes!r}"
            )
        for pname, values in axes.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise CriterionConfigError(
                    f"grid entry {key!r}: values of {pname!r} must be a list, got {values!r}"
                )
            if len(list(values)) == 0:
                raise CriterionConfigError(f"grid entry {key!r}: no values for {pname!r}")
    built = [make_criterion(b) for b in bases]
    used: set[str] = set()
    out: list[Criterion] = []
    for raw, crit in zip(bases, built, strict=True):
        key = None
        if isinstance(raw, str) and raw in grid:
            key = raw
        elif crit.name in grid:
            key = crit.name
        if key is None:
            out.append(crit)
            continue
        used.add(key)
        out.extend(_expand_one(crit, grid[key]))
    for key, axes in grid.items():
        if key in used:
            continue
        name = key.split(":", 1)[0].split("(", 1)[0].strip()
        criterion_class(name)  # unknown names fail here, listing the valid ones
        out.extend(_expand_one(make_criterion(key), axes))
    unique: dict[str, Criterion] = {}
    for crit in out:
        unique.setdefault(crit.spec, crit)
    if not unique:
        raise CriterionConfigError("no criterion to replay: give at least one spec or grid entry")
    return list(unique.values())


def _expand_one(base: Criterion, axes: Mapping[str, Sequence[Any]]) -> list[Criterion]:
    names = list(axes)
    combos = itertools.product(*(list(axes[n]) for n in names))
    return [make_criterion(base.spec, **dict(zip(names, combo, strict=True))) for combo in combos]


def sweep_parameter_of(crit: Criterion) -> tuple[str, str] | None:
    """`(parameter, operator)` a criterion declares sweepable, None for a composite or none.

    Read from the declared class attribute `Criterion.sweep_parameter` (and
    `Criterion.is_composite`); replay still checks the claim on the first run
    before it uses it.
    """
    if crit.is_composite:
        return None
    declared = type(crit).sweep_parameter
    return None if declared is None else (str(declared[0]), str(declared[1]))


def plan_units(crits: list[Criterion]) -> list[Unit]:
    """Group settings differing only in their sweep parameter (candidate sweeps).

    A group of one setting is replayed on its own (the sweep gains nothing).
    """
    units: list[Unit] = []
    groups: dict[tuple[Any, ...], Unit] = {}
    for crit in crits:
        setting = Setting(crit.spec, crit.name, crit.get_params())
        rule = sweep_parameter_of(crit)
        if rule is None:
            units.append(Unit([setting]))
            continue
        pname = rule[0]
        rest = tuple(sorted((k, repr(v)) for k, v in setting.params.items() if k != pname))
        key = (crit.name, rest)
        if key in groups:
            groups[key].settings.append(setting)
        else:
            unit = Unit([setting], sweep=rule)
            groups[key] = unit
            units.append(unit)
    for unit in units:
        if len(unit.settings) < 2:
            unit.sweep = None
    return units
