"""The results store as a report sees it: the parquet files of ``results/runs/<run_id>/``.

Every run writes the teacher, the pre-distilled student (KD methods) and its own model, so
the same *evaluation* (one ``stage_key``) recurs in many runs. A report counts each trained
model once: evaluations of one model stage (``compute.parquet`` names its key) are merged into
one, the first by evaluation key (only the evaluation seed differs between them, which changes
nothing under beam search), and rows are then grouped by (task, profile, model, stage_key).

Columns beyond the base set are read generically:
  * parameter columns (``student.encoder_layers``, ``method.beta``, …) are *axes*; an axis
    whose value differs between runs that share an evaluation does not affect that evaluation
    (the teacher across student sizes) and is dropped from it. ``variant`` (their joined label)
    is not an axis of its own. Values a run left at the default are filled in by
    :func:`harness.store.load_metrics` from the run's own config record;
  * ``higher_is_better`` says each metric's direction (costs are lower-is-better);
  * each evaluation carries its run's data identity (column ``data``: the hash of the task's data that its run
    id holds, manifest ``data.identity``): runs on other data (another ``--data-dir``, a test file edited in
    place) are other experiments, kept apart by :mod:`~harness.reporting.summary`;
  * a column naming a cost (``…seconds``, ``…_tokens`` of generation or forward passes, FLOPs) is
    a cost of the run's own model; so is its method stage's row of ``compute.parquet``
    (``train_seconds``, ``train_generated_tokens``, ``train_forward_tokens``). Costs become metric
    rows of the run's model (the teacher's and pre-distill's rows merely repeat a run's cost).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import HarnessError
from ..store.bundle import stage_aliases
from ..store.labels import training_label
from ..store.read import load_metrics, read_manifest, run_folders
from ..store.runs import FIDELITY, RISKS

BASE_COLUMNS = ("run_id", "task", "method", "profile", "seed", "model", "split", "metric", "value", "signature",
                "stage_key", "higher_is_better")
# ``variant`` joins the axes; ``data.data_dir`` says where a run's files were, not what they held: the data
# identity (their digests, :func:`data_identity`) tells data sets apart, wherever they lay.
NOT_AXES = ("variant", "data.data_dir")
DATA = "data"   # the evaluations' column of the data identity: rows are never averaged across it
COST = re.compile(r"seconds|generated_tokens|forward_tokens|flops|^compute[._]", re.IGNORECASE)
EVALUATION = ["task", "profile", "model", "stage_key"]
TEACHER_DIST = ("teacher_dist", "teacher_dist_paper")
NOT_QUALITY = {"output_tokens", "decode_tokens_per_s", *TEACHER_DIST, *RISKS, *FIDELITY}
GENERATED = ("teacher_generated_tokens", "student_generated_tokens")
FORWARD = ("teacher_forward_tokens", "student_forward_tokens")


def is_cost(name: str) -> bool:
    return bool(COST.search(name))


def of_task(frame: pd.DataFrame, task: str, profile: str) -> pd.DataFrame:
    """The rows of ``frame`` (evaluations, summary lines, curves) that belong to one task and profile."""
    return frame[(frame["task"] == task) & (frame["profile"] == profile)]


@dataclass(frozen=True)
class TaskInfo:
    metrics: tuple[str, ...]          # the task's quality metrics, in the task's order
    lower_is_better: frozenset[str]   # every metric where lower is better (risks and costs included)
    primary: str                      # the metric of figures and rank agreement


@dataclass
class Store:
    root: Path
    evaluations: pd.DataFrame   # per evaluation × metric: EVALUATION, metric, value, signature, higher_is_better,
                                # run_id, seeds, axes
    axes: list[str]
    run_count: int
    run_models: pd.DataFrame    # (run_id, model) → stage_key of that model's evaluation, for every run
    tasks: dict[str, dict]      # task name → its description (the manifests' ``task``)
    methods: dict[str, dict]    # run_id → the description of the method it ran, parameters as run
    run_tasks: dict[str, str]   # run_id → the task it is reported under (:func:`report_task`)
    data_names: dict[str, str] = field(default_factory=dict)   # data identity → its folder's name ("" if none)
    _runs: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _builds: pd.DataFrame | None = field(default=None, repr=False)   # stage_builds(), read once
    bootstraps: dict = field(default_factory=dict, repr=False)      # rows' resampled scores, drawn once per report
    _manifests: dict[str, dict] = field(default_factory=dict, repr=False)
    _metrics: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def task_info(self, task: str, profile: str) -> TaskInfo:
        """The task's metrics as its runs describe them, restricted to those the store holds; directions
        from the metrics' ``higher_is_better``. A task whose description names no metrics (a run written
        before manifests described tasks, of a task not registered) shows every quality metric of its data,
        by name."""
        ev = of_task(self.evaluations, task, profile)
        higher = dict(zip(ev["metric"], ev["higher_is_better"]))
        described = self.tasks[task]
        if described["metrics"]:
            metrics = tuple(m for m in described["metrics"] if m in higher)
        else:
            metrics = tuple(sorted(m for m in higher if m not in NOT_QUALITY and not is_cost(m)))
        selection = described["selection_metric"]
        primary = selection if selection in metrics else (metrics[0] if metrics else "")
        return TaskInfo(metrics, frozenset(m for m, h in higher.items() if not h), primary)

    def examples(self, run_id: str, model: str) -> pd.DataFrame:
        """Per-example outputs of ``model`` in run ``run_id`` (examples.parquet), in test-split order."""
        if run_id not in self._runs:
            self._runs[run_id] = pd.read_parquet(self.root / "runs" / run_id / "examples.parquet")
        frame = self._runs[run_id]
        return frame[frame["model"] == model].reset_index(drop=True)

    def manifest(self, run_id: str) -> dict:
        """Run ``run_id``'s manifest (:func:`harness.store.read.read_manifest`), read once."""
        if run_id not in self._manifests:
            self._manifests[run_id] = read_manifest(self.root / "runs" / run_id)
        return self._manifests[run_id]

    def run_metrics(self, run_id: str, model: str) -> pd.DataFrame:
        """The test metrics of ``model`` in run ``run_id`` as that run recorded them (metrics.parquet): metric,
        value, signature, …"""
        if run_id not in self._metrics:
            self._metrics[run_id] = pd.read_parquet(self.root / "runs" / run_id / "metrics.parquet")
        frame = self._metrics[run_id]
        return frame[(frame["model"] == model) & (frame["split"] == "test")].reset_index(drop=True)

    def curves(self) -> pd.DataFrame:
        """Training curves, one copy per evaluated model (``stage_key`` of its evaluation attached)."""
        frames = [f for f in (pd.read_parquet(p) for p in self._files("curves.parquet")) if len(f)]
        if not frames:
            return pd.DataFrame(columns=["task", "profile", "model", "stage_key", "step", "epoch", "split", "name",
                                         "value"])
        curves = _as_reported(pd.concat(frames, ignore_index=True), self.run_tasks).rename(columns={"stage": "model"})
        # a curve belongs to the evaluation of the same model in the same run
        curves = curves.merge(self.run_models, on=["run_id", "model"], how="inner")
        curves = curves.drop_duplicates(["task", "profile", "model", "stage_key", "step", "split", "name"])
        return curves.reset_index(drop=True)

    def stage_builds(self) -> pd.DataFrame:
        """Every stage the runs used, once per (stage, key): what building it cost (compute.parquet)."""
        if self._builds is None:
            frames = [f for f in (pd.read_parquet(p) for p in self._files("compute.parquet")) if len(f)]
            builds = (_as_reported(_aliased(pd.concat(frames, ignore_index=True), self.root), self.run_tasks) if frames
                      else pd.DataFrame(columns=["task", "profile", "stage_name", "stage_key", "seconds"]))
            self._builds = builds.drop_duplicates(["task", "profile", "stage_name", "stage_key"]).reset_index(drop=True)
        return self._builds

    def _files(self, name: str) -> list[Path]:
        return [self.root / "runs" / run / name for run in sorted(self.run_models["run_id"].unique())
                if (self.root / "runs" / run / name).is_file()]


