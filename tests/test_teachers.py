"""Several teachers (harness/reporting/teachers.py): the two-level interval over teachers, checked by simulation,
and the findings of a store made at three upstream seeds."""

from __future__ import annotations

import numpy as np
import pytest

from harness.reporting import findings as fd
from harness.reporting import noise
from harness.reporting.load import load_store
from harness.reporting.noise import Replicates
from harness.reporting.summary import common_rows, summarise
from harness.reporting.teachers import across, rows_by_teacher, upstream_seeds

from test_report_findings import SEEDS, write_run

TEACHERS, N_SEEDS, INPUTS, DRAWS = 3, 3, 60, 200


def simulate(rng, tau: float = 1.0, delta: float = 0.0):
    """Two methods at ``TEACHERS`` teachers × ``N_SEEDS`` seeds, scored per input on one shared test set:
    y[r, t, s, i] = μ_r + a[r, t] + u[r, t, s] + v[i] + w[r, i] + g[r, t, i] + e[r, t, s, i] (a: the teacher's
    effect, sd ``tau``; g: the teacher by input). Returns (per teacher the two rows as Replicates on one bootstrap
    draw of the inputs, the two methods with every run as a plain seed)."""
    shape = (2, TEACHERS, N_SEEDS, INPUTS)
    y = (np.array([delta, 0.0])[:, None, None, None]
         + tau * rng.standard_normal((2, TEACHERS, 1, 1)) + 0.3 * rng.standard_normal((2, TEACHERS, N_SEEDS, 1))
         + 2.0 * rng.standard_normal((1, 1, 1, INPUTS)) + 1.0 * rng.standard_normal((2, 1, 1, INPUTS))
         + 0.5 * rng.standard_normal((2, TEACHERS, 1, INPUTS)) + 1.0 * rng.standard_normal(shape))
    draws = rng.integers(INPUTS, size=(DRAWS, INPUTS))
    counts = np.stack([np.bincount(d, minlength=INPUTS) for d in draws]).astype(float)
    values = y.mean(axis=3)                                  # [r, t, s]
    resampled = np.einsum("bi,rtsi->rtbs", counts, y) / INPUTS   # [r, t, draw, s]
    pairs = [tuple(Replicates.of(values[r, t], resampled[r, t]) for r in (0, 1)) for t in range(TEACHERS)]
    plain = [Replicates.of(values[r].ravel(), resampled[r].transpose(1, 0, 2).reshape(DRAWS, -1)) for r in (0, 1)]
    return pairs, plain


def test_the_interval_over_teachers_covers_at_its_level_where_teachers_as_seeds_do_not():
    """At three teachers of three seeds with a teacher effect (sd 1) larger than the seeds' (0.3): the interval over
    teachers covers the true difference about 95% of the time (93% measured over 2,000 simulations); taking the nine runs for seeds of one row (what the
    report did with a store of several teachers) covers far less."""
    rng = np.random.default_rng(7)
    covered, naive = [], []
    for _ in range(300):
        pairs, plain = simulate(rng)
        d = across(pairs)
        covered.append(d.low <= 0 <= d.high)
        old = noise.difference(*plain)
        naive.append(old.low <= 0 <= old.high)
    assert 0.90 <= np.mean(covered) <= 0.98
    assert np.mean(naive) < 0.85


def test_the_interval_over_teachers_holds_the_inputs_part_once():
    """Without a teacher effect the teacher part is the seeds' and inputs' within-teacher noise; the input part
    shared by every teacher is added once: the mean standard error is close to the spread of the estimates."""
    rng = np.random.default_rng(11)
    estimates, ses = [], []
    for _ in range(300):
        d = across(simulate(rng, tau=0.0)[0])
        estimates.append(d.estimate)
        ses.append(d.se)
    assert np.sqrt(np.mean(np.square(ses))) == pytest.approx(np.std(estimates), rel=0.15)


def test_across_with_one_teacher_or_none_has_no_interval():
    one = across([(Replicates.of([1.0, 2.0, 3.0]), Replicates.of([0.0, 0.5, 1.0]))])
    assert one.estimate == pytest.approx(1.5) and np.isnan(one.low) and np.isnan(one.se)


# --------------------------------------------------------------------------- a store at three upstream seeds
#: upstream seed → the MLE and KL students' primary metric at that teacher: KL's lead is 0.5, 3 and 6 points
LEAD = {42: {"mle": 30.0, "kl": 30.5}, 43: {"mle": 31.0, "kl": 34.0}, 44: {"mle": 29.0, "kl": 35.0}}


