"""The reference bundle (harness.store.bundle, harness.grid.reference): packing a store, importing it with its
checksums verified, the stage-key check against this code's plan, and ``harness compare``'s cells.

All but the last test work on small synthetic stores (files of a few bytes, stage records and run manifests as
the store writes them; the stage keys of the runs that must plan are this code's own); the last one bundles the
session's ci grid (DART) and renders the report from the store and from the imported bundle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.store.bundle import (MANIFEST, PROVENANCE, build_bundle, import_bundle, read_manifest, stale_note)
from harness.store.io import STAGE_RECORD, checksums, write_json
from conftest import CI_GRID_SEEDS, CI_GRID_SET_ARGS
from test_cli_errors import run_main

KD_LABELS = ("method", "evaluation/kl")


def fake_stage(root: Path, stage: str, key: str, payload: bytes = b"weights") -> None:
    folder = root / "cache" / stage / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(payload)
    write_json(folder / STAGE_RECORD, {"stage": stage, "key": key, "checksums": checksums(folder)})


def fake_run(root: Path, method: str, seed: int, stages: dict[str, tuple[str, str]], *, task: str = "dart",
             parameters: dict | None = None, payload: bytes = b"metrics", run_id: str | None = None,
             score: float | None = None) -> str:
    """A run folder as :func:`harness.store.runs.write_run` lays it out, and the cache entries of its stages.
    ``score``: the method's own model scores this (BLEU) in metrics.parquet, with per-input scores in
    examples.parquet, so that the report's readers read it (else the files are a few bytes)."""
    run_id = run_id or f"{task}-{method}-ci-seed{seed}-{abs(hash((method, seed, task))) % 10**8:08d}"
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    if score is None:
        (folder / "metrics.parquet").write_bytes(payload)
        (folder / "examples.parquet").write_bytes(payload * 3)
    else:
        write_scores(folder, {"run_id": run_id, "task": task, "method": method, "profile": "ci", "seed": seed}, score)
    for label, (stage, key) in stages.items():
        if not (root / "cache" / stage / key).is_dir():
            fake_stage(root, stage, key, payload=f"{stage} {key}".encode())
    write_json(folder / "manifest.json", {
        "run_id": run_id, "config": {"task": task, "profile": "ci", "method": method, "seed": seed},
        "parameters": parameters or {}, "git": {"commit": "0123456789abcdef"}, "seeds": {"method": seed, "upstream": 42},
        "stages": {label: {"stage": stage, "key": key} for label, (stage, key) in stages.items()},
        "checksums": checksums(folder),
        **({} if score is None else {"task": TASK, "method": {"name": method, "params": {}}, "wall_seconds": 60.0,
                                     "data": {"identity": "d", "key": "k"}})})
    return run_id


INPUTS = 20
TASK = {"name": "dart", "architecture": "encoder-decoder", "metrics": ["bleu"], "lower_is_better": [],
        "selection_metric": "bleu"}


def write_scores(folder: Path, ident: dict, score: float) -> None:
    """metrics.parquet and examples.parquet of a run whose own model scores ``score`` (the mean of its inputs')."""
    import numpy as np
    import pandas as pd

    spread = np.random.default_rng(ident["seed"]).integers(-4, 5, INPUTS) / 4.0
    scores = score + spread - spread.mean()
    model = ident["method"]
    pd.DataFrame([{**ident, "model": model, "split": "test", "metric": "bleu", "value": float(scores.mean()),
                   "signature": "mean", "stage_key": f"{model}-{ident['seed']}", "variant": "",
                   "higher_is_better": True}]).to_parquet(folder / "metrics.parquet", index=False)
    pd.DataFrame({"example_id": [f"x{i}" for i in range(INPUTS)], "references": [["r"]] * INPUTS,
                  "hypothesis": ["h"] * INPUTS, "score_bleu": scores, "model": model}).assign(**ident).to_parquet(
        folder / "examples.parquet", index=False)
    pd.DataFrame(columns=["step", "epoch", "split", "name", "value"]).to_parquet(folder / "curves.parquet")


def planned(method: str, seed: int = 42, task: str = "dart") -> dict[str, tuple[str, str]]:
    """label → (stage, key) of this code's plan of the ci cell (nothing is loaded or trained)."""
    from harness.config import resolve_config
    from harness.pipeline.graph import plan_for

    plan = plan_for(resolve_config(task, method, "ci", seed, check=False))
    return {label: (plan[label].stage, plan[label].key) for label in plan.labels()}


