"""Regenerate the figure gallery of the docs (docs/analysis/img/*.png).

Builds a small seeded synthetic corpus (decay, step, throttle and spikes warmups with
known steady starts), replays it through a handful of criteria and a rolling-CV grid,
scores the stops and draws every paper figure, at a resolution that keeps each PNG
under 150 KB. Run from the repository root::

    .venv/bin/python examples/make_gallery.py [--out docs/analysis/img]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from llenergymeasure.analysis import figures, replay, scoring, synthetic

CRITERIA = ["rolling_cv", "mser5", "geweke", "kpss", "pyperf_halves", "fixed_count:n=100"]
GRID = {"rolling_cv": {"threshold": [0.01, 0.02, 0.05, 0.1], "window": [10, 20, 40, 80]}}
MAX_BYTES = 150_000


def main() -> int:
    """Write the gallery PNGs and print their names and sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/analysis/img", help="Output folder.")
    parser.add_argument("--dpi", type=float, default=110, help="PNG resolution (110).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)

    corpus = synthetic.make_corpus(["decay", "step", "throttle", "spikes"], 4, 800, seed=2024)
    results = replay.replay(corpus, CRITERIA, grid=GRID, show_progress=False)
    scored = scoring.score(results, corpus, n_resamples=500)

    drawn = {name: func(scored) for name, func in figures.PAPER_FIGURES.items()}
    picks = [(replay.trace_id_of(t), t.run_ids[0]) for t in corpus[::4]]
    base = scored[~((scored["criterion"] == "rolling_cv")
                    & (scored["spec"] != "rolling_cv:window=10,threshold=0.05,ddof=1"))]
    drawn["traces"] = figures.figure_traces(base, corpus, runs=picks, log=True)
    # These traces are short (about 16 s), so a 0.5 s band replaces Traini et al.'s 5 s.
    drawn["wee_ecdf"] = figures.plot_wee_ecdf(figures.wee_ecdf_data(base), tolerance_s=0.5,
                                              columns=2).figure
    drawn["agreement"] = figures.plot_agreement(figures.agreement_matrix(base)).figure
    drawn["bias_forest"] = figures.plot_forest(figures.bias_forest_data(scored)).figure
    drawn["rolling_cv_heatmap_bias"] = figures.plot_sensitivity(
        figures.sensitivity_data(scored, "rolling_cv", value="abs_relative_bias")
    ).figure
    for name, fig in drawn.items():
        (path,) = figures.save_figure(fig, out / name, ("png",), dpi=args.dpi,
                                      description="examples/make_gallery.py")
        size = path.stat().st_size
        flag = "" if size < MAX_BYTES else "  (over 150 KB: lower --dpi)"
        print(f"{path}  {size / 1000:.0f} KB{flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
