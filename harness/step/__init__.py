"""One training step, three ways: ``fast`` (each piece of work once per batch, what
training uses), ``reference`` (the structure of the paper's code) and ``bare`` (only the
model calls a method cannot avoid); they agree up to float error."""

from .fast import method_loss
from .prefixes import collect_prefix, stack_prefixes

__all__ = ["collect_prefix", "method_loss", "stack_prefixes"]
