"""The table ``harness run`` prints for one run, and the model order and metric labels every report shares.

Multi-run reports (``harness report``) live in :mod:`harness.reporting`.
"""

from __future__ import annotations

import pandas as pd

ORDER = ["teacher", "mle", "predistill", "seqkd", "engine", "kl", "rkl", "js", "tvd"]
LABELS = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER↓", "r_llh": "R_llh↓", "r_cvg": "R_cvg↓",
          "rouge1": "R1", "rouge2": "R2", "rougeL": "RL", "bleu1": "BLEU-1", "bleu2": "BLEU-2",
          "teacher_dist": "TeacherDist", "meteor": "METEOR", "bertscore": "BERTScore", "moverscore": "MoverScore",
          "bleurt": "BLEURT", "speedup": "speed-up"}
HIDDEN = {"output_tokens", "decode_tokens_per_s"}


def metrics_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per model, one column per metric (mean over whatever rows share them)."""
    shown = metrics[~metrics["metric"].isin(HIDDEN)]
    table = shown.pivot_table(index="model", columns="metric", values="value", aggfunc="mean", sort=False)
    rank = {m: i for i, m in enumerate(ORDER)}
    table = table.loc[sorted(table.index, key=lambda m: (rank.get(m, len(ORDER)), m))]
    first = [c for c in ("bleu", "bleu1", "bleu2", "chrf", "ter", "rouge1", "rouge2", "rougeL") if c in table.columns]
    rest = [c for c in table.columns if c not in first]
    return table[first + rest]


def format_run_table(outcome) -> str:
    table = metrics_table(outcome.metrics)
    lines = [f"{outcome.run_id}  (test split, {outcome.manifest['wall_seconds']:.0f}s)"]
    widths = {c: max(9, len(LABELS.get(c, c)) + 2) for c in table.columns}
    header = f"{'model':<12}" + "".join(f"{LABELS.get(c, c):>{widths[c]}}" for c in table.columns)
    lines += [header, "-" * len(header)]
    for model, row in table.iterrows():
        lines.append(f"{model:<12}" + "".join(f"{row[c]:>{widths[c]}.2f}" if pd.notna(row[c])
                                              else f"{'—':>{widths[c]}}" for c in table.columns))
    return "\n".join(lines)
