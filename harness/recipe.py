"""A paper recipe: each value a task's ``paper`` profile sets, beside the reference line it comes from.

A task writes its recipe once, as ``{"kd_train.lr": (1e-4, "dart/scripts/run_js.sh:7"), …}``;
keys are dotted :class:`~harness.config.RunConfig` paths, or ``method.<method>.<parameter>``
for a method's parameters. Its ``profile_overrides("paper")`` and ``method_defaults_for("paper")``
are derived from it here, and ``docs/paper-recipe.md`` lists the same rows (a test holds the two
together).
"""

from __future__ import annotations

from typing import Any

#: dotted key → (value, where the reference sets it)
Recipe = dict[str, tuple[Any, str]]

METHOD_PREFIX = "method."


def config_overrides(recipe: Recipe) -> dict[str, Any]:
    """The recipe's config values (every key but ``method.*``), as ``profile_overrides`` returns them."""
    return {key: value for key, (value, _) in recipe.items() if not key.startswith(METHOD_PREFIX)}


def method_defaults(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """The recipe's method parameters, as ``method_defaults_for`` returns them: ``{"js": {"beta": 0.85}}``."""
    table: dict[str, dict[str, Any]] = {}
    for key, (value, _) in recipe.items():
        if key.startswith(METHOD_PREFIX):
            method, parameter = key[len(METHOD_PREFIX):].split(".", 1)
            table.setdefault(method, {})[parameter] = value
    return table
