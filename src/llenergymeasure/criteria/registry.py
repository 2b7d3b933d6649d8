"""Criterion registry and spec strings.

A *spec string* names a criterion and its parameters::

    rolling_cv
    rolling_cv:window=5,threshold=0.05
    all_of(rolling_cv:threshold=0.02,min_duration:seconds=60)
    any_of(kpss:alpha=0.05,all_of(rolling_cv,fixed_count:n=30))

Inside a composite, a comma-separated ``key=value`` token belongs to the
criterion before it; a token with a name (``name``, ``name:...`` or
``name(...)``) starts the next child. Values are parsed as ``true`` /
``false``, ``none``, integers, floats, or else kept as strings.

The registry is lazy. Built-in criteria are listed in `BUILTIN_CRITERIA`
(name -> module and class), so `make_criterion("rolling_cv")` imports only
`llenergymeasure.criteria.rolling_cv` (not every criterion module, nor SciPy's
signal package); a test checks the table against a scan of every module, so it
cannot go stale. Third-party packages register criteria through the entry-point
group ``llenergymeasure.criteria`` (each entry point names a `Criterion`
subclass, or a module that registers its criteria on import); they are loaded
the first time a name that is not built in is asked for, or the list of every
criterion (`available_criteria`). A plug-in cannot take a built-in name.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, TypeVar

from llenergymeasure.criteria._spec import format_spec, param_names
from llenergymeasure.criteria.base import (
    COST_CLASSES,
    SWEEP_OPERATORS,
    Criterion,
    CriterionConfigError,
)

__all__ = [
    "BUILTIN_CRITERIA",
    "CriterionRegistrationError",
    "available_criteria",
    "criterion_class",
    "criterion_info",
    "format_spec",
    "load_all",
    "make_criterion",
    "parse_spec",
    "register_criterion",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "llenergymeasure.criteria"
_PACKAGE = "llenergymeasure.criteria"

#: Every built-in criterion: name -> (module of `llenergymeasure.criteria`, class name).
BUILTIN_CRITERIA: dict[str, tuple[str, str]] = {
    "all_of": ("composite", "AllOf"),
    "any_of": ("composite", "AnyOf"),
    "bdn_fluctuation": ("bdn_fluctuation", "BDNFluctuation"),
    "cao_rhinehart": ("cao_rhinehart", "CaoRhinehart"),
    "fixed_count": ("budgets", "FixedCount"),
    "geweke": ("geweke", "Geweke"),
    "iqr_median": ("iqr_median", "IQRMedian"),
    "kelly_ssd": ("kelly_ssd", "KellySSD"),
    "kpss": ("kpss", "KPSS"),
    "laaber_cv": ("laaber_cv", "LaaberCV"),
    "laaber_kld": ("laaber_kld", "LaaberKLD"),
    "laaber_rciw": ("laaber_rciw", "LaaberRCIW"),
    "learned": ("learned", "LearnedRule"),
    "mad_median": ("mad_median", "MADMedian"),
    "max_duration": ("budgets", "MaxDuration"),
    "max_ess": ("max_ess", "MaxESS"),
    "min_duration": ("budgets", "MinDuration"),
    "mser5": ("mser5", "MSER5"),
    "nvbench_entropy": ("nvbench_entropy", "NVBenchEntropy"),
    "nvbench_stdrel": ("nvbench_stdrel", "NVBenchStdRel"),
    "pelt": ("pelt", "PELT"),
    "pyperf_halves": ("pyperf_halves", "PyperfHalves"),
    "rciw": ("rciw", "RCIW"),
    "red_sse": ("red_sse", "RedSSE"),
    "rolling_cv": ("rolling_cv", "RollingCV"),
    "trend": ("trend", "Trend"),
}

_REGISTRY: dict[str, type[Criterion]] = {}
#: Whether the entry-point plug-ins have been loaded.
_loaded = False

C = TypeVar("C", bound=type[Criterion])


class CriterionRegistrationError(ValueError):
    """A criterion could not be registered (no name, or the name is taken)."""


def register_criterion(cls: C) -> C:
    """Class decorator: register a `Criterion` subclass under ``cls.name``.

    Raises
    ------
    CriterionRegistrationError
        If ``cls.name`` is empty, already registered to another class, or the name
        of a built-in criterion that ``cls`` is not; or if a declared attribute
        (`cost_class`, `sweep_parameter`) is malformed.
    """
    if not (isinstance(cls, type) and issubclass(cls, Criterion)):
        raise CriterionRegistrationError(f"{cls!r} is not a Criterion subclass")
    name = cls.name
    if not name or not name.isidentifier():
        raise CriterionRegistrationError(
            f"{cls.__name__} needs a class attribute 'name' that is an identifier, got {name!r}"
        )
    _check_declarations(cls)
    builtin = BUILTIN_CRITERIA.get(name)
    if builtin is not None and (cls.__module__, cls.__qualname__) != (
        f"{_PACKAGE}.{builtin[0]}",
        builtin[1],
    ):
        raise CriterionRegistrationError(
            f"criterion name {name!r} is already registered to the built-in "
            f"{_PACKAGE}.{builtin[0]}.{builtin[1]}; {cls.__module__}.{cls.__qualname__} "
            "needs another name"
        )
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        if existing.__qualname__ == cls.__qualname__ and existing.__module__ == cls.__module__:
            # The same class re-created by a module reload: replace it.
            _REGISTRY[name] = cls
            return cls
        raise CriterionRegistrationError(
            f"criterion name {name!r} is already registered to "
            f"{existing.__module__}.{existing.__qualname__}"
        )
    _REGISTRY[name] = cls
    return cls


def _check_declarations(cls: type[Criterion]) -> None:
    """Check the declared class attributes of a criterion being registered."""
    if cls.cost_class not in COST_CLASSES:
        raise CriterionRegistrationError(
            f"{cls.__name__}.cost_class must be one of {COST_CLASSES}, got {cls.cost_class!r}"
        )
    sweep = cls.sweep_parameter
    if sweep is None:
        return
    if not (isinstance(sweep, tuple) and len(sweep) == 2):
        raise CriterionRegistrationError(
            f"{cls.__name__}.sweep_parameter must be None or (parameter, operator), got {sweep!r}"
        )
    param, op = sweep
    if param not in cls.Params.model_fields:
        raise CriterionRegistrationError(
            f"{cls.__name__}.sweep_parameter names {param!r}, which is not one of its "
            f"parameters ({', '.join(param_names(cls.Params))})"
        )
    if op not in SWEEP_OPERATORS:
        raise CriterionRegistrationError(
            f"{cls.__name__}.sweep_parameter operator must be one of {SWEEP_OPERATORS}, got {op!r}"
        )


def _builtin(name: str) -> type[Criterion]:
    """Import the module of the built-in criterion ``name`` and return its class."""
    module, cls_name = BUILTIN_CRITERIA[name]
    cls = getattr(importlib.import_module(f"{_PACKAGE}.{module}"), cls_name)
    if _REGISTRY.get(name) is not cls:
        # The module was imported while another registry dict was in place (tests
        # swap it): register the class again rather than lose it.
        _REGISTRY[name] = cls
    return cls


def _load() -> None:
    """Load the entry-point plug-ins once (a broken one is logged, never raised)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in must not break the package
            logger.warning("could not load criterion entry point %r: %s", ep.name, exc)
            continue
        if not (isinstance(obj, type) and issubclass(obj, Criterion)):
            continue  # a module that registered its criteria on import
        if obj.name in BUILTIN_CRITERIA:
            logger.warning(
                "criterion entry point %r: %s.%s takes the built-in name %r; ignored",
                ep.name, obj.__module__, obj.__qualname__, obj.name,
            )
            continue
        if obj.name not in _REGISTRY:
            try:
                register_criterion(obj)
            except CriterionRegistrationError as exc:
                logger.warning("could not register criterion entry point %r: %s", ep.name, exc)


