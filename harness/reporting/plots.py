"""Figures of a report (matplotlib, written as PNG and SVG).

* bars — per task, one panel per metric, one bar per row, 95% CI error bars;
* curves — per task, the training loss of every stage (mean over seeds) and the validation score
  used for checkpoint selection;
* compute — per task, quality vs each cost measure in the store, one point per seed and the mean;
* size — Figure 2: quality vs student size, one line per method.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .render import Table  # noqa: E402
from .tables import metric_label  # noqa: E402

plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 96, "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False, "svg.hashsalt": "harness-report"})
TEACHER_COLOUR = "0.6"


def _colours(labels: list[str]) -> dict[str, str]:
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {lab: (TEACHER_COLOUR if lab == "teacher" else cmap(i % cmap.N)) for i, lab in enumerate(labels)}


def save(fig, folder: Path, name: str) -> dict[str, Path | bytes]:
    """Write ``name.png`` and ``name.svg``; return their paths and the PNG bytes (for the HTML page)."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    png = folder / f"{name}.png"
    png.write_bytes(buffer.getvalue())
    svg = folder / f"{name}.svg"
    fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return {"png": png, "svg": svg, "png_bytes": buffer.getvalue()}


def _finite(x) -> float:
    return x if x is not None and isinstance(x, (int, float)) and math.isfinite(x) else 0.0


def bars(look: dict, labels: list[str], metrics: list[str], lower: frozenset[str], title: str):
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(3.2 * len(metrics), 4), 0.35 * len(labels) + 1.6),
                             squeeze=False)
    colours = _colours(labels)
    for ax, metric in zip(axes[0], metrics):
        shown = [lab for lab in labels if (lab, metric) in look]
        means = [look[(lab, metric)]["mean"] for lab in shown]
        errors = [_finite(look[(lab, metric)]["ci"]) for lab in shown]
        y = np.arange(len(shown))
        ax.barh(y, means, xerr=errors, color=[colours[lab] for lab in shown], capsize=3, height=0.7)
        ax.set_yticks(y, shown if ax is axes[0][0] else [""] * len(shown))
        ax.invert_yaxis()
        ax.set_title(metric_label(metric, lower))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves(frame: pd.DataFrame, label_of: dict[str, str], order: list[str], title: str):
    """``frame``: curves of one task (model, stage_key, step, epoch, split, name, value)."""
    frame = frame.assign(label=frame["stage_key"].map(label_of)).dropna(subset=["label"])
    train = frame[(frame["split"] == "train") & (frame["name"] == "loss")]
    valid = frame[(frame["split"] == "validation") & (frame["name"] == "selection")]
    labels = [lab for lab in order if lab in set(train["label"])]
    if not labels:
        return None
    columns = min(4, len(labels) + 1)
    nrows = math.ceil((len(labels) + 1) / columns)
    fig, axes = plt.subplots(nrows, columns, figsize=(3.0 * columns, 2.3 * nrows), squeeze=False)
    flat = axes.ravel()
    colours = _colours(order)
    for ax, label in zip(flat, labels):
        part = train[train["label"] == label].groupby("epoch")["value"].mean()
        ax.plot(part.index, part.values, color=colours[label])
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("train loss")
    ax = flat[len(labels)]
    for label in order:
        part = valid[valid["label"] == label].groupby("epoch")["value"].mean()
        if len(part):
            ax.plot(part.index, part.values, marker="o", ms=3, color=colours[label], label=label)
    ax.set_title("validation (checkpoint selection)", fontsize=9)
    ax.set_xlabel("epoch")
    for ax in flat[len(labels) + 1:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    _legend(fig, flat[len(labels)])
    return fig


def _legend(fig, ax) -> None:
    """One legend for the figure, right of the panels, so that it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=7, frameon=False)


def compute(points: pd.DataFrame, metric: str, costs: list[str], lower: frozenset[str], order: list[str], title: str):
    """``points``: one row per evaluation with ``label``, ``metric`` and each cost column."""
    fig, axes = plt.subplots(1, len(costs), figsize=(4.2 * len(costs), 3.2), squeeze=False)
    labels = [lab for lab in order if lab in set(points["label"])]
    colours = _colours(order)
    for ax, cost in zip(axes[0], costs):
        for label in labels:
            part = points[(points["label"] == label)].dropna(subset=[cost, metric])
            if part.empty:
                continue
            ax.scatter(part[cost], part[metric], s=14, alpha=0.5, color=colours[label])
            ax.scatter([part[cost].mean()], [part[metric].mean()], s=46, marker="D", color=colours[label],
                       edgecolor="black", linewidth=0.5, label=label)
        ax.set_xlabel(cost)
        ax.set_ylabel(metric_label(metric, lower))
    fig.suptitle(title)
    fig.tight_layout()
    _legend(fig, axes[0][0])
    return fig


def size(table: Table, axis: str, metric: str, lower: frozenset[str], title: str):
    """Figure 2 from its table data: one line per series, x = the student-size axis."""
    data = table.data
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    series = list(dict.fromkeys(data["series"]))
    colours = _colours(series)
    for name in series:
        part = data[data["series"] == name].sort_values(axis)
        ax.errorbar(part[axis], part["mean"], yerr=part["ci95"].fillna(0), marker="o", capsize=3, label=name,
                    color=colours[name])
    ax.set_xlabel(axis)
    ax.set_ylabel(metric_label(metric, lower))
    ax.set_xticks(sorted(set(data[axis])))
    ax.set_title(title)
    fig.tight_layout()
    _legend(fig, ax)
    return fig
