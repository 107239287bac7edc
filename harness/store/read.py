"""Readers of the results store, for users and reports alike: only complete, verified run
folders are read (:func:`harness.store.runs.verify_run`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from .runs import FAILED, IDENTITY, METRIC_COLUMNS, RUNS, flat_config, verify_run


def run_folders(results_dir: str | Path, verify: bool = True) -> list[Path]:
    """Every complete run folder under ``results_dir``; with ``verify``, a folder whose files do not match
    their recorded checksums is left out with a warning (the grid runner re-runs its cell)."""
    runs = Path(results_dir) / RUNS
    if not runs.is_dir():
        return []
    folders = sorted(p for p in runs.iterdir() if not p.name.startswith(".") and (p / "manifest.json").is_file())
    if not verify:
        return folders
    good = []
    for folder in folders:
        problem = verify_run(folder)
        if problem is None:
            good.append(folder)
        else:
            print(f"[results] leaving out run {folder.name}: {problem}; run its cell again (the same "
                  f"`harness run` or `harness grid` command) to rebuild it", file=sys.stderr)
    return good


def _concat(results_dir: str | Path, name: str) -> pd.DataFrame:
    frames = [pd.read_parquet(folder / name) for folder in run_folders(results_dir) if (folder / name).is_file()]
    frames = [f for f in frames if len(f.columns)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_metrics(results_dir: str | Path, fill_parameters: bool = True) -> pd.DataFrame:
    """All runs' metrics under ``results_dir`` as one long DataFrame.

    Parameter columns (``student.encoder_layers``, ``method.beta``, …) appear for any
    value some run set away from its default; ``fill_parameters`` fills the other runs'
    cells of those columns with the value their config had, so every row says it.
    """
    metrics = _concat(results_dir, "metrics.parquet")
    if len(metrics):
        metrics = fill_directions(metrics)
    extra = [c for c in metrics.columns if c not in METRIC_COLUMNS and c != "higher_is_better"]
    if fill_parameters and extra:
        configs = {m["run_id"]: flat_config(m["config"]) for m in _manifests(results_dir)}
        for column in extra:
            if metrics[column].isna().any():
                known = metrics["run_id"].map(lambda r, c=column: configs.get(r, {}).get(c))
                metrics[column] = metrics[column].astype(object).where(metrics[column].notna(), known)
    return metrics


def fill_directions(metrics: pd.DataFrame) -> pd.DataFrame:
    """``metrics`` with a ``higher_is_better`` column: rows written before metrics.parquet had it get it from
    :func:`legacy_directions`."""
    if "higher_is_better" in metrics and metrics["higher_is_better"].notna().all():
        return metrics
    known = metrics["higher_is_better"] if "higher_is_better" in metrics else pd.Series(None, index=metrics.index)
    filled = known.astype(object)
    for task, rows in metrics[known.isna()].groupby("task"):
        directions = legacy_directions(task, rows["metric"].unique())
        filled[rows.index] = rows["metric"].map(directions)
    return metrics.assign(higher_is_better=filled.astype(bool))


LEGACY_LOWER = frozenset({"ter", "r_llh", "r_cvg"})   # lower-is-better where no registry knows the task
RISKS = ("r_llh", "r_cvg")


def legacy_directions(task: str, metrics) -> dict[str, bool]:
    """metric → higher_is_better, for runs written before the store recorded it: from the task registry
    when ``task`` is registered (its ``lower_is_better`` and the risks), else every metric but TER and the risks."""
    described = legacy_descriptions(task, None, {})[0]
    lower = set(described["lower_is_better"]) | set(RISKS) if described else LEGACY_LOWER
    return {m: m not in lower for m in metrics}


def legacy_descriptions(task: str, method: str | None, params: dict) -> tuple[dict | None, dict | None]:
    """(task description, method description) as a manifest written today holds them (``task``, ``method``),
    for runs written before: from the registries, None for a name they do not know."""
    from ..registry import METHODS, TASKS

    described_task = described_method = None
    if task in TASKS:
        cls = TASKS.get(task)
        described_task = {"name": task, "architecture": cls.architecture, "metrics": list(cls.metrics),
                          "lower_is_better": sorted(cls.lower_is_better), "selection_metric": cls.selection_metric}
    if method is not None and method in METHODS:
        described_method = METHODS.get(method)(params).describe()
    return described_task, described_method


def load_examples(results_dir: str | Path) -> pd.DataFrame:
    """Per model and test input, every run: hypotheses, references, per-example scores."""
    return _concat(results_dir, "examples.parquet")


def load_curves(results_dir: str | Path) -> pd.DataFrame:
    """Training curves of every stage of every run."""
    return _concat(results_dir, "curves.parquet")


def load_compute(results_dir: str | Path) -> pd.DataFrame:
    """Per run and stage: seconds, forward and generated tokens of teacher and student, peak memory, reuse."""
    return _concat(results_dir, "compute.parquet")


def _manifests(results_dir: str | Path) -> list[dict]:
    return [json.loads((folder / "manifest.json").read_text()) for folder in run_folders(results_dir)]


def load_manifests(results_dir: str | Path) -> pd.DataFrame:
    """One row per run: identity, variant, wall seconds, when, which commit."""
    rows = [{**{k: m[k] for k in IDENTITY}, "variant": m.get("variant", ""), "wall_seconds": m["wall_seconds"],
             "finished": m["finished"], "commit": m["git"].get("commit"), "device": m["device"]}
            for m in _manifests(results_dir)]
    return pd.DataFrame(rows)


def load_failures(results_dir: str | Path) -> pd.DataFrame:
    """Cells whose last attempt failed: run_id, task, method, seed, error type, message, traceback."""
    folder = Path(results_dir) / FAILED
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return pd.DataFrame(records)
