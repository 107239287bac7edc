"""The teacher-output store: its stage (written once, atomically, read back per example), the plan that adds
it, and the fast step reading it instead of running the teacher (equal to the live teacher at k = V)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from harness.accounting import ComputeMeter
from harness.config import DecodeConfig, resolve_config
from harness.data import make_batch
from harness.methods.topk import dense_log_probs
from harness.pipeline.graph import plan_for, run_id
from harness.pipeline.stages import (TEACHER_OUTPUTS_FILE, KeyedConfig, StageContext, StageInputs,
                                     build_teacher_outputs, load_teacher_outputs, teacher_rows)
from harness.step import method_loss
from harness.store.cache import StageCache
from harness.testing import fixed_samples, make_method, method_cases, tiny_batch, tiny_models

SAMPLING = DecodeConfig(num_beams=1, do_sample=True, top_k=8, max_new_tokens=7)
STORED_SOURCES = ("ground_truth", "teacher_offline")


@pytest.fixture(scope="module")
def models():
    student, teacher, layer_map, _ = tiny_models()
    split, _ = tiny_batch(teacher.tokenizer)
    return student, teacher, layer_map, split


def vocab_size(teacher) -> int:
    return teacher.model.get_output_embeddings().weight.shape[0]


def stored_split(teacher, split, k: int):
    """``split`` with the store's rows of both fixed sources, as the stage builds and reads them."""
    split = dataclasses.replace(split, stored_teacher={})
    for source in STORED_SOURCES:
        prefixes = split.targets if source == "ground_truth" else split.teacher_outputs
        rows, row_of_example = teacher_rows(teacher, split, prefixes, k, 3, torch.device("cpu"))
        split = split.with_stored_teacher(source, [rows[r] for r in row_of_example])
    return split


def loss_and_grads(method, student, teacher, layer_map, batch, collect):
    student.model.zero_grad(set_to_none=True)
    loss, terms = method_loss(method, student, teacher, batch, SAMPLING, layer_map, collect=collect)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in student.model.named_parameters() if p.grad is not None}


def store_readers():
    cases = {case: make_method(*spec) for case, spec in method_cases().items()}
    cases["gkd-offline"] = make_method("gkd", {"off_policy": "teacher_offline"})
    cases["gkd-supervised-only"] = make_method("gkd", {"lmbda": 0.0})
    return {case: m for case, m in cases.items() if m.stored_teacher_sources}


@pytest.mark.parametrize("case", list(store_readers()))
def test_step_reading_the_store_at_k_equal_v_equals_the_live_teacher(models, case):
    method = store_readers()[case]
    student, teacher, layer_map, split = models
    index = list(range(len(split)))
    live_batch = make_batch(split, index, student.pad_id)
    stored_batch = make_batch(stored_split(teacher, split, vocab_size(teacher)), index, student.pad_id)
    assert set(stored_batch.stored_teacher) == set(STORED_SOURCES)
    collect = fixed_samples(live_batch, student.pad_id)
    live, live_grads = loss_and_grads(method, student, teacher, layer_map, live_batch, collect)
    stored, stored_grads = loss_and_grads(method, student, teacher, layer_map, stored_batch, collect)
    assert live.item() > 1e-4
    assert abs(stored.item() - live.item()) <= 1e-6 * max(1.0, abs(live.item()))
    assert live_grads.keys() == stored_grads.keys()
    for name in live_grads:
        assert torch.allclose(stored_grads[name], live_grads[name], rtol=1e-5, atol=1e-6), name


def test_a_method_served_by_the_store_runs_no_teacher(models, monkeypatch):
    student, teacher, layer_map, split = models
    batch = make_batch(stored_split(teacher, split, vocab_size(teacher)), list(range(len(split))), student.pad_id)
    meter = ComputeMeter()
    meter.track(teacher.model, "teacher")
    meter.track(student.model, "student")

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher ran")

    monkeypatch.setattr(teacher, "encode", refuse)
    monkeypatch.setattr(teacher, "forward", refuse)
    with meter.measure() as compute:
        method_loss(make_method("wordkd"), student, teacher, batch, SAMPLING, layer_map)
    assert compute.teacher_forward_tokens == 0
    assert compute.teacher_tokens_from_store == batch.source_ids.numel() + batch.target.tokens.numel()


def test_a_half_stored_method_scores_only_the_rest_live(models):
    """tvd: the offline half comes from the store, the student samples still go through the teacher."""
    student, teacher, layer_map, split = models
    index = list(range(len(split)))
    live_batch = make_batch(split, index, student.pad_id)
    stored_batch = make_batch(stored_split(teacher, split, vocab_size(teacher)), index, student.pad_id)
    meter = ComputeMeter()
    meter.track(teacher.model, "teacher")
    collect = fixed_samples(live_batch, student.pad_id)
    counts = []
    for batch in (live_batch, stored_batch):
        with meter.measure() as compute:
            method_loss(make_method("tvd"), student, teacher, batch, SAMPLING, layer_map, collect=collect)
        counts.append(compute)
    saved = stored_batch.teacher_output.tokens.numel()
    assert counts[1].teacher_tokens_from_store == saved and counts[0].teacher_tokens_from_store == 0
    assert counts[1].teacher_forward_tokens < counts[0].teacher_forward_tokens


