"""Tests of the publication figures: data steps (known answers, properties, cross-checks
against scoring and scipy) and renderers (files written and loadable, style scoped)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from scipy import stats

from llenergymeasure.analysis import figures as F
from llenergymeasure.analysis import replay, scoring, synthetic


# ----------------------------------------------------------------------------- helpers
def _row(trace: str, run: str, spec: str, stop: int | None, *, ref: int | None = 5,
         crit: str | None = None, t_per: float = 0.1, post: float = 11.0,
         refmean: float = 10.0, **params: float) -> dict:
    """A replay-like row; sample i ends at (i + 1) * t_per seconds."""
    return {
        "trace_id": trace, "run_id": run, "criterion": crit or spec.split(":")[0],
        "spec": spec, **{f"param_{k}": v for k, v in params.items()},
        "stop_index": stop, "stop_time_s": math.nan if stop is None else (stop + 1) * t_per,
        "stopped": stop is not None,
        "seconds_used": 100 * t_per if stop is None else (stop + 1) * t_per,
        "samples_used": 100 if stop is None else stop + 1,
        "post_stop_mean": math.nan if stop is None else post,
        "reference_start": ref,
        "reference_start_s": math.nan if ref is None or ref < 0 else ref * t_per,
        "reference_mean": math.nan if ref is None or ref < 0 else refmean,
    }


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in ("stop_index", "reference_start"):
        df[c] = df[c].astype("Int64")
    return df


@pytest.fixture(scope="module")
def corpus() -> list:
    return synthetic.make_corpus(["decay", "step"], 2, 300, 7)


@pytest.fixture(scope="module")
def replayed(corpus: list) -> pd.DataFrame:
    return replay.replay(
        corpus, ["rolling_cv", "mser5", "fixed_count:n=40"],
        grid={"rolling_cv": {"threshold": [0.02, 0.05], "window": [10, 20]}},
        show_progress=False,
    )


@pytest.fixture(scope="module")
def scored(replayed: pd.DataFrame, corpus: list) -> pd.DataFrame:
    return scoring.score(replayed, corpus, n_resamples=200)


# ------------------------------------------------------------------------------ scores
def test_with_scores_known_answers() -> None:
    df = _frame([
        _row("a", "0", "x", 9, ref=5),  # stop after sample 9, steady from 5
        _row("a", "1", "x", None, ref=5),  # never stopped
        _row("a", "2", "x", 3, ref=-1),  # no steady state
        _row("a", "3", "x", 2, ref=5),  # premature
    ])
    out = F.with_scores(df)
    assert out["wee"].tolist()[0] == 5 and out["wee"].tolist()[3] == -2
    assert out["wee"].isna().tolist() == [False, True, True, False]
    np.testing.assert_allclose(out["wee_s"].to_numpy()[[0, 3]], [0.5, -0.2])
    assert np.isnan(out["wee_s"].to_numpy()[[1, 2]]).all()
    np.testing.assert_allclose(out["abs_wee_s"].to_numpy()[[0, 3]], [0.5, 0.2])
    np.testing.assert_allclose(out["relative_bias"].to_numpy()[0], 0.1)
    assert np.isnan(out["relative_bias"].to_numpy()[2])


def test_with_scores_matches_scoring(replayed: pd.DataFrame, scored: pd.DataFrame) -> None:
    """Scores derived from replay columns equal analysis.scoring.score's."""
    derived = F.with_scores(replayed)
    for col in ("wee_s", "abs_wee_s", "relative_bias"):
        np.testing.assert_allclose(derived[col].to_numpy(dtype=float),
                                   scored[col].to_numpy(dtype=float), rtol=1e-9, atol=1e-12,
                                   equal_nan=True)
    assert derived["wee"].astype("Float64").equals(scored["wee"].astype("Float64"))


def test_with_scores_needs_columns() -> None:
    with pytest.raises(F.FigureDataError, match="reference_start"):
        F.with_scores(pd.DataFrame({"stop_index": [1]}))


