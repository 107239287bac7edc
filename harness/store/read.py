"""Readers of the results store, for users and reports alike: only complete, verified run
folders are read (:func:`harness.store.runs.verify_run`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from .runs import FAILED, IDENTITY, METRIC_COLUMNS, RUNS, flat_config, higher_is_better, verify_run

LEGACY_LOWER_IS_BETTER = frozenset({"ter"})   # what reports assumed before stores recorded metric directions


def legacy_directions(manifest: dict) -> dict:
    """The ``task`` and ``method`` entries of a manifest written before runs described them, from the
    registries where the run's task or method is registered; else a task whose lower-is-better metrics are
    {"ter"} (and a method known by name only). A manifest that has them is returned unchanged."""
    from ..registry import METHODS, TASKS

    manifest = dict(manifest)
    if "task" not in manifest or not isinstance(manifest["task"], dict):
        name = manifest.get("task") if isinstance(manifest.get("task"), str) else manifest.get("config", {}).get("task")
        if name in TASKS:
            manifest["task"] = TASKS.get(name).describe()
        else:
            manifest["task"] = {"name": name, "architecture": None, "metrics": [],
                                "lower_is_better": sorted(LEGACY_LOWER_IS_BETTER), "selection_metric": None}
    if "method" not in manifest or not isinstance(manifest["method"], dict):
        config = manifest.get("config", {})
        name = manifest.get("method") if isinstance(manifest.get("method"), str) else config.get("method")
        params = config.get("method_params") or {}
        try:
            manifest["method"] = METHODS.get(name)(params).describe()
        except Exception:   # not registered here, or its parameters changed since: what the config says
            manifest["method"] = {"name": name, "params": params}
    return manifest


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


def load_metrics(results_dir: str | Path, fill_parameters: bool = True,
                 manifests: dict[str, dict] | None = None) -> pd.DataFrame:
    """All runs' metrics under ``results_dir`` as one long DataFrame.

    Parameter columns (``student.encoder_layers``, ``method.beta``, …) appear for any
    value some run set away from its default; ``fill_parameters`` fills the other runs'
    cells of those columns with the value their config had, so every row says it.
    ``manifests``: run_id → :func:`read_manifest` of every run, when the caller has read them already.
    """
    metrics = _concat(results_dir, "metrics.parquet")
    if not len(metrics):
        return metrics
    if manifests is None:
        manifests = {m["run_id"]: m for m in _manifests(results_dir)}
    if "higher_is_better" not in metrics.columns or metrics["higher_is_better"].isna().any():
        # runs written before metrics recorded their direction
        known = [higher_is_better(metric, manifests[run]["task"]["lower_is_better"]) if run in manifests else None
                 for run, metric in zip(metrics["run_id"], metrics["metric"])]
        given = metrics["higher_is_better"] if "higher_is_better" in metrics.columns else pd.Series(None, index=metrics.index)
        metrics["higher_is_better"] = given.astype(object).where(given.notna(), pd.Series(known, index=metrics.index))
        metrics = metrics[[c for c in METRIC_COLUMNS if c in metrics.columns]
                          + [c for c in metrics.columns if c not in METRIC_COLUMNS]]
    extra = [c for c in metrics.columns if c not in METRIC_COLUMNS]
    if fill_parameters and extra:
        configs = {run: flat_config(m["config"]) for run, m in manifests.items()}
        for column in extra:
            if metrics[column].isna().any():
                known = metrics["run_id"].map(lambda r, c=column: configs.get(r, {}).get(c))
                metrics[column] = metrics[column].astype(object).where(metrics[column].notna(), known)
    return metrics


def load_examples(results_dir: str | Path) -> pd.DataFrame:
    """Per model and test input, every run: hypotheses, references, per-example scores."""
    return _concat(results_dir, "examples.parquet")


def load_curves(results_dir: str | Path) -> pd.DataFrame:
    """Training curves of every stage of every run."""
    return _concat(results_dir, "curves.parquet")


def load_compute(results_dir: str | Path) -> pd.DataFrame:
    """Per run and stage: seconds, forward and generated tokens of teacher and student, peak memory, reuse."""
    return _concat(results_dir, "compute.parquet")


def read_manifest(folder: str | Path) -> dict:
    """A run's manifest, with ``task`` and ``method`` descriptions filled in for runs written before
    manifests carried them (:func:`legacy_directions`), and each stage's build ``info`` ({} for runs written
    before manifests carried it)."""
    manifest = legacy_directions(json.loads((Path(folder) / "manifest.json").read_text()))
    if isinstance(manifest.get("stages"), dict):
        manifest["stages"] = {label: {**entry, "info": entry.get("info") or {}}
                              for label, entry in manifest["stages"].items()}
    return manifest


def _manifests(results_dir: str | Path) -> list[dict]:
    return [read_manifest(folder) for folder in run_folders(results_dir)]


def load_manifests(results_dir: str | Path) -> pd.DataFrame:
    """One row per run: identity, variant, wall seconds, when, which commit."""
    rows = [{**{k: m[k] for k in IDENTITY}, "task": m["task"]["name"], "method": m["method"]["name"],
             "variant": m.get("variant", ""), "wall_seconds": m["wall_seconds"],
             "finished": m["finished"], "commit": m["git"].get("commit"), "device": m["device"]}
            for m in _manifests(results_dir)]
    return pd.DataFrame(rows)


def load_failures(results_dir: str | Path) -> pd.DataFrame:
    """Cells whose last attempt failed: run_id, task, method, seed, error type, message, traceback."""
    folder = Path(results_dir) / FAILED
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return pd.DataFrame(records)
