"""Warm up a tiny transformers model on the CPU and print the WarmupResult.

The model is a 2-layer GPT-2 of width 32 built from a config with random
weights and a tokenizer built in code, so nothing is downloaded.

Run: ``python examples/warmup_tiny_model.py``
"""

from __future__ import annotations

import logging

from llenergymeasure import WarmupConfig, create_warmup_inference_fn, warmup_until_converged
from llenergymeasure.core.tiny_model import build_tiny_causal_lm


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model, tokenizer = build_tiny_causal_lm(seed=0)
    infer = create_warmup_inference_fn(
        model, tokenizer, "measure the latency and energy of inference", max_new_tokens=16
    )
    config = WarmupConfig(cv_threshold=0.05, max_prompts=60, window_size=5, min_prompts=5)
    result = warmup_until_converged(infer, config)
    print(result.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