def test_setting_labels() -> None:
    df = _frame([
        _row("a", "0", "cv:w=10,t=0.1", 3, crit="cv", window=10, threshold=0.1),
        _row("a", "0", "cv:w=20,t=0.1", 3, crit="cv", window=20, threshold=0.1),
        _row("a", "0", "mser5", 3),
    ])
    assert F.setting_labels(df).tolist() == ["cv(window=10)", "cv(window=20)", "mser5"]


# ----------------------------------------------------------------------------- style
def test_paper_style_is_scoped() -> None:
    before = dict(matplotlib.rcParams)
    with F.paper_style(**{"lines.linewidth": 3.0}):
        assert matplotlib.rcParams["font.size"] == 8
        assert matplotlib.rcParams["lines.linewidth"] == 3.0
        assert matplotlib.rcParams["pdf.fonttype"] == 42
    assert dict(matplotlib.rcParams) == before


def test_style_file_is_valid_and_palette_is_okabe_ito() -> None:
    rc = matplotlib.rc_params_from_file(str(F.style_path()), use_default_template=False)
    colours = [c.upper() for c in rc["axes.prop_cycle"].by_key()["color"]]
    assert sorted(colours) == sorted(v.upper() for v in F.OKABE_ITO.values())


def test_figure_size() -> None:
    assert F.figure_size(1) == (3.5, pytest.approx(3.5 * 0.68))
    assert F.figure_size(2, height=3.0) == (7.16, 3.0)
    assert F.figure_size(5.0, 0.5) == (5.0, 2.5)
    with pytest.raises(ValueError, match="columns"):
        F.figure_size(0)


def test_series_styles_distinct() -> None:
    styles = F.series_styles([f"s{i}" for i in range(32)])
    combos = {(s["color"], s["marker"], s["linestyle"]) for s in styles.values()}
    assert len(combos) == 32
    assert [styles[f"s{i}"]["color"] for i in range(8)] == list(F.OKABE_ITO.values())


# ----------------------------------------------------------------------- cost vs error
def test_cost_error_known_answer() -> None:
    rows = []
    # setting A: cheap, bad; B: dear, good; C: dominated by B; D: equal to B -> kept.
    for run, (a, b, c) in enumerate([(10, 30, 40), (12, 32, 44), (14, 34, 48)]):
        rows += [_row("t", str(run), "A", a - 1, ref=30), _row("t", str(run), "B", b - 1, ref=30),
                 _row("t", str(run), "C", c - 1, ref=30)]
    df = _frame(rows)
    out = F.cost_error_data(df).set_index("label")
    # cost = median seconds = median(stop+1)*0.1; error = median |stop + 1 - 30| * 0.1
    np.testing.assert_allclose(out.loc[["A", "B", "C"], "cost"], [1.2, 3.2, 4.4])
    np.testing.assert_allclose(out.loc[["A", "B", "C"], "error"], [1.8, 0.2, 1.4])
    assert out["on_front"].to_dict() == {"A": True, "B": True, "C": False}
    assert (out["n_runs"] == 3).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12))
def test_cost_error_front_is_non_dominated(points: list[tuple[int, int]]) -> None:
    rows = [_row("t", "0", f"s{i}", c + 10 - 1, ref=None) for i, (c, _) in enumerate(points)]
    df = _frame(rows)
    df["err"] = [float(e) for _, e in points]
    out = F.cost_error_data(df, error="err")
    c, e = out["cost"].to_numpy(), out["error"].to_numpy()
    for i in range(len(out)):
        dominated = np.any((c <= c[i]) & (e <= e[i]) & ((c < c[i]) | (e < e[i])))
        assert bool(out["on_front"].iloc[i]) == (not dominated)


# ------------------------------------------------------------------------------- ECDF
def test_wee_ecdf_known_answer() -> None:
    df = _frame([
        _row("t", "0", "A", 2, ref=5),  # wee_s = 0.3 - 0.5 = -0.2
        _row("t", "1", "A", 9, ref=5),  # 0.5
        _row("t", "2", "A", 7, ref=5),  # 0.3
        _row("t", "3", "A", None, ref=5),  # never stopped: counts in n
        _row("t", "4", "A", 9, ref=-1),  # no reference: left out
    ])
    out = F.wee_ecdf_data(df)
    np.testing.assert_allclose(out["value"], [-0.2, 0.3, 0.5])
    np.testing.assert_allclose(out["ecdf"], [0.25, 0.5, 0.75])
    assert (out["n"] == 4).all() and (out["n_never_stopped"] == 1).all()
    samples = F.wee_ecdf_data(df, value="wee")
    assert samples["value"].tolist() == [-2, 3, 5]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 50)), min_size=1, max_size=20))