def _compute(root: Path, run: str) -> pd.DataFrame | None:
    path = root / "runs" / run / "compute.parquet"
    if not path.is_file():
        return None
    compute = _aliased(pd.read_parquet(path), root)
    return compute if len(compute) and {"stage", "stage_key", "method"} <= set(compute.columns) else None


def _model_stage(compute: pd.DataFrame, model: str) -> pd.Series | None:
    """The row of the stage that trained ``model`` (the pre-distill run lists its method stage as predistill)."""
    method = compute["method"].iloc[0]
    labels = [training_label(model, method), method]   # stores written before store.labels named it by the method
    rows = compute[compute["stage"].isin(labels)]
    return rows.iloc[0] if len(rows) else None


def model_stages(root: Path, run_models: pd.DataFrame) -> pd.DataFrame:
    """(run_id, model) → ``model_key``, the key of the stage that trained the model, where compute.parquet says."""
    rows = []
    for run, models in run_models.groupby("run_id")["model"]:
        compute = _compute(root, run)
        for model in models if compute is not None else ():
            stage = _model_stage(compute, model)
            if stage is not None:
                rows.append({"run_id": run, "model": model, "model_key": stage["stage_key"]})
    return pd.DataFrame(rows, columns=["run_id", "model", "model_key"])


def method_costs(root: Path, runs: list[str]) -> pd.DataFrame:
    """Per run: the cost of building its own model's stage (compute.parquet), as (run_id, metric, value) rows."""
    rows = []
    for run in runs:
        compute = _compute(root, run)
        stage = _model_stage(compute, compute["method"].iloc[0]) if compute is not None else None
        if stage is None:
            continue
        values = {"train_seconds": stage.get("seconds"),
                  "train_generated_tokens": _total(stage, GENERATED), "train_forward_tokens": _total(stage, FORWARD)}
        rows += [{"run_id": run, "metric": k, "value": float(v)} for k, v in values.items() if pd.notna(v)]
    return pd.DataFrame(rows, columns=["run_id", "metric", "value"])


