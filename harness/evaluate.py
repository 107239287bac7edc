"""Decoding a split, scoring it with the task's metrics, and the risks of PAPER.md Table 3.

* likelihood risk R_llh = −(1/N) Σ log p(ŷ_t | ŷ_<t, x): the teacher's per-token NLL of the
  evaluated model's outputs ŷ (low: the model says things the teacher finds likely);
* coverage risk  R_cvg = −(1/N) Σ log q(y*_t | y*_<t, x): the evaluated model's per-token NLL
  of the teacher's outputs y* (low: the model covers what the teacher says);
* token-level fidelity TVD = (1/N) Σ ½Σ_v |p(v | ŷ_<t, x) − q(v | ŷ_<t, x)| between teacher p and
  student q on the student's outputs ŷ, and α = 1 − TVD, speculative decoding's expected acceptance rate.
Both are averaged over all tokens of the test set (EOS included), on the test outputs.
The paper's own numbers (``r_llh_paper``, ``r_cvg_paper``, ``dart/run_calc_ppl.py``) score one *sampled*
output per input and average each sentence's per-token NLL, then the sentences (:func:`per_sentence`).
"""

from __future__ import annotations

import itertools
from typing import Iterable

import torch

from .config import DecodeConfig
from .progress import progress
from .data import TokenizedSplit, batches, make_batch, num_batches
from .methods.divergences import token_nll
from .lm import Seq2SeqLM


@torch.no_grad()
def decode(lm: Seq2SeqLM, split: TokenizedSplit, cfg: DecodeConfig, device, desc: str = "decode",
           limit: int | None = None) -> list[list[int]]:
    """Generated token ids (EOS included, no padding) for each example, batched by source length.

    Data parallel (a process group of N ranks, :mod:`harness.distributed`; every rank calls this): the batches
    are those of one process (the same rows, sorted by source length, ``cfg.batch_size`` at a time) and rank r
    decodes batches r, r+N, r+2N, …; the outputs are gathered on every rank in the examples' order. Greedy and
    beam search thus give one process's outputs exactly (each batch is the same tensor, decoded by the same
    code). Sampled decoding (``do_sample``) draws rank r's batches from the seed
    :func:`harness.distributed.rank_seed` (s, r), s being rank 0's :func:`torch.initial_seed` (the seed its
    caller set last; :func:`sampling_rank_seeds` lists them): another draw than one process's, from recorded
    seeds; the caller's random stream is left where it was. In one process nothing of this happens."""
    from . import distributed

    lm.model.eval()
    n = len(split) if limit is None else min(limit, len(split))
    sub = TokenizedSplit(split.examples[:n], split.sources[:n], split.targets[:n])
    processes, rank = distributed.world_size(), distributed.rank()
    if processes == 1:
        return _decode_batches(lm, batches(sub, cfg.batch_size, lm.pad_id, by_length=True), n, cfg, device, desc,
                               num_batches(n, cfg.batch_size))
    mine = my_share(batches(sub, cfg.batch_size, lm.pad_id, by_length=True))
    count = len(range(rank, num_batches(n, cfg.batch_size), processes))
    if cfg.do_sample:
        seed = distributed.gather_objects(torch.initial_seed())[0]
        cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(distributed.rank_seed(seed, rank))
            decoded = _decode_batches(lm, mine, n, cfg, device, desc, count, rank > 0)
    else:
        decoded = _decode_batches(lm, mine, n, cfg, device, desc, count, rank > 0)
    return gathered(decoded)


def my_share(items: Iterable) -> Iterable:
    """This rank's items of ``items`` (batches): r, r+N, r+2N, … of N data-parallel ranks; all of them in one
    process."""
    from . import distributed

    processes = distributed.world_size()
    return items if processes == 1 else itertools.islice(items, distributed.rank(), None, processes)


def gathered(values: list) -> list:
    """Every rank's ``values`` merged (each rank fills the entries of its share, None elsewhere), on every rank;
    ``values`` itself in one process."""
    from . import distributed

    if distributed.world_size() == 1:
        return values
    out = [None] * len(values)
    for part in distributed.gather_objects({i: v for i, v in enumerate(values) if v is not None}):
        for i, v in part.items():
            out[i] = v
    return out


