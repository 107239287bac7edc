"""Tests of run configuration: profiles, task overrides, ``--set`` parsing and checking."""

from __future__ import annotations

import dataclasses

import pytest

from harness.config import PROFILES, RunConfig, parse_sets, resolve_config, set_path, to_dict
from harness.errors import HarnessError, UnknownNameError


def _resolve(method: str = "tvd", profile: str = "cpu", **sets) -> RunConfig:
    return resolve_config("dart", method, profile, sets=list(sets.items()))


def _set(*pairs: str, method: str = "tvd", profile: str = "cpu") -> RunConfig:
    return resolve_config("dart", method, profile, sets=parse_sets(pairs))


# --------------------------------------------------------------------------- profiles
def test_profiles_are_ci_cpu_paper():
    assert list(PROFILES) == ["ci", "cpu", "paper"]


@pytest.mark.parametrize("profile", ["ci", "cpu", "paper"])
def test_every_profile_resolves(profile):
    cfg = resolve_config("dart", "tvd", profile)
    assert isinstance(cfg, RunConfig)
    assert (cfg.task, cfg.method, cfg.profile) == ("dart", "tvd", profile)
    assert cfg.method_params == {}
    # Every profile entry landed in the config (task overrides may change a few).
    for key, value in PROFILES[profile].items():
        section, _, name = key.rpartition(".")
        target = getattr(cfg, section) if section else cfg
        actual = getattr(target, name)
        task_value = _task_overrides(profile).get(key, value)
        assert actual == task_value, key
    to_dict(cfg)  # serialisable as a plain dict


def _task_overrides(profile: str) -> dict:
    from harness_tasks.dart import DartTask

    return DartTask.profile_overrides(profile)


def test_cpu_profile_is_the_dataclass_defaults():
    """The dataclass defaults are the cpu profile; DART's own cpu overrides (its student) come on top."""
    cfg = resolve_config("dart", "tvd", "cpu")
    expected = dataclasses.asdict(RunConfig(task="dart", method="tvd", profile="cpu"))
    overrides = _task_overrides("cpu")
    assert set(overrides) == {"student.decoder_layers", "student_train.epochs"}
    for key, value in overrides.items():
        section, name = key.split(".")
        expected[section][name] = value
    assert dataclasses.asdict(cfg) == expected


def test_ci_profile_shrinks_everything():
    cfg = resolve_config("dart", "tvd", "ci")
    assert cfg.data.source == "embedded"
    assert (cfg.data.train_size, cfg.data.validation_size, cfg.data.test_size) == (40, 8, 10)
    assert cfg.teacher.d_model == 32 and cfg.tokenizer.vocab_size == 300
    assert cfg.kd_train.batch_size == 16 and cfg.eval_decode.max_new_tokens == 16
    assert cfg.teacher.pretrained is None


def test_paper_profile_applies_dart_overrides_on_top():
    cfg = resolve_config("dart", "tvd", "paper")
    assert cfg.data.source == "hub"
    assert cfg.kd_train.epochs == 12 and cfg.kd_train.lr == 1e-4
    # DART's own overrides (task level: its reference recipe) beat the profile.
    assert cfg.teacher.pretrained == "facebook/bart-large"
    assert (cfg.student.encoder_layers, cfg.student.decoder_layers) == (3, 1)
    assert cfg.eval_decode.num_beams == 6


def test_unknown_profile():
    with pytest.raises(UnknownNameError) as info:
        resolve_config("dart", "tvd", "gpu")
    message = str(info.value)
    assert "unknown profile 'gpu'" in message
    assert "did you mean 'cpu'?" in message
    assert "known profiles: ci, cpu, paper" in message


def test_unknown_task_and_method():
    with pytest.raises(UnknownNameError, match="unknown task 'dartt'"):
        resolve_config("dartt", "tvd", "ci")
    with pytest.raises(UnknownNameError, match=r"did you mean 'tvd'\?"):
        resolve_config("dart", "tvdd", "ci")


def test_seed_argument_sets_the_method_seed_only():
    cfg = resolve_config("dart", "tvd", "ci", seed=7)
    assert cfg.seed == 7
    assert cfg.upstream_seed == 42


def test_python_overrides_then_sets():
    cfg = resolve_config("dart", "tvd", "ci", overrides={"kd_train.batch_size": 4, "data.seed": 3},
                         sets=[("kd_train.batch_size", "8")])
    assert cfg.kd_train.batch_size == 8  # --set comes last
    assert cfg.data.seed == 3


