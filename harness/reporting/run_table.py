"""The table ``harness run`` prints for one run: one row per model, one column per metric.

Multi-run reports (``harness report``) are the rest of :mod:`harness.reporting`.
"""

from __future__ import annotations

import pandas as pd

from ..paper import MODELS, order_key
from .tables import metric_label

HIDDEN = {"output_tokens", "decode_tokens_per_s"}
FIRST = ("bleu", "bleu1", "bleu2", "chrf", "ter", "rouge1", "rouge2", "rougeL")   # leftmost columns, in this order


def metrics_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per model, one column per metric (mean over whatever rows share them)."""
    shown = metrics[~metrics["metric"].isin(HIDDEN)]
    table = shown.pivot_table(index="model", columns="metric", values="value", aggfunc="mean", sort=False)
    table = table.loc[sorted(table.index, key=lambda model: order_key(model, MODELS))]
    first = [c for c in FIRST if c in table.columns]
    rest = [c for c in table.columns if c not in first]
    return table[first + rest]


def format_run_table(outcome) -> str:
    """The run's test metrics as text; ↓ marks the metrics where lower is better (metrics.parquet says which)."""
    metrics = outcome.metrics
    lower = frozenset(metrics.loc[~metrics["higher_is_better"].astype(bool), "metric"])
    table = metrics_table(metrics)
    labels = {c: metric_label(c, lower) for c in table.columns}
    lines = [f"{outcome.run_id}  (test split, {outcome.manifest['wall_seconds']:.0f}s)"]
    widths = {c: max(9, len(labels[c]) + 2) for c in table.columns}
    header = f"{'model':<12}" + "".join(f"{labels[c]:>{widths[c]}}" for c in table.columns)
    lines += [header, "-" * len(header)]
    for model, row in table.iterrows():
        lines.append(f"{model:<12}" + "".join(f"{row[c]:>{widths[c]}.2f}" if pd.notna(row[c])
                                              else f"{'—':>{widths[c]}}" for c in table.columns))
    return "\n".join(lines)
