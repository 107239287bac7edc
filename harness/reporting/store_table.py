"""The teacher-output store's table: what keeping the teacher's top-k costs on disk, and what it changes.

Runs of one task that differ only in ``teacher_outputs_k`` (same method, data and every other config value;
seeds are paired) form a *sweep* when some of them read a store; a task gets the table when its store holds
one. One row per method (and other setting) × k, k = 0 shown as "off (exact teacher)":

* bytes per stored token: the store file's size over the training prefix positions it holds, from the build
  info each run's manifest carries for its ``teacher_outputs/<source>`` stages; a method that reads several
  sources gets their bytes over their positions (the positions-weighted mean of their bytes per token);
* per Table 2 metric of the task, Δ: the row's metric minus that of the reference run of the same method and
  seed — the k = 0 run (the live teacher), else the run with the largest k ≥ the vocabulary size (where the
  store is exact) — the mean of the per-seed differences with several seeds. Its 95% interval is a paired
  bootstrap over test inputs (:func:`~harness.reporting.stability.paired_differences`): each resample draws
  input indices with replacement once and recomputes both runs' corpus metric on that draw (from per-input
  sufficient statistics: :func:`~harness.reporting.stability.decompose`); a metric the examples cannot
  recompute shows its difference without an interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import canonical_json
from ..paper import MODELS, order_key
from ..store.runs import OPERATIONAL
from .load import Store
from .render import Cell, Table
from .stability import decompose, interval, paired_differences
from .stats import bootstrap_seed
from .summary import setting_label
from .tables import metric_label

STORE_STAGE = "teacher_outputs"
K = "teacher_outputs_k"
OFF = "off (exact teacher)"


@dataclass(frozen=True)
class SweepRun:
    run_id: str
    method: str
    seed: int
    k: int
    stores: tuple[tuple[str, dict], ...]     # (stage key, build info and source) of each store stage it read


@dataclass
class Sweep:
    method: str
    setting: str                  # the runs' other non-default settings
    runs: list[SweepRun]

    @property
    def vocab_size(self) -> int | None:
        sizes = [info["vocab_size"] for run in self.runs for _, info in run.stores if "vocab_size" in info]
        return max(sizes) if sizes else None

    def reference(self, seed: int) -> SweepRun | None:
        """The run the seed's other runs are compared with: k = 0, else the largest k ≥ the vocabulary size."""
        own = {run.k: run for run in self.runs if run.seed == seed}
        if 0 in own:
            return own[0]
        vocab = self.vocab_size
        exact = [k for k in own if vocab is not None and k >= vocab]
        return own[max(exact)] if exact else None


def sweeps(store: Store, task: str, profile: str) -> list[Sweep]:
    """The task's runs grouped by everything but ``teacher_outputs_k`` and the seed: the groups with ≥ 2 values of
    k of which some run read a store (a method that reads none trains alike at every k)."""
    groups: dict[str, Sweep] = {}
    for run_id in store.run_models["run_id"].unique():
        manifest = store.manifest(run_id)
        config = manifest.get("config") or {}
        if store.run_tasks.get(run_id) != task or manifest.get("profile", config.get("profile")) != profile:
            continue
        identity = {name: value for name, value in config.items() if name not in (K, "seed", *OPERATIONAL)}
        identity["data_identity"] = (manifest.get("data") or {}).get("identity")
        stores = {entry["key"]: {**(entry.get("info") or {}), "source": label.partition("/")[2]}
                  for label, entry in (manifest.get("stages") or {}).items() if entry.get("stage") == STORE_STAGE}
        method = manifest["method"]["name"]
        run = SweepRun(run_id, method, int(manifest.get("seed", config.get("seed"))), int(config.get(K) or 0),
                       tuple(sorted(stores.items())))
        setting = setting_label({p: v for p, v in (manifest.get("parameters") or {}).items() if p != K})
        groups.setdefault(canonical_json(identity), Sweep(method, setting, [])).runs.append(run)
    found = [sweep for sweep in groups.values()
             if len({run.k for run in sweep.runs}) > 1 and any(run.stores for run in sweep.runs)]
    return sorted(found, key=lambda sweep: (order_key(sweep.method, MODELS), sweep.setting))


def k_label(k: int, vocab: int | None) -> str:
    if k == 0:
        return OFF
    return f"{k} (≥ V = {vocab}: exact)" if vocab is not None and k >= vocab else str(k)


def bytes_per_token(runs: list[SweepRun]) -> tuple[float | None, int, int, list[str]]:
    """(bytes per stored token, bytes, positions, sources) over the distinct store stages the runs read."""
    stages = dict(pair for run in runs for pair in run.stores)
    total = sum(info.get("bytes", 0) for info in stages.values())
    positions = sum(info.get("positions", 0) for info in stages.values())
    sources = sorted({str(info.get("source")) for info in stages.values() if info.get("source")})
    return (total / positions if positions else None), total, positions, sources


