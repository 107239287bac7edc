"""The ``paper`` profile is the reference recipe: docs/paper-recipe.md, the tasks' PAPER_RECIPE and the
resolved configs say the same thing; ``harness config`` prints what a run would use."""

from __future__ import annotations

import importlib
import json
import math
import re
import tomllib
from pathlib import Path

import pytest

from conftest import cli_main
from harness.config import resolve_config, to_dict
from harness.registry import METHODS

DOC = Path(__file__).resolve().parents[1] / "docs" / "paper-recipe.md"
TASKS = ("dart", "xsum", "wmt16_en_ro", "commonsense_dialogue")
HEADER = "| key | value | reference |"


def recipe_tables(text: str) -> dict[str, list[tuple[str, str, str]]]:
    """Rows (key, value text, reference) of each ``## … — `task``` section's key/value/reference table."""
    tables: dict[str, list[tuple[str, str, str]]] = {}
    task, in_table = None, False
    for line in text.splitlines():
        heading = re.fullmatch(r"## .* — `(\w+)`", line)
        if heading:
            task, in_table = heading.group(1), False
            continue
        if line.startswith("## "):
            task, in_table = None, False
        if task is None:
            continue
        if line.strip() == HEADER:
            in_table = True
            tables.setdefault(task, [])
        elif in_table and line.startswith("|---"):
            continue
        elif in_table and line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            assert len(cells) == 3, f"{task}: a recipe row has three cells: {line!r}"
            tables[task].append((cells[0].strip("`"), cells[1].strip("`"), cells[2].replace("\\*", "*")))
        else:
            in_table = False
    return tables


def parse_value(text: str):
    """A table cell's value: null, true/false, a fraction a/b, a number, else the text itself."""
    if text in ("null", "true", "false"):
        return json.loads(text)
    fraction = re.fullmatch(r"(\d+)/(\d+)", text)
    if fraction:
        return int(fraction.group(1)) / int(fraction.group(2))
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def resolved_value(task: str, key: str):
    """The value ``key`` has in ``resolve_config(task, …, "paper")``; ``method.M.P`` is method M's parameter P."""
    if key.startswith("method."):
        _, method, parameter = key.split(".", 2)
        return resolve_config(task, method, "paper").method_params[parameter]
    value = resolve_config(task, "js", "paper")
    for part in key.split("."):
        value = getattr(value, part)
    return value


def same(expected, actual) -> bool:
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return expected == actual and type(expected) is type(actual)
    return not isinstance(actual, bool) and isinstance(actual, (int, float)) and math.isclose(expected, actual)


