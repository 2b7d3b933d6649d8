"""Canonical spec strings of criteria: formatting shared by `base` and `registry`.

`Criterion.spec` (in `base`) and the registry's `format_spec` are one function, defined
here so that neither module imports the other: `base` needs to format a spec, the
registry needs `base`'s classes, and this module needs neither.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["format_spec", "format_value", "param_names"]


def param_names(params: type[BaseModel]) -> list[str]:
    """Parameter names of a criterion's model, its own first and `signal` last."""
    names = [n for n in params.model_fields if n != "signal"]
    return names + (["signal"] if "signal" in params.model_fields else [])


def format_value(v: Any) -> str:
    """A parameter value as the spec parser reads it back (`true`, `none`, `repr` of floats)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def format_spec(name: str, params: dict[str, Any], model: type[BaseModel]) -> str:
    """Canonical spec string: every parameter in order; `signal` only when not the default."""
    parts = []
    for key, finfo in model.model_fields.items():
        if key not in params:
            continue
        if key == "signal" and params[key] == finfo.default:
            continue
        parts.append(f"{key}={format_value(params[key])}")
    return name + (":" + ",".join(parts) if parts else "")
