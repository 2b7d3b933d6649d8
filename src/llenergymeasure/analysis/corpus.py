"""The corpus model: one record per run, built once, read by replay, scoring and figures.

A `Corpus` is an ordered, read-only sequence of `RunRecord`s, one per run:
its trace id, run id, signals (the successful samples of each watched column),
sample times, failed attempts, reference steady-state start and source. It is
built once from whatever the user has (`Corpus.build`): trace files, folders,
lists of paths, `Trace` objects, mappings `{trace_id: Trace or array}`, bare
arrays, or another corpus. Replay, scoring and every figure take a corpus (or
anything `Corpus.build` accepts) and nobody else extracts runs.

Identifiers
-----------
A run is named by the pair `(trace_id, run_id)`, unique in a corpus:

- a file given by path: its stem (`load_trace` sets `Trace.trace_id`);
- a file found in a folder: its path relative to that folder, POSIX, suffix
  dropped (`load_traces`); when several folders are given, each id is
  prefixed by its folder's name (`"a/synthetic_000"`), so that two folders
  holding the same file names give distinct runs whatever their order;
- a `Trace` object: its `trace_id`, else the `trace_id` or `name` tag of its
  metadata, else the `benchmark`, `file`, `source_file` or `path` provenance
  of its first run, else `"trace-"` and the first 12 hex digits of a SHA-1 of
  its data (independent of the position of the trace among the inputs);
- a mapping: its keys; bare arrays in a sequence: `"series<position>"`.

Two runs with the same pair are never merged: building the corpus raises a
`CorpusError` that names both sources.

Sample times
------------
A trace's runs carry the times of `Trace.sample_times_s` (seconds from the
start of the run's first attempt to the end of each successful one). A bare
array has no times (`times=None`) unless `values_are_durations=True` says
its values are the durations of the samples in milliseconds: the times are then
the cumulative values in ms divided by 1e3. Criteria that need times
(`needs_time`) refuse runs without them, and scoring then reports errors in
samples only.

Reference starts
----------------
`Corpus.with_reference` attaches labelled steady-state starts from a frame or
a CSV file with the columns `trace_id,run_id,reference_start` (an int; -1 = no
steady state; empty = unknown; extra columns such as `method` are allowed), the
format `llem-warmup label` writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "REFERENCE_COLUMNS",
    "Corpus",
    "CorpusError",
    "RunRecord",
    "read_reference",
    "trace_id_of",
    "traini_series_folder",
]

#: Required columns of a reference file, in order.
REFERENCE_COLUMNS: tuple[str, str, str] = ("trace_id", "run_id", "reference_start")

#: Columns of a trace that are bookkeeping, never signals.
_NOT_SIGNALS = frozenset({"run_id", "index", "t_start_ns", "t_end_ns", "wall_start_ns", "ok",
                          "error", "warmup"})


class CorpusError(ValueError):
    """Bad input to the corpus: an id collision, a missing signal, a bad reference file."""


@dataclass(frozen=True, eq=False)
class RunRecord:
    """One run, as replay, scoring and figures read it.

    Attributes
    ----------
    trace_id : str
        Identifier of the trace the run belongs to (unique with `run_id`).
    run_id : str
        Identifier of the run within its trace.
    signals : Mapping[str, numpy.ndarray]
        The successful samples of each signal (`"latency_ms"`, ...), in order.
    times : numpy.ndarray or None
        End time of each successful sample, seconds from the start of the run;
        None when unknown (a bare array without `values_are_durations`).
    failures : int
        Failed attempts of the run (not among the samples).
    reference_start : int or None
        First steady sample (labelled); -1: no steady state; None: unknown.
    source : str
        Where the run came from (a file path, or a description of the object).
    """

    trace_id: str
    run_id: str
    signals: Mapping[str, NDArray[np.float64]]
    times: NDArray[np.float64] | None = None
    failures: int = 0
    reference_start: int | None = None
    source: str = "<memory>"

    @property
    def key(self) -> tuple[str, str]:
        """`(trace_id, run_id)`."""
        return (self.trace_id, self.run_id)

    @property
    def base(self) -> NDArray[np.float64]:
        """The latency series (`latency_ms`, else the first signal)."""
        x = self.signals.get("latency_ms")
        return next(iter(self.signals.values())) if x is None else x

    @property
    def n(self) -> int:
        """Number of successful samples."""
        if self.times is not None:
            return int(self.times.shape[0])
        return int(self.base.shape[0]) if self.signals else 0

    def signal(self, name: str) -> NDArray[np.float64]:
        """The samples of signal `name`.

        Raises
        ------
        CorpusError
            When the run does not hold that signal (the message lists those it has).
        """
        try:
            return self.signals[name]
        except KeyError:
            raise CorpusError(
                f"trace {self.trace_id!r}, run {self.run_id!r} ({self.source}) has no signal "
                f"{name!r} (signals: {sorted(self.signals)})"
            ) from None

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _hash_id(trace: Any) -> str:
    data = getattr(trace, "data", None)
    h = hashlib.sha1()
    if data is not None:
        h.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    return f"trace-{h.hexdigest()[:12]}"


def trace_id_of(trace: Any) -> str:
    """The identifier a `Trace` object gets in a corpus (see the module docstring).

    The first of: its `trace_id` attribute; the `trace_id` or `name` tag of its
    metadata; the `benchmark`, `file`, `source_file` or `path` provenance of its
    first run; `"trace-"` and 12 hex digits of a SHA-1 of its data.
    """
    value = getattr(trace, "trace_id", None)
    if isinstance(value, str) and value:
        return value
    meta = getattr(trace, "metadata", None)
    tags = getattr(meta, "tags", None) or {}
    for key in ("trace_id", "name"):
        if tags.get(key):
            return str(tags[key])
    for info in getattr(meta, "runs", None) or []:
        prov = getattr(info, "provenance", None) or {}
        for key in ("benchmark", "file", "source_file", "path"):
            if prov.get(key):
                return str(prov[key])
        break
    return _hash_id(trace)


def _is_trace(obj: Any) -> bool:
    return hasattr(obj, "run_ids") and hasattr(obj, "samples") and hasattr(obj, "data")


def _default_signals(trace: Any) -> tuple[str, ...]:
    data = trace.data
    out = ["latency_ms"] if "latency_ms" in data.columns else []
    for col in data.columns:
        name = str(col)
        if name in _NOT_SIGNALS or name in out:
            continue
        if pd.api.types.is_float_dtype(data[col]):
            out.append(name)
    return tuple(out)


def _runs_of_trace(trace: Any, tid: str, source: str,
                   signals: Sequence[str] | None) -> list[RunRecord]:
    names = tuple(signals) if signals is not None else _default_signals(trace)
    columns = set(map(str, trace.data.columns))
    missing = [s for s in names if s not in columns]
    if missing:
        raise CorpusError(
            f"trace {tid!r} ({source}) has no column {missing[0]!r}, which is asked for "
            f"(columns: {sorted(columns)})"
        )
    data = trace.data
    failed: dict[str, int] = {}
    if len(data):
        bad = ~data["ok"].astype(bool)
        failed = {str(k): int(v) for k, v in bad.groupby(data["run_id"].astype(str)).sum().items()}
    infos = {r.run_id: r for r in trace.metadata.runs}
    runs = []
    for rid in trace.run_ids:
        sig = {s: np.asarray(trace.samples(rid, signal=s), dtype=np.float64) for s in names}
        times = np.asarray(trace.sample_times_s(rid), dtype=np.float64)
        info = infos.get(rid)
        ref = None if info is None else info.reference_start
        runs.append(RunRecord(tid, str(rid), sig, times, failed.get(str(rid), 0),
                              None if ref is None else int(ref), source))
    return runs


def _runs_of_array(item: Any, tid: str, source: str, signals: Sequence[str] | None,
                   durations: bool) -> RunRecord:
    if isinstance(item, Mapping):
        arrays = {str(k): np.asarray(v, dtype=np.float64) for k, v in item.items()}
        if not arrays:
            raise CorpusError(f"{source}: an empty mapping of signals")
    else:
        arrays = {"latency_ms": np.asarray(item, dtype=np.float64)}
    first = next(iter(arrays.values()))
    for name, arr in arrays.items():
        if arr.ndim != 1:
            raise CorpusError(f"{source}: signal {name!r}: expected a 1-D series, got shape "
                              f"{arr.shape}")
        if arr.shape != first.shape:
            raise CorpusError(f"{source}: signal {name!r} has {arr.shape[0]} values, "
                              f"{next(iter(arrays))!r} has {first.shape[0]}")
    if signals is not None:
        missing = [s for s in signals if s not in arrays]
        if missing:
            raise CorpusError(f"{source} has no signal {missing[0]!r}, which is asked for "
                              f"(signals: {sorted(arrays)}; a bare array is 'latency_ms')")
        arrays = {s: arrays[s] for s in signals}
    run = RunRecord(tid, "0", arrays, None, 0, None, source)
    if durations:
        with np.errstate(invalid="ignore", over="ignore"):
            run = run.replace(times=np.cumsum(run.base) / 1e3)
    return run


def traini_series_folder(path: str | os.PathLike[str]) -> Path:
    """The folder of series to read for `path`: a Traini et al. corpus folder (one holding
    `timeseries/all/`, with `classification/` beside it for the labels) is read as its
    `timeseries/all/`, so the corpus root can be given as it is; any other path as is."""
    p = Path(path)
    series = p / "timeseries" / "all"
    return series if p.is_dir() and series.is_dir() else p


def _is_pathlike(obj: Any) -> bool:
    return isinstance(obj, (str, os.PathLike))


class Corpus(Sequence[RunRecord]):
    """An ordered, read-only sequence of runs with unique `(trace_id, run_id)` keys.

    Build one with `Corpus.build`; the constructor takes the records themselves.
    Runs are ordered by trace id (runs of a trace in their recorded order), so the
    same inputs given in any order give the same corpus.

    Parameters
    ----------
    runs : iterable of RunRecord
        The runs.

    Raises
    ------
    CorpusError
        When two runs share a `(trace_id, run_id)`: the message names both sources.
    """

    def __init__(self, runs: Iterable[RunRecord]) -> None:
        records = list(runs)
        order = sorted(range(len(records)), key=lambda i: records[i].trace_id)
        self._runs: tuple[RunRecord, ...] = tuple(records[i] for i in order)
        index: dict[tuple[str, str], int] = {}
        for i, run in enumerate(self._runs):
            if not isinstance(run, RunRecord):
                raise CorpusError(f"a corpus holds RunRecord objects, got {type(run).__name__}")
            other = index.get(run.key)
            if other is not None:
                first = self._runs[other]
                raise CorpusError(
                    f"two runs are named trace {run.trace_id!r}, run {run.run_id!r}: one from "
                    f"{first.source}, one from {run.source}; give them distinct trace ids "
                    "(e.g. set Trace.trace_id, or pass a mapping {id: trace})"
                )
            index[run.key] = i
        self._index = index

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        inputs: Any,
        *,
        signals: Sequence[str] | None = None,
        values_are_durations: bool = False,
        format: str | None = None,
    ) -> Corpus:
        """Build a corpus from paths, traces, arrays or another corpus.

        Parameters
        ----------
        inputs : path, Trace, array, mapping, Corpus or sequence of them
            A trace file or a folder of traces (every trace of it, see
            `llenergymeasure.traces.load_traces`); a `Trace`; a 1-D array of
            latencies in ms (one run, trace id `"series<position>"`, run id
            `"0"`) or a mapping of signal arrays (`{"latency_ms": ..., ...}`) as
            an element of a sequence; a mapping `{trace_id: Trace or array}`; a
            `Corpus` (returned as is, after checking `signals`); or a list or
            tuple mixing these. When several folders are given, each id found in
            a folder is prefixed by the folder's name.
        signals : sequence of str, optional
            Signals to hold for each run (default: `latency_ms` and every other
            float column of a trace; every array of a bare input).
        values_are_durations : bool, default False
            Bare arrays only: their values are the durations of the samples in
            ms, so the run's sample times are the cumulative values / 1e3 s.
            Without it a bare array has no times: criteria that need times refuse
            it and scoring reports samples only.
        format : str, optional
            Importer of the files given by path (`"traini"`, `"pyperf"`, ...),
            as `load_trace` takes it; folders detect each file's format.

        Returns
        -------
        Corpus

        Raises
        ------
        CorpusError
            An id collision (naming both sources), a missing signal, a bad array.
        FileNotFoundError
            A path that does not exist.
        """
        if isinstance(inputs, Corpus):
            if signals is not None:
                for run in inputs:
                    for s in signals:
                        run.signal(s)
            return inputs
        if isinstance(inputs, np.ndarray) or _is_trace(inputs) or _is_pathlike(inputs):
            items: list[tuple[str | None, Any]] = [(None, inputs)]
        elif isinstance(inputs, Mapping):
            items = [(str(k), v) for k, v in inputs.items()]
        elif isinstance(inputs, Iterable):
            items = [(None, v) for v in inputs]
        else:
            raise CorpusError(
                f"cannot build a corpus from a {type(inputs).__name__}: give trace files or "
                "folders, Trace objects, arrays, a mapping {id: trace or array} or a Corpus"
            )
        folders = [v for k, v in items if k is None and _is_pathlike(v) and Path(v).is_dir()]
        prefix_folders = len(folders) > 1
        runs: list[RunRecord] = []
        for pos, (name, item) in enumerate(items):
            runs.extend(_records(item, name, pos, signals, values_are_durations, format,
                                 prefix_folders))
        return cls(runs)

    # ------------------------------------------------------------------ sequence
    def __len__(self) -> int:
        return len(self._runs)

    @overload
    def __getitem__(self, i: int) -> RunRecord: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[RunRecord]: ...

    def __getitem__(self, i: int | slice) -> RunRecord | Sequence[RunRecord]:
        return self._runs[i]

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self._runs)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, RunRecord):
            key = key.key
        return key in self._index

    def __repr__(self) -> str:
        return f"Corpus({len(self)} runs of {len(self.trace_ids)} traces)"

    # ------------------------------------------------------------------- lookup
    def keys(self) -> list[tuple[str, str]]:
        """`(trace_id, run_id)` of every run, in order."""
        return [r.key for r in self._runs]

    @property
    def trace_ids(self) -> list[str]:
        """Distinct trace ids, in order."""
        return list(dict.fromkeys(r.trace_id for r in self._runs))

    def get(self, trace_id: Any, run_id: Any) -> RunRecord:
        """The run `(trace_id, run_id)` (both compared as strings).

        Raises
        ------
        CorpusError
            When the corpus has no such run (the message lists a few it has).
        """
        i = self._index.get((str(trace_id), str(run_id)))
        if i is None:
            known = ", ".join(f"{t}/{r}" for t, r in self.keys()[:5])
            more = "" if len(self) <= 5 else f", ... ({len(self)} runs)"
            raise CorpusError(f"no trace {str(trace_id)!r} run {str(run_id)!r} in the corpus "
                              f"(runs: {known}{more})")
        return self._runs[i]

    def position(self, trace_id: Any, run_id: Any) -> int:
        """Position of a run in the corpus (see `get` for the error)."""
        i = self._index.get((str(trace_id), str(run_id)))
        if i is None:
            self.get(trace_id, run_id)
        return int(i)  # type: ignore[arg-type]

    def positions(self, trace_ids: Iterable[Any], run_ids: Iterable[Any]) -> NDArray[np.int64]:
        """Positions of many runs at once (see `get` for the error)."""
        idx = self._index
        out = []
        for t, r in zip(trace_ids, run_ids, strict=True):
            i = idx.get((str(t), str(r)))
            if i is None:
                self.get(t, r)
            out.append(i)
        return np.asarray(out, dtype=np.int64)

    def select(self, keys: Iterable[tuple[Any, Any]]) -> Corpus:
        """A corpus of the given runs only."""
        return Corpus(self.get(t, r) for t, r in keys)

    # ---------------------------------------------------------------- reference
    def reference_frame(self) -> pd.DataFrame:
        """The reference starts as a frame in the reference-file format."""
        return pd.DataFrame({
            "trace_id": [r.trace_id for r in self._runs],
            "run_id": [r.run_id for r in self._runs],
            "reference_start": pd.array([r.reference_start for r in self._runs], dtype="Int64"),
        })

    def with_reference(self, reference: pd.DataFrame | str | os.PathLike[str]) -> Corpus:
        """A corpus whose runs carry the reference starts of a frame or a CSV file.

        Parameters
        ----------
        reference : DataFrame or path
            Columns `trace_id`, `run_id`, `reference_start` (an int; -1: no steady
            state; missing: unknown); extra columns are ignored. Runs of the corpus
            the reference does not list keep their own reference start.

        Returns
        -------
        Corpus

        Raises
        ------
        CorpusError
            A missing column, a duplicated run, a run the corpus does not hold, or a
            start outside `-1 .. n - 1`.
        """
        frame = read_reference(reference)
        source = str(reference) if _is_pathlike(reference) else "the reference frame"
        refs: dict[tuple[str, str], int | None] = {}
        for row, (t, r, s) in enumerate(zip(frame["trace_id"], frame["run_id"],
                                            frame["reference_start"], strict=True)):
            key = (str(t), str(r))
            if key in refs:
                raise CorpusError(f"{source}, row {row + 1}: trace {key[0]!r} run {key[1]!r} "
                                  "is listed twice")
            if key not in self._index:
                raise CorpusError(f"{source}, row {row + 1}: trace {key[0]!r} run {key[1]!r} "
                                  f"is not in the corpus ({len(self)} runs)")
            value = None if s is pd.NA else int(s)
            n = self._runs[self._index[key]].n
            if value is not None and not -1 <= value < max(n, 1):
                raise CorpusError(f"{source}, row {row + 1}: reference_start {value} outside "
                                  f"-1..{n - 1} for trace {key[0]!r} run {key[1]!r}")
            refs[key] = value
        return Corpus(
            r.replace(reference_start=refs[r.key]) if r.key in refs else r for r in self._runs
        )


def read_reference(reference: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """Read and check a reference frame or CSV file (`trace_id,run_id,reference_start`).

    Returns
    -------
    DataFrame
        The three columns, ids as strings, `reference_start` as nullable Int64.

    Raises
    ------
    CorpusError
        A missing column or a value that is not an integer >= -1.
    FileNotFoundError
        A path that does not exist.
    """
    if isinstance(reference, pd.DataFrame):
        frame, source = reference, "the reference frame"
    else:
        path = Path(reference)
        if not path.is_file():
            raise FileNotFoundError(f"no reference file {path}")
        frame = pd.read_csv(path, dtype={"trace_id": str, "run_id": str},
                            keep_default_na=False, na_values={"reference_start": [""]})
        source = str(path)
    missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise CorpusError(f"{source} lacks column {missing[0]!r} (a reference has columns "
                          f"{', '.join(REFERENCE_COLUMNS)}; got {list(frame.columns)})")
    raw = frame["reference_start"]
    values = pd.to_numeric(raw, errors="coerce")
    bad = (raw.notna() & values.isna()) | (values.notna() & ((values % 1 != 0) | (values < -1)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise CorpusError(f"{source}, row {row + 1}: reference_start {str(raw.iloc[row])!r} is not "
                          "an integer >= -1 (or empty for unknown)")
    return pd.DataFrame({
        "trace_id": frame["trace_id"].astype(str).to_numpy(),
        "run_id": frame["run_id"].astype(str).to_numpy(),
        "reference_start": pd.array(values.to_numpy(dtype="float64", na_value=np.nan),
                                    dtype="Float64").astype("Int64"),
    })


def _records(item: Any, name: str | None, pos: int, signals: Sequence[str] | None,
             durations: bool, format: str | None, prefix_folders: bool) -> list[RunRecord]:
    from llenergymeasure.traces import load_trace, load_traces

    if isinstance(item, RunRecord):
        return [item]
    if isinstance(item, Corpus):
        return list(item)
    if _is_pathlike(item):
        path = traini_series_folder(item)
        if not path.exists():
            raise FileNotFoundError(f"no trace file or folder {path}")
        if path.is_dir():
            traces = load_traces(path)
            out = []
            for tr in traces:
                tid = trace_id_of(tr)
                if prefix_folders:
                    tid = f"{path.resolve().name}/{tid}"
                if name is not None:
                    tid = f"{name}/{tid}"
                src = str(path / tr.trace_id) if tr.trace_id else str(path)
                out.extend(_runs_of_trace(tr, tid, src, signals))
            return out
        trace = load_trace(path, format=format)
        return _runs_of_trace(trace, name or trace_id_of(trace), str(path), signals)
    if _is_trace(item):
        tid = name or trace_id_of(item)
        return _runs_of_trace(item, tid, f"a Trace object ({tid})", signals)
    tid = name or f"series{pos}"
    return [_runs_of_array(item, tid, f"series {tid!r}", signals, durations)]
