"""Grid specs: shipped grids, axes, command-line overrides, errors, and the dry-run plan (nothing trains here)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from click.testing import CliRunner

from harness.config import resolve_config
from harness.grid import expand, format_plan, load_spec, plan_grid, with_overrides
from harness.grid.spec import parse_spec
from harness.errors import HarnessError
from harness.registry import METHODS, TASKS
from conftest import patch_everywhere


def cells_of(spec, tmp_path, profile="ci", sets=()):
    return expand(spec.for_profile(profile), str(tmp_path), list(sets))


def test_table2_is_every_registered_task_and_method_with_two_seeds_on_ci_three_on_cpu(tmp_path):
    cells = cells_of(load_spec("table2"), tmp_path)
    assert {(c.task, c.method) for c in cells} == {(t, m) for t in TASKS.names() for m in METHODS.names()}
    assert sorted({c.seed for c in cells}) == [42, 43]
    assert len(cells) == len(TASKS.names()) * len(METHODS.names()) * 2
    assert len({c.run_id for c in cells}) == len(cells)
    assert cells[0].method == "mle" and cells[0].task == "dart"           # the paper's order
    assert {c.seed for c in cells_of(load_spec("table2"), tmp_path, "paper")} == {42}
    assert {c.seed for c in cells_of(load_spec("table2"), tmp_path, "cpu")} == {42, 43, 44}


def test_figure2_sweeps_the_student_encoder_depth(tmp_path):
    spec = load_spec("figure2")
    for profile, depths, seeds in (("ci", [1, 2], [42]), ("cpu", [1, 2, 3], [42, 43, 44]), ("paper", [1, 2, 3], [42])):
        cells = cells_of(spec, tmp_path, profile)
        assert len(cells) == 5 * len(depths) * len(seeds) and sorted({c.seed for c in cells}) == seeds
        configs = [c.config() for c in cells]
        assert sorted({cfg.student.encoder_layers for cfg in configs}) == depths
        assert {cfg.student.decoder_layers for cfg in configs} == {1}
        assert all(dict(c.axes) == {"student.encoder_layers": cfg.student.encoder_layers}
                   for c, cfg in zip(cells, configs))


def test_table4_pairs_offline_and_online_teacher_prefixes(tmp_path):
    cells = cells_of(load_spec("table4"), tmp_path, "cpu")
    assert {c.seed for c in cells} == {42, 43, 44} and len(cells) == 12
    weights = {c.method: METHODS.get(c.method)(c.config().method_params).prefix_weights() for c in cells}
    assert sorted(weights) == ["js", "js_online", "tvd", "tvd_online"] and {c.task for c in cells} == {"dart"}
    for offline in ("js", "tvd"):
        assert "teacher_offline" in weights[offline] and "teacher_sample" not in weights[offline]
        assert "teacher_sample" in weights[f"{offline}_online"] and "teacher_offline" not in weights[f"{offline}_online"]


def test_store_ksweep_sweeps_k_over_every_method_that_reads_the_store(tmp_path):
    spec = load_spec("store_ksweep")
    assert spec.profile == "cpu"
    cells = cells_of(spec, tmp_path, "cpu")
    configs = [c.config() for c in cells]
    assert {c.task for c in cells} == {"dart"} and {c.seed for c in cells} == {42}
    readers = {m for m in METHODS.names() if METHODS.get(m)(resolve_config("dart", m, "cpu").method_params)
               .stored_teacher_sources}
    assert {"js", "tvd"} <= {c.method for c in cells} <= readers
    vocab = resolve_config("dart", "tvd", "cpu").tokenizer.vocab_size
    ks = sorted({cfg.teacher_outputs_k for cfg in configs})
    assert ks[0] == 0 and {8, 32, 128} <= set(ks) and ks[-1] >= vocab
    assert len(cells) == len({c.method for c in cells}) * len(ks) == len({c.run_id for c in cells})
    # k = 0 (the live teacher) is the same run as the method's table4 cell
    table4 = {c.method: c.run_id for c in cells_of(load_spec("table4"), tmp_path, "cpu") if c.seed == 42}
    for cell, cfg in zip(cells, configs):
        if cfg.teacher_outputs_k == 0 and cell.method in table4:
            assert cell.run_id == table4[cell.method]


def test_a_method_axis_applies_to_the_methods_that_have_the_parameter(tmp_path):
    spec = parse_spec('name = "b"\ntasks = ["dart"]\nmethods = ["js", "tvd"]\n[axes]\n"method.beta" = [0.5, 0.85]\n',
                      ".toml", "b.toml")
    cells = cells_of(spec, tmp_path)
    assert sorted(c.method for c in cells) == ["js", "js", "tvd"]
    assert sorted(c.config().method_params["beta"] for c in cells if c.method == "js") == [0.5, 0.85]
    bad = parse_spec('name = "b"\ntasks = ["dart"]\nmethods = ["tvd"]\n[axes]\n"method.beta" = [0.5]\n', ".toml", "b")
    with pytest.raises(HarnessError, match="no method of this grid has the parameter 'beta'"):
        cells_of(bad, tmp_path)


def test_command_line_overrides(tmp_path):
    spec = with_overrides(load_spec("table2"), tasks="dart", methods="js,tvd", seeds="1,2,3",
                          axes=["student.encoder_layers=1"])
    cells = cells_of(spec, tmp_path, sets=[("method.beta", "0.3"), ("kd_train.epochs", "2")])
    assert len(cells) == 6 and {c.seed for c in cells} == {1, 2, 3}
    for cell in cells:
        cfg = cell.config()
        assert cfg.kd_train.epochs == 2.0 and cfg.student.encoder_layers == 1
        assert cfg.method_params.get("beta") == (0.3 if cell.method == "js" else None)
    # a value from a spec file (TOML int) and the same value typed on the command line give one run id
    from_spec = parse_spec('name = "x"\ntasks = ["dart"]\nmethods = ["mle"]\n[set]\n"student.encoder_layers" = 1\n',
                           ".toml", "x")
    assert cells_of(from_spec, tmp_path)[0].run_id == cells_of(
        with_overrides(from_spec, axes=[]), tmp_path)[0].run_id == cells_of(
        parse_spec('name = "y"\ntasks = ["dart"]\nmethods = ["mle"]\n', ".toml", "y"), tmp_path,
        sets=[("student.encoder_layers", "1")])[0].run_id


def test_yaml_specs_read_like_toml(tmp_path):
    toml = parse_spec('name = "g"\ntasks = ["dart"]\nmethods = ["mle", "kl"]\nseeds = [1]\n'
                      '[axes]\n"kd_train.lr" = [0.001, 0.0001]\n', ".toml", "g.toml")
    yaml = parse_spec("name: g\ntasks: [dart]\nmethods: [mle, kl]\nseeds: [1]\naxes:\n  kd_train.lr: [0.001, 0.0001]\n",
                      ".yaml", "g.yaml")
    assert [c.run_id for c in cells_of(toml, tmp_path)] == [c.run_id for c in cells_of(yaml, tmp_path)]


@pytest.mark.parametrize("text, message", [
    ('name = "e"\ncolour = 1\n', "unknown key"),
    ('name = "e"\n[axes]\n"task" = ["dart"]\n', "use tasks"),
    ('name = "e"\nseeds = ["a"]\n', "seeds must be"),
    ('name = "e"\n[axes]\n"kd_train.lr" = []\n', "non-empty list"),
    ('name = "e"\n[profiles.ci]\nname = "x"\n', "unknown key"),
    ('name = "e"\ntasks = [\n', "grid spec"),
    ('name = "e"\n[set]\nprocesses = 2\n', "harness grid --processes N"),   # a command-line option, not the spec's
])
def test_bad_specs_say_what_is_wrong(text, message):
    with pytest.raises(HarnessError, match=message):
        parse_spec(text, ".toml", "e.toml")


def test_bad_names_and_keys_fail_before_anything_runs(tmp_path):
    with pytest.raises(HarnessError, match="unknown method 'tvdd'"):
        cells_of(with_overrides(load_spec("table2"), methods="tvdd"), tmp_path)
    with pytest.raises(HarnessError, match="unknown config key 'student.encoder_layer'"):
        cells_of(with_overrides(load_spec("table2"), tasks="dart", methods="mle"), tmp_path,
                 sets=[("student.encoder_layer", "1")])
    with pytest.raises(HarnessError, match="not a shipped grid"):
        load_spec("table9")
    with pytest.raises(HarnessError, match="'processes' cannot be set or swept here"):
        cells_of(with_overrides(load_spec("table2"), tasks="dart", methods="mle"), tmp_path,
                 sets=[("processes", "2")])


def test_the_command_line_wins_over_a_profile_section(tmp_path):
    """figure2's ci section sets one seed and depths 1 and 2: --seeds and --axis on the command line are kept."""
    spec = with_overrides(load_spec("figure2"), seeds="42,43", axes=["student.encoder_layers=1"])
    cells = cells_of(spec, tmp_path, "ci")
    assert {c.seed for c in cells} == {42, 43}
    assert {int(dict(c.axes)["student.encoder_layers"]) for c in cells} == {1}
    plain = cells_of(load_spec("figure2"), tmp_path, "ci")            # the section applies where nothing is given
    assert {c.seed for c in plain} == {42} and {dict(c.axes)["student.encoder_layers"] for c in plain} == {1, 2}


