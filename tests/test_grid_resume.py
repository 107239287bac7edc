"""Training checkpoints and Accelerate inside ``train()``: a resumed run equals an uninterrupted one,
and the Accelerate-based step is the plain float32 step on CPU."""

from __future__ import annotations

import math

import pytest
import torch

import harness.train as engine
from harness.store.checkpoints import TrainingCheckpoints, read_progress
from harness.store.io import sha256_file
from harness.config import DecodeConfig, TrainConfig, resolve_config
from harness.data import batches, num_batches
from harness.methods.baselines import MLE
from harness.methods.fdistill import TVD
from harness.lm import build_model, language_model, make_student
from harness.pipeline import Pipeline
from harness.step import collect_prefix

SMALL = [("data.train_size", "16"), ("data.validation_size", "4"), ("data.test_size", "4")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Tokenised ci data and a randomly initialised teacher (training it is not the point here)."""
    root = tmp_path_factory.mktemp("resume")
    cfg = resolve_config("dart", "tvd", "ci", sets=[("results_dir", str(root)), *SMALL])
    pipe = Pipeline(cfg)
    pipe.load_data()
    pipe.build("tokenizer")
    tokenizer = pipe.outputs["tokenizer"].tokenizer
    torch.manual_seed(0)
    teacher = language_model(build_model(cfg.teacher, tokenizer), tokenizer)
    teacher.model.eval()
    split = pipe.outputs["tokenizer"].splits["train"]
    split = split.with_teacher_outputs([list(t) for t in split.targets])   # stand-in offline teacher outputs
    return cfg, pipe, teacher, split


def student(setup):
    cfg, pipe, teacher, _ = setup
    model, layer_map = make_student(teacher.model, 1, 1)
    return language_model(model, pipe.outputs["tokenizer"].tokenizer), layer_map


def score(lm) -> float:
    """A cheap deterministic 'validation score' that depends on the weights (exercises best-state keeping)."""
    return -float(sum((p.detach().double() ** 2).sum() for p in lm.model.parameters()))


def run_tvd(setup, schedule, checkpoints=None, collect=collect_prefix):
    cfg, _, teacher, split = setup
    lm, layer_map = student(setup)
    result = engine.train(lm, TVD(), split, schedule, teacher=teacher, sampling=cfg.online_sampling,
                          layer_map=layer_map, validate=score, seed=7, desc="method", checkpoints=checkpoints,
                          collect=collect)
    return lm, result


def test_a_resumed_training_run_equals_an_uninterrupted_one(setup, tmp_path):
    _, _, _, split = setup
    per_epoch = num_batches(len(split), 8)
    total = per_epoch + 2                                # crosses an epoch boundary
    crash_at = per_epoch + 1                             # dies in the step after the second epoch's first
    schedule = TrainConfig(epochs=2, batch_size=8, lr=1e-3, evals_per_epoch=2, max_steps=total)

    reference_lm, reference = run_tvd(setup, schedule)

    steps = {"n": 0}

    def dying(source, *args, **kwargs):
        """The step's sampler, killed while sampling in step crash_at + 1 (TVD samples the student once a step)."""
        if source == "student_sample":
            steps["n"] += 1
            if steps["n"] == crash_at + 1:
                raise KeyboardInterrupt("killed")
        return collect_prefix(source, *args, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        run_tvd(setup, schedule, TrainingCheckpoints(tmp_path, every=1), collect=dying)
    progress = read_progress(tmp_path)
    assert progress == {"name": "method", "step": crash_at, "total": total,
                        "sha256": sha256_file(tmp_path / "train_state.pt")}

    checkpoints = TrainingCheckpoints(tmp_path, every=1)
    resumed_lm, resumed = run_tvd(setup, schedule, checkpoints)
    assert resumed.resumed_from == crash_at == checkpoints.resumed_from
    assert resumed.steps == reference.steps == total
    assert resumed.best_step == reference.best_step and resumed.best_score == reference.best_score
    assert resumed.curves == reference.curves
    for (name, a), (_, b) in zip(reference_lm.model.state_dict().items(), resumed_lm.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_checkpoint_of_another_training_run_is_not_used(setup, tmp_path):
    schedule = TrainConfig(epochs=1, batch_size=8, lr=1e-3, evals_per_epoch=0, max_steps=2)
    run_tvd(setup, schedule, TrainingCheckpoints(tmp_path, every=1))          # leaves a state at step 1
    other = TrainConfig(epochs=1, batch_size=4, lr=1e-3, evals_per_epoch=0, max_steps=2)
    checkpoints = TrainingCheckpoints(tmp_path, every=1)
    _, result = run_tvd(setup, other, checkpoints)
    assert checkpoints.resumed_from is None and result.resumed_from is None


def test_the_accelerate_step_is_the_plain_float32_step(setup):
    """precision="no" on CPU: AdamW, linear warm-up, clipping, in the order the loop always had."""
    from transformers import get_linear_schedule_with_warmup

    _, _, _, split = setup
    schedule = TrainConfig(epochs=1, batch_size=8, lr=1e-3, warmup_ratio=0.5, grad_clip=0.5, evals_per_epoch=0,
                           max_steps=3)
    lm, _ = student(setup)
    engine.train(lm, MLE(), split, schedule, seed=3)

    plain, _ = student(setup)
    plain.model.train()
    torch.manual_seed(3)
    optimizer = torch.optim.AdamW(plain.model.parameters(), lr=1e-3, eps=1e-8, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.5 * 3), 3)
    for step, batch in enumerate(batches(split, 8, plain.pad_id, shuffle=True, seed=3000)):
        if step == 3:
            break
        loss, _ = engine.method_loss(MLE(), plain, None, batch, DecodeConfig())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.model.parameters(), 0.5)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    for (name, a), (_, b) in zip(lm.model.state_dict().items(), plain.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_bf16_mixed_precision_goes_through_accelerate(setup):
    _, _, _, split = setup
    results = {}
    for precision in ("no", "bf16"):
        lm, _ = student(setup)
        schedule = TrainConfig(epochs=1, batch_size=8, lr=1e-3, evals_per_epoch=0, max_steps=2, precision=precision)
        result = engine.train(lm, MLE(), split, schedule, seed=3)
        assert all(math.isfinite(c["value"]) for c in result.curves)
        results[precision] = [c["value"] for c in result.curves if c["name"] == "loss"]
    assert results["no"] != results["bf16"]           # autocast really ran in bfloat16
    with pytest.raises(ValueError, match="unknown precision"):
        lm, _ = student(setup)
        engine.train(lm, MLE(), split, TrainConfig(max_steps=1, precision="fp8"), seed=3)
