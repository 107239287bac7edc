"""Built-in task plugins (installed as ``harness_tasks``). Importing this package registers them."""

from . import dart  # noqa: F401
