"""Helpers for testing a method plugin; the harness's own tests use them too.

Three levels, cheapest first:

* :func:`check_token_loss` — properties of ``Method.token_loss`` on random logits: finite,
  ≥ 0 and 0 when the student equals the teacher (for divergences), each row independent
  of the other rows and of its padding — hence any split of a batch into micro-batches
  (gradient accumulation) gives the same summed loss and the same gradient — and a
  gradient that reaches the student logits.
* :class:`EnumerableLM`, :func:`expected_loss_sum`, :func:`sequence_kl`, :func:`sequence_js` —
  a tiny autoregressive model whose sequences can all be listed, so that a step-wise loss
  can be compared with a sequence-level divergence exactly.
* :func:`check_engine_step` — one step of the real engine (:func:`harness.step.fast.method_loss`)
  on two tiny seq2seq models: finite, positive, gradients into the student's parameters
  only, unchanged by extra padding on sources and prefixes. Its samples come from
  :func:`fixed_samples`, passed as the step's ``collect`` (no patching of the harness).

Conventions as everywhere in the harness: p is the teacher, q the student; ``token_loss``
gets [B, T, V] logits whose position t predicts y_t, and ``tokens`` [B, T] holding y_t.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Iterator

import torch

from .methods.base import Method

__all__ = ["make_method", "method_cases", "PREDISTILL_AS_REFERENCE",
           "random_logits", "check_token_loss", "EnumerableLM", "expected_loss_sum",
           "expected_method_loss", "sequence_kl", "sequence_js", "tiny_batch", "tiny_models", "padded_prefix", "padded_batch",
           "fixed_samples", "check_engine_step"]


def make_method(name_or_cls: str | type[Method], params: dict | None = None, task: str = "dart") -> Method:
    """An instance with the task's defaults (e.g. JS β), then ``params``, checked as ``--set method.*`` is."""
    from .registry import METHODS, TASKS

    cls = METHODS.get(name_or_cls) if isinstance(name_or_cls, str) else name_or_cls
    return cls.for_task(TASKS.get(task), params)


#: Pre-distillation as the reference code runs it on DART (the dart paper recipe): its teacher decoder reads
#: the student's encoder output, an engine path of its own, so the step-equality tests run it too.
PREDISTILL_AS_REFERENCE = {"hidden_pairing": "reference", "hidden_layers": "sum", "normalize_hidden": False,
                           "teacher_encoder": "student"}


def method_cases() -> dict[str, tuple[str, dict]]:
    """test id → (method name, parameters): every registered method with its defaults, then the variants
    that take other engine paths (:data:`PREDISTILL_AS_REFERENCE`); for tests that hold every step mode
    or way of batching to the same loss (``make_method(*method_cases()[case])``)."""
    from .registry import METHODS

    return {**{name: (name, {}) for name in METHODS.names()},
            "predistill-as-reference": ("predistill", PREDISTILL_AS_REFERENCE)}


def random_logits(seed: int, shape: tuple[int, ...] = (3, 5, 11), scale: float = 3.0,
                  dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(student, teacher) logits of ``shape``, N(0, scale²), from a private generator."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=dtype) * scale,
            torch.randn(shape, generator=g, dtype=dtype) * scale)


# --------------------------------------------------------------------------- token-level properties

