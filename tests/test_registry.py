"""Tests of the name → class registries (harness/registry.py)."""

from __future__ import annotations

import importlib.metadata
import itertools
import sys
import textwrap
from pathlib import Path

import pytest

from harness.methods import Method
from harness.methods.fdistill import TVD
from harness.errors import HarnessError, UnknownNameError
from harness.registry import METHODS, Registry, TASKS, load_plugin_file

BUILTIN_METHODS = ["akl", "engine", "gkd", "js", "js_exact", "js_online", "kl", "mle", "predistill", "rkl", "seqkd", "skl",
                   "srkl", "tvd", "tvd_online", "wordkd"]
BUILTIN_TASKS = ["commonsense_dialogue", "dart", "wmt16_en_ro", "xsum"]
_counter = itertools.count()


def _unique(prefix: str) -> str:
    """A name no other test uses, so the global registries stay clean across tests."""
    return f"{prefix}_{next(_counter)}"


def _fresh(kind: str = "method", group: str = "harness.tests.empty_group") -> Registry:
    """A registry of its own; its default entry-point group is empty, so only what a test adds is in it."""
    return Registry(kind, group, ())


# --------------------------------------------------------------------------- decorator
def test_decorator_registers_class_sets_name_and_returns_it():
    reg = _fresh()

    @reg.register("alpha")
    class Alpha(Method):
        """Alpha."""

    assert reg.get("alpha") is Alpha
    assert Alpha.name == "alpha"
    assert "alpha" in reg
    assert "beta" not in reg
    assert reg.names() == ["alpha"]
    # The decorator returns the class itself (not a wrapper).
    assert isinstance(Alpha(), Method)


def test_names_are_sorted():
    reg = _fresh()
    for n in ("zeta", "alpha", "mid"):
        reg.add(n, type(n.title(), (Method,), {}))
    assert reg.names() == ["alpha", "mid", "zeta"]


@pytest.mark.clean_registry
def test_builtin_methods_and_tasks_are_registered():
    assert METHODS.names() == BUILTIN_METHODS
    assert METHODS.get("tvd") is TVD
    assert "dart" in TASKS.names()
    from harness_tasks.dart import DartTask

    assert TASKS.get("dart") is DartTask


# --------------------------------------------------------------------------- conflicts
def test_same_name_different_class_is_an_error():
    reg = _fresh()

    class First(Method):
        pass

    class Second(Method):
        pass

    reg.add("dup", First)
    with pytest.raises(HarnessError) as info:
        reg.add("dup", Second)
    message = str(info.value)
    assert "'dup'" in message and "registered twice" in message
    assert "First" in message and "Second" in message
    # The first registration survives the rejected one.
    assert reg.get("dup") is First


def test_same_name_different_class_via_decorator_is_an_error():
    reg = _fresh()

    @reg.register("dup")
    class First(Method):
        pass

    with pytest.raises(HarnessError, match="registered twice"):
        @reg.register("dup")
        class Second(Method):
            pass

    assert reg.get("dup") is First


def test_same_class_twice_is_fine():
    reg = _fresh()

    class Same(Method):
        pass

    reg.add("same", Same)
    reg.add("same", Same)
    assert reg.get("same") is Same
    assert reg.names() == ["same"]


def test_global_registry_rejects_a_second_tvd():
    class Impostor(Method):
        pass

    with pytest.raises(HarnessError, match="registered twice"):
        METHODS.add("tvd", Impostor)
    assert METHODS.get("tvd") is TVD
    assert Impostor.name == ""  # not renamed by the rejected registration


# --------------------------------------------------------------------------- unknown names
@pytest.mark.clean_registry
def test_unknown_method_lists_known_names_and_a_close_match():
    with pytest.raises(UnknownNameError) as info:
        METHODS.get("tvdd")
    err = info.value
    message = str(err)
    assert "unknown method 'tvdd'" in message
    assert "did you mean 'tvd'?" in message
    assert "known methods: " + ", ".join(BUILTIN_METHODS) in message
    assert err.kind == "method" and err.name == "tvdd" and err.known == BUILTIN_METHODS
    # It is both a HarnessError (CLI: one line, exit 2) and a KeyError (dict-like lookups).
    assert isinstance(err, HarnessError) and isinstance(err, KeyError)
    # str() is the plain message, not KeyError's quoted repr.
    assert not message.startswith(("'", '"'))
    assert "\n" not in message


def test_unknown_name_without_close_match_has_no_hint():
    with pytest.raises(UnknownNameError) as info:
        METHODS.get("zzzzzzzz")
    message = str(info.value)
    assert "did you mean" not in message
    assert "known methods: " in message and "tvd" in message