def test_wee_ecdf_properties(stops: list[int | None]) -> None:
    df = _frame([_row("t", str(i), "A", s, ref=10) for i, s in enumerate(stops)])
    out = F.wee_ecdf_data(df, value="wee")
    n_stopped = sum(s is not None for s in stops)
    assert len(out) == n_stopped
    if n_stopped:
        assert np.all(np.diff(out["value"]) >= 0) and np.all(np.diff(out["ecdf"]) > 0)
        assert out["ecdf"].iloc[-1] == pytest.approx(n_stopped / len(stops))
        # F(w) is the share of runs with WEE <= w
        w = float(np.median(out["value"]))
        wee = np.array([s + 1 - 10 for s in stops if s is not None])
        last = out.loc[out["value"] <= w, "ecdf"].iloc[-1]
        assert last == pytest.approx((wee <= w).sum() / len(stops))


# ------------------------------------------------------------------------ sensitivity
def _grid_frame() -> pd.DataFrame:
    rows = []
    for th in (0.01, 0.05):
        for w in (10, 20, 40):
            spec = f"cv:window={w},threshold={th}"
            for run, extra in enumerate((0, 2, 10)):
                stop = int(w + 100 * th + extra)
                rows.append(_row("t", str(run), spec, stop, ref=0, crit="cv", window=w,
                                 threshold=th, ddof=1))
    rows.append(_row("t", "0", "mser5", 3))
    return _frame(rows)


def test_sensitivity_known_answer() -> None:
    df = _grid_frame()
    table = F.sensitivity_data(df, value="samples_used")
    assert table.attrs["criterion"] == "cv"
    assert table.index.name == "window" and table.columns.name == "threshold"
    # median over runs of stop + 1 = w + 100*th + 2 + 1
    expected = np.array([[w + 100 * th + 3 for th in (0.01, 0.05)] for w in (10, 20, 40)])
    np.testing.assert_allclose(table.to_numpy(), expected)
    assert (table.attrs["counts"].to_numpy() == 3).all()
    means = F.sensitivity_data(df, "cv", x="window", y="threshold", value="samples_used",
                               agg="mean")
    np.testing.assert_allclose(means.to_numpy(), expected.T + 2)  # mean extra is 4, not 2


def test_sensitivity_errors_and_fixed() -> None:
    df = _grid_frame()
    with pytest.raises(F.FigureDataError, match="also vary"):
        F.sensitivity_data(df, "cv", x="window", value="samples_used")
    one = F.sensitivity_data(df, "cv", x="window", value="samples_used",
                             fixed={"threshold": 0.05})
    assert one.shape == (1, 3)
    with pytest.raises(F.FigureDataError, match="single setting"):
        F.sensitivity_data(df, "mser5")
    with pytest.raises(F.FigureDataError, match="no rows"):
        F.sensitivity_data(df, "nope")
    with pytest.raises(F.FigureDataError, match="grid"):
        F.sensitivity_data(df[df["criterion"] == "mser5"])


# -------------------------------------------------------------------------- agreement
def test_agreement_tolerance_known_answer() -> None:
    df = _frame([
        _row("t", "0", "A", 10), _row("t", "0", "B", 15),  # within 10: agree
        _row("t", "1", "A", 20), _row("t", "1", "B", 50),  # 30 apart: disagree
        _row("t", "2", "A", None), _row("t", "2", "B", None),  # neither stopped: agree
        _row("t", "3", "A", 5), _row("t", "3", "B", None),  # one stopped: disagree
    ])
    m = F.agreement_matrix(df, tolerance=10)
    assert m.loc["A", "B"] == pytest.approx(0.5) and m.loc["B", "A"] == m.loc["A", "B"]
    assert m.loc["A", "A"] == 1.0
    assert m.attrs["n_runs"].loc["A", "B"] == 4
    assert F.agreement_matrix(df, tolerance=30).loc["A", "B"] == pytest.approx(0.75)
    sec = F.agreement_matrix(df, tolerance=0.5, unit="seconds")  # 0.1 s per sample
    assert sec.loc["A", "B"] == pytest.approx(0.5)


