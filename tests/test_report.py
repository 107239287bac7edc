"""``harness report`` on a small ci grid: every output exists, and its numbers are the parquet store's.

The grid (at the ci grid's small splits): DART × {mle, predistill, seqkd, kl, js, tvd} × seeds {1, 2}, plus TVD with a
two-layer student encoder (Figure 2's axis) and ``tvd_online`` (TVD on online teacher samples:
Table 4). Every expected value below is computed here straight from the run folders' parquet
files with pandas and sacrebleu, not through the report's own loader.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ci_grid_config, cli_in_process
from harness.pipeline import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report")]   # its fixtures built once, on one worker
T975_1DF = math.tan(math.pi * 0.475)     # Student's t with one degree of freedom is Cauchy: two seeds

METHODS_2 = ["mle", "predistill", "seqkd", "kl", "js", "tvd"]
SEEDS = [1, 2]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-results")
    cells = [(m, s, []) for m in METHODS_2 for s in SEEDS]
    cells += [("tvd", 1, [("student.encoder_layers", "2")]), ("tvd_online", 1, [])]
    for method, seed, sets in cells:
        Pipeline(ci_grid_config("dart", method, seed=seed, sets=[("results_dir", str(root)), *sets])).run()
    return root


@pytest.fixture(scope="module")
def report(grid, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-out")
    proc = cli_in_process("report", "--results", grid, "--out", out, "--compare", "paper", "--bootstrap-samples", "200")
    assert proc.returncode == 0, proc.stderr
    assert "report.html" in proc.stdout
    return out


# --------------------------------------------------------------------------- the store, read directly
def runs(grid) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(metrics, compute) of every run, straight from parquet."""
    out = []
    for folder in sorted(Path(grid, "runs").iterdir()):
        out.append((pd.read_parquet(folder / "metrics.parquet"), pd.read_parquet(folder / "compute.parquet")))
    return out


def is_default(metrics: pd.DataFrame) -> bool:
    return "student.encoder_layers" not in metrics or metrics["student.encoder_layers"].isna().all()


def own_values(grid, method: str, metric: str, default: bool = True) -> dict[int, float]:
    """seed → the value of ``metric`` of ``method``'s own model in its runs."""
    out = {}
    for metrics, _ in runs(grid):
        if metrics["method"].iloc[0] == method and is_default(metrics) == default:
            row = metrics[(metrics["model"] == method) & (metrics["metric"] == metric)]
            out[int(row["seed"].iloc[0])] = float(row["value"].iloc[0])
    return out


def shared_value(grid, model: str, metric: str) -> float:
    """The value of a model every default run evaluates alike (teacher, pre-distill): all copies must agree."""
    values = {float(m.loc[(m["model"] == model) & (m["metric"] == metric), "value"].iloc[0])
              for m, _ in runs(grid) if is_default(m) and (m["model"] == model).any()}
    assert len(values) == 1, values
    return values.pop()


def t_ci(values) -> tuple[float, float]:
    x = np.asarray(list(values), float)
    assert len(x) == 2
    return x.mean(), T975_1DF * x.std(ddof=1) / np.sqrt(2)


def kendall_tau_without_ties(x, y) -> float:
    pairs = list(itertools.combinations(range(len(x)), 2))
    signs = [np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in pairs]
    assert 0 not in signs
    return sum(signs) / len(pairs)


def csv(report, name) -> pd.DataFrame:
    return pd.read_csv(report / "tables" / f"{name}.csv", keep_default_na=False, na_values=[""])


