"""The paper's published numbers (``results.csv``, shipped with the package).

``results.csv`` transcribes Wen et al. (ACL 2023) §4: Table 2 (all four tasks), Table 3 (R_llh, R_cvg per KD
method; TeacherDist per task), Table 4 (DART, online vs offline teacher prefixes) and Figure 2 (DART BLEU vs
student encoder layers, read off the bar chart, ±0.05). Columns: table, task, model, setting (``axis=value`` or
empty), metric, value. Task and metric names are the harness's (``wmt16_en_ro``, ``rougeL``, ``r_llh``, …).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd


def published() -> pd.DataFrame:
    """The paper's numbers, one row per (table, task, model, setting, metric)."""
    with resources.files(__package__).joinpath("results.csv").open("r", encoding="utf-8") as f:
        frame = pd.read_csv(f, dtype={"setting": str}, keep_default_na=False)
    return frame.assign(value=frame["value"].astype(float))


def speedups(task: str = "dart") -> dict[str, float]:
    """method → the paper's offline-over-online training speed-up per epoch (Table 4, one GPU)."""
    paper = published()
    rows = paper[(paper["table"] == "table4") & (paper["task"] == task) & (paper["metric"] == "speedup")
                 & (paper["setting"] == "teacher_prefix=offline")]
    return dict(zip(rows["model"], rows["value"]))