@pytest.fixture(scope="module")
def tables():
    return recipe_tables(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_one_recipe_table_per_paper_task(tables):
    assert sorted(tables) == sorted(TASKS)
    assert all(len(rows) >= 40 for rows in tables.values()), {t: len(r) for t, r in tables.items()}


@pytest.mark.parametrize("task", TASKS)
def test_every_doc_row_is_the_resolved_paper_config(tables, task):
    wrong = [(key, text, resolved_value(task, key)) for key, text, _ in tables[task]
             if not same(parse_value(text), resolved_value(task, key))]
    assert not wrong, f"docs/paper-recipe.md ≠ resolve_config({task!r}, …, 'paper'): {wrong}"


@pytest.mark.parametrize("task", TASKS)
def test_the_doc_lists_the_task_recipe_row_for_row_with_its_references(tables, task):
    recipe = importlib.import_module(f"harness_tasks.{task}").PAPER_RECIPE
    in_doc = {key: reference for key, _, reference in tables[task]}
    assert len(in_doc) == len(tables[task]), "a key appears twice"
    assert sorted(in_doc) == sorted(recipe), "the doc and PAPER_RECIPE list different keys"
    assert {key: ref for key, (_, ref) in recipe.items()} == in_doc


def test_a_changed_value_is_caught():
    """The comparison can fail: a value off by a little, a string for a number, a bool for an int."""
    assert not same(parse_value("1e-4"), 3e-5)
    assert not same(parse_value("10/3"), 3.0)
    assert not same(parse_value("true"), 1)
    assert not same(parse_value("null"), 0)
    assert not same(parse_value("adamw"), "adafactor")
    rows = recipe_tables("## X — `dart`\n\n| key | value | reference |\n|---|---|---|\n| `kd_train.lr` | `3e-5` | x |\n")
    assert not same(parse_value(rows["dart"][0][1]), resolved_value("dart", "kd_train.lr"))


# ---------------------------------------------------------------- issue 16's acceptance, task by task

ACCEPTANCE = {  # (task, method) → {dotted key: value}
    ("dart", "js"): {"kd_train.lr": 1e-4, "kd_train.epochs": 12, "kd_train.warmup_steps": 100, "method.beta": 0.85,
                     "online_sampling.num_beams": 6, "online_sampling.do_sample": True, "online_sampling.top_k": 30,
                     "online_sampling.min_new_tokens": 12, "kd_train_rows": "per_source",
                     "pseudo_labels.num_beams": 6, "kd_train.freeze_embeddings": False},
    ("dart", "predistill"): {"student_train.epochs": 18, "student_train.lr": 1e-4, "student_train.freeze_embeddings": True,
                             "method.temperature": 1.0, "teacher_train.epochs": 16, "teacher_train.lr": 1e-5},
    ("xsum", "js"): {"kd_train.lr": 1e-4, "kd_train.epochs": 12, "kd_train.warmup_steps": 100, "method.beta": 0.85,
                     "kd_train.grad_accum_steps": 2, "kd_train.freeze_embeddings": True,
                     "online_sampling.num_beams": 5, "online_sampling.top_k": 30, "online_sampling.max_new_tokens": 64,
                     "pseudo_labels.length_penalty": 1.0, "eval_decode.num_beams": 6, "eval_decode.length_penalty": 0.5,
                     "teacher.pretrained": "facebook/bart-large-xsum", "teacher_train.epochs": 0},
    ("xsum", "predistill"): {"student_train.lr": 3e-4, "student_train.epochs": 28, "student_train.warmup_steps": 500,
                             "student_train.grad_accum_steps": 2, "method.temperature": 2.0},
    ("wmt16_en_ro", "js"): {"kd_train.lr": 5e-4, "kd_train.optimizer": "adafactor", "kd_train.epochs": 12,
                            "kd_train.warmup_steps": 100, "method.beta": 0.25, "online_sampling.num_beams": 5,
                            "online_sampling.top_k": 40, "online_sampling.min_new_tokens": 10,
                            "data.train_subset": 100_000, "teacher_train.epochs": 9, "teacher_train.lr": 5e-4},
    ("wmt16_en_ro", "predistill"): {"student_train.lr": 1e-3, "student_train.optimizer": "adafactor",
                                    "student_train.warmup_steps": 500, "method.temperature": 2.0},
    ("commonsense_dialogue", "js"): {"kd_train.lr": 1e-4, "kd_train.epochs": 12, "kd_train.warmup_steps": 100,
                                     "method.beta": 0.85, "kd_train.grad_accum_steps": 2, "kd_train.select_best": False,
                                     "online_sampling.num_beams": 1, "online_sampling.top_p": 0.9,
                                     "online_sampling.top_k": 50, "eval_decode.top_k": 50,
                                     "teacher_train.grad_accum_steps": 3, "teacher_train.lr": 5e-5},
    ("commonsense_dialogue", "predistill"): {"student_train.lr": 5e-4, "student_train.grad_accum_steps": 3,
                                             "method.temperature": 1.0, "method.alpha_hid": 0.1},
}


@pytest.mark.parametrize("task, method", sorted(ACCEPTANCE))
def test_the_paper_profile_has_the_reference_values(task, method):
    cfg = resolve_config(task, method, "paper")
    for key, expected in ACCEPTANCE[task, method].items():
        if key.startswith("method."):
            actual = cfg.method_params[key.split(".", 1)[1]]
        else:
            actual = cfg
            for part in key.split("."):
                actual = getattr(actual, part)
        assert same(expected, actual), f"{task}/{method}: {key}={actual!r}, the reference has {expected!r}"


@pytest.mark.parametrize("task", TASKS)
def test_every_method_resolves_under_the_paper_recipe(task):
    for method in METHODS.names():
        resolve_config(task, method, "paper")   # every range check passes


def test_the_recipe_stays_in_the_paper_profile():
    """The cpu profile keeps the methods' own defaults (pre-distillation's teacher reads its own encoder) and
    per-reference labels."""
    cpu = resolve_config("dart", "predistill", "cpu")
    assert cpu.method_params["teacher_encoder"] == "own" and cpu.kd_train_rows == "per_reference"
    assert resolve_config("dart", "predistill", "paper").method_params["teacher_encoder"] == "student"
    assert resolve_config("wmt16_en_ro", "js", "cpu").method_params["beta"] == 0.25


# ---------------------------------------------------------------- harness config

def run_cli(monkeypatch, capsys, args: list[str]) -> tuple[int, str, str]:
    return tuple(cli_main(monkeypatch, capsys, args))


def drop_none(value):
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    return value


def test_harness_config_prints_the_resolved_config_as_json(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, ["config", "--task", "dart", "--method", "js", "--profile", "paper"])
    printed = json.loads(out)
    assert code == 0 and printed == to_dict(resolve_config("dart", "js", "paper"))
    assert printed["kd_train"]["lr"] == 1e-4 and printed["kd_train"]["epochs"] == 12
    assert printed["kd_train"]["warmup_steps"] == 100 and printed["method_params"] == {"beta": 0.85}
    assert printed["online_sampling"]["num_beams"] == 6 and printed["online_sampling"]["top_k"] == 30


def test_harness_config_toml_reads_back_as_the_same_config(monkeypatch, capsys):
    args = ["config", "--task", "commonsense_dialogue", "--method", "predistill", "--profile", "paper",
            "--set", "kd_train.epochs=2", "--set", "method.temperature=3", "--format", "toml"]
    code, out, _ = run_cli(monkeypatch, capsys, args)
    expected = to_dict(resolve_config("commonsense_dialogue", "predistill", "paper",
                                      sets=[("kd_train.epochs", "2"), ("method.temperature", "3")]))
    assert code == 0 and tomllib.loads(out) == drop_none(expected)
    assert "# unset: " in out and expected["method_params"]["temperature"] == 3.0


def test_toml_strings_and_keys_survive_the_round_trip():
    from harness.tomltext import dumps

    data = {"a": 'quote " back\\slash \n tab\t del\x7f é 🙂', "odd key": 1e-05, "t": {"x y": [1, 2], "n": None}}
    assert tomllib.loads(dumps(data)) == drop_none(data)


@pytest.mark.parametrize("args, message", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--set", "kd_train.lr=fast"], "--set kd_train.lr=fast: expected a number"),
    (["--set", "kd_train.lrr=1"], "unknown config key 'kd_train.lrr'"),
    (["--profile", "paper", "--set", "kd_train.lr=-1"], "kd_train.lr=-1.0: expected > 0"),
    (["--format", "yaml"], "'yaml' is not one of"),
])
def test_harness_config_bad_input_is_one_line_and_exit_2(monkeypatch, capsys, args, message):
    code, out, err = run_cli(monkeypatch, capsys, ["config", *args])
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("harness: error: "), err
    assert message in lines[0], lines[0]


