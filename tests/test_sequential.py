"""Seeds until decided (:mod:`harness.reporting.sequential`) checked by simulation, and its stopping rule.

Runs of a sequentially grown comparison are simulated as the noise model has them: per-seed noise in each row and
a test-input part that is drawn once per run and stays the same at every look (it does not shrink with seeds).
"Add a seed until the interval excludes 0, or n_max" must declare a difference between equal rows in at most α of
the runs (up to the Monte-Carlo slack) with the design's repeated intervals, while the fixed-n t interval read
after every seed exceeds α (the reason for the design); the same for "equivalent" at the margin; and a real
effect must still be found. Vectorised: 20 000 runs in well under a second.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.reporting import noise, sequential
from harness.reporting.noise import EQUIVALENT, HOLDS, UNDECIDED, Replicates
from harness.reporting.sequential import Comparison, Design, Sequence, decide, z_boundaries

RUNS = 20_000
SEED_SD = 1.0         # each row's per-seed standard deviation
INPUT_VAR = 0.03      # the test-input part of Var(A − B), the same at every look
DESIGN = Design(start=3, step=1, max_seeds=10)    # a look after every seed: the hardest case for optional stopping


def slack(target: float, runs: int = RUNS) -> float:
    """2.33 binomial standard errors: a one-sided 1% test that the true rate exceeds ``target``."""
    return 2.33 * math.sqrt(target * (1 - target) / runs)


def simulate(delta: float, seed: int):
    """Per run and look: (estimate, se, df) of A − B on the first n seeds of each row, n = each look."""
    rng = np.random.default_rng(seed)
    n_max = DESIGN.max_seeds
    a = rng.normal(0, SEED_SD, (RUNS, n_max))
    b = rng.normal(0, SEED_SD, (RUNS, n_max))
    inputs = rng.normal(0, math.sqrt(INPUT_VAR), (RUNS, 1))
    looks = np.array(DESIGN.looks)
    est, se, df = [], [], []
    for n in looks:
        va, vb = a[:, :n].var(1, ddof=1) / n, b[:, :n].var(1, ddof=1) / n
        total = va + vb + INPUT_VAR
        est.append(delta + a[:, :n].mean(1) - b[:, :n].mean(1) + inputs[:, 0])
        se.append(np.sqrt(total))
        df.append(total ** 2 / (va ** 2 / (n - 1) + vb ** 2 / (n - 1)))    # Satterthwaite, the input part ν = ∞
    return np.stack(est, 1), np.stack(se, 1), np.stack(df, 1)


def sequential_q(level: float, df: np.ndarray) -> np.ndarray:
    return np.stack([DESIGN.critical(k, level, df[:, k]) for k in range(len(DESIGN.looks))], 1)


def naive_q(level: float, df: np.ndarray) -> np.ndarray:
    return stats.t.ppf(0.5 + level / 2, df)


def first_stop(decided: np.ndarray) -> np.ndarray:
    """The look at which each run stops (the first decided one; the last look if none)."""
    return np.where(decided.any(1), decided.argmax(1), decided.shape[1] - 1)


def test_boundaries_match_the_published_lan_demets_values():
    """Five equally spaced looks, one-sided 2.5% (Jennison & Turnbull 2000, Table 7.6; gsDesign's sfLDOF and sfLDPocock)."""
    five = (0.2, 0.4, 0.6, 0.8, 1.0)
    assert z_boundaries(five, 0.025) == pytest.approx((4.8769, 3.3569, 2.6803, 2.2898, 2.0310), abs=2e-4)
    assert z_boundaries(five, 0.025, "pocock") == pytest.approx((2.4380, 2.4268, 2.4101, 2.3966, 2.3859), abs=2e-4)
    assert z_boundaries((1.0,), 0.025) == pytest.approx((stats.norm.isf(0.025),))   # one look: the fixed-n test
    # a look that spends nothing (O'Brien–Fleming, very early) has no boundary and changes nothing after it
    early = z_boundaries((0.05, 0.5, 1.0), 0.025)
    assert early[0] == math.inf and early[1:] == pytest.approx(z_boundaries((0.5, 1.0), 0.025))


def test_add_a_seed_until_decided_keeps_its_false_positive_rate():
    est, se, df = simulate(0.0, seed=1)
    naive = (np.abs(est) > naive_q(0.95, df) * se).any(1).mean()
    repeated = (np.abs(est) > sequential_q(0.95, df) * se).any(1).mean()
    assert repeated <= 0.05 + slack(0.05), repeated
    assert naive > 0.05 + slack(0.05), naive          # the fixed-n interval re-read after every seed over-claims
    # the interval it stops with covers the truth (0) in ≥ 95% of runs, whenever it stopped
    stop = first_stop(np.abs(est) > sequential_q(0.95, df) * se)
    rows = np.arange(RUNS)
    half = sequential_q(0.95, df)[rows, stop] * se[rows, stop]
    assert (np.abs(est[rows, stop]) <= half).mean() >= 0.95 - slack(0.05)


def test_equivalence_at_the_margin_keeps_its_error_rate():
    """At Δ = the margin the rows are not equivalent: "equivalent" (the 90% interval inside ±δ, two one-sided tests)
    may be said in ≤ α of the runs that stop at their first decision, equivalent or not."""
    margin = 1.0
    est, se, df = simulate(margin, seed=2)

    def equivalent_first(q90, q95):
        inside = (est - q90 * se > -margin) & (est + q90 * se < margin)
        outside = (est - q95 * se > margin) | (est + q95 * se < -margin)
        stop = first_stop(inside | outside)
        return inside[np.arange(RUNS), stop].mean()

    repeated = equivalent_first(sequential_q(0.90, df), sequential_q(0.95, df))
    naive = equivalent_first(naive_q(0.90, df), naive_q(0.95, df))
    assert repeated <= 0.05 + slack(0.05), repeated
    assert naive > 0.05 + slack(0.05), naive


def test_a_real_effect_is_decided_with_power():
    """Δ = 1.5 per-seed sd: found in ≥ 80% of runs, within 5 points of the fixed-n test at n_max (O'Brien–Fleming
    spends little early), and most runs stop before n_max."""
    est, se, df = simulate(1.5, seed=3)
    decided = est - sequential_q(0.95, df) * se > 0
    power = decided.any(1).mean()
    fixed = (est[:, -1] - naive_q(0.95, df[:, -1]) * se[:, -1] > 0).mean()
    assert power >= 0.8 and power >= fixed - 0.05, (power, fixed)
    assert (first_stop(decided) < len(DESIGN.looks) - 1).mean() > 0.5


# --------------------------------------------------------------------------- the stopping rule on synthetic seeds
def row(values, positions=None, design=Design(3, 2, 7)) -> Replicates:
    positions = tuple(range(len(values))) if positions is None else tuple(positions)
    return Replicates(np.asarray(values, float), sequence=Sequence(design, "f", positions))


GREATER = Comparison("a", ">", "b")


def test_the_stopping_rule_on_synthetic_seeds():
    design = Design(3, 2, 7)       # looks at 3, 5 and 7 seeds per row
    assert design.looks == (3, 5, 7)
    clear = decide("dart", GREATER, row([10.0, 10.2, 9.9]), row([1.0, 1.1, 0.9]), design)
    assert (clear.verdict, clear.need, clear.difference.look.index) == (HOLDS, 0, 0)   # decided: nothing to add
    close = decide("dart", GREATER, row([1.0, 2.0, 0.0]), row([1.5, 0.5, 1.0]), design)
    assert (close.verdict, close.need) == (UNDECIDED, 5)                     # undecided: both rows to 5 seeds
    last = decide("dart", GREATER, row([1.0, 2.0, 0.0, 1.2, 0.8, 1.0, 1.1]), row([1.5, 0.5, 1.0, 1.0, 0.9, 1.4, 0.7]),
                  design)
    assert (last.verdict, last.need, last.difference.look.index) == (UNDECIDED, 0, 2)   # budget spent: stop
    fresh = decide("dart", GREATER, None, row([1.0, 1.1, 0.9]), design)
    assert (fresh.verdict, fresh.need) == (UNDECIDED, 3)                     # a row without seeds: the first look
    gap = decide("dart", GREATER, row([10.0, 10.2, 9.9], positions=(0, 2, 3)), row([1.0, 1.1, 0.9]), design)
    assert gap.need == 3 and gap.difference is None                          # a missing seed (failed cell): not a look
    # the report reads such a pair without any interval: 3 seeds a row, but not the design's first three
    early = sequential.difference(row([10.0, 10.2, 9.9], positions=(0, 2, 3)), row([1.0, 1.1, 0.9]))
    assert early.estimate == pytest.approx(9.0333, abs=1e-3) and early.look is None
    assert all(math.isnan(x) for x in (*early.interval(0.90), early.low, early.high))


def test_a_look_uses_the_first_seeds_in_the_designs_order():
    """A row grown further for another comparison (5 seeds against 3) is read on its first 3 seeds by place, not by
    the order the store lists them in: the statistic of a look never depends on why a row grew."""
    a = row([50.0, 1.0, 2.0, 3.0, 60.0], positions=(4, 0, 1, 2, 3))
    d = sequential.difference(a, row([0.0, 0.0, 0.0]))
    assert d.estimate == pytest.approx(2.0) and (d.n_a, d.n_b) == (3, 3)
    fixed = noise.difference(Replicates.of([1.0, 2.0, 3.0]), Replicates.of([0.0, 0.0, 0.0]))
    assert d.se == pytest.approx(fixed.se) and d.high - d.low > fixed.high - fixed.low   # wider than fixed-n


def test_equivalence_decision_on_synthetic_seeds():
    design = Design(3, 2, 7)
    same = Comparison("a", "~", "b", margin=1.0)
    values = [5.0, 5.1, 4.9, 5.05, 4.95, 5.0, 5.02]
    d = decide("dart", same, row(values), row([v + 0.01 for v in values[::-1]]), design)
    assert d.verdict == EQUIVALENT and d.need == 0
    wide = decide("dart", same, row([5.0, 7.0, 3.0]), row([5.0, 6.0, 4.0]), design)
    assert (wide.verdict, wide.need) == (UNDECIDED, 5)


def test_only_a_familys_own_method_rows_are_read_at_its_looks(tmp_path):
    """The teacher's line and the pre-distilled student's are read from runs of a grown family (ENGINE's): neither
    is that family's row. Marked, the teacher (n = 1) was read before the design's first look: no interval, and
    claim 3b (the dialogue teacher's lead over MLE) stayed undecided for want of one."""
    import json

    from harness.reporting.summary import Replicate

    design = Design(start=3, step=2, max_seeds=9)
    runs = ["dart-engine-42", "dart-engine-43", "dart-engine-44"]
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids" / "table2-cpu-0001.until-decided.json").write_text(json.dumps(
        {"design": design.as_record(), "families": {"dart · engine": {run: i for i, run in enumerate(runs)}}}))
    replicates = [Replicate("key", run, (42 + i,)) for i, run in enumerate(runs)]
    lines = {"engine": {"model": "engine", "replicates": replicates},
             "predistill": {"model": "predistill", "replicates": replicates},
             "teacher": {"model": "teacher", "replicates": replicates[:1]}}
    rows = {"engine": Replicates.of([40.0, 41.0, 39.5]), "predistill": Replicates.of([45.0, 45.2, 44.8]),
            "teacher": Replicates.of([50.0], fixed=True)}
    marked = sequential.mark(tmp_path, lines, rows)
    assert marked["engine"].sequence is not None and marked["engine"].sequence.positions == (0, 1, 2)
    assert marked["predistill"].sequence is None and marked["teacher"].sequence is None
    d = noise.difference(marked["teacher"], Replicates.of([44.0, 45.0, 46.0]))
    assert math.isfinite(d.low) and math.isfinite(d.high)
    # a family's own rows: the pre-distill runs, a method with an axis, a task whose name holds " · "
    own = {"dart · predistill": "dart-predistill", "dart · kl · method.beta=0.5": "dart-kl",
           "my · task · js · teacher_outputs_k=8": "my-js"}
    (tmp_path / "grids" / "other-cpu-0002.until-decided.json").write_text(json.dumps(
        {"design": design.as_record(), "families": {f: {f"{p}-{i}": i for i in range(3)} for f, p in own.items()}}))
    models = {"dart-predistill": "predistill", "dart-kl": "kl", "my-js": "js"}
    lines = {p: {"model": models[p], "replicates": [Replicate("key", f"{p}-{i}", (42 + i,)) for i in range(3)]}
             for p in own.values()}
    marked = sequential.mark(tmp_path, lines, {p: Replicates.of([1.0, 2.0, 3.0]) for p in own.values()})
    assert all(marked[p].sequence is not None for p in own.values()), marked