def check_token_loss(method: Method, *, seed: int = 0, batch: int = 4, length: int = 6, vocab: int = 13,
                     scale: float = 3.0, divergence: bool = True, atol: float | None = None) -> None:
    """Assert the properties every per-token loss must have, for each prefix source of ``method``.

    Rows get random lengths; positions past a row's end hold junk logits and token 0, as
    padding does. Checked for every source:

    * shape [B, T], finite values and gradients, inputs left unmodified;
    * padding and batch independence: each row scored alone, cut to its length, gives
      the same losses, and the gradient of the masked loss is 0 at padded positions;
    * micro-batches: splitting the rows in two (each cut to its own width, as the engine
      pads) gives the same token-weighted sum and the same gradient;
    * with ``divergence``: loss ≥ 0, = 0 when the student logits equal the teacher's, and
      a non-zero gradient into the student logits otherwise.

    ``atol`` is the absolute tolerance of every comparison. By default it is the rounding
    noise of this very loss (:func:`rounding_noise`: how much it moves when only the order
    of its sums changes): a loss that computes in float32 and divides by a small parameter
    (an α-divergence's 1/(α(1−α))) rounds far above any fixed tolerance.
    """
    g = torch.Generator().manual_seed(seed)
    student, teacher = random_logits(seed, (batch, length, vocab), scale)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length                                  # the widest row sets the batch width
    mask = (torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)).to(student.dtype)
    junk = torch.randn(student.shape, generator=g, dtype=student.dtype) * 10 * scale
    student = torch.where(mask.bool().unsqueeze(-1), student, junk)
    tokens = torch.randint(0, vocab, (batch, length), generator=g).masked_fill(mask == 0, 0)
    n_tokens = mask.sum()

    for source in method.prefix_weights():
        where = f"{type(method).__name__}.token_loss(source={source!r})"
        if atol is None:
            atol = rounding_noise(method, source, student, teacher, tokens)
        s = student.clone().requires_grad_(True)
        saved = (student.clone(), teacher.clone(), tokens.clone())
        loss = method.token_loss(s, teacher, tokens, source)
        assert loss.shape == (batch, length), f"{where}: shape {tuple(loss.shape)}, expected {(batch, length)}"
        assert torch.isfinite(loss).all(), f"{where}: non-finite values"
        assert torch.equal(s.detach(), saved[0]) and torch.equal(teacher, saved[1]) and torch.equal(tokens, saved[2]), \
            f"{where}: modified its inputs"
        total = (loss * mask).sum() / n_tokens
        (grad,) = torch.autograd.grad(total, s)
        assert torch.isfinite(grad).all(), f"{where}: non-finite gradient"
        leak = grad[mask == 0].abs().sum()
        assert leak == 0, f"{where}: padded positions change the loss of real tokens"

        for b in range(batch):
            n = int(lengths[b])
            alone = method.token_loss(student[b:b + 1, :n], teacher[b:b + 1, :n], tokens[b:b + 1, :n], source)
            assert torch.allclose(alone[0], loss[b, :n].detach(), rtol=1e-6, atol=atol), \
                f"{where}: row {b} scored alone differs (padding or other rows leak in)"

        split = int(torch.randint(1, batch, (1,), generator=g)) if batch > 1 else 1
        parts_sum, parts_grad = 0.0, torch.zeros_like(student)
        for rows in (slice(0, split), slice(split, batch)):
            width = int(lengths[rows].max()) if lengths[rows].numel() else 0
            if width == 0:
                continue
            part = student[rows, :width].clone().requires_grad_(True)
            part_loss = method.token_loss(part, teacher[rows, :width], tokens[rows, :width], source)
            part_total = (part_loss * mask[rows, :width]).sum() / n_tokens
            (part_grad,) = torch.autograd.grad(part_total, part)
            parts_sum = parts_sum + float(part_total.detach())
            parts_grad[rows, :width] = part_grad
        assert math.isclose(parts_sum, float(total.detach()), rel_tol=1e-6, abs_tol=atol), \
            f"{where}: micro-batches sum to {parts_sum}, the whole batch gives {float(total.detach())}"
        assert torch.allclose(parts_grad, grad, rtol=1e-5, atol=atol), \
            f"{where}: micro-batch gradients differ from the whole batch's"

        if divergence:
            assert loss.detach().min() >= -atol, f"{where}: negative loss {float(loss.min())}"
            same = method.token_loss(teacher.clone(), teacher, tokens, source)
            assert same.abs().max() <= atol, \
                f"{where}: {float(same.abs().max())} ≠ 0 with student = teacher"
            assert grad.abs().max() > 0, f"{where}: no gradient reaches the student logits"


def rounding_noise(method: Method, source: str, student: torch.Tensor, teacher: torch.Tensor,
                   tokens: torch.Tensor, trials: int = 3) -> float:
    """The float rounding noise of ``token_loss`` on these logits: 8× the largest change under a
    permutation of the vocabulary (≥ 1e-7), also at student = teacher.

    Renaming the vocabulary changes no per-token loss mathematically (the tokens are renamed
    with it), only the order of its sums, so what changes is rounding: in float32 arithmetic
    (a loss that casts), amplified by whatever the loss divides by (an α-divergence's α(1−α)).
    """
    g = torch.Generator().manual_seed(12345)
    noise = 0.0
    for s in (student, teacher):
        base = method.token_loss(s.clone(), teacher.clone(), tokens.clone(), source).detach()
        for _ in range(trials):
            perm = torch.randperm(s.shape[-1], generator=g)
            renamed = torch.argsort(perm)[tokens]          # token v sits at position argsort(perm)[v] now
            moved = method.token_loss(s[..., perm].clone(), teacher[..., perm].clone(), renamed, source).detach()
            noise = max(noise, float((moved - base).abs().max()))
    return max(1e-7, 8 * noise)


