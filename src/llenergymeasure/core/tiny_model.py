"""A tiny transformers causal LM built entirely in code: no download, random weights.

Used by the examples, the demo and the tests to exercise the real
``generate`` path on a CPU in milliseconds.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TINY_VOCAB", "build_tiny_causal_lm", "build_tiny_tokenizer"]

#: Words of the tiny word-level vocabulary (plus the special tokens).
TINY_VOCAB = (
    "the a an of to in on for with and or is are was be model gpu warmup latency energy "
    "power token prompt inference steady state measure time fast slow cache kernel clock "
    "temperature run stop rule window sample trace replay criterion converge"
).split()


def build_tiny_tokenizer() -> Any:
    """A word-level ``PreTrainedTokenizerFast`` built with the ``tokenizers`` library.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        Lower-cased whitespace tokenizer with ``[UNK]``, ``[PAD]``, ``[BOS]`` and
        ``[EOS]`` special tokens.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["[UNK]", "[PAD]", "[BOS]", "[EOS]"]
    vocab = {tok: i for i, tok in enumerate(specials + list(TINY_VOCAB))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )


def build_tiny_causal_lm(
    *, n_layer: int = 2, n_embd: int = 32, n_head: int = 2, n_positions: int = 256, seed: int = 0,
    pad_token: bool = True,
) -> tuple[Any, Any]:
    """A GPT-2 causal LM of a few layers with random weights, and its tokenizer.

    Parameters
    ----------
    n_layer, n_embd, n_head, n_positions : int
        GPT-2 configuration (defaults: 2 layers of width 32).
    seed : int, default 0
        Seed of the weight initialisation.
    pad_token : bool, default True
        False removes the tokenizer's pad token (to exercise the fallback to
        EOS in :func:`~llenergymeasure.core.inference.create_warmup_inference_fn`).

    Returns
    -------
    model, tokenizer
        ``GPT2LMHeadModel`` in eval mode on the CPU, and a
        ``PreTrainedTokenizerFast``.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_tiny_tokenizer()
    if not pad_token:
        tokenizer.pad_token = None
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config).eval()
    return model, tokenizer
