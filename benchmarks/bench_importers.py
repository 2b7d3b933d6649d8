"""Importer and timing benchmarks.

1. Importers: ``import_file`` (parsing, per-field checks, label files, trace
   assembly and schema validation) against the bare minimum for the same
   numbers, ``json.load`` + ``numpy.asarray`` of the series, on the real files
   in ../shared/data (Traini development corpus, pyperf files, and the vLLM,
   Megatron-LM, modded-nanogpt and LLMPerf files of ``gpu/original``; for the
   training log the baseline is a regular expression over its lines) and on a
   generated JMH file and CSV of the same size as a Traini benchmark.
2. Timing overhead: the rich inference callable (TTFT streamer, token counts,
   NVML off or fake) against the plain one on the tiny CPU model, and
   ``timed_call`` against two bare ``perf_counter_ns`` reads around a no-op.

Each pair runs side by side in this process, best of ``--repeat`` runs;
the table prints the ratios. Run ``python benchmarks/bench_importers.py``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from llenergymeasure.core.timing import timed_call
from llenergymeasure.traces.importers import import_file

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def baseline_json(paths: list[Path]) -> Callable[[], None]:
    def run() -> None:
        for p in paths:
            raw = p.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            data = json.loads(raw)
            if isinstance(data, list) and data and isinstance(data[0], list):
                [np.asarray(f, dtype=np.float64) for f in data]
            elif isinstance(data, list):
                [np.asarray(r["primaryMetric"]["rawData"], dtype=np.float64) for r in data]
            else:
                [np.asarray(r.get("values", []), dtype=np.float64)
                 for b in data["benchmarks"] for r in b["runs"]]
    return run


def baseline_gpu(paths: list[Path], fmt: str) -> Callable[[], None]:
    """The bare minimum that gets the same numbers out of a GPU/LLM tool's file."""
    train_time = re.compile(rb"^step:\d+/\d+ train_loss:\S+ train_time:(\d+)ms", re.MULTILINE)

    def run() -> None:
        for p in paths:
            if fmt == "nanogpt":
                np.asarray(train_time.findall(p.read_bytes()), dtype=np.float64)
                continue
            data = json.loads(p.read_bytes())
            if fmt == "vllm":
                np.asarray(data["ttfts"], dtype=np.float64)
                np.concatenate([np.asarray(x, dtype=np.float64) for x in data["itls"]])
            elif fmt == "megatron":
                np.asarray([float(v) for v in data["iteration-time"]["values"].values()])
            else:
                np.asarray([r["end_to_end_latency_s"] for r in data], dtype=np.float64)
    return run


def imported(paths: list[Path], fmt: str, **options: object) -> Callable[[], None]:
    def run() -> None:
        for p in paths:
            import_file(p, fmt, **options)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, str, float, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        rng = np.random.default_rng(0)
        forks = (1e-3 * (1 + 0.05 * rng.standard_normal((10, 3000))) ** 2).tolist()
        jmh = tmpd / "jmh.json"
        jmh.write_text(json.dumps([{"benchmark": "x.Y.z", "mode": "avgt",
                                    "measurementTime": "100 ms",
                                    "primaryMetric": {"scoreUnit": "ms/op", "rawData": forks}}]))
        csv = tmpd / "lat.csv"
        with csv.open("w") as fh:
            fh.write("run,latency_ms\n")
            for k, fork in enumerate(forks):
                fh.writelines(f"f{k},{v!r}\n" for v in fork)
        cases: list[tuple[str, Callable[[], None], Callable[[], None], str]] = [
            ("jmh 10x3000", imported([jmh], "jmh"), baseline_json([jmh]), "json.load+asarray"),
        ]
        import pandas as pd

        cases.append(("csv 30000 rows", imported([csv], "csv", run_col="run"),
                      lambda: pd.read_csv(csv), "pandas.read_csv"))
        traini = sorted((SHARED / "traini-dev" / "timeseries" / "all").glob("*.json"))
        if traini:
            cases.append((f"traini {len(traini)} files", imported(traini, "traini"),
                          baseline_json(traini), "json.load+asarray"))
        pyperf = sorted((SHARED / "pyperf").glob("*.json*"))
        if pyperf:
            cases.append((f"pyperf {len(pyperf)} files", imported(pyperf, "pyperf"),
                          baseline_json(pyperf), "json.load+asarray"))
        gpu = SHARED / "gpu" / "original"
        for folder, fmt, pattern in (("vllm", "vllm", "*.json"),
                                     ("megatron", "megatron", "*.json"),
                                     ("modded-nanogpt", "nanogpt", "*.txt"),
                                     ("llmperf", "llmperf", "*.json")):
            files = sorted((gpu / folder).glob(pattern))
            if files:
                base_name = "re.findall" if fmt == "nanogpt" else "json.load+asarray"
                cases.append((f"{fmt} {len(files)} files", imported(files, fmt),
                              baseline_gpu(files, fmt), base_name))
        for name, ours, base, base_name in cases:
            t_ours = best_of(ours, args.repeat)
            t_base = best_of(base, args.repeat)
            rows.append((name, base_name, t_ours, t_base))

    n = 20000
    t_timed = best_of(lambda: [timed_call(lambda: None) for _ in range(n)], args.repeat) / n

    def bare() -> None:
        for _ in range(n):
            a = time.perf_counter_ns()
            b = time.perf_counter_ns()
            _ = b - a

    t_bare = best_of(bare, args.repeat) / n
    rows.append(("timed_call(no-op), per call", "2x perf_counter_ns", t_timed, t_bare))

    try:
        from llenergymeasure.core.inference import create_warmup_inference_fn
        from llenergymeasure.core.tiny_model import build_tiny_causal_lm

        model, tok = build_tiny_causal_lm()
        plain = create_warmup_inference_fn(model, tok, "the model is fast", max_new_tokens=16)
        rich = create_warmup_inference_fn(model, tok, "the model is fast", max_new_tokens=16,
                                          measure_ttft=True, count_tokens=True)
        plain()
        rich()
        k = 10
        t_rich = best_of(lambda: [rich() for _ in range(k)], args.repeat) / k
        t_plain = best_of(lambda: [plain() for _ in range(k)], args.repeat) / k
        rows.append(("rich callable (ttft+tokens), tiny CPU model", "plain callable",
                     t_rich, t_plain))
    except ImportError as exc:
        print(f"(inference rows skipped: {exc})")

    print(f"{'case':45s} {'baseline':22s} {'ours':>11s} {'baseline':>11s} {'ratio':>7s}")
    for name, base_name, ours, base in rows:
        print(f"{name:45s} {base_name:22s} {ours * 1e3:9.3f}ms {base * 1e3:9.3f}ms "
              f"{ours / base:7.2f}")


if __name__ == "__main__":
    main()