def test_unknown_name_in_empty_registry_says_none():
    with pytest.raises(UnknownNameError, match=r"known tasks: \(none\)"):
        _fresh("task", "harness.tests.no_such_group").get("anything")


def test_unknown_task_lists_dart():
    with pytest.raises(UnknownNameError) as info:
        TASKS.get("darts")
    assert "did you mean 'dart'?" in str(info.value)
    assert "dart" in info.value.known


# --------------------------------------------------------------------------- plugin files
@pytest.fixture
def plugin_file(tmp_path):
    """Write a plugin file registering one method in the global METHODS; undo it afterwards."""
    created: list[tuple[str, str]] = []

    def write(method_name: str) -> Path:
        stem = _unique("test_plugin")
        path = tmp_path / f"{stem}.py"
        path.write_text(textwrap.dedent(f'''
            from harness import register_method
            from harness.methods import Method

            @register_method({method_name!r})
            class MyDiv(Method):
                """My divergence: a test plugin."""

                prefixes = {{"ground_truth": 1.0}}
        '''))
        created.append((method_name, f"harness_plugin_{stem}"))
        return path

    yield write
    for method_name, module_name in created:
        # Only remove what the plugin registered (never a built-in it clashed with).
        cls = METHODS._items.get(method_name)
        if cls is not None and cls.__module__.startswith(module_name + "_"):
            METHODS._items.pop(method_name)
            sys.modules.pop(cls.__module__, None)


def test_load_plugin_file_registers_a_method(plugin_file):
    name = _unique("my_div")
    assert name not in METHODS
    path = plugin_file(name)
    load_plugin_file(path)
    cls = METHODS.get(name)
    assert issubclass(cls, Method)
    assert cls.__name__ == "MyDiv" and cls.name == name
    assert cls().prefix_weights() == {"ground_truth": 1.0}
    assert name in METHODS.names()
    # The module is importable under its plugin name (so pickling/qualnames work).
    assert cls.__module__.startswith(f"harness_plugin_{path.stem}_")  # + a hash of the file's path
    assert sys.modules[cls.__module__].MyDiv is cls


def test_load_plugin_file_accepts_str_path(plugin_file):
    name = _unique("my_div")
    load_plugin_file(str(plugin_file(name)))
    assert METHODS.get(name).name == name


def test_loading_the_same_plugin_file_twice_is_fine(plugin_file):
    name = _unique("my_div")
    path = plugin_file(name)
    load_plugin_file(path)
    first = METHODS.get(name)
    load_plugin_file(path)  # a new class object with the same qualified name: not a conflict
    assert METHODS.get(name).__qualname__ == first.__qualname__


def test_plugin_reusing_a_builtin_name_is_a_conflict(plugin_file):
    path = plugin_file("tvd")
    with pytest.raises(HarnessError, match="registered twice"):
        load_plugin_file(path)
    assert METHODS.get("tvd") is TVD


def test_missing_plugin_file_is_a_harness_error(tmp_path):
    missing = tmp_path / "nope.py"
    with pytest.raises(HarnessError, match="plugin file not found") as info:
        load_plugin_file(missing)
    assert str(missing) in str(info.value)


def test_plugin_path_that_is_a_directory_is_a_harness_error(tmp_path):
    with pytest.raises(HarnessError, match="plugin file not found"):
        load_plugin_file(tmp_path)


def test_plugin_file_that_is_not_python_is_a_harness_error(tmp_path):
    path = tmp_path / "plugins.txt"
    path.write_text("not python\n")
    with pytest.raises(HarnessError, match=r"is it a \.py file"):
        load_plugin_file(path)