def load_all() -> list[type[Criterion]]:
    """Import every built-in criterion module and every plug-in; return the classes."""
    _load()
    return [criterion_class(name) for name in available_criteria()]


def available_criteria() -> list[str]:
    """Names of every built-in and plug-in criterion, sorted (imports no built-in module)."""
    _load()
    return sorted(set(BUILTIN_CRITERIA) | set(_REGISTRY))


def criterion_class(name: str) -> type[Criterion]:
    """The class registered under ``name``; imports only that criterion's module.

    Raises
    ------
    CriterionConfigError
        If no criterion has that name; the message lists the valid names.
    """
    cls = _REGISTRY.get(name)
    if cls is not None:
        return cls
    if name in BUILTIN_CRITERIA:
        return _builtin(name)
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CriterionConfigError(
            f"unknown criterion {name!r}; available: {', '.join(available_criteria())}"
        ) from None


def criterion_info(name: str) -> dict[str, Any]:
    """Description of a criterion: summary line and parameters with defaults.

    Returns
    -------
    dict
        ``{"name", "class", "summary", "parameters": [{"name", "default",
        "type", "description"}, ...]}``.
    """
    cls = criterion_class(name)
    params = []
    for fname, finfo in cls.Params.model_fields.items():
        params.append(
            {
                "name": fname,
                "default": None if finfo.is_required() else finfo.default,
                "required": finfo.is_required(),
                "type": getattr(finfo.annotation, "__name__", str(finfo.annotation)),
                "description": finfo.description or "",
            }
        )
    doc = (cls.__doc__ or "").strip().splitlines()
    return {
        "name": name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "summary": doc[0] if doc else "",
        "parameters": params,
    }


