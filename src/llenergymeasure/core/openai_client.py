"""Server mode: time one request to an OpenAI-compatible endpoint per call.

vLLM, SGLang, TGI, llama.cpp's ``llama-server`` and ``transformers serve`` all
speak the OpenAI-compatible HTTP API. :func:`create_openai_inference_fn` builds
an inference callable for
:func:`~llenergymeasure.core.warmup.warmup_until_converged` that sends one
request per call to ``/v1/chat/completions`` (with ``messages``) or
``/v1/completions`` (with ``prompt``), streams the answer as server-sent events
and returns what the driver records: the end-to-end latency, the time to first
token, inter-token latencies and the token counts.

Only the standard library is used (:mod:`http.client`, imported when the first
callable is built), so importing llenergymeasure opens no HTTP machinery.
Failed requests raise a subclass of :class:`ServerRequestError`; the driver
records each as a failed attempt with its type and message.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ITL_QUANTILES",
    "ServerConnectionError",
    "ServerHTTPError",
    "ServerRequestError",
    "ServerResponseError",
    "ServerTimeoutError",
    "create_openai_inference_fn",
]

logger = logging.getLogger(__name__)

#: Quantiles of the inter-token latencies reported per request (as ``itl_p50_ms``, ...).
ITL_QUANTILES = (0.5, 0.9, 0.99)

_ERROR_BODY_CHARS = 300


class ServerRequestError(RuntimeError):
    """A request to the inference server failed; the driver records a failed attempt."""


class ServerConnectionError(ServerRequestError):
    """The server could not be reached (refused, reset, name not resolved, closed early)."""


class ServerHTTPError(ServerRequestError):
    """The server answered with an HTTP error status (4xx or 5xx).

    Attributes
    ----------
    status : int
        The HTTP status code.
    body : str
        The start of the response body (at most 300 characters).
    """

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ServerTimeoutError(ServerRequestError):
    """The request did not complete within ``timeout_s`` (connecting included)."""


class ServerResponseError(ServerRequestError):
    """The answer is not a valid OpenAI-compatible response, or the stream reported an error."""


def _endpoint(base_url: str, chat: bool) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of the completions endpoint under ``base_url``."""
    if not isinstance(base_url, str) or not base_url:
        raise ValueError(f"base_url must be a non-empty URL string, got {base_url!r}")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base_url must be an http:// or https:// URL with a host, got {base_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {base_url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"base_url has an invalid port: {base_url!r} ({exc})") from None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    path += "/chat/completions" if chat else "/completions"
    return parts.scheme, parts.hostname, port, path


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ValueError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} mappings, "
            f"got {messages!r}"
        )
    out = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
            raise ValueError(
                f"messages[{i}] must be a mapping with 'role' and 'content', got {msg!r}"
            )
        out.append(dict(msg))
    return out


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (NumPy's default, Hyndman-Fan type 7)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def _delta_text(choice: Mapping[str, Any]) -> str:
    """The generated text of one streamed choice (chat delta or completion text)."""
    delta = choice.get("delta")
    if isinstance(delta, Mapping):
        parts = [delta.get(k) for k in ("content", "reasoning_content", "reasoning")]
        return "".join(p for p in parts if isinstance(p, str))
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _usage_counts(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, Mapping):
        return None, None
    n_in = usage.get("prompt_tokens")
    n_out = usage.get("completion_tokens")
    return (
        int(n_in) if isinstance(n_in, (int, float)) and not isinstance(n_in, bool) else None,
        int(n_out) if isinstance(n_out, (int, float)) and not isinstance(n_out, bool) else None,
    )


def _stream_error(event: Mapping[str, Any]) -> str | None:
    err = event.get("error")
    if err is None:
        return None
    if isinstance(err, Mapping):
        return str(err.get("message") or err)
    return str(err)


def create_openai_inference_fn(
    base_url: str,
    model: str,
    prompt: str | None = None,
    *,
    messages: Sequence[Mapping[str, Any]] | None = None,
    max_tokens: int = 32,
    stream: bool = True,
    timeout_s: float = 60,
    api_key: str | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> Callable[[], dict[str, Any]]:
    """Build a callable that sends one request to an OpenAI-compatible server and times it.

    Parameters
    ----------
    base_url : str
        The server, e.g. ``http://127.0.0.1:8000`` or ``http://127.0.0.1:8000/v1``
        (``/v1`` is added when the path does not end with it).
    model : str
        The ``model`` field of every request (the name the server knows the model by).
    prompt : str, optional
        Send ``{"prompt": prompt}`` to ``/v1/completions``.
    messages : list of mapping, optional
        Send ``{"messages": messages}`` to ``/v1/chat/completions``. Exactly
        one of ``prompt`` and ``messages`` is required.
    max_tokens : int, default 32
        The ``max_tokens`` of every request (>= 1). The server may stop
        earlier (end of sequence); ``output_tokens`` says how many it sent.
    stream : bool, default True
        Stream the answer (``"stream": true`` with
        ``"stream_options": {"include_usage": true}``). False sends one
        non-streamed request: only the latency and the usage counts are
        recorded (no time to first token, no inter-token latencies).
    timeout_s : float, default 60
        Limit on the whole request, connecting included (> 0).
    api_key : str, optional
        Sent as ``Authorization: Bearer <api_key>``.
    extra_body : mapping, optional
        Extra JSON fields merged into every request body last (they may
        override the fields above, e.g. ``{"temperature": 0, "ignore_eos": true}``).

    Returns
    -------
    callable
        ``fn() -> dict``: one request per call. The mapping holds
        ``latency_ms`` and, when measured, ``ttft_ms``, ``itl_mean_ms``,
        ``itl_p50_ms``, ``itl_p90_ms``, ``itl_p99_ms``, ``itl_max_ms``,
        ``itl_count``, ``output_chunks``, ``input_tokens``,
        ``output_tokens`` and ``connect_ms`` (see Notes). The callable has
        the attributes ``url`` (the endpoint) and ``last_finish_reason``.

    Raises
    ------
    ValueError
        At creation, for a malformed ``base_url``, neither or both of
        ``prompt`` and ``messages``, ``max_tokens < 1`` or ``timeout_s <= 0``.
    ServerRequestError
        From a call: `ServerConnectionError` (refused, reset, closed before
        the answer ended), `ServerTimeoutError` (``timeout_s`` exceeded),
        `ServerHTTPError` (status >= 400; the status and the start of the
        body are in the message) or `ServerResponseError` (a body that is
        not the expected JSON, or an ``error`` event in the stream). The
        driver records each as a failed attempt.

    Notes
    -----
    **The clock.** Every call opens a new connection (TCP, and TLS for
    ``https``); its set-up time is reported as ``connect_ms`` and is *not*
    part of the latency. ``latency_ms`` is measured with
    `time.perf_counter_ns` from just before the request is written to the
    socket to just after the last byte of the answer was read (the end of the
    stream, or ``data: [DONE]``). ``ttft_ms`` is from the same start to the
    read of the first event carrying generated text (``delta.content``,
    ``delta.reasoning_content`` or ``text``; a role-only first chunk does not
    count). The inter-token latencies are the gaps between successive
    text-carrying events: ``itl_count`` gaps, their mean, quantiles
    `ITL_QUANTILES` (linear interpolation, NumPy's default) and maximum.
    They are inter-*chunk* latencies: equal to inter-token latencies when
    the server sends one token per event (vLLM, SGLang and ``transformers
    serve`` do by default), longer when it batches tokens into events. All
    times are what the client sees: network and server queueing included.

    **Token counting.** ``input_tokens`` and ``output_tokens`` are the
    ``prompt_tokens`` and ``completion_tokens`` of the ``usage`` object the
    server sends (requested with ``stream_options.include_usage``; the last
    one seen wins). When the server sends no usage, ``output_tokens`` is
    ``output_chunks``, the number of text-carrying events (exact for servers
    that stream one token per event), and ``input_tokens`` is left out.
    ``output_chunks`` is always recorded when streaming, so a trace shows
    whether the two counts agree. Tokens that decode to no text (special
    tokens) are sent as no event by some servers (``transformers serve``):
    they count in the usage but not in ``output_chunks``, and when no token
    has text there is no ``ttft_ms``.

    References
    ----------
    - OpenAI, "API reference: Chat Completions, streaming", the
      ``stream_options.include_usage`` option and the chunk object,
      <https://platform.openai.com/docs/api-reference/chat/streaming>.
    - WHATWG, "HTML Living Standard, 9.2 Server-sent events" (the
      ``data:`` line format),
      <https://html.spec.whatwg.org/multipage/server-sent-events.html>.
    - vLLM, ``benchmarks/backend_request_func.py`` (TTFT, ITL and
      TPOT measured from the streamed chunks in the same way).
    """
    if (prompt is None) == (messages is None):
        raise ValueError("give exactly one of prompt (for /v1/completions) and messages "
                         "(for /v1/chat/completions)")
    if prompt is not None and not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
    chat = messages is not None
    scheme, host, port, path = _endpoint(base_url, chat)
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a finite number > 0, got {timeout_s!r}")
    if extra_body is not None and not isinstance(extra_body, Mapping):
        raise ValueError(f"extra_body must be a mapping, got {type(extra_body).__name__}")

    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "stream": bool(stream)}
    if chat:
        body["messages"] = _check_messages(messages)
    else:
        body["prompt"] = prompt
    if stream:
        body["stream_options"] = {"include_usage": True}
    body.update(extra_body or {})
    payload = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
        "Content-Length": str(len(payload)),
    }
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = f"{scheme}://{host}:{port}{path}"

    import http.client

    conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection

    def fail_timeout(stage: str) -> ServerTimeoutError:
        return ServerTimeoutError(f"no complete answer from {url} within {timeout_s:g} s "
                                  f"({stage})")

    def run_single_inference() -> dict[str, Any]:
        deadline = time.perf_counter_ns() + int(timeout_s * 1e9)

        def remaining() -> float:
            return (deadline - time.perf_counter_ns()) / 1e9

        conn = conn_cls(host, port, timeout=timeout_s)
        try:
            c0 = time.perf_counter_ns()
            try:
                conn.connect()
            except TimeoutError:
                raise fail_timeout("connecting") from None
            except OSError as exc:
                raise ServerConnectionError(f"cannot connect to {url}: {exc}") from None
            c1 = time.perf_counter_ns()
            # http.client drops conn.sock once a response that closes the connection has
            # begun; the response reads through this same socket, so keep it for timeouts.
            sock = conn.sock
            record: dict[str, Any] = {"connect_ms": (c1 - c0) / 1e6}
            stage = "sending the request"
            try:
                t0 = time.perf_counter_ns()
                sock.settimeout(max(remaining(), 1e-6))
                conn.request("POST", path, body=payload, headers=headers)
                stage = "waiting for the response headers"
                resp = conn.getresponse()
                if resp.status >= 400:
                    stage = "reading the error body"
                    text = resp.read(4096).decode("utf-8", "replace").strip()
                    snippet = text[:_ERROR_BODY_CHARS]
                    raise ServerHTTPError(
                        f"HTTP {resp.status} {resp.reason} from {url}: {snippet or '(empty body)'}",
                        resp.status, snippet,
                    )
                stage = "reading the response"
                if stream:
                    fields = _read_stream(resp, sock, remaining, t0)
                else:
                    raw = resp.read()
                    t_end = time.perf_counter_ns()
                    fields = _parse_whole(raw, t0, t_end)
            except ServerRequestError:
                raise
            except TimeoutError:
                raise fail_timeout(stage) from None
            except (http.client.HTTPException, OSError) as exc:
                raise ServerConnectionError(
                    f"connection to {url} failed while {stage}: {type(exc).__name__}: {exc}"
                ) from None
        finally:
            conn.close()
        run_single_inference.last_finish_reason = fields.pop("finish_reason", None)  # type: ignore[attr-defined]
        record.update(fields)
        return record

    def _read_stream(
        resp: Any, sock: Any, remaining: Callable[[], float], t0: int
    ) -> dict[str, Any]:
        arrivals: list[int] = []
        n_in = n_out = None
        finish = None
        data_lines: list[str] = []
        t_end = t0

        def dispatch(data: str) -> bool:
            """Handle one event; True at ``[DONE]``."""
            nonlocal n_in, n_out, finish
            if data.strip() == "[DONE]":
                return True
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                raise ServerResponseError(
                    f"{url} streamed an event that is not JSON: {data[:_ERROR_BODY_CHARS]!r}"
                ) from None
            if not isinstance(event, Mapping):
                raise ServerResponseError(f"{url} streamed a non-object event: {data[:200]!r}")
            err = _stream_error(event)
            if err is not None:
                raise ServerResponseError(f"{url} reported an error in the stream: {err}")
            usage_in, usage_out = _usage_counts(event.get("usage"))
            if usage_out is not None:
                n_in, n_out = usage_in, usage_out
            text = ""
            for choice in event.get("choices") or ():
                if isinstance(choice, Mapping):
                    text += _delta_text(choice)
                    finish = choice.get("finish_reason") or finish
            if text:
                arrivals.append(t_end)
            return False

        while True:
            sock.settimeout(max(remaining(), 1e-6))
            line = resp.readline()
            t_end = time.perf_counter_ns()
            if remaining() <= 0:
                raise TimeoutError
            if not line:  # end of the body
                # http.client's readline reports a cut body as a plain end: a Content-Length
                # not delivered leaves `length` > 0; a chunked body ended without its
                # zero-size last chunk leaves `chunk_left` set (None after a proper end).
                missing = getattr(resp, "length", None)
                cut_chunked = resp.chunked and getattr(resp, "chunk_left", None) is not None
                if missing or cut_chunked:
                    what = (f"{missing} bytes of the announced body missing" if missing
                            else "the chunked body has no last chunk")
                    raise ServerConnectionError(
                        f"connection to {url} closed while reading the response: {what}"
                    )
                if data_lines:
                    dispatch("\n".join(data_lines))
                break
            text_line = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text_line:  # blank line: end of one event
                if data_lines:
                    done = dispatch("\n".join(data_lines))
                    data_lines = []
                    if done:
                        break
                continue
            if text_line.startswith(":"):  # SSE comment / keep-alive
                continue
            field, _, value = text_line.partition(":")
            if field == "data":
                data_lines.append(value[1:] if value.startswith(" ") else value)

        out: dict[str, Any] = {"latency_ms": (t_end - t0) / 1e6, "finish_reason": finish}
        out["output_chunks"] = len(arrivals)
        if arrivals:
            out["ttft_ms"] = (arrivals[0] - t0) / 1e6
            gaps = sorted((b - a) / 1e6 for a, b in itertools.pairwise(arrivals))
            out["itl_count"] = len(gaps)
            if gaps:
                out["itl_mean_ms"] = math.fsum(gaps) / len(gaps)
                for q in ITL_QUANTILES:
                    out[f"itl_p{round(q * 100)}_ms"] = _quantile(gaps, q)
                out["itl_max_ms"] = gaps[-1]
        if n_out is not None:
            out["output_tokens"] = n_out
            if n_in is not None:
                out["input_tokens"] = n_in
        else:
            out["output_tokens"] = len(arrivals)
        return out

    def _parse_whole(raw: bytes, t0: int, t_end: int) -> dict[str, Any]:
        try:
            answer = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServerResponseError(
                f"{url} answered with a body that is not JSON: "
                f"{raw[:_ERROR_BODY_CHARS].decode('utf-8', 'replace')!r}"
            ) from None
        if not isinstance(answer, Mapping):
            raise ServerResponseError(f"{url} answered with a non-object JSON body")
        err = _stream_error(answer)
        if err is not None:
            raise ServerResponseError(f"{url} answered with an error: {err}")
        out: dict[str, Any] = {"latency_ms": (t_end - t0) / 1e6}
        choices = answer.get("choices") or ()
        if choices and isinstance(choices[0], Mapping):
            out["finish_reason"] = choices[0].get("finish_reason")
        n_in, n_out = _usage_counts(answer.get("usage"))
        if n_out is not None:
            out["output_tokens"] = n_out
        if n_in is not None:
            out["input_tokens"] = n_in
        return out

    run_single_inference.url = url  # type: ignore[attr-defined]
    run_single_inference.last_finish_reason = None  # type: ignore[attr-defined]
    return run_single_inference