@dataclass
class Difference:
    value: float                  # mean over seeds of (row − reference)
    low: float | None = None      # 95% paired-bootstrap interval; None: not recomputable from the examples
    high: float | None = None
    pairs: int = 0

    def cell(self) -> Cell:
        if self.low is None or not math.isfinite(self.low):
            return Cell(text=f"{self.value:+.2f}")
        excludes_zero = self.low > 0 or self.high < 0
        return Cell(text=f"{self.value:+.2f} [{self.low:+.2f}, {self.high:+.2f}]", mark=excludes_zero)


def difference(store: Store, pairs: list[tuple[SweepRun, SweepRun]], metric: str, n_samples: int
               ) -> Difference | None:
    """The mean over seed pairs (row run, reference run) of the difference in ``metric``, with its paired
    bootstrap interval over test inputs; None when a pair lacks the metric."""
    values, parts, ids = [], [], []
    for run, reference in pairs:
        sides = []
        for side in (run, reference):
            rows = store.run_metrics(side.run_id, side.method)
            rows = rows[rows["metric"] == metric]
            if not len(rows):
                return None
            sides.append((side, float(rows["value"].iloc[0]), str(rows["signature"].iloc[0])))
        values.append(sides[0][1] - sides[1][1])
        decomposed = []
        for side, stored, signature in sides:
            frame = store.examples(side.run_id, side.method)
            ids.append(tuple(frame["example_id"]) if "example_id" in frame else ())
            decomposed.append(decompose(frame, metric, signature, stored) if len(frame) else None)
        parts.append(tuple(decomposed))
    result = Difference(float(np.mean(values)), pairs=len(pairs))
    if ids[0] and all(i == ids[0] for i in ids) and all(d is not None for pair in parts for d in pair):
        result.low, result.high = interval(paired_differences(parts, n_samples, bootstrap_seed()))
    return result


def store_table(store: Store, task: str, profile: str, n_samples: int = 1000) -> Table | None:
    """The store's table for one task and profile (None when no runs differ only in ``teacher_outputs_k``)."""
    found = sweeps(store, task, profile)
    if not found:
        return None
    info = store.task_info(task, profile)
    metrics = list(info.metrics)
    several = len({sweep.method for sweep in found}) < len(found)
    out_rows, data = [], []
    for sweep in found:
        vocab = sweep.vocab_size
        name = f"{sweep.method} ({sweep.setting})" if several and sweep.setting else sweep.method
        for k in sorted({run.k for run in sweep.runs}, key=lambda k: (k != 0, -k)):
            runs = sorted((run for run in sweep.runs if run.k == k), key=lambda run: run.seed)
            per_token, total, positions, sources = bytes_per_token(runs)
            pairs = [(run, sweep.reference(run.seed)) for run in runs]
            pairs = [(run, ref) for run, ref in pairs if ref is not None and ref.run_id != run.run_id]
            is_reference = not pairs and any(sweep.reference(run.seed) is run for run in runs)
            cells = [Cell(text=name), Cell(text=k_label(k, vocab)), Cell(text=str(len(runs))),
                     Cell(per_token) if per_token is not None else Cell()]
            ident = {"task": task, "profile": profile, "method": sweep.method, "setting": sweep.setting, "k": k,
                     "exact": k == 0 or (vocab is not None and k >= vocab), "vocab_size": vocab,
                     "seeds": " ".join(str(run.seed) for run in runs), "bytes_per_token": per_token,
                     "store_bytes": total or None, "positions": positions or None, "sources": " ".join(sources)}
            for metric in metrics:
                diff = difference(store, pairs, metric, n_samples) if pairs else None
                if is_reference:
                    cells.append(Cell(text="reference"))
                else:
                    cells.append(diff.cell() if diff is not None else Cell())
                data.append({**ident, "metric": metric, "reference": is_reference,
                             "reference_k": " ".join(str(ref.k) for _, ref in pairs) or None,
                             "n": diff.pairs if diff else 0, "difference": diff.value if diff else None,
                             "ci_low": diff.low if diff else None, "ci_high": diff.high if diff else None})
            out_rows.append(cells)
    header = ["method", "k", "n", "bytes/token"] + [f"Δ {metric_label(m, info.lower_is_better)} [95% CI]"
                                                   for m in metrics]
    caption = ("Runs that differ only in teacher_outputs_k (the teacher's top-k log-probabilities and tail mass "
               "kept once on the fixed training prefixes). bytes/token: the store file's size per stored prefix "
               "position (float16 log-probabilities below the vocabulary size V, float32 when exact), over "
               "every source a method reads (positions-weighted). Δ: the row's test metric minus that of the "
               "reference run of the same method and seed (k off, else the largest exact k), the mean over n "
               f"seeds; [95% CI]: paired bootstrap over test inputs, {n_samples} resamples, each drawing the "
               "inputs once and rescoring both runs on them (no interval: the metric cannot be recomputed from "
               "the examples). †: the interval excludes 0.")
    return Table(f"store_{task}_{profile}", f"Teacher-output store — {task} ({profile} profile)", header,
                 out_rows, caption, pd.DataFrame(data))