def made_by_other_code(stages: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    return {label: (stage, "old" + key[3:]) for label, (stage, key) in stages.items()}


@pytest.fixture
def store(tmp_path):
    """DART at ci: a KL run at seeds 42 and 43, the pre-distill run at seed 43 (its own student) and at 42 (the
    shared one), with this code's stage keys."""
    root = tmp_path / "store"
    for seed in (42, 43):
        fake_run(root, "kl", seed, planned("kl", seed), parameters={"teacher_outputs_k": 0})
        fake_run(root, "predistill", seed, planned("predistill", seed), parameters={"teacher_outputs_k": 0})
    return root


def bundled_folders(manifest: dict) -> set[str]:
    return {"/".join(name.split("/")[:3 if name.startswith("cache/") else 2]) for name in manifest["files"]}


def test_a_bundle_holds_the_upstream_stages_and_every_run_but_no_kd_student(store, tmp_path):
    built = build_bundle(store, tmp_path / "ref", code={"commit": "feed", "dirty": False})
    folders = bundled_folders(built.manifest)
    kl, own43 = planned("kl", 42), planned("predistill", 43)
    for label in ("tokenizer", "teacher", "predistill", "evaluation/teacher", "evaluation/predistill"):
        stage, key = kl[label]
        assert f"cache/{stage}/{key}" in folders, label
    for label in KD_LABELS:   # the KD student and its evaluation: in the run record, not shipped as a stage
        stage, key = kl[label]
        assert f"cache/{stage}/{key}" not in folders, label
    assert f"cache/student/{own43['predistill'][1]}" not in folders   # the seed-43 pre-distill run's own student
    assert sum(f.startswith("runs/") for f in folders) == 4
    (twin,) = built.manifest["twins"]
    assert twin["seeds"] == [42, 43] and twin["settings"] == {"teacher_outputs_k": 0}
    assert built.manifest["commit"] == "0123456789abcdef" and built.manifest["packed_by"]["commit"] == "feed"
    stages = [f"dart-ci.{s['stage']}-{s['key']}.tar.xz" for s in built.manifest["twins"][0]["stages"]]
    assert [p["name"] for a in built.manifest["archives"] for p in a["parts"]] == [*stages, "dart-ci.runs.tar.xz"]
    for name, entry in built.manifest["files"].items():
        assert entry["bytes"] == (store / name).stat().st_size or name.endswith("/manifest.json")


def test_only_the_teacher_output_stores_of_the_shipped_k_are_packed(tmp_path):
    from harness.store.bundle import SHIPPED_STORE_K

    root = tmp_path / "store"
    for k in (SHIPPED_STORE_K, 8, 100000):
        fake_run(root, "js", 42, {"teacher": ("teacher", "t1"), "teacher_outputs/teacher": ("teacher_outputs", f"s{k}")},
                 parameters={"teacher_outputs_k": k}, run_id=f"dart-js-k{k}")
    shipped = bundled_folders(build_bundle(root, tmp_path / "ref", code={}).manifest)
    assert {f for f in shipped if f.startswith("cache/teacher_outputs/")} == {f"cache/teacher_outputs/s{SHIPPED_STORE_K}"}
    assert {"runs/dart-js-k8", "runs/dart-js-k100000", "cache/teacher/t1"} <= shipped   # their records all the same
    every = build_bundle(root, tmp_path / "every", store_k=None, code={})
    assert len({f for f in bundled_folders(every.manifest) if f.startswith("cache/teacher_outputs/")}) == 3
    assert every.manifest["store_k"] is None


def test_a_new_method_starts_at_the_seeds_every_full_baseline_row_shares():
    from harness.grid.reference import seeds_for, shared_seeds

    def run(method, seed, **parameters):
        return {"method": method, "seed": seed, "parameters": parameters}

    runs = ([run("mle", s) for s in range(42, 47)] + [run("kl", s, **{"method.beta": 1}) for s in (42, 43, 44)]
            + [run("akl", 42)] + [run("kl", 47, **{"student.encoder_layers": 1}) for _ in (0,)]
            + [run("kl", s, upstream_seed=43) for s in (42, 43, 48)])
    twin = {"settings": {}, "runs": runs, "seeds": sorted({r["seed"] for r in runs})}
    assert shared_seeds(twin) == [42, 43, 44]          # not mle's grown 45, 46; not akl's one seed alone
    assert seeds_for(twin, (7,)) == [7] and seeds_for(twin, None) == [42, 43, 44]
    one_seed = {"settings": {}, "runs": [run("mle", 42), run("kl", 43)], "seeds": [42, 43]}
    assert shared_seeds(one_seed) == [42, 43]           # no row of three seeds: every seed of the twin
    # KL at β = 2 on seeds 45, 46 and at β = 1 on 47: two rows under three seeds, not one full row sharing no seed
    swept = {"settings": {}, "runs": [run("mle", s) for s in (42, 43, 44)] + [run("kl", 45, **{"method.beta": 2}),
             run("kl", 46, **{"method.beta": 2}), run("kl", 47, **{"method.beta": 1})], "seeds": list(range(42, 48))}
    assert shared_seeds(swept) == [42, 43, 44]


def test_run_manifests_are_packed_without_the_machines_paths(tmp_path):
    from harness.store.runs import verify_run

    root = tmp_path / "store"
    run_id = fake_run(root, "kl", 42, {"teacher": ("teacher", "t1")})
    manifest_file = root / "runs" / run_id / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest |= {"command": ["/somewhere/bin/harness", "grid", "--results-dir", str(root)],
                 "config": {**manifest["config"], "results_dir": str(root)}}
    manifest["stages"]["teacher"]["path"] = str(root / "cache" / "teacher" / "t1")
    manifest_file.write_text(json.dumps(manifest))
    build_bundle(root, tmp_path / "ref", code={})
    import_bundle(tmp_path / "ref", tmp_path / "imported")
    packed = (tmp_path / "imported" / "runs" / run_id / "manifest.json").read_text()
    assert str(tmp_path) not in packed and "/somewhere" not in packed
    packed = json.loads(packed)
    assert packed["command"] == ["harness", "grid", "--results-dir", "results"]
    assert packed["stages"]["teacher"]["path"] == "results/cache/teacher/t1" and packed["config"]["results_dir"] == "results"
    assert verify_run(tmp_path / "imported" / "runs" / run_id) is None


def test_a_twins_settings_are_those_every_run_shares_but_method_parameters():
    from harness.store.bundle import Twin

    runs = [{"parameters": {"teacher_outputs_k": 8, "method.beta": 0.5, "data.seed": 1}},
            {"parameters": {"teacher_outputs_k": 8, "method.beta": 0.5}}]
    assert Twin("dart", "ci", runs=runs).settings() == {"teacher_outputs_k": 8}


def test_the_same_store_gives_the_same_bytes(store, tmp_path):
    one = build_bundle(store, tmp_path / "one", code={})
    two = build_bundle(store, tmp_path / "two", code={})
    for name in one.sizes:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert (tmp_path / "one" / MANIFEST).read_bytes() == (tmp_path / "two" / MANIFEST).read_bytes()


def test_packed_again_after_more_runs_the_stages_archive_keeps_its_bytes(store, tmp_path):
    """A store grows run by run: packed again, the archive of run records changes and a new stage's archive joins;
    every other stage's archive keeps its bytes, so a repository that commits the bundle as the grid goes on
    stores each stage (the teacher's weights) once."""
    before = build_bundle(store, tmp_path / "one", code={})
    fake_run(store, "mle", 42, planned("mle", 42), parameters={"teacher_outputs_k": 0})
    fake_run(store, "js", 42, planned("js", 42), parameters={"teacher_outputs_k": 0})     # a new upstream stage
    after = build_bundle(store, tmp_path / "two", code={})
    old, new = set(before.sizes), set(after.sizes)
    assert old < new and [n for n in new - old] == ["dart-ci.pseudo_labels-" + planned("js", 42)["pseudo_labels"][1]
                                                    + ".tar.xz"]
    changed = [n for n in old if (tmp_path / "one" / n).read_bytes() != (tmp_path / "two" / n).read_bytes()]
    assert changed == ["dart-ci.runs.tar.xz"]
    assert len(after.manifest["twins"][0]["runs"]) == len(before.manifest["twins"][0]["runs"]) + 2


def test_parts_are_cut_at_the_limit_and_import_restores_every_file(tmp_path):
    root = tmp_path / "store"
    fake_run(root, "kl", 42, {"teacher": ("teacher", "t1")}, payload=os.urandom(30_000))   # incompressible
    built = build_bundle(root, tmp_path / "ref", part_bytes=10_000, code={})
    (runs,) = [a for a in built.manifest["archives"] if a["name"] == "dart-ci.runs.tar.xz"]
    parts = runs["parts"]
    assert len(parts) >= 3 and all(p["bytes"] <= 10_000 for p in parts)
    assert [p["name"] for p in parts][:2] == ["dart-ci.runs.tar.xz.000", "dart-ci.runs.tar.xz.001"]
    done = import_bundle(tmp_path / "ref", tmp_path / "imported")
    assert sorted(done.added) == ["cache/teacher/t1", f"runs/{next((root / 'runs').iterdir()).name}"]
    for name in built.manifest["files"]:
        assert (tmp_path / "imported" / name).read_bytes() == (root / name).read_bytes()
    assert json.loads((tmp_path / "imported" / PROVENANCE).read_text())["commits"] == ["0123456789abcdef"]
    assert not any((tmp_path / "imported" / ".tmp").iterdir())
    assert import_bundle(tmp_path / "ref", tmp_path / "imported").kept == sorted(done.added)   # again: kept


def test_a_bundle_over_the_limit_is_refused_naming_its_archive(store, tmp_path):
    with pytest.raises(HarnessError, match=r"over the 0\.0 MB limit: dart-ci 0\.0 MB .*largest before compression"):
        build_bundle(store, tmp_path / "ref", limit_bytes=100, code={})
    assert not (tmp_path / "ref").exists()


def test_a_corrupted_part_is_named_and_nothing_is_written(store, tmp_path):
    build_bundle(store, tmp_path / "ref", code={})
    part = tmp_path / "ref" / "dart-ci.runs.tar.xz"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(HarnessError, match=rf"^{part}: does not match the checksum in bundle.json"):
        import_bundle(tmp_path / "ref", tmp_path / "imported")
    assert not (tmp_path / "imported").exists()


def test_a_file_that_does_not_match_its_checksum_is_named_and_nothing_is_written(store, tmp_path):
    built = build_bundle(store, tmp_path / "ref", code={})
    manifest = json.loads((tmp_path / "ref" / MANIFEST).read_text())
    victim = sorted(built.manifest["files"])[-1]
    manifest["files"][victim]["sha256"] = "0" * 64        # as if the file had changed after packing
    (tmp_path / "ref" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(HarnessError, match=rf"^{victim} \(in .*\): does not match its checksum"):
        import_bundle(tmp_path / "ref", tmp_path / "imported")
    assert not (tmp_path / "imported" / "runs").exists() and not (tmp_path / "imported" / "cache").exists()


def test_a_store_with_a_changed_stage_is_not_bundled(store, tmp_path):
    stage, key = planned("kl", 42)["teacher"]
    (store / "cache" / stage / key / "model.bin").write_bytes(b"changed")
    with pytest.raises(HarnessError, match=rf"cache/teacher/{key}: does not match the checksums recorded"):
        build_bundle(store, tmp_path / "ref", code={})
    assert not (tmp_path / "ref").exists()


def test_a_bundle_of_a_newer_format_is_refused(tmp_path):
    write_json(tmp_path / MANIFEST, {"format": "harness-reference-bundle", "version": 99})
    with pytest.raises(HarnessError, match="format version 99, newer than this code reads"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("damage", [[], {"format": "harness-reference-bundle", "version": 1, "twins": []}])
def test_a_damaged_manifest_is_one_line_not_a_traceback(tmp_path, damage):
    (tmp_path / MANIFEST).write_text(json.dumps(damage))
    with pytest.raises(HarnessError, match="bundle.json: (not a reference bundle's manifest|damaged .*archives)"):
        read_manifest(tmp_path)


def test_the_stale_check_finds_the_runs_this_code_would_make_otherwise(store, tmp_path):
    from harness.grid.reference import stale_message, stale_runs

    fake_run(store, "kl", 44, made_by_other_code(planned("kl", 44)))
    manifest = build_bundle(store, tmp_path / "ref", code={}).manifest
    stale = stale_runs(manifest)
    assert [(s.method, s.seed) for s in stale] == [("kl", 44)]
    assert "teacher" in stale[0].stages and "tokenizer" in stale[0].stages
    line = stale_message("ref", manifest, stale)
    assert "\n" not in line and "1 of 5 runs differ" in line and "harness bundle build --results-dir R --out ref" in line


def stale_bundle(tmp_path: Path) -> Path:
    """A bundle at ``tmp_path/ref`` of one KL run made by other stage code; returns the results folder to compare in."""
    root = tmp_path / "store"
    fake_run(root, "kl", 42, made_by_other_code(planned("kl", 42)))
    build_bundle(root, tmp_path / "ref", code={})
    return tmp_path / "results"


def test_the_ci_check_warns_on_a_stale_bundle_and_passes_without_one(store, tmp_path, monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, ["bundle", "check", str(tmp_path / "none")])
    assert code == 0 and "no reference bundle" in out
    build_bundle(store, tmp_path / "ref", code={})
    code, out, _ = run_main(monkeypatch, capsys, ["bundle", "check", str(tmp_path / "ref")])
    assert code == 0 and "are this code's" in out
    fake_run(store, "kl", 44, made_by_other_code(planned("kl", 44)))
    build_bundle(store, tmp_path / "ref", code={})
    code, _, err = run_main(monkeypatch, capsys, ["bundle", "check", str(tmp_path / "ref")])
    assert code == 0 and err.startswith("warning: reference bundle") and "1 of 5 runs differ" in err
    code, _, _ = run_main(monkeypatch, capsys, ["bundle", "check", str(tmp_path / "ref"), "--strict"])
    assert code == 1


def test_compare_refuses_a_stale_bundle_in_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    results = stale_bundle(tmp_path)
    code, _, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                 "--results-dir", str(results), "--dry-run"])
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"harness: error: reference bundle {tmp_path / 'ref'} (commit 0123456789ab) does not match")
    assert "harness bundle build" in err and "--accept-stale-bundle" in err
    assert not results.exists()


