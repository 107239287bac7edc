"""The reference bundle against this code: are its stage keys the ones this code plans, and which cells compare a
new method with its baselines (``harness compare``, ``harness bundle check``).

A bundle (:mod:`harness.store.bundle`) records, for every baseline run it ships, the run's config parameters and
the key of each of its stages. Planning each such run again with this code (:func:`harness.pipeline.graph.plan_for`:
configs and code digests, nothing loaded) gives the keys this code would build: where they differ, the bundle was
made by other stage code or settings, and a new method's cells would not reuse its teacher — they would train their
own, and their scores would not be comparable with the shipped ones (on another machine even the teacher differs).

A new method's cells are one per twin and seed, with the settings every baseline run of the twin shares (the
store's k, …: :meth:`harness.store.bundle.Twin.settings`), so that their upstream stages are the shipped ones.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import HarnessError
from ..store.bundle import CACHE, baseline_commit, compared_twins, teacher_seed
from ..store.io import STAGE_RECORD, atomic_dir, write_json
from ..store.runs import stale_stages
from .spec import Cell, GridSpec, _applies, expand

REBUILD = ("rebuild it from a store made by this code: `harness grid <spec> --results-dir R` (the grid that made "
           "the baselines), then `harness bundle build --results-dir R --out {bundle}`")


@dataclass
class StaleRun:
    twin: str
    run_id: str
    method: str
    seed: int
    stages: list[str]     # labels whose key differs from this code's plan
    reason: str = ""      # why the run could not be planned here (an unknown method, …)

    def describe(self) -> str:
        what = self.reason or f"stage keys differ in {', '.join(self.stages)}"
        return f"{self.twin} {self.method} seed {self.seed}: {what}"


def plan_run(twin: dict, run: dict):
    """This code's plan of a baseline run of the bundle: its task, method, profile and seed, and the config values
    it set away from their defaults."""
    from ..config import resolve_config
    from ..pipeline.graph import plan_for

    cfg = resolve_config(twin["task"], run["method"], twin["profile"], run["seed"],
                         overrides=dict(run["parameters"]), check=False)
    return plan_for(cfg)


def stale_runs(manifest: dict, twins: tuple[str, ...] = ()) -> list[StaleRun]:
    """The bundle's runs on the twins a new method is compared on (of ``twins``' tasks, all when empty) whose stage
    keys this code does not plan. Runs of released text are not planned: their keys hold the digests of data
    files this machine may not have, and nothing trains against them."""
    out = []
    for twin in compared_twins(manifest):
        if twins and twin["task"] not in twins:
            continue
        name = f"{twin['task']}-{twin['profile']}"
        for run in twin["runs"]:
            try:
                planned = plan_run(twin, run).keys()
            except HarnessError as err:
                out.append(StaleRun(name, run["run_id"], run["method"], run["seed"], [],
                                    f"cannot be planned by this code ({err})"))
                continue
            stale = stale_stages({"stages": {label: {"key": key} for label, key in run["stages"].items()}}, planned)
            if stale:
                out.append(StaleRun(name, run["run_id"], run["method"], run["seed"], stale))
    return out


def stale_message(bundle: str | Path, manifest: dict, stale: list[StaleRun]) -> str:
    """One line: how many runs are stale, the first of them, and how to rebuild the bundle."""
    total = sum(len(t["runs"]) for t in compared_twins(manifest))
    return (f"reference bundle {bundle} (commit {baseline_commit(manifest)}) does not match this code's stage plan: "
            f"{len(stale)} of {total} runs differ, e.g. {stale[0].describe()}; "
            + REBUILD.format(bundle=bundle))


# ---------------------------------------------------------------- a new method's cells

def seeds_for(twin: dict, seeds: tuple[int, ...] | None) -> list[int]:
    """The seeds of a method's cells on ``twin``: ``seeds`` when given (``--seeds``, or ``--until-decided``'s seed
    order), else :func:`shared_seeds`."""
    return list(seeds) if seeds else shared_seeds(twin)


def shared_seeds(twin: dict) -> list[int]:
    """The seeds every baseline row of ``twin`` with at least MIN_OWN_SEEDS seeds has (runs at the twin's shared
    settings: not another teacher's, student size's or store's): the design's first look. A row that
    ``--until-decided`` grew (seeds 45, 46, … where its comparisons stayed open) does not make a new method start
    at its n: rounds add seeds where the new method's own comparisons need them. Every seed of the twin where no
    row has MIN_OWN_SEEDS (a bundle of one-seed rows), or where the full rows share no seed. A row is a method at
    one setting of its own parameters (KL at β = 1 and at β = 2 are two rows)."""
    from ..reporting.noise import MIN_OWN_SEEDS

    shared = twin.get("settings", {})
    rows: dict[tuple, set[int]] = {}
    for run in twin["runs"]:
        parameters = run.get("parameters", {})
        own = {k: v for k, v in parameters.items() if not k.startswith("method.")}
        if own == shared:
            method = tuple(sorted((k, repr(v)) for k, v in parameters.items() if k.startswith("method.")))
            rows.setdefault((run["method"], method), set()).add(run["seed"])
    full = [row for row in rows.values() if len(row) >= MIN_OWN_SEEDS]
    common = set.intersection(*full) if full else set()
    return sorted(common) if common else list(twin["seeds"])


def check_tasks(manifest: dict, tasks: tuple[str, ...]) -> None:
    """Each of ``tasks`` (``--tasks``) is a twin's task of the bundle (an unknown one: one line naming them)."""
    known = {t["task"] for t in compared_twins(manifest)}
    unknown = [t for t in tasks if t not in known]
    if unknown:
        from ..errors import UnknownNameError

        raise UnknownNameError("bundled task", unknown[0], sorted(known))


def compare_cells(manifest: dict, method: str, results_dir: str | Path, *, seeds: tuple[int, ...] | None = None,
                  tasks: tuple[str, ...] = (), plugins: tuple[str, ...] = (),
                  teachers: tuple[int, ...] = ()) -> list[Cell]:
    """The cells of ``method`` on each twin of the bundle (of ``tasks``; all when empty): one per seed and teacher,
    in ``results_dir``. A method the bundle ships runs of (a baseline) has its runs' own settings at the teachers
    it was run at, so that its cells at the bundle's seeds are the shipped runs (same run ids: nothing retrained);
    a new method has the twin's shared settings (those that apply to it) at every teacher of the twin. Where a twin
    has several teachers, each cell carries its upstream seed as an axis (``--until-decided`` pairs rows teacher by
    teacher: a family is task × method × teacher). ``teachers`` (``--teachers``): only the cells at these upstream
    seeds — a verdict for those teachers, at a fraction of the cost; one a twin lacks is one line naming its
    teachers. A twin whose bundle ships the upstream stages of some teachers only (``bundle build --teachers``)
    has its cells at those (the default), and a chosen teacher whose stages it does not ship is one line: its
    cells would train their own teacher, which on another machine or thread count is not the one its baselines
    were trained against."""
    check_tasks(manifest, tasks)
    cells: dict[str, Cell] = {}
    for twin in compared_twins(manifest):
        if tasks and twin["task"] not in tasks:
            continue
        twin_teachers = _teachers(twin)
        shipped = set(twin["teachers"]) if "teachers" in twin else None   # None: a bundle from before the field
        chosen = set(teachers) or shipped
        found: set[int] = set()
        for teacher, settings in _settings(twin, method, twin_teachers):
            spec = GridSpec(name="compare", profile=twin["profile"], tasks=[twin["task"]], methods=[method],
                            seeds=seeds_for(twin, seeds), set=settings)
            for cell in expand(spec, str(Path(results_dir).resolve()), plugins=plugins):
                upstream = cell.config().upstream_seed
                effective = _teacher_seed(upstream, cell.seed)
                found.add(effective)
                # (a twin whose every method seed trains its own teacher, upstream seed None, ships each seed's:
                # a seed beyond them trains its own, as the baselines' did, unless --teachers says otherwise)
                if chosen is not None and effective not in chosen and (teachers or upstream is not None):
                    continue
                if len(twin_teachers) > 1:
                    cell = replace(cell, axes=((UPSTREAM, upstream),))
                cells.setdefault(cell.run_id, cell)
        missing = sorted(set(teachers) - found)
        if missing and found:
            whose = "baselines" if not any(r["method"] == method for r in twin["runs"]) else f"{method} runs"
            raise HarnessError(f"--teachers {','.join(map(str, missing))}: the bundle's {twin['task']} {whose} were "
                               f"made at upstream seeds {', '.join(map(str, sorted(found)))} (choose among them, or "
                               f"leave {twin['task']} out with --tasks)")
        unshipped = sorted(set(teachers) - shipped) if shipped is not None else []
        if unshipped:
            raise HarnessError(f"--teachers {','.join(map(str, unshipped))}: the bundle ships the upstream stages of "
                               f"{twin['task']}'s teachers {', '.join(map(str, sorted(shipped)))} only (the runs at "
                               f"the others are records): a cell at another teacher would train its own, not the one "
                               f"those baselines were trained against; choose among the shipped ones")
    return list(cells.values())


UPSTREAM = "upstream_seed"


def _teacher_seed(upstream: int | None, seed: int) -> int:
    """The seed a run's teacher was made from: its upstream seed, or (None) its method seed."""
    return seed if upstream is None else upstream


def _upstream(run: dict) -> int:
    """A shipped run's teacher seed (its parameters leave the default upstream seed out)."""
    return teacher_seed(run["parameters"], run["seed"])


def _teachers(twin: dict) -> list:
    """The upstream seeds of a twin's baseline runs where they vary (None: the profile's default, which a run's
    parameters leave out); [None] where every run shares one teacher (then it is in the twin's settings, or the
    default)."""
    if UPSTREAM in twin["settings"]:
        return [None]
    values = {run["parameters"].get(UPSTREAM) for run in twin["runs"]}
    return sorted(values, key=lambda v: (v is not None, v)) if len(values) > 1 else [None]


def _settings(twin: dict, method: str, teachers: list) -> list[tuple[object, dict]]:
    """(teacher, the config values of ``method``'s cells at it) for each teacher the cells are at: a baseline's, the
    parameters every one of its runs at that teacher set (a run's parameters are its config values away from the
    defaults: they give back its config, so its run id); a new method's, the twin's shared settings that apply to
    it, at every teacher of the twin."""
    shared = {k: v for k, v in twin["settings"].items() if _applies(k, method)}
    out = []
    for teacher in teachers:
        runs = [r for r in twin["runs"] if r["method"] == method
                and (len(teachers) == 1 or r["parameters"].get(UPSTREAM) == teacher)]
        if runs:
            common = set.intersection(*({(k, json.dumps(v, sort_keys=True)) for k, v in r["parameters"].items()}
                                        for r in runs))
            out.append((teacher, {k: json.loads(v) for k, v in sorted(common)}))
        elif not any(r["method"] == method for r in twin["runs"]):
            out.append((teacher, shared if teacher is None else {**shared, UPSTREAM: teacher}))
    return out


def baseline_methods(manifest: dict, tasks: tuple[str, ...] = ()) -> list[str]:
    """The methods the bundle ships runs of on its twins (of ``tasks``; all when empty), in their runs' order."""
    return list(dict.fromkeys(r["method"] for t in compared_twins(manifest) if not tasks or t["task"] in tasks
                              for r in sorted(t["runs"], key=lambda r: r["run_id"])))


def grown_cells(manifest: dict, methods: list[str], results_dir: str | Path, seeds: list[int], *,
                tasks: tuple[str, ...] = (), plugins: tuple[str, ...] = (),
                teachers: tuple[int, ...] = ()) -> list[Cell]:
    """``harness compare --until-decided``'s cells: those of each of ``methods`` (the new method and the baselines
    its comparisons name) at every seed of the design's order ``seeds``, on the twins where each runs (a baseline:
    where the bundle ships its runs; its cells at the bundle's seeds are the shipped runs, the others are trained
    here on the shipped upstream stages)."""
    out: list[Cell] = []
    for method in methods:
        shipped = tuple(t["task"] for t in compared_twins(manifest) if (not tasks or t["task"] in tasks)
                        and any(r["method"] == method for r in t["runs"]))
        cells = compare_cells(manifest, method, results_dir, seeds=tuple(seeds), tasks=shipped or tasks,
                              plugins=plugins, teachers=teachers)
        ids = {c.run_id for c in cells}
        apart = [(t, r) for t in compared_twins(manifest) if t["task"] in shipped for r in t["runs"]
                 if r["method"] == method and r["seed"] in seeds and r["run_id"] not in ids
                 and _at(r, t, teachers)]
        if apart:   # its runs differ in more than seed and teacher (a swept setting): not one row per teacher
            twin, run = apart[0]
            raise HarnessError(f"--until-decided: the bundle's {method} runs on {twin['task']} differ in more than "
                               f"their seed and teacher (e.g. {run['run_id']}, parameters {run['parameters']}), so "
                               f"they are not one row to add seeds to; compare at fixed seeds (without "
                               f"--until-decided)")
        out += cells
    return out


def _at(run: dict, twin: dict, teachers: tuple[int, ...]) -> bool:
    """Whether a shipped run is at a teacher the cells are at: one of ``teachers``, else one whose stages ship."""
    chosen = set(teachers) or (set(twin["teachers"]) if "teachers" in twin else None)
    return chosen is None or _upstream(run) in chosen


def unshipped_builds(plans, method: str) -> list[str]:
    """What the cells' plans (:func:`harness.grid.runner.plan_grid`) would build besides the new method's own stage
    and its evaluation: upstream stages the bundle does not ship (a teacher-output store of a prefix source no
    baseline reads is legitimate; a teacher is not)."""
    own = {method, f"evaluation/{method}"}
    return sorted({f"{p.cell.task}: {s.label}" for p in plans for s in p.stages
                   if s.state in ("build", "resume", "shared") and s.label not in own})


# ---------------------------------------------------------------- a stale bundle, accepted

def rekey_upstream(manifest: dict, cells: list[Cell], results_dir: str | Path) -> dict[str, str]:
    """With a bundle accepted although its stage keys differ: put each shipped upstream stage also under the key
    this code plans for the same label of the new method's cells, so that they train against the shipped teacher
    (not a freshly built one). The copy's ``stage.json`` says which key and commit it came from. Returns each
    planned key → the shipped key it is a copy of (a report counts both as one stage:
    :func:`harness.store.bundle.stage_aliases`)."""
    from ..pipeline.graph import plan_for

    root = Path(results_dir) / CACHE
    by_task = {t["task"]: t for t in compared_twins(manifest)}
    made = {}
    for cell in cells:
        twin = by_task[cell.task]
        # label → the shipped key: that of the baseline runs at the cell's teacher (several teachers ship a label
        # under several keys; None: the default upstream seed, which a run's parameters leave out), else the first
        ships = {(stage["label"], stage["key"]) for stage in twin["stages"]}
        teacher = dict(cell.values).get(UPSTREAM)
        shipped = {}
        for run in twin["runs"]:
            if run["parameters"].get(UPSTREAM) == teacher:
                for label, key in run["stages"].items():
                    if (label, key) in ships:
                        shipped.setdefault(label, key)
        for stage in twin["stages"]:
            shipped.setdefault(stage["label"], stage["key"])
        for spec in plan_for(cell.config()).specs:
            old = shipped.get(spec.label)
            source, target = root / spec.stage / str(old), root / spec.stage / spec.key
            if old is None or old == spec.key or not source.is_dir():
                continue
            made[spec.key] = old
            if (target / STAGE_RECORD).is_file():
                continue
            record = json.loads((source / STAGE_RECORD).read_text())
            with atomic_dir(target) as tmp:
                shutil.copytree(source, tmp, dirs_exist_ok=True)
                write_json(tmp / STAGE_RECORD, {**record, "key": spec.key,
                                                "rekeyed_from": {"key": old, "commits": manifest.get("commits")}})
    return made
