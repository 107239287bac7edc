"""Code identity follows the code: an edit on a stage's import path re-keys that stage (and what is built
from it), an edit anywhere else re-keys nothing.

The edits are made to a copy of the harness (and of the task plugins) that a subprocess imports, so the
repository is never touched; one subprocess plans one cell before and after each edit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import harness
import harness_tasks

pytestmark = pytest.mark.xdist_group("identity_closure")   # its fixtures built once, on one worker

PLUGIN = '''
from harness import register_method
from harness.methods import Method
from harness.methods import divergences as div
from probe_plugin_helper import weight


@register_method("probe_kd")
class ProbeKD(Method):
    """A --plugins method whose loss reads a helper module that lives next to it."""

    prefixes = {"teacher_offline": 1.0}

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return weight() * div.forward_kl(student_logits, teacher_logits)
'''

# Plans the probe cell under each scenario's edits (undone after it) and prints every stage key and code.
PROBE = '''
import json, sys
from pathlib import Path

import harness
from harness import identity
from harness.config import resolve_config
from harness.pipeline.graph import plan_for
from harness.registry import load_plugin_file

root = Path(sys.argv[1])
assert Path(harness.__file__).resolve().is_relative_to(root.resolve()), harness.__file__
load_plugin_file(root / "plugins" / "probe_plugin.py")
out = {}
for name, edits in json.loads(sys.argv[2]).items():
    before = {path: (root / path).read_text() for path in edits}
    for path, (old, new) in edits.items():
        assert old in before[path], (name, path, old)
        (root / path).write_text(before[path].replace(old, new))
    getattr(identity, "forget", lambda: None)()   # read the files again
    plan = plan_for(resolve_config("dart", "probe_kd", "ci", 42))
    out[name] = {"keys": {**plan.keys(), **{f"data/{split}": key for split, key in plan.data_keys.items()}},
                 "code": {spec.label: sorted(spec.code) for spec in plan.specs}}
    for path, text in before.items():
        (root / path).write_text(text)
print(json.dumps(out))
'''

STEP_HELPER = "harness/step/probe_helper.py"
PLUGIN_HELPER = "plugins/probe_plugin_helper.py"


def loading_module(root: Path) -> str:
    """The pipeline module that draws the splits (the data's loading code, wherever it lives)."""
    found = [p for p in (root / "harness" / "pipeline").glob("*.py") if "draw_examples(" in p.read_text()]
    assert len(found) == 1, found
    return found[0].relative_to(root).as_posix()


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    root = tmp_path_factory.mktemp("code")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(Path(harness.__file__).resolve().parent, root / "harness", ignore=ignore)
    shutil.copytree(Path(harness_tasks.__file__).resolve().parent, root / "harness_tasks", ignore=ignore)
    # On the step's import path: a helper module the loss module imports inside a function.
    (root / STEP_HELPER).write_text("def factor():\n    return 1.0\n")
    with open(root / "harness/step/loss.py", "a") as f:
        f.write("\n\ndef probe_factor():\n    from .probe_helper import factor\n\n    return factor()\n")
    # The data's loading code draws through a function of its own module.
    loading = loading_module(root)
    text = (root / loading).read_text().replace("draw_examples(", "probe_draw(")
    (root / loading).write_text(text + "\n\ndef probe_draw(*args, **kwargs):\n"
                                       "    return draw_examples(*args, **kwargs)\n")
    (root / "plugins").mkdir()
    (root / "plugins/probe_plugin.py").write_text(PLUGIN)
    (root / PLUGIN_HELPER).write_text("def weight():\n    return 1.0\n")

    appended = "\n\ndef probe_unused():\n    return 1\n"
    scenarios = {
        "baseline": {},
        "step_helper": {STEP_HELPER: ("return 1.0", "return 2.0")},
        "step_helper_comment": {STEP_HELPER: ("return 1.0", '"""Why one."""\n    return 1.0  # one')},
        "data_loading": {loading: ("return draw_examples(*args, **kwargs)",
                                   "return draw_examples(*args, **kwargs)[::2]  # every second example")},
        "plugin_helper": {PLUGIN_HELPER: ("return 1.0", "return 0.5")},
        "evaluation_builder": {"harness/pipeline/stages.py": ("decode_seconds = time.time() - start",
                                                              "decode_seconds = (time.time() - start) * 1.0")},
        "outside": {path: ("from __future__ import annotations", "from __future__ import annotations" + appended)
                    for path in ("harness/cli.py", "harness/grid/spec.py", "harness/reporting/tables.py",
                                 "harness/reporting/render.py", "harness/store/runs.py", "harness/pipeline/stages.py",
                                 "harness/pipeline/graph.py")},
    }
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(root / "plugins")]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE), str(root), json.dumps(scenarios)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def changed(planned, scenario: str) -> set[str]:
    before, after = planned["baseline"]["keys"], planned[scenario]["keys"]
    return {label for label in before if before[label] != after[label]}


def test_a_helper_module_on_the_steps_import_path_rekeys_the_students_and_not_the_tokenizer(planned):
    assert "harness.step.probe_helper" in planned["baseline"]["code"]["method"]
    assert "harness.step.probe_helper" not in planned["baseline"]["code"]["tokenizer"]
    stale = changed(planned, "step_helper")
    assert {"method", "predistill", "evaluation/probe_kd"} <= stale
    assert not stale & {"tokenizer", "data/train", "data/validation", "data/test"}
    assert changed(planned, "step_helper_comment") == set(), "a comment or a docstring runs nothing"


def test_editing_the_data_loading_code_rekeys_the_data_and_every_stage(planned):
    assert changed(planned, "data_loading") == set(planned["baseline"]["keys"])


def test_editing_a_helper_of_a_plugins_file_rekeys_that_method_only(planned):
    assert "probe_plugin_helper" in planned["baseline"]["code"]["method"]
    assert changed(planned, "plugin_helper") == {"method", "evaluation/probe_kd"}


def test_editing_one_stage_builder_rekeys_that_stage_only(planned):
    assert changed(planned, "evaluation_builder") == {"evaluation/teacher", "evaluation/predistill",
                                                       "evaluation/probe_kd"}


def test_an_edit_outside_every_stages_path_rekeys_nothing(planned):
    """The CLI, the grid, the report, the run store, the plan, and code of the builders' module no stage runs."""
    assert changed(planned, "outside") == set()