def test_compare_plans_only_the_new_method_on_the_shipped_stages(store, tmp_path, monkeypatch, capsys):
    """The dry run: every upstream stage of the new method's cells is in the bundle, at both of the baselines'
    seeds; only its own student and evaluation would be built."""
    build_bundle(store, tmp_path / "ref", code={})
    code, out, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                   "--results-dir", str(tmp_path / "results"), "--dry-run"])
    assert code == 0, err
    assert out.count(" to run\n") == 2 and "seed42" in out and "seed43" in out
    assert out.count("reuse  tokenizer, teacher, predistill, evaluation/teacher, evaluation/predistill") == 2
    assert out.count("build  rkl, evaluation/rkl") == 2 and "not in the bundle" not in err
    assert stale_note(tmp_path / "results") is None


def test_an_accepted_stale_bundle_lends_its_stages_and_the_report_says_so(tmp_path, monkeypatch, capsys):
    from harness.reporting.build import Report, _add_table
    from harness.reporting.render import Table

    results = stale_bundle(tmp_path)
    code, out, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                   "--results-dir", str(results), "--accept-stale-bundle", "--dry-run"])
    assert code == 0, err
    assert "made by other stage code" in err
    assert "reuse  tokenizer, teacher, predistill, evaluation/teacher, evaluation/predistill" in out
    teacher = planned("rkl", 42)["teacher"][1]
    record = json.loads((results / "cache" / "teacher" / teacher / STAGE_RECORD).read_text())
    shipped = "old" + teacher[3:]   # (the teacher's key is the same in every method's cell)
    assert record["key"] == teacher and record["rekeyed_from"]["key"] == shipped
    # the report counts the shipped teacher and its copy under this code's key as one model
    import pandas as pd

    from harness.reporting.load import _aliased
    from harness.store.bundle import stage_aliases

    assert stage_aliases(results)[teacher] == shipped
    frame = _aliased(pd.DataFrame({"stage_key": [teacher, shipped, "other"]}), results)
    assert list(frame["stage_key"]) == [shipped, shipped, "other"]
    note = stale_note(results)
    assert note.startswith("Baselines from the reference bundle made by commit 0123456789ab")
    report = Report(tmp_path / "out", note=note)
    table = Table("t", "T", ["a"], [], caption="Test split.")
    _add_table(report, table)
    assert (tmp_path / "out" / "tables" / "t.md").read_text().endswith(f"*Test split. {note}.*\n")


