"""Built-in method plugins. Importing this package registers them."""

from . import baselines, beyond, fdistill  # noqa: F401  (registration side effects)
from .base import PREFIX_SOURCES, Method

__all__ = ["Method", "PREFIX_SOURCES"]