def test_agreement_spearman_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 100, 12)
    b = a + rng.integers(-30, 30, 12)
    b = np.clip(b, 0, None)
    rows = [_row("t", str(i), "A", int(x)) for i, x in enumerate(a)]
    rows += [_row("t", str(i), "B", int(y)) for i, y in enumerate(b)]
    rows += [_row("t", str(i), "C", int(200 - x)) for i, x in enumerate(a)]
    rows.append(_row("t", "99", "A", 7))  # a run only A was replayed on: not compared
    m = F.agreement_matrix(_frame(rows), method="spearman")
    assert m.loc["A", "B"] == pytest.approx(stats.spearmanr(a, b).statistic)
    assert m.loc["A", "C"] == pytest.approx(-1.0)
    assert m.attrs["n_runs"].loc["A", "B"] == 12


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 40)),
                          st.one_of(st.none(), st.integers(0, 40)),
                          st.one_of(st.none(), st.integers(0, 40))), min_size=1, max_size=10),
       st.integers(0, 20))
def test_agreement_properties(stops: list[tuple], tol: int) -> None:
    rows = [_row("t", str(i), lab, s) for i, trip in enumerate(stops)
            for lab, s in zip("ABC", trip, strict=True)]
    m = F.agreement_matrix(_frame(rows), tolerance=tol).to_numpy()
    np.testing.assert_array_equal(m, m.T)
    assert np.all((m >= 0) & (m <= 1)) and np.all(np.diag(m) == 1.0)
    wider = F.agreement_matrix(_frame(rows), tolerance=tol + 5).to_numpy()
    assert np.all(wider >= m)


# ----------------------------------------------------------------------------- forest
def test_bias_forest_known_answer_and_scipy_cross_check() -> None:
    posts = [10.5, 11.0, 12.0, 10.0, 10.2]
    rows = [_row("t", str(i), "A", 9, post=p) for i, p in enumerate(posts)]
    rows += [_row("t", str(i), "B", 9, post=10.0) for i in range(3)]  # no bias at all
    rows.append(_row("t", "9", "B", None))  # never stopped: left out of n
    out = F.bias_forest_data(_frame(rows), n_resamples=500, seed=4).set_index("label")
    b = np.array(posts) / 10.0 - 1.0
    assert out.loc["A", "estimate"] == pytest.approx(b.mean())
    ref = stats.bootstrap((b,), np.mean, vectorized=True, n_resamples=500,
                          confidence_level=0.95, method="percentile",
                          rng=np.random.default_rng(4))
    assert out.loc["A", "ci_low"] == pytest.approx(ref.confidence_interval.low)
    assert out.loc["A", "ci_high"] == pytest.approx(ref.confidence_interval.high)
    assert out.loc["A", "ci_low"] <= out.loc["A", "estimate"] <= out.loc["A", "ci_high"]
    assert tuple(out.loc["B", ["estimate", "ci_low", "ci_high", "n"]]) == (0.0, 0.0, 0.0, 3)
    med = F.bias_forest_data(_frame(rows), statistic="median").set_index("label")
    assert med.loc["A", "estimate"] == pytest.approx(np.median(b))


def test_bias_forest_run_level(scored: pd.DataFrame, replayed: pd.DataFrame) -> None:
    out = F.bias_forest_data(scored, level="run")
    ok = np.isfinite(scored["relative_bias"].to_numpy(dtype=float))
    assert len(out) == ok.sum()
    np.testing.assert_allclose(out["ci_low"], scored["bias_ci_low"].to_numpy(float)[ok] - 1)
    with pytest.raises(F.FigureDataError, match="scored frame"):
        F.bias_forest_data(replayed, level="run")
    with pytest.raises(ValueError, match="confidence"):
        F.bias_forest_data(scored, confidence=1.5)


