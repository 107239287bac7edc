"""``--report-to``: a run's config, training curves and final metrics through Accelerate's trackers (TensorBoard,
offline), with no effect on a run id, a stage key or a number; bad names and missing packages are one line."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest

from conftest import ci_grid_config, cli_main
from harness.config import TrainConfig, resolve_config
from harness.errors import HarnessError
from harness.tracking import check_installed, parse_report_to, tracking_dir

# --------------------------------------------------------------------------- names and packages


def test_report_to_takes_repeats_and_comma_lists_each_name_once():
    assert parse_report_to(()) == ()
    assert parse_report_to(("none",)) == ()
    assert parse_report_to(("tensorboard,wandb", "TensorBoard", " mlflow ")) == ("tensorboard", "wandb", "mlflow")


def test_an_unknown_tracker_names_the_known_ones():
    with pytest.raises(HarnessError, match=r"--report-to tensorbord: unknown tracker; known: tensorboard, wandb, "
                                           r"mlflow"):
        parse_report_to(("tensorbord",))


def test_a_tracker_without_its_package_says_what_to_install(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else find_spec(name, *a))
    check_installed(("tensorboard",))
    with pytest.raises(HarnessError, match=r"--report-to wandb: the package wandb is not installed \(pip install "
                                           r"wandb\)"):
        check_installed(("tensorboard", "wandb"))


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """``harness ARGS`` in this process (its ``main``: one error line, the exit code) → (code, stderr)."""
    result = cli_main(monkeypatch, capsys, args)
    return result.code, result.err


@pytest.mark.parametrize("command", ["run", "grid"])
def test_bad_trackers_stop_run_and_grid_before_any_work(command, monkeypatch, capsys, tmp_path):
    import accelerate.utils

    monkeypatch.setattr(accelerate.utils, "is_mlflow_available", lambda: False)
    results = tmp_path / "results"
    code, err = _cli(monkeypatch, capsys, command, "--profile", "ci", "--results-dir", str(results),
                     "--report-to", "tensorboard,comet")
    assert code == 2 and err.strip().splitlines() == [
        "harness: error: --report-to comet: unknown tracker; known: tensorboard, wandb, mlflow (or none)"]
    code, err = _cli(monkeypatch, capsys, command, "--profile", "ci", "--results-dir", str(results),
                     "--report-to", "mlflow")
    assert code == 2 and err.strip().splitlines() == [
        "harness: error: --report-to mlflow: the package mlflow is not installed (pip install mlflow)"]
    assert not results.exists()


def test_a_grid_cell_hands_its_trackers_to_its_pipeline(monkeypatch, tmp_path):
    """``harness grid --report-to`` sets the cells' trackers; the process that runs a cell (a worker, a Ray task)
    gives them to the cell's pipeline, and the cell's run id is the one it has without them."""
    import dataclasses

    import harness.pipeline
    from harness.grid import cells
    from harness.grid.spec import Cell
    from harness.pipeline.graph import run_id

    cfg = resolve_config("dart", "tvd", "ci", sets=[("results_dir", str(tmp_path))])
    cell = Cell(run_id(cfg), "dart", "tvd", 42, "ci", (), (), (), str(tmp_path))
    seen = []

    class Recording:
        def __init__(self, config, report_to=()):
            seen.append(report_to)
            raise RuntimeError("recorded")

    monkeypatch.setattr(harness.pipeline, "Pipeline", Recording)
    tracked = dataclasses.replace(cell, report_to=("tensorboard",))
    assert tracked.config() == cell.config() and run_id(tracked.config()) == cell.run_id
    assert cells._run(tracked).status == "failed" and seen == [("tensorboard",)]


# --------------------------------------------------------------------------- the training loop


def test_reporting_changes_no_number_of_training():
    """The training loop hands each step's curve rows to ``report`` and computes what it computes without it."""
    import torch

    from harness.methods.baselines import MLE
    from harness.testing import tiny_batch, tiny_models
    from harness.train import train

    schedule = TrainConfig(epochs=2, batch_size=2, evals_per_epoch=0, select_best=False)
    runs = []
    for report in (None, []):
        student, *_ = tiny_models(seed=0)
        split, _ = tiny_batch(student.tokenizer)
        result = train(student, MLE(), split, schedule, seed=3, report=None if report is None else report.extend)
        runs.append((result, {k: v.clone() for k, v in student.model.state_dict().items()}, report))
    (plain, plain_weights, _), (reported, reported_weights, rows) = runs
    assert plain.curves == reported.curves and rows == reported.curves and len(rows) >= 2 * plain.steps
    assert all(torch.equal(plain_weights[k], reported_weights[k]) for k in plain_weights)