@pytest.mark.parametrize("k", [4, None])
def test_the_stage_writes_and_reads_back_the_rows(models, tmp_path, k):
    student, teacher, _, split = models
    k = k or vocab_size(teacher)
    train = dataclasses.replace(split, teacher_outputs=None)
    inputs = StageInputs(splits={"train": train}, teacher=teacher, pseudo_labels=split.teacher_outputs)
    context = StageContext(torch.device("cpu"), ComputeMeter(), task=None)
    spec = SimpleNamespace(config=KeyedConfig({"source": "teacher_offline", "k": k, "batch_size": 3}))
    info = build_teacher_outputs(spec, inputs, context)(tmp_path)
    assert info["k"] == k and info["positions"] == sum(len(p) for p in split.teacher_outputs)
    got = load_teacher_outputs(spec, inputs, context, tmp_path)
    want = stored_split(teacher, split, k).stored_teacher["teacher_offline"]
    assert len(got) == len(split)
    exact = k == vocab_size(teacher)
    for g, w in zip(got, want):
        assert g.log_probs.dtype == (torch.float32 if exact else torch.float16)
        assert torch.equal(g.indices, w.indices) and torch.equal(g.tail_log_mass, w.tail_log_mass)
        if exact:
            assert torch.equal(g.log_probs, w.log_probs)
        else:   # float16: about 3 decimal digits of each log-probability
            assert torch.allclose(g.log_probs.float(), w.log_probs, rtol=1e-3, atol=1e-3)


def test_float16_rounding_is_smaller_than_the_truncation(models):
    """Below k = V the store keeps float16 log-probabilities: their rounding moves a loss less than the
    truncation itself does (here: word-KD's KL on the ground truth at k = 4)."""
    from harness.methods.topk import top_k

    _, teacher, _, split = models
    student_logits = torch.randn(len(split), max(map(len, split.targets)), vocab_size(teacher),
                                 generator=torch.Generator().manual_seed(0))
    batch = make_batch(split, list(range(len(split))), teacher.pad_id)
    with torch.no_grad():
        logits = teacher.forward(teacher.encode(batch.source_ids, batch.source_mask), batch.target).logits
    method = make_method("wordkd")
    full = method.token_loss(student_logits, logits, batch.target.tokens, "ground_truth")
    dist = top_k(logits, 4)
    truncated = method.token_loss(student_logits, dense_log_probs(dist), batch.target.tokens, "ground_truth")
    halved = dataclasses.replace(dist, log_probs=dist.log_probs.half())
    rounded = method.token_loss(student_logits, dense_log_probs(halved), batch.target.tokens, "ground_truth")
    mask = batch.target.mask.bool()
    assert (rounded - truncated)[mask].abs().max() < (truncated - full)[mask].abs().max()


def test_a_failing_build_leaves_no_entry(tmp_path):
    cache = StageCache(tmp_path, log=lambda m: None)

    def build(out: Path):
        (out / TEACHER_OUTPUTS_FILE).write_bytes(b"half a file")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.get_or_build("teacher_outputs", {"k": 4}, {"teacher": "t"}, build)
    result = cache.probe("teacher_outputs", {"k": 4}, {"teacher": "t"})
    assert not result.reused and not result.path.exists()
    assert not [p for p in (tmp_path / "teacher_outputs").iterdir() if not p.name.startswith(".")]


def plan(method: str, k: int):
    return plan_for(resolve_config("dart", method, "ci", sets=[("teacher_outputs_k", str(k))]))


@pytest.mark.parametrize("method,sources", [("tvd", ["teacher_offline"]), ("js", ["teacher_offline"]),
                                            ("wordkd", ["ground_truth"]), ("akl", ["ground_truth"]),
                                            ("kl", []), ("rkl", []), ("predistill", []), ("mle", []),
                                            ("seqkd", []), ("engine", [])])
def test_the_plan_adds_a_store_per_fixed_teacher_source(method, sources):
    stores = [s for s in plan(method, 8).specs if s.stage == "teacher_outputs"]
    assert [s.config["source"] for s in stores] == sources
    method_spec = plan(method, 8)["method"]
    for store in stores:
        assert method_spec.upstream[store.label] == store.key
    assert not [s for s in plan(method, 0).specs if s.stage == "teacher_outputs"]


def test_the_store_key_is_shared_across_methods_and_seeds_and_follows_k():
    tvd, js = plan("tvd", 8)["teacher_outputs/teacher_offline"], plan("js", 8)["teacher_outputs/teacher_offline"]
    assert tvd.key == js.key
    seeded = plan_for(resolve_config("dart", "tvd", "ci", sets=[("teacher_outputs_k", "8"), ("seed", "7")]))
    assert seeded["teacher_outputs/teacher_offline"].key == tvd.key
    assert plan("tvd", 16)["teacher_outputs/teacher_offline"].key != tvd.key


def test_the_store_off_keeps_run_ids():
    """teacher_outputs_k = 0 is left out of a run's identity, so runs recorded before the setting keep their ids."""
    import hashlib
    from dataclasses import asdict

    from harness.config import canonical_json
    from harness.pipeline.graph import data_identity
    from harness.registry import TASKS
    from harness.store.runs import OPERATIONAL

    cfg = resolve_config("dart", "tvd", "ci")
    identity = asdict(cfg) | {k: None for k in OPERATIONAL} | {"data_identity": data_identity(TASKS.get("dart")(cfg.data))}
    del identity["teacher_outputs_k"], identity["predistill_params"]   # (all added later, all at their default)
    del identity["teacher_mode"], identity["data"]["merge_test_inputs"], identity["processes"], identity["eval_decode_seeds"]
    digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:8]
    assert run_id(cfg) == f"dart-tvd-ci-seed42-{digest}"
    assert run_id(resolve_config("dart", "tvd", "ci", sets=[("teacher_outputs_k", "8")])) != run_id(cfg)
