"""Decoder-only models (GPT-2 class) behind the same interface as :class:`harness.lm.Seq2SeqLM`.

The source and the response are one sequence: ``[source … EOS][y_1 … y_T]``. Sources are
moved to the left edge of the batch (left padding), so that every response starts in the
same column S and the logits at columns S−1 … S+T−2 are q(y_t | y_<t, x) for t = 1 … T.
Only those positions are returned: the source is context, never a target, and the first
response token is predicted from the source's last token (the EOS that ends it). Position
ids count real tokens only, so left padding does not shift them.

There is no encoder to share: :meth:`CausalLM.encode` only re-pads the sources, and each
forward pass runs over source + prefix. (A KV cache of the source could be shared the way
encoder outputs are; with sources of a few dozen tokens it is not worth its complexity.)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import nn

from ..config import DecodeConfig
from .base import Prefix, generate_exactly, generation_config, sequences_to_prefix


@dataclass
class CausalSource:
    """Left-padded sources: the decoder-only counterpart of an encoder pass (no compute)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    outputs: object = None   # hidden_states=None: no encoder stack (pre-distillation skips it)


def left_align(ids: torch.Tensor, mask: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's real tokens (mask 1) to the right edge: right padding → left padding."""
    lengths = mask.sum(dim=1)
    width = ids.shape[1]
    shift = width - lengths                                          # pads to put in front, per row
    cols = torch.arange(width, device=ids.device).unsqueeze(0)
    src_cols = (cols - shift.unsqueeze(1)).clamp_min(0)
    aligned = torch.gather(ids, 1, src_cols)
    new_mask = (cols >= shift.unsqueeze(1)).long()
    return aligned.masked_fill(new_mask == 0, pad_id), new_mask


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count real tokens only (left pads and response pads do not advance them)."""
    return (mask.long().cumsum(dim=1) - 1).clamp_min(0)


class CausalLM:
    """Decoder-only adapter: score or extend responses after a source."""

    architecture = "decoder-only"

    def __init__(self, model: nn.Module, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_id = tokenizer.eos_token_id
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters

    def encode(self, source_ids: torch.Tensor, source_mask: torch.Tensor, hidden_states: bool = False) -> CausalSource:
        ids, mask = left_align(source_ids, source_mask, self.pad_id)
        return CausalSource(ids, mask, SimpleNamespace(hidden_states=None))

    def forward(self, enc: CausalSource, prefix: Prefix, repeat: int = 1, hidden_states: bool = False):
        """``logits[b, t]`` predicts y_t of ``prefix`` (teacher forcing); also the matching hidden states.

        Returns an object with ``logits`` [B, T, V] and ``decoder_hidden_states`` (a tuple of
        [B, T, d] per layer, embeddings first, or None), aligned with the prefix like an
        encoder-decoder's decoder outputs.
        """
        src_ids, src_mask = enc.input_ids, enc.attention_mask
        if repeat > 1:
            src_ids, src_mask = src_ids.repeat(repeat, 1), src_mask.repeat(repeat, 1)
        width = src_ids.shape[1]
        n_out = prefix.tokens.shape[1]
        response = prefix.tokens.masked_fill(prefix.mask == 0, self.pad_id)[:, :-1]   # y_T is never an input
        input_ids = torch.cat([src_ids, response], dim=1)
        mask = torch.cat([src_mask, prefix.mask[:, :-1].to(src_mask.dtype)], dim=1)
        # The response positions are the last n_out: the LM head runs on them alone (the source's logits are
        # never used, and on dialogue the source is most of the sequence).
        keep = {"logits_to_keep": n_out} if self._keeps_logits else {}
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions(mask),
                         output_hidden_states=hidden_states, return_dict=True, use_cache=False, **keep)
        span = slice(width - 1, width - 1 + n_out)
        states = tuple(h[:, span] for h in out.hidden_states) if hidden_states else None
        logits = out.logits if keep else out.logits[:, span]
        if logits.shape[1] != n_out:
            raise RuntimeError(f"the model returned logits for {logits.shape[1]} positions, not the {n_out} asked")
        return SimpleNamespace(logits=logits, decoder_hidden_states=states)

    @torch.no_grad()
    def generate(self, enc: CausalSource, decode: DecodeConfig) -> Prefix:
        """Continue each source; returns only the new tokens, as a :class:`Prefix`."""
        gen = generation_config(decode, pad_id=self.pad_id, eos_id=self.eos_id, bos_id=self.tokenizer.bos_token_id)
        # generate() derives position ids from the attention mask itself, as forward() does.
        out = generate_exactly(self.model, gen, input_ids=enc.input_ids, attention_mask=enc.attention_mask)
        return sequences_to_prefix(out[:, enc.input_ids.shape[1]:], self.eos_id, self.pad_id)
