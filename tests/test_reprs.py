"""Short reprs (and notebook HTML reprs) of traces and results: a few facts, never the
whole attempt table or every latency."""

from __future__ import annotations

from llenergymeasure.analysis import synthetic
from llenergymeasure.domain.metrics import WarmupResult


def test_trace_repr_is_short_and_says_what_it_holds() -> None:
    trace = synthetic.make_trace("decay", 2000, n_runs=5, trace_id="t1")
    text = repr(trace)
    assert text.startswith("Trace(") and len(text) < 200
    assert "trace_id='t1'" in text and "runs=5" in text and "attempts=10000" in text
    assert "criterion=" in text and "columns=" in text
    html = trace._repr_html_()
    assert html.startswith("<table>") and "10000" in html and "run0" in html
    assert html.count("<tr>") == 5


def test_trace_repr_counts_failures() -> None:
    trace = synthetic.make_trace("flat", 50, trace_id="f")
    trace.data.loc[3, "ok"] = False
    assert "attempts=50 (1 failed)" in repr(trace)


def test_result_repr_elides_long_latency_lists() -> None:
    result = WarmupResult(
        converged=True, status="converged", final_cv=0.01, target_cv=0.05,
        iterations_completed=500, attempts=500, failures=0, failure_types={},
        max_prompts=500, latencies_ms=[float(i) for i in range(500)],
    )
    text = repr(result)
    assert "(500 values)" in text and "499" in text and "250.0" not in text
    assert len(text) < 400
    assert "<table>" in result._repr_html_() and "(500 values)" in result._repr_html_()
