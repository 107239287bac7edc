"""Code identity: which code made a stage, as a digest that enters the stage's key.

A stage's output is a function of its config, its inputs and the code that computes it. Keys held
the first two only, so a changed loss or scorer silently reused old results. Here the code a stage
runs is found from the code itself, not from a list kept by hand:

* a stage's **roots** (:data:`STAGE_ROOTS`) are the functions that build it and that take from it
  what later stages need (``STAGES`` in :mod:`harness.pipeline.stages`); the data's root is the code
  that loads and draws the splits. A root is read at the level of functions: its own code, the
  functions, classes and assignments of its module that it names (``self.x`` included), whatever its
  module runs on import, and the modules its names come from;
* from there, the **import closure**: every module those modules import, at import time or inside a
  function (relative imports resolved; an ``if TYPE_CHECKING:`` block never runs and is left out),
  followed through the harness, the task plugins (``harness_tasks``), a plugin's own package and any
  module that is not installed (a helper next to a ``--plugins`` file) — never into the standard
  library or site-packages. A package's ``__init__`` enters when it is imported by name (``from ..lm
  import build_model``), not because one of its submodules is;
* a **plugin** the stage calls (a method, a task) enters as its whole package (a task's ``records.py``
  and ``twin.py`` as well as its ``__init__``) or its one file, plus the import closure of that code;
* a module's digest is taken over its syntax tree with docstrings dropped, so editing a comment or a
  docstring changes nothing, while any change to what runs does. Beyond the roots, digests are per
  module: coarse but safe (a fix to KL's loss re-keys every method defined in the same module).

Modules on no stage's path (the report, the grid, the CLI) enter no key, so editing them throws
nothing away; a module on the path enters by definition, whatever it is for (the progress bars that
training draws, the store's helpers that the data's sampling imports).

Files are read once per process — the code this process runs; :func:`forget` reads them again.

Library versions (torch, transformers, tokenizers, ...: :data:`LIBRARIES`) are **not** in keys. An
upgrade would throw every cache away while most upgrades change no number, and the numbers an upgrade
can change (the last bits of a sum) depend as much on the processor and torch's thread count, which no
key holds either. They are recorded instead, with each stage (its ``host``) and in each run's manifest,
and a stage reused under other versions says so when it is reused.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import pkgutil
import platform
import site
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BUILDERS = "harness.pipeline.stages"
#: stage → its roots: ``module:qualname`` (a function or class and what it names) or ``module`` (all of it).
STAGE_ROOTS: dict[str, tuple[str, ...]] = {
    # The records every stage is made of: how the splits are loaded and drawn (the task plugin enters as
    # a plugin).
    "data": ("harness.pipeline.load:load_examples",),
    # The stages: how each is built and what a run takes from it (STAGES in harness.pipeline.stages).
    "tokenizer": (f"{BUILDERS}:build_tokenizer", f"{BUILDERS}:load_tokenized"),
    "teacher": (f"{BUILDERS}:build_teacher", f"{BUILDERS}:load_teacher"),
    "pseudo_labels": (f"{BUILDERS}:build_pseudo_labels", f"{BUILDERS}:load_pseudo_labels"),
    "teacher_outputs": (f"{BUILDERS}:build_teacher_outputs", f"{BUILDERS}:load_teacher_outputs"),
    "student": (f"{BUILDERS}:build_student",),
    "evaluation": (f"{BUILDERS}:build_evaluation",),
}
#: This project's top-level packages: followed wherever they are installed.
PROJECT_PACKAGES = ("harness", "harness_tasks")
#: Libraries whose versions each stage and run records (never keyed; see the module docstring).
LIBRARIES = ("torch", "transformers", "tokenizers", "accelerate", "sacrebleu")
PLUGIN_FILE_PREFIX = "harness_plugin_"   # the module names harness.registry.load_plugin_file makes up


# ---------------------------------------------------------------- syntax trees and their digests

def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _node_digest(node: ast.AST) -> str:
    return hashlib.sha256(ast.dump(node, annotate_fields=False, include_attributes=False).encode()).hexdigest()


def _parse(path: Path) -> tuple[ast.Module, str]:
    """A file's syntax tree without docstrings, and its digest (of the bytes when it is not Python we can parse)."""
    source = path.read_text(encoding="utf-8")
    try:
        tree = _strip_docstrings(ast.parse(source))
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[]), hashlib.sha256(source.encode()).hexdigest()
    return tree, _node_digest(tree)


