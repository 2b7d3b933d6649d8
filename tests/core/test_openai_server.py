"""Server mode against a real local ``transformers serve`` (fixture ``openai_server``).

The server runs offline on the CPU and serves the package's tiny word-level
model, saved with a chat template by the session fixture in ``tests/conftest.py``.
A few stream-format edge cases that a real server does not produce on demand
(no usage, ``[DONE]``, SSE comments, an error event, a cut stream) are played
by a small standard-library server in this file.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure import WarmupConfig, create_openai_inference_fn, warmup_until_converged
from llenergymeasure.core.openai_client import (
    ITL_QUANTILES,
    ServerConnectionError,
    ServerHTTPError,
    ServerResponseError,
    ServerTimeoutError,
    _quantile,
)
from llenergymeasure.traces.io import load_trace
from llenergymeasure.traces.model import OPTIONAL_COLUMNS

PROMPT = "the model is fast"
N_PROMPT_WORDS = 4  # the tiny tokenizer is word-level, adds no special token, and the
# chat template renders only the message content


def _check_stream_record(rec: dict, max_tokens: int) -> None:
    """Invariants of one streamed record (all relations the clock guarantees)."""
    assert rec["latency_ms"] > 0 and rec["connect_ms"] >= 0
    assert 0 < rec["ttft_ms"] <= rec["latency_ms"]
    n = rec["output_chunks"]
    assert 1 <= n <= max_tokens
    assert rec["itl_count"] == n - 1
    if n > 1:
        qs = [rec[f"itl_p{round(q * 100)}_ms"] for q in ITL_QUANTILES]
        assert 0 <= qs[0] <= qs[1] <= qs[2] <= rec["itl_max_ms"]
        assert 0 <= rec["itl_mean_ms"] <= rec["itl_max_ms"]
        # first token + all gaps = arrival of the last token, which precedes the end
        assert rec["ttft_ms"] + rec["itl_mean_ms"] * rec["itl_count"] <= rec["latency_ms"] + 1e-6


# --------------------------------------------------------------------------- the real server


def test_chat_stream_records_latencies_and_usage(openai_server) -> None:
    fn = create_openai_inference_fn(
        openai_server.base_url, openai_server.model,
        messages=[{"role": "user", "content": PROMPT}], max_tokens=6,
    )
    assert fn.url.endswith("/v1/chat/completions")
    for _ in range(3):
        rec = fn()
        _check_stream_record(rec, 6)
        # usage from the server: the prompt is 4 words of the word-level vocabulary
        assert rec["input_tokens"] == N_PROMPT_WORDS
        # transformers serve streams one token per event, so usage and chunk count agree
        assert rec["output_tokens"] == rec["output_chunks"]
        assert fn.last_finish_reason in ("length", "stop")
        if fn.last_finish_reason == "length":
            assert rec["output_tokens"] == 6


def test_completions_stream_with_a_base_url_ending_in_v1(openai_server) -> None:
    fn = create_openai_inference_fn(
        openai_server.base_url + "/v1/", openai_server.model, "the gpu is fast", max_tokens=5,
    )
    assert fn.url.endswith("/v1/completions") and "/v1/v1" not in fn.url
    rec = fn()
    _check_stream_record(rec, 5)
    assert rec["input_tokens"] == 4
    assert rec["output_tokens"] == rec["output_chunks"]


def test_tokens_without_text_send_no_event(openai_server) -> None:
    # "warm" is not in the tiny vocabulary: the greedy continuation of the [UNK] prompt is
    # [UNK] tokens, which decode to no text, and transformers serve streams no event for
    # them. The usage still counts them; no time to first token can be measured.
    fn = create_openai_inference_fn(openai_server.base_url, openai_server.model,
                                    "the gpu is warm", max_tokens=5)
    rec = fn()
    assert rec["output_tokens"] == 5 and rec["output_chunks"] == 0
    assert "ttft_ms" not in rec and "itl_count" not in rec


def test_non_streamed_request_records_latency_and_usage_only(openai_server) -> None:
    fn = create_openai_inference_fn(
        openai_server.base_url, openai_server.model, messages=[{"role": "user", "content": PROMPT}],
        max_tokens=3, stream=False,
    )
    rec = fn()
    assert rec["latency_ms"] > 0
    assert rec["input_tokens"] == N_PROMPT_WORDS and 1 <= rec["output_tokens"] <= 3
    assert not {"ttft_ms", "itl_count", "output_chunks"} & set(rec)


def test_warmup_through_the_server_is_recorded(openai_server, tmp_path) -> None:
    fn = create_openai_inference_fn(
        openai_server.base_url, openai_server.model,
        messages=[{"role": "user", "content": PROMPT}], max_tokens=4,
    )
    cfg = WarmupConfig(cv_threshold=0.5, max_prompts=12, window_size=3, min_prompts=3)
    res = warmup_until_converged(
        fn, cfg, show_progress=False, trace_path=tmp_path / "server.jsonl",
        shadow_criteria=["fixed_count:n=4"], record_after_stop=2,
        model={"base_url": openai_server.base_url, "served_model": openai_server.model},
    )
    assert res.failures == 0 and res.status in ("converged", "not_converged")
    trace = load_trace(res.trace_path)
    data = trace.data
    assert len(data) == res.attempts + 2  # two attempts recorded after the stop
    assert data["ok"].all()
    np.testing.assert_array_equal(data["latency_ms"].to_numpy()[: res.attempts],
                                  np.asarray(res.latencies_ms))
    assert (data["ttft_ms"] <= data["latency_ms"]).all()
    assert (data["input_tokens"] == N_PROMPT_WORDS).all()
    assert (data["output_tokens"] == data["output_chunks"]).all()
    assert (data["itl_count"] == data["output_chunks"] - 1).all()
    info = trace.run_info(trace.run_ids[0])
    assert info.shadow["fixed_count:n=4"].stop_index == 3
    assert trace.metadata.model["served_model"] == openai_server.model


def test_unknown_model_is_a_failed_attempt_with_the_http_status(openai_server, tmp_path) -> None:
    fn = create_openai_inference_fn(
        openai_server.base_url, str(tmp_path / "no-such-model"),
        messages=[{"role": "user", "content": PROMPT}], max_tokens=2,
    )
    with pytest.raises(ServerHTTPError) as info:
        fn()
    assert info.value.status >= 400
    assert f"HTTP {info.value.status}" in str(info.value) and fn.url in str(info.value)
    cfg = WarmupConfig(max_prompts=3, window_size=2, min_prompts=2)
    res = warmup_until_converged(fn, cfg, show_progress=False, trace_path=tmp_path / "t.jsonl")
    assert res.status == "all_failed" and res.failure_types == {"ServerHTTPError": 3}
    data = load_trace(res.trace_path).data
    assert (~data["ok"]).all()
    assert data["error"].str.startswith(f"ServerHTTPError: HTTP {info.value.status}").all()


def test_a_tiny_timeout_is_a_timeout_failure_and_the_server_lives_on(openai_server) -> None:
    msgs = [{"role": "user", "content": PROMPT}]
    fn = create_openai_inference_fn(openai_server.base_url, openai_server.model,
                                    messages=msgs, max_tokens=8, timeout_s=1e-3)
    with pytest.raises(ServerTimeoutError, match=r"within 0\.001 s"):
        fn()
    res = warmup_until_converged(fn, WarmupConfig(max_prompts=2, window_size=2, min_prompts=2),
                                 show_progress=False)
    assert res.failure_types == {"ServerTimeoutError": 2}
    ok = create_openai_inference_fn(openai_server.base_url, openai_server.model,
                                    messages=msgs, max_tokens=2)
    assert ok()["latency_ms"] > 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_is_a_connection_error() -> None:
    port = _closed_port()
    fn = create_openai_inference_fn(f"http://127.0.0.1:{port}", "m", "the", max_tokens=2)
    with pytest.raises(ServerConnectionError, match=f"cannot connect to http://127.0.0.1:{port}"):
        fn()
    res = warmup_until_converged(fn, WarmupConfig(max_prompts=2, window_size=2, min_prompts=2),
                                 show_progress=False)
    assert res.status == "all_failed" and res.failure_types == {"ServerConnectionError": 2}


# --------------------------------------------------------------------------- stream formats


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Plays the SSE body named by the request's model (no chunked encoding, closes at end)."""

    protocol_version = "HTTP/1.0"
    bodies: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:

        length = int(self.headers["Content-Length"])
        req = json.loads(self.rfile.read(length))
        type(self).requests.append({"path": self.path, "body": req, "auth":
                                    self.headers.get("Authorization")})
        body = self.bodies[req["model"]]
        if req["model"] == "cut-chunked":  # one chunk, then the connection closes mid-body
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n"
                             + f"{len(body):x}\r\n".encode() + body + b"\r\n")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if req["model"] == "cut":  # promise more than is sent: the client sees a cut stream
            self.send_header("Content-Length", str(len(body) + 100))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


