"""The results store: one folder per run, written atomically.

``results/runs/<run_id>/``
  * ``metrics.parquet``  — long format: run_id, task, method, profile, seed, model, split, metric, value, signature
  * ``examples.parquet`` — per model and test input: source, references, hypothesis, per-example scores, NLLs
  * ``curves.parquet``   — training curves of every stage the run used (stage, step, epoch, split, name, value)
  * ``manifest.json``    — resolved config, seeds, package versions, git commit, stage keys, wall time per stage
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .config import canonical_json
from .io import atomic_dir, write_json


@dataclass
class RunOutcome:
    run_id: str
    path: Path
    metrics: pd.DataFrame
    manifest: dict


def run_id_for(cfg) -> str:
    import hashlib

    digest = hashlib.sha256(canonical_json(asdict(cfg) | {"results_dir": None}).encode()).hexdigest()[:8]
    return f"{cfg.task}-{cfg.method}-{cfg.profile}-seed{cfg.seed}-{digest}"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("fdistill-harness", "torch", "transformers", "tokenizers", "datasets", "sacrebleu",
                 "rouge-score", "pandas", "pyarrow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> dict:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty}


def write_run(pipeline, evaluated: dict[str, str], wall_seconds: float) -> RunOutcome:
    cfg = pipeline.cfg
    run_id = run_id_for(cfg)
    ident = {"run_id": run_id, "task": cfg.task, "method": cfg.method, "profile": cfg.profile, "seed": cfg.seed}

    metric_rows, example_frames, curve_frames = [], [], []
    for model, label in evaluated.items():
        stage = pipeline.stages[label]
        payload = json.loads((stage.path / "metrics.json").read_text())
        for metric, value in payload["metrics"].items():
            metric_rows.append({**ident, "model": model, "split": "test", "metric": metric, "value": float(value),
                                "signature": payload["signatures"].get(metric, ""), "stage_key": stage.key})
        examples = pd.read_parquet(stage.path / "examples.parquet")
        example_frames.append(examples.assign(**ident, model=model))
    for label in ("teacher", "predistill", "method"):
        stage = pipeline.stages.get(label)
        if stage is not None and (stage.path / "curves.parquet").exists():
            curves = pd.read_parquet(stage.path / "curves.parquet")
            curve_frames.append(curves.assign(**ident, stage=label if label != "method" else cfg.method))
    metrics = pd.DataFrame(metric_rows)

    manifest = {
        **ident,
        "config": asdict(cfg),
        "seeds": {"method": cfg.seed, "upstream": pipeline.upstream_seed},
        "command": sys.argv,
        "packages": package_versions(),
        "git": git_state(),
        "device": str(pipeline.device),
        "platform": platform.platform(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(wall_seconds, 3),
        "stages": {label: {"stage": st.stage, "key": st.key, "reused": st.reused, "seconds_now": round(st.seconds, 3),
                           "seconds_when_built": st.record.get("seconds"), "path": str(st.path)}
                   for label, st in pipeline.stages.items()},
    }
    final = Path(cfg.results_dir) / "runs" / run_id
    with atomic_dir(final) as tmp:
        metrics.to_parquet(tmp / "metrics.parquet", index=False)
        pd.concat(example_frames, ignore_index=True).to_parquet(tmp / "examples.parquet", index=False)
        curves = pd.concat(curve_frames, ignore_index=True) if curve_frames else pd.DataFrame()
        curves.to_parquet(tmp / "curves.parquet", index=False)
        write_json(tmp / "manifest.json", manifest)
    return RunOutcome(run_id, final, metrics, manifest)


def load_metrics(results_dir: str | Path) -> pd.DataFrame:
    """All runs' metrics under ``results_dir`` as one long DataFrame."""
    files = sorted(Path(results_dir).glob("runs/*/metrics.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
