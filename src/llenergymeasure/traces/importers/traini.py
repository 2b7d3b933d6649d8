"""Importer of the Traini et al. JMH steady-state corpus.

The replication package of Traini, Cortellessa, Di Pompeo and Tucci (EMSE
2023) holds, per benchmark, ``timeseries/all/<bench>.json`` (10 forks of
3000 measurement iterations: mean time per operation in each iteration, in
seconds; JMH ran with no warmup, so the whole warmup is in the data),
``classification/<bench>.json`` (the published labels) and
``changepoints/<bench>.json`` (the PELT change points of each fork).

Each fork becomes one run ``<bench>#fork<k>`` with

* ``latency_ms`` = the iteration's time per operation x 1000;
* ``t_end_ns`` = the cumulative *iteration* duration. An iteration lasts
  about 100 ms and JMH runs whole operations, so its duration is estimated
  as :math:`\\lceil 0.1 / x \\rceil \\, x` seconds for a time per operation
  :math:`x`, the estimate the replication package itself uses for its
  warmup-time and time-waste figures;
* ``RunInfo.reference_start`` = the first steady iteration. Traini et al.'s
  ``steady_state_starts`` entry ``s`` is a change point, the *last* index of
  the warmup segment (R ``changepoint`` convention), so the steady data are
  ``x[s + 1:]`` and the reference start is ``s + 1``; ``s = 0`` (no change
  point: the whole fork is steady) stays 0 and ``-1`` (no steady state)
  stays -1. The published value itself is kept in
  ``labels["published_start"]``. With this convention a stop whose last
  warmup iteration is ``L`` has a warmup estimation error ``L - s``, Traini
  et al.'s own; ``labels["fork"]`` =
  the fork's label, ``labels["run"]`` = the benchmark-level label and
  ``labels["changepoints"]`` = the fork's change points.

References
----------
.. [1] L. Traini, V. Cortellessa, D. Di Pompeo, M. Tucci, "Towards effective
   assessment of steady state performance in Java software: are we there
   yet?", Empirical Software Engineering 28(1):13, 2023.
   Data: doi:10.5281/zenodo.5961018; code: SEALABQualityGroup/steady-state.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from llenergymeasure.traces.importers._common import ImportedRun, build_trace, numbers, read_json
from llenergymeasure.traces.model import Trace, TraceFormatError

__all__ = ["ITERATION_TARGET_S", "import_traini", "iteration_durations_s", "load_traini_corpus",
           "looks_like_traini"]

logger = logging.getLogger(__name__)

#: Target duration of one JMH iteration in the corpus, seconds.
ITERATION_TARGET_S = 0.1


def iteration_durations_s(time_per_op_s: np.ndarray) -> np.ndarray:
    """Estimated wall duration of each iteration, :math:`\\lceil 0.1/x \\rceil x` seconds.

    Parameters
    ----------
    time_per_op_s : ndarray
        Mean time per operation of each iteration, seconds.

    Returns
    -------
    ndarray
        Seconds per iteration (at least :data:`ITERATION_TARGET_S` minus
        rounding, never less than one operation).
    """
    x = np.asarray(time_per_op_s, dtype=np.float64)
    return np.ceil(ITERATION_TARGET_S / x) * x


def _corpus_root(series_path: Path) -> Path | None:
    """The corpus folder (holding ``classification/``) above a time-series file."""
    for parent in list(series_path.parents)[:3]:
        if (parent / "classification").is_dir() or (parent / "changepoints").is_dir():
            return parent
    return None


def looks_like_traini(data: Any) -> bool:
    """A non-empty list of non-empty lists of numbers, not all integers (change points are)."""
    if not isinstance(data, list) or not data:
        return False
    if not all(isinstance(f, list) and f for f in data):
        return False
    first = data[0]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in first[:50]):
        return False
    return any(isinstance(v, float) and not float(v).is_integer() for v in first)


def _fork_labels(root: Path | None, name: str, n_forks: int, series: str) -> dict[str, Any]:
    """The classification and change points of a benchmark, checked against its forks."""
    out: dict[str, Any] = {"classification": None, "changepoints": None}
    if root is None:
        return out
    cls_path = root / "classification" / name
    if cls_path.is_file():
        raw = read_json(cls_path)
        if not isinstance(raw, dict):
            raise TraceFormatError("expected a JSON object", file=str(cls_path))
        for key in ("forks", "steady_state_starts"):
            val = raw.get(key)
            if not isinstance(val, list) or len(val) != n_forks:
                raise TraceFormatError(
                    f"expected a list of {n_forks} entries (one per fork of {series}), got "
                    f"{val!r:.80}",
                    file=str(cls_path),
                    field=key,
                )
        for k, s in enumerate(raw["steady_state_starts"]):
            if isinstance(s, bool) or not isinstance(s, int) or s < -1:
                raise TraceFormatError(
                    f"expected an iteration index or -1, got {s!r}",
                    file=str(cls_path),
                    field=f"steady_state_starts[{k}]",
                )
        out["classification"] = raw
        out["classification_file"] = str(cls_path)
    cp_path = root / "changepoints" / name
    if cp_path.is_file():
        raw_cp = read_json(cp_path)
        if not isinstance(raw_cp, list) or len(raw_cp) != n_forks:
            raise TraceFormatError(
                f"expected a list of {n_forks} change-point lists (one per fork)",
                file=str(cp_path),
            )
        for k, cps in enumerate(raw_cp):
            if not isinstance(cps, list) or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in cps
            ):
                raise TraceFormatError(
                    "expected a list of integer iteration indices", file=str(cp_path),
                    field=f"[{k}]",
                )
        out["changepoints"] = raw_cp
        out["changepoints_file"] = str(cp_path)
    return out


def import_traini(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
                  ) -> Trace:
    """Read one benchmark of the Traini corpus, one run per fork.

    Parameters
    ----------
    path : path-like
        ``<root>/timeseries/all/<bench>.json``.
    root : path-like, optional
        The corpus folder holding ``classification/`` and ``changepoints/``;
        found from ``path`` when omitted. Without them the forks carry no
        labels (``reference_start=None``).

    Returns
    -------
    Trace
        Tags ``source_format="traini"`` and ``benchmark``; per run the
        provenance (file, benchmark, fork index, time model) and labels.

    Raises
    ------
    TraceFormatError
        On a file that is not a list of forks of positive numbers, or label
        files that do not match the forks (naming file and field).
    """
    p = Path(path)
    data = read_json(p)
    f = str(p)
    if not isinstance(data, list) or not data:
        raise TraceFormatError("expected a non-empty list of forks", file=f)
    series = [numbers(fork, file=f, field=f"[{k}]") for k, fork in enumerate(data)]
    name = p.name
    bench = name[: -len(".json")] if name.endswith(".json") else name
    base = Path(root) if root is not None else _corpus_root(p)
    labels = _fork_labels(base, name, len(series), f)
    cls = labels["classification"]
    cps = labels["changepoints"]
    if cls is None:
        logger.info("no classification for %s: forks have no reference start", bench)
    runs = []
    for k, x in enumerate(series):
        dur_ns = np.rint(iteration_durations_s(x) * 1e9).astype(np.int64)
        run_labels: dict[str, Any] = {}
        ref = None
        if cls is not None:
            ref = int(cls["steady_state_starts"][k])
            if ref >= len(x):
                raise TraceFormatError(
                    f"steady-state start {ref} is beyond the fork's {len(x)} iterations",
                    file=labels["classification_file"],
                    field=f"steady_state_starts[{k}]",
                )
            run_labels["published_start"] = ref
            ref = ref + 1 if ref > 0 else ref
            run_labels["fork"] = cls["forks"][k]
            run_labels["run"] = cls.get("run")
        if cps is not None:
            run_labels["changepoints"] = [int(c) for c in cps[k]]
        provenance = {
            "format": "traini",
            "file": f,
            "benchmark": bench,
            "fork": k,
            "unit": "s/op",
            "time_model": "t_end = cumsum(ceil(0.1/x)*x) s per iteration",
        }
        for key in ("classification_file", "changepoints_file"):
            if key in labels:
                provenance[key] = labels[key]
        runs.append(
            ImportedRun(
                run_id=f"{bench}#fork{k}",
                latency_ms=x * 1e3,
                t_end_ns=np.cumsum(dur_ns),
                reference_start=ref,
                labels=run_labels,
                provenance=provenance,
            )
        )
    return build_trace(runs, file=p, source_format="traini", tags={"benchmark": bench},
                       model={"name": bench, "harness": "JMH"})


def load_traini_corpus(root: str | os.PathLike[str], *, limit: int | None = None) -> list[Trace]:
    """Load every benchmark of a Traini corpus folder.

    Parameters
    ----------
    root : path-like
        Folder with ``timeseries/all/``, ``classification/`` and
        ``changepoints/``.
    limit : int, optional
        Read only the first ``limit`` benchmarks (sorted by file name).

    Returns
    -------
    list of Trace
        One trace per benchmark, sorted by file name.

    Raises
    ------
    FileNotFoundError
        If ``root/timeseries/all`` is not a folder.
    """
    base = Path(root)
    folder = base / "timeseries" / "all"
    if not folder.is_dir():
        raise FileNotFoundError(f"no Traini time series folder {folder}")
    files = sorted(folder.glob("*.json"))
    if limit is not None:
        files = files[:limit]
    return [import_traini(fp, root=base) for fp in files]
