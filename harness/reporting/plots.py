"""Figures of a report (matplotlib, written as PNG and SVG).

* dots — per task, one panel per metric: each row's mean (dot) and 95% interval (line) over seeds, on an axis
  that spans the intervals (not from 0: the differences that matter are a point or two), n beside each row;
* curves — per task, the training loss of every stage (mean over seeds) and, when the store has it, the
  validation score used for checkpoint selection;
* compute — per task, quality vs each cost measure in the store, one point per seed and the mean;
* size — Figure 2: quality vs student size, one line per method, dodged, the paper's values beside.

Rows are told apart the same way in every figure (:func:`styles`): the teacher, MLE and pre-distillation in
greys, the paper's KD methods in a cool colour family (circles), newer methods in a warm one (triangles); a row
with fewer than :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds is *exploratory*: a hollow marker, a grey
dashed interval and a grey ``n*`` label.

A row's interval is the one of the tables' noise model (:mod:`~harness.reporting.noise`) with the test inputs
fixed: mean ± t_{0.975, ν} √(V_seed), V_seed = s²/n over its own seeds (ν = n − 1, the tables' ± column) from
three seeds on; below three, the seed variance pooled over the task's rows with two or more seeds (ν = their
pooled degrees of freedom), so that a one-seed row shows how far one seed may lie from its mean instead of a
zero-width bar.
"""

from __future__ import annotations

import colorsys
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator  # noqa: E402
from scipy import stats  # noqa: E402

from ..paper import KD_METHODS, LABELS  # noqa: E402
from .noise import MIN_OWN_SEEDS, PooledSeedVariance, Replicates, row_variance  # noqa: E402
from .render import Table  # noqa: E402
from .tables import metric_label  # noqa: E402

plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 96, "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False, "svg.hashsalt": "harness-report"})

TEACHER = "teacher"
#: The rows every method is measured against: greys and black (square markers).
REFERENCE = {TEACHER: "#8c8c8c", "mle": "#000000", "predistill": "#525252"}
#: The paper's KD methods (``harness.paper.KD_METHODS``): a cool family, circles.
PAPER_FAMILY = ("#1f77b4", "#17becf", "#2ca02c", "#6a3d9a", "#0b3c8c", "#7fbf3f")
#: Newer methods, in the order met: a warm family, triangles; more than these get further warm hues.
NEWER_FAMILY = ("#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#7b1f1f", "#f4a582", "#b8860b")
MARKERS = {"reference": "s", "paper": "o", "newer": "^"}
EXPLORATORY_GREY = "#9a9a9a"
#: Shown in every figure with exploratory rows and in the report's captions.
EXPLORATORY_NOTE = (f"hollow, grey dashed, n*: exploratory (n < {MIN_OWN_SEEDS} seeds), interval from the task's "
                    f"seed variance pooled over its rows with ≥ 2 seeds")