@pytest.fixture(scope="module")
def teachers_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    jitter = {1: -0.05, 2: 0.0, 3: 0.05}
    for upstream, levels in LEAD.items():
        for method in levels:
            for seed in SEEDS:
                write_run(root, "dart", method, seed, levels, {}, 20.0, upstream=upstream, jitter=jitter)
    store = load_store(root)
    return store, summarise(store)


def test_rows_are_grouped_by_teacher_and_never_mixed(teachers_store):
    store, summary = teachers_store
    assert upstream_seeds(summary, "dart", "ci") == [42, 43, 44]
    by_teacher = rows_by_teacher(summary, "dart", "ci")
    assert by_teacher[43] == {"teacher": "teacher (upstream_seed=43)", "mle": "mle (upstream_seed=43)",
                              "predistill": "predistill (upstream_seed=43)", "kl": "kl (upstream_seed=43)"}
    assert set(common_rows(summary, "dart", "ci").values()) <= set(by_teacher[42].values())


def test_a_claim_that_holds_at_every_teacher_is_undecided_over_teachers_that_disagree_this_much(teachers_store):
    """KL ≥ MLE holds at each teacher on its own rows (3 of 3): the verdict, at the reference teacher (upstream seed
    42, KL's lead 0.5), holds; but the lead varies 0.5-6 over teachers: over teachers (mean 3.17, three teachers,
    two degrees of freedom) the interval includes 0, and 'across teachers' says so."""
    store, summary = teachers_store
    table = fd.findings(store, summary, "ci", n_samples=100)
    assert "across teachers" in table.header
    row = table.data[(table.data["claim"] == "2") & (table.data["statement"].str.startswith("kl"))].iloc[0]
    assert row["per_teacher"] == "42: holds; 43: holds; 44: holds" and row["teachers_holding"] == 3
    assert row["estimate"] == pytest.approx(0.5) and row["verdict"] == fd.HOLDS
    assert row["reason"] == "interval above 0 (at the reference teacher, upstream seed 42, of 3)"
    assert row["across_verdict"] == fd.UNDECIDED
    assert "n=3 at upstream seed 42; 3 teachers: mean" in row["evidence"]
    from harness.reporting.findings import _teachers
    assert (_teachers(1), _teachers(3)) == ("1 teacher", "3 teachers")
    rendered = table.rows[list(table.data.index).index(row.name)]
    over = fd.difference(*(fd.task_view(store, summary, "dart", "ci").line(m, row["metric"]) for m in ("kl", "mle")),
                         fd._common(fd.Context(store, summary, "ci", {}, 100, None),
                                    fd.task_view(store, summary, "dart", "ci"), row["metric"])).across
    assert over.estimate == pytest.approx(np.mean([0.5, 3.0, 6.0])) and over.low < 0 < over.high
    # the difference over teachers behind the verdict, with its interval, in the table and its CSV
    assert (row["across_estimate"], row["across_low"], row["across_high"]) == pytest.approx(
        (over.estimate, over.low, over.high))
    assert rendered[table.header.index("across teachers")].text == (
        f"undecided {fd._num(over.estimate, True)} [{fd._num(over.low)}, {fd._num(over.high)}]; 3 of 3")


def test_two_teachers_give_a_difference_over_them_but_no_interval(tmp_path):
    """At two teachers the verdict over them is exploratory (undecided): the table gives the mean of the per-teacher
    differences without an interval, which one degree of freedom would make look decided."""
    jitter = {1: -0.05, 2: 0.0, 3: 0.05}
    for upstream in (42, 43):
        for method in LEAD[upstream]:
            for seed in SEEDS:
                write_run(tmp_path, "dart", method, seed, LEAD[upstream], {}, 20.0, upstream=upstream, jitter=jitter)
    store = load_store(tmp_path)
    table = fd.findings(store, summarise(store), "ci", n_samples=100)
    row = table.data[(table.data["claim"] == "2") & (table.data["statement"].str.startswith("kl"))].iloc[0]
    assert row["across_verdict"] == fd.UNDECIDED and row["across_estimate"] == pytest.approx(np.mean([0.5, 3.0]))
    assert np.isnan(row["across_low"]) and np.isnan(row["across_high"])
    rendered = table.rows[list(table.data.index).index(row.name)]
    assert rendered[table.header.index("across teachers")].text == "undecided +1.75; 2 of 2"