def test_compare_checks_the_reports_folder_before_unpacking_anything(store, tmp_path, monkeypatch, capsys):
    build_bundle(store, tmp_path / "ref", code={})
    (tmp_path / "file").write_text("")
    results = tmp_path / "results"
    code, _, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                 "--results-dir", str(results), "--out", str(tmp_path / "file"),
                                                 "--dry-run"])
    assert code == 2 and err.startswith("harness: error: --out") and err.count("\n") == 1, err
    assert not results.exists()


def test_compare_runs_the_new_method_at_every_teacher_of_the_baselines(tmp_path):
    """Baselines at two teachers (the default upstream seed and 43): the new method's cells are at both, so that its
    rows pair with theirs teacher by teacher (one teacher alone would be compared against the others' teachers)."""
    from harness.grid.reference import compare_cells

    root = tmp_path / "store"
    for seed in (42, 43):   # (the stage keys do not matter here: run ids by method and seed)
        fake_run(root, "kl", seed, {"teacher": ("teacher", "t42")}, parameters={"teacher_outputs_k": 0})
        fake_run(root, "mle", seed, {"teacher": ("teacher", "t43")},
                 parameters={"teacher_outputs_k": 0, "upstream_seed": 43})
    manifest = build_bundle(root, tmp_path / "ref", code={}).manifest
    cells = compare_cells(manifest, "rkl", tmp_path / "results")
    assert sorted((c.seed, c.config().upstream_seed) for c in cells) == [(42, 42), (42, 43), (43, 42), (43, 43)]
    assert {c.config().teacher_outputs_k for c in cells} == {0}
    # a baseline's runs there: named as such
    with pytest.raises(HarnessError, match=r"^--teachers 44: the bundle's dart kl runs were made at upstream seeds 42 "):
        compare_cells(manifest, "kl", tmp_path / "results", teachers=(44,))
    # --teachers: only the cells at the chosen teachers (still labelled by teacher, to pair with theirs)
    cells = compare_cells(manifest, "rkl", tmp_path / "results", teachers=(43,))
    assert sorted((c.seed, c.config().upstream_seed) for c in cells) == [(42, 43), (43, 43)]
    assert {c.axes for c in cells} == {(("upstream_seed", 43),)}
    with pytest.raises(HarnessError, match=r"^--teachers 44: the bundle's dart baselines were made at upstream "
                                           r"seeds 42, 43 \(choose among them, or leave dart out with --tasks\)$"):
        compare_cells(manifest, "rkl", tmp_path / "results", teachers=(42, 44))


