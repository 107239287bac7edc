"""Grid specs: which cells a grid has.

A spec is a TOML (or YAML) file::

    name = "figure2"
    description = "DART BLEU against the student's encoder depth"
    profile = "cpu"                    # the default; --profile overrides it
    tasks = ["dart"]                   # or "all": every registered task
    methods = ["seqkd", "kl", "js"]    # or "all": every registered method
    seeds = [42]

    [set]                              # the same in every cell (dotted config keys, as --set)
    "student.decoder_layers" = 1

    [axes]                             # swept: one cell per combination of values
    "student.encoder_layers" = [1, 2, 3]

    [task_set.dart]                    # the same in every cell of one task (after [set])
    "data.data_dir" = "../shared/data/dart"

    [profiles.ci]                      # on that profile, replaces the keys above
    axes = { "student.encoder_layers" = [1, 2] }   # (set and axes are merged key by key)

    [resources]                        # what one cell asks a Ray cluster for
    cpus = 1
    gpus = 0

The cells are tasks × methods × seeds × axes. A ``method.NAME`` setting or axis
applies to the methods that have the parameter NAME (JS's β leaves TVD alone), and
it is an error if no method of the grid has it; a ``predistill.NAME`` one (the shared
pre-distilled student's parameters) applies to the methods that start from that student. Grids shipped with harness
(:data:`SHIPPED`) are named instead of given as paths.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import paper
from ..config import RunConfig, param_group, param_key, resolve_config
from ..errors import HarnessError
from ..registry import METHODS, TASKS

SHIPPED = ("table2", "figure2", "table4", "table2_real", "store_ksweep", "calibration", "table2_teachers")
ALL = ("all", "*")
# Display and run order of "all": the paper's, then anything else alphabetically.
TASK_ORDER, METHOD_ORDER = paper.TASKS, paper.METHODS
RESERVED = {"task": "tasks", "method": "methods", "seed": "seeds", "profile": "profile",
            "results_dir": "--results-dir",
            # a cell's processes: a command-line option (local) or its GPUs (Ray), not a setting of the spec
            "processes": "`harness grid --processes N` (or, on Ray, --gpus-per-cell N)"}
_TOP_KEYS = {"name", "description", "profile", "tasks", "methods", "seeds", "set", "task_set", "axes", "profiles",
             "resources"}
_PROFILE_KEYS = {"tasks", "methods", "seeds", "set", "task_set", "axes", "resources"}


@dataclass
class GridSpec:
    name: str
    description: str = ""
    profile: str = "cpu"
    tasks: list[str] = field(default_factory=lambda: ["all"])
    methods: list[str] = field(default_factory=lambda: ["all"])
    seeds: list[int] = field(default_factory=lambda: [42])
    set: dict[str, Any] = field(default_factory=dict)
    task_set: dict[str, dict[str, Any]] = field(default_factory=dict)   # task → settings of its cells only
    axes: dict[str, list[Any]] = field(default_factory=dict)
    profiles: dict[str, dict] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=lambda: {"cpus": 1, "gpus": 0})
    source: str = ""

    def for_profile(self, profile: str | None = None) -> "GridSpec":
        """This spec on ``profile`` (default: its own), with that profile's section applied."""
        profile = profile or self.profile
        section = self.profiles.get(profile, {})
        merged = replace(self, profile=profile, profiles={})
        for key, value in section.items():
            if key in ("set", "axes", "resources"):
                setattr(merged, key, {**getattr(self, key), **value})
            elif key == "task_set":
                merged.task_set = {task: {**self.task_set.get(task, {}), **sets}
                                   for task, sets in {**self.task_set, **value}.items()}
            else:
                setattr(merged, key, value)
        return merged


