"""The stage graph of one cell, as a pure plan: config → ordered stage specs with their cache keys.

    data → tokenizer → teacher → pseudo-labels ─┐
                          │  └→ teacher outputs ─┤ (teacher_outputs_k > 0)
                          │                      ├→ student (the method) → evaluations → results/runs/<run>/
                          └→ student init → pre-distill ─┘

Which stages a cell has, in which order, with which config and upstream stages, is decided
here and only here (from the method's declaration: its ``init``, ``needs_pseudo_labels``,
``stored_teacher_sources``, and whether it *is* the pre-distill stage). Nothing is loaded: the data enter by their identity
(:meth:`harness.task.Task.data_identity`), so ``harness grid --dry-run`` is this plan plus a
look into the cache. :mod:`.run` walks the plan top to bottom; :mod:`.stages` builds each stage.

Each split of the data is an input of its own (``data/<split>``, keyed by :func:`data_key`: the split's identity,
:meth:`harness.task.Task.split_identity`, and the data code), and a stage names the splits it reads itself:

* tokenizer: ``data/train`` (it is trained on the training texts);
* teacher: ``data/train`` and ``data/validation`` (it trains on one and selects its checkpoint on the other);
* teacher outputs: ``data/train`` (the teacher's rows on the training prefixes);
* evaluation: ``data/test`` (it decodes and scores the test inputs);
* pseudo-labels and students read the training and validation splits the teacher's key already holds.

So a larger test split re-keys the evaluations and nothing they evaluate; the run id holds the whole data
identity (:func:`data_identity`): a run is the whole cell.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import RunConfig, TrainConfig, canonical_json
from ..errors import HarnessError
from ..methods.base import Method
from ..methods.baselines import PreDistill
from ..identity import code_identity
from ..identity import digest as code_digest
from ..store.cache import stage_key
from ..task import SPLITS
from ..store.labels import (EVALUATION, METHOD, PREDISTILL, PSEUDO_LABELS, TEACHER, TEACHER_OUTPUTS, TOKENIZER,
                            evaluation_label, shown_label, teacher_outputs_label, training_label)


@dataclass(frozen=True)
class StageSpec:
    """One stage of a cell: what the cache stores it as, how the run names it, and its key."""

    label: str                    # tokenizer | teacher | pseudo_labels | teacher_outputs/<source> | predistill | method
                                  # | evaluation/<model>
    stage: str                    # the cache's stage name: tokenizer | teacher | pseudo_labels | teacher_outputs | student
                                  # | evaluation
    config: dict
    inputs: dict[str, str]        # upstream name → label of the stage it is (a split of the data: data/<split>)
    upstream: dict[str, str]      # upstream name → key: with config, what the key is a hash of
    key: str
    code: dict[str, str] = field(default_factory=dict, compare=False)   # module or plugin → digest (in the key)
    model: str | None = None      # the model it trains or evaluates (teacher, predistill, <method>)
    # How a student stage trains, for planning tools (grid cost); a build takes only the method's class (its code,
    # in ``code``) and reads the parameters and the schedule from config (:func:`harness.pipeline.stages.keyed`):
    method: Method | None = field(default=None, compare=False, repr=False)
    schedule: TrainConfig | None = field(default=None, compare=False, repr=False)

    @property
    def shown(self) -> str:
        """The label as a person reads it (the method stage under the method's name)."""
        return shown_label(self.label, self.model)


@dataclass
class CellPlan:
    """The stages of one cell in build order; ``aliases`` names a stage under a second label
    (the pre-distill cell's method stage is its pre-distill stage)."""

    specs: list[StageSpec]
    aliases: dict[str, str]       # alias label → label of the spec it names
    evaluated: dict[str, str]     # evaluated model → label of its evaluation stage
    data_keys: dict[str, str]     # split → its key in stage keys (its identity and the task's code)
    data_identity: str            # the data in the run id: their whole identity only
    upstream_seed: int

    def keys(self) -> dict[str, str]:
        """label → key of every stage, aliases included (what a run's manifest records)."""
        return {label: self[label].key for label in self.labels()}

    def __getitem__(self, label: str) -> StageSpec:
        label = self.aliases.get(label, label)
        return next(s for s in self.specs if s.label == label)

    def labels(self) -> list[str]:
        """Every label of the plan, an alias right after the stage it names."""
        out = []
        for spec in self.specs:
            out.append(spec.label)
            out += [alias for alias, target in self.aliases.items() if target == spec.label]
        return out


def data_identity(task, identity: dict | None = None) -> str:
    """A hash of the task's data identity (:meth:`harness.task.Task.data_identity`, or ``identity`` when the
    caller already has it; nothing is loaded)."""
    identity = task.data_identity() if identity is None else identity
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


DATA_PREFIX = "data/"


def data_label(split: str) -> str:
    """The label under which one split of the data enters a plan's inputs (and the name of that input)."""
    return DATA_PREFIX + split


def data_split(label: str) -> str | None:
    """The split a data label names (:func:`data_label`); None: the label of a stage."""
    return label[len(DATA_PREFIX):] if label.startswith(DATA_PREFIX) else None


def data_key(task, split: str) -> str:
    """The key of one split of a task's data: a hash of the split's identity
    (:meth:`harness.task.Task.split_identity`) and of the code that reads or generates the records and scores them — the task plugin's
    package — and that draws the splits from them (the ``data`` roots of :mod:`harness.identity`, with their
    import closure; no record is loaded)."""
    keyed = {"split": split, "data": task.split_identity(split),
             "code": code_digest(code_identity("data", (type(task),)))}
    return hashlib.sha256(canonical_json(keyed).encode()).hexdigest()[:16]


def data_inputs(*splits: str) -> dict[str, str]:
    """A stage's inputs for the splits it reads (name → label: ``data/<split>`` both)."""
    return {data_label(split): data_label(split) for split in splits}


def check_architecture(cfg: RunConfig, task, method: Method) -> None:
    from ..lm import DECODER_ONLY_FAMILIES

    decoder_only = cfg.teacher.family in DECODER_ONLY_FAMILIES
    if decoder_only != (task.architecture == "decoder-only"):
        raise HarnessError(f"task {cfg.task!r} is {task.architecture} but teacher.family={cfg.teacher.family!r} "
                           f"is {'decoder-only' if decoder_only else 'encoder-decoder'}")
    if method.teacher_reads_student_encoder and task.architecture == "decoder-only":
        raise HarnessError(f"method {method.name!r} feeds the student's encoder output to the teacher (method."
                           f"teacher_encoder=student), but task {cfg.task!r} is decoder-only: it has no encoder")


def keyed_sampling(cfg: RunConfig, trained: Method) -> dict:
    """The online sampling a student stage's key holds: the cell's own when ``trained`` samples prefixes
    online; else the sampling the cell's task and profile give without any ``--set``. Such a stage never
    samples, so ``--set online_sampling.*`` (an ENGINE ablation) cannot change it and must not rebuild it (the
    shared pre-distilled student above all). At the defaults both are the same, so keys made before stay valid
    (a run made with such a ``--set`` is planned anew). Editing a task's default sampling still re-keys them."""
    from ..config import resolve_config
    from ..step.prefixes import ONLINE_SOURCES

    if any(source in ONLINE_SOURCES for source in trained.active_prefix_weights()):
        return asdict(cfg.online_sampling)
    return asdict(resolve_config(cfg.task, cfg.method, cfg.profile, check=False).online_sampling)


def selection_metric(task) -> dict:
    """How a stage that trains selects its checkpoint: the task's selection metric and its direction."""
    return {"name": task.selection_metric, "higher_is_better": task.selection_metric not in task.lower_is_better}


def plan_cell(cfg: RunConfig, task, method: Method, device_type: str) -> CellPlan:
    """The stages of the cell ``cfg`` in build order, with their configs and keys.

    ``task`` and ``method`` are the cell's instances (no data loaded); ``device_type`` is part
    of the teacher's key (training on another device gives other weights), so of every key downstream of it.
    A stage's config holds every setting its build reads (:mod:`.stages` reads nothing else of ``cfg``)."""
    check_architecture(cfg, task, method)
    upstream_seed = cfg.seed if cfg.upstream_seed is None else cfg.upstream_seed
    data_keys = {split: data_key(task, split) for split in SPLITS}
    keys = {data_label(split): key for split, key in data_keys.items()}
    specs: list[StageSpec] = []

    def add(label: str, stage: str, config: dict, inputs: dict[str, str], plugins: tuple[type, ...] = (),
            **extra: Any) -> StageSpec:
        upstream = {name: keys[source] for name, source in inputs.items()}
        code = code_identity(stage, plugins)
        spec = StageSpec(label, stage, config, inputs, upstream, stage_key(stage, config, upstream, code), code,
                         **extra)
        keys[label] = spec.key
        specs.append(spec)
        return spec

    def student(label: str, trained: Method, init: str, schedule: TrainConfig, seed: int,
                inputs: dict[str, str], model: str, rows: str = "per_reference") -> StageSpec:
        config = {"method": trained.name, "params": asdict(trained.params), "init": init,
                  "student": asdict(cfg.student), "train": asdict(schedule),
                  "sampling": keyed_sampling(cfg, trained), "selection": asdict(cfg.selection_decode),
                  "selection_metric": selection_metric(task), "seed": seed}
        if rows != "per_reference":   # keyed only when not the default
            config["rows"] = rows
        if trained.needs_teacher and cfg.teacher_mode != "eval":   # likewise
            config["teacher_mode"] = cfg.teacher_mode
        cap = trained.source_cap()
        if cap is not None and cap < cfg.tokenizer.max_source_tokens:   # a method's tighter source cap (ENGINE on WMT)
            config["source_cap"] = {"tokens": cap, "side": task.source_truncation}
        if cfg.processes > 1:         # data parallel: other batches, other random streams (keyed only then)
            config["processes"] = cfg.processes
        return add(label, "student", config, {TEACHER: TEACHER, **inputs}, (type(trained),), model=model,
                   method=trained, schedule=schedule)

    tokenizer_config = {"tokenizer": asdict(cfg.tokenizer), "pretrained": cfg.teacher.pretrained}
    if task.source_truncation != "right":   # keyed only when not the default, so that keys made before it stay valid
        tokenizer_config["source_truncation"] = task.source_truncation
    if cfg.teacher.trust_remote_code:       # (the same: keyed only when on)
        tokenizer_config["trust_remote_code"] = True
    add(TOKENIZER, "tokenizer", tokenizer_config, data_inputs("train"))
    teacher_config = {"teacher": asdict(cfg.teacher), "train": asdict(cfg.teacher_train),
                      "selection": asdict(cfg.selection_decode), "selection_metric": selection_metric(task),
                      "seed": upstream_seed, "device": device_type}
    if cfg.processes > 1:             # (as a student's)
        teacher_config["processes"] = cfg.processes
    add(TEACHER, "teacher", teacher_config, {"tokenizer": TOKENIZER, **data_inputs("train", "validation")},
        model=TEACHER)
    if method.needs_pseudo_labels:
        # truncation: each training example's offline output is cut as its target is
        add(PSEUDO_LABELS, "pseudo_labels", {"decode": asdict(cfg.pseudo_labels),
                                             "truncation": cfg.tokenizer.max_target_tokens}, {TEACHER: TEACHER})

    is_predistill = method.name == PreDistill.name   # this cell trains the shared pre-distilled student itself
    aliases = {}
    if is_predistill:
        # Its own seed: the row varies over seeds like every other; at the upstream seed it is the shared student.
        student(PREDISTILL, method, "layer_copy", cfg.student_train, cfg.seed, {}, model=cfg.method)
        aliases[METHOD] = PREDISTILL
    else:
        if method.init == "predistilled":
            # The shared pre-distilled student: the task's defaults (α_hid differs for dialogue), then predistill.*
            shared = PreDistill.for_task(type(task), cfg.predistill_params, profile=cfg.profile)
            student(PREDISTILL, shared, "layer_copy", cfg.student_train, upstream_seed, {}, model=PREDISTILL)
        inputs = {}
        if method.init == "predistilled":
            inputs[PREDISTILL] = PREDISTILL
        if method.needs_pseudo_labels:
            inputs["pseudo_labels"] = PSEUDO_LABELS
        for source in method.stored_teacher_sources if cfg.teacher_outputs_k > 0 else ():
            label = teacher_outputs_label(source)
            store_inputs = {TEACHER: TEACHER, **data_inputs("train")}
            if source == "teacher_offline":
                store_inputs["pseudo_labels"] = PSEUDO_LABELS
            # batch_size: the teacher runs on the rows in the KD stage's batches (padding may move the last bits)
            add(label, TEACHER_OUTPUTS, {"source": source, "split": "train", "k": cfg.teacher_outputs_k,
                                         "truncation": cfg.tokenizer.max_target_tokens,
                                         "batch_size": cfg.kd_train.batch_size}, store_inputs)
            inputs[label] = label
        schedule = cfg.student_train if method.init == "layer_copy" else cfg.kd_train
        rows = cfg.kd_train_rows if method.init == "predistilled" else "per_reference"
        student(METHOD, method, method.init, schedule, cfg.seed, inputs, model=cfg.method, rows=rows)

    # Evaluations: the teacher first (the students' coverage risk reads its outputs), then each student.
    teacher_dist = {"samples": cfg.teacher_dist_samples, "sampling": asdict(cfg.teacher_dist_sampling)}
    evaluated = {}
    models = [TEACHER] + ([PREDISTILL] if PREDISTILL in keys and not is_predistill else []) + [cfg.method]
    for model in models:
        # Sampled decoding (dialogue) must not depend on what ran before in this process.
        config = {"decode": asdict(cfg.eval_decode), "risk_sampling": asdict(cfg.risk_sampling),
                  "seed": cfg.seed if model == cfg.method else upstream_seed}
        inputs = {"model": training_label(model, cfg.method), **data_inputs("test")}
        if model == TEACHER:
            config["teacher_dist"] = teacher_dist
            if cfg.eval_decode_seeds > 1:   # keyed only when on: the teacher's evaluations made before keep their keys
                config["decode_seeds"] = cfg.eval_decode_seeds
        else:
            inputs["teacher_evaluation"] = evaluation_label(TEACHER)
        evaluated[model] = add(evaluation_label(model), EVALUATION, config, inputs, model=model).label
    return CellPlan(specs, aliases, evaluated, data_keys, data_identity(task), upstream_seed)


def run_id(cfg: RunConfig) -> str:
    """The run id of ``cfg`` (its config and its data's identity; :func:`harness.store.runs.run_id_for`)."""
    from ..registry import TASKS
    from ..store.runs import run_id_for

    return run_id_for(cfg, data_identity(TASKS.get(cfg.task)(cfg.data)))


def plan_for(cfg: RunConfig) -> CellPlan:
    """The plan of ``cfg`` from the registries: task and method instances only, no data, no model."""
    from ..lm import device_type
    from ..registry import METHODS, TASKS

    task = TASKS.get(cfg.task)(cfg.data)
    method = METHODS.get(cfg.method)(cfg.method_params)
    return plan_cell(cfg, task, method, device_type(cfg.device))
