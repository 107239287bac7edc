"""The results store: one folder per run, written atomically, and readers for all of it.

``results/``
  * ``runs/<run_id>/`` — one complete run (a grid cell); only complete folders ever appear here
      * ``metrics.parquet``  — long format: run_id, task, method, profile, seed, model, split, metric,
        value, signature, stage_key, variant, higher_is_better, and one column per non-default config
        value (``student.encoder_layers``, ``method.beta``, …: the swept parameters; a method parameter
        holds the value the run ran with)
      * ``examples.parquet`` — per model and test input: source, references, hypothesis, scores, NLLs
      * ``curves.parquet``   — training curves of every stage the run used (stage, step, epoch, split, name, value)
      * ``compute.parquet``  — per stage: wall seconds, forward and generated tokens, peak memory, reuse
      * ``manifest.json``    — resolved config, the task and method as they describe themselves
        (``Task.describe()``, ``Method.describe()``), seeds, package versions, git commit, and per stage its
        key, compute and what its build recorded (``stages.<label>.info``: the teacher-output store's
        ``bytes_per_token``, a training stage's ``steps``; {} in runs written before), and per split the
        inputs it drew (counts per stratum, a hash of the example ids: ``data.drawn``)
  * ``failed/<run_id>.json`` — the error and traceback of a cell that failed (removed when it succeeds)
  * ``cache/``  — the stage cache (:mod:`harness.store.cache`)
  * ``grids/``  — one record per grid invocation: its cells and their outcome
  * ``locks/``, ``logs/``, ``.tmp/`` — cell locks, worker logs, folders being written

Runs are identified by a hash of their resolved config (:func:`run_id_for`), so a run
is written once whoever runs it, and reruns find it.
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import canonical_json, param_group, param_key
from .io import atomic_dir, checksums, write_json
from .labels import training_label

RUNS, FAILED, TMP = "runs", "failed", ".tmp"
IDENTITY = ("run_id", "task", "method", "profile", "seed")
METRIC_COLUMNS = (*IDENTITY, "model", "split", "metric", "value", "signature", "stage_key", "variant",
                  "higher_is_better")
# Config fields that say where and how often, not what: never part of a run's identity or parameters.
OPERATIONAL = ("results_dir", "checkpoint_every")
#: Settings added after runs were recorded, and their defaults: left out of a run's id at the default, so that
#: the ids of runs made before them stay valid.
LATER_SETTINGS = {"teacher_outputs_k": 0, "predistill_params": {}, "teacher_mode": "eval",
                  "data.merge_test_inputs": False, "method_params.max_source_tokens": None,   # the last: ENGINE's
                  "processes": 1, "eval_decode_seeds": 1}
TIMING_METRICS = frozenset({"decode_tokens_per_s"})   # wall-clock dependent: differ between equal runs


@dataclass
class RunOutcome:
    run_id: str
    path: Path
    metrics: pd.DataFrame
    manifest: dict


def run_id_for(cfg, data_identity: str) -> str:
    """A run's id: its task, method, profile and seed, and a hash of its resolved config and of its data's
    identity (so a run on other data never replaces one; :func:`harness.pipeline.graph.run_id` computes it)."""
    import hashlib

    identity = asdict(cfg) | {k: None for k in OPERATIONAL} | {"data_identity": data_identity}
    for name, default in LATER_SETTINGS.items():
        *groups, last = name.split(".")
        holder = functools.reduce(dict.__getitem__, groups, identity)
        if last in holder and holder[last] == default:
            del holder[last]
    digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:8]
    return f"{cfg.task}-{cfg.method}-{cfg.profile}-seed{cfg.seed}-{digest}"


def run_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / RUNS / run_id


def stale_stages(manifest: dict, planned: dict[str, str]) -> list[str]:
    """The stages (label → key in the plan of the same cell now) whose key differs from the run's: the
    run was made by other code or inputs and must be made again."""
    made = {label: entry.get("key") for label, entry in manifest.get("stages", {}).items()}
    return sorted(label for label, key in planned.items() if made.get(label) != key)


def is_complete(results_dir: str | Path, run_id: str) -> bool:
    """A run folder exists only when complete; the manifest is its last file."""
    return (run_path(results_dir, run_id) / "manifest.json").is_file()


_VERIFIED: dict[tuple, str | None] = {}   # (folder, its files' sizes and mtimes) → verdict


def verify_run(folder: str | Path) -> str | None:
    """None if every file of a complete run folder matches the checksum recorded when it was written,
    else what is wrong (a truncated or changed file, a missing one, an unreadable manifest).

    Every reader of the store calls this: a verdict is kept while no file of the folder changes
    (size or mtime), so a report hashes each run once, not once per table it reads."""
    folder = Path(folder)
    try:
        stamp = (str(folder), tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                           for p in folder.iterdir() if p.is_file())))
    except OSError as err:
        return f"it cannot be read ({type(err).__name__})"
    if stamp not in _VERIFIED:
        _VERIFIED[stamp] = _check_run(folder)
    return _VERIFIED[stamp]


def _check_run(folder: Path) -> str | None:
    try:
        recorded = json.loads((folder / "manifest.json").read_text()).get("checksums")
    except (OSError, ValueError) as err:
        return f"its manifest.json cannot be read ({type(err).__name__})"
    if recorded is None:
        return None      # written before checksums were recorded
    found = checksums(folder)
    found.pop("manifest.json", None)
    for name, digest in recorded.items():
        if name not in found:
            return f"{name} is missing"
        if found[name] != digest:
            return f"{name} does not match the checksum recorded when it was written (truncated or changed)"
    return None


def flat_config(config: dict) -> dict[str, Any]:
    """``{"student": {"encoder_layers": 2}}`` → ``{"student.encoder_layers": 2}``; method parameters as ``method.NAME``
    (and the pre-distilled student's as ``predistill.NAME``)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = value

    for key, value in config.items():
        walk(param_key(key), value)
    return out


def swept_parameters(cfg) -> dict[str, Any]:
    """Config values that differ from the defaults of the run's task, method and profile, by dotted key."""
    from ..config import resolve_config

    default = flat_config(asdict(resolve_config(cfg.task, cfg.method, cfg.profile, check=False)))
    skip = set(IDENTITY) | set(OPERATIONAL)
    return {k: v for k, v in flat_config(asdict(cfg)).items()
            if k not in skip and (k not in default or default[k] != v)}


def variant_label(params: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(params.items()))


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("fdistill-harness", "torch", "transformers", "tokenizers", "datasets", "sacrebleu",
                 "rouge-score", "pandas", "pyarrow", "accelerate"):
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


COMPUTE_FIELDS = ("teacher_forward_tokens", "student_forward_tokens", "teacher_generated_tokens",
                  "student_generated_tokens", "teacher_tokens_from_store")


def compute_rows(stages: dict) -> list[dict]:
    """One row per stage a run used (an alias label for the same stage once): cost when built, and now."""
    rows, seen = [], set()
    for label, st in stages.items():
        if (st.stage, st.key) in seen:
            continue
        seen.add((st.stage, st.key))
        compute = st.record.get("compute") or {}
        rows.append({"stage": label, "stage_name": st.stage, "stage_key": st.key, "reused": st.reused,
                     "seconds": st.record.get("seconds"), "seconds_now": round(st.seconds, 3),
                     "wait_seconds": round(getattr(st, "wait_seconds", 0.0), 3),
                     "resumed_from_step": st.record.get("resumed_from_step"),
                     "steps": (st.record.get("info") or {}).get("steps"),
                     **{k: compute.get(k) for k in COMPUTE_FIELDS},
                     "peak_memory_bytes": compute.get("peak_memory_bytes"),
                     "memory_kind": compute.get("memory_kind")})
    return rows


def _totals(rows: list[dict]) -> dict:
    out = {"seconds": round(sum(r["seconds"] or 0 for r in rows), 3)}
    for k in COMPUTE_FIELDS:
        out[k] = sum(r[k] or 0 for r in rows)
    peaks = [r["peak_memory_bytes"] for r in rows if r["peak_memory_bytes"] is not None]
    out["peak_memory_bytes"] = max(peaks) if peaks else None
    return out


# likelihood and coverage risks, ours and the paper's way: lower is better on every task
RISKS = ("r_llh", "r_cvg", "r_llh_paper", "r_cvg_paper")   # every evaluation's risks: lower is better
# a student's token-level fidelity to the teacher: TVD (lower is better) and acceptance α = 1 − TVD
FIDELITY = ("tvd_token", "acceptance")


def higher_is_better(metric: str, lower_is_better) -> bool:
    """A metric's direction: lower is better for the task's ``lower_is_better`` metrics, the risks and the TVD."""
    return metric not in RISKS and metric != "tvd_token" and metric not in set(lower_is_better)


@dataclass
class RunRecord:
    """What a finished cell hands to the store: the pipeline fills it, :func:`write_run` writes it."""

    config: Any                     # the resolved RunConfig
    stages: dict                    # label → StageResult, every stage the run used (aliases included)
    evaluated: dict[str, str]       # evaluated model → label of its evaluation stage
    upstream_seed: int
    truncated: dict                 # split → {"sources", "targets", "examples"}: inputs/targets cut to length
    device: str
    wall_seconds: float
    task: dict                      # Task.describe()
    method: dict                    # Method.describe()
    data_identity: str              # hash of Task.data_identity(): part of the run id
    data_keys: dict[str, str]       # split → its key in stage keys (its identity and the task's code)
    drawn: dict = field(default_factory=dict)   # split → its inputs, examples, inputs per stratum, hash of ids


def run_parameters(record: RunRecord) -> dict[str, Any]:
    """The run's non-default config values by dotted key; a method parameter with the value the run ran with."""
    params = swept_parameters(record.config)
    ran_with = record.method.get("params", {})
    return {k: ran_with.get(param_group(k)[1], v) if param_group(k)[0] == "method" else v for k, v in params.items()}


def write_run(record: RunRecord) -> RunOutcome:
    cfg = record.config
    run_id = run_id_for(cfg, record.data_identity)
    ident = {"run_id": run_id, "task": cfg.task, "method": cfg.method, "profile": cfg.profile, "seed": cfg.seed}
    params = run_parameters(record)
    variant = variant_label(params)
    stages = record.stages

    metric_rows, example_frames, curve_frames = [], [], []
    for model, label in record.evaluated.items():
        stage = stages[label]
        payload = json.loads((stage.path / "metrics.json").read_text())
        for metric, value in payload["metrics"].items():
            metric_rows.append({**ident, "model": model, "split": "test", "metric": metric, "value": float(value),
                                "signature": payload["signatures"].get(metric, ""), "stage_key": stage.key,
                                "variant": variant,
                                "higher_is_better": higher_is_better(metric, record.task["lower_is_better"]),
                                **params})
        examples = pd.read_parquet(stage.path / "examples.parquet")
        example_frames.append(examples.assign(**ident, model=model, variant=variant))
    for model in record.evaluated:
        stage = stages.get(training_label(model, cfg.method))
        if stage is not None and (stage.path / "curves.parquet").exists():
            curves = pd.read_parquet(stage.path / "curves.parquet")
            curve_frames.append(curves.assign(**ident, variant=variant, stage=model))
    metrics = pd.DataFrame(metric_rows)
    rows = compute_rows(stages)
    compute = pd.DataFrame([{**ident, "variant": variant, **row} for row in rows])

    manifest = {
        **ident,
        "variant": variant,
        "parameters": params,
        "config": asdict(cfg),
        "task": record.task,
        "method": record.method,
        "seeds": {"method": cfg.seed, "upstream": record.upstream_seed},
        "command": sys.argv,
        "packages": package_versions(),
        "git": git_state(),
        "device": record.device,
        # Inputs longer than tokenizer.max_source_tokens / targets longer than max_target_tokens are cut.
        "truncated": record.truncated,
        "platform": platform.platform(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(record.wall_seconds, 3),
        "data": {"identity": record.data_identity, "keys": record.data_keys, "drawn": record.drawn},
        "stages": {label: {"stage": st.stage, "key": st.key, "reused": st.reused, "seconds_now": round(st.seconds, 3),
                           "seconds_when_built": st.record.get("seconds"), "path": str(st.path),
                           "wait_seconds": round(getattr(st, "wait_seconds", 0.0), 3),
                           "resumed_from_step": st.record.get("resumed_from_step"),
                           "compute": st.record.get("compute"), "code": st.record.get("code"),
                           "info": st.record.get("info") or {}, "host": st.record.get("host")}
                   for label, st in stages.items()},
        "compute": {"built_now": _totals([r for r in rows if not r["reused"]]), "all_stages": _totals(rows)},
    }
    final = run_path(cfg.results_dir, run_id)
    with atomic_dir(final, temp_root=Path(cfg.results_dir) / TMP) as tmp:
        metrics.to_parquet(tmp / "metrics.parquet", index=False)
        pd.concat(example_frames, ignore_index=True).to_parquet(tmp / "examples.parquet", index=False)
        curves = pd.concat(curve_frames, ignore_index=True) if curve_frames else pd.DataFrame()
        curves.to_parquet(tmp / "curves.parquet", index=False)
        compute.to_parquet(tmp / "compute.parquet", index=False)
        manifest["checksums"] = checksums(tmp)          # verified by the readers and the grid runner
        write_json(tmp / "manifest.json", manifest)   # last: its presence marks the folder complete
    return RunOutcome(run_id, final, metrics, manifest)


# ---------------------------------------------------------------- failures

def failure_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / FAILED / f"{run_id}.json"


def write_failure(results_dir: str | Path, run_id: str, record: dict) -> Path:
    path = failure_path(results_dir, run_id)
    write_json(path, {"run_id": run_id, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record})
    return path


def clear_failure(results_dir: str | Path, run_id: str) -> None:
    failure_path(results_dir, run_id).unlink(missing_ok=True)
