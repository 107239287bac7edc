"""Models and tokenizers: build from a config or load pretrained; students by layer copy.

:class:`Seq2SeqLM` wraps a transformers encoder-decoder behind the few calls the
step engine needs, so that the encoder runs once per batch and its output is shared
by generation and by every loss term.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import DecodeConfig, ModelConfig

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]

# Layer maps of Shleifer & Rush (2020) for the teacher/student depths the paper uses;
# other depths fall back to evenly spaced layers that keep the first and the last.
LAYERS_TO_COPY = {
    6: {1: [0], 2: [0, 5], 3: [0, 2, 5], 4: [0, 1, 3, 5], 6: [0, 1, 2, 3, 4, 5]},
    12: {1: [0], 2: [0, 6], 3: [0, 6, 11], 4: [0, 4, 8, 11], 6: [0, 2, 4, 7, 9, 11],
         9: [0, 1, 2, 4, 5, 7, 9, 10, 11], 12: list(range(12))},
    24: {1: [0], 4: [0, 8, 16, 23]},
}
LAYERS_TO_SUPERVISE = {
    6: {1: [5], 2: [3, 5], 3: [1, 4, 5], 4: [1, 2, 4, 5]},
    12: {1: [11], 2: [5, 11], 3: [3, 7, 11], 6: [1, 3, 5, 8, 10, 11]},
}


def layers_to_copy(n_teacher: int, n_student: int) -> list[int]:
    if n_student > n_teacher:
        raise ValueError(f"student has more layers ({n_student}) than the teacher ({n_teacher})")
    if n_student in LAYERS_TO_COPY.get(n_teacher, {}):
        return LAYERS_TO_COPY[n_teacher][n_student]
    if n_student == 1:
        return [0]
    return [round(i * (n_teacher - 1) / (n_student - 1)) for i in range(n_student)]


def layers_to_supervise(n_teacher: int, n_student: int) -> list[int]:
    """Teacher layer whose output student layer i imitates: the end of the block it replaces."""
    if n_student in LAYERS_TO_SUPERVISE.get(n_teacher, {}):
        return LAYERS_TO_SUPERVISE[n_teacher][n_student]
    return [round((i + 1) * n_teacher / n_student) - 1 for i in range(n_student)]


# ---------------------------------------------------------------- tokenizers

def train_tokenizer(texts, vocab_size: int):
    """A BPE tokenizer (Metaspace pre-tokenizer, lossless decoding) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _pretrained_error(kind: str, name: str, err: Exception):
    from .registry import HarnessError

    return HarnessError(
        f"could not load the pretrained {kind} {name!r} ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
        f"Offline? Point teacher.pretrained at a local folder written by save_pretrained (model and tokenizer)")


def load_tokenizer(path: str | Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise _pretrained_error("tokenizer", str(path), err) from err
    if tok.pad_token is None:  # GPT-2 / DialoGPT ship none; padding is always masked, so EOS serves
        tok.pad_token = tok.eos_token
    return tok


# ---------------------------------------------------------------- models

FAMILIES = ("t5", "bart", "gpt2")
DECODER_ONLY_FAMILIES = frozenset({"gpt2"})


def build_model(cfg: ModelConfig, tokenizer) -> nn.Module:
    """The teacher from ``cfg`` (random init) or ``from_pretrained(cfg.pretrained)``.

    ``cfg.family`` picks encoder-decoder (t5, bart) or decoder-only (gpt2).
    """
    import transformers

    if cfg.pretrained:
        auto = (transformers.AutoModelForCausalLM if cfg.family in DECODER_ONLY_FAMILIES
                else transformers.AutoModelForSeq2SeqLM)
        try:
            return auto.from_pretrained(cfg.pretrained, trust_remote_code=cfg.trust_remote_code)
        except (OSError, ValueError) as err:
            raise _pretrained_error("model", cfg.pretrained, err) from err
    common = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  decoder_start_token_id=tokenizer.bos_token_id)
    if cfg.family == "bart":
        config = transformers.BartConfig(
            d_model=cfg.d_model, encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers,
            encoder_attention_heads=cfg.heads, decoder_attention_heads=cfg.heads,
            encoder_ffn_dim=cfg.ffn_dim, decoder_ffn_dim=cfg.ffn_dim, dropout=cfg.dropout,
            attention_dropout=0.0, activation_dropout=0.0, max_position_embeddings=cfg.max_positions,
            scale_embedding=True, forced_eos_token_id=None, **common)
        return transformers.BartForConditionalGeneration(config)
    if cfg.family == "t5":
        config = transformers.T5Config(
            d_model=cfg.d_model, d_kv=cfg.d_model // cfg.heads, d_ff=cfg.ffn_dim, num_layers=cfg.encoder_layers,
            num_decoder_layers=cfg.decoder_layers, num_heads=cfg.heads, dropout_rate=cfg.dropout, **common)
        return transformers.T5ForConditionalGeneration(config)
    if cfg.family == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=len(tokenizer), n_positions=cfg.max_positions, n_embd=cfg.d_model, n_layer=cfg.decoder_layers,
            n_head=cfg.heads, n_inner=cfg.ffn_dim, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout,
            attn_pdrop=cfg.dropout, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id)
        return transformers.GPT2LMHeadModel(config)
    raise ValueError(f"unknown model family {cfg.family!r}; known: {', '.join(FAMILIES)}")