def test_overrides_given_as_text_are_parsed_and_checked():
    cfg = resolve_config("dart", "tvd", "ci", overrides={"kd_train.batch_size": "4"})
    assert cfg.kd_train.batch_size == 4
    with pytest.raises(HarnessError, match="expected an integer"):
        resolve_config("dart", "tvd", "ci", overrides={"kd_train.batch_size": "four"})


# --------------------------------------------------------------------------- parse_sets
def test_parse_sets_splits_on_the_first_equals_and_strips():
    assert parse_sets(["a.b=1", " c = x=y ", "d="]) == [("a.b", "1"), ("c", "x=y"), ("d", "")]


def test_parse_sets_without_equals():
    with pytest.raises(HarnessError, match=r"--set expects key=value, got 'kd_train\.epochs'"):
        parse_sets(["kd_train.epochs"])


# --------------------------------------------------------------------------- --set types
@pytest.mark.parametrize(
    "pair, getter, expected",
    [
        # int
        ("kd_train.batch_size=8", lambda c: c.kd_train.batch_size, 8),
        ("seed=7", lambda c: c.seed, 7),
        ("data.train_size=12", lambda c: c.data.train_size, 12),
        ("eval_decode.num_beams=3", lambda c: c.eval_decode.num_beams, 3),
        # float (integers are accepted and become floats)
        ("kd_train.lr=1e-4", lambda c: c.kd_train.lr, 1e-4),
        ("kd_train.epochs=2", lambda c: c.kd_train.epochs, 2.0),
        ("kd_train.epochs=0.5", lambda c: c.kd_train.epochs, 0.5),
        ("teacher.dropout=0", lambda c: c.teacher.dropout, 0.0),
        # bool
        ("teacher_train.select_best=false", lambda c: c.teacher_train.select_best, False),
        ("teacher_train.select_best=False", lambda c: c.teacher_train.select_best, False),
        ("teacher_train.select_best=no", lambda c: c.teacher_train.select_best, False),
        ("teacher_train.select_best=0", lambda c: c.teacher_train.select_best, False),
        ("online_sampling.do_sample=true", lambda c: c.online_sampling.do_sample, True),
        ("online_sampling.do_sample=YES", lambda c: c.online_sampling.do_sample, True),
        ("online_sampling.do_sample=1", lambda c: c.online_sampling.do_sample, True),
        # str
        ("teacher.family=t5", lambda c: c.teacher.family, "t5"),
        ("device=cpu", lambda c: c.device, "cpu"),
        ("kd_train.optimizer=adafactor", lambda c: c.kd_train.optimizer, "adafactor"),
        # X | None
        ("upstream_seed=none", lambda c: c.upstream_seed, None),
        ("upstream_seed=None", lambda c: c.upstream_seed, None),
        ("upstream_seed=5", lambda c: c.upstream_seed, 5),
        ("online_sampling.top_k=null", lambda c: c.online_sampling.top_k, None),
        ("eval_decode.top_k=50", lambda c: c.eval_decode.top_k, 50),
        ("eval_decode.top_p=0.9", lambda c: c.eval_decode.top_p, 0.9),
        ("kd_train.max_steps=100", lambda c: c.kd_train.max_steps, 100),
        ("teacher.pretrained=facebook/bart-base", lambda c: c.teacher.pretrained, "facebook/bart-base"),
        ("data.data_dir=/tmp/dart", lambda c: c.data.data_dir, "/tmp/dart"),
        ("data.max_eval_examples=none", lambda c: c.data.max_eval_examples, None),
    ],
)
def test_set_parses_each_type(pair, getter, expected):
    cfg = _set(pair, profile="ci")
    value = getter(cfg)
    assert value == expected
    assert type(value) is type(expected)


def test_set_none_clears_a_value_a_profile_set():
    cfg = _set("teacher.pretrained=none", profile="paper")
    assert cfg.teacher.pretrained is None


def test_later_sets_win():
    cfg = _set("kd_train.batch_size=2", "kd_train.batch_size=3")
    assert cfg.kd_train.batch_size == 3


