"""What a bench step runs on: random-weight models and a synthetic token batch shaped
like a preset's task, so that no training and no data set are needed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data import Batch, pad
from ..errors import HarnessError
from ..lm import Prefix, Seq2SeqLM, build_model, language_model, make_student, resolve_device
from .presets import AUTOCAST, BenchConfig, make_method, method_names
from .sizes import check_memory


@dataclass(frozen=True)
class SyntheticVocab:
    """Token ids only: what building a model and the adapters read from a tokenizer (no text is ever made)."""

    size: int
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2
    unk_token_id: int = 3

    def __len__(self) -> int:
        return self.size


def build_models(cfg: BenchConfig, device: torch.device):
    """Random-weight teacher (eval) and layer-copied student (train mode), as in a KD stage, behind the
    engine's adapters (:func:`harness.lm.language_model`: encoder-decoder or decoder-only)."""
    if cfg.teacher.dropout:
        raise HarnessError("the bench needs teacher.dropout=0: with dropout the modes draw different masks")
    torch.manual_seed(cfg.seed)
    vocab = SyntheticVocab(cfg.vocab_size)
    teacher = build_model(cfg.teacher, vocab)
    student, layer_map = make_student(teacher, cfg.student.encoder_layers, cfg.student.decoder_layers)
    teacher.to(device).eval()
    student.to(device).train()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return language_model(student, vocab), language_model(teacher, vocab), layer_map


def synthetic_batch(cfg: BenchConfig, device: torch.device) -> Batch:
    """Random tokens ending in EOS: sources, ground truth and offline teacher outputs of varied lengths."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    vocab = SyntheticVocab(cfg.vocab_size)

    def seqs(longest: int) -> list[list[int]]:
        lengths = torch.randint(max(2, math.ceil(0.75 * longest)), longest + 1, (cfg.batch_size,), generator=gen)
        return [torch.randint(4, cfg.vocab_size, (int(n) - 1,), generator=gen).tolist() + [vocab.eos_token_id]
                for n in lengths]

    src, src_mask = pad(seqs(cfg.source_tokens), vocab.pad_token_id)
    target = Prefix(*pad(seqs(cfg.target_tokens), vocab.pad_token_id))
    offline = Prefix(*pad(seqs(cfg.target_tokens), vocab.pad_token_id))
    return Batch(list(range(cfg.batch_size)), src, src_mask, target, offline).to(device)


@dataclass
class Setup:
    """Everything a timed step needs, built once per preset."""

    cfg: BenchConfig
    student: Seq2SeqLM            # or CausalLM (a decoder-only preset)
    teacher: Seq2SeqLM
    layer_map: dict
    batch: Batch
    device: torch.device
    autocast_dtype: torch.dtype | None


def make_setup(cfg: BenchConfig, methods: list | None = None) -> Setup:
    """The preset's device (CPU threads set if asked), models and batch; first, the models and the largest
    step of ``methods`` (method objects; default: the preset's) are checked against the device's free memory."""
    device = resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HarnessError(f"bench preset {cfg.preset!r} runs on {cfg.device}, but no CUDA device is available "
                           f"(--device cpu runs it here, slowly)")
    if methods is None:
        methods = [make_method(name, cfg.task) for name in method_names(cfg)]
    check_memory(cfg, methods, device)
    student, teacher, layer_map = build_models(cfg, device)
    return Setup(cfg, student, teacher, layer_map, synthetic_batch(cfg, device), device, AUTOCAST[cfg.autocast])