def _decode_batches(lm: Seq2SeqLM, decoded_batches, n: int, cfg: DecodeConfig, device, desc: str, total: int,
                    quiet: bool = False) -> list[list[int] | None]:
    """The outputs of the examples in ``decoded_batches`` at their indices (None for the others)."""
    out: list[list[int] | None] = [None] * n
    for batch in progress(decoded_batches, total=total, desc=desc, unit="batch", disable=quiet):
        batch = batch.to(device)
        prefix = lm.generate(lm.encode(batch.source_ids, batch.source_mask), cfg)
        for row, i in enumerate(batch.index):
            length = int(prefix.mask[row].sum())
            out[i] = prefix.tokens[row, :length].tolist()
    return out


def sampling_rank_seeds(seed: int) -> list[int]:
    """The torch seed of each rank's share of a sampled :func:`decode` whose caller set ``seed`` (one process:
    none, the caller's stream is the draw)."""
    from . import distributed

    processes = distributed.world_size()
    return [distributed.rank_seed(seed, r) for r in range(processes)] if processes > 1 else []


def texts(lm: Seq2SeqLM, token_lists: list[list[int]]) -> list[str]:
    return [t.strip() for t in lm.tokenizer.batch_decode(token_lists, skip_special_tokens=True)]


def _forced_batches(lm: Seq2SeqLM, split: TokenizedSplit, outputs: list[list[int]], device, batch_size: int):
    """(indices, batch) over ``outputs`` as targets of ``split``'s sources, in order (an empty output scores EOS)."""
    scored = TokenizedSplit(split.examples[: len(outputs)], split.sources[: len(outputs)],
                            [o if o else [lm.eos_id] for o in outputs])
    for start in range(0, len(outputs), batch_size):
        index = list(range(start, min(start + batch_size, len(outputs))))
        yield index, make_batch(scored, index, lm.pad_id).to(device)


@torch.no_grad()
def sequence_nll(lm: Seq2SeqLM, split: TokenizedSplit, outputs: list[list[int]], device,
                 batch_size: int = 64) -> list[tuple[float, int]]:
    """(Σ_t −log q(y_t|y_<t,x), number of tokens) of ``outputs`` under ``lm``, per example."""
    lm.model.eval()
    result: list = [None] * len(outputs)
    for index, batch in my_share(_forced_batches(lm, split, outputs, device, batch_size)):
        logits = lm.forward(lm.encode(batch.source_ids, batch.source_mask), batch.target).logits
        nll = token_nll(logits.float(), batch.target.tokens) * batch.target.mask
        for row, i in enumerate(index):
            result[i] = (float(nll[row].sum()), int(batch.target.mask[row].sum()))
    return gathered(result)


@torch.no_grad()
def teacher_scores(teacher: Seq2SeqLM, student: Seq2SeqLM | None, split: TokenizedSplit, outputs: list[list[int]],
                   device, batch_size: int = 64) -> tuple[list[tuple[float, int]], list[tuple[float, int]] | None]:
    """One teacher pass over ``outputs`` (a model's test outputs) for two scores per example:

    * (Σ_t −log p(y_t|y_<t,x), number of tokens), as :func:`sequence_nll` under the teacher (``r_llh``);
    * with a ``student`` (whose outputs they are): (Σ_t ½Σ_v |p(v|y_<t,x) − q(v|y_<t,x)|, number of tokens),
      the total variation distance between the teacher p and the student q at every prefix. Its mean over tokens
      is ``tvd_token``; ``acceptance`` = 1 − ``tvd_token`` is the expected rate at which speculative decoding
      accepts a token the student drafts for the teacher (both share the tokenizer). None without a student.
    """
    teacher.model.eval()
    nll_pairs: list = [None] * len(outputs)
    tvd_pairs: list | None = None if student is None else [None] * len(outputs)
    for index, batch in my_share(_forced_batches(teacher, split, outputs, device, batch_size)):
        logits = teacher.forward(teacher.encode(batch.source_ids, batch.source_mask), batch.target).logits.float()
        nll = token_nll(logits, batch.target.tokens) * batch.target.mask
        counts = batch.target.mask.sum(1).tolist()
        for row, i in enumerate(index):
            nll_pairs[i] = (float(nll[row].sum()), int(counts[row]))
        if student is None:
            continue
        student.model.eval()
        p = logits.softmax(-1)
        q = student.forward(student.encode(batch.source_ids, batch.source_mask), batch.target).logits.float().softmax(-1)
        vocab = max(p.shape[-1], q.shape[-1])    # an embedding padded beyond the other's: no mass on the other side
        p, q = (torch.nn.functional.pad(x, (0, vocab - x.shape[-1])) for x in (p, q))
        tvd = 0.5 * (p - q).abs().sum(-1) * batch.target.mask
        for row, i in enumerate(index):
            tvd_pairs[i] = (float(tvd[row].sum()), int(counts[row]))
    return gathered(nll_pairs), None if tvd_pairs is None else gathered(tvd_pairs)


