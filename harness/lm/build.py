"""Models and tokenizers: build from a config or load pretrained; students by layer copy;
:func:`language_model` wraps a model in the adapter of its architecture."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..config import ModelConfig
from .causal import CausalLM
from .seq2seq import Seq2SeqLM

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
    from ..errors import HarnessError

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
    """The engine's view of ``model``: :class:`Seq2SeqLM` or :class:`CausalLM`."""
    if model.config.is_encoder_decoder:
        return Seq2SeqLM(model, tokenizer)

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


def device_type(name: str) -> str:
    """The type of device ``name`` (cpu, cuda, mps) without checking that this machine has it: a grid planned
    here may run its cells on another machine (Ray)."""
    return resolve_device("auto").type if name == "auto" else torch.device(name).type


def resolve_device(name: str) -> torch.device:
    """The device ``name`` (auto: CUDA if there is one, else the CPU), checked to exist on this machine: a
    device that does not is one :class:`HarnessError` line here, before any stage, instead of a failure
    when the first model moves to it."""
    from ..errors import HarnessError

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"a CUDA {torch.version.cuda} build"
            raise HarnessError(f"device={name}: no CUDA device here (torch {torch.__version__} is {build}); use "
                               f"--device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise HarnessError(f"device={name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                               f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise HarnessError(f"device={name}: MPS is not available here; use --device cpu or auto")
    return device


def embedding_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The token and position embeddings of ``model`` by name (a tied LM head shares the token embeddings'
    parameter): what the reference code's ``--freeze_embeds`` freezes. T5 has no position embeddings
    (its relative attention bias lives in the layers)."""
    wanted = {id(p) for p in model.get_input_embeddings().parameters()}
    for name, module in model.named_modules():
        if name.split(".")[-1] in ("embed_positions", "wpe", "embed_tokens", "shared", "wte"):
            wanted |= {id(p) for p in module.parameters()}
    return {name: p for name, p in model.named_parameters() if id(p) in wanted}
