"""The ``bare`` execution mode: the floor the bench measures the other modes against.

Only the model calls a method cannot avoid, as straight-line ``transformers`` calls:
its sampling calls, one student encoder and one student decoder pass over all prefix
sets (with backward), and one teacher encoder and decoder pass where the teacher's
logits are needed and did not come out of sampling. No adapters, no bookkeeping; the
prefix sources, the stacking of prefix sets and the loss itself are the shared ones
(:mod:`harness.step.prefixes`, :mod:`harness.step.loss`), so the loss is the fast
step's (``tests/test_bench.py`` checks it). Encoder-decoder models only.
"""

from __future__ import annotations

import torch

from ..config import DecodeConfig
from ..data import Batch
from ..lm import Prefix, Seq2SeqLM, generate_exactly, generation_config, sequences_to_prefix
from ..methods.base import Method
from .loss import autocast, combine, frozen
from .prefixes import ONLINE_SOURCES, batch_prefix, decode_config, keeps_teacher_logits, stack_prefixes


def bare_loss(method: Method, student: Seq2SeqLM, teacher: Seq2SeqLM | None, batch: Batch,
              sampling: DecodeConfig, layer_map: dict | None = None, *,
              autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The method's loss from its unavoidable model calls only (same signature as the fast step's, less
    ``collect``). Sampling runs under ``torch.inference_mode``; the teacher's encoder and decoder passes
    under ``torch.no_grad`` (their outputs need no copy), but a teacher decoder that reads the student's
    encoder output runs with gradient into it, its parameters frozen."""
    from transformers.modeling_outputs import BaseModelOutput

    sources = list(method.active_prefix_weights())
    hidden = method.needs_hidden_states
    s_model, t_model = student.model, teacher.model if teacher is not None else None
    src, src_mask, n = batch.source_ids, batch.source_mask, len(batch)
    with autocast(src.device, autocast_dtype):
        s_enc = s_model.get_encoder()(input_ids=src, attention_mask=src_mask, output_hidden_states=hidden)
        t_enc = None
        if method.needs_teacher:
            with torch.no_grad():
                t_enc = t_model.get_encoder()(input_ids=src, attention_mask=src_mask, output_hidden_states=hidden)

        prefixes: dict[str, Prefix] = {}
        for s in sources:
            if s not in ONLINE_SOURCES:
                prefixes[s] = batch_prefix(s, batch)
                continue
            model, enc = (t_model, t_enc) if s == "teacher_sample" else (s_model, s_enc)
            decode = decode_config(s, sampling)
            gen = generation_config(decode, pad_id=student.pad_id, eos_id=student.eos_id,
                                    bos_id=student.tokenizer.bos_token_id, start_id=student.start_id)
            with_logits = s == "teacher_sample" and keeps_teacher_logits(method) and decode.num_beams == 1
            gen.return_dict_in_generate = gen.output_logits = with_logits
            with torch.inference_mode():
                encoded = BaseModelOutput(last_hidden_state=enc.last_hidden_state.detach())
                out = generate_exactly(model, gen, encoder_outputs=encoded, attention_mask=src_mask)
            # ops outside inference mode turn its tensors into ordinary ones (safe to save for backward)
            seq = (out.sequences if with_logits else out)[:, 1:].clone()
            prefixes[s] = sequences_to_prefix(seq, student.eos_id, student.pad_id)
            if with_logits:
                prefixes[s].logits = torch.stack(out.logits, dim=1)

        def decoder_pass(model, enc, names):
            """Teacher forcing over the prefix sets ``names``, stacked; the encoder output tiled."""
            stacked = stack_prefixes([prefixes[s] for s in names], student.pad_id)
            tokens = stacked.tokens.masked_fill(stacked.mask == 0, student.pad_id)
            start = tokens.new_full((tokens.shape[0], 1), student.start_id)
            ids = torch.cat([start, tokens[:, :-1]], dim=1)
            dec_mask = torch.cat([torch.ones_like(stacked.mask[:, :1]), stacked.mask[:, :-1]], dim=1)
            k = len(names)
            return model(encoder_outputs=BaseModelOutput(last_hidden_state=enc.last_hidden_state.repeat(k, 1, 1)),
                         attention_mask=src_mask.repeat(k, 1), decoder_input_ids=ids, decoder_attention_mask=dec_mask,
                         output_hidden_states=hidden, use_cache=False)

        s_out = decoder_pass(s_model, s_enc, sources)
        t_logits: dict[str, torch.Tensor | None] = {s: prefixes[s].logits for s in sources}
        t_out = None
        if method.uses_teacher:
            unscored = [s for s in sources if t_logits[s] is None]
            if unscored:
                if method.teacher_reads_student_encoder:
                    with frozen(t_model):
                        t_out = decoder_pass(t_model, s_enc, unscored)
                else:
                    with torch.no_grad():
                        t_out = decoder_pass(t_model, t_enc, unscored)
                for i, s in enumerate(unscored):
                    t_logits[s] = t_out.logits[i * n:(i + 1) * n, :prefixes[s].tokens.shape[1]]

        per_source = s_out.logits.split(n)
        token_losses = {s: method.token_loss(per_source[i][:, :prefixes[s].tokens.shape[1]], t_logits[s],
                                             prefixes[s].tokens, s) for i, s in enumerate(sources)}
        extra = None
        if hidden:
            teacher_states = None if t_out is None else {"encoder": t_enc.hidden_states,
                                                          "decoder": t_out.decoder_hidden_states}
            extra = method.extra_loss({"encoder": s_enc.hidden_states, "decoder": s_out.decoder_hidden_states},
                                      teacher_states, batch, layer_map)
        return combine(method, token_losses, {s: prefixes[s].mask for s in sources}, extra)
