"""README's "What the embedded benchmark says" and docs/findings.md say no number the committed tables do not
have: generated blocks equal their re-rendering from reports/tables, and every tagged decimal number is a value
of the tables its tag names (harness.reporting.prose). Reads only committed CSVs: well under a second each."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.reporting import prose

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "reports" / "tables"
README = ROOT / "README.md"
FINDINGS = ROOT / "docs" / "findings.md"
SECTION = "What the embedded benchmark says"


def test_readme_section_numbers_are_in_the_tables():
    text, first = prose.section(README.read_text(encoding="utf-8"), SECTION)
    problems = prose.check_numbers(text, TABLES, first)
    assert not problems, "\n".join(map(str, problems))


def test_every_tagged_number_of_the_readme_is_in_its_tables():
    """Outside the section only tagged numbers are checked (e.g. the DART line of "What `harness run` does")."""
    problems = [p for p in prose.check_numbers(README.read_text(encoding="utf-8"), TABLES)
                if not p.why.startswith("untagged")]
    assert not problems, "\n".join(map(str, problems))


def test_docs_findings_numbers_are_in_the_tables_or_marked_as_measured_elsewhere():
    problems = prose.check_numbers(FINDINGS.read_text(encoding="utf-8"), TABLES)
    assert not problems, "\n".join(map(str, problems))


def test_readme_generated_blocks_are_the_tables_rendered():
    text = README.read_text(encoding="utf-8")
    assert "<!-- generated: overview_cpu" in text and "<!-- generated: verdicts_cpu" in text
    assert prose.render_blocks(text, TABLES) == text, "run `harness report … --readme README.md` (or render_blocks)"


def _overview_rows(task: str = "dart", metric: str = "bleu"):
    """The committed overview table's rows of one task's primary metric (students only), by model."""
    import pandas as pd

    frame = pd.read_csv(TABLES / "overview_cpu.csv")
    part = frame[(frame["task"] == task) & (frame["metric"] == metric) & (frame["model"] != "teacher")]
    return {line.model: line for line in part.itertuples()}


def test_overview_block_ranks_by_the_primary_metric_and_bolds_only_three_seed_rows():
    """Read against the committed tables whatever store they hold: each DART cell is its row's mean ± interval (n),
    a row under three seeds is never bold, and the bold row is the best of those with three or more."""
    block = prose.overview_block(TABLES, "cpu")
    header = block.splitlines()[0]
    assert "XSum R2" in header and "dialogue BLEU-2" in header and "R1" not in header   # what Table 2 ranks by
    cells = {line.split(" | ")[0].strip("| "): line.split(" | ")[1] for line in block.splitlines()[2:]}
    rows = _overview_rows()
    full = {m: r for m, r in rows.items() if r.n >= 3}
    best = max(full, key=lambda m: full[m].mean)
    for model, row in rows.items():
        shown = f"{row.mean:.2f} ± {row.ci95:.2f}" if row.n > 1 else f"{row.mean:.2f}"
        n = f"{int(row.n)}*" if row.n < 3 else f"{int(row.n)}"
        expected = f"**{shown}** ({n})" if model == best else f"{shown} ({n})"
        assert cells[model] == expected, (model, cells[model], expected)
    assert all("**" not in cells[m] for m, r in rows.items() if r.n < 3)


# --------------------------------------------------------------------------- the checker can fail
def test_a_number_absent_from_its_table_is_reported():
    mle = _overview_rows()["mle"]
    present, absent = f"{mle.mean:.2f}", "12345.67"
    text = f"<!-- numbers: overview_cpu -->\n(DART: MLE {present}, and {absent})\n"
    problems = prose.check_numbers(text, TABLES)
    assert [(p.line, p.number) for p in problems] == [(2, absent)]


def test_untagged_numbers_unknown_tables_and_code():
    text = ("the paper has every KD method within 41.3–41.8 R1\n"
            "<!-- numbers: no_such_table -->\n"
            "<!-- numbers: compare_xsum_cpu -->\n`beta = 0.85` and ```\n12.34\n``` are code; 41.28–41.76 fine\n"
            "<!-- numbers: outside the tables — a diagnostic run -->\n15.57 ± 0.45\n"
            "<!-- numbers: end -->\n3.14\n")
    problems = prose.check_numbers(text, TABLES)
    assert [(p.line, p.number) for p in problems] == [(1, "41.3"), (1, "41.8"), (2, "no_such_table"), (10, "3.14")]
    assert problems[0].why.startswith("untagged")


def test_rounding_to_the_written_digits(tmp_path):
    import pandas as pd

    pd.DataFrame({"estimate": [-10.766686]}).to_csv(tmp_path / "one.csv", index=False)
    text = "<!-- numbers: one -->\n−10.8 and −10.77 and 10.766686 match; 10.7 and 10.78 do not\n"
    assert [p.number for p in prose.check_numbers(text, tmp_path)] == ["10.7", "10.78"]


def test_a_hand_edited_generated_block_differs_from_its_rendering():
    text = README.read_text(encoding="utf-8")
    mle = _overview_rows()["mle"]
    shown = f"| mle | {mle.mean:.2f}"
    assert shown in text
    edited = text.replace(shown, f"| mle | {mle.mean + 1:.2f}", 1)
    assert prose.render_blocks(edited, TABLES) != edited
    with pytest.raises(ValueError, match="unknown generated block"):
        prose.render_blocks("<!-- generated: nonsense_cpu -->\nx\n<!-- end generated: nonsense_cpu -->", TABLES)


def test_harness_report_readme_rerenders_the_blocks_from_the_report_it_wrote(tmp_path, monkeypatch):
    """The CLI path, with the report itself stubbed: a folder holding the committed findings table."""
    import shutil

    from click.testing import CliRunner

    import harness.reporting.build as build
    from harness.cli import cli

    out = tmp_path / "report"
    (out / "tables").mkdir(parents=True)
    shutil.copy(TABLES / "findings_cpu.csv", out / "tables")
    monkeypatch.setattr(build, "build_report", lambda *a, **k: build.Report(out, tables={"findings_cpu": None}))
    (tmp_path / "results").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- generated: verdicts_cpu -->\nstale\n<!-- end generated: verdicts_cpu -->\nend\n")
    result = CliRunner().invoke(cli, ["report", "--results-dir", str(tmp_path / "results"), "--out", str(out),
                                      "--readme", str(readme)])
    assert result.exit_code == 0, result.output
    text = readme.read_text()
    import pandas as pd

    fives = int((pd.read_csv(TABLES / "findings_cpu.csv")["claim"].astype(str) == "5").sum())
    assert "stale" not in text and f"| 5 | {fives} |" in text and text.endswith("end\n")
    readme.write_text("<!-- generated: overview_cpu -->\n<!-- end generated: overview_cpu -->\n")   # no such table
    result = CliRunner().invoke(cli, ["report", "--results-dir", str(tmp_path / "results"), "--out", str(out),
                                      "--readme", str(readme)])
    from harness.errors import HarnessError

    assert isinstance(result.exception, HarnessError) and str(result.exception).startswith(f"--readme {readme}: ")
    assert "overview_cpu.csv" in str(result.exception)          # one line: which file, which table is missing


def test_the_claims_block_lists_each_claim_s_rows_by_verdict_decided_ones_with_their_numbers(tmp_path):
    import pandas as pd

    from harness.paper import claims

    rows = [("1", "predistill ≥ mle (BLEU)", "dart", 1.0766, 0.2338, 1.9194, 0.0, "holds"),
            ("1", "predistill ≥ mle (R2)", "xsum", 0.51, -0.61, 1.63, 0.0, "undecided"),
            ("1", "predistill ≥ mle (BLEU)", "dart-real", -2.5, -4.0, -1.0, 0.0, "does not hold"),
            ("3a", "TeacherDist wmt16_en_ro < dart", "wmt16_en_ro, dart", 41.74, 40.10, 43.39, 0.0, "holds"),
            ("3b", "teacher ≥ mle + 3 (BLEU-1)", "commonsense_dialogue", 0.29, -1.0, 1.58, 3.0, "does not hold"),
            ("4", "kl's R_cvg below rkl's", "dart", -0.013, -0.026, -0.0004, 0.0, "does not hold"),
            ("5", "js as good as the best KD method", "wmt16_en_ro", -0.017, -1.01, 0.97, 1.0, "equivalent")]
    pd.DataFrame(rows, columns=["claim", "statement", "task", "estimate", "ci_low", "ci_high", "threshold", "verdict"]) \
        .to_csv(tmp_path / "findings_ci.csv", index=False)
    block = prose.claims_block(tmp_path, "ci").splitlines()
    assert block == [
        "- **1** Pre-distillation is at least as good as MLE on each task (the task's primary metric).",
        "  - *holds* (1): predistill ≥ mle (BLEU), DART +1.08 [0.23, 1.92]",
        "  - *does not hold* (1): predistill ≥ mle (BLEU), real DART -2.50 [-4.00, -1.00]",
        "  - *undecided* (1): predistill ≥ mle (R2), XSum",
        "- **3a** The teacher's TeacherDist rises WMT < DART < XSum < dialogue.",
        "  - *holds* (1): TeacherDist wmt16_en_ro < dart +41.74 [40.10, 43.39]",
        "- **3b** The dialogue teacher is at least 3 BLEU-1 above the MLE student.",
        "  - *does not hold* (1): teacher ≥ mle + 3 (BLEU-1), dialogue +0.29 [-1.00, 1.58] (threshold 3)",
        "- **4** KL has a lower coverage risk R_cvg than RKL on each task.",
        "  - *does not hold* (1): kl's R_cvg below rkl's, DART -0.0130 [-0.0260, -0.0004]",
        "- **5** " + claims.SYMMETRIC_NEAR_BEST.text,
        "  - *equivalent* (1): js as good as the best KD method, WMT -0.017 [-1.010, 0.970] (margin 1)"]
    text = "a\n<!-- generated: claims_ci -->\nold\n<!-- end generated: claims_ci -->\n"
    assert prose.render_blocks(text, tmp_path) == f"a\n<!-- generated: claims_ci -->\n{chr(10).join(block)}\n" \
                                                  "<!-- end generated: claims_ci -->\n"