# ---------------------------------------------------------------------- trace stops
def test_trace_stops_data(corpus: list, replayed: pd.DataFrame) -> None:
    trace = corpus[0]
    tid = replay.trace_id_of(trace)
    rid = trace.run_ids[0]
    data = F.trace_stops_data(replayed, corpus, tid, rid)
    np.testing.assert_array_equal(data.x, trace.samples(rid))
    assert data.reference_start == trace.run_info(rid).reference_start
    rows = replayed[(replayed["trace_id"] == tid) & replayed["stopped"]]
    assert sorted(data.stops["stop_index"]) == sorted(rows["stop_index"].astype(int))
    k = data.stops["stop_index"].to_numpy()
    np.testing.assert_array_equal(data.stops["value"], data.x[k])
    np.testing.assert_array_equal(data.stops["stop_time_s"], data.t[k])
    assert len(data.stops) + len(data.never_stopped) == replayed["spec"].nunique()
    only = F.trace_stops_data(replayed, {tid: trace}, tid, rid, criteria=["mser5"])
    assert set(only.stops["label"]) | set(only.never_stopped) == {"mser5"}
    with pytest.raises(F.FigureDataError, match="no trace"):
        F.trace_stops_data(replayed, corpus, "missing", rid)


# -------------------------------------------------------------------------- rendering
def _check_files(paths: list[Path]) -> None:
    assert paths
    for p in paths:
        assert p.stat().st_size > 1000, p
        if p.suffix == ".png":
            img = mpimg.imread(p)
            assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
            assert np.ptp(img[..., :3]) > 0  # not a blank image
        elif p.suffix == ".pdf":
            assert p.read_bytes()[:4] == b"%PDF"
        elif p.suffix == ".svg":
            assert ET.parse(p).getroot().tag.endswith("svg")


def test_renderers_write_loadable_files(tmp_path: Path, corpus: list, scored: pd.DataFrame
                                        ) -> None:
    before = dict(matplotlib.rcParams)
    tid, rid = replay.trace_id_of(corpus[2]), corpus[2].run_ids[0]
    drawn = {
        "trace": F.plot_trace_stops(F.trace_stops_data(scored, corpus, tid, rid), log=True),
        "trace_time": F.plot_trace_stops(F.trace_stops_data(scored, corpus, tid, rid),
                                         x_axis="time", columns=2),
        "cost_error": F.plot_cost_error(F.cost_error_data(scored), logx=True),
        "ecdf": F.plot_wee_ecdf(F.wee_ecdf_data(scored)),
        "sensitivity": F.plot_sensitivity(F.sensitivity_data(scored), log_color=True),
        "agreement": F.plot_agreement(F.agreement_matrix(scored)),
        "spearman": F.plot_agreement(F.agreement_matrix(scored, method="spearman")),
        "forest": F.plot_forest(F.bias_forest_data(scored, n_resamples=200), sort=True),
    }
    for name, ax in drawn.items():
        assert ax.has_data() or ax.images, name
        _check_files(F.save_figure(ax.figure, tmp_path / name, ("png", "pdf", "svg")))
    grid = F.figure_trace_grid([F.trace_stops_data(scored, corpus, replay.trace_id_of(t),
                                                   t.run_ids[0]) for t in corpus[:3]])
    assert isinstance(grid, Figure) and sum(a.get_visible() for a in grid.axes) == 3
    _check_files(F.save_figure(grid, tmp_path / "grid.png"))
    assert dict(matplotlib.rcParams) == before


def test_renderer_draws_on_given_axes() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    out = F.plot_wee_ecdf(F.wee_ecdf_data(_frame([_row("t", "0", "A", 9)])), ax=ax)
    assert out is ax and len(ax.lines) >= 1


def test_save_figure_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        F.save_figure(Figure(), tmp_path / "x", ("jpg",))


