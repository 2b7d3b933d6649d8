"""Saving, loading and streaming traces.

Three native formats, chosen by suffix:

* Parquet (``.parquet``, ``.pq``): the attempt table, with the metadata JSON in
  the file's key-value metadata under :data:`PARQUET_METADATA_KEY`;
* CSV (``.csv``) with a JSON sidecar ``<file>.meta.json`` holding the metadata;
* JSON Lines (``.jsonl``): a header line ``{"trace_metadata": {...}, "partial":
  false}``, then one JSON object per attempt.

Every save is atomic (temporary file in the same folder, fsync, rename), so a
reader never observes a partial final file. :class:`TraceWriter` streams a
recording to ``<path>.partial.jsonl``, one line per attempt written through to
the operating system at once, and
:meth:`TraceWriter.finalize` writes the final file atomically and removes the
in-progress one. :func:`load_trace` reads an in-progress or killed recording
and recovers every complete line; in a finalised JSON Lines file a truncated
last line is an error.

Other formats (Traini JMH JSON, pyperf, JMH, generic CSV) are read by
:mod:`llenergymeasure.traces.importers` (``import_file(path, format)`` and
``detect_format(path)``), imported lazily.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llenergymeasure.traces import importers
from llenergymeasure.traces.migrations import migrate, schema_version_of
from llenergymeasure.traces.model import (
    ALL_COLUMNS,
    REQUIRED_COLUMNS,
    TRACE_SCHEMA_VERSION,
    RunInfo,
    Trace,
    TraceFormatError,
    TraceMetadata,
    check_runs,
    metadata_from_dict,
    normalize_frame,
)

__all__ = [
    "NATIVE_FORMATS",
    "PARQUET_METADATA_KEY",
    "TraceExistsError",
    "TraceWriter",
    "detect_native_format",
    "encode_key",
    "encode_value",
    "load_trace",
    "load_traces",
    "partial_path_for",
    "save_trace",
    "sidecar_path_for",
    "value_problem",
]

logger = logging.getLogger(__name__)

#: Key of the metadata JSON in a Parquet file's key-value metadata.
PARQUET_METADATA_KEY = b"llenergymeasure.trace"
#: Key of the metadata in the header line of a JSON Lines trace.
JSONL_HEADER_KEY = "trace_metadata"
PARTIAL_SUFFIX = ".partial.jsonl"
SIDECAR_SUFFIX = ".meta.json"
#: Formats read and written by this module (the rest go to the importers).
NATIVE_FORMATS = ("parquet", "csv", "jsonl")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl"}


def partial_path_for(path: str | os.PathLike[str]) -> Path:
    """The in-progress file of a recording whose final file is ``path``."""
    p = Path(path)
    return p.with_name(p.name + PARTIAL_SUFFIX)


def sidecar_path_for(path: str | os.PathLike[str]) -> Path:
    """The JSON metadata sidecar of a CSV trace."""
    p = Path(path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def _suffix_format(path: Path) -> str | None:
    if path.name.endswith(PARTIAL_SUFFIX):
        return "jsonl"
    return _SUFFIXES.get(path.suffix.lower())


def detect_native_format(path: str | os.PathLike[str]) -> str | None:
    """``"parquet"``, ``"csv"`` (with a sidecar) or ``"jsonl"`` (with a header), else None."""
    p = Path(path)
    fmt = _suffix_format(p)
    if fmt == "csv" and not sidecar_path_for(p).is_file():
        return None
    if fmt == "jsonl":
        try:
            with p.open("rb") as fh:
                first = fh.readline()
            head = json.loads(first)
        except (OSError, ValueError):
            return "jsonl" if p.name.endswith(PARTIAL_SUFFIX) else None
        return "jsonl" if isinstance(head, dict) and JSONL_HEADER_KEY in head else None
    return fmt


# ------------------------------------------------------------------ atomicity
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported on this platform / filesystem
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def _atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success fsync it and rename it over."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600: give the user's umask
    try:
        yield tmp_path
        with tmp_path.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------ json rows
def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, str):
        return v
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


_KEY_CACHE: dict[str, str] = {}
_INF = math.inf
_I64 = 2**63


def encode_key(key: str) -> str:
    """`"key": ` as JSON text, cached (a trace has a handful of distinct column names)."""
    text = _KEY_CACHE.get(key)
    if text is None:
        text = _KEY_CACHE[key] = encode_basestring_ascii(str(key)) + ": "
    return text


def encode_value(v: Any) -> str:
    """One value as JSON text, as in a trace row: NaN and infinities become `null`.

    Plain Python scalars (float, int, bool, str, None) take a fast path that
    writes what `json.dumps` would; numpy scalars, timestamps and the rest go
    through the general conversion.
    """
    cls = v.__class__
    if cls is float:
        return repr(v) if -_INF < v < _INF else "null"  # NaN and infinities -> null
    if cls is int:
        return int.__repr__(v)
    if v is None:
        return "null"
    if cls is bool:
        return "true" if v else "false"
    if cls is str:
        return encode_basestring_ascii(v)
    return json.dumps(_json_value(v), allow_nan=False)


def _row_line(row: Mapping[str, Any]) -> str:
    """One attempt as a JSON object on one line (the same text `json.dumps` writes)."""
    return "{" + ", ".join([encode_key(k) + encode_value(v) for k, v in row.items()]) + "}"


def _header_line(metadata: TraceMetadata, *, partial: bool) -> str:
    meta = json.loads(metadata.model_dump_json())
    return json.dumps({JSONL_HEADER_KEY: meta, "partial": partial})


def _frame_records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    cols = list(frame.columns)
    arrays = [frame[c].astype(object).to_numpy() for c in cols]
    for i in range(len(frame)):
        yield {c: a[i] for c, a in zip(cols, arrays, strict=True)}


# ---------------------------------------------------------------------- save
def save_trace(trace: Trace, path: str | os.PathLike[str], *, format: str | None = None) -> Path:
    """Write ``trace`` atomically in the format given by ``format`` or the suffix of ``path``.

    Parameters
    ----------
    trace : Trace
        Validated before writing.
    path : path-like
        Destination; ``.parquet``/``.pq``, ``.csv`` (plus ``<path>.meta.json``)
        or ``.jsonl``.
    format : {"parquet", "csv", "jsonl"}, optional
        Overrides the suffix.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    fmt = format or _suffix_format(path)
    if fmt not in NATIVE_FORMATS:
        raise ValueError(
            f"cannot write {path}: unknown trace format {fmt!r} (suffix {path.suffix!r}); "
            f"use one of .parquet, .csv, .jsonl"
        )
    trace.validate()
    if fmt == "parquet":
        _save_parquet(trace, path)
    elif fmt == "csv":
        _save_csv(trace, path)
    else:
        _save_jsonl(trace, path)
    logger.info("wrote %d attempts of %d run(s) to %s", len(trace.data),
                len(trace.metadata.runs), path)
    return path


