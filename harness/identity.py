"""Code identity: which code made a stage, as a digest that enters the stage's key.

A stage's output is a function of its config, its inputs and the code that computes it.
Keys held the first two only, so a changed loss or scorer silently reused old results.
Here every stage names the code it runs — the harness modules on its path plus the
plugin (method or task) it calls — and its key includes a digest of that code:

* a module's digest is taken over its syntax tree with docstrings dropped, so editing a
  comment or a docstring changes nothing, while any change to what runs does;
* a plugin's digest covers every module of the package that defines it (a task's
  ``records.py`` and ``twin.py`` as well as its ``__init__``), or its one file;
* harness modules that no stage runs (reports, grids, the CLI, the store) are in no
  stage's code, so editing them throws nothing away.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import sys
from functools import lru_cache
from pathlib import Path

#: Harness modules every training or decoding stage runs (the model adapters, the step and its loop,
#: tokenised batches, decoding and scoring helpers, the method interface and its divergences).
CORE = ("harness.lm.base", "harness.lm.seq2seq", "harness.lm.causal", "harness.lm.build", "harness.data",
        "harness.evaluate", "harness.metrics", "harness.methods.base", "harness.methods.divergences")
TRAINING = ("harness.train", "harness.store.checkpoints", "harness.step.prefixes", "harness.step.loss",
            "harness.step.fast", "harness.step.accumulate")
BUILD = ("harness.pipeline.stages",)   # how each stage is built from its inputs
#: What a task's data depend on besides the task's own package: the task interface and the shared readers.
DATA = ("harness.task", "harness.datasets.sources", "harness.datasets.release", "harness.datasets.split_files",
        "harness.datasets.twins", "harness.datasets.fields", "harness.datasets.sampling")
#: stage → the harness modules it runs, beyond the plugins it calls ("data": the records a task loads).
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "data": DATA,
    "tokenizer": ("harness.lm.build", "harness.data") + BUILD,
    "teacher": CORE + TRAINING + BUILD + ("harness.methods.baselines",),
    "pseudo_labels": CORE + BUILD,
    "teacher_outputs": CORE + BUILD + ("harness.methods.topk",),
    "student": CORE + TRAINING + BUILD + ("harness.methods.topk",),
    "evaluation": CORE + BUILD,
}


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@lru_cache(maxsize=None)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    source = Path(path).read_text(encoding="utf-8")
    try:
        canonical = ast.dump(_strip_docstrings(ast.parse(source)), annotate_fields=False, include_attributes=False)
    except SyntaxError:   # not Python we can parse: the bytes themselves
        canonical = source
    return hashlib.sha256(canonical.encode()).hexdigest()


def file_digest(path: str | Path) -> str:
    """Digest of one Python source file's code (docstrings and comments ignored)."""
    stat = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def module_files(module_name: str) -> list[Path]:
    """The source files of a module: for a package's module, every ``.py`` file of that package."""
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    file = getattr(module, "__file__", None)
    if file is None:
        return []
    path = Path(file)
    return [path] if path.suffix == ".py" else []


def plugin_files(cls: type) -> list[Path]:
    """The files a plugin class's behaviour can depend on: its whole package when it lives in one
    that is not the harness itself (a task's records and twin), else its own module."""
    module = sys.modules.get(cls.__module__)
    file = Path(inspect.getfile(cls))
    package = (module.__name__.rpartition(".")[0] if module is not None and module.__name__.count(".") else "") \
        if file.name != "__init__.py" else cls.__module__
    if package and package.split(".")[0] != "harness" and file.parent.is_dir():
        return sorted(file.parent.rglob("*.py"))
    return [file]


def plugin_name(cls: type) -> str:
    """How the code identity names a plugin: ``module.Class``, or ``file.py:Class`` for a ``--plugins`` file
    (whose module name the loader makes up)."""
    if cls.__module__.startswith("harness_plugin_"):
        return f"{Path(inspect.getfile(cls)).name}:{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def code_identity(stage: str, plugins: tuple[type, ...] = ()) -> dict[str, str]:
    """``{module or plugin: digest}`` of the code ``stage`` runs; enters the stage key and the manifest."""
    out: dict[str, str] = {}
    for name in STAGE_MODULES.get(stage, CORE):
        for path in module_files(name):
            out[name] = file_digest(path)
    for cls in plugins:
        files = plugin_files(cls)
        root = files[0].parent if len(files) > 1 else None
        digest = hashlib.sha256()
        for path in files:
            digest.update(str(path.relative_to(root) if root else path.name).encode())
            digest.update(file_digest(path).encode())
        out[plugin_name(cls)] = digest.hexdigest()
    return out


def digest(identity: dict[str, str]) -> str:
    """One short digest of a code identity (what a key holds)."""
    return hashlib.sha256("".join(f"{k}={v};" for k, v in sorted(identity.items())).encode()).hexdigest()[:16]