def _total(stage: pd.Series, names: tuple[str, ...]):
    values = [stage.get(n) for n in names if n in stage and pd.notna(stage.get(n))]
    return sum(values) if values else None


REAL_TEXT = "-real"   # the suffix of a task's report view on released data (a local file or a hub data set)


def report_task(manifest: dict) -> str:
    """The task a run's results are reported under: its task's name, with :data:`REAL_TEXT` appended when the run
    read released data where its profile's default is the embedded twin (``data.source`` set to local or hub) —
    the same task on real text is compared with its twin (the real-text section), never averaged with it. A
    profile whose default is released data (``paper``) keeps the task's name: its numbers are the paper's kind."""
    source = (manifest.get("parameters") or {}).get("data.source", "embedded")
    return manifest["task"]["name"] + (REAL_TEXT if source != "embedded" else "")


def data_identity(manifest: dict) -> str:
    """The identity of the data a run read (the hash its run id holds); "" for runs written before manifests
    recorded it."""
    return str((manifest.get("data") or {}).get("identity") or "")


def data_folder(manifest: dict) -> str:
    """The name of the folder a run read its data from (``data.data_dir``), "" when it read none."""
    folder = ((manifest.get("config") or {}).get("data") or {}).get("data_dir") \
        or (manifest.get("parameters") or {}).get("data.data_dir")
    return Path(str(folder)).name if folder else ""


def run_descriptions(root: Path) -> tuple[dict[str, dict], dict[str, dict], dict[str, str], dict[str, dict]]:
    """(report task → task description, run_id → method description, run_id → report task, run_id → manifest)
    from the runs' manifests (filled by :func:`harness.store.read.read_manifest` for runs written before
    manifests described them)."""
    tasks, methods, run_tasks, manifests = {}, {}, {}, {}
    for folder in run_folders(root):
        manifest = read_manifest(folder)
        task = report_task(manifest)
        tasks.setdefault(task, manifest["task"])
        methods[manifest["run_id"]] = manifest["method"]
        run_tasks[manifest["run_id"]] = task
        manifests[manifest["run_id"]] = manifest
    return tasks, methods, run_tasks, manifests