# --------------------------------------------------------------------------- outputs
def test_every_output_is_written(report):
    for name in ("table2_dart_ci", "table3_dart_ci", "table4_dart_ci", "figure2_dart_ci_student-encoder_layers",
                 "compare_dart_ci", "kendall_dart_ci", "paper_table4_dart", "paper_figure2_dart", "findings_ci",
                 "verdicts_ci"):
        for suffix in ("md", "tex", "csv"):
            assert (report / "tables" / f"{name}.{suffix}").stat().st_size > 0, (name, suffix)
    import matplotlib.image as mpimg

    for name in ("dots_dart_ci", "curves_dart_ci", "compute_dart_ci", "figure2_dart_ci_student-encoder_layers"):
        image = mpimg.imread(report / "figures" / f"{name}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0.01, name
        assert "<svg" in (report / "figures" / f"{name}.svg").read_text()[:2000]
    html = (report / "report.html").read_text()
    assert html.count("<table>") == 14 and html.count('src="figures/') == 4
    assert all((report / src).is_file() for src in re.findall(r'src="([^"]+)"', html))   # every image is there
    assert "http://" not in html and "https://" not in html   # nothing fetched
    md = (report / "report.md").read_text()
    assert "### Table 2 — dart (ci profile)" in md and "](figures/dots_dart_ci.png)" in md
    tex = (report / "tables" / "table2_dart_ci.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and "TER$\\downarrow$" in tex


def test_table2_numbers_are_the_parquet_numbers(grid, report):
    table = csv(report, "table2_dart_ci")
    default = ~table["setting"].fillna("").str.contains("encoder_layers=2")
    assert default.all()     # the deeper student's rows are Figure 2's, not Table 2's
    for metric in ("bleu", "chrf", "ter"):
        for method in ("mle", "seqkd", "kl", "js", "tvd"):
            values = own_values(grid, method, metric)
            assert sorted(values) == SEEDS
            mean, ci = t_ci(values.values())
            row = table[default & (table["model"] == method) & (table["metric"] == metric)]
            assert len(row) == 1, (method, metric)
            assert row["n"].iloc[0] == 2
            assert row["mean"].iloc[0] == pytest.approx(mean, abs=1e-9)
            assert row["ci95"].iloc[0] == pytest.approx(ci, abs=1e-6)
        row = table[default & (table["model"] == "teacher") & (table["metric"] == metric)]
        assert row["n"].tolist() == [1]                   # one evaluation, however many runs repeat it
        assert row["mean"].iloc[0] == pytest.approx(shared_value(grid, "teacher", metric), abs=1e-9)
        assert np.isnan(row["ci95"].iloc[0])
        # pre-distillation cells train with their own seed; the KD cells share the upstream seed's student
        row = table[default & (table["model"] == "predistill") & (table["metric"] == metric)]
        assert row["n"].tolist() == [len(set(SEEDS) | {42})]
    # the Markdown shows the same numbers
    md = (report / "tables" / "table2_dart_ci.md").read_text()
    mean, ci = t_ci(own_values(grid, "kl", "ter").values())
    kl_line = next(line for line in md.splitlines() if line.startswith("| kl |"))
    assert "encoder_layers" not in md and "| tvd | 2* |" in md          # two seeds: exploratory
    assert f"{mean:.2f}" in kl_line and f"± {ci:.2f}" in kl_line
    # bold: the best student of each metric among those with three seeds or more (by its mean, as the rank column
    # orders them); two seeds are exploratory, never bold
    for metric, lower in (("bleu", False), ("ter", True)):
        students = table[(table["metric"] == metric) & (table["model"] != "teacher")]
        confirmed = students["n"] >= 3
        means = students["mean"].where(confirmed)
        best = means.min() if lower else means.max()
        assert (students["best"].astype(str) == "True").tolist() == (means == best).tolist()
        assert (students["exploratory"].astype(str) == "True").tolist() == (~confirmed).tolist()


def test_stage_times_count_each_built_stage_once(grid, report):
    builds = pd.concat([compute for _, compute in runs(grid)]).drop_duplicates(["stage_name", "stage_key"])
    table = csv(report, "stages_dart_ci").set_index("stage")
    assert table["seconds"].sum() == pytest.approx(builds["seconds"].sum())
    assert table.loc["teacher", "builds"] == 1
    assert table.loc["predistill", "builds"] == builds[builds["stage"] == "predistill"]["stage_key"].nunique()
    own = builds[builds["stage"] == "method"]
    for method, seconds in own.groupby("method")["seconds"].sum().items():
        assert table.loc[f"train {method}", "seconds"] == pytest.approx(seconds)
    evaluations = builds[builds["stage_name"] == "evaluation"]
    assert table.loc["evaluation", "builds"] == len(evaluations)


def test_table3_risks_and_teacher_dist(grid, report):
    table = csv(report, "table3_dart_ci")
    for metric in ("r_llh", "r_cvg"):
        mean, ci = t_ci(own_values(grid, "js", metric).values())
        row = table[(table["model"] == "js") & (table["metric"] == metric)]
        assert row["mean"].iloc[0] == pytest.approx(mean, abs=1e-9)
        assert row["ci95"].iloc[0] == pytest.approx(ci, abs=1e-6)
    for metric in ("teacher_dist", "teacher_dist_paper"):
        row = table[(table["model"] == "teacher") & (table["metric"] == metric)]
        assert row["mean"].iloc[0] == pytest.approx(shared_value(grid, "teacher", metric), abs=1e-9)
    row = table[(table["model"] == "js") & (table["metric"] == "r_llh_paper")]
    assert row["mean"].iloc[0] == pytest.approx(np.mean(list(own_values(grid, "js", "r_llh_paper").values())))


def test_table4_online_vs_offline_prefixes(grid, report):
    table = csv(report, "table4_dart_ci")
    seconds = {}
    for metrics, compute in runs(grid):
        method = metrics["method"].iloc[0]
        if method in ("tvd", "tvd_online") and is_default(metrics):
            stage = compute[compute["stage"] == "method"]
            seconds.setdefault(method, []).append(float(stage["seconds"].iloc[0]))
    expected = np.mean(seconds["tvd_online"]) / np.mean(seconds["tvd"])
    offline = table[(table["prefixes"] == "offline") & (table["metric"] == "speedup")]
    online = table[(table["prefixes"] == "online") & (table["metric"] == "speedup")]
    assert offline["mean"].iloc[0] == pytest.approx(expected, rel=1e-9)
    assert online["mean"].iloc[0] == pytest.approx(1.0)
    bleu = table[(table["prefixes"] == "online") & (table["metric"] == "bleu")]
    assert bleu["mean"].iloc[0] == pytest.approx(own_values(grid, "tvd_online", "bleu")[1], abs=1e-9)


def test_figure2_quality_vs_student_size(grid, report):
    table = csv(report, "figure2_dart_ci_student-encoder_layers")
    tvd = table[table["series"] == "tvd"].set_index("student.encoder_layers")
    assert tvd.loc[1, "mean"] == pytest.approx(np.mean(list(own_values(grid, "tvd", "bleu").values())), abs=1e-9)
    assert tvd.loc[2, "mean"] == pytest.approx(own_values(grid, "tvd", "bleu", default=False)[1], abs=1e-9)
    assert set(table["series"]) == {"predistill", "tvd"}    # the models trained at both sizes


def test_findings_are_the_parquet_numbers(grid, report):
    """The findings table's differences are the runs' own means; a one-seed row is undecided and says why."""
    findings = csv(report, "findings_ci")
    assert set(findings["verdict"]) <= {"holds", "does not hold", "undecided", "equivalent", "not equivalent"}
    tvd = findings[(findings["claim"] == "2") & findings["statement"].str.startswith("tvd ")].iloc[0]
    mean = {m: np.mean(list(own_values(grid, m, "bleu").values())) for m in ("tvd", "mle")}
    assert tvd["estimate"] == pytest.approx(mean["tvd"] - mean["mle"], abs=1e-9) and tvd["task"] == "dart"
    depth = findings[findings["claim"] == "6b"].set_index("statement")
    assert list(depth.index) == ["tvd: BLEU rises with encoder depth"]   # the one KD method at both depths
    step = own_values(grid, "tvd", "bleu", default=False)[1] - mean["tvd"]
    assert f"1→2: {step:+.2f}" in depth["evidence"].iloc[0] or f"1→2: {step:+.3f}" in depth["evidence"].iloc[0]
    assert depth["verdict"].iloc[0] == "undecided" and "exploratory" in depth["reason"].iloc[0]


def test_paper_comparison_and_rank_agreement(grid, report):
    """Each paper column beside the metric of ours computed its way: DART's official BLEU, the sampled risks."""
    compare = csv(report, "compare_dart_ci")
    row = compare[(compare["model"] == "tvd") & (compare["metric"] == "bleu")]
    assert row["paper"].iloc[0] == pytest.approx(46.95)
    assert row["our_metric"].iloc[0] == "bleu_official"
    assert row["ours"].iloc[0] == pytest.approx(np.mean(list(own_values(grid, "tvd", "bleu_official").values())))
    header = (report / "tables" / "compare_dart_ci.md").read_text()
    assert "BLEU paper" in header and "BLEU (official) ours" in header and "R_cvg (paper)↓ ours" in header
    kendall = csv(report, "kendall_dart_ci").set_index("metric")
    paper = {"kl": 0.49, "js": 0.48, "tvd": 0.52}      # published R_cvg on DART (SeqKD has none)
    methods = kendall.loc["r_cvg", "methods"].split()
    assert set(methods) == set(paper) and kendall.loc["r_cvg", "our_metric"] == "r_cvg_paper"
    ours = [np.mean(list(own_values(grid, m, "r_cvg_paper").values())) for m in methods]
    tau = kendall_tau_without_ties([paper[m] for m in methods], ours)
    assert kendall.loc["r_cvg", "kendall_tau"] == pytest.approx(tau)
    assert kendall.loc["bleu", "n_methods"] == 4 and bool(kendall.loc["bleu", "primary"])


def test_the_dagger_is_the_noise_models_difference_for_rows_with_three_seeds(grid, tmp_path):
    """† against the teacher: pre-distillation (three seeds) is marked where the noise model's interval of its
    difference from the teacher (a fixed value: one shared model) excludes 0, recomputed here from the store;
    the two-seed rows are exploratory and never marked."""
    from harness.reporting import noise
    from harness.reporting.build import build_report
    from harness.reporting.load import load_store
    from harness.reporting.stability import replicates
    from harness.reporting.summary import lookup, summarise

    build_report(grid, tmp_path, baseline="teacher", n_samples=200, figures=False)
    table = csv(tmp_path, "table2_dart_ci")
    students = table[(table["model"] != "teacher") & (table["metric"] == "chrf")].set_index("model")
    assert not students.loc[students["n"] < 3, "significant"].astype(str).eq("True").any()
    store = load_store(grid)
    look = lookup(summarise(store), "dart", "ci")
    shown = set(table["row"])
    lines = {label: line for (label, metric), line in look.items() if metric == "chrf" and label in shown}
    rows = replicates(store, lines, 200)
    expected = noise.difference(rows["predistill"], rows["teacher"])
    row = students.loc["predistill"]
    assert row["diff_ci_low"] == pytest.approx(expected.low) and row["diff_ci_high"] == pytest.approx(expected.high)
    assert (str(row["significant"]) == "True") == expected.decided


# --------------------------------------------------------------------------- the page in a browser
def test_html_page_renders_in_headless_chromium(report, tmp_path):
    from harness.reporting.html import browse, find_browser, screenshot

    if find_browser() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    import shutil

    probe = tmp_path / "probe.html"
    shutil.copytree(report / "figures", tmp_path / "figures")   # the page links its figures by relative path
    script = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
              "document.body.setAttribute('data-probe', JSON.stringify({tables: document.querySelectorAll("
              "'table tbody tr').length, images: imgs.length, decoded: imgs.filter(i => i.complete && "
              "i.naturalWidth > 0).length, widths: imgs.map(i => i.naturalWidth)})); });</script>")
    probe.write_text((report / "report.html").read_text().replace("</body>", script + "</body>"))
    proc = browse(probe, ["--dump-dom", "--virtual-time-budget=5000"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    import html as html_lib
    import re

    found = re.search(r"data-probe=\"([^\"]*)\"", proc.stdout)
    assert found, proc.stdout[:2000]
    probe_data = json.loads(html_lib.unescape(found.group(1)))
    assert probe_data["images"] == 4 and probe_data["decoded"] == 4, probe_data
    assert min(probe_data["widths"]) > 200
    assert probe_data["tables"] > 20                    # rows of every table, rendered as DOM rows
    png = screenshot(report / "report.html", tmp_path / "shot.png", height=1600)
    import matplotlib.image as mpimg

    image = mpimg.imread(png)
    assert image.shape[:2] == (1600, 1280)
    assert image[..., :3].std() > 0.05                  # not a blank page


def test_a_report_folder_holds_only_what_its_last_report_wrote(grid, tmp_path):
    from harness.reporting.build import build_report

    out = tmp_path / "out"
    build_report(grid, out, baseline=None, n_samples=20, figures=False)
    written = sorted(p.relative_to(out) for p in out.rglob("*"))
    (out / "tables" / "table2_othertask_ci.md").write_text("an earlier report's table")
    (out / "figures").mkdir(exist_ok=True)
    (out / "figures" / "figure2_othertask_ci.svg").write_text("<svg/>")   # a figure of an earlier report with figures
    report = build_report(grid, out, baseline=None, n_samples=20, figures=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == written
    assert report.out == out and all(p.is_file() and out in p.parents for p in report.files)