def save(fig, folder: Path, name: str) -> dict[str, Path]:
    """Write ``name.png`` and ``name.svg``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    fig.savefig(png, format="png", bbox_inches="tight")
    svg = folder / f"{name}.svg"
    fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return {"png": png, "svg": svg}


# --------------------------------------------------------------------------- who looks how
@dataclass(frozen=True)
class Style:
    colour: str
    marker: str
    family: str     # "reference", "paper" or "newer"


def family(model: str) -> str:
    if model in REFERENCE:
        return "reference"
    return "paper" if model in KD_METHODS else "newer"


def _warm(k: int) -> list[str]:
    """``k`` further warm hues (red to yellow), evenly spaced, at two lightnesses, for newer methods beyond
    :data:`NEWER_FAMILY`."""
    hues = np.linspace(0.0, 0.16, max(k, 1), endpoint=True)
    return ["#%02x%02x%02x" % tuple(int(255 * c) for c in colorsys.hls_to_rgb(h, 0.35 + 0.3 * (i % 2), 0.8))
            for i, h in enumerate(hues[:k])]


def _lighten(colour: str, step: int) -> str:
    """``colour`` mixed with white (step 1: 40%, 2: 60%, …): a second row of the same model."""
    share = min(0.4 + 0.2 * (step - 1), 0.8)
    r, g, b = (c + (1 - c) * share for c in to_rgb(colour))
    return "#%02x%02x%02x" % (round(255 * r), round(255 * g), round(255 * b))


def styles(labels: list[str], models: dict[str, str]) -> dict[str, Style]:
    """Row label → its colour and marker: by the row's model (``models``: label → model; a label missing from it
    is its own model) and its family (:func:`family`); a later row of a model already seen (another setting or
    data set) gets the model's colour lightened, so no two rows share a colour."""
    model_of = {label: models.get(label, label) for label in labels}
    newer = list(dict.fromkeys(m for m in model_of.values() if family(m) == "newer"))
    paper = [m for m in KD_METHODS if m in model_of.values()]
    extra = _warm(max(len(newer) - len(NEWER_FAMILY), 0))
    base = {**REFERENCE, **{m: PAPER_FAMILY[KD_METHODS.index(m) % len(PAPER_FAMILY)] for m in paper},
            **{m: (NEWER_FAMILY + tuple(extra))[i] for i, m in enumerate(newer)}}
    seen: dict[str, int] = {}
    out = {}
    for label in labels:
        model = model_of[label]
        step = seen.get(model, 0)
        seen[model] = step + 1
        colour = base[model] if step == 0 else _lighten(base[model], step)
        out[label] = Style(colour, MARKERS[family(model)], family(model))
    return out


# --------------------------------------------------------------------------- intervals of rows
@dataclass(frozen=True)
class RowInterval:
    mean: float
    low: float       # NaN: no interval (the teacher, one shared model; or no seed variance anywhere)
    high: float
    n: int
    exploratory: bool


def intervals(look: dict, labels: list[str], metric: str) -> dict[str, RowInterval]:
    """Each row of ``labels`` holding ``metric`` (``look``: (label, metric) → summary line with its per-seed
    ``values``): its mean and 95% interval under the noise model with the test inputs fixed (module docstring);
    rows below :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds borrow the seed variance pooled over the rows
    of their data set."""
    lines = {label: look[(label, metric)] for label in labels if (label, metric) in look}
    by_data: dict[str, list[str]] = {}
    for label, line in lines.items():
        by_data.setdefault(line.get("data", ""), []).append(label)
    out = {}
    for members in by_data.values():
        rows = {label: Replicates.of([float(v) for v in lines[label]["values"]],
                                     fixed=lines[label]["model"] == TEACHER and len(lines[label]["values"]) == 1)
                for label in members}
        pooled = PooledSeedVariance.of([r for r in rows.values() if not r.fixed])
        for label, row in rows.items():
            v_seed, df, _ = row_variance(row, pooled)
            if row.fixed or not (math.isfinite(v_seed) and math.isfinite(df)) or df < 1:
                low = high = math.nan
            else:
                half = float(stats.t.ppf(0.975, df)) * math.sqrt(v_seed)
                low, high = row.mean - half, row.mean + half
            out[label] = RowInterval(row.mean, low, high, row.n, row.exploratory)
    return out


def _span(values: list[float]) -> tuple[float, float]:
    """Axis limits around ``values`` with a margin: the data's range, never stretched to 0."""
    finite = [v for v in values if math.isfinite(v)]
    low, high = min(finite), max(finite)
    pad = 0.06 * (high - low) if high > low else max(abs(high) * 0.02, 0.5)
    return low - pad, high + pad


def _n_text(n: int, exploratory: bool) -> str:
    return f"n={n}*" if exploratory else f"n={n}"


def _draw_row(ax, y: float, row: RowInterval, style: Style, label: str, horizontal: bool = True) -> None:
    """One row's interval and mean; an exploratory row hollow with a grey dashed interval. The artists carry
    ``gid`` ``row:<label>`` (interval) and ``dot:<label>`` (mean) for tests and SVG readers."""
    x, y_ = ([row.low, row.high], [y, y]) if horizontal else ([y, y], [row.low, row.high])
    if math.isfinite(row.low):
        ax.plot(x, y_, color=EXPLORATORY_GREY if row.exploratory else style.colour, lw=1.2 if row.exploratory else 1.8,
                ls=(0, (2, 2)) if row.exploratory else "-", solid_capstyle="butt", gid=f"row:{label}")
    point = (row.mean, y) if horizontal else (y, row.mean)
    ax.plot(*point, marker=style.marker, ms=6, ls="none", mec=style.colour, mew=1.4,
            mfc="none" if row.exploratory else style.colour, gid=f"dot:{label}")


