"""The self-contained HTML report and the column/label/caption choices of the tables."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from llenergymeasure.analysis import tables
from llenergymeasure.analysis.report import html_report, short_spec


def _summary(with_baseline: bool) -> pd.DataFrame:
    df = pd.DataFrame({
        "criterion": ["rolling_cv", "mser5", "kpss"],
        "spec": ["rolling_cv:window=10,threshold=0.05,ddof=1",
                 "mser5:batch_size=5,max_fraction=0.5,min_batches=10",
                 "kpss:window=100,alpha=0.05,nlags=auto"],
        "n_runs": [10, 10, 10],
        "median_seconds_used": [1.5, 2.25, 9.0],
        "premature_rate": [0.4, 0.1, 0.3],
    })
    if with_baseline:
        df["fixed_n_same_cost"] = [15, 22, 90]
        df["premature_rate_fixed"] = [0.2, 0.3, 0.3]
        df["premature_lift"] = df["premature_rate"] - df["premature_rate_fixed"]
        df["premature_lift_ci_low"] = [0.05, -0.35, -0.1]
        df["premature_lift_ci_high"] = [0.35, -0.05, 0.1]
    return df


def _scored() -> pd.DataFrame:
    rows = []
    for spec, stop in (("rolling_cv:window=10,threshold=0.05,ddof=1", 30),
                       ("mser5:batch_size=5,max_fraction=0.5,min_batches=10", 55)):
        for r in range(4):
            rows.append({"trace_id": "t", "run_id": f"r{r}", "criterion": spec.split(":")[0],
                         "spec": spec, "stop_index": stop + r, "stop_time_s": (stop + r) * 0.1,
                         "reference_start": 50, "reference_start_s": 5.0,
                         "post_stop_mean": 10.2, "reference_mean": 10.0,
                         "seconds_used": (stop + r) * 0.1, "samples_used": stop + r + 1})
    df = pd.DataFrame(rows)
    df["stop_index"] = df["stop_index"].astype("Int64")
    return df


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for key, value in attrs:
            if key in ("src", "href") and value:
                self.urls.append(value)


def test_report_is_self_contained_and_opens_with_the_baseline(tmp_path) -> None:
    path = html_report(_scored(), _summary(True), tmp_path / "r" / "report.html",
                       source="results.parquet")
    text = path.read_text(encoding="utf-8")
    parser = _Assets()
    parser.feed(text)
    assert parser.urls and all(u.startswith("data:image/png;base64,") for u in parser.urls)
    assert "link" not in parser.tags  # no stylesheet loaded from anywhere
    assert not re.search(r"https?://", text)
    baseline = text.index("Against a fixed count of the same cost")
    assert baseline < text.index("<h2>Summary") < text.index("<h2>Figures")
    # mser5's CI is below 0 (better), rolling_cv's above (worse), kpss's holds 0
    better = text[text.index("Better than"):text.index("Worse than")]
    worse = text[text.index("Worse than"):text.index("Not distinguishable")]
    same = text[text.index("Not distinguishable"):text.index("</p>", baseline + 1500)]
    assert "mser5" in better and "rolling_cv" in worse and "kpss" in same
    assert text.count('class="sortable"') == 2 and "addEventListener('click'" in text


def test_report_without_baseline_columns_says_so(tmp_path) -> None:
    text = html_report(_scored(), _summary(False), tmp_path / "r.html",
                       figures=False).read_text()
    assert "no equal-cost baseline columns" in text
    assert "<img" not in text
    # every summary column is shown
    for header in ("Runs", "Median warmup (s)", "Premature"):
        assert f"<th>{header}</th>" in text


def test_short_spec_drops_default_parameters() -> None:
    assert short_spec("rolling_cv:window=10,threshold=0.05,ddof=1") == "rolling_cv:window=10"
    assert short_spec("mser5:batch_size=5,max_fraction=0.5,min_batches=10") == "mser5"
    assert short_spec("not_a_criterion:x=1") == "not_a_criterion:x=1"


def test_latex_takes_columns_labels_and_caption() -> None:
    df = _summary(True)
    tex = tables.to_latex(df, columns={"spec": "Rule", "premature_rate": "Premature"},
                          caption="Rules on 10% of runs", label="tab:x")
    assert r"\caption{Rules on 10\% of runs}" in tex and r"\label{tab:x}" in tex
    head = next(line for line in tex.splitlines() if line.startswith("Rule"))
    assert head == r"Rule & Premature \\"
    assert r"\begin{tabular}{lr}" in tex
    body = tex.split(r"\midrule")[1]
    assert "0.4" in body and "n_runs" not in tex
    tex2 = tables.to_latex(df, columns=["premature_rate", "spec"],
                           labels={"premature_rate": "P_early"})
    assert r"P\_early & spec \\" in tex2


def test_unknown_column_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        tables.to_latex(_summary(False), columns=["spec", "nope"])
    kept = tables.select_columns(_summary(False), tables.SUMMARY_LABELS, missing_ok=True)
    assert list(kept.columns) == ["Setting", "Runs", "Median warmup (s)", "Premature"]


def test_export_table_keeps_every_column_in_csv(tmp_path) -> None:
    df = _summary(False)
    paths = tables.export_table(df, tmp_path / "s", columns=["spec"], caption="C")
    csv = pd.read_csv(paths[0])
    assert list(csv.columns) == list(df.columns)
    np.testing.assert_allclose(csv["median_seconds_used"], df["median_seconds_used"])
    assert "premature" not in paths[2].read_text()
