"""Experiment trackers (``--report-to tensorboard|wandb|mlflow``) through Accelerate's trackers.

A run reports to its trackers what its results store also holds: the resolved config (as hyperparameters, once),
the training curves of every stage the run used (a stage built now as it trains, one reused from the cache from its
recorded curves at the end) and the run's final metrics. Tracking is no part of a run's configuration: it is not a
:class:`~harness.config.RunConfig` field, so it enters no stage key and no run id, and it changes no number (it
only reads what the training loop computed). Data parallel: every rank holds the tracker, Accelerate lets only the
main process (rank 0) write.

Where it writes: ``RESULTS/tracking/<run_id>/`` (:func:`tracking_dir`), beside the run's folder
``RESULTS/runs/<run_id>/`` and named as it is, not inside it: a run folder appears complete in one rename when the
run ends, while a tracker writes as the run trains. TensorBoard's event files go to ``tracking/<run_id>/harness/``
(Accelerate names the folder after the project); W&B keeps its local files in ``tracking/<run_id>/wandb/`` and
MLflow its artifacts in ``tracking/<run_id>/mlflow/`` (their servers are their own settings: ``WANDB_MODE``,
``MLFLOW_TRACKING_URI``).

Tags: ``<model>/<split>/<name>`` per training step (``teacher/train/loss``, ``predistill/validation/selection``,
``tvd/train/loss/<term>``; a stage's steps count from 1), and ``final/<model>/<metric>`` for the test metrics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .errors import HarnessError

#: The trackers ``--report-to`` takes → the package each needs (Accelerate's tracker of that name imports it).
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
#: The project every tracker files a run under (W&B project, MLflow experiment, TensorBoard's sub-folder).
PROJECT = "harness"
TRACKING = "tracking"


def parse_report_to(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``--report-to`` values (repeatable, each a comma list; ``none`` adds nothing) → the tracker names, in the
    order given, each once. An unknown name raises one :class:`HarnessError` line with the known ones."""
    names: list[str] = []
    for value in values:
        for name in (part.strip().lower() for part in value.split(",")):
            if not name or name == "none":
                continue
            if name not in TRACKERS:
                raise HarnessError(f"--report-to {name}: unknown tracker; known: {', '.join(TRACKERS)} (or none)")
            if name not in names:
                names.append(name)
    return tuple(names)


def check_installed(names: tuple[str, ...]) -> None:
    """One :class:`HarnessError` line, before any work, for the first tracker whose package is not installed."""
    import importlib.util

    # find_spec, not accelerate's is_*_available: importing accelerate imports torch, seconds that a one-line
    # error for a bad name (checked before any work) should not cost.
    modules = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}
    for name in names:
        if not any(importlib.util.find_spec(module) for module in modules[name]):
            raise HarnessError(f"--report-to {name}: the package {TRACKERS[name]} is not installed "
                               f"(pip install {TRACKERS[name]})")


def tracking_dir(results_dir: str | Path, run_id: str) -> Path:
    """The trackers' folder of the run ``run_id``: ``RESULTS/tracking/<run_id>``."""
    return Path(results_dir) / TRACKING / run_id


def hyperparameters(config: dict) -> dict[str, Any]:
    """A resolved config (``dataclasses.asdict`` of a RunConfig) as the flat values trackers take: dotted keys
    (``student.encoder_layers``, ``method.beta``), numbers, booleans and strings; None and sequences as text."""
    from .store.runs import flat_config

    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in flat_config(config).items()}


def curve_values(model: str, rows: list[dict]) -> dict[int, dict[str, float]]:
    """Curve rows ``{step, epoch, split, name, value}`` of the stage that trains ``model`` → step → tag → value."""
    by_step: dict[int, dict[str, float]] = {}
    for row in rows:
        by_step.setdefault(int(row["step"]), {})[f"{model}/{row['split']}/{row['name']}"] = float(row["value"])
    return by_step


class RunTracker:
    """The trackers of one run: an Accelerate ``Accelerator(log_with=…, project_dir=…)`` whose trackers hold the
    run's config, curves and final metrics (:meth:`log_curves`, :meth:`log_metrics`, :meth:`finish`)."""

    def __init__(self, names: tuple[str, ...], results_dir: str | Path, run_id: str, config: dict, device):
        from .train import make_accelerator

        check_installed(names)
        self.folder = tracking_dir(results_dir, run_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.accelerator = make_accelerator(device, "no", log_with=list(names), project_dir=str(self.folder))
        init = {"wandb": {"name": run_id, "dir": str(self.folder)},
                "mlflow": {"run_name": run_id, "logging_dir": str(self.folder / "mlflow")}}
        self.accelerator.init_trackers(PROJECT, config={"run_id": run_id, **hyperparameters(config)},
                                       init_kwargs={n: init[n] for n in names if n in init})

    def log_curves(self, model: str, rows: list[dict]) -> None:
        """Curve rows of the stage that trains ``model`` (the training loop's, one step at a time; or a reused
        stage's recorded ones), each at its step."""
        for step, values in sorted(curve_values(model, rows).items()):
            self.accelerator.log(values, step=step)

    def log_metrics(self, metrics) -> None:
        """The run's final metrics (its ``metrics.parquet`` rows: model, metric, value) as ``final/<model>/<metric>``;
        a metric without a value (NaN) is left out."""
        values = {f"final/{row.model}/{row.metric}": float(row.value) for row in metrics.itertuples()
                  if not math.isnan(float(row.value))}
        self.accelerator.log(values, step=0)

    def finish(self) -> None:
        """Close every tracker (what ``Accelerator.end_training`` does, without the process group it also ends:
        the harness's own, :mod:`harness.distributed`)."""
        for tracker in self.accelerator.trackers:
            tracker.finish()
        self.accelerator.trackers = []
