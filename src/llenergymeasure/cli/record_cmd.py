"""``llem-warmup record``: record a warmup trace from the command line.

Two sources of inferences:

* a local transformers model: the built-in tiny model (``--model tiny``, the
  default; random weights, CPU, no download) or a model folder
  (``--model PATH``), run in this process through
  `llenergymeasure.core.inference.create_warmup_inference_fn`;
* an OpenAI-compatible server (``--base-url URL --served-model NAME``), one
  streamed request per attempt through
  `llenergymeasure.core.openai_client.create_openai_inference_fn`.

The run is `llenergymeasure.core.warmup.warmup_until_converged` with the
configuration of ``--config`` (a ``WarmupConfig`` file) and the overrides
given; the trace goes to ``-o``. Exit codes: 0 recorded, 1 every attempt
failed or a failure at run time, 2 bad input, 130 interrupted (the trace so far
is kept, finalised with status ``interrupted``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PROMPT", "Prompt", "read_prompts", "register"]

logger = logging.getLogger(__name__)

#: The prompt used when no ``--prompts`` file is given (words of the tiny model's vocabulary).
DEFAULT_PROMPT = "measure the energy of inference on the gpu"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class RecordInputError(ValueError):
    """Bad input to ``llem-warmup record`` (reported as one line, exit code 2)."""


@dataclass(frozen=True)
class Prompt:
    """One prompt: plain text, or a list of chat messages.

    Attributes
    ----------
    text : str or None
        A text prompt.
    messages : list of dict or None
        Chat messages (``{"role": ..., "content": ...}``); exactly one of
        ``text`` and ``messages`` is set.
    """

    text: str | None = None
    messages: list[dict[str, Any]] | None = None


def read_prompts(path: str | os.PathLike[str]) -> list[Prompt]:
    """Read prompts from a file.

    Parameters
    ----------
    path : path-like
        A ``.jsonl`` file holds one JSON object per line with a ``prompt``
        (string) or ``messages`` (list of ``{"role", "content"}``) field;
        any other file holds one text prompt per line. Blank lines are
        skipped.

    Returns
    -------
    list of Prompt
        In file order; at least one.

    Raises
    ------
    RecordInputError
        Naming the file and line: unreadable JSON, neither or both fields, an
        empty file.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RecordInputError(f"--prompts: no such file {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordInputError(f"--prompts: cannot read {p}: {exc}") from None
    prompts: list[Prompt] = []
    jsonl = p.suffix.lower() == ".jsonl"
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not jsonl:
            prompts.append(Prompt(text=line))
            continue
        where = f"{p}, line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordInputError(f"--prompts: {where}: not JSON ({exc.msg})") from None
        if not isinstance(obj, Mapping) or ("prompt" in obj) == ("messages" in obj):
            raise RecordInputError(
                f"--prompts: {where}: expected an object with a 'prompt' or a 'messages' field"
            )
        if "prompt" in obj:
            if not isinstance(obj["prompt"], str) or not obj["prompt"]:
                raise RecordInputError(f"--prompts: {where}: 'prompt' must be a non-empty string")
            prompts.append(Prompt(text=obj["prompt"]))
            continue
        msgs = obj["messages"]
        if (not isinstance(msgs, list) or not msgs or not all(
                isinstance(m, Mapping) and "role" in m and "content" in m for m in msgs)):
            raise RecordInputError(
                f"--prompts: {where}: 'messages' must be a non-empty list of objects with "
                "'role' and 'content'"
            )
        prompts.append(Prompt(messages=[dict(m) for m in msgs]))
    if not prompts:
        raise RecordInputError(f"--prompts: {p} holds no prompt")
    return prompts


# ------------------------------------------------------------------ configuration


def _one_line(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "; ".join(parts)
    return " ".join(str(exc).split())


def _build_config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from llenergymeasure.config.models import WarmupConfig

    base = WarmupConfig.from_file(args.config) if args.config else WarmupConfig()
    overrides: dict[str, Any] = {}
    if args.criterion is not None:
        overrides["criterion"] = args.criterion
    if args.max_prompts is not None:
        overrides["max_prompts"] = args.max_prompts
    if not overrides:
        return base
    try:
        return WarmupConfig.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        source = f" (with {args.config})" if args.config else ""
        raise RecordInputError(f"invalid configuration{source}: {_one_line(exc)}") from None


def _parse_tags(items: Sequence[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RecordInputError(f"--tag expects KEY=VALUE, got {item!r}")
        tags[key] = value
    return tags


# ------------------------------------------------------------------ side channels


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence one logger's warnings (used while probing NVML in auto mode)."""
    log = logging.getLogger(logger_name)
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


def _open_nvml(mode: str, index: int) -> tuple[Any, str]:
    """An active NvmlSampler or None, and the status line for the summary."""
    if mode == "off":
        return None, "off: --nvml off"
    import importlib.util

    from llenergymeasure.core.timing import NvmlSampler

    if mode == "auto" and importlib.util.find_spec("pynvml") is None:
        return None, "off: pynvml is not installed (pip install 'llenergymeasure[gpu]')"
    if mode == "auto":
        with _quiet("llenergymeasure.core.timing"):
            sampler = NvmlSampler(index)
    else:
        sampler = NvmlSampler(index)
    if not sampler.active:
        if mode == "on":
            raise RecordInputError(f"--nvml on: NVML is not available ({sampler.status})")
        return None, sampler.status
    return sampler, sampler.status


def _with_nvml(fn: Callable[[], Any], sampler: Any) -> Callable[[], Any]:
    """Read the NVML side channels around each call of ``fn`` (server mode)."""

    def run() -> Any:
        before = sampler.snapshot()
        out = fn()
        after = sampler.snapshot()
        record = dict(out) if isinstance(out, Mapping) else {"latency_ms": out}
        record.update(sampler.fields(before, after))
        return record

    return run


def _cycle(fns: Sequence[Callable[[], Any]]) -> Callable[[], Any]:
    """Call the prompts' callables in turn; record ``prompt_index`` when there are several."""
    if len(fns) == 1:
        return fns[0]
    order = itertools.cycle(range(len(fns)))

    def run() -> Any:
        i = next(order)
        out = fns[i]()
        record = dict(out) if isinstance(out, Mapping) else {"latency_ms": out}
        record["prompt_index"] = i
        return record

    return run


# ------------------------------------------------------------------ sources


def _local_source(
    args: argparse.Namespace, prompts: Sequence[Prompt]
) -> tuple[Callable[[], Any], dict[str, Any], list[str]]:
    """The inference callable, model metadata and status lines for a local model."""
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec(
            "transformers") is None:
        raise RecordInputError("--model needs torch and transformers "
                               "(pip install 'llenergymeasure[torch]')")
    import torch

    from llenergymeasure.core.inference import create_warmup_inference_fn
    from llenergymeasure.core.timing import device_index, is_cuda_device

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if is_cuda_device(device) and not torch.cuda.is_available():
        raise RecordInputError(f"--device {args.device}: CUDA is not available")
    if args.model == "tiny":
        from llenergymeasure.core.tiny_model import build_tiny_causal_lm

        model, tokenizer = build_tiny_causal_lm(seed=0)
        name = "tiny"
    else:
        folder = Path(args.model)
        if not folder.is_dir():
            raise RecordInputError(
                f"--model: {folder} is not a folder (give 'tiny' or a local transformers "
                "model folder)"
            )
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise RecordInputError(f"--model: cannot load a causal LM from {folder}: "
                                   f"{_one_line(exc)}") from None
        model.eval()
        name = str(folder)
    model.to(device)
    on_cuda = is_cuda_device(device)
    if args.cuda_events == "on" and not on_cuda:
        raise RecordInputError(f"--cuda-events on needs a CUDA model; the model is on {device}")
    gpu_timing = args.cuda_events == "on" or (args.cuda_events == "auto" and on_cuda)

    texts = []
    for i, prompt in enumerate(prompts):
        if prompt.messages is None:
            texts.append(prompt.text)
            continue
        if not getattr(tokenizer, "chat_template", None):
            raise RecordInputError(
                f"--prompts: prompt {i + 1} has 'messages' but the tokenizer of {name} "
                "has no chat template"
            )
        texts.append(tokenizer.apply_chat_template(prompt.messages, tokenize=False,
                                                   add_generation_prompt=True))
    sampler, nvml_status = _open_nvml(args.nvml, device_index(device) if on_cuda else 0)
    args.nvml_sampler = sampler  # closed by the command when the run ends
    fns = [
        create_warmup_inference_fn(
            model, tokenizer, text, max_new_tokens=args.max_new_tokens, measure_ttft=True,
            count_tokens=True, gpu_timing=gpu_timing, nvml=sampler,
        )
        for text in texts
    ]
    meta = {"source": "transformers", "model": name, "device": str(device),
            "max_new_tokens": args.max_new_tokens, "n_prompts": len(prompts)}
    status = [f"CUDA events: {fns[0].gpu_timing_status}", f"NVML: {nvml_status}"]
    return _cycle(fns), meta, status


def _server_source(
    args: argparse.Namespace, prompts: Sequence[Prompt]
) -> tuple[Callable[[], Any], dict[str, Any], list[str]]:
    """The inference callable, model metadata and status lines for a server."""
    from llenergymeasure.core.openai_client import create_openai_inference_fn

    if args.served_model is None:
        raise RecordInputError("--base-url needs --served-model NAME (the model name the "
                               "server knows)")
    if args.cuda_events == "on":
        raise RecordInputError("--cuda-events on: CUDA events cannot time a model served by "
                               "another process")
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise RecordInputError(f"--api-key-env: environment variable {args.api_key_env} "
                                   "is not set")
    extra = None
    if args.extra_body is not None:
        try:
            extra = json.loads(args.extra_body)
        except json.JSONDecodeError as exc:
            raise RecordInputError(f"--extra-body is not JSON: {exc.msg}") from None
        if not isinstance(extra, dict):
            raise RecordInputError("--extra-body must be a JSON object")
    fns = []
    for prompt in prompts:
        if prompt.messages is None and args.endpoint == "completions":
            kwargs: dict[str, Any] = {"prompt": prompt.text}
        else:
            kwargs = {"messages": prompt.messages
                      or [{"role": "user", "content": prompt.text}]}
        fns.append(create_openai_inference_fn(
            args.base_url, args.served_model, max_tokens=args.max_new_tokens,
            stream=args.stream, timeout_s=args.timeout, api_key=api_key, extra_body=extra,
            **kwargs,
        ))
    sampler, nvml_status = _open_nvml(args.nvml, args.gpu_index)
    args.nvml_sampler = sampler  # closed by the command when the run ends
    fn = _cycle(fns)
    if sampler is not None:
        fn = _with_nvml(fn, sampler)
    meta = {"source": "openai-compatible server", "base_url": args.base_url,
            "served_model": args.served_model, "endpoint": args.endpoint,
            "max_tokens": args.max_new_tokens, "stream": args.stream,
            "n_prompts": len(prompts)}
    return fn, meta, [f"NVML: {nvml_status} (read on this machine)"]


# ------------------------------------------------------------------ the command


def _statistic(result: Any) -> str:
    if math.isnan(result.final_statistic):
        return "none evaluated"
    label = f"{result.statistic_label}=" if result.statistic_label else ""
    target = ("" if math.isnan(result.target_statistic)
              else f" (threshold {result.target_statistic:.6g})")
    return f"{label}{result.final_statistic:.6g}{target}"


def _print_result(result: Any, status_lines: Sequence[str]) -> None:
    print(f"status: {result.status}")
    print(f"criterion: {result.criterion}")
    print(f"iterations: {result.iterations_completed} successful of {result.attempts} attempts "
          f"(cap {result.max_prompts})")
    if result.failures:
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(result.failure_types.items()))
        print(f"failures: {result.failures} ({kinds})")
    if result.throttled_samples:
        print(f"throttled samples (kept out of the criterion): {result.throttled_samples}")
    print(f"stop reason: {result.stop_reason}")
    print(f"statistic: {_statistic(result)}")
    print(f"duration: {result.duration_s:.3f} s")
    for line in status_lines:
        print(line)
    if result.trace_path:
        from llenergymeasure.traces.io import load_trace

        trace = load_trace(result.trace_path)
        info = trace.run_info(trace.run_ids[0])
        for spec, dec in info.shadow.items():
            where = "no stop" if dec.stop_index is None else f"stop at sample {dec.stop_index}"
            print(f"shadow {spec}: {where}")
        print(f"trace: {result.trace_path} ({len(trace.data)} attempts)")


def cmd_record(args: argparse.Namespace) -> int:
    """Run ``llem-warmup record``; returns the exit code."""
    args.nvml_sampler = None
    try:
        return _record(args)
    except KeyboardInterrupt:
        from llenergymeasure.traces.io import partial_path_for

        out = Path(args.output)
        kept = out if out.exists() else partial_path_for(out)
        if kept.exists():
            print(f"llem-warmup record: interrupted; the trace so far is kept in {kept}",
                  file=sys.stderr)
        else:
            print("llem-warmup record: interrupted before recording started", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RecordInputError, ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"llem-warmup record: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a failure at run time: one line, never a traceback
        logger.debug("record failed", exc_info=True)
        print(f"llem-warmup record: failed: {type(exc).__name__}: {_one_line(exc)}",
              file=sys.stderr)
        return EXIT_FAILED
    finally:
        if args.nvml_sampler is not None:
            args.nvml_sampler.close()


def _record(args: argparse.Namespace) -> int:
    from llenergymeasure.core.warmup import warmup_until_converged
    from llenergymeasure.criteria.registry import make_criterion

    out = Path(args.output)
    if out.suffix.lower() not in (".jsonl", ".parquet", ".csv"):
        raise RecordInputError(f"-o {out}: the trace format comes from the suffix; use .jsonl, "
                               ".parquet or .csv")
    if out.exists() and not args.overwrite:
        raise RecordInputError(f"-o {out} exists; pass --overwrite to replace it")
    if args.record_after_stop < 0:
        raise RecordInputError(f"--record-after-stop must be >= 0, got {args.record_after_stop}")
    if args.max_new_tokens < 1:
        raise RecordInputError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if args.base_url is not None and args.model is not None:
        raise RecordInputError("give --model (a local model) or --base-url (a server), not both")
    if args.exclude_throttled and args.nvml == "off":
        raise RecordInputError("--exclude-throttled needs NVML; it cannot go with --nvml off")
    config = _build_config(args)
    for spec in args.shadow:
        make_criterion(spec)  # an unknown shadow criterion fails before any model is loaded
    if len(set(args.shadow)) != len(args.shadow):
        raise RecordInputError("a --shadow criterion is given twice")
    tags = _parse_tags(args.tag)
    prompts = read_prompts(args.prompts) if args.prompts else [Prompt(text=DEFAULT_PROMPT)]
    if args.base_url is not None:
        fn, meta, status_lines = _server_source(args, prompts)
    else:
        args.model = args.model or "tiny"
        fn, meta, status_lines = _local_source(args, prompts)
    throttle = None
    if args.exclude_throttled:
        if args.nvml_sampler is None:
            raise RecordInputError("--exclude-throttled needs the NVML side channels, which "
                                   f"are off ({status_lines[-1]})")
        from llenergymeasure.core.timing import ThrottleFilter

        throttle = ThrottleFilter.for_sampler(args.nvml_sampler)
    result = warmup_until_converged(
        fn, config, show_progress=not args.no_progress, trace_path=out,
        shadow_criteria=list(args.shadow), record_after_stop=args.record_after_stop,
        model=meta, tags=tags, run_id=args.run_id, overwrite=args.overwrite, throttle=throttle,
    )
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        _print_result(result, status_lines)
    return EXIT_FAILED if result.status == "all_failed" else EXIT_OK


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``record`` subcommand."""
    p = subparsers.add_parser(
        "record",
        help="Record a warmup trace from a local transformers model or an OpenAI-compatible "
             "server.",
        description="Run warmup until the criterion stops it (or the cap), recording every "
                    "attempt to a trace. Exit codes: 0 recorded, 1 every attempt failed or a "
                    "run-time failure, 2 bad input, 130 interrupted (the trace is kept).",
    )
    p.add_argument("-o", "--output", required=True, metavar="TRACE",
                   help="Trace file to write (.jsonl, .parquet or .csv).")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing TRACE.")
    src = p.add_argument_group("what to run")
    src.add_argument("--model", default=None, metavar="tiny|PATH",
                     help="Local model: 'tiny' (built-in, the default) or a transformers model "
                          "folder (loaded with local_files_only).")
    src.add_argument("--device", default="auto",
                     help="Device of a local model: auto (CUDA when available), cpu, cuda, "
                          "cuda:N.")
    src.add_argument("--base-url", default=None, metavar="URL",
                     help="OpenAI-compatible server, e.g. http://127.0.0.1:8000 (/v1 optional).")
    src.add_argument("--served-model", default=None, metavar="NAME",
                     help="The model name the server knows (the requests' 'model' field).")
    src.add_argument("--endpoint", choices=("chat", "completions"), default="chat",
                     help="Where text prompts go: /v1/chat/completions as a user message "
                          "(default) or /v1/completions; 'messages' prompts always go to chat.")
    src.add_argument("--no-stream", dest="stream", action="store_false",
                     help="Non-streamed requests (no TTFT or inter-token latencies).")
    src.add_argument("--timeout", type=_positive_float, default=60.0, metavar="S",
                     help="Limit per request in seconds (default 60).")
    src.add_argument("--api-key-env", default=None, metavar="VAR",
                     help="Environment variable holding the API key (sent as a Bearer token).")
    src.add_argument("--extra-body", default=None, metavar="JSON",
                     help="JSON object merged into every request, e.g. '{\"ignore_eos\": true}'.")
    src.add_argument("--prompts", default=None, metavar="FILE",
                     help="Prompts, used in turn: one per line, or JSONL (.jsonl) objects with "
                          f"a 'prompt' or 'messages' field. Default: {DEFAULT_PROMPT!r}.")
    src.add_argument("--max-new-tokens", type=int, default=32, metavar="N",
                     help="Tokens generated per attempt (server: max_tokens). Default 32.")
    run = p.add_argument_group("warmup")
    run.add_argument("--config", default=None, metavar="FILE",
                     help="WarmupConfig file (.yaml, .yml or .json); the options below "
                          "override it.")
    run.add_argument("--criterion", default=None, metavar="SPEC",
                     help="Criterion spec, e.g. 'rolling_cv:window=8,threshold=0.02'.")
    run.add_argument("--max-prompts", type=int, default=None, metavar="N",
                     help="Attempt cap (WarmupConfig.max_prompts).")
    run.add_argument("--shadow", action="append", default=[], metavar="SPEC",
                     help="Shadow criterion recorded beside the real one (repeatable).")
    run.add_argument("--record-after-stop", type=int, default=0, metavar="N",
                     help="Keep recording N attempts after the stop.")
    run.add_argument("--nvml", choices=("auto", "on", "off"), default="auto",
                     help="NVML power, energy, temperature and clocks around each attempt: "
                          "auto (when pynvml and a GPU are present), on (fail without), off.")
    run.add_argument("--exclude-throttled", action="store_true",
                     help="NVBench-style: flag samples taken while NVML reports a throttle "
                          "reason or the SM clock is below 75%% of its maximum, and keep them "
                          "out of the criterion (needs NVML).")
    run.add_argument("--cuda-events", choices=("auto", "on", "off"), default="auto",
                     help="CUDA-event GPU time (local CUDA model only): auto, on, off.")
    run.add_argument("--gpu-index", type=int, default=0, metavar="I",
                     help="NVML device index in server mode (default 0).")
    run.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                     help="Free-form tag stored in the trace (repeatable).")
    run.add_argument("--run-id", default=None, help="Run identifier (default: time + random).")
    run.add_argument("--no-progress", action="store_true", help="No progress bar.")
    run.add_argument("--json", action="store_true", help="Print the result as JSON.")
    p.set_defaults(func=cmd_record)
