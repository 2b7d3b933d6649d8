"""Reading and writing configuration files (YAML and JSON, chosen by the file suffix).

A configuration file holds one mapping whose keys are the fields of a
configuration model (e.g. :class:`~llenergymeasure.config.WarmupConfig`);
``WarmupConfig.from_file`` and ``WarmupConfig.to_file`` are built on the two
functions here. PyYAML is imported only when a YAML file is read or written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["CONFIG_SUFFIXES", "ConfigFileError", "read_config_file", "write_config_file"]

#: File suffixes understood, and the format each means.
CONFIG_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}

M = TypeVar("M", bound=BaseModel)


class ConfigFileError(ValueError):
    """A configuration file cannot be read: its format, its content, or a key or value in it.

    The message names the file and, when it is about one key, the key.
    """


def _format_of(path: Path) -> str:
    fmt = CONFIG_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ConfigFileError(
            f"{path}: unknown configuration file suffix {path.suffix!r}; "
            f"use one of {', '.join(CONFIG_SUFFIXES)}"
        )
    return fmt


def _yaml_loader() -> Any:
    """A safe YAML loader that rejects a key given twice in one mapping."""
    import yaml

    class _UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in out:
                line = key_node.start_mark.line + 1
                raise ConfigFileError(f"key {key!r} is given twice (again on line {line})")
            out[key] = loader.construct_object(value_node, deep=deep)
        return out

    _UniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
    )
    return _UniqueKeyLoader


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigFileError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _parse(path: Path, fmt: str) -> Any:
    text = path.read_text(encoding="utf-8")
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_json_pairs)
        except json.JSONDecodeError as exc:
            raise ConfigFileError(
                f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except ConfigFileError as exc:
            raise ConfigFileError(f"{path}: {exc}") from None
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except ConfigFileError as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError(f"{path}: not valid YAML{where}: {problem}") from None


def read_config_file(model: type[M], path: str | os.PathLike[str]) -> M:
    """Read a YAML or JSON file (by suffix) holding the fields of ``model``.

    Parameters
    ----------
    model : type of pydantic.BaseModel
        The configuration model to build.
    path : path-like
        ``.yaml``/``.yml`` or ``.json`` file with one mapping of field names to values.

    Returns
    -------
    BaseModel
        ``model(**mapping)``; fields not in the file keep their defaults.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ConfigFileError
        For an unknown suffix, a file that does not parse, a key given twice,
        a top level that is not a mapping, an unknown key (named, with the
        known keys) or a value the model rejects (the key and the reason).
    """
    p = Path(path)
    fmt = _format_of(p)
    if not p.is_file():
        raise FileNotFoundError(f"configuration file not found: {p}")
    data = _parse(p, fmt)
    if data is None:
        raise ConfigFileError(f"{p}: the file is empty; expected a mapping of "
                              f"{model.__name__} fields")
    if not isinstance(data, Mapping):
        raise ConfigFileError(
            f"{p}: expected a mapping of {model.__name__} fields at the top level, "
            f"got {type(data).__name__}"
        )
    known = set(model.model_fields)
    for key in data:
        if key not in known:
            raise ConfigFileError(
                f"{p}: unknown key {key!r} for {model.__name__} "
                f"(known keys: {', '.join(model.model_fields)})"
            )
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"])
            what = f"key {loc!r}: " if loc else ""
            problems.append(f"{what}{err['msg']}")
        raise ConfigFileError(f"{p}: invalid {model.__name__}: {'; '.join(problems)}") from None


def write_config_file(
    config: BaseModel,
    path: str | os.PathLike[str],
    *,
    comment: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write every field of ``config`` to a YAML or JSON file (by suffix), atomically.

    Parameters
    ----------
    config : pydantic.BaseModel
        The configuration to write; every field is written, in declaration
        order, so the file documents the whole configuration.
    path : path-like
        ``.yaml``/``.yml`` or ``.json``.
    comment : str, optional
        Written as ``#`` comment lines at the top of a YAML file (rejected for
        JSON, which has no comments).
    overwrite : bool, default True
        False refuses to replace an existing file (`FileExistsError`).

    Returns
    -------
    pathlib.Path
        The file written.

    Notes
    -----
    Values are written as ``model_dump(mode="json")`` gives them; floats are
    written by their shortest round-tripping representation (Python's
    ``repr``), so reading the file back gives an equal configuration.
    """
    p = Path(path)
    fmt = _format_of(p)
    if not overwrite and p.exists():
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    data = config.model_dump(mode="json")
    if fmt == "json":
        if comment is not None:
            raise ConfigFileError(f"{p}: JSON has no comments; drop comment= or write YAML")
        text = json.dumps(data, indent=2) + "\n"
    else:
        import yaml

        header = "".join(f"# {line}".rstrip() + "\n" for line in (comment or "").splitlines())
        text = header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False,
                                       allow_unicode=True)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