def file_digest(path: str | Path) -> str:
    """Digest of one Python source file's code (docstrings and comments ignored), read now."""
    return _parse(Path(path))[1]


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
                                         or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _code_nodes(node: ast.AST, annotations: bool = True):
    """``ast.walk`` without what never runs: ``if TYPE_CHECKING:`` blocks, and annotations unless asked for."""
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        for name, value in ast.iter_fields(node):
            if not annotations and name in ("annotation", "returns"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST) and not _is_type_checking(child):
                    stack.append(child)


def _bindings(body: list[ast.stmt]) -> dict[str, list[ast.stmt]]:
    """Names a module (or class) body binds → the statements that bind them (looking into ``if``/``try``)."""
    out: dict[str, list[ast.stmt]] = {}
    for stmt in body:
        names: list[str] = []
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [stmt.name]
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in stmt.names]
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(stmt, (ast.If, ast.Try)) and not _is_type_checking(stmt):
            blocks = [stmt.body, stmt.orelse] + ([h.body for h in stmt.handlers] + [stmt.finalbody]
                                                 if isinstance(stmt, ast.Try) else [])
            for block in blocks:
                for name, stmts in _bindings(block).items():
                    out.setdefault(name, []).extend(stmts)
        for name in names:
            out.setdefault(name, []).append(stmt)
    return out


_BINDING = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign,
            ast.AnnAssign, ast.AugAssign)


def _runs_on_import(tree: ast.Module) -> list[ast.stmt]:
    """What a module runs when imported besides defining names (a call, a loop, a guarded block)."""
    return [s for s in tree.body if not isinstance(s, _BINDING) and not _is_type_checking(s)]


def _find(body: list[ast.stmt], qualname: str) -> tuple[ast.stmt, ast.ClassDef | None] | None:
    """The definition ``qualname`` names in a module body, and the class it is a member of (if any)."""
    node, owner = None, None
    for part in qualname.split("."):
        if node is not None:
            if not isinstance(node, ast.ClassDef):
                return None
            owner = node
        node = next((s for s in reversed(body) if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and s.name == part), None)
        if node is None:
            return None
        body = node.body
    return node, owner


# ---------------------------------------------------------------- where modules are

@lru_cache(maxsize=None)
def _installed_dirs() -> tuple[str, ...]:
    """The standard library's and the installed distributions' folders."""
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= set(getattr(site, "getsitepackages", lambda: [])())
    if site.ENABLE_USER_SITE:
        paths.add(site.getusersitepackages())
    return tuple(os.path.realpath(p).rstrip(os.sep) + os.sep for p in paths if p)


def _installed(path: str) -> bool:
    return os.path.realpath(path).startswith(_installed_dirs())


@dataclass
class Source:
    """One module's source: where it is, what its relative imports resolve against, its tree and digest."""

    name: str
    path: Path
    package: str
    tree: ast.Module
    digest: str


def _absolute(node: ast.ImportFrom, package: str) -> str | None:
    if not node.level:
        return node.module
    parts = package.split(".") if package else []
    if node.level > len(parts):
        return None   # beyond the top-level package: fails when it runs, nothing to follow
    return ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))


