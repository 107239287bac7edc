"""One training step: the loss of a method on one batch, and its terms.

A method (:mod:`harness.methods`) is a declaration: the prefix sources it trains on and
their weights (``active_prefix_weights()``), whether it needs the teacher at all
(``needs_teacher``) and the teacher's logits (``uses_teacher``), hidden states
(``needs_hidden_states``), a per-token loss and an optional extra loss. A step turns
that declaration into one number, top to bottom:

1. **Encode** the sources with the student (with gradient) and, if the method needs
   the teacher, with the teacher (no gradient).
2. **Collect prefixes** (:mod:`.prefixes`): each active source gives one prefix set —
   the batch's references or offline teacher outputs, or a fresh sample of a model
   (``collect``, a parameter of the fast step; tests pass fixed prefixes here).
3. **Score** every prefix set with the student (teacher forcing, with gradient) and,
   where the loss needs teacher logits that did not come out of sampling, with the
   teacher — or, in the fast step, read them from the teacher-output store on fixed
   prefixes (``Batch.stored_teacher``, :mod:`harness.methods.topk`).
4. **Combine** (:mod:`.loss`): the method's per-token loss for each source, averaged
   over that source's non-pad tokens, summed with the method's weights, plus the extra
   loss; autocast (:func:`.loss.autocast`) wraps the whole step.

Three execution modes compute the same loss with different structure, which is what
``harness bench`` measures; they share steps 2 and 4 and differ in 1 and 3:

* ``fast`` (:func:`.fast.method_loss`, what training uses): each piece of work once per
  batch — one encoder pass per model, one batched decoder pass per model over all
  prefix sets, and teacher samples keep their logits;
* ``reference`` (:func:`.reference.reference_loss`): the paper code's structure, each
  term with its own encoder and decoder passes and sampling that re-encodes;
* ``bare`` (:func:`.bare.bare_loss`): the floor, straight ``transformers`` calls.

They agree up to float error (``tests/test_reference_mode.py``, ``tests/test_bench.py``).
"""

from __future__ import annotations

from typing import Callable

from .fast import method_loss
from .prefixes import Collect, collect_prefix, stack_prefixes

#: The execution modes of a step, fastest structure first.
MODES = ("fast", "reference", "bare")


def step_loss(mode: str) -> Callable:
    """The step-loss function of an execution mode (one of :data:`MODES`)."""
    from ..errors import HarnessError
    from .bare import bare_loss
    from .reference import reference_loss

    functions = {"fast": method_loss, "reference": reference_loss, "bare": bare_loss}
    if mode not in functions:
        raise HarnessError(f"unknown execution mode {mode!r}; known: {', '.join(MODES)}")
    return functions[mode]


__all__ = ["MODES", "Collect", "collect_prefix", "method_loss", "stack_prefixes", "step_loss"]