# --------------------------------------------------------------------------- dots (Table 2 as a figure)
def dots(look: dict, labels: list[str], metrics: list[str], lower: frozenset[str], title: str,
         models: dict[str, str] | None = None):
    """Per metric a panel: each student's mean and 95% interval (:func:`intervals`), its n beside its name, the
    teacher as a dotted reference line (or an arrow at the edge when it lies far outside the students' range).
    Metrics no row holds get no panel; None when none is left."""
    models = models if models is not None else {label: line["model"] for (label, _), line in look.items()}
    candidates = [lab for lab in labels if models.get(lab, lab) != TEACHER]
    panels = [m for m in metrics if any((lab, m) in look for lab in candidates)]    # a metric of students only
    students = [lab for lab in candidates if any((lab, m) in look for m in panels)]
    if not panels:
        return None
    style = styles(labels, models)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(3.0 * len(panels) + 1.6, 5.0), 0.3 * len(students) + 1.5),
                             squeeze=False, sharey=True)
    y = {label: i for i, label in enumerate(students)}
    n_of: dict[str, tuple[int, bool]] = {}
    for ax, metric in zip(axes[0], panels):
        rows = intervals(look, [lab for lab in labels if (lab, metric) in look], metric)
        shown = [lab for lab in students if lab in rows]
        for label in shown:
            _draw_row(ax, y[label], rows[label], style[label], label)
            n, exploratory = n_of.get(label, (0, False))
            n_of[label] = (max(n, rows[label].n), exploratory or rows[label].exploratory)
        low, high = _span([v for lab in shown for v in (rows[lab].low, rows[lab].high, rows[lab].mean)])
        ax.set_xlim(low, high)
        teachers = [lab for lab in rows if models.get(lab, lab) == TEACHER]
        for label in teachers[:1]:
            _reference(ax, rows[label].mean, low, high, style[label].colour)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.grid(axis="x", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
        ax.set_title(metric_label(metric, lower), pad=14)
    ax0 = axes[0][0]
    ax0.set_yticks(range(len(students)))
    ax0.set_yticklabels([f"{lab}  {_n_text(*n_of.get(lab, (0, False)))}" for lab in students])
    for tick, label in zip(ax0.get_yticklabels(), students):
        if n_of.get(label, (0, False))[1]:
            tick.set_color(EXPLORATORY_GREY)
    ax0.set_ylim(len(students) - 0.5, -0.5)
    fig.suptitle(title)
    notes = ["dot: mean; line: 95% interval over seeds (test inputs fixed)"]
    if any(e for _, e in n_of.values()):
        notes.append(EXPLORATORY_NOTE)
    fig.text(0.01, -0.01, "; ".join(notes), fontsize=7, color="0.35", ha="left", va="top",
             wrap=True)
    fig.tight_layout()
    return fig


def _reference(ax, value: float, low: float, high: float, colour: str) -> None:
    """The teacher: a dotted vertical line inside the axis, else its value under the panel's title with an arrow
    to the side it lies on (the axis is not stretched to it)."""
    if low <= value <= high:
        ax.axvline(value, color=colour, ls=":", lw=1.2, gid="teacher")
        ax.text(value, 1.0, "teacher", transform=ax.get_xaxis_transform(), fontsize=7, color=colour,
                ha="center", va="bottom")
    else:
        note = f"teacher {value:.2f} →" if value > high else f"← teacher {value:.2f}"
        ax.text(0.5, 1.0, note, transform=ax.transAxes, fontsize=7, color=colour, ha="center", va="bottom",
                gid="teacher")


# --------------------------------------------------------------------------- curves
def curves(frame: pd.DataFrame, label_of: dict[str, str], order: list[str], title: str,
           models: dict[str, str] | None = None):
    """``frame``: curves of one task (model, stage_key, step, epoch, split, name, value). One panel per row's
    training loss and, only when the store holds validation scores, one for them (no empty panel)."""
    frame = frame.assign(label=frame["stage_key"].map(label_of)).dropna(subset=["label"])
    train = frame[(frame["split"] == "train") & (frame["name"] == "loss")]
    valid = frame[(frame["split"] == "validation") & (frame["name"] == "selection")]
    labels = [lab for lab in order if lab in set(train["label"])]
    validated = [lab for lab in order if lab in set(valid["label"])]
    if not labels and not validated:
        return None
    panels = len(labels) + (1 if validated else 0)
    columns = min(4, panels)
    nrows = math.ceil(panels / columns)
    fig, axes = plt.subplots(nrows, columns, figsize=(3.0 * columns, 2.3 * nrows), squeeze=False)
    flat = axes.ravel()
    style = styles(order, models or {})
    for ax, label in zip(flat, labels):
        part = train[train["label"] == label].groupby("epoch")["value"].mean()
        ax.plot(part.index, part.values, color=style[label].colour)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("train loss")
    if validated:
        ax = flat[len(labels)]
        for label in validated:
            part = valid[valid["label"] == label].groupby("epoch")["value"].mean()
            ax.plot(part.index, part.values, marker=style[label].marker, ms=3, color=style[label].colour, label=label)
        ax.set_title("validation (checkpoint selection)", fontsize=9)
        ax.set_xlabel("epoch")
    for ax in flat[panels:]:
        fig.delaxes(ax)
    fig.suptitle(title)
    fig.tight_layout()
    if validated:
        _legend(fig, flat[len(labels)])
    return fig


def _legend(fig, ax) -> None:
    """One legend for the figure, right of the panels, so that it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=7, frameon=False)


# --------------------------------------------------------------------------- compute
#: How the compute plots name the store's cost columns (others: underscores as spaces, wrapped).
COST_NAMES = {"train_seconds": "training seconds", "train_generated_tokens": "tokens generated in training",
              "train_forward_tokens": "tokens through the forward pass in training"}


def cost_name(column: str, width: int = 24) -> str:
    return textwrap.fill(COST_NAMES.get(column, column.replace("_", " ")), width)


def compute(points: pd.DataFrame, metric: str, costs: list[str], lower: frozenset[str], order: list[str], title: str,
            models: dict[str, str] | None = None):
    """``points``: one row per evaluation with ``label``, ``metric`` and each cost column. Tick labels in
    engineering notation (385k, 1.2M), at most five per axis, the x ones turned 30°: they never run together.
    A cost no row has gets no panel."""
    costs = [c for c in costs if c in points and points[[c, metric]].dropna().shape[0] > 0] if metric in points else []
    if not costs:
        return None
    fig, axes = plt.subplots(1, len(costs), figsize=(4.0 * len(costs), 3.3), squeeze=False)
    labels = [lab for lab in order if lab in set(points["label"])]
    style = styles(order, models or {})
    for ax, cost in zip(axes[0], costs):
        for label in labels:
            part = points[(points["label"] == label)].dropna(subset=[cost, metric])
            if part.empty:
                continue
            s = style[label]
            ax.scatter(part[cost], part[metric], s=12, alpha=0.45, color=s.colour, marker=s.marker, linewidths=0)
            ax.scatter([part[cost].mean()], [part[metric].mean()], s=44, marker=s.marker, color=s.colour,
                       edgecolor="black", linewidth=0.5, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.tick_params(axis="x", labelrotation=30)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
        ax.set_xlabel(cost_name(cost))
        ax.set_ylabel(metric_label(metric, lower))
    fig.suptitle(title)
    fig.tight_layout()
    _legend(fig, axes[0][0])
    return fig


# --------------------------------------------------------------------------- Figure 2
def size(table: Table, axis: str, metric: str, lower: frozenset[str], title: str, look: dict | None = None,
         paper: pd.DataFrame | None = None):
    """Figure 2 from its table data: one line per series over the student-size axis, the series dodged sideways
    so that no two intervals overlap on the page; intervals as in :func:`dots` (from ``look``'s per-seed values
    where given, else the table's t-interval; exploratory points hollow). ``paper``: the published numbers
    (``harness.paper.published``), drawn as hollow diamonds on dashed lines of the same colour — on the same
    axis when their range meets ours, else on a right-hand axis of the same scale (points per inch), so that
    the slopes compare."""
    data = table.data
    series = list(dict.fromkeys(data["series"]))
    models = dict(zip(data["series"], data["model"]))
    style = styles(series, models)
    rows = intervals(look, list(data["row"]), metric) if look is not None else {}
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    xs = sorted(set(data[axis]))
    step = min(np.diff(xs)) if len(xs) > 1 else 1.0
    width = 0.5 * step
    offsets = {name: (i - (len(series) - 1) / 2) * width / max(len(series), 1) for i, name in enumerate(series)}
    ours: list[float] = []
    for name in series:
        part = data[data["series"] == name].sort_values(axis)
        x = part[axis].to_numpy(dtype=float) + offsets[name]
        s = style[name]
        ax.plot(x, part["mean"], color=s.colour, lw=1.0, alpha=0.7, label=name)
        for xi, line in zip(x, part.itertuples()):
            row = rows.get(line.row) or _from_table(line)
            _draw_row(ax, xi, row, s, line.row, horizontal=False)
            ours += [v for v in (row.low, row.high, row.mean) if math.isfinite(v)]
    low, high = _span(ours)
    ax.set_ylim(low, high)
    if paper is not None:
        _overlay_paper(ax, paper, series, models, style, axis, metric, offsets, (low, high))
    ax.set_xlabel(axis)
    ax.set_ylabel(metric_label(metric, lower))
    ax.set_xticks(xs)
    ax.set_title(title)
    fig.tight_layout()
    _legend(fig, ax)
    return fig


def _from_table(line) -> RowInterval:
    half = line.ci95 if isinstance(line.ci95, float) and math.isfinite(line.ci95) else math.nan
    return RowInterval(line.mean, line.mean - half, line.mean + half, int(line.n), int(line.n) < MIN_OWN_SEEDS)


def paper_points(paper: pd.DataFrame, axis: str, metric: str, model: str) -> pd.Series:
    """The published Figure 2 values of ``model``: axis value → metric."""
    part = paper[(paper["table"] == "figure2") & (paper["model"] == model) & (paper["metric"] == metric)
                 & paper["setting"].str.startswith(f"{axis}=")]
    return pd.Series(part["value"].to_numpy(), index=part["setting"].str.split("=").str[1].astype(float)).sort_index()


def _overlay_paper(ax, paper, series, models, style, axis, metric, offsets, limits) -> None:
    published = {name: paper_points(paper, axis, metric, models[name]) for name in series}
    published = {name: points for name, points in published.items() if len(points)}
    if not published:
        return
    values = [v for points in published.values() for v in points.values]
    low, high = limits
    target = ax
    if max(values) < low or min(values) > high:            # apart from ours: a right-hand axis of the same span
        target = ax.twinx()
        centre, half = (min(values) + max(values)) / 2, (high - low) / 2
        half = max(half, (max(values) - min(values)) / 2 * 1.06)
        target.set_ylim(centre - half, centre + half)
        target.spines["right"].set_visible(True)
        target.set_ylabel(f"paper's {metric_label(metric)} (right axis, same scale)", color="0.35")
    else:
        ax.set_ylim(min(low, min(values) - 0.2), max(high, max(values) + 0.2))
    for name, points in published.items():
        s = style[name]
        target.plot(points.index + offsets[name], points.values, ls="--", lw=0.9, marker="D", ms=4, mfc="white",
                    mec=s.colour, color=s.colour, alpha=0.9, gid=f"paper:{name}")
    ax.plot([], [], ls="--", marker="D", mfc="white", color="0.4", label="paper (published)")   # the legend's key