# --------------------------------------------------------------------------- entry points
def _fake_entry_points(monkeypatch, eps: list[importlib.metadata.EntryPoint]) -> list[str]:
    """Make ``importlib.metadata.entry_points(group=...)`` see only ``eps``; returns the groups asked for."""
    asked: list[str] = []

    def entry_points(*, group=None, **kwargs):
        asked.append(group)
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return asked


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A uniquely named importable module defining ``EpMethod`` (a Method) and ``EpOther``."""
    module_name = _unique("harness_test_ep_module")
    (tmp_path / f"{module_name}.py").write_text(textwrap.dedent('''
        from harness.methods import Method

        class EpMethod(Method):
            """Declared through an entry point."""

            prefixes = {"teacher_offline": 1.0}

        class EpOther(Method):
            """Another one."""
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module_name
    sys.modules.pop(module_name, None)


def test_entry_point_discovery(monkeypatch, plugin_module):
    eps = [
        importlib.metadata.EntryPoint(name="ep_div", value=f"{plugin_module}:EpMethod", group="harness.methods"),
        # Another group: must not be loaded into the method registry.
        importlib.metadata.EntryPoint(name="ep_task", value=f"{plugin_module}:EpOther", group="harness.tasks"),
    ]
    asked = _fake_entry_points(monkeypatch, eps)
    reg = _fresh(group="harness.methods")
    assert reg.names() == ["ep_div"]
    assert asked == ["harness.methods"]
    cls = reg.get("ep_div")
    assert cls.__name__ == "EpMethod" and cls.__module__ == plugin_module
    assert cls.name == "ep_div"
    assert cls().prefix_weights() == {"teacher_offline": 1.0}
    # Discovery runs once: later lookups do not query entry points again.
    reg.get("ep_div")
    assert "ep_div" in reg
    assert asked == ["harness.methods"]
    # The global registry was not touched.
    assert "ep_div" not in METHODS._items


def test_entry_point_does_not_override_an_existing_registration(monkeypatch, plugin_module):
    class Builtin(Method):
        pass

    eps = [importlib.metadata.EntryPoint(name="same", value=f"{plugin_module}:EpMethod", group="harness.methods")]
    _fake_entry_points(monkeypatch, eps)
    reg = _fresh(group="harness.methods")
    reg.add("same", Builtin)  # e.g. a built-in that is also declared as an entry point
    assert reg.get("same") is Builtin


def test_broken_entry_point_warns_on_stderr_and_the_rest_still_loads(monkeypatch, capsys, plugin_module):
    missing_module = _unique("harness_no_such_module")
    eps = [
        importlib.metadata.EntryPoint(name="broken", value=f"{missing_module}:Nope", group="harness.methods"),
        importlib.metadata.EntryPoint(name="bad_attr", value=f"{plugin_module}:NoSuchClass",
                                      group="harness.methods"),
        importlib.metadata.EntryPoint(name="good", value=f"{plugin_module}:EpMethod", group="harness.methods"),
    ]
    _fake_entry_points(monkeypatch, eps)
    reg = _fresh(group="harness.methods")
    assert reg.names() == ["good"]
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2, captured.err
    assert lines[0].startswith("warning: could not load method plugin 'broken'")
    assert f"{missing_module}:Nope" in lines[0]
    assert lines[1].startswith("warning: could not load method plugin 'bad_attr'")
    # The broken one is simply unknown afterwards.
    with pytest.raises(UnknownNameError, match="known methods: good"):
        reg.get("broken")


def test_duplicate_entry_point_name_keeps_the_first(monkeypatch, plugin_module):
    """Two installed packages declaring one name: the first wins and nothing crashes."""
    eps = [
        importlib.metadata.EntryPoint(name="clash", value=f"{plugin_module}:EpMethod", group="harness.methods"),
        importlib.metadata.EntryPoint(name="clash", value=f"{plugin_module}:EpOther", group="harness.methods"),
    ]
    _fake_entry_points(monkeypatch, eps)
    reg = _fresh(group="harness.methods")
    assert reg.get("clash").__name__ == "EpMethod"


@pytest.mark.clean_registry
def test_installed_entry_points_declare_every_builtin():
    """pyproject's entry points name the same classes the decorators register."""
    reg = _fresh(group="harness.methods")
    assert reg.names() == BUILTIN_METHODS
    for name in BUILTIN_METHODS:
        assert reg.get(name) is METHODS.get(name)
    tasks = _fresh("task", "harness.tasks")
    assert tasks.names() == BUILTIN_TASKS
    for name in BUILTIN_TASKS:
        assert tasks.get(name) is TASKS.get(name)


# --------------------------------------------------------------------------- method declarations
class _Declared(Method):
    """A plugin method whose declaration a test sets."""

    def token_loss(self, student_logits, teacher_logits, tokens, source):
        return -student_logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _declared(name: str, **attributes) -> type:
    return type(name, (_Declared,), {"__doc__": "A test method.", **attributes})


def _reads_teacher(self, student_logits, teacher_logits, tokens, source):
    return (student_logits - teacher_logits).pow(2).mean(-1)


def _no_gradient(self, student_logits, teacher_logits, tokens, source):
    return student_logits.detach().logsumexp(-1)


def _reduced(self, student_logits, teacher_logits, tokens, source):
    return student_logits.logsumexp(-1).mean()