def test_a_bundle_of_one_teachers_stages_ships_every_runs_records_and_compares_at_that_teacher(tmp_path):
    """Three teachers and their pre-distilled students on four twins do not fit the size limit; packed with
    --teachers 42, the bundle ships teacher 42's upstream stages and the records of the runs at every teacher, and
    the new method's cells are at 42 unless told otherwise — never at a teacher whose stages are not shipped (its
    cells would train their own)."""
    from harness.grid.reference import compare_cells, grown_cells

    root = tmp_path / "store"
    for seed in (42, 43):
        for teacher in (42, 43):
            parameters = {"teacher_outputs_k": 0, **({"upstream_seed": 43} if teacher == 43 else {})}
            fake_run(root, "kl", seed, {"teacher": ("teacher", f"t{teacher}"), "method": ("student", f"kl{seed}")},
                     parameters=parameters, run_id=real_run_id("kl", seed, parameters))
    manifest = build_bundle(root, tmp_path / "ref", code={}, teachers=(42,)).manifest
    assert "cache/teacher/t42" in bundled_folders(manifest) and "cache/teacher/t43" not in bundled_folders(manifest)
    assert len([f for f in bundled_folders(manifest) if f.startswith("runs/")]) == 4
    assert manifest["twins"][0]["teachers"] == [42]
    everything = build_bundle(root, tmp_path / "all", code={}).manifest
    assert everything["twins"][0]["teachers"] == [42, 43]

    cells = compare_cells(manifest, "rkl", tmp_path / "results")
    assert sorted((c.seed, c.config().upstream_seed) for c in cells) == [(42, 42), (43, 42)]
    assert len(compare_cells(everything, "rkl", tmp_path / "results")) == 4
    with pytest.raises(HarnessError, match=r"^--teachers 43: the bundle ships the upstream stages of dart's "
                                           r"teachers 42 only \(the runs at the others are records\)"):
        compare_cells(manifest, "rkl", tmp_path / "results", teachers=(43,))
    # the baselines' runs at the unshipped teacher are neither grown nor an error
    grown = grown_cells(manifest, ["rkl", "kl"], tmp_path / "results", [42, 43])
    assert {c.config().upstream_seed for c in grown} == {42}
    with pytest.raises(HarnessError, match=r"^--teachers 44: no run of dart-ci was made at these teacher seeds"):
        build_bundle(root, tmp_path / "none", code={}, teachers=(44,))


def test_runs_of_released_text_ship_as_records_of_a_twin_of_their_own(store, tmp_path):
    """The paper's rows on the real DART file: their stage keys hold the digests of files the repository does not
    ship (here: files absent), so they are records for the report — not stages, not checked against this code's
    plan, never compared on — beside the embedded twin, which stays what it was."""
    from harness.grid.reference import compare_cells, stale_runs

    real = {"teacher_outputs_k": 0, "data.source": "local", "data.data_dir": str(tmp_path / "absent")}
    fake_run(store, "kl", 42, {"teacher": ("teacher", "real-teacher"), "method": ("student", "real-kl")},
             parameters=real, run_id="dart-kl-ci-seed42-real")
    manifest = build_bundle(store, tmp_path / "ref", code={}).manifest
    assert [(t["task"], t["source"], len(t["runs"])) for t in manifest["twins"]] == [("dart", "embedded", 4),
                                                                                     ("dart", "local", 1)]
    assert manifest["twins"][1]["stages"] == [] and manifest["twins"][1]["archives"] == ["dart-ci-local.runs.tar.xz"]
    assert "runs/dart-kl-ci-seed42-real" in bundled_folders(manifest)
    assert "cache/teacher/real-teacher" not in bundled_folders(manifest)
    assert stale_runs(manifest) == []
    assert {c.config().data.source for c in compare_cells(manifest, "rkl", tmp_path / "results")} == {"embedded"}
    import_bundle(tmp_path / "ref", tmp_path / "results")
    assert (tmp_path / "results" / "runs" / "dart-kl-ci-seed42-real" / "manifest.json").is_file()


def test_the_design_records_of_the_bundled_runs_ship_and_import(store, tmp_path):
    """A sequential grid's design record places runs in its seed order; the report reads it to judge the grown rows,
    so a bundle of those runs ships it (and not one that places none of them), and the import puts it back."""
    runs = sorted(p.name for p in (store / "runs").iterdir())
    (store / "grids").mkdir()
    write_json(store / "grids" / "table2-ci-0001.until-decided.json", {"families": {"dart · kl": {runs[0]: 0}}})
    write_json(store / "grids" / "other-ci-0002.until-decided.json", {"families": {"xsum · kl": {"elsewhere": 0}}})
    write_json(store / "grids" / "table2-ci-0001.json", {"cells": []})   # a grid's run record: not a design
    built = build_bundle(store, tmp_path / "ref", code={})
    assert [n for n in built.manifest["files"] if n.startswith("grids/")] == ["grids/table2-ci-0001.until-decided.json"]
    assert "designs.tar.xz" in built.sizes
    done = import_bundle(tmp_path / "ref", tmp_path / "results")
    assert "grids/table2-ci-0001.until-decided.json" in done.added
    copied = tmp_path / "results" / "grids" / "table2-ci-0001.until-decided.json"
    assert copied.read_bytes() == (store / "grids" / "table2-ci-0001.until-decided.json").read_bytes()
    again = import_bundle(tmp_path / "ref", tmp_path / "results")
    assert "grids/table2-ci-0001.until-decided.json" in again.kept
    other = tmp_path / "other"
    write_json(other / "grids" / "table2-ci-0001.until-decided.json", {"families": {}})
    with pytest.raises(HarnessError, match="another design record under the name of the bundle's"):
        import_bundle(tmp_path / "ref", other)
    assert not (other / "runs").exists()   # nothing put in place


def test_the_stores_sentence_statistics_ship_and_the_imported_files_are_read_not_computed(store, tmp_path):
    """A report keeps sacreBLEU's sentence statistics in cache/statistics; a bundle ships them (a half-written file
    left out) and the import puts each file back, so that the report of the imported bundle extracts nothing."""
    from sacrebleu.metrics import TER

    from harness.reporting import stats

    hypotheses, references = ["a b c", "d e"], [["a b d", "d e"]]
    ter = TER()
    ter.corpus_score(hypotheses, references)
    signature = str(ter.get_signature())
    with stats.statistics_kept_in(store):
        computed = stats.sacrebleu_metric("ter", signature)._extract_corpus_statistics(
            hypotheses, references)
    folder = store / "cache" / "statistics"
    kept = sorted(folder.rglob("*.json"))
    assert len(kept) == 1
    (kept[0].parent / "half.json.tmp").write_text("[")
    built = build_bundle(store, tmp_path / "ref", code={})
    shipped = [n for n in built.manifest["files"] if n.startswith("cache/statistics/")]
    assert shipped == [kept[0].relative_to(store).as_posix()] and "statistics.tar.xz" in built.sizes
    done = import_bundle(tmp_path / "ref", tmp_path / "results")
    assert shipped[0] in done.added
    assert (tmp_path / "results" / shipped[0]).read_bytes() == kept[0].read_bytes()
    assert import_bundle(tmp_path / "ref", tmp_path / "results").kept.count(shipped[0]) == 1

    stats._STATISTICS.clear()   # a fresh process: memory holds nothing
    calls = []
    original = TER._extract_corpus_statistics
    TER._extract_corpus_statistics = lambda self, *a: calls.append(a) or original(self, *a)
    try:
        with stats.statistics_kept_in(tmp_path / "results"):
            again = stats.sacrebleu_metric("ter", signature)._extract_corpus_statistics(
                hypotheses, references)
    finally:
        TER._extract_corpus_statistics = original
    assert again == computed and calls == []


