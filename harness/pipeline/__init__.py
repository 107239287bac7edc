"""One cell of the benchmark as a chain of cached stages."""

from .run import Pipeline

__all__ = ["Pipeline"]