@dataclass(frozen=True)
class Cell:
    """One run of a grid: everything a process needs to run it, and its id."""

    run_id: str
    task: str
    method: str
    seed: int
    profile: str
    values: tuple[tuple[str, Any], ...]     # spec settings and this cell's axis values (checked Python values)
    sets: tuple[tuple[str, str], ...]       # command-line --set pairs (text), applied after ``values``
    axes: tuple[tuple[str, Any], ...]       # this cell's axis values, for display and the grid record
    results_dir: str
    plugins: tuple[str, ...] = ()
    report_to: tuple[str, ...] = ()         # the run's trackers (harness.tracking): not configuration, no key

    def config(self) -> RunConfig:
        return resolve_config(self.task, self.method, self.profile, self.seed,
                              sets=[*self.sets, ("results_dir", self.results_dir)], overrides=dict(self.values))

    def label(self) -> str:
        axes = ", ".join(f"{k}={v}" for k, v in self.axes)
        return f"{self.task} · {self.method} · seed {self.seed}" + (f" · {axes}" if axes else "")


# ---------------------------------------------------------------- reading specs

def load_spec(name_or_path: str) -> GridSpec:
    """A shipped spec by name (``table2``) or a spec file (``.toml``, ``.yaml``/``.yml``)."""
    path = Path(name_or_path)
    if path.is_file():
        return parse_spec(path.read_text(), path.suffix, str(path))
    if name_or_path in SHIPPED:
        from importlib.resources import files

        text = (files("harness.grid") / "specs" / f"{name_or_path}.toml").read_text()
        return parse_spec(text, ".toml", f"harness/grid/specs/{name_or_path}.toml")
    raise HarnessError(f"grid spec {name_or_path!r}: no such file, and not a shipped grid "
                       f"(shipped: {', '.join(SHIPPED)})")


def parse_spec(text: str, suffix: str, source: str) -> GridSpec:
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise HarnessError(f"grid spec {source}: {err}") from None
    else:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise HarnessError(f"grid spec {source}: {err}") from None
    if not isinstance(data, dict):
        raise HarnessError(f"grid spec {source}: expected a table of keys at the top")
    _check_keys(data, _TOP_KEYS, source)
    for profile, section in data.get("profiles", {}).items():
        if not isinstance(section, dict):
            raise HarnessError(f"grid spec {source}: [profiles.{profile}] must be a table")
        _check_keys(section, _PROFILE_KEYS, f"{source} [profiles.{profile}]")
    spec = GridSpec(name=str(data.get("name") or Path(source).stem), source=source)
    for key in ("description", "profile"):
        if key in data:
            setattr(spec, key, str(data[key]))
    for section in (data, *data.get("profiles", {}).values()):
        for key in ("tasks", "methods"):
            if key in section:
                section[key] = _names(section[key], key, source)
        if "seeds" in section:
            section["seeds"] = _seeds(section["seeds"], source)
        for key in ("set", "axes", "resources"):
            if key in section and not isinstance(section[key], dict):
                raise HarnessError(f"grid spec {source}: [{key}] must be a table of key = value")
        task_sets = section.get("task_set", {})
        if not isinstance(task_sets, dict) or not all(isinstance(v, dict) for v in task_sets.values()):
            raise HarnessError(f"grid spec {source}: [task_set.TASK] must be tables of key = value")
        for key, values in section.get("axes", {}).items():
            if not isinstance(values, list) or not values:
                raise HarnessError(f"grid spec {source}: axis {key!r} needs a non-empty list of values")
        for key in (*section.get("set", {}), *section.get("axes", {}), *(k for v in task_sets.values() for k in v)):
            _check_settable(key, source)
    sections = (data, *data.get("profiles", {}).values())
    if not any(key in section for section in sections for key in ("tasks", "methods")):
        raise HarnessError(f"grid spec {source}: names neither tasks nor methods; write tasks = [...] and "
                           f"methods = [...] (\"all\" for every registered one)")
    for key in ("tasks", "methods", "seeds", "set", "task_set", "axes", "profiles"):
        if key in data:
            setattr(spec, key, data[key])
    spec.resources = {**spec.resources, **data.get("resources", {})}
    return spec


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise HarnessError(f"grid spec {where}: unknown key(s) {', '.join(unknown)}; "
                           f"valid: {', '.join(sorted(allowed))}")


def _names(value, key: str, source: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise HarnessError(f"grid spec {source}: {key} must be \"all\" or a non-empty list of names")
    return value


def _seeds(value, source: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool)
                                                           for v in value):
        raise HarnessError(f"grid spec {source}: seeds must be a non-empty list of integers")
    return value


