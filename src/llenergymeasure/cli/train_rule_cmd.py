"""``llem-warmup train-rule``: train the model of the `learned` criterion on labelled traces."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["cmd_train_rule", "register"]

logger = logging.getLogger(__name__)


def cmd_train_rule(args: argparse.Namespace) -> int:
    """Read the traces (and reference), train, optionally cross-validate, write the model."""
    from llenergymeasure.analysis.learn import (
        LearnError,
        cross_validate,
        equal_cost_comparison,
        read_labelled_runs,
        train_learned_rule,
    )
    from llenergymeasure.traces.model import TraceFormatError

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2
    kwargs = {"window": args.window, "persistence": args.persistence, "l2": args.l2}
    try:
        runs = read_labelled_runs(args.traces, reference=args.reference, signal=args.signal)
        steady = [r for r in runs if r.reference_start is not None and r.reference_start >= 0]
        print(f"{len(runs)} runs read, {len(steady)} with a steady-state reference")
        meta = {"command": " ".join(["llem-warmup", "train-rule", *sys.argv[2:]])}
        if args.cv:
            oof = cross_validate(runs, n_folds=args.cv, **kwargs)
            index = {(r.trace_id, r.run_id): i for i, r in enumerate(steady)}
            stops = [-1] * len(steady)
            for row in oof.itertuples(index=False):
                stops[index[(row.trace_id, row.run_id)]] = int(row.stop_index)
            cmp = equal_cost_comparison(stops, steady)
            meta["cross_validation"] = {"folds": args.cv, "grouped_by": "trace", **cmp}
            print(
                f"out-of-fold ({args.cv} folds by trace): premature "
                f"{cmp['premature_rate']:.1%} vs fixed_count:n={cmp['fixed_n_same_cost']:.0f} "
                f"{cmp['premature_rate_fixed']:.1%}, lift {100 * cmp['premature_lift']:+.1f} "
                f"points (95% CI {100 * cmp['premature_lift_ci_low']:+.1f} to "
                f"{100 * cmp['premature_lift_ci_high']:+.1f}); mean |WEE| lift "
                f"{cmp['wee_s_lift']:+.1f} s; P90 |bias| lift {cmp['bias_p90_lift']:+.4f}"
            )
        model = train_learned_rule(runs, version=args.version, metadata=meta, **kwargs)
        model.save(out)
    except (LearnError, TraceFormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {out} (window {model.window}, persistence {model.persistence}, threshold "
          f"{model.threshold:g}); use it with --criterion learned:model={out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``train-rule`` subcommand."""
    p = subparsers.add_parser(
        "train-rule",
        help="Train the model of the 'learned' criterion on labelled traces.",
        description="Fit the logistic model of 'steady from here' behind the 'learned' "
        "criterion on traces with reference steady-state starts (their own, e.g. from the "
        "Traini importer, or those of --reference), choose its threshold against the "
        "fixed count of the same cost, and write the model file.",
    )
    p.add_argument("traces", nargs="+", help="Trace files or folders (a Traini corpus folder "
                   "is read with its labels).")
    p.add_argument("--reference", help="CSV with trace_id,run_id,reference_start (replaces "
                   "the runs' own starts).")
    p.add_argument("-o", "--output", required=True, help="Model file to write (JSON).")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing output file.")
    p.add_argument("--window", type=int, default=40, help="Trailing window (even, >= 8).")
    p.add_argument("--persistence", type=int, default=50,
                   help="Samples the probability must stay above the threshold.")
    p.add_argument("--l2", type=float, default=1e-3, help="Ridge penalty.")
    p.add_argument("--version", default="0+local", help="Version written in the model.")
    p.add_argument("--signal", default="latency_ms", help="Signal to train on.")
    p.add_argument("--cv", type=int, default=0, metavar="K",
                   help="Also report the out-of-fold comparison of K folds grouped by trace.")
    p.set_defaults(func=cmd_train_rule)
