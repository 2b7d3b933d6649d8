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

Built-in criteria register themselves when their module is imported; every
public module of :mod:`llenergymeasure.criteria` is imported on first use of
the registry. Third-party packages register criteria through the entry-point
group ``llenergymeasure.criteria`` (each entry point names a
:class:`~llenergymeasure.criteria.base.Criterion` subclass, or a module that
registers its criteria on import).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import BaseModel

from llenergymeasure.criteria.base import (
    COST_CLASSES,
    SWEEP_OPERATORS,
    Criterion,
    CriterionConfigError,
    param_names,
)

__all__ = [
    "CriterionRegistrationError",
    "available_criteria",
    "criterion_class",
    "criterion_info",
    "format_spec",
    "make_criterion",
    "parse_spec",
    "register_criterion",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "llenergymeasure.criteria"
_NOT_CRITERIA = {"base", "registry", "stopping"}

_REGISTRY: dict[str, type[Criterion]] = {}
_loaded = False

C = TypeVar("C", bound=type[Criterion])


class CriterionRegistrationError(ValueError):
    """A criterion could not be registered (no name, or the name is taken)."""


def register_criterion(cls: C) -> C:
    """Class decorator: register a :class:`Criterion` subclass under ``cls.name``.

    Raises
    ------
    CriterionRegistrationError
        If ``cls.name`` is empty or already registered to another class.
    """
    if not (isinstance(cls, type) and issubclass(cls, Criterion)):
        raise CriterionRegistrationError(f"{cls!r} is not a Criterion subclass")
    name = cls.name
    if not name or not name.isidentifier():
        raise CriterionRegistrationError(
            f"{cls.__name__} needs a class attribute 'name' that is an identifier, got {name!r}"
        )
    _check_declarations(cls)
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


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import llenergymeasure.criteria as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("_") or mod.name in _NOT_CRITERIA:
            continue
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in must not break the package
            logger.warning("could not load criterion entry point %r: %s", ep.name, exc)
            continue
        if isinstance(obj, type) and issubclass(obj, Criterion) and obj.name not in _REGISTRY:
            register_criterion(obj)


def available_criteria() -> list[str]:
    """Names of every registered criterion, sorted."""
    _load()
    return sorted(_REGISTRY)


def criterion_class(name: str) -> type[Criterion]:
    """The class registered under ``name``.

    Raises
    ------
    CriterionConfigError
        If no criterion has that name; the message lists the valid names.
    """
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CriterionConfigError(
            f"unknown criterion {name!r}; available: {', '.join(sorted(_REGISTRY))}"
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
        :class:`Criterion` instance is returned as a fresh clone.
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


def _format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def format_spec(name: str, params: dict[str, Any], model: type[BaseModel]) -> str:
    """Canonical spec string: every parameter in order; ``signal`` only when not the default."""
    parts = []
    for key, finfo in model.model_fields.items():
        if key not in params:
            continue
        if key == "signal" and params[key] == finfo.default:
            continue
        parts.append(f"{key}={_format_value(params[key])}")
    return name + (":" + ",".join(parts) if parts else "")