def test_dry_run_plan_shares_stages_and_knows_what_is_done(tmp_path):
    spec = with_overrides(load_spec("table2"), tasks="dart", methods="mle,kl,tvd", seeds="42")
    cells = cells_of(spec, tmp_path)
    plans = plan_grid(cells)
    first, kl, tvd = plans
    assert {s.label: s.state for s in first.stages} == {"tokenizer": "build", "teacher": "build", "mle": "build",
                                                        "evaluation/teacher": "build", "evaluation/mle": "build"}
    assert {s.label: (s.state, s.cell) for s in kl.stages if s.state == "shared"} == {
        "tokenizer": ("shared", 1), "teacher": ("shared", 1), "evaluation/teacher": ("shared", 1)}
    assert {s.label: (s.state, s.cell) for s in tvd.stages}["predistill"] == ("shared", 2)
    assert {s.label for s in tvd.stages if s.state == "build"} == {"pseudo_labels", "tvd", "evaluation/tvd"}

    # a finished run, a recorded failure, a training checkpoint: the plan says so
    # (the manifest of a finished run records the keys of the stages that made it: the plan's keys now)
    from harness.pipeline.graph import plan_for

    made = {label: {"key": key} for label, key in plan_for(cells[0].config()).keys().items()}
    (tmp_path / "runs" / cells[0].run_id).mkdir(parents=True)
    (tmp_path / "runs" / cells[0].run_id / "manifest.json").write_text(json.dumps({"stages": made}))
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed" / f"{cells[1].run_id}.json").write_text(json.dumps({"error_type": "NonFiniteLoss",
                                                                             "error": "non-finite loss at step 3"}))
    teacher = next(s for s in first.stages if s.label == "teacher")
    partial = tmp_path / "cache" / "teacher" / f"{teacher.key}.partial"
    partial.mkdir(parents=True)
    (partial / "progress.json").write_text(json.dumps({"name": "teacher", "step": 3, "total": 7}))
    plans = plan_grid(cells)
    assert plans[0].status == "done" and plans[1].failed_before.startswith("NonFiniteLoss")
    assert {s.label: s.state for s in plans[1].stages}["teacher"] == "resume"
    text = format_plan(plans, "table2", "ci")
    assert "teacher (resumes at step 3/7)" in text and "failed before: NonFiniteLoss" in text
    assert re.search(rf"{cells[0].run_id}\s+done\n", text)

    # a run made by other code (another teacher key): the dry run does not call it done, and says why
    made["teacher"]["key"] = "0" * 16
    (tmp_path / "runs" / cells[0].run_id / "manifest.json").write_text(json.dumps({"stages": made}))
    stale = plan_grid(cells)[0]
    assert stale.status == "to run" and stale.redo == "is stale: made by other code or inputs in teacher"
    assert "(its run folder is stale: made by other code or inputs in teacher)" in format_plan([stale], "t", "ci")