def test_compare_teachers_of_baselines_whose_teacher_is_their_method_seed(tmp_path):
    """upstream_seed None: each method seed trains its own teacher, so --teachers 43 is the cell at seed 43."""
    from harness.grid.reference import compare_cells

    root = tmp_path / "store"
    for seed in (42, 43):
        fake_run(root, "kl", seed, {"teacher": ("teacher", f"t{seed}")},
                 parameters={"teacher_outputs_k": 0, "upstream_seed": None})
    manifest = build_bundle(root, tmp_path / "ref", code={}).manifest
    cells = compare_cells(manifest, "rkl", tmp_path / "results", teachers=(43,))
    assert [(c.seed, c.config().upstream_seed) for c in cells] == [(43, None)]
    # every seed's teacher ships: a seed beyond them trains its own teacher, as each baseline seed did
    more = compare_cells(manifest, "rkl", tmp_path / "results", seeds=(42, 43, 44))
    assert sorted(c.seed for c in more) == [42, 43, 44]
    with pytest.raises(HarnessError, match=r"^--teachers 7: the bundle's dart baselines were made at upstream seeds "
                                           r"42, 43 "):
        compare_cells(manifest, "rkl", tmp_path / "results", teachers=(7,))


def test_an_accepted_stale_bundle_lends_each_cell_its_own_teachers_stages(tmp_path):
    """Two teachers shipped under old keys: the new method's cells at upstream seed 43 train on the teacher of 43,
    not on the first teacher key the bundle lists."""
    from harness.grid.reference import compare_cells, rekey_upstream

    results = tmp_path / "results"
    for key in ("old42", "old43"):
        fake_stage(results, "teacher", key)
    twin = {"task": "dart", "profile": "ci", "seeds": [42], "settings": {},
            "stages": [{"label": "teacher", "stage": "teacher", "key": k} for k in ("old42", "old43")],
            "runs": [{"run_id": "a", "method": "kl", "seed": 42, "parameters": {}, "stages": {"teacher": "old42"}},
                     {"run_id": "b", "method": "kl", "seed": 42, "parameters": {"upstream_seed": 43},
                      "stages": {"teacher": "old43"}}]}
    manifest = {"twins": [twin], "commits": ["0123456789abcdef"]}
    cells = compare_cells(manifest, "rkl", results)
    made = rekey_upstream(manifest, cells, results)
    lent = {c.config().upstream_seed: made[planned_key(c, "teacher")] for c in cells}
    assert lent == {42: "old42", 43: "old43"}


def planned_key(cell, label: str) -> str:
    from harness.pipeline.graph import plan_for

    return plan_for(cell.config())[label].key


def test_compare_names_an_unknown_method_or_task(store, tmp_path, monkeypatch, capsys):
    build_bundle(store, tmp_path / "ref", code={})
    args = ["compare", "--bundle", str(tmp_path / "ref"), "--results-dir", str(tmp_path / "r"), "--dry-run"]
    code, _, err = run_main(monkeypatch, capsys, args + ["--method", "nope"])
    assert code == 2 and "unknown method 'nope'" in err
    code, _, err = run_main(monkeypatch, capsys, args + ["--method", "rkl", "--tasks", "xsum"])
    assert code == 2 and "unknown bundled task 'xsum'; known bundled tasks: dart" in err
    for teachers, message in (("x", "--teachers x: give upstream seeds (integers), e.g. --teachers 42"),
                              ("44", "--teachers 44: the bundle's dart baselines were made at upstream seeds 42 "
                                     "(choose among them, or leave dart out with --tasks)")):
        code, _, err = run_main(monkeypatch, capsys, args + ["--method", "rkl", "--teachers", teachers])
        assert code == 2 and err == f"harness: error: {message}\n", err
    assert not (tmp_path / "r").exists()   # nothing unpacked


# --------------------------------------------------------------------------- compare --until-decided

def real_run_id(method: str, seed: int, parameters: dict | None = None) -> str:
    """The run id this code gives the ci cell (what a shipped run made by this code is called)."""
    from harness.config import resolve_config
    from harness.pipeline.graph import run_id

    return run_id(resolve_config("dart", method, "ci", seed, overrides=dict(parameters or {}), check=False))


def shipped_run(root: Path, method: str, seed: int, score: float | None = None, parameters: dict | None = None):
    parameters = {"teacher_outputs_k": 0, **(parameters or {})}
    return fake_run(root, method, seed, planned(method, seed), parameters=parameters, score=score,
                    run_id=real_run_id(method, seed, parameters))


@pytest.mark.parametrize("args, message", [
    (["--until-decided", "rkl>kll"], "unknown method 'kll' (did you mean 'kl'?); known methods: js, kl, predistill, rkl"),
    (["--until-decided", "kl>js"], "--until-decided kl>js: compares two baselines"),
    (["--until-decided", "rkl>predistill"], "--until-decided rkl>predistill: predistill cannot be grown by rounds"),
    (["--until-decided", "rkl>kl", "--seeds", "42,43"], "the first look needs at least 3 seeds per cell"),
    (["--max-seeds", "5"], "--max-seeds: only with --until-decided"),
    (["--margin", "0.5", "--max-minutes", "3"], "--max-minutes, --margin: only with --until-decided"),
])
def test_compare_until_decided_errors_are_one_line_before_any_work(store, tmp_path, monkeypatch, capsys, args,
                                                                   message):
    fake_run(store, "js", 42, planned("js", 42), parameters={"teacher_outputs_k": 0})   # a second KD baseline
    build_bundle(store, tmp_path / "ref", code={})
    results = tmp_path / "results"
    code, _, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                 "--results-dir", str(results), "--seeds", "42,43,44", *args])
    assert code == 2 and err.count("\n") == 1 and err.startswith("harness: error: ") and message in err, err
    assert not results.exists()


