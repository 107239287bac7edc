"""harness: a benchmark and evaluation harness for sequence-level knowledge distillation."""

from .errors import HarnessError
from .registry import register_method, register_task

__version__ = "0.1.0"

__all__ = ["HarnessError", "register_method", "register_task", "__version__"]
