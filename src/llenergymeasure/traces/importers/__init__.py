"""Importers: latency series recorded by other harnesses, read as traces.

| format | source | module |
|---|---|---|
| `traini` | Traini et al. JMH steady-state corpus (labelled) | `traini` |
| `pyperf` | pyperf JSON `"version": "1.0"` (`.json`, `.gz`) | `pyperf` |
| `jmh` | JMH result JSON (`-rf json`) | `jmh` |
| `csv` | any CSV of latencies, through a column mapping | `generic_csv` |
| `vllm` | vLLM serving benchmark result (`--save-result`) | `vllm` |
| `megatron` | Megatron-LM golden-values JSON (`iteration-time`) | `megatron` |
| `nanogpt` | modded-nanogpt-style training log (`step:N/M ... train_time:Tms`) | `nanogpt` |
| `llmperf` | LLMPerf individual responses JSON | `llmperf` |

`import_file` reads one file in a named format (or the detected one);
`detect_format` recognises a format from the file's content.
`ImportedRun` and `build_trace` assemble runs parsed by hand (or by the
per-run helpers of the modules, e.g. for files that gather many runs) into a
validated trace.
`llenergymeasure.traces.load_trace` calls both for files that are
not native traces. Every imported run has `status="imported"`, the source
in `RunInfo.provenance` (`format`, `file` and format-specific keys)
and, where the source has them, labels (`reference_start`, `labels`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llenergymeasure.traces.importers._common import ImportedRun, build_trace, read_json
from llenergymeasure.traces.importers.generic_csv import (
    CsvMapping,
    import_csv,
    looks_like_latency_csv,
)
from llenergymeasure.traces.importers.jmh import import_jmh, looks_like_jmh
from llenergymeasure.traces.importers.llmperf import import_llmperf, looks_like_llmperf
from llenergymeasure.traces.importers.megatron import import_megatron, looks_like_megatron
from llenergymeasure.traces.importers.nanogpt import import_nanogpt, looks_like_nanogpt
from llenergymeasure.traces.importers.pyperf import import_pyperf, looks_like_pyperf
from llenergymeasure.traces.importers.traini import (
    import_traini,
    load_traini_corpus,
    looks_like_traini,
)
from llenergymeasure.traces.importers.vllm import import_vllm, looks_like_vllm
from llenergymeasure.traces.model import Trace, TraceFormatError

__all__ = [
    "FORMATS",
    "CsvMapping",
    "ImportedRun",
    "build_trace",
    "detect_format",
    "import_csv",
    "import_file",
    "import_jmh",
    "import_llmperf",
    "import_megatron",
    "import_nanogpt",
    "import_pyperf",
    "import_traini",
    "import_vllm",
    "load_traini_corpus",
]

#: Importer formats, by name.
FORMATS = ("traini", "pyperf", "jmh", "csv", "vllm", "megatron", "nanogpt", "llmperf")

_IMPORTERS: dict[str, Any] = {
    "traini": import_traini,
    "pyperf": import_pyperf,
    "jmh": import_jmh,
    "csv": import_csv,
    "vllm": import_vllm,
    "megatron": import_megatron,
    "nanogpt": import_nanogpt,
    "llmperf": import_llmperf,
}

#: Read at most this much to recognise a JSON format (the corpus files are ~1 MB).
_MAX_SNIFF_BYTES = 256 * 1024 * 1024


def detect_format(path: str | os.PathLike[str]) -> str | None:
    """Recognise an importer format from the file's content.

    Parameters
    ----------
    path : path-like
        Any file.

    Returns
    -------
    str or None
        `"pyperf"` for an object with `version` and `benchmarks`
        (plain or gzip); `"jmh"` for a list of objects with `benchmark`
        and `primaryMetric`; `"traini"` for a list of forks of numbers
        that are not all integers (the corpus's `changepoints/` files hold
        integers and are not traces); `"vllm"` for an object with the lists
        `ttfts` and `itls`; `"llmperf"` for a list of objects with `ttft_s`
        and `end_to_end_latency_s`; `"megatron"` for an object whose entries
        all have a `values` object; `"nanogpt"` for a text file with a
        `step:N/M train_loss:L ... train_time:Tms` line; `"csv"` for a text file whose
        header has a `latency_ms` column; None otherwise (including
        unreadable or invalid files: detection never raises).
    """
    p = Path(path)
    try:
        if not p.is_file() or p.stat().st_size > _MAX_SNIFF_BYTES:
            return None
        with p.open("rb") as fh:
            head = fh.read(64)
    except OSError:
        return None
    stripped = head.lstrip()
    if head[:2] == b"\x1f\x8b" or stripped[:1] in (b"{", b"["):
        try:
            data = read_json(p)
        except TraceFormatError:
            return None
        if looks_like_pyperf(data):
            return "pyperf"
        if looks_like_jmh(data):
            return "jmh"
        if looks_like_traini(data):
            return "traini"
        if looks_like_vllm(data):
            return "vllm"
        if looks_like_llmperf(data):
            return "llmperf"
        if looks_like_megatron(data):
            return "megatron"
        return None
    if looks_like_nanogpt(p):
        return "nanogpt"
    if p.suffix.lower() in (".csv", ".txt", ".tsv") and looks_like_latency_csv(p):
        return "csv"
    return None


def import_file(path: str | os.PathLike[str], format: str | None = None, **options: Any
                ) -> Trace:
    """Read `path` with the importer of `format`.

    Parameters
    ----------
    path : path-like
        The file.
    format : str, optional
        One of `FORMATS`; detected with `detect_format` when
        omitted.
    **options
        Passed to the importer (the CSV column mapping: `latency_col=`,
        `unit=`, `run_col=`, `time_col=`, `ok_col=`, ...; `root=`
        for Traini).

    Returns
    -------
    Trace

    Raises
    ------
    TraceFormatError
        If the format is unknown or undetectable, or the file is malformed
        (naming the file, the record or line, and the field).
    FileNotFoundError
        If `path` does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no file {p}")
    fmt = format if format is not None else detect_format(p)
    if fmt is None:
        raise TraceFormatError(
            f"cannot tell the format from the content; pass format= (one of {list(FORMATS)})",
            file=str(p),
        )
    importer = _IMPORTERS.get(fmt)
    if importer is None:
        raise TraceFormatError(f"unknown import format {fmt!r} (known: {list(FORMATS)})",
                               file=str(p), field="format")
    return importer(p, **options)