def test_compare_until_decided_refuses_a_stale_bundle_even_accepted(tmp_path, monkeypatch, capsys):
    """Its added baseline seeds would be trained by this code's stages beside shipped runs of other code."""
    results = stale_bundle(tmp_path)
    code, _, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                 "--results-dir", str(results), "--seeds", "42,43,44",
                                                 "--until-decided", "rkl>kl", "--accept-stale-bundle"])
    assert code == 2 and err.count("\n") == 1, err
    assert "harness bundle build" in err and "drop --until-decided and pass --accept-stale-bundle" in err
    assert not results.exists()


def test_compare_until_decided_needs_one_seed_order_on_every_twin(tmp_path, monkeypatch, capsys):
    root = tmp_path / "store"
    for task, seeds in (("dart", (42, 43, 44)), ("xsum", (42, 43, 44, 45))):
        for seed in seeds:
            fake_run(root, "kl", seed, planned("kl", seed, task), task=task)
    build_bundle(root, tmp_path / "ref", code={})
    args = ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"), "--results-dir", str(tmp_path / "r"),
            "--until-decided", "rkl>kl", "--dry-run"]
    code, _, err = run_main(monkeypatch, capsys, args)
    assert code == 2 and err.count("\n") == 1, err
    assert "different seeds (dart-ci: 42, 43, 44; xsum-ci: 42, 43, 44, 45)" in err and "give --seeds" in err
    assert not (tmp_path / "r").exists()


def test_the_grown_cells_of_a_baseline_are_its_shipped_runs(tmp_path):
    """Baselines at two teachers: the grown cells of KL at the bundle's seeds are the bundle's KL runs (same run
    ids: nothing shipped is trained again), at the seeds after them new ones at the same settings; the new method's
    and KL's rows pair teacher by teacher."""
    from harness.grid.reference import compare_cells, grown_cells
    from harness.grid.until_decided import pairings
    from harness.reporting.sequential import Comparison, seed_order

    root = tmp_path / "store"
    shipped = {(seed, teacher): shipped_run(root, "kl", seed, parameters={"upstream_seed": 43} if teacher else {})
               for seed in (42, 43) for teacher in (None, 43)}
    manifest = build_bundle(root, tmp_path / "ref", code={}).manifest
    order = seed_order([42, 43], 4)
    grown = grown_cells(manifest, ["rkl", "kl"], tmp_path / "results", order)
    kl = {(c.seed, c.config().upstream_seed): c for c in grown if c.method == "kl"}
    assert sorted(kl) == sorted((s, t) for s in order for t in (42, 43))
    assert {key: kl[key[0], key[1] or 42].run_id for key in shipped} == shipped
    mine = [c for c in grown if c.method == "rkl"]
    assert len(mine) == 8 and {c.run_id for c in compare_cells(manifest, "rkl", tmp_path / "results")} <= \
        {c.run_id for c in mine}     # the first look is part of the design's cells
    pairs = pairings(grown, [Comparison("rkl", ">", "kl")])
    assert [(p.group, p.a, p.b) for p in pairs] == [
        ("dart · upstream_seed=42", "dart · rkl · upstream_seed=42", "dart · kl · upstream_seed=42"),
        ("dart · upstream_seed=43", "dart · rkl · upstream_seed=43", "dart · kl · upstream_seed=43")]
    # at one chosen teacher: both rows there only, KL's shipped runs at it kept
    one = grown_cells(manifest, ["rkl", "kl"], tmp_path / "results", order, teachers=(43,))
    assert {c.config().upstream_seed for c in one} == {43} and len(one) == 2 * len(order)
    assert {c.run_id for c in one if c.method == "kl" and c.seed in (42, 43)} == \
        {shipped[seed, 43] for seed in (42, 43)}


def test_a_baseline_swept_in_the_bundle_is_not_grown(tmp_path):
    """JS shipped at two betas: its runs are two rows, not one to add seeds to; said in one line, not retrained."""
    from harness.grid.reference import grown_cells

    root = tmp_path / "store"
    for beta in (0.5, 0.9):
        shipped_run(root, "js", 42, parameters={"method.beta": beta})
    manifest = build_bundle(root, tmp_path / "ref", code={}).manifest
    with pytest.raises(HarnessError, match=r"the bundle's js runs on dart differ in more than their seed and teacher"):
        grown_cells(manifest, ["rkl", "js"], tmp_path / "results", [42, 43, 44])


def test_compare_until_decided_dry_run_plans_the_first_look_and_names_the_next_seeds(tmp_path, monkeypatch,
                                                                                     capsys):
    """KL shipped at three seeds, the new method's (RKL's) first look already run beside it, the two rows close:
    the dry run lists the first look's cells (done) and says the comparison is undecided and which seeds the round
    would add to both rows (45 and 46: looks at 3 and 5 seeds); the budget counts the minutes of the runs made
    here (RKL's three, a minute each), not the shipped ones; it writes no design record."""
    root, results = tmp_path / "store", tmp_path / "results"
    for seed, score in zip((42, 43, 44), (30.0, 31.0, 29.5)):
        shipped_run(root, "kl", seed, score)
    build_bundle(root, tmp_path / "ref", code={})
    for seed, score in zip((42, 43, 44), (30.4, 29.8, 30.9)):
        shipped_run(results, "rkl", seed, score)
    code, out, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                   "--results-dir", str(results), "--until-decided", "rkl>kl",
                                                   "--max-seeds", "5", "--dry-run"])
    assert code == 0, err
    assert "grid compare-rkl (profile ci): 3 cells, 3 done, 0 to run" in out, out
    assert "looks at 3, 5 seeds per row" in out
    assert "[until-decided] round 1: 0 of 1 decided; 3.0 process-minutes so far\n  dart open: rkl>kl " in out, out
    assert "\n  dart adding seeds 45, 46 to rkl, kl\n" in out, out
    assert not (results / "grids").exists()


