"""A number in the store was made by the code and data it claims: runs and stages follow both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from conftest import CI_GRID_SET_ARGS, write_dart_release
from harness.store.runs import verify_run

pytestmark = pytest.mark.slow

PLUGIN = '''
from harness import register_method
from harness.methods import Method
from harness.methods import divergences as div


@register_method("my_kd")
class MyKD(Method):
    """A plugin method whose loss the test edits between two runs."""

    prefixes = {{"teacher_offline": 1.0}}

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return {loss}
'''


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_editing_a_plugin_loss_rebuilds_its_stage_and_evaluation_and_nothing_upstream(tmp_path):
    plugin = tmp_path / "my_plugin.py"
    run = ["run", "--plugins", str(plugin), "--task", "dart", "--method", "my_kd", "--profile", "ci", *CI_GRID_SET_ARGS,
           "--results-dir", str(tmp_path / "results")]
    plugin.write_text(PLUGIN.format(loss="div.forward_kl(student_logits, teacher_logits)"))
    first = harness(*run, cwd=tmp_path)
    # a docstring and a comment change nothing that runs: everything is reused
    plugin.write_text(PLUGIN.format(loss="div.forward_kl(student_logits, teacher_logits)  # KL(p||q)")
                      .replace("whose loss the test edits", "(its docstring edited)"))
    same = harness(*run, cwd=tmp_path)
    assert "building" not in same.stderr, same.stderr
    plugin.write_text(PLUGIN.format(loss="div.total_variation(student_logits, teacher_logits)"))
    second = harness(*run, cwd=tmp_path)

    built = {line.split("]")[0][1:] for line in second.stderr.splitlines()
             if line.startswith("[") and "] building " in line}
    assert built == {"method", "evaluation/my_kd"}, second.stderr
    assert "its code changed since the last build: my_plugin.py:MyKD" in second.stderr
    for upstream in ("tokenizer", "teacher", "pseudo_labels", "predistill", "evaluation/teacher"):
        assert f"[{upstream}] reusing cached" in second.stderr, upstream

    runs = sorted((tmp_path / "results" / "runs").iterdir())
    assert len(runs) == 1, "same config and data: the run folder is made again, by the new code"
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["stages"]["method"]["code"]["my_plugin.py:MyKD"]
    first_tvd = [line for line in first.stdout.splitlines() if line.startswith("my_kd")]
    second_tvd = [line for line in second.stdout.splitlines() if line.startswith("my_kd")]
    assert first_tvd != second_tvd, "the new loss gives new numbers"


def test_other_data_never_replaces_a_run(tmp_path, harness_cli):
    """In one process too: a data file edited between two runs of a long-lived process is read again."""
    data = write_dart_release(tmp_path / "dart")
    run = ["run", "--task", "dart", "--method", "mle", "--profile", "ci", "--data-dir", str(data),
           "--results-dir", str(tmp_path / "results")]
    assert harness_cli(*run).code == 0
    test_file = data / "dart-v1.1.1-full-test.json"
    records = json.loads(test_file.read_text())
    records[0]["annotations"][0]["text"] = "A different reference sentence."
    test_file.write_text(json.dumps(records))
    assert harness_cli(*run).code == 0
    runs = sorted((tmp_path / "results" / "runs").iterdir())
    assert len(runs) == 2 and all(verify_run(r) is None for r in runs)
    identities = {json.loads((r / "manifest.json").read_text())["data"]["identity"] for r in runs}
    assert len(identities) == 2
    references = [pd.read_parquet(r / "examples.parquet")["references"].map(list).tolist() for r in runs]
    assert references[0] != references[1]