def _sse(*events: str) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


_CHUNK = '{"choices":[{"index":0,"delta":{"content":"%s"}}]}'


@pytest.fixture(scope="module")
def scripted() -> Iterator[str]:
    _Scripted.bodies = {
        # no usage, an SSE comment, a role-only first chunk, [DONE], then junk never read
        "plain": b": keep-alive\n\n" + _sse(
            '{"choices":[{"index":0,"delta":{"role":"assistant"}}]}',
            _CHUNK % "a", _CHUNK % " b", _CHUNK % " c", "[DONE]", "not json"),
        # one event split over two data lines (joined with a newline: still JSON)
        "multiline": b'data: {"choices":[{"index":0,\ndata: "text":"x"}]}\n\n'
                     + _sse('{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1}}'),
        "error": _sse(_CHUNK % "a", '{"error":{"message":"out of KV cache"}}'),
        "notjson": _sse("{oops"),
        "cut": _sse(_CHUNK % "a"),
        "cut-chunked": _sse(_CHUNK % "a"),
        # text chunks, a finish reason, then the usage
        "finished": _sse(_CHUNK % "a", _CHUNK % " b",
                         '{"choices":[{"index":0,"delta":{"content":" c"},'
                         '"finish_reason":"length"}]}',
                         '{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}',
                         "[DONE]"),
    }
    _Scripted.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_without_usage_the_chunks_are_counted(scripted: str) -> None:
    fn = create_openai_inference_fn(scripted, "plain", messages=[{"role": "user", "content": "q"}],
                                    api_key="sk-test", extra_body={"temperature": 0})
    rec = fn()
    assert rec["output_chunks"] == 3 and rec["output_tokens"] == 3 and rec["itl_count"] == 2
    assert "input_tokens" not in rec
    sent = _Scripted.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-test"
    assert sent["body"]["temperature"] == 0 and sent["body"]["max_tokens"] == 32
    assert sent["body"]["stream_options"] == {"include_usage": True}


