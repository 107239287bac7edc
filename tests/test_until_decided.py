"""``harness grid --until-decided``: its comparisons, its rounds as a pure function of the store's rows (what makes
it resumable), its errors, and the report's verdicts on rows it grew. No training: the rows are synthetic, and the
one test on a real store reads the session's ci grid in a dry run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CI_GRID_SET_ARGS
from harness.errors import HarnessError, UnknownNameError
from harness.grid.spec import Cell
from harness.grid.until_decided import (NO_METRIC, Pairing, decide_all, pairings, parse_comparisons, places,
                                        to_add, State)
from harness.reporting import findings, sequential
from harness.reporting.noise import HOLDS, UNDECIDED, Replicates
from harness.reporting.sequential import Comparison, Design, Sequence

METHODS = ["mle", "seqkd", "kl", "rkl", "js", "tvd"]
DESIGN = Design(start=3, step=2, max_seeds=7)          # looks at 3, 5 and 7 seeds per cell
SEEDS = sequential.seed_order([42, 43, 44], DESIGN.max_seeds)


def test_comparisons_and_claims():
    got = parse_comparisons("kl>mle, tvd~js@bleu", METHODS, margin=0.5)
    assert got == [Comparison("kl", ">", "mle"), Comparison("tvd", "~", "js", "bleu", 0.5)]
    # claim 2 (every KD method of the paper vs MLE) on the methods this grid runs
    assert [str(c) for c in parse_comparisons("2", METHODS, 1.0)] == [f"{m}>mle" for m in ("seqkd", "kl", "rkl", "js",
                                                                                           "tvd")]
    assert [str(c) for c in parse_comparisons("4", METHODS, 1.0)] == ["kl>rkl@r_cvg"]
    # 6c and 7 name the same comparisons (each f-DISTILL method vs SeqKD), given once however often they are named
    assert [str(c) for c in parse_comparisons("7", METHODS, 1.0)] == [f"{m}>seqkd" for m in ("kl", "rkl", "js", "tvd")]
    assert parse_comparisons("6c,7", METHODS, 1.0) == parse_comparisons("7", METHODS, 1.0)
    with pytest.raises(UnknownNameError, match="known methods: js, kl, mle, rkl, seqkd, tvd"):
        parse_comparisons("kl>engine", METHODS, 1.0)
    with pytest.raises(UnknownNameError, match="known claims: 2, 4, 6c, 7"):
        parse_comparisons("5", METHODS, 1.0)
    with pytest.raises(HarnessError, match="expected A>B"):
        parse_comparisons("kl<mle", METHODS, 1.0)
    with pytest.raises(HarnessError, match="predistill cannot be grown by rounds"):
        parse_comparisons("predistill>mle", [*METHODS, "predistill"], 1.0)
    assert SEEDS == [42, 43, 44, 45, 46, 47, 48]


def cell(task, method, seed, **axes) -> Cell:
    return Cell(f"{task}-{method}-{seed}-" + "-".join(f"{v}" for v in axes.values()), task, method, seed, "ci", (),
                (), tuple(axes.items()), "results")


def test_groups_pair_a_method_without_the_axis_with_every_value():
    cells = [cell("dart", "js", s, **{"method.beta": b}) for s in SEEDS for b in (0.5, 0.9)]
    cells += [cell("dart", "tvd", s) for s in SEEDS]
    pairs = pairings(cells, [Comparison("js", ">", "tvd")])
    assert [(p.group, p.a, p.b) for p in pairs] == [
        ("dart · method.beta=0.5", "dart · js · method.beta=0.5", "dart · tvd"),
        ("dart · method.beta=0.9", "dart · js · method.beta=0.9", "dart · tvd")]


def test_progress_lists_added_seeds_under_the_groups_the_comparisons_are_in():
    """TVD has no method.beta: its cells carry no axis, yet they belong to the groups "dart · method.beta=…" that
    the open comparisons are listed under, not to a group "dart" of their own."""
    from harness.grid.until_decided import State, progress
    from harness.reporting.sequential import Decision

    cells = [cell("dart", "js", s, **{"method.beta": 0.5}) for s in SEEDS] + [cell("dart", "tvd", s) for s in SEEDS]
    comparison = Comparison("js", ">", "tvd")
    (pair,) = pairings(cells, [comparison])
    state = State([(pair, Decision(pair.group, comparison, None, UNDECIDED, 5))], {}, 0.0)
    out = progress(1, state, [c for c in cells if c.seed == SEEDS[3]])
    assert "  dart · method.beta=0.5 open: js>tvd\n" in out, out
    assert "  dart · method.beta=0.5 adding seeds 45 to js, tvd" in out, out
    assert "\n  dart adding" not in out


def _rows(families, done, values):
    """What the store would give: each family's finished runs as replicates in the design's order."""
    out = {}
    for f, ids in families.items():
        held = sorted((place, run) for run, place in ids.items() if run in done)
        if held:
            out[f] = Replicates(np.array([values[f][p] for p, _ in held]),
                                sequence=Sequence(DESIGN, f, tuple(p for p, _ in held)))
    return out


def test_rounds_are_a_pure_function_of_the_finished_runs():
    """Killed in the middle of a round and run again, the command finds the same decision and adds only the cells
    that are still missing; once they are there, the decision moves to the next look."""
    cells = [cell("dart", m, s) for m in ("kl", "mle", "js") for s in SEEDS]
    by_id = {c.run_id: c for c in cells}
    families = places(cells, SEEDS)
    comparisons = [Comparison("kl", ">", "mle"), Comparison("js", ">", "mle")]
    pairs = pairings(cells, comparisons)
    rng = np.random.default_rng(0)
    values = {f: 10 + rng.normal(0, 1, len(SEEDS)) for f in families}
    values["dart · js"] = values["dart · mle"] + 20          # js far above mle: decided at the first look

    def state(done):
        rows = _rows(families, done, values)
        decisions, targets = decide_all(pairs, {p: (rows.get(p.a), rows.get(p.b)) for p in pairs}, DESIGN)
        return State(decisions, targets, 0.0)

    first_look = {c.run_id for c in cells if c.seed in SEEDS[:3]}
    s1 = state(first_look)
    verdicts = {str(p.comparison): d.verdict for p, d in s1.decisions}
    assert verdicts == {"kl>mle": UNDECIDED, "js>mle": HOLDS}
    adding = to_add(s1, families, by_id, first_look)
    assert sorted((c.method, c.seed) for c in adding) == [("kl", 45), ("kl", 46), ("mle", 45), ("mle", 46)]
    # killed after two of the four: the same decision, the other two cells
    partial = first_look | {adding[0].run_id, adding[2].run_id}
    s2 = state(partial)
    assert [(p, d.verdict, d.need) for p, d in s2.decisions] == [(p, d.verdict, d.need) for p, d in s1.decisions]
    assert to_add(s2, families, by_id, partial) == [adding[1], adding[3]]
    # the round finished: kl>mle is read at the second look (5 seeds per row)
    s3 = state(first_look | {c.run_id for c in adding})
    kl = next(d for p, d in s3.decisions if str(p.comparison) == "kl>mle")
    assert kl.difference.look.index == 1 and kl.difference.n_a == 5


def test_a_comparison_without_its_metric_asks_for_nothing():
    pair = Pairing("dart", Comparison("kl", ">", "rkl", "r_cvg"), "dart · kl", "dart · rkl")
    decisions, targets = decide_all([pair], {pair: NO_METRIC}, DESIGN)
    assert decisions[0][1].verdict == NO_METRIC and targets == {"dart · kl": 0, "dart · rkl": 0}


def test_the_design_is_fixed_at_its_first_look(tmp_path):
    """A rerun with the same design adds its families to the record; another design is refused (its boundaries
    would change the error rates of looks already taken)."""
    from harness.grid.until_decided import check_record

    comparisons = [Comparison("kl", ">", "mle")]
    path = tmp_path / f"g{sequential.RECORD_SUFFIX}"
    first = sequential.design_record(DESIGN, comparisons, SEEDS, {"dart · kl": {"a": 0}})
    path.write_text(json.dumps(first))
    again = check_record(path, sequential.design_record(DESIGN, comparisons, SEEDS, {"dart · kl": {"b": 1}}))
    assert again["families"] == {"dart · kl": {"a": 0, "b": 1}}
    with pytest.raises(HarnessError, match="looks at 3, 5, 7 seeds per row.*not as kl>mle; looks at 3, 5, 7, 9"):
        check_record(path, sequential.design_record(Design(3, 2, 9), comparisons, SEEDS, {}))
    with pytest.raises(HarnessError, match="not as kl~mle"):
        check_record(path, sequential.design_record(DESIGN, [Comparison("kl", "~", "mle", margin=1.0)], SEEDS, {}))
    other_seeds = sequential.seed_order([1, 2, 3], DESIGN.max_seeds)   # same looks, another order: place 0 twice
    with pytest.raises(HarnessError, match="seeds 42, 43, 44, 45, 46, 47, 48 .*not as .*seeds 1, 2, 3, 4"):
        check_record(path, sequential.design_record(DESIGN, comparisons, other_seeds, {"dart · kl": {"c": 0}}))


# --------------------------------------------------------------------------- the report reads the design's record
def test_findings_judge_grown_rows_on_the_sequential_interval(tmp_path):
    families = {"dart · kl": {f"kl-{s}": i for i, s in enumerate(SEEDS[:5])},
                "dart · mle": {f"mle-{s}": i for i, s in enumerate(SEEDS[:5])}}
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids" / f"g-ci-0{sequential.RECORD_SUFFIX}").write_text(json.dumps(
        sequential.design_record(DESIGN, [Comparison("kl", ">", "mle")], SEEDS, families)))

    class Rep:       # a summary line's replicate: the run it was read from
        def __init__(self, run_id):
            self.run_id = run_id

    kl_values, mle_values = [31.0, 30.2, 30.9, 30.5, 30.1], [30.0, 29.8, 30.4, 29.9, 30.3]
    lines = {"kl": {"label": "kl", "model": "kl", "n": 5, "values": kl_values,
                    "replicates": [Rep(r) for r in families["dart · kl"]]},
             "mle": {"label": "mle", "model": "mle", "n": 5, "values": mle_values,
                     "replicates": [Rep(r) for r in families["dart · mle"]]}}
    rows = {k: Replicates.of(line["values"]) for k, line in lines.items()}
    marked = sequential.mark(tmp_path, lines, rows)
    assert marked["kl"].sequence.positions == (0, 1, 2, 3, 4)
    d = findings.difference(lines["kl"], lines["mle"], marked)
    fixed = findings.difference(lines["kl"], lines["mle"], rows)
    assert d.estimate == pytest.approx(fixed.estimate) and d.model.look.index == 1
    assert d.high - d.low > fixed.high - fixed.low                      # the repeated interval is wider
    verdict, reason = findings.judge(d, 0.0)
    assert "sequential interval, look 2 of 3: 5 seeds per row of ≤ 7" in reason
    assert "sequential" not in findings.judge(fixed, 0.0)[1]


# --------------------------------------------------------------------------- the command line
@pytest.mark.parametrize("args, message", [
    (["--until-decided", "kl>nope"], "unknown method 'nope'; known methods: kl, mle"),
    (["--until-decided", "9"], "unknown claim '9'; known claims: 2, 4, 6c, 7"),
    (["--until-decided", "kl>mle@blue"], "unknown metric 'blue' (did you mean 'bleu'?); known metrics: "),
    (["--until-decided", "kl>mle", "--max-seeds", "0"], "'--max-seeds': 0 is not in the range x>=1"),
    (["--until-decided", "kl>mle", "--max-seeds", "2"], "--max-seeds 2: below the first look's 3 seeds (valid: 3 or more)"),
    (["--until-decided", "kl>mle", "--max-minutes", "-1"], "'--max-minutes': -1.0 is not in the range x>0"),
    (["--until-decided", "kl>mle", "--seeds", "42,43"], "the first look needs at least 3 seeds per cell"),
    (["--max-seeds", "5"], "--max-seeds: only with --until-decided"),
])
def test_cli_errors(args, message, tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setattr(sys, "argv", ["harness", "grid", "table2", "--profile", "ci", "--tasks", "dart", "--methods",
                                      "kl,mle", "--seeds", "42,43,44", "--results-dir", str(tmp_path / "r"), *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("harness: error: ") and message in err[0], err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_dry_run_reads_the_session_grid(ci_grid, monkeypatch, capsys):
    """On a real store (the session's ci grid: DART's kl and mle at seeds 42 and 43), a dry run reads each family's
    runs, finds the first look not reached and names the one seed each row needs; it writes nothing."""
    from harness.cli import main

    root, _ = ci_grid
    before = {p.name for p in (Path(root) / "grids").glob("*")} if (Path(root) / "grids").is_dir() else set()
    monkeypatch.setattr(sys, "argv", ["harness", "grid", "table2", "--profile", "ci", *CI_GRID_SET_ARGS, "--tasks", "dart",
                                      "--methods", "mle,kl", "--seeds", "42,43,44", "--until-decided", "kl>mle",
                                      "--max-seeds", "5", "--results-dir", str(root), "--dry-run"])
    main()
    out = capsys.readouterr().out
    assert "[until-decided] round 1: 0 of 1 decided; " in out, out
    assert "\n  dart open: kl>mle\n  dart adding seeds 44 to kl, mle\n" in out, out
    assert "looks at 3, 5 seeds per row" in out
    after = {p.name for p in (Path(root) / "grids").glob("*")} if (Path(root) / "grids").is_dir() else set()
    assert after == before     # a dry run records no design
