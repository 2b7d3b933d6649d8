"""Importer of modded-nanogpt-style training logs (`step:N/M ... train_time:Tms` lines).

The training scripts of modded-nanogpt (and the many scripts derived from it)
print one line per training step and one per evaluation:

```text
step:0/6000 val_loss:11.0149 train_time:305ms step_avg:nanms
step:1/6000 train_loss:11.0091 train_time:24179ms step_avg:nanms
...
step:10/6000 train_loss:10.4348 train_time:26562ms step_avg:nanms
step:11/6000 train_loss:10.2423 train_time:1539ms step_avg:nanms
```

`train_time` is the script's training clock in integer ms: cumulative, with
the clock **stopped around every evaluation** (the script adds the time up to
the evaluation, evaluates, and restarts its timer), and **restarted at 0**
before step 11 (the script resets it at loop step 10, so that its
`step_avg` leaves out the first ten steps). The log becomes one run `train`:

* one attempt per training line, in step order, `latency_ms` = the step's
  duration: the difference of consecutive `train_time` readings of training
  lines (`step_durations_ms`). Evaluation lines are not steps and do not cut
  the differences: the clock did not run during the evaluation, so a
  difference across one holds training time only. Where a reading is *below*
  the previous one the clock was restarted, and the step's duration is the
  reading itself (time since the restart). The first step's duration is its
  reading (the clock starts at 0), so step 1 keeps the compilation
  (`torch.compile`) it pays for; nothing is dropped;
* where the step numbers jump by $g > 1$ (logs that print every $g$ steps)
  `latency_ms` is the mean over the $g$ steps and `steps_covered` = $g$;
* `t_end_ns` = the running sum of the durations (the training clock without
  evaluations, restart undone), `t_start_ns` = the previous end;
* columns `step`, `steps_covered`, `train_loss`, `train_time_ms` (the
  reading as printed);
* evaluations are kept in the provenance (`evaluations`: step, `val_loss`,
  `train_time_ms`, line); restarts in `clock_restarts` (the steps whose
  reading fell). Other lines (the script, `nvidia-smi` output) are ignored;
  the PyTorch version and the GPUs `nvidia-smi` lists become the tags
  `pytorch` and `gpu` / `gpus` when present.

A step whose duration rounds to 0 ms in the log is kept as a failed attempt
(its latency is unknown below the log's 1 ms resolution).

References
----------
- K. Jordan et al., modded-nanogpt, `train_gpt2.py` of the record logs
  (`training_time_ms`, the timer reset at step 10, the `val_loss_every`
  evaluations), https://github.com/KellerJordan/modded-nanogpt.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from llenergymeasure.traces.importers._common import ImportedRun, build_trace, is_gzip
from llenergymeasure.traces.model import Trace, TraceFormatError

__all__ = ["import_nanogpt", "looks_like_nanogpt", "step_durations_ms", "training_run"]

_STEP = re.compile(r"^step:(\d+)/(\d+)\s+(.*?)\s*$")
_TRAIN_LINE = re.compile(rb"^step:\d+/\d+\s[^\n]*train_loss:[^\n]*train_time:\d+ms",
                         re.MULTILINE)
_FIELD = re.compile(r"^([A-Za-z_]+):(\S*)$")
_TIME = re.compile(r"^(\d+)ms$")
_PYTORCH = re.compile(r"^Running pytorch (\S+)", re.MULTILINE)
_SMI_GPU = re.compile(r"^\|\s+\d+\s+(NVIDIA [^|]*?)\s{2,}", re.MULTILINE)

#: Read at most this much of a text file to recognise a training log.
_SNIFF_BYTES = 16 * 1024 * 1024


def looks_like_nanogpt(path: Path) -> bool:
    """Whether a text file has a `step:N/M train_loss:L ... train_time:Tms` line (never raises)."""
    try:
        if is_gzip(path):
            return False
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return False
    return _TRAIN_LINE.search(head) is not None


def step_durations_ms(train_time_ms: np.ndarray, steps: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Per-step durations from the cumulative `train_time` readings of training lines.

    Parameters
    ----------
    train_time_ms : ndarray of float
        The readings, in step order (evaluation lines excluded).
    steps : ndarray of int, optional
        The step of each reading (default: 1, 2, ...).

    Returns
    -------
    durations_ms : ndarray of float
        Mean duration of a step over each gap: the difference of consecutive
        readings, or the reading itself after a restart (a reading below the
        previous one) and for the first reading, divided by the steps covered.
    steps_covered : ndarray of int
        Steps since the previous reading; the first reading covers the steps
        from 1 to its own (the clock starts at 0 before step 1).
    restarts : list of int
        Positions whose reading fell (clock restarted just before them).
    """
    t = np.asarray(train_time_ms, dtype=np.float64)
    s = (np.arange(1, t.size + 1, dtype=np.int64) if steps is None
         else np.asarray(steps, dtype=np.int64))
    prev = np.concatenate([[0.0], t[:-1]])
    fell = t < prev
    diff = np.where(fell, t, t - prev)
    covered = np.diff(s, prepend=0) if s.size else s.copy()
    covered[0] = max(int(s[0]), 1) if s.size else 1
    return diff / covered, covered, [int(i) for i in np.flatnonzero(fell)]