def test_cli_dry_run_lists_cells_and_runs_nothing(tmp_path):
    from harness.cli import cli

    result = CliRunner().invoke(cli, ["grid", "figure2", "--profile", "ci", "--methods", "kl,js",
                                      "--results-dir", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "4 cells, 0 done, 4 to run" in result.output
    assert "dart-kl-ci-seed42-" in result.output and "reuse  tokenizer (cell 1), teacher (cell 1)" in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_cells_survive_pickling_for_worker_processes(tmp_path):
    import pickle

    cell = cells_of(with_overrides(load_spec("figure2"), methods="js"), tmp_path)[0]
    again = pickle.loads(pickle.dumps(cell))
    assert again == cell and dataclasses.asdict(again.config()) == dataclasses.asdict(cell.config())


@pytest.mark.parametrize("profile, seeds", [("ci", 2), ("paper", 1)])
def test_table2_dry_run_tokenises_nothing_and_loads_no_model(tmp_path, monkeypatch, profile, seeds):
    """The dry run is the plan plus a look into the cache (and, on paper, a cost estimate): no task
    data, no tokenizer, no model."""
    import transformers

    import harness.data
    import harness.lm
    from harness.cli import cli

    calls = []

    def forbidden(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"the dry run called {name}")
        return call

    for task in TASKS.names():
        cls = TASKS.get(task)
        for attribute in ("load", "records"):
            if hasattr(cls, attribute):
                monkeypatch.setattr(cls, attribute, forbidden(f"{task}.{attribute}"))
    for name in ("load_tokenizer", "train_tokenizer", "load_model", "build_model", "make_student"):
        patch_everywhere(monkeypatch, harness.lm, name, forbidden(name))
    for name in ("tokenize_split", "tokenize"):
        patch_everywhere(monkeypatch, harness.data, name, forbidden(name))
    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained", forbidden("from_pretrained"))
    monkeypatch.setattr(transformers.PreTrainedTokenizerBase, "from_pretrained", forbidden("tokenizer from_pretrained"))

    result = CliRunner().invoke(cli, ["grid", "table2", "--dry-run", "--profile", profile,
                                      "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert calls == []
    assert ("estimated GPU-hours to build" in result.output) == (profile == "paper")
    cells = len(TASKS.names()) * len(METHODS.names()) * seeds
    assert f"{cells} cells, 0 done, {cells} to run" in result.output
    assert not any(tmp_path.iterdir())


def test_table2_teachers_sweeps_the_upstream_seed_one_teacher_per_value_shared_by_its_seeds(tmp_path):
    """``upstream_seed`` is an axis like any other: each value its own teacher, pre-distilled student (and run id);
    the method seeds at one value share them."""
    from harness.grid.spec import count_cells
    from harness.pipeline.graph import plan_for
    from harness.store.labels import METHOD

    spec = load_spec("table2_teachers")
    assert spec.axes == {"upstream_seed": [42, 43, 44]} and spec.seeds == [42, 43, 44]
    assert count_cells(spec.for_profile("ci")) == 4 * 8 * 3 * 3
    cells = cells_of(with_overrides(spec, tasks="dart", methods="kl", seeds="42,43"), tmp_path)
    assert len({c.run_id for c in cells}) == len(cells) == 6
    keys = {(c.seed, c.config().upstream_seed): plan_for(c.config()).keys() for c in cells}
    for stage in ("teacher", "predistill"):
        assert len({keys[(42, up)][stage] for up in (42, 43, 44)}) == 3                 # one per upstream seed
        assert all(keys[(42, up)][stage] == keys[(43, up)][stage] for up in (42, 43, 44))   # shared by its seeds
    assert len({k[METHOD] for k in keys.values()}) == 6
