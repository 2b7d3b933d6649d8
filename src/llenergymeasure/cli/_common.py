"""What every ``llem-warmup`` subcommand shares: exit codes, input errors, argument types,
trace inputs (files and folders, ``--keep-going``) and progress bars.

Exit codes (documented in `docs/cli.md`): 0 success, 1 failure at run time, 2 bad input or
usage, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliInputError",
    "load_grid",
    "load_inputs",
    "nonnegative_int",
    "positive_int",
    "process_pool",
    "progress",
    "trace_files",
]

logger = logging.getLogger("llenergymeasure.cli")

EXIT_OK = 0
#: A failure at run time (a file that cannot be written, an unexpected error).
EXIT_FAILURE = 1
#: Bad input or usage: unknown option or criterion, unreadable or invalid file, bad value.
EXIT_USAGE = 2
#: Interrupted by Ctrl-C (128 + SIGINT); finished work is kept.
EXIT_INTERRUPTED = 130


class CliInputError(ValueError):
    """Bad input to a subcommand; the message names what and where."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None,
             desc: str = "", unit: str = "it", quiet: bool = False) -> Any:
    """A tqdm bar on stderr, drawn only on a terminal (and never with ``--quiet``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=True if quiet else None,
                leave=False, dynamic_ncols=True)


def load_grid(path: str | None) -> dict[str, Any] | None:
    """A parameter grid from a JSON or YAML file; a clear error naming the file otherwise."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise CliInputError(f"no grid file {p}")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            grid = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise CliInputError(f"{p}:{where}: invalid YAML: {problem}") from None
    else:
        try:
            grid = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliInputError(
                f"{p}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
            ) from None
    if not isinstance(grid, dict) or not all(isinstance(v, dict) for v in grid.values()):
        raise CliInputError(
            f"{p}: a grid is a mapping {{criterion: {{parameter: [values]}}}}, got "
            f"{type(grid).__name__}"
        )
    return grid


def trace_files(folder: Path) -> Iterator[Path]:
    """The files of ``folder`` (sorted) that are traces: files with a native trace suffix
    (`.parquet`, `.jsonl`: one that does not read is reported, not skipped), CSV files with
    their sidecar and files an importer recognises; sidecars, hidden files and a finished
    recording's ``.partial.jsonl`` are left out."""
    from llenergymeasure.traces import importers
    from llenergymeasure.traces.io import (
        PARTIAL_SUFFIX,
        SIDECAR_SUFFIX,
        detect_native_format,
    )

    for child in sorted(folder.iterdir()):
        if not child.is_file() or child.name.endswith(SIDECAR_SUFFIX) or child.name.startswith(
            "."
        ):
            continue
        if child.name.endswith(PARTIAL_SUFFIX):
            if child.with_name(child.name[: -len(PARTIAL_SUFFIX)]).exists():
                continue
        native_suffix = child.suffix.lower() in (".parquet", ".pq", ".jsonl")
        if (not native_suffix and detect_native_format(child) is None
                and importers.detect_format(child) is None):
            logger.debug("skipping %s: not a trace", child)
            continue
        yield child  # a .parquet/.jsonl that does not read is a bad trace, not skipped


def expand_inputs(paths: Iterable[str]) -> list[Path]:
    """Files named, and the trace files of folders named; a missing path is an error."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = list(trace_files(p))
            if not found:
                logger.warning("no trace file in folder %s", p)
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise CliInputError(f"no trace file or folder {p}")
    return files


def load_inputs(paths: Iterable[str], fmt: str | None = None, *, keep_going: bool = False,
                quiet: bool = False, with_paths: bool = False) -> list[Any]:
    """Load the traces of files and folders; a bad file stops with its name unless
    ``keep_going``, which reports and skips it. ``with_paths`` returns ``(file, trace)``
    pairs instead of traces.

    Each trace's `trace_id` follows the corpus rule (`analysis.corpus.Corpus.build`):
    a file given by name is its stem; a file found in a folder is its path relative to
    the folder, prefixed by the folder's name when several folders are given."""
    from llenergymeasure.analysis.corpus import traini_series_folder
    from llenergymeasure.traces.io import _trace_id_from_path, load_trace

    paths = [str(traini_series_folder(p)) for p in paths]  # a Traini corpus: its series
    expand_inputs(paths)  # a missing path fails before any file is read
    folders = [Path(p) for p in paths if Path(p).is_dir()]
    prefix = len(folders) > 1
    named: list[tuple[Path, str | None]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = list(trace_files(p))
            for f in found:
                tid = _trace_id_from_path(f.relative_to(p))
                named.append((f, f"{p.resolve().name}/{tid}" if prefix else tid))
        else:
            named.append((p, None))
    traces: list[Any] = []
    skipped: list[str] = []
    for f, tid in progress(named, desc="reading traces", unit="file", quiet=quiet):
        try:
            trace = load_trace(f, format=fmt)
        except (ValueError, OSError) as exc:
            message = str(exc) if str(f) in str(exc) else f"{f}: {exc}"
            if not keep_going:
                raise CliInputError(f"{message} (--keep-going skips bad files)") from None
            logger.warning("skipped %s", message)
            skipped.append(str(f))
            continue
        if tid is not None:
            trace.trace_id = tid
        traces.append((f, trace) if with_paths else trace)
    if skipped:
        print(f"skipped {len(skipped)} bad file(s): {', '.join(skipped)}")
    if not traces:
        raise CliInputError(f"no trace found in {', '.join(paths)}")
    return traces


def _ignore_sigint() -> None:  # pragma: no cover - runs in worker processes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_pool(jobs: int) -> Any:
    """A `ProcessPoolExecutor` of `jobs` workers for `--jobs`, or None for one job.

    The workers ignore Ctrl-C: the main process handles it (exit 130, no traceback per
    worker). The caller shuts the pool down.
    """
    if jobs <= 1:
        return None
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=jobs, initializer=_ignore_sigint)