# --------------------------------------------------------------------------- exact brute force

class EnumerableLM:
    """An autoregressive model small enough to list every sequence.

    Tokens 0 … vocab−1 and EOS (= vocab); each prefix (a tuple of non-EOS tokens, at most
    ``max_len`` long) has its own next-token logits, drawn N(0, scale²); after ``max_len``
    tokens EOS is forced. With ``requires_grad`` the free logits are leaf tensors, so
    sequence-level quantities can be differentiated with respect to the model.
    """

    def __init__(self, seed: int, vocab: int = 3, max_len: int = 3, scale: float = 2.0, requires_grad: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.vocab, self.max_len, self.eos = vocab, max_len, vocab
        self.table: dict[tuple[int, ...], torch.Tensor] = {}
        for n in range(max_len + 1):
            for prefix in itertools.product(range(vocab), repeat=n):
                logits = torch.randn(vocab + 1, generator=g, dtype=torch.float64) * scale
                if n == max_len:
                    logits = torch.full((vocab + 1,), -1e9, dtype=torch.float64)
                    logits[self.eos] = 0.0
                else:
                    logits.requires_grad_(requires_grad)
                self.table[prefix] = logits

    def parameters(self) -> list[torch.Tensor]:
        return [t for t in self.table.values() if t.requires_grad]

    def sequences(self) -> Iterator[tuple[int, ...]]:
        """Every complete sequence: up to ``max_len`` tokens, then EOS."""
        for n in range(self.max_len + 1):
            for body in itertools.product(range(self.vocab), repeat=n):
                yield body + (self.eos,)

    def logits_along(self, seq: tuple[int, ...]) -> torch.Tensor:
        """[len(seq), V]: row t holds the logits of y_t given seq[:t]."""
        return torch.stack([self.table[seq[:t]] for t in range(len(seq))])

    def log_prob(self, seq: tuple[int, ...]) -> torch.Tensor:
        """log of the probability of ``seq`` (a prefix or a complete sequence)."""
        if not seq:
            return torch.zeros((), dtype=torch.float64)
        logp = torch.log_softmax(self.logits_along(seq), dim=-1)
        return logp.gather(-1, torch.tensor(seq).unsqueeze(-1)).sum()


def sequence_kl(a: EnumerableLM, b: EnumerableLM) -> torch.Tensor:
    """KL(a‖b) = Σ_y a(y) (log a(y) − log b(y)), over every sequence."""
    total = torch.zeros((), dtype=torch.float64)
    for y in a.sequences():
        la, lb = a.log_prob(y), b.log_prob(y)
        total = total + la.exp() * (la - lb)
    return total


def sequence_js(student: EnumerableLM, teacher: EnumerableLM, beta: float) -> torch.Tensor:
    """JS_β = β·KL(q‖M) + (1−β)·KL(p‖M) with M = β·q + (1−β)·p, the mixture of the *sequence* distributions."""
    total = torch.zeros((), dtype=torch.float64)
    for y in student.sequences():
        lq, lp = student.log_prob(y), teacher.log_prob(y)
        lm = torch.logaddexp(lq + math.log(beta), lp + math.log1p(-beta))
        total = total + beta * lq.exp() * (lq - lm) + (1 - beta) * lp.exp() * (lp - lm)
    return total


def expected_loss_sum(method: Method, source: str, sampler: EnumerableLM, student: EnumerableLM,
                      teacher: EnumerableLM) -> torch.Tensor:
    """E_{y~sampler} Σ_t token_loss(y)_t, exactly: every complete sequence, weighted by its probability.

    The sampler's probabilities carry no gradient (the engine never differentiates
    through sampling); the loss does, through the student's logits. This is the
    per-sequence *sum*; the engine's per-token mean differs by the token count.
    """
    total = torch.zeros((), dtype=torch.float64)
    for y in sampler.sequences():
        weight = sampler.log_prob(y).detach().exp()
        tokens = torch.tensor(y).unsqueeze(0)
        loss = method.token_loss(student.logits_along(y).unsqueeze(0), teacher.logits_along(y).unsqueeze(0).detach(),
                                 tokens, source)
        total = total + weight * loss.sum()
    return total


_SAMPLERS = {"teacher_sample": "teacher", "teacher_offline": "teacher", "student_sample": "student"}


def expected_method_loss(method: Method, student: EnumerableLM, teacher: EnumerableLM) -> torch.Tensor:
    """Σ_source weight · E_{y~source} Σ_t token_loss: the method's objective with exact expectations.

    Teacher prefixes (online samples or offline outputs alike) are taken as samples of the
    teacher, student samples as samples of the student; ground truth and greedy decodes
    have no distribution here and raise ``ValueError``.
    """
    total = torch.zeros((), dtype=torch.float64)
    for source, weight in method.active_prefix_weights().items():
        if source not in _SAMPLERS:
            raise ValueError(f"prefix source {source!r} has no distribution in the enumerable model")
        sampler = teacher if _SAMPLERS[source] == "teacher" else student
        total = total + weight * expected_loss_sum(method, source, sampler, student, teacher)
    return total


# --------------------------------------------------------------------------- one engine step

_TEXTS = [("a : b : c", "A is b of c."), ("x : y : z | x : w : v", "X is y of z and w of v."),
          ("p : q : r", "P has q r."), ("m : n : o", "M n o, they say.")]


def tiny_batch(tokenizer, texts=_TEXTS):
    """(split, batch): ``texts`` as (source, reference) examples, tokenised, with the reversed references as
    offline teacher outputs, and all of them as one batch."""
    from .data import make_batch, tokenize_split
    from .task import Example

    examples = [Example(str(i), s, t, (t,)) for i, (s, t) in enumerate(texts)]
    split = tokenize_split(examples, tokenizer, 32, 32)
    split = split.with_teacher_outputs([list(reversed(t[:-1])) + [tokenizer.eos_token_id] for t in split.targets])
    return split, make_batch(split, list(range(len(examples))), tokenizer.pad_token_id)


def tiny_models(seed: int = 0, *, texts=_TEXTS, vocab_size: int = 80, config=None, student_layers=(1, 1)):
    """(student, teacher, layer_map, batch): a tiny teacher (default: a 2+2-layer T5), a student of
    ``student_layers`` (encoder, decoder) copied from it and moved away from it, both in eval mode, and
    :func:`tiny_batch` of ``texts``."""
    from .config import ModelConfig
    from .lm import build_model, language_model, make_student, train_tokenizer

    torch.manual_seed(seed)
    tok = train_tokenizer([s for pair in texts for s in pair], vocab_size=vocab_size)
    cfg = config or ModelConfig(d_model=16, encoder_layers=2, decoder_layers=2, heads=2, ffn_dim=32, dropout=0.0)
    teacher = build_model(cfg, tok).eval()
    student, layer_map = make_student(teacher, *student_layers)
    with torch.no_grad():        # move the student away from the teacher: every divergence is clearly > 0
        for param in student.parameters():
            param.add_(torch.randn_like(param) * 0.5)
    student.eval()
    _, batch = tiny_batch(tok, texts)
    return language_model(student, tok), language_model(teacher, tok), layer_map, batch


#: Eight examples of uneven lengths: one batch of them, or its micro-batches or data-parallel shards.
BATCH_TEXTS = [("a : b : c", "A is b of c."), ("x : y : z | x : w : v", "X is y of z and w of v."),
               ("p : q : r", "P has q r."), ("m : n : o", "M n o, they say."),
               ("k : l : m | k : j : i | k : h : g", "K is l of m, j of i and h of g."), ("u : v : w", "U v."),
               ("s : t : u", "S is t u, as it were, and more."), ("e : f : g | e : h : i", "E f g; e h i.")]


def fixed_collect(source, batch, *args, **kwargs):
    """A step's sampler whose online sources take the batch's own fixed prefixes, so that a batch and its parts
    (micro-batches, shards) see the same rows."""
    from .step import collect_prefix

    table = {"teacher_sample": batch.teacher_output, "student_sample": batch.target,
             "student_greedy": batch.teacher_output}
    return table[source] if source in table else collect_prefix(source, batch, *args, **kwargs)


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of each parameter's gradient (those that have one)."""
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def one_batch_step(method: Method, student, teacher, batch, sampling, layer_map, collect=fixed_collect):
    """The reference that accumulated and data-parallel steps must equal: ``method``'s loss, terms and the
    student's gradients on ``batch`` taken whole (the gradients are cleared before and after)."""
    from .step import method_loss

    student.model.zero_grad(set_to_none=True)
    loss, terms = method_loss(method, student, teacher, batch, sampling, layer_map, collect=collect)
    loss.backward()
    grads = gradients(student.model)
    student.model.zero_grad(set_to_none=True)
    return loss.detach(), {k: v.detach() for k, v in terms.items()}, grads


def padded_prefix(prefix, extra: int, pad_id: int):
    """``prefix`` with ``extra`` more pad columns on the right (mask 0 there)."""
    pad = torch.nn.functional.pad
    return dataclasses.replace(prefix, tokens=pad(prefix.tokens, (0, extra), value=pad_id),
                               mask=pad(prefix.mask, (0, extra), value=0))


def padded_batch(batch, pad_id: int, source_extra: int = 3, prefix_extra: int = 4):
    """``batch`` with extra pad columns on its sources and on its prefix sets (references, offline outputs)."""
    pad = torch.nn.functional.pad
    offline = None if batch.teacher_output is None else padded_prefix(batch.teacher_output, prefix_extra, pad_id)
    return dataclasses.replace(batch, source_ids=pad(batch.source_ids, (0, source_extra), value=pad_id),
                               source_mask=pad(batch.source_mask, (0, source_extra)),
                               target=padded_prefix(batch.target, prefix_extra, pad_id), teacher_output=offline)


def fixed_samples(batch, pad_id: int):
    """A sampler for a step's ``collect`` that makes the step deterministic.

    The online sources get fixed prefix sets of ``batch`` instead of samples (teacher
    samples → its offline outputs, student samples → its references, greedy decodes →
    its offline outputs), right-padded as far as the batch the step is given is wider than
    ``batch`` (so :func:`padded_batch` of ``batch`` gets them padded); the other sources are
    collected as usual.
    """
    from .step import collect_prefix

    fixed = {"teacher_sample": batch.teacher_output, "student_sample": batch.target,
             "student_greedy": batch.teacher_output}

    def collect(source, b, *args, **kwargs):
        if source in fixed:
            return padded_prefix(fixed[source], b.target.tokens.shape[1] - batch.target.tokens.shape[1], pad_id)
        return collect_prefix(source, b, *args, **kwargs)

    return collect


def check_engine_step(method: Method, models=None, *, rel: float = 1e-5) -> float:
    """One engine step of ``method`` on :func:`tiny_models`; returns the loss.

    Online samples are replaced by fixed prefixes (:func:`fixed_samples`) so that the step
    is deterministic. Asserts: a finite, positive loss; after ``backward`` every teacher
    parameter is without gradient and some student gradient is non-zero; and three
    extra pad columns on the sources and four on every prefix set give the same loss.
    """
    from .config import DecodeConfig
    from .step import method_loss

    student, teacher, layer_map, batch = models or tiny_models()
    collect = fixed_samples(batch, student.pad_id)
    sampling = DecodeConfig(num_beams=1, do_sample=True, top_k=5, max_new_tokens=6)
    student.model.zero_grad(set_to_none=True)
    teacher.model.zero_grad(set_to_none=True)
    loss, terms = method_loss(method, student, teacher, batch, sampling, layer_map, collect=collect)
    value = float(loss.detach())
    assert math.isfinite(value) and value > 0, f"{type(method).__name__}: step loss {value}"
    assert set(terms) >= set(method.active_prefix_weights()), "a prefix source has no term"
    loss.backward()
    assert all(p.grad is None for p in teacher.model.parameters()), "a gradient reached the teacher"
    grads = [p.grad for p in student.model.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0, "no gradient reached the student"
    with torch.no_grad():
        again, _ = method_loss(method, student, teacher, padded_batch(batch, student.pad_id), sampling, layer_map,
                               collect=collect)
    student.model.zero_grad(set_to_none=True)
    assert math.isclose(float(again), value, rel_tol=rel, abs_tol=1e-6), \
        f"{type(method).__name__}: padding changed the step loss from {value} to {float(again)}"
    return value