def per_token(pairs: list[tuple[float, int]]) -> float:
    """Σ NLL / Σ tokens over all sentences: every token weighs the same (``r_llh``, ``r_cvg``)."""
    total, count = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    return total / max(count, 1)


def per_sentence(pairs: list[tuple[float, int]]) -> float:
    """The mean over sentences of each sentence's NLL / tokens: every sentence weighs the same (the paper's
    ``np.mean(loss_seq)``, ``dart/run_calc_ppl.py:102-104``; ``r_llh_paper``, ``r_cvg_paper``)."""
    means = [total / count for total, count in pairs if count]
    return sum(means) / len(means) if means else 0.0


def distinct_bigram_percent(samples: list[list[list[str]]], count_empty: bool = False) -> float:
    """TeacherDist (PAPER.md Table 3): per input, distinct bigrams / all bigrams over the token lists of its
    samples, ×100, averaged over inputs. High when the samples of one input disagree (multi-modality).
    An input without a bigram is left out, or with ``count_empty`` scores 0 (the paper's script:
    ``max(count, 1)``, ``chat/run_calc_dist.py:24-36``)."""
    return mean_of_terms(distinct_bigram_scores(samples, count_empty))


def mean_of_terms(terms: list[float | None]) -> float:
    """The mean of the terms that are there (None: left out); 0 when none is."""
    kept = [t for t in terms if t is not None]
    return sum(kept) / len(kept) if kept else 0.0


def distinct_bigram_scores(samples: list[list[list[str]]], count_empty: bool = False) -> list[float | None]:
    """Each input's TeacherDist term (:func:`distinct_bigram_percent` is their mean): None for an input left out
    (no bigram, without ``count_empty``). The terms are independent across inputs (each input's own samples), so
    a bootstrap over inputs of these terms carries the noise of the inputs and of the teacher's samples together."""
    scores: list[float | None] = []
    for tokens_of_input in samples:
        bigrams = [tuple(tokens[i: i + 2]) for tokens in tokens_of_input for i in range(len(tokens) - 1)]
        scores.append(100.0 * len(set(bigrams)) / max(len(bigrams), 1) if bigrams or count_empty else None)
    return scores


def words(samples: list[list[str]]) -> list[list[list[str]]]:
    """The lower-cased words of each sample (``teacher_dist``)."""
    return [[text.lower().split() for text in texts_of_input] for texts_of_input in samples]


def subwords(samples: list[list[str]], tokenizer) -> list[list[list[str]]]:
    """The tokenizer's pieces of each sample, re-tokenised from its text as the paper's
    ``run_calc_dist.py`` does (``tokenizer.tokenize``; ``teacher_dist_paper``)."""
    return [[tokenizer.tokenize(text) for text in texts_of_input] for texts_of_input in samples]


def teacher_samples(lm, split: TokenizedSplit, sampling: DecodeConfig, n_samples: int, device,
                    seed: int) -> list[list[str]]:
    """``n_samples`` seeded samples per input (texts), the draws TeacherDist counts."""
    runs = []
    for k in range(n_samples):
        torch.manual_seed(teacher_sample_seed(seed, k))
        runs.append(texts(lm, decode(lm, split, sampling, device, desc=f"teacher-dist {k + 1}/{n_samples}")))
    return [list(per_input) for per_input in zip(*runs)]


def teacher_sample_seed(seed: int, k: int) -> int:
    """The torch seed of the ``k``-th TeacherDist draw of a stage seeded ``seed``."""
    return seed * 1000 + k