def _check_settable(key: str, where: str) -> None:
    if key in RESERVED:
        raise HarnessError(f"{where}: {key!r} cannot be set or swept here; use {RESERVED[key]}")


# ---------------------------------------------------------------- command-line overrides

def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_axis(text: str) -> tuple[str, list[str]]:
    """``student.encoder_layers=1,2,3`` → (key, ["1", "2", "3"])."""
    if "=" not in text:
        raise HarnessError(f"--axis expects KEY=V1,V2,…, got {text!r}")
    key, values = text.split("=", 1)
    key, values = key.strip(), parse_list(values)
    if not values:
        raise HarnessError(f"--axis {key}: no values")
    _check_settable(key, "--axis")
    return key, values


def with_overrides(spec: GridSpec, *, tasks: str | None = None, methods: str | None = None,
                   seeds: str | None = None, axes: list[str] | tuple = ()) -> GridSpec:
    """The spec with ``--tasks/--methods/--seeds`` replaced and ``--axis`` axes added or replaced — in its profile
    sections too (``[profiles.ci] seeds = [42]``): the command line wins over the spec file, whichever profile
    :meth:`GridSpec.for_profile` applies after."""
    given = {name for name, value in (("tasks", tasks), ("methods", methods), ("seeds", seeds)) if value is not None}
    given_axes = {parse_axis(text)[0] for text in axes}
    profiles = {}
    for name, section in spec.profiles.items():
        section = {k: v for k, v in section.items() if k not in given}
        if "axes" in section:
            section["axes"] = {k: v for k, v in section["axes"].items() if k not in given_axes}
        profiles[name] = section
    spec = replace(spec, set=dict(spec.set), axes=dict(spec.axes), profiles=profiles)
    if tasks is not None:
        spec.tasks = parse_list(tasks) or ["all"]
    if methods is not None:
        spec.methods = parse_list(methods) or ["all"]
    if seeds is not None:
        try:
            spec.seeds = [int(s) for s in parse_list(seeds)]
        except ValueError:
            raise HarnessError(f"--seeds {seeds}: expected integers, e.g. --seeds 42,43") from None
        if not spec.seeds:
            raise HarnessError("--seeds: no seeds given")
    for text in axes:
        key, values = parse_axis(text)
        spec.axes[key] = values
    return spec


# ---------------------------------------------------------------- cells

def resolve_names(names: list[str], registry, order: tuple[str, ...]) -> list[str]:
    """Registry names in run order; ``all`` expands to every registered name."""
    out: list[str] = []
    for name in names:
        if name in ALL:
            known = registry.names()
            ranked = sorted(known, key=lambda n: paper.order_key(n, order))
            out.extend(n for n in ranked if n not in out)
        else:
            registry.get(name)   # unknown → a one-line error with the known names
            if name not in out:
                out.append(name)
    return out


def method_parameters(method: str) -> set[str]:
    return {f.name for f in dataclasses.fields(METHODS.get(method).Params)}


def starts_predistilled(method: str) -> bool:
    """A KD method trained from the shared pre-distilled student (which ``predistill.*`` sets; the
    pre-distillation itself starts from a layer copy)."""
    return METHODS.get(method).init == "predistilled"


def _applies(key: str, method: str) -> bool:
    group, name = param_group(key)   # either spelling: method.beta or method_params.beta
    if group == "method":
        return name in method_parameters(method)
    if group == "predistill":
        return starts_predistilled(method)
    return True


#: A grid of more cells than this runs only with ``--yes``: its size is printed first (a mistyped axis can make
#: thousands of cells, each resolved and planned before anything runs).
MAX_CELLS_UNASKED = 500


def count_cells(spec: GridSpec) -> int:
    """How many cells :func:`expand` makes of ``spec`` at most (before cells with equal configs merge), without
    resolving any: tasks × methods × seeds × the values of the axes that apply to each method."""
    tasks = resolve_names(spec.tasks, TASKS, TASK_ORDER)
    methods = resolve_names(spec.methods, METHODS, METHOD_ORDER)
    per_method = [math.prod(len(vs) for k, vs in spec.axes.items() if _applies(k, m)) for m in methods]
    return len(tasks) * len(spec.seeds) * sum(per_method)