def test_set_overrides_profile_and_task():
    cfg = _set("kd_train.epochs=2", "student.encoder_layers=2", profile="paper")
    assert cfg.kd_train.epochs == 2.0
    assert cfg.student.encoder_layers == 2
    # Only the named field of a section changes.
    assert cfg.kd_train.lr == 1e-4
    assert cfg.student.decoder_layers == 1


def test_set_only_touches_its_own_section():
    """kd_train, student_train and teacher_train are separate objects."""
    cfg = _set("kd_train.batch_size=3", profile="cpu")
    assert cfg.kd_train.batch_size == 3
    assert cfg.student_train.batch_size == 32 and cfg.teacher_train.batch_size == 32
    assert resolve_config("dart", "tvd", "cpu").kd_train.batch_size == 32  # defaults not mutated


@pytest.mark.parametrize(
    "pair, fragment",
    [
        ("kd_train.epochs=abc", "--set kd_train.epochs=abc: expected a number"),
        ("kd_train.lr=fast", "--set kd_train.lr=fast: expected a number"),
        ("seed=1.5", "--set seed=1.5: expected an integer"),
        ("seed=abc", "--set seed=abc: expected an integer"),
        ("seed=", "--set seed=: expected an integer"),
        ("seed=none", "--set seed=none: expected an integer"),  # seed is not optional
        ("upstream_seed=x", "--set upstream_seed=x: expected an integer"),
        ("data.train_size=ten", "--set data.train_size=ten: expected an integer"),
        ("eval_decode.top_k=5.5", "--set eval_decode.top_k=5.5: expected an integer"),
        ("teacher_train.select_best=maybe", "--set teacher_train.select_best=maybe: expected a boolean"),
        ("online_sampling.do_sample=2", "expected a boolean"),
    ],
)
def test_set_rejects_wrong_types(pair, fragment):
    with pytest.raises(HarnessError) as info:
        _set(pair)
    assert fragment in str(info.value)
    assert not isinstance(info.value, UnknownNameError)


@pytest.mark.parametrize("section", ["teacher", "data", "kd_train", "eval_decode"])
def test_set_a_whole_section_is_an_error(section):
    with pytest.raises(HarnessError) as info:
        _set(f"{section}=3")
    message = str(info.value)
    assert f"--set {section}: set one of its fields" in message
    assert f"e.g. {section}." in message


def test_set_method_params_as_a_whole_is_an_error():
    with pytest.raises(HarnessError, match=r"set its entries, e\.g\. method_params\.NAME=VALUE"):
        _set("method_params=3", method="js")


def test_set_below_a_leaf_field_is_an_error():
    with pytest.raises(HarnessError, match=r"--set teacher\.family\.x: teacher\.family has no fields"):
        _set("teacher.family.x=3")


# --------------------------------------------------------------------------- unknown keys
def test_unknown_nested_key_lists_valid_keys_and_hints():
    with pytest.raises(HarnessError) as info:
        _set("kd_train.epoch=2")
    message = str(info.value)
    assert "unknown config key 'kd_train.epoch'" in message
    assert "did you mean 'epochs'?" in message
    for field in ("kd_train.epochs", "kd_train.batch_size", "kd_train.lr", "kd_train.select_best",
                  "kd_train.max_steps"):
        assert field in message
    assert "teacher.d_model" not in message  # only the keys of that section


def test_unknown_section_lists_top_level_keys_and_hints():
    with pytest.raises(HarnessError) as info:
        _set("kd_trian.epochs=2")
    message = str(info.value)
    assert "unknown config key 'kd_trian.epochs'" in message
    assert "did you mean 'kd_train'?" in message
    for field in ("seed", "device", "data", "teacher", "kd_train", "eval_decode"):
        assert field in message


def test_unknown_top_level_key():
    with pytest.raises(HarnessError) as info:
        _set("sed=3")
    assert "unknown config key 'sed'" in str(info.value)
    assert "did you mean 'seed'?" in str(info.value)


def test_unknown_key_without_close_match_has_no_hint():
    with pytest.raises(HarnessError) as info:
        _set("qqqqqq=1")
    assert "did you mean" not in str(info.value)
    assert "valid keys here:" in str(info.value)


def test_set_path_directly_on_a_config():
    cfg = RunConfig()
    set_path(cfg, "kd_train.batch_size", "5", from_text=True)
    assert cfg.kd_train.batch_size == 5
    set_path(cfg, "kd_train.batch_size", 6, from_text=False)
    assert cfg.kd_train.batch_size == 6