def _aliased(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """``frame`` with each stage key that names a stage lent by a reference bundle under another key replaced by the
    shipped key (:func:`harness.store.bundle.stage_aliases`; none in an ordinary store)."""
    aliases = stage_aliases(root)
    if not aliases or "stage_key" not in frame.columns:
        return frame
    return frame.assign(stage_key=frame["stage_key"].replace(aliases))


def _as_reported(frame: pd.DataFrame, run_tasks: dict[str, str]) -> pd.DataFrame:
    """``frame`` (rows with ``run_id`` and ``task``) with each run's task replaced by its report task."""
    if not len(frame) or "run_id" not in frame.columns:
        return frame
    return frame.assign(task=frame["run_id"].map(run_tasks).fillna(frame["task"]))


def load_store(results_dir: str | Path) -> Store:
    """Every complete run under ``results_dir``, deduplicated into one frame of evaluations."""
    root = Path(results_dir)
    tasks, methods, run_tasks, manifests = run_descriptions(root)   # each manifest read once, here
    raw = load_metrics(root, manifests=manifests)
    if raw.empty:
        raise HarnessError(f"no runs under {root / 'runs'}: `harness run` or `harness grid` writes them")
    missing = [c for c in BASE_COLUMNS if c not in raw.columns]
    if missing:
        raise HarnessError(f"{root}: metrics.parquet lacks the columns {', '.join(missing)}")
    raw = _as_reported(_aliased(raw[raw["split"] == "test"], root), run_tasks)
    extra = [c for c in raw.columns if c not in BASE_COLUMNS and c not in NOT_AXES]
    costs = [c for c in extra if is_cost(c)]
    axes = [c for c in extra if c not in costs]

    own = raw[raw["model"] == raw["method"]].drop_duplicates("run_id")
    cost_rows = [own.assign(metric=c, value=pd.to_numeric(own[c], errors="coerce"), signature="",
                            higher_is_better=False) for c in costs]
    stage_costs = method_costs(root, own["run_id"].tolist())
    if len(stage_costs):
        cost_rows.append(own.drop(columns=["metric", "value"]).merge(stage_costs, on="run_id")
                         .assign(signature="", higher_is_better=False))
    raw = pd.concat([raw, *cost_rows], ignore_index=True).drop(columns=costs)
    raw = raw[raw["value"].notna()]
    raw = _one_evaluation_per_model(root, raw)
    run_models = raw.drop_duplicates(["run_id", "model"])[["run_id", "model", "stage_key"]]

    raw = raw.assign(**{DATA: raw["run_id"].map(lambda run: data_identity(manifests[run]))})
    groups = raw.groupby(EVALUATION, sort=False, dropna=False)
    ident = groups.agg(run_id=("run_id", "first"), seeds=("seed", lambda s: tuple(sorted(set(int(x) for x in s)))),
                       **{DATA: (DATA, "first")})   # one model stage is keyed by its data: one identity
    for axis in axes:
        values = groups[axis].agg(lambda s: s.dropna().unique().tolist())
        # An axis that varies between the runs sharing one evaluation does not touch that model: none of its
        # evaluations keeps it (else the shared seed-42 one and the seeds a model's own cells trained would
        # land in two rows: the pre-distilled student beside a teacher_outputs_k sweep).
        unaffected = {key[:3] for key, v in values.items() if len(v) > 1}   # (task, profile, model)
        ident[axis] = pd.Series([v[0] if len(v) == 1 and key[:3] not in unaffected else None
                                 for key, v in values.items()], index=values.index, dtype=object)
    per_metric = raw.groupby(EVALUATION + ["metric"], sort=False).agg(
        value=("value", "first"), signature=("signature", "first"), higher_is_better=("higher_is_better", "first"))
    evaluations = per_metric.reset_index().merge(ident.reset_index(), on=EVALUATION, how="left")
    names = {data_identity(m): data_folder(m) for m in manifests.values()}
    return Store(root, evaluations, axes, raw["run_id"].nunique(), run_models, tasks, methods, run_tasks,
                 data_names=names, _manifests=manifests)


def _one_evaluation_per_model(root: Path, raw: pd.DataFrame) -> pd.DataFrame:
    """Re-key the evaluations of one trained model to one of them; its own rows sort first (so ``first`` takes them)."""
    keys = model_stages(root, raw.drop_duplicates(["run_id", "model"])[["run_id", "model"]])
    raw = raw.merge(keys, on=["run_id", "model"], how="left")
    raw["model_key"] = raw["model_key"].fillna(raw["stage_key"])
    chosen = raw.groupby(["task", "profile", "model", "model_key"])["stage_key"].transform("min")
    raw = raw.assign(_other=raw["stage_key"] != chosen, stage_key=chosen)
    return raw.sort_values("_other", kind="stable").drop(columns=["_other", "model_key"]).reset_index(drop=True)