def test_save_all_figures_and_registry(tmp_path: Path, corpus: list, replayed: pd.DataFrame
                                       ) -> None:
    paths = F.save_all_figures(replayed, corpus, tmp_path / "figs", formats=("png", "svg"))
    names = {p.stem for p in paths}
    assert names == set(F.PAPER_FIGURES) | {"traces"}
    assert len(paths) == 2 * len(names)
    _check_files(paths)
    # the demo / CLI contract: f(results) -> Figure, from a bare replay frame
    for func in F.PAPER_FIGURES.values():
        assert isinstance(func(replayed), Figure)


def test_paper_figures_without_references(replayed: pd.DataFrame, tmp_path: Path) -> None:
    """Runs without a reference start give figures that say so instead of failing."""
    bare = replayed.assign(reference_start=pd.array([pd.NA] * len(replayed), dtype="Int64"),
                           reference_start_s=np.nan, reference_mean=np.nan)
    bare = bare[bare["criterion"] != "rolling_cv"]
    for name, func in F.PAPER_FIGURES.items():
        fig = func(bare)
        _check_files(F.save_figure(fig, tmp_path / name, ("png",)))
    texts = [t.get_text() for t in F.figure_wee_ecdf(bare).axes[0].texts]
    assert any("reference" in t for t in texts)


def test_best_settings_keeps_one_per_criterion_when_many() -> None:
    rows = []
    for i, stop in enumerate(range(10, 130, 10)):  # 12 cv settings; stop 29 is best (ref 30)
        rows.append(_row("t", "0", f"cv:w={i}", stop - 1 if stop != 30 else 29, ref=30,
                         crit="cv", window=i))
    rows.append(_row("t", "0", "mser5", 50, ref=30))
    df = _frame(rows)
    kept = F.best_settings(df)
    assert sorted(kept["spec"]) == ["cv:w=2", "mser5"]
    assert F.best_settings(df, max_settings=20) is df


# ------------------------------------------------------------- layout, units, notebooks
from llenergymeasure.analysis.figures import _style  # noqa: E402


def _ticks(ax, which: str = "y") -> list[str]:
    ax.figure.draw_without_rendering()
    axis = ax.yaxis if which == "y" else ax.xaxis
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def test_signal_unit_known_answers() -> None:
    assert F.signal_unit("latency_ms") == ("latency", "s", 1e-3)
    assert F.signal_unit("power_w") == ("power", "W", 1.0)
    assert F.signal_unit("energy_mj") == ("energy", "J", 1e-3)
    assert F.signal_unit("stop_time_s") == ("stop time", "s", 1.0)
    assert F.signal_unit("tokens") == ("tokens", "", 1.0)


def test_si_ticks_on_microsecond_latencies() -> None:
    """pyperf-like values of about 2e-3 ms: ticks in µs, distinct, label with the unit."""
    fig = Figure()
    ax = fig.add_subplot()
    x = 0.00200 + 0.00018 * np.sin(np.arange(10))
    ax.plot(x)
    assert F.unit_axis(ax, "y", "latency_ms", x) is False
    labels = _ticks(ax)
    assert len(set(labels)) == len(labels) >= 3
    assert all("e-" not in lab for lab in labels)
    assert ax.get_ylabel() == "latency (µs)"
    values = [float(lab) for lab in labels]
    assert 1.7 <= min(values) and max(values) <= 2.3


def test_si_ticks_are_exact_round_numbers() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([2.10, 2.20])
    F.unit_axis(ax, "y", "latency_us", [2.10, 2.20])
    for lab, tick in zip(_ticks(ax), ax.get_yticks(), strict=False):
        assert math.isclose(float(lab), tick * 1e3, rel_tol=1e-9) or math.isclose(
            float(lab), tick, rel_tol=1e-9)


def test_log_axis_when_the_range_needs_it() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    wide = np.array([1000.0, 50.0, 1.0, 1.1, 0.05])
    ax.plot(wide)
    assert F.unit_axis(ax, "y", "latency_ms", wide) is True
    assert ax.get_yscale() == "log"
    labels = _ticks(ax)
    assert "1 s" in labels and any(lab.endswith(" ms") for lab in labels)
    ax2 = Figure().add_subplot()
    assert F.unit_axis(ax2, "y", "latency_ms", [10.0, 12.0, 11.0]) is False
    assert ax2.get_yscale() == "linear"


