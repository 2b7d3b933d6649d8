"""A self-contained HTML report of a comparison: one file, nothing fetched from elsewhere.

`html_report` writes the equal-cost baseline first (each setting against a fixed count
of the same mean cost, when the summary has those columns), then the summary table
(sortable by clicking a header: a few lines of inline JavaScript), then the figures as
base64 PNG images. The file opens from a disk or a mail attachment, offline.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from llenergymeasure.analysis.tables import SUMMARY_LABELS, format_value, select_columns

__all__ = ["BASELINE_COLUMNS", "html_report", "short_spec"]

#: Columns of the equal-cost baseline section, with their headers.
BASELINE_COLUMNS: dict[str, str] = {
    "spec": "Setting",
    "median_seconds_used": "Median warmup (s)",
    "fixed_n_same_cost": "Fixed n, same cost",
    "premature_rate": "Premature",
    "premature_rate_fixed": "Premature (fixed n)",
    "premature_lift": "Lift",
    "premature_lift_ci_low": "Lift CI low",
    "premature_lift_ci_high": "Lift CI high",
    "wee_lift": "|WEE| lift",
    "bias_p90_lift": "P90 |bias| lift",
}

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:72em;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:1em 0;display:block;overflow-x:auto}
th,td{padding:.3em .6em;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f5f5f5;cursor:pointer;user-select:none;position:sticky;top:0}
th:first-child,td:first-child{text-align:left;white-space:normal;min-width:12em;
max-width:22em;word-break:break-word}
th.asc::after{content:' \\25B2'}th.desc::after{content:' \\25BC'}
td.better{background:#e3f2e3}td.worse{background:#fbe4e0}
.note{background:#f7f7fb;border-left:4px solid #0072B2;padding:.6em 1em}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto}
figcaption{font-size:.85em;color:#555}.meta{color:#666;font-size:.85em}
"""

# Click a header to sort by it (numbers as numbers, missing last); click again to reverse.
_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var asc=!th.classList.contains('asc');
  t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc')});
  th.classList.add(asc?'asc':'desc');
  var body=t.tBodies[0],rows=Array.from(body.rows);
  function key(r){var v=r.cells[i].getAttribute('data-v');var n=parseFloat(v);
   return isNaN(n)?v:n}
  rows.sort(function(a,b){var x=key(a),y=key(b);
   if(x===''||x==='nan')return 1;if(y===''||y==='nan')return -1;
   if(typeof x==='number'&&typeof y==='number')return asc?x-y:y-x;
   return asc?String(x).localeCompare(String(y)):String(y).localeCompare(String(x))});
  rows.forEach(function(r){body.appendChild(r)});
 })})});
"""


def short_spec(spec: str) -> str:
    """A criterion spec without the parameters left at their defaults
    (``rolling_cv:window=10,threshold=0.05,ddof=1`` -> ``rolling_cv:threshold=0.05`` when
    window 10 and ddof 1 are the defaults); the spec itself when it cannot be parsed."""
    name, _, params = str(spec).partition(":")
    if not params:
        return str(spec)
    try:
        from llenergymeasure.criteria.registry import criterion_class

        fields = criterion_class(name).Params.model_fields
    except (KeyError, ValueError, AttributeError):
        return str(spec)
    kept = []
    for item in params.split(","):
        key, _, value = item.partition("=")
        field = fields.get(key)
        default = None if field is None or field.is_required() else field.get_default()
        if default is None or (str(default) != value and _num(default) != _num(value)):
            kept.append(item)
    return f"{name}:{','.join(kept)}" if kept else name


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _readable(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with short settings and without the redundant ``criterion`` column."""
    out = summary.copy()
    if "spec" in out.columns:
        out["spec"] = out["spec"].map(short_spec)
        out = out.drop(columns=[c for c in ("criterion",) if c in out.columns])
    return out


def _sort_key(value: Any) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return str(value)


