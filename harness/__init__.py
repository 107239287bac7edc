"""harness: a benchmark and evaluation harness for sequence-level knowledge distillation."""

from ._runtime import tune_allocator
from .registry import HarnessError, register_method, register_task

__version__ = "0.1.0"

tune_allocator()
__all__ = ["HarnessError", "register_method", "register_task", "__version__"]
