"""Export result tables to CSV, Markdown and LaTeX (booktabs), with formatted numbers.

The writers are self-contained (no ``tabulate`` or ``jinja2``): numbers are printed with
``digits`` significant digits, integers as integers, booleans as yes/no and missing
values as an en dash. LaTeX output escapes the special characters of cell text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["export_table", "format_value", "to_csv", "to_latex", "to_markdown"]

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


def _cells(df: pd.DataFrame, digits: int) -> list[list[str]]:
    return [[format_value(v, digits) for v in row] for row in df.itertuples(index=False)]


def to_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write full-precision CSV (no index); returns the path."""
    p = Path(path)
    df.to_csv(p, index=False)
    return p


def to_markdown(df: pd.DataFrame, *, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table; numeric columns right-aligned."""
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
) -> str:
    r"""A booktabs ``tabular`` (in a ``table`` float when a caption or label is given)."""
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
) -> list[Path]:
    """Write ``stem.csv`` / ``stem.md`` / ``stem.tex``; returns the paths written."""
    stem = Path(stem)
    written = []
    for fmt in formats:
        p = stem.with_suffix(f".{fmt}")
        if fmt == "csv":
            to_csv(df, p)
        elif fmt == "md":
            p.write_text(to_markdown(df, digits=digits))
        elif fmt == "tex":
            p.write_text(to_latex(df, digits=digits, caption=caption, label=label))
        else:
            raise ValueError(f"unknown table format {fmt!r} (use csv, md or tex)")
        written.append(p)
    return written
