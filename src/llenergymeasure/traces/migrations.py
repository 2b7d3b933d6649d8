"""Schema migrations: bring a trace written by an older schema version up to date.

A migration from version ``N`` to ``N + 1`` is a function
``migrate_vN_to_vN+1(metadata, data) -> (metadata, data)`` that takes the raw
metadata mapping (as decoded from the file) and the raw attempt table, and
returns both in the layout of version ``N + 1`` (with
``metadata["schema_version"] == N + 1``). Register it with
:func:`register_migration`; :func:`migrate` chains them on load. Version 1 is
the first published schema, so no built-in migration exists yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from llenergymeasure.traces.model import TRACE_SCHEMA_VERSION, TraceFormatError

__all__ = ["MIGRATIONS", "Migration", "migrate", "register_migration"]

Migration = Callable[[dict[str, Any], pd.DataFrame], tuple[dict[str, Any], pd.DataFrame]]
F = TypeVar("F", bound=Migration)

#: from-version -> function migrating a trace from that version to the next.
MIGRATIONS: dict[int, Migration] = {}


def register_migration(from_version: int) -> Callable[[F], F]:
    """Decorator: register ``migrate_v{from_version}_to_v{from_version + 1}``."""

    def deco(func: F) -> F:
        if from_version in MIGRATIONS and MIGRATIONS[from_version] is not func:
            raise ValueError(f"a migration from schema version {from_version} is registered")
        MIGRATIONS[from_version] = func
        return func

    return deco


def schema_version_of(metadata: dict[str, Any], *, file: str | None, line: int | None = None
                      ) -> int:
    """The ``schema_version`` of raw metadata, checked to be a known integer.

    Raises
    ------
    TraceFormatError
        If it is missing, not an integer, or newer than this package's
        :data:`~llenergymeasure.traces.model.TRACE_SCHEMA_VERSION`.
    """
    version = metadata.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise TraceFormatError(
            f"schema_version must be an integer, got {version!r}",
            file=file, line=line, field="metadata.schema_version",
        )
    if version > TRACE_SCHEMA_VERSION:
        raise TraceFormatError(
            f"schema version {version} is newer than the newest this package reads "
            f"({TRACE_SCHEMA_VERSION}); upgrade llenergymeasure",
            file=file, line=line, field="metadata.schema_version",
        )
    if version < 0:
        raise TraceFormatError(
            f"schema version must be >= 0, got {version}",
            file=file, line=line, field="metadata.schema_version",
        )
    return version


def migrate(
    metadata: dict[str, Any], data: pd.DataFrame, *, file: str | None = None,
    line: int | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Apply the registered migrations until the trace is at the current schema version.

    Raises
    ------
    TraceFormatError
        On an unknown or future version, a missing migration step, or a step
        that does not advance the version by one.
    """
    version = schema_version_of(metadata, file=file, line=line)
    while version < TRACE_SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise TraceFormatError(
                f"no migration from schema version {version} to {version + 1} is registered",
                file=file, line=line, field="metadata.schema_version",
            )
        metadata, data = step(dict(metadata), data)
        new = metadata.get("schema_version")
        if new != version + 1:
            raise TraceFormatError(
                f"migration {getattr(step, '__name__', step)!r} from version {version} "
                f"produced schema_version {new!r}, expected {version + 1}",
                file=file, line=line, field="metadata.schema_version",
            )
        version = new
    return metadata, data
