"""Start-up benchmark: `import llenergymeasure` and the first `make_criterion`, against pandas.

Each case runs in a fresh interpreter (`python -c`), which times its own imports with
`time.perf_counter` (the interpreter's own start is not counted) and reports the
modules it ended up importing. The cases are interleaved round by round, so that a
busy machine slows them alike, and the medians are reported as ratios against
`import pandas` measured in the same rounds:

* `import pandas` (the baseline);
* `import llenergymeasure`;
* `import llenergymeasure; llenergymeasure.make_criterion("rolling_cv")`;
* `from llenergymeasure.criteria import available_criteria, criterion_class` and every
  criterion class (the cost a lazy registry defers, for reference).

Target of issue 8: `import llenergymeasure` within 1.3x `import pandas`, and the first
`make_criterion("rolling_cv")` without importing every criterion module nor `scipy.signal`.

Run `python benchmarks/bench_startup.py` (`--rounds 5` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

CASES: dict[str, str] = {
    "import pandas": "import pandas",
    "import llenergymeasure": "import llenergymeasure",
    "first make_criterion('rolling_cv')": (
        "import llenergymeasure; llenergymeasure.make_criterion('rolling_cv')"
    ),
    "every criterion class": (
        "from llenergymeasure.criteria import available_criteria, criterion_class; "
        "[criterion_class(n) for n in available_criteria()]"
    ),
}

_PROBE = """
import sys, time, json
t0 = time.perf_counter()
exec(compile({code!r}, "<case>", "exec"))
dt = time.perf_counter() - t0
crit = sorted(m for m in sys.modules if m.startswith("llenergymeasure.criteria."))
print(json.dumps({{"seconds": dt, "scipy_signal": "scipy.signal" in sys.modules,
                  "criteria_modules": crit}}))
"""


def run_case(code: str, src: Path = SRC) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(code=code)],
        capture_output=True, text=True, check=True, env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="fresh interpreters per case")
    parser.add_argument(
        "--src", type=Path, default=SRC,
        help="the `src` folder to import llenergymeasure from (another checkout, to compare)",
    )
    args = parser.parse_args()

    # one warm-up round so that every file is in the page cache
    for code in CASES.values():
        run_case(code, args.src)
    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    last: dict[str, dict[str, object]] = {}
    for _ in range(args.rounds):
        for name, code in CASES.items():
            res = run_case(code, args.src)
            seconds[name].append(float(res["seconds"]))  # type: ignore[arg-type]
            last[name] = res

    base = statistics.median(seconds["import pandas"])
    print(f"{'case':40s} {'median s':>9s} {'min s':>7s} {'vs pandas':>9s}  notes")
    for name, values in seconds.items():
        med = statistics.median(values)
        mods = last[name]["criteria_modules"]
        notes = f"{len(mods)} criteria modules"  # type: ignore[arg-type]
        if last[name]["scipy_signal"]:
            notes += ", scipy.signal"
        print(f"{name:40s} {med:9.3f} {min(values):7.3f} {med / base:8.2f}x  {notes}")
    ratio = statistics.median(seconds["import llenergymeasure"]) / base
    print(f"\nimport llenergymeasure / import pandas = {ratio:.2f} (target <= 1.3); "
          f"{args.rounds} rounds, medians, sources {args.src}")


if __name__ == "__main__":
    main()