def test_multiline_data_and_usage_chunk(scripted: str) -> None:
    rec = create_openai_inference_fn(scripted, "multiline", "q")()
    assert rec["output_chunks"] == 1 and rec["itl_count"] == 0 and "itl_mean_ms" not in rec
    assert rec["input_tokens"] == 7 and rec["output_tokens"] == 1


def test_error_event_and_bad_json_are_response_errors(scripted: str) -> None:
    with pytest.raises(ServerResponseError, match="out of KV cache"):
        create_openai_inference_fn(scripted, "error", "q")()
    with pytest.raises(ServerResponseError, match="not JSON"):
        create_openai_inference_fn(scripted, "notjson", "q")()


def test_every_field_of_the_client_is_a_declared_trace_column() -> None:
    names = {f"itl_p{round(q * 100)}_ms" for q in ITL_QUANTILES}
    names |= {"connect_ms", "ttft_ms", "itl_mean_ms", "itl_max_ms", "itl_count",
              "output_chunks", "input_tokens", "output_tokens"}
    assert names <= set(OPTIONAL_COLUMNS)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_server_fields_round_trip_with_their_declared_dtypes(scripted: str, tmp_path: Path,
                                                             fmt: str) -> None:
    # Three answers with different fields (ITLs or not, usage or not), so that the columns
    # have values and gaps.
    fns = [create_openai_inference_fn(scripted, m, "q") for m in ("plain", "multiline",
                                                                  "finished")]
    returned: list[dict] = []

    def fn() -> dict:
        rec = fns[len(returned) % len(fns)]()
        returned.append(rec)
        return rec

    res = warmup_until_converged(fn, WarmupConfig(max_prompts=6, min_prompts=3, window_size=3,
                                                  convergence_detection=False),
                                 show_progress=False, trace_path=tmp_path / f"server.{fmt}")
    assert res.failures == 0
    data = load_trace(res.trace_path).data
    fields = {k for rec in returned for k in rec} - {"latency_ms"}
    assert {"connect_ms", "output_chunks", "itl_count", "itl_p90_ms", "input_tokens"} <= fields
    assert fields <= set(OPTIONAL_COLUMNS)  # nothing left to load back as object
    assert {r.get("input_tokens") for r in returned} == {None, 5, 7}
    for name in sorted(fields):
        spec = OPTIONAL_COLUMNS[name]
        col = data[name]
        expected = [r.get(name) for r in returned]
        assert str(col.dtype) == spec.dtype, name
        got = col.astype("float64").to_numpy(na_value=np.nan)
        want = np.array([np.nan if v is None else v for v in expected], dtype=float)
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("model", ["cut", "cut-chunked"])
def test_a_cut_stream_is_a_connection_error(scripted: str, model: str) -> None:
    with pytest.raises(ServerConnectionError, match="while reading the response"):
        create_openai_inference_fn(scripted, model, "q")()