def test_the_common_rows_never_mix_teachers(tmp_path):
    """KL has more seeds at upstream seed 43 than at 42, MLE's main row is at 42: the row claims and comparisons
    read for KL is at 42 (it was KL's row with the most seeds, at another teacher than MLE's)."""
    jitter = {1: -0.1, 2: 0.0, 3: 0.1}
    for upstream, method, seeds in ((42, "mle", (1, 2)), (42, "kl", (1,)), (43, "mle", (1,)), (43, "kl", (1, 2, 3))):
        for seed in seeds:
            write_run(tmp_path, "dart", method, seed, LEAD[upstream], {}, 20.0, upstream=upstream, jitter=jitter)
    summary = summarise(load_store(tmp_path))
    assert set(summary.loc[summary["model"] == "kl", "label"]) == {"kl", "kl (upstream_seed=43)"}
    assert common_rows(summary, "dart", "ci") == {"teacher": "teacher", "mle": "mle", "predistill": "predistill",
                                                  "kl": "kl"}


def test_the_main_rows_are_the_reference_teachers_whichever_teacher_has_more_seeds(tmp_path):
    """MLE has more seeds at upstream seed 43 than at 42: the main setting (the rows the tables show unmarked and
    the comparisons read) is still the reference teacher's, 42, fixed by the design, not by the seed counts."""
    from harness.reporting.summary import table_rows

    jitter = {1: -0.1, 2: 0.0, 3: 0.1}
    for upstream, method, seeds in ((42, "mle", (1, 2)), (42, "kl", (1, 2)), (43, "mle", (1, 2, 3)), (43, "kl", (1, 2, 3))):
        for seed in seeds:
            write_run(tmp_path, "dart", method, seed, LEAD[upstream], {}, 20.0, upstream=upstream, jitter=jitter)
    summary = summarise(load_store(tmp_path))
    assert common_rows(summary, "dart", "ci") == {"teacher": "teacher", "mle": "mle", "predistill": "predistill",
                                                  "kl": "kl"}
    assert {label for label, _, _ in table_rows(summary, "dart", "ci")} >= {"mle", "kl", "mle (upstream_seed=43)"}


def test_without_mle_at_the_reference_teacher_the_main_rows_are_still_its_own(tmp_path):
    """MLE trained at upstream seeds 43 and 44 only, KL at 42–44: the rows the tables show unmarked are the
    reference teacher's (42, where the findings judge), KL's there; MLE has no row at it."""
    jitter = {1: -0.1, 2: 0.0, 3: 0.1}
    for upstream, method in ((43, "mle"), (44, "mle"), (42, "kl"), (43, "kl"), (44, "kl")):
        for seed in SEEDS:
            write_run(tmp_path, "dart", method, seed, LEAD[upstream], {}, 20.0, upstream=upstream, jitter=jitter)
    summary = summarise(load_store(tmp_path))
    chosen = common_rows(summary, "dart", "ci")
    assert chosen["kl"] == "kl" and "mle" not in chosen


def test_the_variance_components_of_a_store_at_three_teachers(teachers_store):
    """KL's teacher means 30.5, 34, 35 (seeds ±0.05 around each): the teacher part is their variance less the seeds'
    share; the seed part the seeds' variance; no decoding measured; the input parts from the stored per-input
    scores. The report's table shows them per task and model."""
    from harness.reporting.variance import model_components, variance_table

    store, summary = teachers_store
    c = model_components(store, summary, "dart", "ci", "kl", "bleu", n_samples=100)
    assert (c.teachers, c.runs, c.decodes, c.inputs) == (3, 9, 1, 40)
    assert c.seed == pytest.approx(0.0025)
    assert c.teacher == pytest.approx(np.var([30.5, 34.0, 35.0], ddof=1) - 0.0025 / 3)
    assert np.isnan(c.decode) and 0 < c.input_shared < c.input_run
    table = variance_table(store, summary, "ci", n_samples=100)
    kl = table.data.set_index("model").loc["kl"]
    assert kl["var_teacher"] == pytest.approx(c.teacher) and kl["teachers"] == 3
    assert [row[1].text for row in table.rows] == ["teacher", "mle", "predistill", "kl"]
    # the comparison KL − MLE: its lead 0.5, 3, 6 over the teachers; seeds ±0.05 on each side
    from harness.reporting.variance import contrast_table

    comparisons = contrast_table(store, summary, "ci", n_samples=100).data.set_index("comparison")
    kl = comparisons.loc["kl - mle"]
    assert kl["var_seed"] == pytest.approx(0.005)
    assert kl["var_teacher"] == pytest.approx(np.var([0.5, 3.0, 6.0], ddof=1) - 2 * 0.0025 / 3)
    assert (kl["teachers"], kl["seeds"]) == (3, 3) and kl["seeds_needed_1_teacher"] == 2
    assert np.isnan(kl["seeds_needed_3_teachers"])   # 2.75 points between teachers: no number of seeds is enough
    # a test split twice as large: the shared input part halves, over 3 teachers (t with 2 degrees of freedom)
    from scipy import stats

    assert kl["half_width_double_inputs"] == pytest.approx(stats.t.ppf(0.975, 2) * np.sqrt(
        kl["var_teacher"] / 3 + kl["var_seed"] / 9 + kl["var_input_shared"] / 2))
    assert kl["half_width_double_inputs"] < kl["half_width"]


