"""``predistill.*``: a KD cell's shared pre-distilled student, set one parameter at a time (nothing trains here)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from harness.config import canonical_json, parse_sets, resolve_config
from harness.errors import HarnessError
from harness.grid import expand, load_spec
from harness.pipeline.graph import plan_for, run_id
from harness.store.runs import OPERATIONAL, swept_parameters


def _cfg(method="kl", *pairs, profile="ci"):
    return resolve_config("dart", method, profile, sets=parse_sets(pairs))


def test_a_set_parameter_is_typed_and_only_it_is_kept():
    cfg = _cfg("kl", "predistill.temperature=2")
    assert cfg.predistill_params == {"temperature": 2.0}
    assert isinstance(cfg.predistill_params["temperature"], float)
    assert _cfg("kl").predistill_params == {}


def test_it_keys_the_pre_distilled_student_and_what_follows_but_not_the_teacher():
    base, hot = plan_for(_cfg("kl")), plan_for(_cfg("kl", "predistill.temperature=2"))
    for label in ("tokenizer", "teacher"):
        assert base[label].key == hot[label].key
    assert base["predistill"].key != hot["predistill"].key
    assert hot["predistill"].config["params"]["temperature"] == 2.0
    assert base["predistill"].config["params"]["temperature"] == 1.0
    assert base["method"].key != hot["method"].key
    assert run_id(_cfg("kl")) != run_id(_cfg("kl", "predistill.temperature=2"))


def test_the_default_leaves_run_ids_as_they_were_before_the_setting():
    """A run id made before ``predistill_params`` existed hashed the config without it."""
    cfg = _cfg("kl")
    identity = dataclasses.asdict(cfg) | {k: None for k in OPERATIONAL}
    del identity["predistill_params"], identity["teacher_outputs_k"]
    del identity["teacher_mode"], identity["data"]["merge_test_inputs"], identity["processes"], identity["eval_decode_seeds"]   # later settings too, at their defaults
    identity["data_identity"] = plan_for(cfg).data_identity
    digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:8]
    assert run_id(cfg).endswith(digest)


def test_the_report_names_it_as_a_parameter_of_the_run():
    assert swept_parameters(_cfg("kl", "predistill.temperature=2")) == {"predistill.temperature": 2.0}
    assert swept_parameters(_cfg("kl")) == {}


@pytest.mark.parametrize("method, pair, fragment", [
    ("predistill", "predistill.temperature=2", "set method.* instead"),
    ("mle", "predistill.temperature=2", "does not start from the pre-distilled student"),
    ("kl", "predistill.temprature=2", "predistill.temperature"),
    ("kl", "predistill.temperature=0", "predistill.temperature"),
    ("kl", "predistill.hidden_pairing=diagonal", "layer_table"),
])
def test_bad_input_is_one_line_before_any_work(method, pair, fragment):
    with pytest.raises(HarnessError) as err:
        _cfg(method, pair)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_grid_applies_it_to_the_kd_cells_only(tmp_path):
    spec = load_spec("table2").for_profile("ci")
    spec = dataclasses.replace(spec, tasks=["dart"], methods=["mle", "predistill", "kl", "seqkd"], seeds=[42])
    cells = {c.method: c.config() for c in expand(spec, str(tmp_path), [("predistill.temperature", "2")])}
    assert cells["kl"].predistill_params == {"temperature": 2.0}
    assert cells["mle"].predistill_params == {} and cells["predistill"].predistill_params == {}
    only_mle = dataclasses.replace(spec, methods=["mle", "predistill"])
    with pytest.raises(HarnessError, match="no method of this grid starts from the pre-distilled student"):
        expand(only_mle, str(tmp_path), [("predistill.temperature", "2")])


def test_a_spec_files_number_and_the_same_text_are_one_setting():
    from_text = resolve_config("dart", "kl", "ci", sets=[("predistill.temperature", "2")])
    from_spec = resolve_config("dart", "kl", "ci", overrides={"predistill.temperature": 2})
    assert from_spec.predistill_params == from_text.predistill_params == {"temperature": 2.0}
    assert run_id(from_spec) == run_id(from_text)
    assert plan_for(from_spec)["predistill"].key == plan_for(from_text)["predistill"].key


def test_the_task_default_given_is_no_setting():
    assert _cfg("kl", "predistill.temperature=1").predistill_params == {}
    assert run_id(_cfg("kl", "predistill.temperature=1")) == run_id(_cfg("kl"))


def test_a_grid_filters_the_long_spelling_too(tmp_path):
    spec = load_spec("table2").for_profile("ci")
    spec = dataclasses.replace(spec, tasks=["dart"], methods=["mle", "kl"], seeds=[42])
    cells = {c.method: c.config() for c in expand(spec, str(tmp_path), [("predistill_params.temperature", "2")])}
    assert cells["kl"].predistill_params == {"temperature": 2.0} and cells["mle"].predistill_params == {}


def test_the_method_interface_names_the_keys_under_the_group_they_were_set_in():
    """``resolve_params``/``check_ranges`` word their messages with the prefix they are given: no caller rewrites
    a message after the fact."""
    from harness.registry import METHODS, TASKS

    PreDistill, dart = METHODS.get("predistill"), TASKS.get("dart")
    with pytest.raises(HarnessError) as err:
        PreDistill.resolve_params({"temprature": "2"}, dart, "ci", prefix="predistill")
    assert "predistill.temperature" in str(err.value) and "method." not in str(err.value)
    with pytest.raises(HarnessError, match=r"^--set predistill\.temperature=hot: expected a number$"):
        PreDistill.resolve_params({"temperature": "hot"}, dart, "ci", prefix="predistill")
    resolved = PreDistill.resolve_params({"temperature": "0"}, dart, "ci", prefix="predistill")
    with pytest.raises(HarnessError, match=r"^predistill\.temperature=0\.0: expected > 0"):
        PreDistill.check_ranges(PreDistill.Params(**resolved), prefix="predistill")
    with pytest.raises(HarnessError, match=r"^method\.temperature=0\.0"):   # the default group: method.*
        PreDistill(resolved)


@pytest.mark.parametrize("written, field", [("method.beta", "method_params.beta"),
                                            ("predistill.temperature", "predistill_params.temperature"),
                                            ("method", "method"), ("kd_train.lr", "kd_train.lr")])
def test_one_translation_between_the_written_keys_and_the_config_fields(written, field):
    from harness.config import field_key, param_key

    assert field_key(written) == field and param_key(field) == written
    assert field_key(field) == field and param_key(written) == written   # each spelling is a fixed point


def test_the_group_of_a_key_in_either_spelling():
    from harness.config import param_group

    assert param_group("method.beta") == param_group("method_params.beta") == ("method", "beta")
    assert param_group("predistill_params.temperature") == ("predistill", "temperature")
    assert param_group("method") == (None, "method") and param_group("kd_train.lr") == (None, "kd_train.lr")