def _nested_spec(name: str, locations: list[str]) -> importlib.machinery.ModuleSpec | None:
    """``PathFinder.find_spec(name, locations)``, also for a namespace package inside another one (no
    ``__init__.py`` in either, e.g. ``pycocoevalcap.bleu``): PathFinder builds such a package's path from its parent
    module, which raises KeyError where the parent is not imported (nothing is imported here); then the spec is
    made from each location's finder, its folders the portions they found."""
    try:
        return importlib.machinery.PathFinder.find_spec(name, locations)
    except KeyError:
        portions: list[str] = []
        for location in locations:
            finder = pkgutil.get_importer(location)
            found = finder.find_spec(name) if finder is not None else None
            if found is not None and found.loader is not None:
                return found                                   # a module or a regular package comes first
            if found is not None:
                portions += list(found.submodule_search_locations or [])
        if not portions:
            return None
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = portions
        return spec


class Codebase:
    """The modules of this process's import path, found by name without importing them, each read once."""

    def __init__(self):
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}
        self._sources: dict[str, Source | None] = {}
        self._local: dict[str, bool] = {}
        self._imports: dict[tuple, frozenset[str]] = {}
        self._roots: dict[tuple, dict[str, str]] = {}
        self._plugins: dict[type, dict[str, str]] = {}

    # ------------------------------------------------ finding and reading modules
    def spec(self, name: str) -> importlib.machinery.ModuleSpec | None:
        if name not in self._specs:
            self._specs[name] = self._find_spec(name)
        return self._specs[name]

    def _find_spec(self, name: str):
        parent = name.rpartition(".")[0]
        try:
            if not parent:   # the interpreter's own finders (sys.path, editable installs); imports nothing
                return importlib.util.find_spec(name)
            up = self.spec(parent)
            if up is None or up.submodule_search_locations is None:
                return None
            return _nested_spec(name, list(up.submodule_search_locations))
        except (ImportError, ValueError):
            return None

    def source(self, name: str) -> Source | None:
        """The module ``name`` as Python source (None: not found, not a ``.py`` file)."""
        if name not in self._sources:
            spec = self.spec(name)
            origin = spec.origin if spec is not None and spec.has_location else None
            if origin is None or not origin.endswith(".py"):
                self._sources[name] = None
            else:
                package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
                self._sources[name] = self._read(name, Path(origin), package)
        return self._sources[name]

    def _read(self, name: str, path: Path, package: str) -> Source:
        tree, digest = _parse(path)
        return Source(name, path, package, tree, digest)

    def followed(self, name: str, tops: tuple[str, ...] = ()) -> bool:
        """Whether the closure goes into ``name``: this project, a plugin's own package, or code not installed."""
        top = name.partition(".")[0]
        if top in PROJECT_PACKAGES or top in tops:
            return True
        if top not in self._local:
            spec = self.spec(top)
            places = [] if spec is None else [spec.origin] if spec.has_location and spec.origin \
                else list(spec.submodule_search_locations or [])
            self._local[top] = bool(places) and all(p.endswith(".py") or os.path.isdir(p) for p in places) \
                and not any(_installed(p) for p in places)
        return self._local[top]

    # ------------------------------------------------ imports
    def bound_modules(self, node: ast.Import | ast.ImportFrom, package: str, tops: tuple[str, ...]
                      ) -> list[tuple[str, str]]:
        """(name bound, module it names) of one import statement, for the modules the closure follows."""
        out = []
        if isinstance(node, ast.Import):
            for alias in node.names:
                if self.followed(alias.name, tops) and self.source(alias.name) is not None:
                    out.append(((alias.asname or alias.name).split(".")[0], alias.name))
            return out
        base = _absolute(node, package)
        if base is None or not self.followed(base, tops):
            return out
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if alias.name != "*" and self.source(sub) is not None:   # `from pkg import module`
                out.append((alias.asname or alias.name, sub))
            elif self.source(base) is not None:                       # `from module import name`
                out.append((alias.asname or alias.name, base))
        return out

    def imports(self, source: Source, tops: tuple[str, ...] = ()) -> frozenset[str]:
        """The followed modules a module imports, at import time or inside a function."""
        key = (source.name, str(source.path), tops)
        if key not in self._imports:
            found = {module for node in _code_nodes(source.tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                     for _, module in self.bound_modules(node, source.package, tops)}
            self._imports[key] = frozenset(found - {source.name})
        return self._imports[key]

    def closure(self, modules: set[str], tops: tuple[str, ...] = ()) -> set[str]:
        """``modules`` and every followed module they import, transitively."""
        seen: set[str] = set()
        todo = list(modules)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            source = self.source(name)
            if source is not None:
                todo += self.imports(source, tops)
        return seen

    # ------------------------------------------------ roots and plugins
    def root_parts(self, root: str) -> tuple[dict[str, ast.AST], set[str]]:
        """A root's own code (label → node) and the modules its names come from."""
        module, _, qualname = root.partition(":")
        source = self.source(module)
        found = _find(source.tree.body, qualname) if source is not None and qualname else None
        if source is None or (qualname and found is None):
            raise LookupError(f"code identity: the root {root} is not in the code (harness.identity.STAGE_ROOTS)")
        if not qualname:
            return {module: source.tree}, set(self.imports(source))
        bindings = _bindings(source.tree.body)
        modules = {m for stmt in bindings.get("*", []) for _, m in self.bound_modules(stmt, source.package, ())}
        parts: dict[str, ast.AST] = {}
        todo: list[tuple[str, ast.AST, ast.ClassDef | None]] = [(qualname, *found)]
        on_import = _runs_on_import(source.tree)
        if on_import:
            todo.append(("<module>", ast.Module(body=on_import, type_ignores=[]), None))
        seen: set[int] = set()
        while todo:
            label, node, owner = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if label in parts:   # one name bound twice (an assignment, then a def): both are code
                label = f"{label}@{getattr(node, 'lineno', len(parts))}"
            parts[label] = node
            members = _bindings(owner.body) if owner is not None else {}
            for sub in _code_nodes(node, annotations=False):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    modules |= {m for _, m in self.bound_modules(sub, source.package, ())}
                elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                    for stmt in bindings.get(sub.id, []):
                        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                            modules |= {m for bound, m in self.bound_modules(stmt, source.package, ())
                                        if bound == sub.id}
                        else:
                            todo.append((getattr(stmt, "name", sub.id), stmt,
                                         stmt if isinstance(stmt, ast.ClassDef) else None))
                elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) \
                        and sub.value.id in ("self", "cls") and owner is not None:
                    for stmt in members.get(sub.attr, []):
                        todo.append((f"{owner.name}.{getattr(stmt, 'name', sub.attr)}", stmt, owner))
        return {f"{module}:{label}": node for label, node in parts.items()}, modules

    def roots_identity(self, roots: tuple[str, ...]) -> dict[str, str]:
        """``{root part or module: digest}`` of some roots and their import closure."""
        if roots not in self._roots:
            out, modules = {}, set()
            for root in roots:
                parts, imported = self.root_parts(root)
                out.update({label: _node_digest(node) for label, node in parts.items()})
                modules |= imported
            for name in sorted(self.closure(modules)):
                source = self.source(name)
                if source is not None and name not in out:
                    out[name] = source.digest
            self._roots[roots] = out
        return dict(self._roots[roots])

    def plugin_identity(self, cls: type) -> dict[str, str]:
        """``{plugin: digest of its files}`` and ``{module: digest}`` of what its files import."""
        if cls not in self._plugins:
            files = plugin_files(cls)
            root = Path(inspect.getfile(cls)).parent if len(files) > 1 else None   # the plugin's package
            own = [self._plugin_source(cls, path, root) for path in files]
            digest = hashlib.sha256()
            for source in own:
                digest.update(str(source.path.relative_to(root) if root else source.path.name).encode())
                digest.update(source.digest.encode())
            out = {plugin_name(cls): digest.hexdigest()}
            top = cls.__module__.partition(".")[0]
            tops = () if top in PROJECT_PACKAGES or top.startswith(PLUGIN_FILE_PREFIX) else (top,)
            names = {s.name for s in own}
            imported = set().union(*(self.imports(s, tops) for s in own))
            for name in sorted(self.closure(imported - names, tops) - names):
                source = self.source(name)
                if source is not None:
                    out[name] = source.digest
            self._plugins[cls] = out
        return dict(self._plugins[cls])

    def _plugin_source(self, cls: type, path: Path, root: Path | None) -> Source:
        """One file of a plugin as a module of its package (under ``root``, its folder; None: the plugin is
        one file, a ``--plugins`` file with its made-up module name for one)."""
        if root is None:
            name = cls.__module__
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        else:
            package = cls.__module__ if Path(inspect.getfile(cls)).name == "__init__.py" \
                else cls.__module__.rpartition(".")[0]
            parts = list(path.relative_to(root).with_suffix("").parts)
            name = ".".join([package, *parts[:-1]] + ([] if parts[-1] == "__init__" else [parts[-1]]))
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        if name not in self._sources:
            self._sources[name] = self._read(name, path, package)
        return self._sources[name]

    def identity(self, stage: str, plugins: tuple[type, ...] = ()) -> dict[str, str]:
        if stage not in STAGE_ROOTS:
            raise KeyError(f"no code identity for stage {stage!r} (known: {', '.join(STAGE_ROOTS)})")
        out = self.roots_identity(STAGE_ROOTS[stage])
        for cls in plugins:
            out.update(self.plugin_identity(cls))
        return dict(sorted(out.items()))