def test_compare_until_decided_runs_rounds_then_renders_the_report(tmp_path, monkeypatch, capsys):
    """The rounds without training (each cell's run is written as if trained, with a score drawn for its method):
    the first look is the new method's three cells, the one round adds seeds 45 and 46 to both rows (KL's trained
    here), the design is recorded for the report, and the report is rendered once, after the rounds."""
    import harness.grid
    import harness.reporting.build

    root, results = tmp_path / "store", tmp_path / "results"
    for seed, score in zip((42, 43, 44), (30.0, 31.0, 29.5)):
        shipped_run(root, "kl", seed, score)
    build_bundle(root, tmp_path / "ref", code={})
    scores = {"rkl": iter((30.4, 29.8, 30.9, 30.1, 30.2)), "kl": iter((30.3, 29.9))}
    rounds, rendered = [], []

    class Done:
        failed: list = []

        def summary(self):
            return "done"

    def train(cells, *args, **kwargs):
        rounds.append(sorted((c.method, c.seed) for c in cells))
        for cell in cells:
            fake_run(results, cell.method, cell.seed, planned(cell.method, cell.seed),
                     parameters={"teacher_outputs_k": 0}, run_id=cell.run_id, score=next(scores[cell.method]))
        return Done()

    monkeypatch.setattr(harness.grid, "run_grid", train)
    monkeypatch.setattr(harness.reporting.build, "build_report",
                        lambda *args, **kwargs: rendered.append(args) or harness.reporting.build.Report(tmp_path))
    code, out, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                   "--results-dir", str(results), "--until-decided", "rkl>kl",
                                                   "--max-seeds", "5"])
    assert code == 0, err
    assert rounds == [[("rkl", 42), ("rkl", 43), ("rkl", 44)], [("kl", 45), ("kl", 46), ("rkl", 45), ("rkl", 46)]]
    assert "[until-decided] dart rkl>kl: undecided" in out and len(rendered) == 1
    (record,) = (results / "grids").glob("compare-rkl-ci-*.until-decided.json")
    families = json.loads(record.read_text())["families"]
    assert sorted(families) == ["dart · kl", "dart · rkl"] and len(families["dart · kl"]) == 5


# --------------------------------------------------------------------------- the committed bundle

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "reference"


def committed_bundle_warning(bundle: Path) -> str | None:
    """The CI check: None when ``bundle`` is absent or its stage keys are this code's, else the warning."""
    from harness.grid.reference import stale_message, stale_runs

    if not (bundle / MANIFEST).is_file():
        return None
    manifest = read_manifest(bundle)
    stale = stale_runs(manifest)
    return stale_message(bundle.name, manifest, stale) if stale else None


def test_the_committed_bundle_is_this_codes_or_ci_warns(recwarn):
    """Warns — never fails — when the committed bundle's stage keys are no longer this code's (so nobody ships a
    stale bundle without knowing); passes quietly when no bundle is committed."""
    problem = committed_bundle_warning(COMMITTED)
    if problem is not None:
        import warnings

        warnings.warn(f"stale reference bundle: {problem}", UserWarning, stacklevel=1)


def test_the_ci_check_handles_no_bundle_and_sees_a_stale_one(store, tmp_path):
    assert committed_bundle_warning(tmp_path / "reference") is None
    build_bundle(store, tmp_path / "reference", code={})
    assert committed_bundle_warning(tmp_path / "reference") is None
    fake_run(store, "kl", 44, made_by_other_code(planned("kl", 44)))
    build_bundle(store, tmp_path / "reference", code={})
    assert "1 of 5 runs differ" in committed_bundle_warning(tmp_path / "reference")


# --------------------------------------------------------------------------- the ci grid: audit and compare

@pytest.mark.slow
def test_the_report_of_an_imported_bundle_is_the_stores_byte_for_byte(ci_grid, tmp_path, monkeypatch, capsys):
    """A slice of the session's ci grid (DART: the pre-distill, MLE, KL and SeqKD runs and their stages) bundled
    and imported into a fresh folder: its report is the slice's own report, every file byte for byte (both read as
    ``store`` from their own folders, so that the page's "read from store/runs" is the same). Then ``harness
    compare --dry-run`` of a method the slice lacks, on the imported bundle: only its own stage and evaluation
    would be built."""
    import shutil

    from harness.reporting.build import build_report

    root, proc = ci_grid
    assert proc.returncode == 0, proc.stderr[-2000:]
    original, imported = tmp_path / "original", tmp_path / "imported"
    for folder in sorted((root / "runs").glob("dart-*")):   # read only: the slice is copied out of the grid
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest["config"]["method"] in ("predistill", "mle", "kl", "seqkd"):
            shutil.copytree(folder, original / "store" / "runs" / folder.name)
            for entry in manifest["stages"].values():
                stage = Path("cache", entry["stage"], entry["key"])
                if not (original / "store" / stage).is_dir():
                    shutil.copytree(root / stage, original / "store" / stage)
    built = build_bundle(original / "store", tmp_path / "ref", code={})
    assert sum(built.sizes.values()) < 2 * 10**6
    import_bundle(tmp_path / "ref", imported / "store")
    for folder in (original, imported):
        monkeypatch.chdir(folder)
        build_report("store", "report", n_samples=20)
    files = sorted(p.relative_to(original / "report") for p in (original / "report").rglob("*") if p.is_file())
    assert "tables/table2_dart_ci.md" in map(str, files) and any(f.suffix == ".svg" for f in files)
    assert files == sorted(p.relative_to(imported / "report") for p in (imported / "report").rglob("*") if p.is_file())
    assert [f for f in files if (original / "report" / f).read_bytes() != (imported / "report" / f).read_bytes()] == []

    code, out, err = run_main(monkeypatch, capsys, ["compare", "--method", "rkl", "--bundle", str(tmp_path / "ref"),
                                                   "--results-dir", str(imported / "store"), "--dry-run"])
    assert code == 0, err
    assert "reuse  tokenizer, teacher, predistill, evaluation/teacher, evaluation/predistill" in out
    assert "build  rkl, evaluation/rkl" in out and "not in the bundle" not in err

    # a grid on the imported store counts the bundled runs as done: a session on a fresh machine resumes from it
    code, out, err = run_main(monkeypatch, capsys, ["grid", "--profile", "ci", *CI_GRID_SET_ARGS, "--tasks", "dart",
                                                   "--methods", "predistill,mle,kl,seqkd", "--seeds",
                                                   str(CI_GRID_SEEDS[0]), "--results-dir", str(imported / "store"),
                                                   "--dry-run"])
    assert code == 0, err
    assert "4 cells, 4 done, 0 to run" in out, out