build_seq2seq = build_model   # the name the encoder-decoder-only versions used


def load_model(path: str | Path) -> nn.Module:
    """A model written by ``save_pretrained``, encoder-decoder or decoder-only as its config says."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(path))
    auto = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
    return auto.from_pretrained(str(path))


def language_model(model: nn.Module, tokenizer):
    """The engine's view of ``model``: :class:`Seq2SeqLM` or :class:`harness.causal.CausalLM`."""
    if model.config.is_encoder_decoder:
        return Seq2SeqLM(model, tokenizer)
    from .causal import CausalLM

    return CausalLM(model, tokenizer)


def _layer_stacks(model: nn.Module) -> dict[str, nn.ModuleList]:
    kind = model.config.model_type
    if kind in ("bart", "mbart", "marian", "pegasus"):
        return {"encoder": model.model.encoder.layers, "decoder": model.model.decoder.layers}
    if kind in ("t5", "mt5"):
        return {"encoder": model.encoder.block, "decoder": model.decoder.block}
    if kind == "gpt2":
        return {"decoder": model.transformer.h}
    raise ValueError(f"layer copy does not know the model type {kind!r}")


_DEPTH_FIELDS = {
    "bart": ("encoder_layers", "decoder_layers"), "mbart": ("encoder_layers", "decoder_layers"),
    "marian": ("encoder_layers", "decoder_layers"), "pegasus": ("encoder_layers", "decoder_layers"),
    "t5": ("num_layers", "num_decoder_layers"), "mt5": ("num_layers", "num_decoder_layers"),
    "gpt2": (None, "n_layer"),   # decoder-only: the encoder depth is ignored
}


def make_student(teacher: nn.Module, encoder_layers: int, decoder_layers: int) -> tuple[nn.Module, dict]:
    """Copy the teacher with fewer layers; student layer i starts as teacher layer ``layers_to_copy[i]``.

    Returns the student and the layer maps (copied and supervised layers per stack).
    """
    enc_field, dec_field = _DEPTH_FIELDS[teacher.config.model_type]
    config = copy.deepcopy(teacher.config)
    if enc_field is not None:
        setattr(config, enc_field, encoder_layers)
    setattr(config, dec_field, decoder_layers)
    student = type(teacher)(config)
    student.load_state_dict(teacher.state_dict(), strict=False)  # embeddings, norms, head
    stacks_t, stacks_s = _layer_stacks(teacher), _layer_stacks(student)
    layer_map = {}
    for name, n_student in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        if name not in stacks_t:
            continue
        n_teacher = len(stacks_t[name])
        copied = layers_to_copy(n_teacher, n_student)
        for i, j in enumerate(copied):
            stacks_s[name][i].load_state_dict(stacks_t[name][j].state_dict())
        layer_map[name] = {"copied": copied, "supervised": layers_to_supervise(n_teacher, n_student)}
    student.generation_config = copy.deepcopy(teacher.generation_config)
    return student, layer_map


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    return torch.device(name)


# ---------------------------------------------------------------- the engine's view of a model

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
        out = self.model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=enc.outputs.last_hidden_state.detach()),
            attention_mask=enc.attention_mask, generation_config=gen,
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
        early_stopping=True if decode.num_beams > 1 else False, pad_token_id=pad_id,
        eos_token_id=eos_id, decoder_start_token_id=start_id, bos_token_id=bos_id,
    )


def sequences_to_prefix(tokens: torch.Tensor, eos_id: int, pad_id: int) -> Prefix:
    """Mask everything after the first EOS; a sequence with no EOS keeps all its tokens."""
    is_eos = tokens == eos_id
    after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    mask = (~after_eos).long()
    if tokens.shape[1] == 0:
        mask = torch.zeros_like(tokens)
    return Prefix(tokens.masked_fill(mask == 0, pad_id), mask)
