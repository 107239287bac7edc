"""Name → class registries for tasks and methods.

Three ways in, all ending in the same table:
  * the ``@register_task`` / ``@register_method`` decorators (built-ins, ``--plugins file.py``);
  * the ``harness.tasks`` / ``harness.methods`` entry-point groups of installed packages;
  * ``load_plugin_file(path)`` for a local file the user names.
An unknown name raises :class:`UnknownNameError`, which lists the known names and a
close match; the CLI turns it into a one-line error and exit code 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from typing import Callable, Generic, Iterator, TypeVar

from .errors import DiskFullError, HarnessError, UnknownNameError  # noqa: F401  (re-exported)

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str, builtin_modules: tuple[str, ...]):
        self.kind = kind
        self.group = entry_point_group
        self.builtin_modules = builtin_modules
        self._items: dict[str, type[T]] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            self.add(name, cls)
            return cls

        return decorator

    def add(self, name: str, cls: type[T]) -> None:
        old = self._items.get(name)
        if old is not None and _qualname(old) != _qualname(cls):
            raise HarnessError(
                f"{self.kind} name {name!r} is registered twice: {_qualname(old)} and {_qualname(cls)}"
            )
        cls.name = name  # type: ignore[attr-defined]
        self._items[name] = cls

    @contextlib.contextmanager
    def temporarily(self, name: str, cls: type[T]) -> Iterator[type[T]]:
        """``cls`` registered as ``name`` for the duration of a ``with`` block (tests of plugins); the
        registry is process-wide, so it is left as it was found."""
        self._load()
        before = self._items.get(name)
        self.add(name, cls)
        try:
            yield cls
        finally:
            if before is None:
                self._items.pop(name, None)
            else:
                self._items[name] = before

    def _load(self) -> None:
        if self._loaded:
            return
        for module in self.builtin_modules:
            importlib.import_module(module)
        self._loaded = True  # only once the built-ins imported: a failed import is retried, not half-kept
        for ep in importlib.metadata.entry_points(group=self.group):
            if ep.name in self._items:
                continue  # a built-in also declared as an entry point
            try:
                self.add(ep.name, ep.load())
            except Exception as err:  # a broken third-party plugin must not take the CLI down
                print(f"warning: could not load {self.kind} plugin {ep.name!r} ({ep.value}): {err}",
                      file=sys.stderr)

    def get(self, name: str) -> type[T]:
        self._load()
        if name not in self._items:
            raise UnknownNameError(self.kind, name, list(self._items))
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


TASKS: Registry = Registry("task", "harness.tasks", ("harness_tasks",))
METHODS: Registry = Registry("method", "harness.methods", ("harness.methods",))

register_task = TASKS.register
register_method = METHODS.register


def load_plugin_file(path: str | Path) -> None:
    """Import a local Python file so that its ``@register_*`` decorators run."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"plugin file not found: {path}")
    resolved = path.resolve()
    module_name = f"harness_plugin_{path.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
    if module_name in sys.modules:
        return  # already imported (e.g. named twice)
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise HarnessError(f"cannot import plugin file {path} (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except HarnessError:
        sys.modules.pop(module_name, None)
        raise
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise HarnessError(f"plugin file {path}: {type(err).__name__}: {err}") from err