def training_run(steps: np.ndarray, train_time_ms: np.ndarray, *, run_id: str = "train",
                 extra: dict[str, np.ndarray] | None = None,
                 provenance: dict[str, Any] | None = None) -> ImportedRun:
    """The run of per-step durations from the `train_time` readings of training lines.

    Parameters
    ----------
    steps : ndarray of int
        Step of each training line, increasing.
    train_time_ms : ndarray of float
        Its `train_time` reading, ms (evaluation lines excluded).
    run_id : str, default "train"
        Id of the run.
    extra : dict, optional
        More columns (`train_loss`, ...).
    provenance : dict, optional
        The run's provenance; `clock_restarts` (the steps whose reading fell)
        is added.

    Returns
    -------
    ImportedRun
        `latency_ms` from `step_durations_ms`, `t_end_ns` the running sum of
        the durations, columns `step`, `steps_covered`, `train_time_ms`.
    """
    steps = np.asarray(steps, dtype=np.int64)
    readings = np.asarray(train_time_ms, dtype=np.float64)
    dur, covered, restarts = step_durations_ms(readings, steps)
    ok = dur > 0
    end = np.cumsum(np.where(ok, dur, 0.0) * covered)
    prov = dict(provenance or {})
    prov["clock_restarts"] = [int(steps[i]) for i in restarts]
    return ImportedRun(
        run_id=run_id,
        latency_ms=np.where(ok, dur, np.nan),
        t_end_ns=np.rint(end * 1e6).astype(np.int64),
        ok=ok,
        error=[None if o else "step duration rounds to 0 ms in the log" for o in ok],
        extra={"step": steps, "steps_covered": covered, **(extra or {}),
               "train_time_ms": readings},
        provenance=prov,
    )


def _loss(fields: dict[str, str], name: str, file: str, line: int) -> float:
    try:
        return float(fields[name])
    except ValueError:
        raise TraceFormatError(f"expected a number, got {fields[name]!r}", file=file,
                               line=line, field=name) from None


def _parse(text: str, file: str) -> dict[str, Any]:
    train: list[tuple[int, int, float, int]] = []  # step, ms, loss, line
    evals: list[dict[str, Any]] = []
    total: int | None = None
    for ln, line in enumerate(text.splitlines(), start=1):
        m = _STEP.match(line)
        if m is None:
            continue
        step, of = int(m.group(1)), int(m.group(2))
        fields: dict[str, str] = {}
        for tok in m.group(3).split():
            fm = _FIELD.match(tok)
            if fm is None:
                raise TraceFormatError(f"expected name:value, got {tok!r}", file=file, line=ln)
            fields[fm.group(1)] = fm.group(2)
        if "train_time" not in fields:
            raise TraceFormatError("a step line without train_time", file=file, line=ln,
                                   field="train_time")
        tm = _TIME.match(fields["train_time"])
        if tm is None:
            raise TraceFormatError(f"expected an integer number of ms, got "
                                   f"{fields['train_time']!r}", file=file, line=ln,
                                   field="train_time")
        ms = int(tm.group(1))
        if total is None:
            total = of
        elif of != total:
            raise TraceFormatError(f"total steps {of} differs from {total} on earlier lines",
                                   file=file, line=ln, field="step")
        if "val_loss" in fields:
            evals.append({"step": step, "val_loss": _loss(fields, "val_loss", file, ln),
                          "train_time_ms": ms, "line": ln})
        elif "train_loss" in fields:
            if train and step <= train[-1][0]:
                raise TraceFormatError(f"step {step} does not follow step {train[-1][0]}",
                                       file=file, line=ln, field="step")
            train.append((step, ms, _loss(fields, "train_loss", file, ln), ln))
        else:
            raise TraceFormatError("a step line with neither train_loss nor val_loss",
                                   file=file, line=ln, field="train_loss")
    if not train:
        raise TraceFormatError("no training line 'step:N/M train_loss:L train_time:Tms'",
                               file=file)
    return {"train": train, "evals": evals, "total": total}


def import_nanogpt(path: str | os.PathLike[str]) -> Trace:
    """Read a modded-nanogpt-style training log as one run of per-step durations.

    Parameters
    ----------
    path : path-like
        The log (UTF-8 text).

    Returns
    -------
    Trace
        One run `train` (see the module docstring).

    Raises
    ------
    TraceFormatError
        On a step line that does not parse, a `train_time` that is not an
        integer number of ms, steps out of order, or a log without training
        lines (naming the file, the line and the field).
    """
    p = Path(path)
    f = str(p)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise TraceFormatError(f"cannot read the file ({exc})", file=f) from None
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"not UTF-8 text ({exc})", file=f) from None
    parsed = _parse(text, f)
    train = parsed["train"]
    steps = np.array([s for s, _, _, _ in train], dtype=np.int64)
    readings = np.array([ms for _, ms, _, _ in train], dtype=np.float64)
    provenance: dict[str, Any] = {
        "format": "nanogpt",
        "file": f,
        "total_steps": parsed["total"],
        "first_step": int(steps[0]),
        "n_steps": int(steps.size),
        "evaluations": parsed["evals"],
        "first_line": train[0][3],
    }
    run = training_run(steps, readings, provenance=provenance,
                       extra={"train_loss": np.array([lo for _, _, lo, _ in train])})
    tags: dict[str, str] = {}
    m = _PYTORCH.search(text)
    if m:
        tags["pytorch"] = m.group(1)
    gpus = _SMI_GPU.findall(text)
    if gpus:
        tags["gpu"] = ",".join(sorted(set(gpus)))
        tags["gpus"] = str(len(gpus))
    return build_trace([run], file=p, source_format="nanogpt", tags=tags,
                       model={"name": p.stem, "harness": "modded-nanogpt training log"})