# ---------------------------------------------------------------- spec strings
def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise CriterionConfigError(f"unbalanced ')' in criterion spec {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise CriterionConfigError(f"unbalanced '(' in criterion spec {text!r}")
    parts.append("".join(cur))
    return parts


def _is_param_token(tok: str) -> bool:
    tok = tok.strip()
    if "(" in tok:
        return False
    eq = tok.find("=")
    colon = tok.find(":")
    return eq > 0 and (colon < 0 or colon > eq)


def parse_spec(spec: str) -> tuple[str, dict[str, Any], list[Any]]:
    """Parse a spec string into ``(name, params, children)``.

    ``children`` holds the parsed child specs of a composite, each itself a
    ``(name, params, children)`` tuple.
    """
    spec = spec.strip()
    if not spec:
        raise CriterionConfigError("empty criterion spec")
    if "(" in spec.split(":", 1)[0]:
        name, _, rest = spec.partition("(")
        if not rest.endswith(")"):
            raise CriterionConfigError(f"criterion spec {spec!r} must end with ')'")
        body = rest[:-1]
        children: list[Any] = []
        params: dict[str, Any] = {}
        groups: list[list[str]] = []
        for tok in _split_top(body):
            if not tok.strip():
                raise CriterionConfigError(f"empty element in criterion spec {spec!r}")
            if _is_param_token(tok):
                if not groups:
                    key, _, val = tok.partition("=")
                    params[key.strip()] = _parse_value(val)
                else:
                    groups[-1].append(tok)
            else:
                groups.append([tok])
        for group in groups:
            children.append(parse_spec(",".join(group)))
        return name.strip(), params, children
    name, _, rest = spec.partition(":")
    params = {}
    if rest.strip():
        for tok in _split_top(rest):
            if "=" not in tok:
                raise CriterionConfigError(
                    f"parameter {tok.strip()!r} in criterion spec {spec!r} must be key=value"
                )
            key, _, val = tok.partition("=")
            key = key.strip()
            if key in params:
                raise CriterionConfigError(f"parameter {key!r} given twice in {spec!r}")
            params[key] = _parse_value(val)
    return name.strip(), params, []


def _build(parsed: tuple[str, dict[str, Any], list[Any]], extra: dict[str, Any]) -> Criterion:
    name, params, children = parsed
    cls = criterion_class(name)
    params = {**params, **extra}
    if children or getattr(cls, "is_composite", False):
        built = [_build(child, {}) for child in children]
        return cls(*built, **params)  # type: ignore[call-arg]
    unknown = sorted(set(params) - set(cls.Params.model_fields))
    if unknown:
        raise CriterionConfigError(
            f"criterion {name!r}: unknown parameter(s) {', '.join(map(repr, unknown))} "
            f"(valid parameters: {', '.join(param_names(cls.Params))})"
        )
    return cls(**params)


def make_criterion(spec: str | Criterion, **params: Any) -> Criterion:
    """Build a criterion from a spec string (and keyword parameters).

    Parameters
    ----------
    spec : str or Criterion
        ``"name"``, ``"name:key=value,..."`` or a composite such as
        ``"all_of(rolling_cv:threshold=0.02,min_duration:seconds=60)"``. A
        `Criterion` instance is returned as a fresh clone.
    **params
        Parameters of the (outer) criterion; they override those in ``spec``.

    Raises
    ------
    CriterionConfigError
        Unknown name or parameter (the message lists the valid ones), or a
        bad value.

    Examples
    --------
    >>> make_criterion("rolling_cv:window=5,threshold=0.05")
    RollingCV('rolling_cv:window=5,threshold=0.05,ddof=1')
    >>> make_criterion("rolling_cv", window=5, threshold=0.05) == _
    True
    """
    if isinstance(spec, Criterion):
        if params:
            return type(spec)(**{**spec.get_params(), **params})
        return spec.clone()
    return _build(parse_spec(spec), params)
