"""Decoding a split, scoring it with the task's metrics, and the risks of PAPER.md Table 3.

* likelihood risk R_llh = −(1/N) Σ log p(ŷ_t | ŷ_<t, x): the teacher's per-token NLL of the
  evaluated model's outputs ŷ (low: the model says things the teacher finds likely);
* coverage risk  R_cvg = −(1/N) Σ log q(y*_t | y*_<t, x): the evaluated model's per-token NLL
  of the teacher's outputs y* (low: the model covers what the teacher says).
Both are averaged over all tokens of the test set (EOS included).
"""

from __future__ import annotations

import torch

from .config import DecodeConfig
from .progress import progress
from .data import TokenizedSplit, batches, make_batch, num_batches
from .methods.divergences import token_nll
from .lm import Seq2SeqLM


@torch.no_grad()
def decode(lm: Seq2SeqLM, split: TokenizedSplit, cfg: DecodeConfig, device, desc: str = "decode",
           limit: int | None = None) -> list[list[int]]:
    """Generated token ids (EOS included, no padding) for each example, batched by source length."""
    lm.model.eval()
    n = len(split) if limit is None else min(limit, len(split))
    sub = TokenizedSplit(split.examples[:n], split.sources[:n], split.targets[:n])
    out: list[list[int] | None] = [None] * n
    for batch in progress(batches(sub, cfg.batch_size, lm.pad_id, by_length=True), total=num_batches(n, cfg.batch_size),
                      desc=desc, unit="batch"):
        batch = batch.to(device)
        prefix = lm.generate(lm.encode(batch.source_ids, batch.source_mask), cfg)
        for row, i in enumerate(batch.index):
            length = int(prefix.mask[row].sum())
            out[i] = prefix.tokens[row, :length].tolist()
    return out  # type: ignore[return-value]


def texts(lm: Seq2SeqLM, token_lists: list[list[int]]) -> list[str]:
    return [t.strip() for t in lm.tokenizer.batch_decode(token_lists, skip_special_tokens=True)]


@torch.no_grad()
def sequence_nll(lm: Seq2SeqLM, split: TokenizedSplit, outputs: list[list[int]], device,
                 batch_size: int = 64) -> list[tuple[float, int]]:
    """(Σ_t −log q(y_t|y_<t,x), number of tokens) of ``outputs`` under ``lm``, per example."""
    lm.model.eval()
    scored = TokenizedSplit(split.examples[: len(outputs)], split.sources[: len(outputs)],
                            [o if o else [lm.eos_id] for o in outputs])
    result: list[tuple[float, int]] = [(0.0, 0)] * len(outputs)
    for start in range(0, len(outputs), batch_size):
        index = list(range(start, min(start + batch_size, len(outputs))))
        batch = make_batch(scored, index, lm.pad_id).to(device)
        logits = lm.forward(lm.encode(batch.source_ids, batch.source_mask), batch.target).logits
        nll = token_nll(logits.float(), batch.target.tokens) * batch.target.mask
        for row, i in enumerate(index):
            result[i] = (float(nll[row].sum()), int(batch.target.mask[row].sum()))
    return result


def per_token(pairs: list[tuple[float, int]]) -> float:
    total, count = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    return total / max(count, 1)


def distinct_bigram_percent(samples: list[list[str]]) -> float:
    """TeacherDist (PAPER.md Table 3): per input, distinct word bigrams / all word bigrams over its
    samples, ×100, averaged over inputs. High when the samples of one input disagree (multi-modality)."""
    scores = []
    for texts_of_input in samples:
        bigrams = [tuple(words[i: i + 2]) for t in texts_of_input
                   for words in [t.lower().split()] for i in range(len(words) - 1)]
        if bigrams:
            scores.append(100.0 * len(set(bigrams)) / len(bigrams))
    return sum(scores) / len(scores) if scores else 0.0


def teacher_dist(lm, split: TokenizedSplit, sampling: DecodeConfig, n_samples: int, device, seed: int) -> float:
    """Draw ``n_samples`` samples per input (seeded) and return their distinct-bigram percentage."""
    runs = []
    for k in range(n_samples):
        torch.manual_seed(seed * 1000 + k)
        runs.append(texts(lm, decode(lm, split, sampling, device, desc=f"teacher-dist {k + 1}/{n_samples}")))
    return distinct_bigram_percent([list(per_input) for per_input in zip(*runs)])

