"""``harness bench --cell``: what benchmark cells cost, stage by stage, with the teacher-output store off and on.

Every cell is built in one fresh stage cache (so every stage it needs is built, none comes from an
earlier run), first with the store off, then on: the stages the store does not change keep their keys
and are reused, so only the store and what reads it are built again. A cell's cost is the sum of the
build seconds of the stages it needs (a stage it shares with another cell counted in each), which is
what it costs from an empty cache in one process.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..config import RunConfig

EXACT_K = 1 << 20   # above any vocabulary: the store keeps every log-probability (exact)
VARIANTS = ("store off", "store on")


def bench_cells(configs: list[RunConfig], store_k: int | None = None, scratch: str | Path = "results",
                progress: Callable[[str], None] = lambda _: None) -> list[dict]:
    """One row per (cell, variant, stage): its build seconds and compute counts. ``store_k``: the store's k
    when on (None: exact). ``scratch``: a folder beside which the fresh cache is made (and removed after)."""
    from ..pipeline import Pipeline
    from ..store.cache import STAGE_RECORD

    Path(scratch).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-cell-", dir=scratch))
    rows = []
    try:
        for variant, k in zip(VARIANTS, (0, store_k or EXACT_K)):
            for cfg in configs:
                cell = dataclasses.replace(cfg, results_dir=str(folder), teacher_outputs_k=k)
                progress(f"[bench cell] {cfg.task}/{cfg.method} ({variant})")
                outcome = Pipeline(cell).run()
                for label, stage in outcome.manifest["stages"].items():
                    compute = stage.get("compute") or {}
                    info = json.loads((Path(stage["path"]) / STAGE_RECORD).read_text()).get("info") or {}
                    rows.append({
                        "task": cfg.task, "method": cfg.method, "profile": cfg.profile, "variant": variant,
                        "store_k": k, "label": label, "stage": stage["stage"], "key": stage["key"],
                        "reused": bool(stage["reused"]), "seconds": float(stage["seconds_when_built"]),
                        "teacher_forward_tokens": compute.get("teacher_forward_tokens", 0),
                        "teacher_tokens_from_store": compute.get("teacher_tokens_from_store", 0),
                        "store_bytes_per_token": info.get("bytes_per_token")})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def format_cells(rows: list[dict]) -> str:
    """Per cell, each stage's build seconds with the store off and on, and the cell's total."""
    lines = []
    cells = list(dict.fromkeys((r["task"], r["method"], r["profile"]) for r in rows))
    for task, method, profile in cells:
        mine = [r for r in rows if (r["task"], r["method"], r["profile"]) == (task, method, profile)]
        labels = list(dict.fromkeys(r["label"] for r in mine))
        seconds = {(r["variant"], r["label"]): r for r in mine}
        lines.append(f"{task}/{method} ({profile} profile): stage build seconds")
        header = f"{'stage':<34} {'store off':>10} {'store on':>10}"
        lines += [header, "-" * len(header)]
        totals = dict.fromkeys(VARIANTS, 0.0)
        for label in labels:
            cells_text = []
            for variant in VARIANTS:
                row = seconds.get((variant, label))
                if row is None:
                    cells_text.append(f"{'—':>10}")
                    continue
                totals[variant] += row["seconds"]
                same = variant == "store on" and (VARIANTS[0], label) in seconds and \
                    seconds[(VARIANTS[0], label)]["key"] == row["key"]
                cells_text.append(f"{'=' if same else '':>1}{row['seconds']:>9.1f}")
            lines.append(f"{label:<34} {' '.join(cells_text)}")
        lines.append(f"{'total':<34} {totals['store off']:>10.1f} {totals['store on']:>10.1f}")
        lines.append("")
    lines.append("= the same stage as with the store off (reused: its seconds are those it was built in)")
    return "\n".join(lines)