# --------------------------------------------------------------------------- TensorBoard, end to end


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the TensorBoard runs under ``folder`` → its (step, value) points, read back with
    TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    events = EventMultiplexer().AddRunsFromDirectory(str(folder))
    events.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for run, tags in events.Runs().items():
        for tag in tags.get("scalars", []):
            out.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(run, tag))
    return out


@pytest.fixture(scope="module")
def tracked(ci_grid, tmp_path_factory):
    """dart · tvd on the ci profile with ``--report-to tensorboard``, its method stage trained anew (2 steps) on
    the ci grid's teacher and pre-distilled student, which a copy of their cache folders lends it."""
    pytest.importorskip("tensorboard")
    from harness.pipeline import Pipeline
    from harness.pipeline.graph import run_id

    root, proc = ci_grid
    assert proc.returncode == 0, proc.stderr[-2000:]
    grid_run = root / "runs" / run_id(ci_grid_config("dart", "tvd"))
    stages = json.loads((grid_run / "manifest.json").read_text())["stages"]
    results = tmp_path_factory.mktemp("tracked")
    for label, entry in stages.items():
        if label not in ("method", "evaluation/tvd"):
            shutil.copytree(entry["path"], results / "cache" / entry["stage"] / entry["key"])
    cfg = ci_grid_config("dart", "tvd", sets=[("results_dir", str(results)), ("kd_train.max_steps", "2")])
    return cfg, stages, Pipeline(cfg, ("tensorboard",)).run()


def test_tracking_keys_nothing(tracked):
    """The run with a tracker has the run id and stage keys of the same cell without one: it reused the grid's
    untracked stages, and its own keys are the ones planned without a tracker."""
    from harness.pipeline.graph import plan_for, run_id

    cfg, grid_stages, outcome = tracked
    keys = {label: entry["key"] for label, entry in outcome.manifest["stages"].items()}
    assert outcome.run_id == run_id(cfg) and keys == plan_for(cfg).keys()
    assert all(outcome.manifest["stages"][label]["reused"] and keys[label] == grid_stages[label]["key"]
               for label in ("teacher", "predistill", "evaluation/teacher"))
    assert not outcome.manifest["stages"]["method"]["reused"]
    assert "report_to" not in json.dumps(outcome.manifest)


def test_tensorboard_holds_the_curves_config_and_final_metrics(tracked):
    import yaml

    cfg, _, outcome = tracked
    folder = tracking_dir(cfg.results_dir, outcome.run_id)
    assert folder.parent.parent == outcome.path.parent.parent   # RESULTS/tracking/<run_id> beside RESULTS/runs/<run_id>
    scalars = _scalars(folder)
    curves = pd.read_parquet(outcome.path / "curves.parquet")
    for stage in ("teacher", "predistill", "tvd"):   # the first two reused (from their records), tvd trained now
        for (split, name), rows in curves[curves["stage"] == stage].groupby(["split", "name"]):
            points = scalars[f"{stage}/{split}/{name}"]
            assert [step for step, _ in points] == list(rows["step"])
            assert [value for _, value in points] == pytest.approx(list(rows["value"]))   # (float32 in the events)
    assert [step for step, _ in scalars["tvd/train/loss"]] == [1, 2] and "tvd/validation/selection" in scalars
    for row in outcome.metrics.itertuples():
        tag = f"final/{row.model}/{row.metric}"
        if math.isnan(row.value):
            assert tag not in scalars
        else:
            assert [step for step, _ in scalars[tag]] == [0] and scalars[tag][0][1] == pytest.approx(row.value), tag
    hparams = [yaml.safe_load(p.read_text()) for p in folder.rglob("hparams.yml")]
    assert len(hparams) == 1
    assert hparams[0]["run_id"] == outcome.run_id and hparams[0]["kd_train.max_steps"] == 2
    assert hparams[0]["method"] == "tvd" and hparams[0]["student.encoder_layers"] == cfg.student.encoder_layers