def test_shorten_and_cap_series() -> None:
    assert F.shorten("abcdefghij", 7) == "abc…hij"
    assert F.shorten("short", 10) == "short"
    kept, dropped = F.cap_series(["a", "b", "a", "c", "d"], 2)
    assert kept == ["a", "b"] and dropped == ["c", "d"]
    with pytest.raises(ValueError, match="max_series"):
        F.cap_series(["a", "b"], 0)


def _long_name_stops(n_runs: int, n_settings: int) -> list:
    rng = np.random.default_rng(0)
    datas = []
    for r in range(n_runs):
        x = 10 + rng.random(3000)
        x[:50] += 100
        stops = pd.DataFrame({
            "label": [f"rolling_cv(threshold=0.0{s}, window={10 * s})" for s in
                      range(n_settings)],
            "stop_index": np.arange(n_settings) * 3 + 5,
        })
        stops["stop_time_s"] = stops["stop_index"] * 0.1
        stops["value"] = x[stops["stop_index"]]
        tid = "JCTools__JCTools#org.jctools.jmh.throughput.QueueThroughputBackoffNone" * 2
        datas.append(F.TraceStops(f"{tid}{r}", f"{tid}{r}#fork{r}", x,
                                  np.arange(1, 3001) * 0.1, 60, stops))
    return datas


def test_trace_grid_width_does_not_grow_with_names_runs_or_settings(tmp_path: Path) -> None:
    for n_runs, n_settings in ((1, 1), (6, 20)):
        fig = F.figure_trace_grid(_long_name_stops(n_runs, n_settings))
        (png,) = F.save_figure(fig, tmp_path / f"g{n_runs}", ("png",), dpi=100)
        width_px = mpimg.imread(png).shape[1]
        assert width_px <= F.TWO_COLUMN_IN * 100 * 1.03, (n_runs, width_px)
    legend = fig.legends[0]
    drawn = [t.get_text() for t in legend.get_texts()]
    assert sum(t.startswith("rolling_cv") for t in drawn) == 8
    assert "+12 more settings" in legend.get_title().get_text()


def test_single_run_legend_sits_outside_the_data() -> None:
    ax = F.plot_trace_stops(_long_name_stops(1, 3)[0])
    fig = ax.figure
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert legend_box.x0 >= ax.get_window_extent(renderer).x1


def test_plot_trace_grid_is_a_deprecated_alias() -> None:
    datas = _long_name_stops(2, 2)
    with pytest.warns(DeprecationWarning, match="figure_trace_grid"):
        fig = F.plot_trace_grid(datas)
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.get_visible()]) == 2


def test_wee_ecdf_tolerance_alias() -> None:
    data = F.wee_ecdf_data(_frame([_row("t", "0", "A", 9), _row("t", "1", "A", 2)]))
    ax = F.plot_wee_ecdf(data, tolerance_s=1.0)
    with pytest.warns(DeprecationWarning, match="tolerance_s"):
        ax2 = F.plot_wee_ecdf(data, tolerance=1.0)
    assert len(ax.patches) == len(ax2.patches) >= 1


class _FakeShell:
    kernel = object()


def test_renderers_display_in_a_notebook_only_when_they_make_the_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import types

    shown: list = []
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: _FakeShell()  # type: ignore[attr-defined]
    display_mod = types.ModuleType("IPython.display")
    display_mod.display = shown.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_mod)
    data = F.wee_ecdf_data(_frame([_row("t", "0", "A", 9)]))
    ax = F.plot_wee_ecdf(data)
    assert shown == [ax.figure]
    fig = Figure()
    F.plot_wee_ecdf(data, ax=fig.add_subplot())
    F.plot_cost_error(F.cost_error_data(_frame([_row("t", "0", "A", 9)])), ax=fig.axes[0])
    assert len(shown) == 1
    F.plot_trace_stops(_long_name_stops(1, 1)[0])
    assert len(shown) == 2
    ipython.get_ipython = lambda: None  # type: ignore[attr-defined]  # plain python
    F.plot_wee_ecdf(data)
    assert len(shown) == 2
    assert _style.show_in_notebook(Figure()) is False