def test_the_teacher_s_decodings_give_the_decoding_part(tmp_path):
    decodings = [15.0, 14.0, 16.0, 15.5, 14.5]
    for seed in SEEDS:
        write_run(tmp_path, "commonsense_dialogue", "mle", seed, {"teacher": 15.0, "mle": 10.0}, {}, 40.0,
                  sampled=True, decodings=decodings)
    from harness.reporting.variance import model_components

    store = load_store(tmp_path)
    c = model_components(store, summarise(store), "commonsense_dialogue", "ci", "teacher", "bleu1", n_samples=50)
    assert (c.teachers, c.runs, c.decodes) == (1, 1, 5)
    assert c.decode == pytest.approx(np.var(decodings, ddof=1)) and np.isnan(c.seed) and np.isnan(c.teacher)


def test_a_model_made_at_one_teacher_is_not_taken_for_one_made_for_every_teacher(tmp_path):
    """A new method compared on a bundle of three teachers, run at the default upstream seed only (`harness compare
    --teachers 42`): its row is at teacher 42 alone — compared with the baselines there, its verdict that teacher's
    and saying so, never set beside the baselines of 43 and 44 as a row made once for all of them."""
    jitter = {1: -0.05, 2: 0.0, 3: 0.05}
    for upstream, levels in LEAD.items():
        for method in levels:
            for seed in SEEDS:
                write_run(tmp_path, "dart", method, seed, levels, {}, 20.0, upstream=upstream, jitter=jitter)
    for seed in SEEDS:
        write_run(tmp_path, "dart", "rkl", seed, {**LEAD[42], "rkl": 32.0}, {}, 20.0, upstream=42, jitter=jitter)
    store = load_store(tmp_path)
    summary = summarise(store)
    view = fd.task_view(store, summary, "dart", "ci")
    assert view.rows["rkl"] == "rkl [1 teachers]" and view.rows["kl"] == "kl [3 teachers]"
    table = fd.findings(store, summary, "ci", n_samples=50)
    row = table.data[(table.data["claim"] == "2") & (table.data["statement"].str.startswith("rkl"))].iloc[0]
    assert row["per_teacher"] == "42: holds" and row["estimate"] == pytest.approx(2.0)
    assert row["verdict"] == fd.HOLDS
    assert row["reason"] == "interval above 0 (at upstream seed 42 only, the one teacher both rows have)"


def test_table_2_ranks_and_bolds_each_teachers_rows_among_themselves(teachers_store):
    """The pre-distilled student is the best at every teacher, KL second (its lead over MLE 0.5, 3 and 6 points at
    teachers 42, 43, 44): each teacher's best student is bold and ranked 1 among its own teacher's rows, and each
    KL 2 (across teachers teacher 44's KL would rank 4th, behind three pre-distilled students: a student of a better
    teacher is not a better method); † compares each row with the baseline of its own teacher."""
    from harness.reporting import tables

    store, summary = teachers_store
    table = tables.table2(store, summary, "dart", "ci", "mle", n_samples=50)
    data = table.data[table.data["metric"] == store.task_info("dart", "ci").primary].set_index("row")
    predistill = ["predistill", "predistill (upstream_seed=43)", "predistill (upstream_seed=44)"]
    assert set(data.index[data["best"]]) == set(predistill)
    assert list(data.loc[predistill, "rank"]) == [1, 1, 1]
    assert list(data.loc[["kl", "kl (upstream_seed=43)", "kl (upstream_seed=44)"], "rank"]) == [2, 2, 2]
    assert data.loc["kl (upstream_seed=44)", "baseline"] == "mle (upstream_seed=44)"
    assert data.loc["kl", "baseline"] == "mle"
    assert "each teacher's rows among themselves" in table.caption