def expand(spec: GridSpec, results_dir: str, sets: list[tuple[str, str]] | tuple = (),
           plugins: tuple[str, ...] = (), processes: int = 1) -> list[Cell]:
    """Every cell of ``spec`` (already :meth:`GridSpec.for_profile`), its config resolved and checked.

    ``sets`` are command-line ``--set`` pairs, applied last. Cells with the same run id
    (the same resolved config) appear once. ``processes``: each cell's data-parallel processes (``--processes``;
    a setting of its config, keyed into its training stages and run id above one).
    """
    tasks = resolve_names(spec.tasks, TASKS, TASK_ORDER)
    methods = resolve_names(spec.methods, METHODS, METHOD_ORDER)
    for key, _ in sets:
        _check_settable(key, "--set")
    for key in (*spec.set, *spec.axes, *(k for k, _ in sets)):
        key, (group, name) = param_key(key), param_group(key)
        if group == "method" and not any(_applies(key, m) for m in methods):
            params = "; ".join(f"{m}: {', '.join(sorted(method_parameters(m))) or '(none)'}" for m in methods)
            raise HarnessError(f"{key}: no method of this grid has the parameter {name!r} (parameters: {params})")
        if group == "predistill" and not any(_applies(key, m) for m in methods):
            raise HarnessError(f"{key}: no method of this grid starts from the pre-distilled student "
                               f"(methods: {', '.join(methods)})")
    from ..pipeline.graph import run_id as cell_run_id

    cells: dict[str, Cell] = {}
    for task, method in itertools.product(tasks, methods):
        fixed = tuple((k, v) for k, v in {**spec.set, **spec.task_set.get(task, {})}.items() if _applies(k, method))
        axes = [(k, vs) for k, vs in spec.axes.items() if _applies(k, method)]
        cli = tuple((k, v) for k, v in sets if _applies(k, method)) + ((("processes", str(processes)),)
                                                                      if processes > 1 else ())
        for seed in spec.seeds:
            for combo in itertools.product(*(vs for _, vs in axes)):
                chosen = tuple(zip((k for k, _ in axes), combo))
                cell = Cell("", task, method, int(seed), spec.profile, fixed + chosen, cli, chosen,
                            str(results_dir), tuple(plugins))
                try:
                    cfg = cell.config()
                except HarnessError as err:
                    raise HarnessError(f"grid cell {cell.label()}: {err}") from None
                run_id = cell_run_id(cfg)
                cells.setdefault(run_id, replace(cell, run_id=run_id))
    return list(cells.values())


def check_sweeps(spec: GridSpec) -> None:
    """``--select-on validation`` needs a swept setting (an axis) to choose a value of."""
    if not spec.axes:
        raise HarnessError("--select-on validation: the grid sweeps nothing to choose from; add an axis "
                           "(--axis KEY=V1,V2 or the spec's [axes])")


def check_selectable(cells: list[Cell]) -> None:
    """What ``--select-on validation`` needs of the cells, checked before any work: in every cell a trained model
    that records validation scores (its stage's ``evals_per_epoch`` > 0)."""
    from ..pipeline.graph import plan_for
    from ..store.labels import METHOD

    for cell in cells:
        train = plan_for(cell.config())[METHOD].config["train"]
        if train["epochs"] > 0 and not train["evals_per_epoch"] > 0:
            raise HarnessError(f"--select-on validation: grid cell {cell.label()} trains without validation checks "
                               f"(its evals_per_epoch is 0), so it has no validation score to choose by; set "
                               f"its evals_per_epoch > 0")


def interleave_tasks(cells: list[Cell]) -> list[Cell]:
    """Round-robin over tasks, so that parallel workers start on different tasks' teachers."""
    by_task: dict[str, list[Cell]] = {}
    for cell in cells:
        by_task.setdefault(cell.task, []).append(cell)
    out = []
    for group in itertools.zip_longest(*by_task.values()):
        out.extend(c for c in group if c is not None)
    return out