def _save_parquet(trace: Trace, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = trace.data.copy()
    if "error" in frame.columns:
        frame["error"] = frame["error"].astype(object)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[PARQUET_METADATA_KEY] = trace.metadata.model_dump_json().encode()
    table = table.replace_schema_metadata(meta)
    with _atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _save_csv(trace: Trace, path: Path) -> None:
    with _atomic_path(sidecar_path_for(path)) as tmp:
        tmp.write_text(trace.metadata.model_dump_json(indent=2), encoding="utf-8")
    with _atomic_path(path) as tmp:
        trace.data.to_csv(tmp, index=False)


def _save_jsonl(trace: Trace, path: Path) -> None:
    with _atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.write(_header_line(trace.metadata, partial=False) + "\n")
        for rec in _frame_records(trace.data):
            fh.write(_row_line(rec) + "\n")


# ---------------------------------------------------------------------- load
def load_trace(path: str | os.PathLike[str], format: str | None = None) -> Trace:
    """Read a trace file.

    Parameters
    ----------
    path : path-like
        A native trace (``.parquet``, ``.csv`` with its sidecar, ``.jsonl``,
        an in-progress ``.partial.jsonl``) or a file an importer reads.
    format : str, optional
        ``"parquet"``, ``"csv"``, ``"jsonl"`` for native files; any other
        name (``"traini"``, ``"pyperf"``, ``"jmh"``, ...) — and ``"csv"``
        without a sidecar — is passed to
        ``llenergymeasure.traces.importers.import_file``. When omitted the
        format comes from the suffix, else from the importers'
        ``detect_format``.

    Returns
    -------
    Trace
        Validated and migrated to the current schema version; its `trace_id` is
        the file stem.

    Raises
    ------
    TraceFormatError
        When the file does not follow the schema (naming file, line or row,
        and field), or its format is unknown.
    FileNotFoundError
        When ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no trace file {path}")
    fmt = format
    if fmt is None:
        fmt = detect_native_format(path)
    elif fmt == "csv" and not sidecar_path_for(path).is_file():
        fmt = None
        format = "csv"
    if fmt == "parquet":
        trace = _load_parquet(path)
    elif fmt == "jsonl":
        trace = _load_jsonl(path)
    elif fmt == "csv":
        trace = _load_csv(path)
    else:
        trace = _import(path, format)
    trace.trace_id = _trace_id_from_path(Path(path.name))
    return trace


def _trace_id_from_path(rel: Path) -> str:
    """`Trace.trace_id` of a file: the relative path, POSIX, its suffix dropped.

    The suffix is the last one, after a compression suffix (`.gz`, `.bz2`, `.xz`,
    `.zst`); an in-progress recording's `.partial.jsonl` is dropped whole.
    """
    name = rel.name
    if name.endswith(PARTIAL_SUFFIX):
        name = name[: -len(PARTIAL_SUFFIX)]
    else:
        for comp in (".gz", ".bz2", ".xz", ".zst"):
            if name.lower().endswith(comp) and len(name) > len(comp):
                name = name[: -len(comp)]
                break
        name = Path(name).stem or name
    parent = rel.parent.as_posix()
    return name if parent in ("", ".") else f"{parent}/{name}"


def _import(path: Path, format: str | None) -> Trace:
    """Read another tool's file through :mod:`llenergymeasure.traces.importers`."""
    if format is None:
        format = importers.detect_format(path)
        if format is None:
            raise TraceFormatError(
                "unknown trace format: not a native trace (.parquet, .csv with a "
                f"{SIDECAR_SUFFIX} sidecar, .jsonl with a header) and no importer recognises it",
                file=str(path),
            )
    return importers.import_file(path, format)


def _finish(raw_meta: Any, frame: pd.DataFrame, *, file: str, lines: Any = None,
            meta_line: int | None = None) -> Trace:
    if not isinstance(raw_meta, dict):
        raise TraceFormatError(f"metadata must be a JSON object, got {type(raw_meta).__name__}",
                               file=file, line=meta_line, field="metadata")
    raw_meta, frame = migrate(raw_meta, frame, file=file, line=meta_line)
    metadata = metadata_from_dict(raw_meta, file=file, line=meta_line)
    data = normalize_frame(frame, file=file, lines=lines)
    check_runs(data, metadata, file=file)
    return Trace(data, metadata)


def _load_parquet(path: Path) -> Trace:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for corrupt files
        raise TraceFormatError(f"not a readable Parquet file ({exc})", file=str(path)) from None
    raw = (table.schema.metadata or {}).get(PARQUET_METADATA_KEY)
    if raw is None:
        raise TraceFormatError(
            f"Parquet file without trace metadata (key {PARQUET_METADATA_KEY.decode()!r})",
            file=str(path), field="metadata",
        )
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise TraceFormatError(f"metadata is not valid JSON ({exc})", file=str(path),
                               field="metadata") from None
    return _finish(meta, table.to_pandas(), file=str(path))


def _load_csv(path: Path) -> Trace:
    side = sidecar_path_for(path)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TraceFormatError(f"CSV trace without its metadata sidecar {side.name}",
                               file=str(path), field="metadata") from None
    except ValueError as exc:
        raise TraceFormatError(f"metadata sidecar is not valid JSON ({exc})", file=str(side),
                               field="metadata") from None
    try:
        frame = pd.read_csv(path, dtype={c: str for c in ALL_COLUMNS}, keep_default_na=False,
                            na_values={c: [""] for c in ALL_COLUMNS})
    except (ValueError, pd.errors.ParserError) as exc:
        raise TraceFormatError(f"not a readable CSV file ({exc})", file=str(path)) from None
    lines = np.arange(len(frame)) + 2
    return _finish(meta, frame, file=str(path), lines=lines)


def _load_jsonl(path: Path) -> Trace:
    data = path.read_bytes()
    return parse_jsonl(data, file=str(path), partial=None)


def parse_jsonl(data: bytes, *, file: str, partial: bool | None = None) -> Trace:
    """Parse the bytes of a JSON Lines trace.

    Parameters
    ----------
    data : bytes
        The whole file.
    file : str
        Name for error messages.
    partial : bool, optional
        Whether this is an in-progress recording (its unfinished last line is
        dropped and its runs are marked interrupted); None reads the
        header's ``partial`` flag.
    """
    raw_lines = data.split(b"\n")
    ends_with_newline = data.endswith(b"\n")
    if ends_with_newline:
        raw_lines.pop()
    if not raw_lines or not raw_lines[0].strip():
        raise TraceFormatError("empty file: no header line", file=file, line=1,
                               field=JSONL_HEADER_KEY)
    try:
        header = json.loads(raw_lines[0])
    except ValueError as exc:
        raise TraceFormatError(f"header is not valid JSON ({exc})", file=file, line=1,
                               field=JSONL_HEADER_KEY) from None
    if not isinstance(header, dict) or JSONL_HEADER_KEY not in header:
        raise TraceFormatError(
            f"first line must be the header {{{JSONL_HEADER_KEY!r}: {{...}}}}",
            file=file, line=1, field=JSONL_HEADER_KEY,
        )
    if partial is None:
        partial = bool(header.get("partial", False))
    raw_meta = header[JSONL_HEADER_KEY]
    current = (
        isinstance(raw_meta, dict)
        and schema_version_of(raw_meta, file=file, line=1) == TRACE_SCHEMA_VERSION
    )
    rows: list[dict[str, Any]] = []
    line_numbers: list[int] = []
    last = len(raw_lines)
    for number, raw in enumerate(raw_lines[1:], start=2):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            if number == last and not ends_with_newline:
                if partial:
                    logger.warning("%s: dropping the unfinished last line %d of an in-progress "
                                   "recording", file, number)
                    break
                raise TraceFormatError(
                    f"truncated last line ({exc}); the file was not finalised", file=file,
                    line=number,
                ) from None
            raise TraceFormatError(f"invalid JSON ({exc})", file=file, line=number) from None
        if not isinstance(obj, dict):
            raise TraceFormatError(f"an attempt must be a JSON object, got {obj!r}",
                                   file=file, line=number)
        missing = [c for c in REQUIRED_COLUMNS if c not in obj] if current else []
        if missing:
            raise TraceFormatError(f"missing required field(s) {missing}", file=file,
                                   line=number, field=missing[0])
        rows.append(obj)
        line_numbers.append(number)
    columns: dict[str, list[Any]] = {}
    for i, obj in enumerate(rows):
        for k, v in obj.items():
            col = columns.get(k)
            if col is None:
                col = columns[k] = [None] * i
            col.append(v)
        for col in columns.values():
            if len(col) == i:
                col.append(None)
    names = list(columns) or list(REQUIRED_COLUMNS)
    frame = pd.DataFrame(
        {k: pd.Series(columns.get(k, []), dtype=object) for k in names}
    )
    trace = _finish(header[JSONL_HEADER_KEY], frame, file=file, lines=line_numbers,
                    meta_line=1)
    if partial:
        runs = [
            r.model_copy(update={"interrupted": True}) if r.status == "recording" else r
            for r in trace.metadata.runs
        ]
        trace = Trace(trace.data, trace.metadata.model_copy(update={"runs": runs}))
    return trace


def load_traces(path: str | os.PathLike[str]) -> list[Trace]:
    """Load one trace file, or every trace in a folder (sorted by name).

    Each trace's `trace_id` is its file's path relative to the folder (POSIX,
    suffix dropped), or the file stem when `path` is a file; two files of the
    folder that differ only in their suffix (`a.jsonl`, `a.parquet`) keep their
    whole names as ids.

    In a folder, native traces and files an importer recognises are read;
    CSV sidecars and unrecognised files are skipped (logged at debug level).
    An in-progress ``.partial.jsonl`` is skipped when its final file exists.
    """
    p = Path(path)
    if not p.is_dir():
        return [load_trace(p)]
    traces = []
    files: list[Path] = []
    for child in sorted(p.iterdir()):
        if not child.is_file() or child.name.endswith(SIDECAR_SUFFIX) or child.name.startswith("."):
            continue
        if child.name.endswith(PARTIAL_SUFFIX):
            final = child.with_name(child.name[: -len(PARTIAL_SUFFIX)])
            if final.exists():
                continue
        fmt = detect_native_format(child)
        if fmt is None:
            imported = importers.detect_format(child)
            if imported is None:
                logger.debug("skipping %s: not a trace", child)
                continue
            trace = _import(child, imported)
        else:
            trace = load_trace(child, fmt)
        traces.append(trace)
        files.append(child)
    ids = [_trace_id_from_path(f.relative_to(p)) for f in files]
    for trace, child, tid in zip(traces, files, ids, strict=True):
        # Two files differing only in their suffix keep their whole names.
        trace.trace_id = tid if ids.count(tid) == 1 else child.relative_to(p).as_posix()
    return traces


# ------------------------------------------------------------------ recording
class TraceExistsError(FileExistsError):
    """A finished trace is already at the path a recording would write.

    Attributes
    ----------
    path : Path
        The existing file (for a CSV trace, the CSV or its sidecar).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path} is a finished trace and is never overwritten by default: pass "
            "overwrite=True to replace it, or append=True to add this recording to it as a "
            "new run, or choose another path"
        )


def _existing_final(path: Path) -> Path | None:
    """The file that makes ``path`` an existing trace, if any (a CSV's sidecar counts)."""
    if path.exists():
        return path
    if _suffix_format(path) == "csv" and sidecar_path_for(path).exists():
        return sidecar_path_for(path)
    return None


def value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot go in the known trace column ``name``; None when it can.

    Unknown columns accept any value (it is recorded as it is, or as its
    `str`). A missing value (`None`, NaN) is always accepted.
    """
    spec = ALL_COLUMNS.get(name)
    if spec is None or value is None:
        return None
    cls = value.__class__
    if spec.dtype == "float64":
        ok = cls is float or cls is int or (
            isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_))
        )
    elif spec.dtype in ("Int64", "int64"):
        if isinstance(value, (float, np.floating)) and not math.isfinite(value):
            return None
        ok = ((isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)))
              or (isinstance(value, (float, np.floating)) and float(value).is_integer())
              ) and -_I64 <= value < _I64  # a 64-bit integer
    elif spec.dtype in ("bool", "boolean"):
        ok = isinstance(value, (bool, np.bool_))
    else:
        ok = isinstance(value, str)
    if ok:
        return None
    return f"column {name!r} holds {spec.dtype} values, got {type(value).__name__} {value!r}"


class TraceWriter:
    """Stream a recording to JSON Lines, then finalise it atomically.

    The in-progress file is `<path>.partial.jsonl`: its header (metadata,
    `"partial": true`) is written when the writer opens, and every
    `write_attempt` hands its line to the operating system at once (one
    `os.write` on an unbuffered descriptor: nothing waits in a Python buffer),
    so a killed process loses at most the attempt being written. `finalize` writes the final
    file (format from the suffix of `path`, or Parquet with
    `to_parquet=True`) atomically (temporary file, fsync, rename, fsync of the
    folder) and only then removes the in-progress file.

    What survives what: a line handed to the operating system survives the
    process being killed (`SIGKILL` included) whatever `fsync_every` is.
    Surviving a power loss or an operating-system crash needs the data on the
    disk: the header and the file's folder entry are fsynced when the writer
    opens, attempts every `fsync_every` attempts (and once more at
    `finalize`) when `fsync_every` > 0, and the final file before the
    in-progress one is removed.

    A finished trace already at `path` is never overwritten by default: the
    writer raises `TraceExistsError` naming the file when it opens (and again
    at `finalize`, if one appeared meanwhile). `overwrite=True` replaces it
    at `finalize` (atomically: the old file stays whole until then);
    `append=True` adds the recorded run(s) to it.

    Parameters
    ----------
    path : path-like
        The final file.
    metadata : TraceMetadata
        Metadata of the recording; its runs should carry `status="recording"`.
    fsync_every : int, default 0
        Also fsync the in-progress file every this many attempts (0: never;
        a written line survives a killed process, an fsync also a power loss;
        see above).
    overwrite : bool, default False
        Replace a finished trace at `path`.
    append : bool, default False
        Add the runs of this recording to the finished trace at `path` (created
        when absent). The existing trace is loaded (and so validated) when the
        writer opens; a run id it already holds is a `ValueError`. The file
        keeps its format and file-level metadata; where this recording's
        `config`, `criterion`, `environment`, `model` or `tags` differ from
        the file's, they are stored in the new run's `provenance`.
    format : {"parquet", "csv", "jsonl"}, optional
        Final format; default: from the suffix of `path`. Any other suffix is a
        `ValueError` here, before anything is recorded.

    Raises
    ------
    TraceExistsError
        A finished trace is at `path` and neither `overwrite` nor `append`.
    FileExistsError
        An in-progress `<path>.partial.jsonl` of an unfinished recording exists.
    ValueError
        Both `overwrite` and `append`; with `append`, a run id already in the
        file.

    Examples
    --------
    >>> w = TraceWriter("run.jsonl", TraceMetadata(runs=[RunInfo(run_id="r0", status="recording")]))
    >>> w.write_attempt({"index": 0, "t_start_ns": 0, "t_end_ns": 9, "wall_start_ns": 1,
    ...                  "latency_ms": 9e-6, "ok": True, "error": None})  # doctest: +SKIP
    >>> w.finalize(status="fixed")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], metadata: TraceMetadata, *,
                 fsync_every: int = 0, overwrite: bool = False, append: bool = False,
                 format: str | None = None) -> None:
        self.path = Path(path)
        self.format = format
        fmt = format or _suffix_format(self.path)
        if fmt not in NATIVE_FORMATS:
            raise ValueError(
                f"cannot record to {self.path}: unknown trace format "
                f"{fmt if format else self.path.suffix!r}; use a .parquet, .csv or .jsonl "
                "file (or format=)"
            )
        self.metadata = metadata
        self.partial_path = partial_path_for(self.path)
        self.fsync_every = int(fsync_every)
        self.overwrite = bool(overwrite)
        self.append = bool(append)
        self._lines: list[str] = []
        self._closed = False
        if self.overwrite and self.append:
            raise ValueError("overwrite=True and append=True exclude each other")
        existing = _existing_final(self.path)
        if existing is not None and not (self.overwrite or self.append):
            raise TraceExistsError(existing)
        if self.append and existing is not None:
            self._check_append(load_trace(self.path))
        self.partial_path.parent.mkdir(parents=True, exist_ok=True)
        if self.partial_path.exists():
            raise FileExistsError(
                f"{self.partial_path} exists: an earlier recording did not finish; load it "
                "with load_trace() to recover it, or remove it"
            )
        self._single_run_prefix = (
            encode_key("run_id") + encode_value(metadata.runs[0].run_id) + ", "
            if len(metadata.runs) == 1 else None
        )
        # A raw descriptor: one write system call per attempt, no Python-level buffer
        # to flush (what a killed process loses is at most the line being written).
        self._fd = os.open(self.partial_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND,
                           0o666)
        self._write_bytes((_header_line(metadata, partial=True) + "\n").encode())
        os.fsync(self._fd)
        _fsync_dir(self.partial_path.parent)
        self._sink = self.line_writer()

    def _check_append(self, existing: Trace) -> None:
        clash = sorted({r.run_id for r in self.metadata.runs} & set(existing.run_ids))
        if clash:
            raise ValueError(
                f"cannot append to {self.path}: it already holds run(s) {clash}; "
                "give the new run another run_id"
            )

    @property
    def n_written(self) -> int:
        """Attempts written so far."""
        return len(self._lines)

    def write_attempt(self, row: Mapping[str, Any]) -> None:
        """Append one attempt to the in-progress file (written through at once).

        `run_id` may be omitted when the metadata describes exactly one run.
        Values of known columns must have the column's type (a
        `TraceFormatError` names the field otherwise); NaN and infinities are
        written as null.
        """
        if self._closed:
            raise RuntimeError(f"trace writer for {self.path} is already finalised")
        for key, value in row.items():
            if key in ALL_COLUMNS and value is not None:
                problem = value_problem(key, value)
                if problem is not None:
                    raise TraceFormatError(problem, file=str(self.partial_path),
                                           row=len(self._lines), field=key)
        if "run_id" in row:
            line = _row_line(row)
        elif self._single_run_prefix is not None:
            line = _row_line(row)
            line = "{" + self._single_run_prefix + line[1:] if len(line) > 2 else (
                "{" + self._single_run_prefix[:-2] + "}")
        else:
            raise ValueError("row has no 'run_id' and the metadata describes "
                             f"{len(self.metadata.runs)} runs")
        self.write_line(line)

    def write_line(self, line: str) -> None:
        """Append one attempt already serialised as a JSON object on one line (written through).

        The fast path of a recorder that builds its own lines (the warmup
        driver does): the line is written as it is, without checks — it must
        hold `run_id` and the required columns with values of their types.
        """
        if self._closed:
            raise RuntimeError(f"trace writer for {self.path} is already finalised")
        self._sink(line)

    def line_writer(self) -> Callable[[str], None]:
        """`write_line` as a function with the writer's state bound: the recorder's hot path.

        Each call appends one attempt, already serialised as a JSON object on
        one line, and writes it through to the operating system before
        returning (one `os.write`, looping over short writes), exactly as
        `write_line` does, without its checks. Do not call it after
        `finalize` or `abandon`.
        """
        fd = self._fd
        lines = self._lines
        append = lines.append
        write = os.write
        every = self.fsync_every
        rest = self._write_bytes

        def write_line(line: str) -> None:
            data = (line + "\n").encode()
            append(line)  # first: an interrupt after the write cannot lose the line
            written = write(fd, data)
            if written != len(data):  # a short write (disk full, signal): write the rest
                rest(data[written:])
            if every and len(lines) % every == 0:
                os.fsync(fd)

        return write_line

    def _write_bytes(self, data: bytes) -> None:
        """Write all of ``data`` (looping over short writes)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def finalize(
        self,
        runs: Sequence[RunInfo] | None = None,
        *,
        to_parquet: bool = False,
        format: str | None = None,
        metadata: TraceMetadata | None = None,
        validate: bool = True,
        **run_updates: Any,
    ) -> Path:
        """Write the final file atomically and remove the in-progress one.

        Parameters
        ----------
        runs : sequence of RunInfo, optional
            Replace the runs of the metadata.
        to_parquet : bool, default False
            Write Parquet (at `path` if it ends in `.parquet`, else at
            `path` with the suffix replaced).
        format : {"jsonl", "parquet", "csv"}, optional
            Final format at `path`, overriding its suffix.
        metadata : TraceMetadata, optional
            Replace the whole metadata.
        validate : bool, default True
            Parse and validate the rows before writing a JSON Lines file (the
            other formats are always validated, since they are built from the
            parsed table). A recorder whose rows are valid by construction
            passes False to skip the re-parse.
        **run_updates
            Field updates (`stop_index=`, `status=`, `shadow=`,
            `interrupted=`...) applied to the single run of the metadata.

        Returns
        -------
        Path
            The final file.

        Raises
        ------
        TraceExistsError
            A finished trace appeared at the final path during the recording
            (neither `overwrite` nor `append`); the in-progress file is kept.
        """
        if self._closed:
            raise RuntimeError(f"trace writer for {self.path} is already finalised")
        meta = metadata if metadata is not None else self.metadata
        if runs is not None:
            meta = meta.model_copy(update={"runs": list(runs)})
        if run_updates:
            if len(meta.runs) != 1:
                raise ValueError(f"run updates need exactly one run, metadata has {len(meta.runs)}")
            updated = RunInfo.model_validate({**meta.runs[0].model_dump(), **run_updates})
            meta = meta.model_copy(update={"runs": [updated]})
        final = self.path
        fmt = format or self.format or _suffix_format(final)
        if fmt is not None and fmt not in NATIVE_FORMATS:
            raise ValueError(f"unknown trace format {fmt!r}; use one of {NATIVE_FORMATS}")
        if to_parquet:
            fmt = "parquet"
            if final.suffix.lower() not in (".parquet", ".pq"):
                final = final.with_suffix(".parquet")
        existing = _existing_final(final)
        if existing is not None and not (self.overwrite or self.append):
            self.abandon()
            raise TraceExistsError(existing)
        if self.fsync_every:  # the final file is fsynced below: this only matters till then
            os.fsync(self._fd)
        os.close(self._fd)
        self._closed = True
        self.metadata = meta
        header = _header_line(meta, partial=False)
        if self.append and existing is not None:
            self._append_to(final, meta, header)
        elif fmt == "jsonl" or fmt is None:
            if validate:
                body = "\n".join([header, *self._lines]) + "\n"
                parse_jsonl(body.encode(), file=str(self.partial_path), partial=False)
            with _atomic_path(final) as tmp, tmp.open("w", encoding="utf-8") as fh:
                fh.write(header)
                fh.write("\n")
                if self._lines:
                    fh.write("\n".join(self._lines))
                    fh.write("\n")
        else:
            body = "\n".join([header, *self._lines]) + "\n"
            trace = parse_jsonl(body.encode(), file=str(self.partial_path), partial=False)
            save_trace(trace, final, format=fmt)
        self.partial_path.unlink(missing_ok=True)
        _fsync_dir(final.parent)
        logger.info("finalised trace %s (%d attempts)", final, len(self._lines))
        return final

    def _append_to(self, final: Path, meta: TraceMetadata, header: str) -> None:
        """Merge the recorded runs into the finished trace at ``final`` and rewrite it."""
        old = load_trace(final)
        self._check_append(old)
        body = "\n".join([header, *self._lines]) + "\n"
        new = parse_jsonl(body.encode(), file=str(self.partial_path), partial=False)
        file_meta = old.metadata
        differing = {
            name: getattr(meta, name)
            for name in ("config", "criterion", "environment", "model", "tags")
            if getattr(meta, name) != getattr(file_meta, name)
        }
        added = []
        for run in meta.runs:
            if differing:
                extra = {k: (v.model_dump(mode="json") if hasattr(v, "model_dump") else v)
                         for k, v in differing.items()}
                run = run.model_copy(update={"provenance": {**run.provenance, **extra}})
            added.append(run)
        merged_meta = file_meta.model_copy(update={"runs": [*file_meta.runs, *added]})
        frame = pd.concat([old.data.astype(object), new.data.astype(object)],
                          ignore_index=True, sort=False)
        merged = Trace(normalize_frame(frame, file=str(final)), merged_meta)
        fmt = detect_native_format(final) or _suffix_format(final)
        save_trace(merged, final, format=fmt)
        logger.info("appended run(s) %s to %s (now %d runs, %d attempts)",
                    [r.run_id for r in added], final, len(merged_meta.runs), len(merged.data))

    def abandon(self) -> None:
        """Close the in-progress file without finalising (it stays loadable)."""
        if not self._closed:
            os.close(self._fd)
            self._closed = True

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abandon()
