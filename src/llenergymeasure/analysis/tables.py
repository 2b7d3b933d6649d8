"""Export result tables to CSV, Markdown and LaTeX (booktabs), with formatted numbers.

The writers are self-contained (no ``tabulate`` or ``jinja2``): numbers are printed with
``digits`` significant digits, integers as integers, booleans as yes/no and missing
values as an en dash. LaTeX output escapes the special characters of cell text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "SUMMARY_LABELS",
    "export_table",
    "format_value",
    "select_columns",
    "to_csv",
    "to_latex",
    "to_markdown",
]

#: Readable labels of the summary columns (`scoring.summarize`), in the order a compact
#: table shows them; `select_columns(df, SUMMARY_LABELS)` keeps those present.
SUMMARY_LABELS: dict[str, str] = {
    "spec": "Setting",
    "n_runs": "Runs",
    "median_seconds_used": "Median warmup (s)",
    "median_samples_used": "Median samples",
    "premature_rate": "Premature",
    "exact_rate": "Exact",
    "never_stopped_rate": "Never stopped",
    "median_abs_wee_s": "Median |waste| (s)",
    "median_abs_relative_bias": "Median |bias|",
    "fixed_n_same_cost": "Fixed n, same cost",
    "premature_rate_fixed": "Premature (fixed n)",
    "premature_lift": "Premature lift",
    "premature_lift_ci_low": "Lift CI low",
    "premature_lift_ci_high": "Lift CI high",
}

MISSING = "–"
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def format_value(value: Any, digits: int = 3) -> str:
    """Format one cell: ``digits`` significant digits for floats, ints as is."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return MISSING
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f == 0:
            return "0"
        if f.is_integer() and abs(f) < 10**digits:
            return str(int(f))
        return f"{f:.{digits}g}"
    return str(value)


def select_columns(
    df: pd.DataFrame,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    *,
    missing_ok: bool = False,
) -> pd.DataFrame:
    """The columns asked for, in that order, renamed to their labels.

    Parameters
    ----------
    df : DataFrame
        The table.
    columns : sequence of str or mapping column -> label, optional
        Columns to keep (all when None); a mapping also gives their labels.
    labels : mapping column -> label, optional
        Labels (headers) for columns; columns without one keep their name.
    missing_ok : bool, default False
        Skip asked-for columns the table lacks (for default selections) instead of raising.

    Raises
    ------
    ValueError
        When a column asked for is not in the table (naming it and those available).
    """
    names = list(df.columns) if columns is None else list(columns)
    lab = {**(dict(columns) if isinstance(columns, Mapping) else {}), **(labels or {})}
    absent = [c for c in names if c not in df.columns]
    if absent and not missing_ok:
        raise ValueError(f"no column {', '.join(map(repr, absent))} in the table; it has "
                         f"{', '.join(map(str, df.columns))}")
    names = [c for c in names if c in df.columns]
    return df[names].rename(columns={c: lab[c] for c in names if c in lab})


def _cells(df: pd.DataFrame, digits: int) -> list[list[str]]:
    return [[format_value(v, digits) for v in row] for row in df.itertuples(index=False)]


def to_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write full-precision CSV (no index); returns the path."""
    p = Path(path)
    df.to_csv(p, index=False)
    return p


def to_markdown(df: pd.DataFrame, *, digits: int = 3,
                columns: Sequence[str] | Mapping[str, str] | None = None,
                labels: Mapping[str, str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; numeric columns right-aligned.

    ``columns`` and ``labels`` choose, order and name the columns (see `select_columns`).
    """
    df = select_columns(df, columns, labels)
    header = [str(c) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in df.columns]
    body = _cells(df, digits)
    esc = [[c.replace("|", r"\|") for c in row] for row in [header, *body]]
    align = ["---:" if num else ":---" for num in numeric]
    lines = ["| " + " | ".join(esc[0]) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines) + "\n"


def _latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def to_latex(
    df: pd.DataFrame,
    *,
    digits: int = 3,
    caption: str | None = None,
    label: str | None = None,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    r"""A booktabs ``tabular`` (in a ``table`` float when a caption or label is given).

    Parameters
    ----------
    df : DataFrame
        The table.
    digits : int, default 3
        Significant digits of floats.
    caption, label : str, optional
        ``\caption`` and ``\label`` of the float.
    columns : sequence of str or mapping column -> label, optional
        Columns to show, in order (all when None); a mapping also gives their headers.
    labels : mapping column -> label, optional
        Headers for columns (LaTeX special characters are escaped).
    """
    df = select_columns(df, columns, labels)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in df.columns]
    spec = "".join("r" if num else "l" for num in numeric)
    head = " & ".join(_latex_escape(str(c)) for c in df.columns) + r" \\"
    rows = [" & ".join(_latex_escape(c) for c in r) + r" \\" for r in _cells(df, digits)]
    tab = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", head, r"\midrule", *rows,
           r"\bottomrule", r"\end{tabular}"]
    if caption is None and label is None:
        return "\n".join(tab) + "\n"
    out = [r"\begin{table}", r"\centering"]
    if caption is not None:
        out.append(rf"\caption{{{_latex_escape(caption)}}}")
    if label is not None:
        out.append(rf"\label{{{label}}}")
    return "\n".join([*out, *tab, r"\end{table}"]) + "\n"


def export_table(
    df: pd.DataFrame,
    stem: str | Path,
    *,
    formats: Sequence[str] = ("csv", "md", "tex"),
    digits: int = 3,
    caption: str | None = None,
    label: str | None = None,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write ``stem.csv`` / ``stem.md`` / ``stem.tex``; returns the paths written.

    The CSV keeps every column at full precision; ``columns`` / ``labels`` choose and
    name the columns of the Markdown and LaTeX tables (see `select_columns`).
    """
    stem = Path(stem)
    written = []
    for fmt in formats:
        p = stem.with_suffix(f".{fmt}")
        if fmt == "csv":
            to_csv(df, p)
        elif fmt == "md":
            p.write_text(to_markdown(df, digits=digits, columns=columns, labels=labels))
        elif fmt == "tex":
            p.write_text(to_latex(df, digits=digits, caption=caption, label=label,
                                  columns=columns, labels=labels))
        else:
            raise ValueError(f"unknown table format {fmt!r} (use csv, md or tex)")
        written.append(p)
    return written