# --------------------------------------------------------------------------- arguments, helpers


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "http://h:1", "model": "m"}, "exactly one of prompt"),
        ({"base_url": "http://h:1", "model": "m", "prompt": "p", "messages": []},
         "exactly one of prompt"),
        ({"base_url": "ftp://h", "model": "m", "prompt": "p"}, "http:// or https://"),
        ({"base_url": "http://h:99999", "model": "m", "prompt": "p"}, "invalid port"),
        ({"base_url": "http://h", "model": "", "prompt": "p"}, "model must be"),
        ({"base_url": "http://h", "model": "m", "prompt": "p", "max_tokens": 0}, "max_tokens"),
        ({"base_url": "http://h", "model": "m", "prompt": "p", "timeout_s": 0}, "timeout_s"),
        ({"base_url": "http://h", "model": "m", "messages": "hi"}, "messages must be"),
        ({"base_url": "http://h", "model": "m", "messages": [{"role": "user"}]}, r"messages\[0\]"),
    ],
)
def test_bad_arguments_are_rejected_at_creation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        create_openai_inference_fn(**kwargs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=40),
       st.sampled_from(ITL_QUANTILES))
def test_quantile_matches_numpy_linear(values: list[float], q: float) -> None:
    v = sorted(values)
    assert _quantile(v, q) == pytest.approx(float(np.quantile(v, q)), rel=1e-12, abs=1e-9)


def test_import_paths_and_no_http_machinery_at_import() -> None:
    code = (
        "import sys, llenergymeasure\n"
        "from llenergymeasure.core.warmup import warmup_until_converged, "
        "create_warmup_inference_fn\n"
        "from llenergymeasure.core import create_openai_inference_fn as a\n"
        "from llenergymeasure import create_openai_inference_fn as b\n"
        "assert a is b\n"
        "print(sorted(m for m in ('http.client', 'yaml', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_criterion_can_watch_the_time_to_first_token(openai_server, tmp_path) -> None:
    fn = create_openai_inference_fn(openai_server.base_url, openai_server.model, PROMPT,
                                    max_tokens=2)
    cfg = WarmupConfig(criterion="rolling_cv:signal=ttft_ms,window=3,threshold=0.9",
                       max_prompts=5, min_prompts=3, convergence_detection=False)
    res = warmup_until_converged(fn, cfg, show_progress=False, trace_path=tmp_path / "t.jsonl")
    assert res.failures == 0 and res.attempts == 5
    ttft = load_trace(res.trace_path).data["ttft_ms"].to_numpy()[-3:]
    # the criterion's statistic is the CV (ddof=1) of the last three TTFTs, not of latencies
    assert res.final_statistic == pytest.approx(np.std(ttft, ddof=1) / np.mean(ttft), rel=1e-9)
