"""The library versions the code needs, checked when a command starts (one line, before any work) as well as
by the installer: an environment assembled without pip's resolver (a cluster image, ``PYTHONPATH``) would
otherwise fail minutes into a run, at the first beam search."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

from .errors import HarnessError

#: name → the least version, as pyproject.toml's dependencies state it. transformers 5.24 renamed the models' and
#: ``generate``'s ``past_key_values`` to ``cache``, the name under which beam search gets its own cache
#: (``harness.lm.seq2seq.beam_search_cache``); 5.23 rejects it ("model_kwargs are not used by the model: cache").
MINIMUM = {"transformers": "5.24"}


def check_libraries(minimum: dict[str, str] = MINIMUM) -> None:
    """Raise a one-line :class:`HarnessError` naming the first library older than ``minimum`` allows (or missing)."""
    for name, least in minimum.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            raise HarnessError(f"{name} is not installed; harness needs {name}>={least}") from None
        if Version(have).release < Version(least).release:   # a pre-release or source build of 5.24 is 5.24
            raise HarnessError(f"{name} {have} is installed; harness needs {name}>={least} "
                               f"(pip install -U '{name}>={least}')")