# id → (class attributes, a fragment of the one-line error); checked when the cell is configured
DECLARATIONS = {
    "unknown-source": ({"prefixes": {"ground_trut": 1.0}},
                       "method 'bad' declares the unknown prefix source 'ground_trut'; known sources: ground_truth, "
                       "teacher_offline, teacher_sample, student_sample, student_greedy"),
    "no-sources": ({"prefixes": {}}, "method 'bad' declares no prefix source with a weight > 0 (prefixes={})"),
    "all-zero": ({"prefixes": {"ground_truth": 0.0}}, "declares no prefix source with a weight > 0"),
    "negative": ({"prefixes": {"ground_truth": -1}},
                 "method 'bad' declares the weight -1 for prefix source 'ground_truth'; expected a finite number >= 0"),
    "nan": ({"prefixes": {"ground_truth": float("nan")}}, "declares the weight nan for prefix source 'ground_truth'"),
    "infinite": ({"prefixes": {"ground_truth": 1.0, "student_greedy": float("inf")}},
                 "declares the weight inf for prefix source 'student_greedy'"),
}
# … and before any data or model loads, in the process that trains
PROBES = {
    "reads-undeclared-teacher": ({"prefixes": {"ground_truth": 1.0}, "uses_teacher": False,
                                  "token_loss": _reads_teacher},
                                 "method 'bad': token_loss for 'ground_truth' reads the teacher's logits, but the method "
                                 "declares uses_teacher = False"),
    "no-gradient": ({"prefixes": {"ground_truth": 1.0}, "token_loss": _no_gradient},
                    "method 'bad': token_loss for 'ground_truth' has no gradient with respect to the student's logits"),
    "reduced": ({"prefixes": {"ground_truth": 1.0}, "token_loss": _reduced},
                "method 'bad': token_loss for 'ground_truth' returned a torch.float32 tensor of shape []"),
}


@pytest.mark.parametrize("case", list(DECLARATIONS))
def test_a_bad_declaration_is_one_line_when_the_cell_is_configured(case):
    from harness.config import resolve_config

    attributes, fragment = DECLARATIONS[case]
    with METHODS.temporarily("bad", _declared("Bad", **attributes)):
        with pytest.raises(HarnessError) as info:
            resolve_config("dart", "bad", "ci")
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)


@pytest.mark.parametrize("case", list(PROBES))
def test_a_token_loss_that_breaks_its_declaration_is_one_line_before_any_model_loads(case, tmp_path):
    from harness.config import resolve_config
    from harness.pipeline import Pipeline

    attributes, fragment = PROBES[case]
    with METHODS.temporarily("bad", _declared("Bad", **attributes)):
        cfg = resolve_config("dart", "bad", "ci", sets=[("results_dir", str(tmp_path / "results"))])
        with pytest.raises(HarnessError) as info:
            Pipeline(cfg)
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert not (tmp_path / "results").exists()


def test_every_builtin_method_passes_its_own_declaration_checks():
    for name in BUILTIN_METHODS:
        for task in BUILTIN_TASKS:
            method = METHODS.get(name).for_task(TASKS.get(task))
            method.check_declaration()
            method.check_token_loss()


def test_the_command_line_stops_a_bad_method_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """`harness run` on a plugin that maximises the divergence, and on one that reads an undeclared teacher."""
    from harness import cli

    plugin = tmp_path / "bad_methods.py"
    plugin.write_text(textwrap.dedent('''
        from harness import register_method
        from harness.methods.baselines import MLE

        @register_method("maximiser")
        class Maximiser(MLE):
            """Trains the student to maximise its divergence."""

            prefixes = {"ground_truth": -1}

        @register_method("peeker")
        class Peeker(MLE):
            """Says it does not use the teacher, reads its logits."""

            def token_loss(self, student_logits, teacher_logits, tokens, source):
                return (student_logits - teacher_logits).abs().sum(-1)
    '''))
    results = tmp_path / "results"
    # the plugin file registers its methods in this process: take them out again, so that no later test of the
    # same worker meets them among the built-in methods (a grid of "all" methods would fail on the maximiser)
    METHODS.names()   # the built-ins loaded first, so that the copy holds them
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))
    for method, fragment in (("maximiser", "declares the weight -1 for prefix source 'ground_truth'"),
                             ("peeker", "reads the teacher's logits, but the method declares uses_teacher = False")):
        monkeypatch.setattr(sys, "argv", ["harness", "run", "--plugins", str(plugin), "--method", method,
                                          "--profile", "ci", "--results-dir", str(results)])
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("harness: error: "), lines
        assert fragment in lines[0], lines[0]
        assert not results.exists()
