"""``harness grid … --until-decided`` (and ``harness compare … --until-decided``: the new method's cells are the
first look, the grown cells those of the new method and of the baselines its comparisons name,
:func:`harness.grid.reference.grown_cells`): rounds of new seeds for the cells whose comparisons are still undecided.

The grid runs as given first (its seeds are the design's first look, at least
:data:`~harness.reporting.noise.MIN_OWN_SEEDS`). Then, round by round, each comparison asked for (``kl>mle``,
``tvd~js``, or a claim's comparisons) is read in every group of the grid (a task at one value of each swept
axis) at the last look its two rows reach (:func:`harness.reporting.sequential.decide`); an undecided one gives
both its rows the next look's seeds; decided ones, and those at the design's last look, give none. It stops when
nothing needs seeds, when the process-minutes the comparisons' runs took reach ``--max-minutes`` (checked before
each round), or when a cell fails.

Each round's decision is a pure function of the finished runs in the results folder and of the design, which is
recorded before the first round (``RESULTS/grids/…`` + :data:`~harness.reporting.sequential.RECORD_SUFFIX`,
written atomically; a rerun with another design is refused): killed and run again, the command goes on where it
stopped. The report reads the same record, so rows grown this way are judged on the same repeated intervals.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..errors import HarnessError, UnknownNameError
from ..paper import KD_METHODS, claims
from ..reporting import noise, sequential
from ..reporting.sequential import EQUIVALENCE, Comparison, Decision, Design
from .spec import Cell, parse_list

MLE = "mle"
PREDISTILL = "predistill"
#: The findings' claims that are pairwise comparisons of two methods of a grid, as ``--until-decided`` names them.
#: 6c (Figure 2's, at each encoder depth) and 7 (Table 2's) name the same comparisons: each f-DISTILL method
#: against SeqKD, read at every value of the grid's axes (7's "best of them" row, a Bonferroni rule over the
#: four, is not one of them: the rounds decide the four rows it is made from). Not claim 1: the pre-distilled
#: student's evaluation is shared by every KD cell and filed under whichever run built it first, so its row's
#: seeds are not the predistill cells' own and a sequential look cannot count them.
CLAIM_COMPARISONS: dict[str, tuple[tuple[str, str, str, str | None], ...]] = {
    claims.KD_VS_MLE.number: tuple((m, ">", MLE, None) for m in KD_METHODS),
    claims.KL_COVERAGE.number: ((claims.LOWER_COVERAGE_RISK, ">", claims.HIGHER_COVERAGE_RISK, "r_cvg"),),
    claims.AHEAD_OF_SEQKD.number: tuple((m, ">", claims.SEQKD, None) for m in claims.F_DISTILL),
    claims.F_DISTILL_VS_SEQKD.number: tuple((m, ">", claims.SEQKD, None) for m in claims.F_DISTILL),
}
_COMPARISON = re.compile(r"^(?P<a>[\w.-]+)\s*(?P<kind>[>~])\s*(?P<b>[\w.-]+)(?:@(?P<metric>[\w.-]+))?$")
SYNTAX = "A>B (A better than B), A~B (as good as, within --margin), either with @METRIC, or a claim number"


def parse_comparisons(text: str, methods: list[str], margin: float) -> list[Comparison]:
    """``--until-decided``'s comparisons: ``A>B``, ``A~B`` (``@METRIC`` for another metric than the task's primary)
    or a claim number of :data:`CLAIM_COMPARISONS`; A and B methods of the grid (``methods``)."""
    out: list[Comparison] = []
    for item in parse_list(text):
        if item in CLAIM_COMPARISONS:
            wanted = CLAIM_COMPARISONS[item]
            found = [Comparison(a, kind, b, metric) for a, kind, b, metric in wanted if a in methods and b in methods]
            if not found:
                names = sorted({n for a, _, b, _ in wanted for n in (a, b)})
                raise HarnessError(f"--until-decided {item}: claim {item} compares {', '.join(names)}; this grid runs "
                                   f"{', '.join(methods)} (add them with --methods)")
            out += found
            continue
        match = _COMPARISON.match(item)
        if match is None:
            if re.fullmatch(r"[\w.-]+", item):
                raise UnknownNameError("claim", item, list(CLAIM_COMPARISONS))
            raise HarnessError(f"--until-decided {item!r}: expected {SYNTAX} ({', '.join(CLAIM_COMPARISONS)})")
        for name in (match["a"], match["b"]):
            if name not in methods:
                raise UnknownNameError("method", name, methods)
        if match["a"] == match["b"]:
            raise HarnessError(f"--until-decided {item}: a method compared with itself")
        if PREDISTILL in (match["a"], match["b"]):   # (why: CLAIM_COMPARISONS' note on claim 1)
            raise HarnessError(f"--until-decided {item}: {PREDISTILL} cannot be grown by rounds: its evaluation is "
                               f"shared by every KD cell and filed under the run that built it first, so its row's "
                               f"seeds are not its cells' own; compare it at fixed seeds (--seeds)")
        out.append(Comparison(match["a"], match["kind"], match["b"], match["metric"],
                              margin if match["kind"] == EQUIVALENCE else 0.0))
    if not out:
        raise HarnessError(f"--until-decided: no comparison given; expected {SYNTAX}")
    return list(dict.fromkeys(out))


def check_metrics(comparisons: list[Comparison], tasks: list[str]) -> None:
    """Each ``@METRIC`` of ``comparisons`` is one that an evaluation of some task of the grid records: the task's
    quality metrics, the risks or the fidelity to the teacher (an unknown one: one line naming them, before any work;
    a metric of some tasks only leaves the others' comparisons without a verdict)."""
    from ..registry import TASKS
    from ..store.runs import FIDELITY, RISKS

    known = list(dict.fromkeys([*(m for t in tasks for m in TASKS.get(t).metrics), *RISKS, *FIDELITY]))
    for comparison in comparisons:
        if comparison.metric is not None and comparison.metric not in known:
            raise UnknownNameError("metric", comparison.metric, known)


def check_design(start: int, max_seeds: int, step: int, max_minutes: float | None, margin: float) -> Design:
    """The design of ``--until-decided``, its values checked (one line each, before any work)."""
    if start < noise.MIN_OWN_SEEDS:
        raise HarnessError(f"--until-decided: the first look needs at least {noise.MIN_OWN_SEEDS} seeds per cell "
                           f"(given: {start}); give --seeds with {noise.MIN_OWN_SEEDS} or more")
    if max_seeds < start:
        raise HarnessError(f"--max-seeds {max_seeds}: below the first look's {start} seeds (valid: {start} or more)")
    if step < 1:
        raise HarnessError(f"--seeds-per-round {step}: valid: 1 or more")
    if max_minutes is not None and not max_minutes > 0:
        raise HarnessError(f"--max-minutes {max_minutes:g}: valid: more than 0")
    if not margin > 0:
        raise HarnessError(f"--margin {margin:g}: valid: more than 0")
    return Design(start, step, max_seeds)


# --------------------------------------------------------------------------- families and groups
def family(cell: Cell) -> str:
    """The cells that differ in their seed only: task, method and the cell's axis values."""
    return " · ".join([cell.task, cell.method, *(f"{k}={v}" for k, v in cell.axes)])


@dataclass(frozen=True)
class Pairing:
    """One comparison in one group (a task at one value of every axis): the families of its two rows."""

    group: str
    comparison: Comparison
    a: str
    b: str


def pairings(cells: list[Cell], comparisons: list[Comparison]) -> list[Pairing]:
    """Every comparison in every group of ``cells``: a task × one value of each axis of the grid; a method that an
    axis does not apply to (``method.beta`` and TVD) has one family in every value of it."""
    values: dict[str, list] = {}
    for cell in cells:
        for k, v in cell.axes:
            values.setdefault(k, [])
            if v not in values[k]:
                values[k].append(v)
    families: dict[tuple[str, str], list[tuple[dict, str]]] = {}
    for cell in cells:
        entry = (dict(cell.axes), family(cell))
        if entry not in families.setdefault((cell.task, cell.method), []):
            families[(cell.task, cell.method)].append(entry)
    out = []
    for task in dict.fromkeys(c.task for c in cells):
        for combo in itertools.product(*values.values()):
            setting = dict(zip(values, combo))
            group = " · ".join([task, *(f"{k}={v}" for k, v in setting.items())])
            for comparison in comparisons:
                sides = [next((f for axes, f in families.get((task, m), []) if all(setting[k] == v for k, v in
                                                                                     axes.items())), None)
                         for m in (comparison.a, comparison.b)]
                if None not in sides:
                    out.append(Pairing(group, comparison, *sides))
    return out


def places(cells: list[Cell], seeds: list[int]) -> dict[str, dict[str, int]]:
    """family → run id → its seed's place in the design's order (``seeds``)."""
    out: dict[str, dict[str, int]] = {}
    for cell in cells:
        out.setdefault(family(cell), {})[cell.run_id] = seeds.index(cell.seed)
    return out


# --------------------------------------------------------------------------- the state, read from the store
@dataclass
class State:
    """A sequential grid now: each pairing's decision, the seeds each family needs (its target n) and the
    process-minutes its families' runs took."""

    decisions: list[tuple[Pairing, Decision]]
    targets: dict[str, int]
    minutes: float

    @property
    def undecided(self) -> list[tuple[Pairing, Decision]]:
        return [(p, d) for p, d in self.decisions if not d.decided]


NO_METRIC = "no such metric"


def decide_all(pairs: list[Pairing], rows: dict[Pairing, tuple | str], design: Design
               ) -> tuple[list[tuple[Pairing, Decision]], dict[str, int]]:
    """The stopping rule over every pairing, a pure function of its rows: ``rows[pair]`` is (A, B) as the noise model's
    :class:`~harness.reporting.noise.Replicates` with their :class:`~harness.reporting.sequential.Sequence`, signed
    so that positive favours the comparison's A (None: a row without runs yet), or :data:`NO_METRIC` where the runs
    are there without the comparison's metric. Returns each pairing's decision and each family's target n (the
    most seeds any of its comparisons needs)."""
    decisions, targets = [], {}
    for pair in pairs:
        got = rows.get(pair, (None, None))
        if got == NO_METRIC:
            decision = Decision(pair.group, pair.comparison, None, NO_METRIC, 0)
        else:
            decision = sequential.decide(pair.group, pair.comparison, *got, design)
        decisions.append((pair, decision))
        for f in (pair.a, pair.b):
            targets[f] = max(targets.get(f, 0), decision.need)
    return decisions, targets


def read_state(results_dir: str | Path, pairs: list[Pairing], families: dict[str, dict[str, int]], design: Design,
               n_samples: int = 1000, shipped: frozenset[str] = frozenset()) -> State:
    """:func:`decide_all` on the finished runs under ``results_dir`` alone (a pure function of the store and the
    design): the rows' values and shared bootstrap of test inputs as the report reads them
    (:func:`harness.reporting.stability.replicates`), the metric's direction from the store. The process-minutes
    count every held run but those of ``shipped`` (a reference bundle's runs: not trained here). Sentence statistics
    are kept in the results folder (:func:`~harness.reporting.stats.statistics_kept_in`): each round, and the report
    after the grid, reads the runs it has already scored."""
    from ..reporting.stats import statistics_kept_in

    root = Path(results_dir)
    held = {f: [r for r in ids if (root / "runs" / r / "manifest.json").is_file()] for f, ids in families.items()}
    with statistics_kept_in(root):
        return _read_state(root, pairs, families, design, n_samples, shipped, held)


def _read_state(root: Path, pairs, families, design: Design, n_samples: int, shipped: frozenset[str],
                held: dict[str, list[str]]) -> State:
    from ..reporting.load import load_store
    from ..reporting.stability import replicates
    from ..reporting.summary import summarise

    store = load_store(root) if any(held.values()) else None
    summary = summarise(store) if store is not None else None
    rows: dict[Pairing, tuple | str] = {}
    for pair in pairs:
        lines = {f: _line(summary, store, f, families[f], method, pair.comparison.metric)
                 for f, method in ((pair.a, pair.comparison.a), (pair.b, pair.comparison.b))}
        if any(line is None for line in lines.values()):
            if all(len(held[f]) >= design.start for f in lines):    # runs there, the metric is not
                rows[pair] = NO_METRIC
            continue
        drawn = replicates(store, lines, n_samples)
        drawn = {f: replace(drawn[f], sequence=sequential.Sequence(
            design, f, tuple(families[f][r.run_id] for r in lines[f]["replicates"]))) for f in lines}
        line = lines[pair.a]
        lower = line["metric"] in store.task_info(line["task"], line["profile"]).lower_is_better
        rows[pair] = (drawn[pair.b], drawn[pair.a]) if lower else (drawn[pair.a], drawn[pair.b])
    decisions, targets = decide_all(pairs, rows, design)
    minutes = 0.0
    for run_id in (r for ids in held.values() for r in ids if r not in shipped):
        manifest = store.manifest(run_id)
        minutes += manifest.get("wall_seconds", 0.0) * ((manifest.get("config") or {}).get("processes") or 1) / 60
    return State(decisions, targets, minutes)


def _line(summary, store, name: str, ids: dict[str, int], method: str, metric: str | None) -> dict | None:
    """The family's runs (its method's own model) as one summary line of ``metric`` (None: its task's primary),
    labelled by the family."""
    if summary is None or summary.empty:
        return None
    mine = summary[(summary["model"] == method)
                   & summary["replicates"].map(lambda reps: any(r.run_id in ids for r in reps))]
    if mine.empty:
        return None
    first = mine.iloc[0]
    metric = metric or store.task_info(first["task"], first["profile"]).primary
    mine = mine[mine["metric"] == metric]
    if mine.empty:
        return None
    values, reps = [], []
    for line in mine.to_dict("records"):
        for rep, value in zip(line["replicates"], line["values"]):
            if rep.run_id in ids:
                values.append(value)
                reps.append(rep)
    return {**mine.iloc[0].to_dict(), "label": name, "values": values, "replicates": reps, "n": len(values)}


# --------------------------------------------------------------------------- the record and the rounds
def record_path(results_dir: str | Path, name: str, profile: str, families: dict) -> Path:
    digest = hashlib.sha256(",".join(sorted(families)).encode()).hexdigest()[:8]
    return Path(results_dir) / sequential.GRIDS / f"{name}-{profile}-{digest}{sequential.RECORD_SUFFIX}"


def _asked(record: dict) -> str:
    design = Design.of_record(record["design"])
    margins = "".join(f", {c} within ±{m:g}" for c, m in record["margins"].items())
    return f"{', '.join(record['comparisons'])}{margins}; {design.describe()}; seeds {', '.join(map(str, record['seeds']))}"


def check_record(path: Path, record: dict) -> dict:
    """The record to write: ``record``, its families merged with those of the one at ``path``; another design,
    other comparisons or another seed order than that one's are refused (the error rates hold for a design fixed in
    advance only, and a look reads the first seeds in that order: two orders would put two runs at one place)."""
    if not path.is_file():
        return record
    old = json.loads(path.read_text())
    if any(old.get(key) != record[key] for key in ("design", "comparisons", "margins", "seeds")):
        raise HarnessError(f"--until-decided: this grid was started as {_asked(old)} ({path}), not as "
                           f"{_asked(record)}: a sequential design is fixed before its first look; run it with the "
                           f"same options, or in another --results-dir")
    return {**record, "families": {f: {**old["families"].get(f, {}), **ids} for f, ids in record["families"].items()}}


def _num(x: float) -> str:
    return "—" if x != x else f"{x:+.2f}"


def describe(pair: Pairing, decision: Decision) -> str:
    """``dart kl>mle: undecided (+0.95 [-1.20, +3.10] n=5/9)``: a comparison's last word."""
    return f"{pair.group} {pair.comparison}: {decision.verdict}" + (f" ({_estimate(decision)})"
                                                                     if decision.difference else "")


def _estimate(decision: Decision) -> str:
    """``+0.95 [-1.20, +3.10] n=5/9``: the difference, the look's interval and the seeds of each row."""
    d = decision.difference
    interval = f" [{_num(d.low)}, {_num(d.high)}]" if d.low == d.low else ""
    n = f"{d.n_a}" if d.n_a == d.n_b else f"{d.n_a}/{d.n_b}"
    return f"{_num(d.estimate)}{interval} n={n}"


def to_add(state: State, families: dict[str, dict[str, int]], cells: dict[str, Cell], done: set[str]) -> list[Cell]:
    """The cells of the next round: each family's seeds below its target that the store does not hold yet."""
    out = []
    for f, target in state.targets.items():
        for run_id, place in sorted(families[f].items(), key=lambda item: item[1]):
            if place < target and run_id not in done:
                out.append(cells[run_id])
    return out


def progress(number: int, state: State, adding: list[Cell]) -> str:
    """What a round decided and what it adds (``number``: the round of this command): a header line (decided of
    all, by verdict; the process-minutes so far), then one line per twin of its decided comparisons, one of its open
    ones (estimate, the look's interval, seeds per row) and one of the seeds being added to its rows."""
    undecided = state.undecided
    counts: dict[str, int] = {}
    for _, decision in state.decisions:
        if decision.decided:
            counts[decision.verdict] = counts.get(decision.verdict, 0) + 1
    lines = [f"[until-decided] round {number}: {len(state.decisions) - len(undecided)} of {len(state.decisions)} "
             f"decided" + (f" ({', '.join(f'{v} {c}' for v, c in counts.items())})" if counts else "")
             + f"; {state.minutes:.1f} process-minutes so far"]
    for title, chosen in (("decided", [(p, d) for p, d in state.decisions if d.decided]), ("open", undecided)):
        by_group: dict[str, list[str]] = {}
        for pair, decision in chosen:
            words = str(pair.comparison) + (f" {decision.verdict}" if decision.decided else "")
            by_group.setdefault(pair.group, []).append(words + (f" {_estimate(decision)}" if decision.difference
                                                                else ""))
        lines += [f"  {group} {title}: " + "; ".join(items) for group, items in by_group.items()]
    if adding:
        # a cell under the first group its family's comparisons are in (a method an axis does not apply to, TVD
        # under method.beta, is in every group of that axis: pairings())
        group_of: dict[str, str] = {}
        for pair, _ in state.decisions:
            for f in (pair.a, pair.b):
                group_of.setdefault(f, pair.group)
        by_group_rows: dict[str, dict[str, list[int]]] = {}
        for cell in adding:
            group = group_of.get(family(cell), cell.task)
            by_group_rows.setdefault(group, {}).setdefault(cell.method, []).append(cell.seed)
        for group, rows in by_group_rows.items():
            seeds = {tuple(s) for s in rows.values()}
            said = (f"seeds {', '.join(map(str, next(iter(seeds))))} to {', '.join(rows)}" if len(seeds) == 1 else
                    "; ".join(f"seeds {', '.join(map(str, s))} to {row}" for row, s in rows.items()))
            lines.append(f"  {group} adding {said}")
    return "\n".join(lines)


def run_until_decided(base: list[Cell], grown: list[Cell], comparisons: list[Comparison], design: Design,
                      seeds: list[int], name: str, profile: str, run: Callable[[list[Cell]], object],
                      max_minutes: float | None, echo: Callable[[str], None], dry_run: bool = False,
                      shipped: frozenset[str] = frozenset()) -> State:
    """The grid ``base`` (the design's first look), then rounds of the cells of ``grown`` (the comparisons'
    families at every seed of the design) that the undecided comparisons need. ``run``: runs a list of cells
    (:func:`harness.grid.run_grid`), returns its report (``failed`` lists failed cells: the rounds stop).
    ``shipped``: run ids that came with the results folder (``harness compare``'s bundle), left out of
    ``max_minutes``'s count. ``dry_run``: the first round's decision on the store as it is; nothing written or run."""
    results_dir = base[0].results_dir
    families = places(grown, seeds)
    pairs = pairings(grown, comparisons)
    by_id = {c.run_id: c for c in grown}
    path = record_path(results_dir, name, profile, families)
    record = check_record(path, sequential.design_record(design, comparisons, seeds, families))
    echo(f"[until-decided] {len(pairs)} comparisons ({', '.join(map(str, comparisons))}) in "
         f"{len({p.group for p in pairs})} groups; {design.describe()}; design record {path}")
    if not dry_run:
        from ..store.io import write_json

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, record)    # atomic: before the first look, the design is in the store
        report = run(base)
        if getattr(report, "failed", None):
            return read_state(results_dir, pairs, families, design, shipped=shipped)
    number = 1
    while True:
        state = read_state(results_dir, pairs, families, design, shipped=shipped)
        done = {r for r in by_id if (Path(results_dir) / "runs" / r / "manifest.json").is_file()}
        adding = to_add(state, families, by_id, done)
        spent = max_minutes is not None and state.minutes >= max_minutes
        echo(progress(number, state, [] if spent else adding))
        if not adding or dry_run:
            break
        if spent:
            echo(f"[until-decided] stopped: {state.minutes:.1f} process-minutes spent (--max-minutes {max_minutes:g})")
            break
        report = run(adding)
        if getattr(report, "failed", None):
            break
        number += 1
    for pair, decision in state.decisions:
        echo(f"[until-decided] {describe(pair, decision)}")
    return state
