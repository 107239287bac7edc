"""The `from_pretrained` path, exercised with local `save_pretrained` folders (no hub access)."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.config import ModelConfig, resolve_config
from harness.lm import build_model, train_tokenizer
from harness.pipeline import Pipeline
from harness.errors import HarnessError
from harness_tasks.dart import records, twin


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    """A tiny T5 and its tokenizer saved like a hub checkpoint."""
    folder = tmp_path_factory.mktemp("pretrained")
    examples = records.records_to_examples(twin.generate_split("train", 40, 0), "train", "x")
    tok = train_tokenizer([e.source for e in examples] + [e.target for e in examples], 300)
    model = build_model(ModelConfig(d_model=32, encoder_layers=2, decoder_layers=2, heads=2, ffn_dim=64), tok)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def test_run_with_a_pretrained_teacher_folder(pretrained_dir, tmp_path):
    cfg = resolve_config("dart", "seqkd", "ci", sets=[("results_dir", str(tmp_path)),
                                                      ("teacher.pretrained", str(pretrained_dir)),
                                                      ("teacher_train.epochs", "0")])
    outcome = Pipeline(cfg).run()
    metrics = pd.read_parquet(outcome.path / "metrics.parquet")
    assert {"teacher", "predistill", "seqkd"} <= set(metrics["model"])
    assert outcome.manifest["config"]["teacher"]["pretrained"] == str(pretrained_dir)


def test_missing_pretrained_model_is_one_clear_error(tmp_path):
    cfg = resolve_config("dart", "seqkd", "ci", sets=[("results_dir", str(tmp_path / "r")),
                                                      ("teacher.pretrained", str(tmp_path / "no-such-model"))])
    with pytest.raises(HarnessError, match="save_pretrained"):
        Pipeline(cfg).run()
