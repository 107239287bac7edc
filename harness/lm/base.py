"""What the step engine sees of a model, whatever its architecture.

:class:`Prefix` (target-side tokens), :class:`Encoded` (one encoder pass shared by
sampling and every loss term), and the generation helpers both adapters use
(:mod:`harness.lm.seq2seq`, :mod:`harness.lm.causal`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import DecodeConfig


@dataclass
class Prefix:
    """Target-side token sequences: ``tokens[b, t]`` is y_t; ``mask`` marks real tokens (EOS included).

    ``logits``, when set, holds the raw next-token logits [B, T, V] of the model that
    sampled the tokens (``logits[b, t]`` predicts y_t), kept so that nobody has to run
    that model over its own samples again.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    logits: torch.Tensor | None = None


@dataclass
class Encoded:
    """One encoder pass over a batch of sources, shared by sampling and every loss term."""

    outputs: object          # transformers BaseModelOutput
    attention_mask: torch.Tensor


def generation_config(decode: DecodeConfig, *, pad_id: int, eos_id: int, bos_id: int | None,
                      start_id: int | None = None):
    """A transformers ``GenerationConfig`` for ``decode`` (the same settings for every architecture)."""
    from transformers import GenerationConfig

    # Filters only mean something when sampling (transformers warns about them otherwise); top_k 0 and
    # top_p 1.0 switch off the library's defaults (top_k 50), so a DecodeConfig is the whole recipe.
    sampling = dict(top_k=decode.top_k or 0, top_p=decode.top_p if decode.top_p is not None else 1.0) \
        if decode.do_sample else {}
    return GenerationConfig(
        num_beams=decode.num_beams, do_sample=decode.do_sample, **sampling, length_penalty=decode.length_penalty,
        max_new_tokens=decode.max_new_tokens, min_new_tokens=decode.min_new_tokens or None,
        no_repeat_ngram_size=decode.no_repeat_ngram_size,
        early_stopping=True if decode.num_beams > 1 else False, pad_token_id=pad_id,
        eos_token_id=eos_id, decoder_start_token_id=start_id, bos_token_id=bos_id,
    )


def generate_exactly(model, gen, **inputs):
    """``model.generate(**inputs)`` with the settings of ``gen`` and no others.

    transformers fills every field that ``gen`` leaves unset from the model's own generation config, so
    a hub model's (a minimum length, a forced BOS, a no-repeat size, sampling filters) would silently join
    the recipe; that config is set aside for the call. Models built here carry only token ids in theirs,
    which ``gen`` sets anyway.
    """
    from transformers import GenerationConfig

    own = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        return model.generate(**inputs, generation_config=gen)
    finally:
        model.generation_config = own


def sequences_to_prefix(tokens: torch.Tensor, eos_id: int, pad_id: int) -> Prefix:
    """Mask everything after the first EOS; a sequence with no EOS keeps all its tokens."""
    is_eos = tokens == eos_id
    after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    mask = (~after_eos).long()
    if tokens.shape[1] == 0:
        mask = torch.zeros_like(tokens)
    return Prefix(tokens.masked_fill(mask == 0, pad_id), mask)