# --------------------------------------------------------------------------- method params
def test_js_beta_defaults_to_the_tasks_beta():
    from harness_tasks.dart import DartTask

    assert DartTask.method_defaults["js"] == {"beta": 0.85}
    for profile in ("ci", "cpu", "paper"):
        assert resolve_config("dart", "js", profile).method_params == {"beta": 0.85}


def test_set_js_beta():
    cfg = _set("method.beta=0.3", method="js")
    assert cfg.method_params == {"beta": 0.3}
    assert type(cfg.method_params["beta"]) is float


def test_set_js_beta_via_method_params_spelling():
    cfg = _set("method_params.beta=0.25", method="js")
    assert cfg.method_params == {"beta": 0.25}


def test_set_js_beta_integer_text_becomes_float():
    cfg = _set("method.beta=1", method="js")
    assert cfg.method_params["beta"] == 1.0 and type(cfg.method_params["beta"]) is float


def test_set_js_beta_wrong_type():
    with pytest.raises(HarnessError, match=r"--set method\.beta=high: expected a number"):
        _set("method.beta=high", method="js")


def test_method_params_from_python_overrides():
    cfg = resolve_config("dart", "js", "ci", overrides={"method.beta": 0.6})
    assert cfg.method_params == {"beta": 0.6}


def test_js_beta_reaches_the_method_weights():
    from harness.registry import METHODS

    cfg = _set("method.beta=0.3", method="js")
    method = METHODS.get("js")(cfg.method_params)
    weights = method.prefix_weights()
    assert weights["student_sample"] == pytest.approx(0.3)
    assert weights["teacher_offline"] == pytest.approx(0.7)


def test_tvd_has_no_params():
    with pytest.raises(HarnessError) as info:
        _set("method.beta=0.3", method="tvd")
    message = str(info.value)
    assert "unknown parameter 'beta' of method 'tvd'" in message
    assert "this method has no parameters" in message


def test_unknown_param_of_js_lists_valid_ones():
    with pytest.raises(HarnessError) as info:
        _set("method.alpha=0.3", method="js")
    message = str(info.value)
    assert "unknown parameter 'alpha' of method 'js'" in message
    assert "method.beta" in message


def test_predistill_params_resolve_with_defaults_and_sets():
    cfg = _set("method.temperature=3", method="predistill")
    assert cfg.method_params == {"alpha_ce": 0.8, "alpha_mlm": 0.2, "alpha_hid": 3.0, "temperature": 3.0,
                                 "hidden_pairing": "layer_table", "hidden_layers": "mean", "normalize_hidden": True,
                                 "teacher_encoder": "own"}


# --------------------------------------------------------------------------- task/method/profile are options
def test_set_method_is_rejected_or_consistent():
    with pytest.raises(HarnessError, match="--method"):
        _set("method=js", method="tvd")


def test_set_profile_is_rejected_or_consistent():
    with pytest.raises(HarnessError, match="--profile"):
        _set("profile=paper", profile="cpu")


@pytest.mark.parametrize("pair", ["kd_train.epochs=nan", "kd_train.lr=inf"])
def test_non_finite_numbers_are_rejected(pair):
    with pytest.raises(HarnessError, match="finite"):
        _set(pair)


def test_js_beta_outside_unit_interval_is_rejected():
    from harness.registry import METHODS

    with pytest.raises(HarnessError, match=r"method.beta=2.0: expected >= 0 and <= 1 \(weight of the student's samples"):
        METHODS.get("js")({"beta": 2.0})


def test_python_overrides_are_type_checked():
    from harness.config import resolve_config

    with pytest.raises(HarnessError):
        resolve_config("dart", "tvd", "ci", overrides={"seed": [1]})
    assert resolve_config("dart", "tvd", "ci", overrides={"kd_train.lr": 1}).kd_train.lr == 1.0


def test_several_test_decodings_need_sampled_decoding():
    """eval_decode_seeds > 1 repeats a decoding that differs only when it samples: beam search is refused."""
    from harness.config import resolve_config
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="eval_decode_seeds=3: .* eval_decode.do_sample=true"):
        resolve_config("dart", "mle", "ci", sets=[("eval_decode_seeds", "3")])
    assert resolve_config("commonsense_dialogue", "mle", "ci", sets=[("eval_decode_seeds", "3")]).eval_decode_seeds == 3
