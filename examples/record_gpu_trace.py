"""Record a warmup trace of a ~1B-parameter decoder-only model on a GPU, with NVML side channels.

On CUDA the model is a Llama-architecture causal LM of about 1.1 billion
parameters (the TinyLlama-1.1B shape: 22 layers, width 2048, 32 heads with 4
key-value heads, MLP 5632, vocabulary 32000) built from a config with random
weights directly on the GPU in bfloat16: nothing is downloaded. The tokenizer
is the word-level one built in code by
:func:`llenergymeasure.core.tiny_model.build_tiny_tokenizer`; a random-weight
model does not care what its tokens mean, and every call generates exactly
``--max-new-tokens`` tokens, so the work per attempt is fixed.

Each attempt records, besides the wall latency (CUDA-synchronised
``perf_counter_ns``): the CUDA-event GPU time, the time to first token,
token counts, and NVML power, energy (counter delta), temperature, SM and
memory clocks and throttle reasons. The run is a 300-attempt warmup: the
rolling-CV criterion decides the stop, a few other criteria ride along as
shadows, and the driver keeps measuring after the stop (``record_after_stop``)
so the trace shows the steady state the stop claimed.

Without CUDA it runs the tiny 2-layer GPT-2 for a few attempts instead; the
NVML and GPU-time fields are then absent and the script says why.

Run: ``python examples/record_gpu_trace.py [--out trace.parquet] [--attempts N]``
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from llenergymeasure import WarmupConfig, warmup_until_converged
from llenergymeasure.core.inference import create_warmup_inference_fn
from llenergymeasure.core.timing import NvmlSampler
from llenergymeasure.traces import Trace, load_trace

logger = logging.getLogger("record_gpu_trace")

#: The TinyLlama-1.1B shape (about 1.1e9 parameters).
LLAMA_1B = {
    "vocab_size": 32000,
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
}

SHADOWS = ("nvbench_stdrel", "mser5", "pyperf_halves", "rolling_cv:window=10,threshold=0.02")

PROMPT_WORDS = (
    "measure the latency and energy of inference on the gpu while the clock and the "
    "temperature of the kernel cache converge to a steady state"
)


def build_llama_1b(device: Any) -> tuple[Any, Any, dict[str, Any]]:
    """A random-weight ~1.1B Llama causal LM in bfloat16 on ``device``, and a tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llenergymeasure.core.tiny_model import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(
        **LLAMA_1B,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # initialise the weights in bf16, on the GPU
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    summary = {
        "name": "llama-1.1b-random",
        "architecture": "LlamaForCausalLM",
        "parameters": int(n_params),
        "dtype": "bfloat16",
        "device": str(device),
        **{k: int(v) if isinstance(v, int) else v for k, v in LLAMA_1B.items()},
    }
    return model, tokenizer, summary


def build_tiny(device: Any) -> tuple[Any, Any, dict[str, Any]]:
    """The 2-layer GPT-2 of width 32 (the CPU stand-in)."""
    from llenergymeasure.core.tiny_model import build_tiny_causal_lm

    model, tokenizer = build_tiny_causal_lm(seed=0)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    return model, tokenizer, {
        "name": "tiny-gpt2-random", "architecture": "GPT2LMHeadModel",
        "parameters": int(n_params), "dtype": "float32", "device": str(device),
    }


def settled_index(values: np.ndarray, tolerance: float) -> int | None:
    """First index from which every value stays within ``tolerance`` of the final level.

    The final level is the median of the last quarter of the series. None
    when there are no finite values.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    final = float(np.median(x[-max(1, len(x) // 4):]))
    outside = np.flatnonzero(np.abs(x - final) > tolerance)
    return 0 if len(outside) == 0 else int(outside[-1]) + 1


def report(trace: Trace, result: Any, nvml_status: str, gpu_status: str) -> None:
    """Print first-call and steady latency, and when clocks and temperature settled."""
    lat = trace.samples()
    times = trace.sample_times_s()
    stop = trace.run_info().stop_index
    steady = lat[stop:] if stop is not None and stop < len(lat) else lat[-max(1, len(lat) // 4):]
    print(f"trace: {result.trace_path}")
    print(f"status: {result.status} ({result.stop_reason})")
    print(f"attempts recorded: {len(trace)}; stop at sample {stop}")
    print(f"first-call latency: {lat[0]:.2f} ms")
    print(f"steady latency: median {np.median(steady):.2f} ms over {len(steady)} samples "
          f"(first call / steady = {lat[0] / np.median(steady):.1f}x)")
    data = trace.data[trace.data["ok"].to_numpy(dtype=bool)]
    for col, tol, unit in (("sm_clock_mhz", 15.0, "MHz"), ("mem_clock_mhz", 15.0, "MHz"),
                           ("temperature_c", 1.0, "degC"), ("power_w", 10.0, "W")):
        if col not in data.columns or data[col].isna().all():
            print(f"{col}: not recorded ({nvml_status})")
            continue
        x = data[col].to_numpy(dtype=np.float64, na_value=np.nan)
        i = settled_index(x, tol)
        if i is None:
            print(f"{col}: no reading")
        else:
            print(f"{col}: {x[0]:.0f} -> {np.nanmedian(x[-max(1, len(x) // 4):]):.0f} {unit}, "
                  f"settled (within {tol:g} {unit}) from sample {i} at {times[i]:.1f} s")
    if "gpu_time_ms" in data.columns and data["gpu_time_ms"].notna().any():
        g = data["gpu_time_ms"].to_numpy(dtype=np.float64, na_value=np.nan)
        steady_g = np.nanmedian(g[-len(steady):])
        print(f"gpu time: first {g[0]:.2f} ms, steady median {steady_g:.2f} ms")
    else:
        print(f"gpu_time_ms: not recorded ({gpu_status})")
    for spec, shadow in trace.run_info().shadow.items():
        print(f"shadow {spec}: stop at {shadow.stop_index} ({shadow.reason})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="trace file (.parquet, .jsonl or .csv); default "
                             "traces/record_gpu_trace-<device>.parquet")
    parser.add_argument("--attempts", type=int, default=None,
                        help="max attempts (default 300 on CUDA, 40 on CPU)")
    parser.add_argument("--after-stop", type=int, default=None,
                        help="attempts recorded after the stop (default 100 on CUDA, 10 on CPU)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="tokens per generation (default 64 on CUDA, 8 on CPU)")
    parser.add_argument("--cpu", action="store_true", help="use the CPU path even with CUDA")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import torch

    on_cuda = torch.cuda.is_available() and not args.cpu
    device = torch.device("cuda", 0) if on_cuda else torch.device("cpu")
    attempts = args.attempts or (300 if on_cuda else 40)
    after = args.after_stop if args.after_stop is not None else (100 if on_cuda else 10)
    new_tokens = args.max_new_tokens or (64 if on_cuda else 8)
    out = args.out or Path("traces") / f"record_gpu_trace-{device.type}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    if on_cuda:
        model, tokenizer, summary = build_llama_1b(device)
    else:
        logger.warning("no CUDA device: running the tiny CPU model for %d attempts", attempts)
        model, tokenizer, summary = build_tiny(device)
    print(f"model: {summary['name']}, {summary['parameters'] / 1e6:.1f}M parameters, "
          f"{summary['dtype']} on {device} (built in {time.perf_counter() - t0:.1f} s)")

    sampler = NvmlSampler(device.index or 0)
    print(f"NVML: {sampler.status}")
    prompt = " ".join([PROMPT_WORDS] * (4 if on_cuda else 1))
    infer = create_warmup_inference_fn(
        model, tokenizer, prompt, max_new_tokens=new_tokens, measure_ttft=True,
        count_tokens=True, gpu_timing=True, nvml=sampler,
    )
    config = WarmupConfig(
        max_prompts=attempts,
        min_prompts=10 if on_cuda else 5,
        criterion="rolling_cv:window=10,threshold=0.01" if on_cuda else None,
        cv_threshold=0.05,
        window_size=5,
    )
    try:
        result = warmup_until_converged(
            infer, config, show_progress=True, trace_path=out, shadow_criteria=SHADOWS,
            record_after_stop=after, model=summary,
            tags={"example": "record_gpu_trace", "nvml": sampler.status,
                  "gpu_timing": infer.gpu_timing_status},
        )
    finally:
        sampler.close()
    trace = load_trace(result.trace_path)
    report(trace, result, infer.nvml_status, infer.gpu_timing_status)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
