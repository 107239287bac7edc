"""The report's figures, read from the matplotlib Figure objects (no pixels): axes that show the differences,
exploratory rows drawn apart, distinct colours per method, Figure 2 dodged beside the paper's values, readable
compute ticks, no empty panels. Synthetic inputs only: each test takes well under a second."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from harness.paper import KD_METHODS
from harness.reporting import plots
from harness.reporting.render import Table

NEWER = ("akl", "gkd", "js_exact", "js_online", "skl", "srkl", "tvd_online", "wordkd")


def line(label, model, values, metric="bleu", data=""):
    values = [float(v) for v in values]
    return {"label": label, "model": model, "metric": metric, "values": values, "n": len(values),
            "mean": float(np.mean(values)), "data": data}


@pytest.fixture
def look():
    """Scores near 35 (far from 0), a teacher near 51, three-seed rows and one-seed rows."""
    rows = [line("teacher", "teacher", [50.8]), line("mle", "mle", [34.1, 34.9, 34.4]),
            line("kl", "kl", [36.0, 36.5, 35.9]), line("srkl", "srkl", [37.6]),
            line("gkd", "gkd", [36.8, 36.1])]
    return {(r["label"], "bleu"): r for r in rows}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def artists(fig, prefix):
    return {a.get_gid().split(":", 1)[1]: a for ax in fig.axes for a in ax.lines
            if a.get_gid() and a.get_gid().startswith(prefix)}


def test_dots_axis_spans_the_intervals_not_zero(look):
    fig = plots.dots(look, ["teacher", "mle", "kl", "srkl", "gkd"], ["bleu"], frozenset(), "t")
    low, high = fig.axes[0].get_xlim()
    assert 30 < low < 34.1 and 37.6 < high < 45           # around the students, not from 0, not to the teacher
    assert "teacher" not in artists(fig, "dot:")          # the teacher is a reference, not a row with an interval
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["mle  n=3", "kl  n=3", "srkl  n=1*", "gkd  n=2*"]   # n beside each row


def test_one_seed_rows_are_hollow_grey_dashed_and_have_an_interval(look):
    fig = plots.dots(look, ["teacher", "mle", "kl", "srkl", "gkd"], ["bleu"], frozenset(), "t")
    dots, bars = artists(fig, "dot:"), artists(fig, "row:")
    for label in ("srkl", "gkd"):       # exploratory: hollow marker, grey dashed interval (pooled seed variance)
        assert dots[label].get_markerfacecolor() == "none"
        assert bars[label].get_color() == plots.EXPLORATORY_GREY and bars[label].get_linestyle() != "-"
        low, high = bars[label].get_xdata()
        assert high - low > 0.5
    for label in ("mle", "kl"):
        assert dots[label].get_markerfacecolor() != "none" and bars[label].get_linestyle() == "-"
    greys = {t.get_text().split()[0] for t in fig.axes[0].get_yticklabels() if t.get_color() == plots.EXPLORATORY_GREY}
    assert greys == {"srkl", "gkd"}


def test_a_three_seed_interval_is_the_tables_t_interval(look):
    from harness.reporting.stats import mean_ci

    row = plots.intervals(look, ["mle", "kl", "srkl"], "bleu")["mle"]
    mean, ci, _ = mean_ci(look[("mle", "bleu")]["values"])
    assert row.mean == pytest.approx(mean) and (row.high - row.low) / 2 == pytest.approx(ci)


def test_sixteen_methods_have_distinct_colours_in_two_families():
    labels = ["teacher", "mle", "predistill", *KD_METHODS, *NEWER]
    style = plots.styles(labels, {lab: lab for lab in labels})
    colours = [np.array(to_rgb(s.colour)) for s in style.values()]
    distance = min(np.linalg.norm(a - b) for a, b in itertools.combinations(colours, 2))
    assert distance > 0.15, distance                      # no near-duplicates (tab20's pairs are ~0.1 apart)
    assert {style[m].family for m in KD_METHODS} == {"paper"} and {style[m].family for m in NEWER} == {"newer"}
    assert {style[m].marker for m in KD_METHODS}.isdisjoint({style[m].marker for m in NEWER})
    # a second row of one model (another setting) gets a colour of its own
    two = plots.styles(["kl", "kl (beta=0.5)"], {"kl": "kl", "kl (beta=0.5)": "kl"})
    assert two["kl"].colour != two["kl (beta=0.5)"].colour


def test_a_metric_no_row_holds_gets_no_panel(look):
    fig = plots.dots(look, ["mle", "kl"], ["bleu", "chrf"], frozenset(), "t")
    assert [ax.get_title() for ax in fig.axes] == ["BLEU"]
    look = {**look, ("teacher", "teacher_dist"): line("teacher", "teacher", [65.0], "teacher_dist")}
    fig = plots.dots(look, ["teacher", "mle", "kl"], ["bleu", "teacher_dist"], frozenset(), "t")
    assert [ax.get_title() for ax in fig.axes] == ["BLEU"]          # the teacher's alone: no panel
    assert plots.dots(look, ["teacher"], ["bleu"], frozenset(), "t") is None


def curve_frame(validation: bool) -> pd.DataFrame:
    rows = []
    for key, label in (("a1", "mle"), ("b1", "kl")):
        for epoch in (1, 2, 3):
            rows.append({"model": label, "stage_key": key, "step": epoch, "epoch": epoch, "split": "train",
                         "name": "loss", "value": 3.0 / epoch})
            if validation:
                rows.append({"model": label, "stage_key": key, "step": epoch, "epoch": epoch, "split": "validation",
                             "name": "selection", "value": 30.0 + epoch})
    return pd.DataFrame(rows)


def test_curves_without_validation_scores_draw_no_validation_panel():
    label_of = {"a1": "mle", "b1": "kl"}
    without = plots.curves(curve_frame(False), label_of, ["mle", "kl"], "t")
    assert [ax.get_title() for ax in without.axes] == ["mle", "kl"]
    with_ = plots.curves(curve_frame(True), label_of, ["mle", "kl"], "t")
    assert [ax.get_title() for ax in with_.axes] == ["mle", "kl", "validation (checkpoint selection)"]
    assert all(ax.has_data() for ax in with_.axes)


def test_compute_tick_labels_do_not_overlap():
    rng = np.random.default_rng(0)
    points = pd.DataFrame({"label": np.repeat(["mle", "kl", "tvd", "akl"], 3), "bleu": rng.normal(35, 1, 12),
                           "train_seconds": rng.uniform(20, 90, 12),
                           "train_forward_tokens": rng.uniform(3.5e5, 1.9e6, 12),
                           "train_generated_tokens": rng.uniform(0, 4e5, 12)})
    fig = plots.compute(points, "bleu", ["train_seconds", "train_forward_tokens", "train_generated_tokens"],
                        frozenset(), ["mle", "kl", "tvd", "akl"], "t")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
        assert 2 <= len(boxes) <= 6
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)), ax.get_xlabel()
        assert all(len(t.get_text()) <= 5 for t in ax.get_xticklabels())   # 1.5M, not 1500000
    assert fig.axes[1].get_xlabel().replace("\n", " ") == "tokens through the forward pass in training"


def figure2_table() -> Table:
    rows = []
    for model in ("seqkd", "kl", "tvd"):
        for depth, base in ((1, 35.0), (2, 35.5), (3, 35.9)):
            n = 1 if model == "tvd" and depth == 3 else 3
            rows.append({"row": f"{model} (student.encoder_layers={depth})", "model": model, "series": model,
                         "n": n, "mean": base + 0.2 * KD_METHODS.index(model) / 3,
                         "ci95": float("nan") if n == 1 else 1.2, "student.encoder_layers": float(depth)})
    return Table("figure2_x", "Figure 2", [], [], "", pd.DataFrame(rows))


def test_figure2_is_dodged_and_shows_the_papers_values():
    from harness.paper.published import published

    fig = plots.size(figure2_table(), "student.encoder_layers", "bleu", frozenset(), "t", paper=published())
    dots = artists(fig, "dot:")
    at_depth_2 = sorted(dots[f"{m} (student.encoder_layers=2)"].get_xdata()[0] for m in ("seqkd", "kl", "tvd"))
    assert len(set(at_depth_2)) == 3 and max(at_depth_2) - min(at_depth_2) < 0.5   # side by side, near x = 2
    assert dots["tvd (student.encoder_layers=3)"].get_markerfacecolor() == "none"     # one seed: hollow
    paper = artists(fig, "paper:")
    assert set(paper) == {"seqkd", "kl", "tvd"}
    assert list(paper["kl"].get_ydata()) == [45.7, 46.0, 46.25]      # harness/paper/results.csv
    ours, theirs = fig.axes[0].get_ylim(), paper["kl"].axes.get_ylim()
    assert paper["kl"].axes is not fig.axes[0]                       # 35 vs 46: a right-hand axis ...
    assert theirs[1] - theirs[0] == pytest.approx(ours[1] - ours[0])  # ... of the same scale
    assert ours[0] > 30