def test_tables_of_one_row_per_model_say_which_teachers_rows_they_show(teachers_store):
    """The paper-vs-ours and Kendall tables show one row per model: at several teachers, the main teacher's, and
    their captions say so (a task of one teacher says nothing)."""
    from harness.paper.published import published
    from harness.reporting.compare import comparison
    from harness.reporting.teachers import main_teacher_note

    store, summary = teachers_store
    note = "dart: made at several teachers (upstream seeds); the rows shown are the main teacher's"
    assert main_teacher_note(summary, ["dart"], "ci").strip().startswith(note)
    assert main_teacher_note(summary, ["xsum"], "ci") == ""
    side_by_side, agreement = comparison(store, summary, "dart", "ci", published(), n_samples=20)
    assert note in side_by_side.caption and note in agreement.caption


def _line(model: str, label: str, values: list[float]) -> dict:
    return {"model": model, "label": label, "values": values, "mean": float(np.mean(values)), "n": len(values),
            "replicates": []}


def test_no_verdict_over_teachers_beside_a_row_made_once_for_every_teacher():
    """A row pooled over three teachers against one made once for all of them: at the reference teacher the two
    compare as any two rows; over teachers the shared row's mean is the same in every per-teacher difference, so
    the spread over teachers would leave its seed noise out — no verdict over teachers is drawn."""
    from harness.reporting.teachers import pooled_line

    pooled = pooled_line({t: _line("kl", f"kl ({t})", [30.0 + t / 100, 30.2 + t / 100, 30.1 + t / 100])
                          for t in (42, 43, 44)}, reference=42)
    shared = _line("mle", "mle", [28.0, 31.0, 29.5])
    d = fd.difference(pooled, shared)
    assert d.teacher == 42 and d.estimate == pytest.approx(30.52 - 29.5)
    assert d.across is not None and "mle was made once for every teacher" in d.across.missing
    assert fd.across_verdict([(d, 0.0)]) == fd.UNDECIDED


def test_a_claim_over_teachers_needs_every_part_judged_over_them():
    """A claim of two parts, one of them at a single teacher: no verdict over teachers (one part's alone would
    decide what the claim says of all)."""
    over = fd.Difference(-2.0, -3.0, -1.0)
    both = [(fd.Difference(-2.0, -3.0, -1.0, across=over), 0.0), (fd.Difference(-1.0, -2.0, 0.5, across=over), 0.0)]
    assert fd.across_verdict(both) == fd.FAILS
    assert fd.across_verdict([both[0], (fd.Difference(-1.0, -2.0, 0.5), 0.0)]) == ""


def test_a_teacher_where_claim_5_lacks_a_comparison_is_undecided_there(tmp_path):
    """js and kl at upstream seeds 42–44, tvd (10 points above js) at 42 only: claim 5 for js needs "no KD method
    better by 1 or more" against kl and tvd; at 42 tvd is far better (not equivalent); at 43 and 44 tvd was not run,
    so the claim is undecided there — not "equivalent" on the kl part alone."""
    jitter = {1: -0.1, 2: 0.0, 3: 0.1}
    levels = {"mle": 30.0, "kl": 35.0, "js": 35.0, "tvd": 45.0}
    for upstream in (42, 43, 44):
        for method in ("mle", "kl", "js") + (("tvd",) if upstream == 42 else ()):
            for seed in SEEDS:
                write_run(tmp_path, "dart", method, seed, levels, {}, 20.0, upstream=upstream, jitter=jitter)
    store = load_store(tmp_path)
    data = fd.findings(store, summarise(store), "ci", n_samples=100).data
    js = data[(data["claim"] == "5") & data["statement"].str.startswith("js ")].iloc[0]
    assert js["verdict"] == fd.NOT_EQUIVALENT
    assert js["per_teacher"] == "42: not equivalent; 43: undecided; 44: undecided"
