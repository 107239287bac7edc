"""Encoder-decoder adapter: the encoder runs once per batch and its output is shared
by generation and by every loss term."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..config import DecodeConfig
from .base import Encoded, Prefix, generate_exactly, generation_config, sequences_to_prefix


@functools.cache
def _shared_cross_attention_cache():
    from transformers import EncoderDecoderCache

    class SharedCrossAttentionCache(EncoderDecoderCache):
        def reorder_cache(self, beam_idx: torch.LongTensor):
            self.self_attention_cache.reorder_cache(beam_idx)

    return SharedCrossAttentionCache


def beam_search_cache(model: nn.Module):
    """An encoder-decoder KV cache whose beam reordering leaves the cross-attention keys and values alone.

    Beam search only moves beams within one input, and every beam of an input holds the same
    cross-attention keys and values (one encoder output, repeated), so transformers' reordering of them
    at every step (an ``index_select`` of the whole source-length cache per layer) copies rows onto
    equal rows. Skipping it changes no output and was the largest single cost of beam search here.
    """
    from transformers import DynamicCache

    config = model.config.get_text_config(decoder=True)
    return _shared_cross_attention_cache()(DynamicCache(config=config), DynamicCache(config=config))


class Seq2SeqLM:
    """Encoder-decoder adapter: encode once, then score or extend target prefixes."""

    def __init__(self, model: nn.Module, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id
        self.eos_id = tokenizer.eos_token_id
        self.start_id = model.config.decoder_start_token_id

    def encode(self, source_ids: torch.Tensor, source_mask: torch.Tensor, hidden_states: bool = False) -> Encoded:
        outputs = self.model.get_encoder()(input_ids=source_ids, attention_mask=source_mask,
                                           output_hidden_states=hidden_states, return_dict=True)
        return Encoded(outputs, source_mask)

    def shift_right(self, tokens: torch.Tensor) -> torch.Tensor:
        start = tokens.new_full((tokens.shape[0], 1), self.start_id)
        return torch.cat([start, tokens[:, :-1]], dim=1)

    def forward(self, enc: Encoded, prefix: Prefix, repeat: int = 1, hidden_states: bool = False):
        """Logits for every position of ``prefix`` (teacher forcing): ``logits[b, t]`` predicts y_t.

        ``repeat`` > 1 scores several prefix sets of the same sources in one pass: the
        encoder output is tiled instead of recomputed.
        """
        from transformers.modeling_outputs import BaseModelOutput

        hidden = enc.outputs.last_hidden_state
        mask = enc.attention_mask
        if repeat > 1:
            hidden = hidden.repeat(repeat, 1, 1)
            mask = mask.repeat(repeat, 1)
        decoder_input = self.shift_right(prefix.tokens.masked_fill(prefix.mask == 0, self.pad_id))
        decoder_mask = self.shift_right(prefix.mask)
        decoder_mask[:, 0] = 1
        return self.model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask,
                          decoder_input_ids=decoder_input, decoder_attention_mask=decoder_mask,
                          output_hidden_states=hidden_states, return_dict=True, use_cache=False)

    returns_sampling_logits = True   # generate(..., return_logits=True) is supported (the engine checks this)

    @torch.no_grad()
    def generate(self, enc: Encoded, decode: DecodeConfig, return_logits: bool = False) -> Prefix:
        """Decode from a shared encoder pass (KV cache on); returns the generated tokens as a :class:`Prefix`.

        ``return_logits`` with a single beam also returns the raw (unprocessed) logits that
        each token was drawn from, in ``Prefix.logits``; they equal a teacher-forced
        forward pass over the returned tokens up to float error. With several beams the
        per-step logits belong to beams that are reordered and pruned, not to the returned
        sequences, so none are returned (``logits`` stays None) and callers score the
        tokens with :meth:`forward` instead.
        """
        from transformers.modeling_outputs import BaseModelOutput

        gen = generation_config(decode, pad_id=self.pad_id, eos_id=self.eos_id,
                                bos_id=self.tokenizer.bos_token_id, start_id=self.start_id)
        keep = return_logits and decode.num_beams == 1
        gen.use_cache = True
        gen.return_dict_in_generate = keep
        gen.output_logits = keep
        cache = beam_search_cache(self.model) if decode.num_beams > 1 else None
        beams = {"cache": cache} if cache is not None else {}
        out = generate_exactly(
            self.model, gen, encoder_outputs=BaseModelOutput(last_hidden_state=enc.outputs.last_hidden_state.detach()),
            attention_mask=enc.attention_mask, **beams,
        )
        sequences = out.sequences if keep else out
        prefix = sequences_to_prefix(sequences[:, 1:], self.eos_id, self.pad_id)
        if keep:
            logits = torch.stack(out.logits, dim=1) if out.logits else sequences.new_zeros(
                (sequences.shape[0], 0, self.model.config.vocab_size), dtype=torch.float32)
            if logits.shape[1] != prefix.tokens.shape[1]:
                raise RuntimeError(f"generate returned {logits.shape[1]} logit steps for "
                                   f"{prefix.tokens.shape[1]} tokens")
            prefix.logits = logits
        return prefix