def test_harness_config_marks_the_fields_its_sources_ignore(monkeypatch, capsys):
    """A pretrained teacher brings its own architecture and tokenizer, hub data their own split sizes: the JSON on
    stdout stays the config, each unused key is named on stderr; TOML marks it where it stands."""
    code, out, err = run_cli(monkeypatch, capsys, ["config", "--task", "dart", "--method", "js", "--profile", "paper"])
    assert code == 0 and json.loads(out) == to_dict(resolve_config("dart", "js", "paper"))
    assert "unused: teacher.d_model, teacher.encoder_layers, teacher.decoder_layers, teacher.heads, teacher.ffn_dim" \
           in err and "brings its own architecture" in err
    assert "unused: tokenizer.vocab_size (teacher.pretrained=" in err
    assert "unused: data.train_size, data.validation_size, data.test_size (data.source='hub' reads each split whole" \
           in err
    code, out, _ = run_cli(monkeypatch, capsys, ["config", "--task", "dart", "--method", "js", "--profile", "paper",
                                                 "--format", "toml"])
    assert tomllib.loads(out) == drop_none(to_dict(resolve_config("dart", "js", "paper")))
    assert "\nd_model = 128  # unused: teacher.pretrained=" in out and "\nvocab_size = 1500  # unused: " in out
    code, out, err = run_cli(monkeypatch, capsys, ["config", "--task", "dart", "--method", "js", "--profile", "ci"])
    assert code == 0 and "unused" not in err   # the twin and a model built from its sizes: every field is used
    code, out, err = run_cli(monkeypatch, capsys, ["config", "--profile", "ci", "--set", "data.data_dir=somewhere"])
    assert err.strip() == "unused: data.data_dir (data.source='embedded', not 'local')"