def _table(df: pd.DataFrame, *, classes: dict[tuple[int, str], str] | None = None,
           digits: int = 3) -> str:
    """A sortable HTML table; each cell keeps its raw value in ``data-v`` for sorting."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for i, row in enumerate(df.itertuples(index=False)):
        cells = []
        for col, value in zip(df.columns, row, strict=True):
            cls = (classes or {}).get((i, str(col)))
            attr = f' class="{cls}"' if cls else ""
            cells.append(f'<td{attr} data-v="{html.escape(_sort_key(value))}">'
                         f"{html.escape(format_value(value, digits))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _baseline_section(summary: pd.DataFrame) -> str:
    """The equal-cost fixed-count comparison and what it means, or why it is absent."""
    if "premature_lift" not in summary.columns:
        return (
            "<h2>Against a fixed count of the same cost</h2>"
            '<p class="note">This summary has no equal-cost baseline columns '
            "(<code>fixed_n_same_cost</code>, <code>premature_lift</code>, ...): the scoring "
            "that wrote it predates them. Without them the table below cannot tell whether a "
            "rule does better than simply discarding the same number of samples.</p>"
        )
    table = select_columns(_readable(summary), BASELINE_COLUMNS, missing_ok=True)
    lo = pd.to_numeric(summary.get("premature_lift_ci_low"), errors="coerce")
    hi = pd.to_numeric(summary.get("premature_lift_ci_high"), errors="coerce")
    spec = summary["spec"].map(short_spec) if "spec" in summary.columns else pd.Series(
        [str(i) for i in summary.index])
    better, worse, same = [], [], []
    classes: dict[tuple[int, str], str] = {}
    for i, (s, a, b) in enumerate(zip(spec, lo, hi, strict=True)):
        if pd.isna(a) or pd.isna(b):
            continue
        if b < 0:
            better.append(s)
            classes[(i, "Lift")] = "better"
        elif a > 0:
            worse.append(s)
            classes[(i, "Lift")] = "worse"
        else:
            same.append(s)

    def names(items: Sequence[str]) -> str:
        return ", ".join(f"<code>{html.escape(x)}</code>" for x in items) or "none"

    return (
        "<h2>Against a fixed count of the same cost</h2>"
        '<p class="note">Every adaptive rule is compared with the simplest alternative: '
        "discarding a fixed number of samples, chosen so that it costs the same on average "
        "(<em>Fixed n, same cost</em>), on the same runs. <em>Lift</em> is the rule's rate of "
        "premature stops minus the fixed count's: negative means the rule stops too early "
        "less often than a fixed count that costs as much; a 95% bootstrap CI over runs that "
        "contains 0 means the data cannot tell them apart. A rule that does not beat its "
        "equal-cost fixed count adds complexity for nothing.</p>"
        f"<p><strong>Better than the fixed count:</strong> {names(better)}.<br>"
        f"<strong>Worse than the fixed count:</strong> {names(worse)}.<br>"
        f"<strong>Not distinguishable from it:</strong> {names(same)}.</p>"
        + _table(table, classes=classes)
    )


def _png(fig: Any, dpi: float) -> str:
    from llenergymeasure.analysis.figures import paper_style

    buf = io.BytesIO()
    with paper_style():
        fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(scored: pd.DataFrame, traces: Any, tolerance_s: float, dpi: float) -> str:
    from llenergymeasure.analysis import figures as F

    captions = {
        "cost_error": "Cost (median warmup time) against error (median |time waste|) per "
                      "setting; the line is the Pareto front.",
        "wee_ecdf": f"Distribution of the signed time waste; the band is ±{tolerance_s:g} s.",
        "sensitivity": "Median |time waste| over the largest two-parameter grid.",
        "agreement": "Share of runs on which two settings stop within 10 samples.",
        "bias_forest": "Relative bias of the post-stop mean, 95% bootstrap CI over runs.",
        "traces": "Runs with every setting's stop marked; shaded: the reference warmup.",
    }
    makers: list[tuple[str, Any]] = [
        (name, (lambda f=func: f(scored))) for name, func in F.PAPER_FIGURES.items()
    ]
    makers = [(n, (lambda: F.figure_wee_ecdf(scored, tolerance_s=tolerance_s))
               if n == "wee_ecdf" else m) for n, m in makers]
    if traces is not None:
        makers.append(("traces", lambda: F.figure_traces(scored, traces)))
    parts = []
    for name, make in makers:
        try:
            fig = make()
        except F.FigureDataError as exc:
            parts.append(f"<p class='meta'>{html.escape(name)}: {html.escape(str(exc))}</p>")
            continue
        parts.append(
            f'<figure id="fig-{name}"><img alt="{html.escape(name)}" '
            f'src="data:image/png;base64,{_png(fig, dpi)}">'
            f"<figcaption>{html.escape(captions.get(name, name))}</figcaption></figure>"
        )
    return "<h2>Figures</h2>" + "".join(parts)


def html_report(
    scored: pd.DataFrame,
    summary: pd.DataFrame,
    path: str | Path,
    *,
    traces: Any = None,
    source: str = "",
    tolerance_s: float = 5.0,
    title: str = "Comparison of warmup criteria",
    figures: bool = True,
    dpi: float = 110,
) -> Path:
    """Write one self-contained HTML file: equal-cost baseline, summary, figures.

    Parameters
    ----------
    scored : DataFrame
        Scored rows (`llenergymeasure.analysis.scoring.score`), for the figures.
    summary : DataFrame
        Per-setting summary (`scoring.summarize`); every column it has is shown, and the
        baseline section when it has the equal-cost columns (`premature_lift`, ...).
    path : str or Path
        The HTML file (its folder is created).
    traces : optional
        The replayed traces: adds the trace panels.
    source : str
        What was compared (shown under the title).
    tolerance_s : float, default 5.0
        The exact band used in scoring (shown, and shaded in the ECDF).
    title : str
        Page title.
    figures : bool, default True
        Embed the figures (base64 PNG).
    dpi : float, default 110
        Resolution of the embedded figures.

    Returns
    -------
    Path
        The file written.
    """
    from llenergymeasure import __version__

    out = Path(path)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n_runs = scored[["trace_id", "run_id"]].drop_duplicates().shape[0] if {
        "trace_id", "run_id"} <= set(scored.columns) else len(scored)
    meta = (f"{html.escape(source)} · {n_runs} runs · {len(summary)} settings · tolerance "
            f"±{tolerance_s:g} s · llenergymeasure {html.escape(__version__)} · {now}")
    readable = _readable(summary)
    shown = select_columns(readable, {c: SUMMARY_LABELS.get(c, c) for c in readable.columns})
    body = (
        f"<h1>{html.escape(title)}</h1><p class='meta'>{meta}</p>"
        + _baseline_section(summary)
        + "<h2>Summary</h2><p class='meta'>Click a column header to sort.</p>"
        + _table(shown)
        + (_figures(scored, traces, tolerance_s, dpi) if figures else "")
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}<script>{_JS}</script></body></html>\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