_CODEBASE = Codebase()


def forget() -> None:
    """Read every file again at the next identity (the code on disk changed in this process's lifetime)."""
    global _CODEBASE
    importlib.invalidate_caches()
    _CODEBASE = Codebase()


def plugin_files(cls: type) -> list[Path]:
    """The files a plugin class's behaviour can depend on: its whole package when it lives in one
    that is not the harness itself (a task's records and twin), else its own module."""
    module = sys.modules.get(cls.__module__)
    file = Path(inspect.getfile(cls))
    package = (module.__name__.rpartition(".")[0] if module is not None and module.__name__.count(".") else "") \
        if file.name != "__init__.py" else cls.__module__
    if package and package.split(".")[0] != "harness" and file.parent.is_dir():
        return sorted(p for p in file.parent.rglob("*.py") if "__pycache__" not in p.parts)
    return [file]


def plugin_name(cls: type) -> str:
    """How the code identity names a plugin: ``module.Class``, or ``file.py:Class`` for a ``--plugins`` file
    (whose module name the loader makes up)."""
    if cls.__module__.startswith(PLUGIN_FILE_PREFIX):
        return f"{Path(inspect.getfile(cls)).name}:{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def code_identity(stage: str, plugins: tuple[type, ...] = ()) -> dict[str, str]:
    """``{root part, module or plugin: digest}`` of the code ``stage`` runs: its roots (:data:`STAGE_ROOTS`),
    the plugins it calls and their import closure. Enters the stage key and the manifest."""
    return _CODEBASE.identity(stage, plugins)


def digest(identity: dict[str, str]) -> str:
    """One short digest of a code identity (what a key holds)."""
    return hashlib.sha256("".join(f"{k}={v};" for k, v in sorted(identity.items())).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- library versions (recorded, not keyed)

@lru_cache(maxsize=None)
def _library_versions() -> tuple[tuple[str, str | None], ...]:
    from importlib.metadata import PackageNotFoundError, version

    out = [("python", platform.python_version())]
    for name in LIBRARIES:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            out.append((name, None))
    return tuple(out)


def library_versions() -> dict[str, str | None]:
    """The versions of python and :data:`LIBRARIES` in this process (None: not installed)."""
    return dict(_library_versions())


def library_changes(recorded: dict | None) -> list[str]:
    """What differs between the library versions a stage recorded and this process's (``torch 2.3.0 → 2.4.1``);
    empty when the stage recorded none."""
    now = library_versions()
    return [f"{name} {recorded[name]} → {now[name]}" for name in now
            if recorded and name in recorded and recorded[name] != now[name]]
