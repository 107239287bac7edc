"""The teacher-output store in the run folders and the report: each run's manifest carries its store stage's
build info (bytes per stored token), and the report's store table compares runs that differ only in
``teacher_outputs_k`` with their k = 0 run (paired bootstrap over test inputs).

The runs: DART × tvd × seed 42 at k = 0 (no store), k = 8, and k = 100000 (≥ the vocabulary: exact), ci profile.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import resolve_config
from harness.pipeline import Pipeline
from harness.store.read import read_manifest

pytestmark = pytest.mark.slow
EXACT = 100000      # ≥ any ci vocabulary


@pytest.fixture(scope="module")
def ksweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("store-results")
    outcomes = {}
    for k in (0, 8, EXACT):
        sets = [("results_dir", str(root)), ("teacher_outputs_k", str(k))]
        outcomes[k] = Pipeline(resolve_config("dart", "tvd", "ci", seed=42, sets=sets)).run()
    return root, outcomes


def store_stages(manifest: dict) -> dict[str, dict]:
    return {label: entry for label, entry in manifest["stages"].items() if entry["stage"] == "teacher_outputs"}


def test_the_manifest_carries_the_store_info(ksweep):
    root, outcomes = ksweep
    assert not store_stages(outcomes[0].manifest)
    for k in (8, EXACT):
        manifest = json.loads((outcomes[k].path / "manifest.json").read_text())
        (label, entry), = store_stages(manifest).items()
        assert label == "teacher_outputs/teacher_offline"
        info = entry["info"]
        record = json.loads((root / "cache" / "teacher_outputs" / entry["key"] / "stage.json").read_text())
        assert info == record["info"]
        assert info["k"] == min(k, info["vocab_size"]) and info["positions"] > 0
        assert info["bytes_per_token"] == pytest.approx(info["bytes"] / info["positions"]) and info["bytes"] > 0
    # every other stage says what its build recorded too (a training stage its steps)
    assert outcomes[8].manifest["stages"]["method"]["info"]["steps"] > 0


def test_a_manifest_written_before_stages_carried_their_info_reads_as_empty_info(ksweep, tmp_path):
    _, outcomes = ksweep
    manifest = json.loads((outcomes[8].path / "manifest.json").read_text())
    for entry in manifest["stages"].values():
        del entry["info"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    read = read_manifest(tmp_path)
    assert read["stages"].keys() == manifest["stages"].keys()
    assert all(entry["info"] == {} for entry in read["stages"].values())
    assert read_manifest(outcomes[8].path)["stages"]["teacher_outputs/teacher_offline"]["info"]["bytes"] > 0
