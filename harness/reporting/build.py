"""``harness report``: every table and figure the store supports, written into one output folder
(the layout is in :mod:`harness.reporting`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config import PROFILE_NOTES
from ..errors import HarnessError, UnknownNameError
from ..paper import TASKS, order_key
from ..paper.published import published
from ..store.bundle import stale_note
from ..store.io import atomic_dir
from . import html as html_page
from . import plots
from .calibration import calibration
from .compare import comparison, published_table
from .findings import findings, verdict_summary, versus_baselines
from .variance import contrast_table, variance_table
from .load import Store, is_cost, load_store, of_task
from .real_text import real_text
from .render import Table, to_csv, to_latex, to_markdown
from .stats import statistics_kept_in
from .store_table import store_table
from .summary import lookup, rows_of, setting_label, summarise, table_rows
from .tables import figure2, overview, size_axes, stage_times, table2, table3, table4


@dataclass
class Report:
    out: Path
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, dict] = field(default_factory=dict)     # name → {"png": Path, "svg": Path, ...}
    files: list[Path] = field(default_factory=list)
    note: str | None = None     # said under every table and figure (baselines from a stale bundle: its commit)


def build_report(results_dir: str | Path = "results", out_dir: str | Path | None = None, compare: tuple[str, ...] = (),
                 baseline: str | None = "predistill", n_samples: int = 1000, screenshot: bool = False,
                 check_baseline: bool = False, figures: bool = True, focus: str | None = None) -> Report:
    """Render every table and figure the store supports into ``out_dir`` (default ``results_dir/report``).

    The folder is written whole and then put in place of the old one, so it holds exactly
    what this report wrote (no table of an earlier report is left beside the new ones) and
    its ``README.md``, if it has one; a folder that holds other files than a report's is refused.
    ``check_baseline``: a ``baseline`` that is no row of the results is an error (the user named it).
    ``figures=False``: tables only (drawing the figures is most of a report's time). ``focus``: a method the page
    opens with, against every baseline (``harness compare``'s new method: :func:`versus_baselines`)."""
    final = Path(out_dir) if out_dir is not None else default_out(results_dir)
    _check_replaceable(final)
    with atomic_dir(final) as tmp, statistics_kept_in(results_dir):
        report = _build(results_dir, tmp, compare, baseline, n_samples, screenshot, check_baseline, figures, focus)
        if (final / "README.md").is_file():   # a person's description of the folder (reports/README.md) stays
            shutil.copy2(final / "README.md", tmp / "README.md")
    report.out = final
    report.files = [final / p.relative_to(tmp) for p in report.files]
    for saved in report.figures.values():
        for kind in ("png", "svg"):
            if isinstance(saved.get(kind), Path):
                saved[kind] = final / saved[kind].relative_to(tmp)
    return report


def default_out(results_dir: str | Path) -> Path:
    """Where a report goes unless told: ``RESULTS_DIR/report``."""
    return Path(results_dir) / "report"


REPORT_FILES = frozenset({"report.html", "report.md", "report.png", "summary.csv", "tables", "figures", "README.md"})


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace a folder that holds anything a report does not write (it would be lost)."""
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in REPORT_FILES)
        if foreign:
            raise HarnessError(f"--out {folder}: holds files a report does not write ({', '.join(foreign[:5])}); "
                               f"a report replaces its folder whole: choose an empty or a report folder")


def _build(results_dir, out_dir: Path, compare, baseline, n_samples, screenshot, check_baseline,
           figures: bool = True, focus: str | None = None) -> Report:
    store = load_store(results_dir)
    summary = summarise(store)
    if check_baseline and baseline is not None and baseline not in set(summary["model"]):
        raise UnknownNameError("baseline row", baseline, sorted(set(summary["model"])) + ["none"])
    paper = published() if "paper" in compare else None
    report = Report(Path(out_dir), note=stale_note(results_dir))
    curves = store.curves()
    sections = []
    pairs = list(summary[["task", "profile"]].drop_duplicates().itertuples(index=False))
    for task, profile in sorted(pairs, key=lambda pair: (pair[1], order_key(pair[0], TASKS))):
        items = _task_section(report, store, summary, curves, task, profile, baseline, n_samples, paper, figures)
        sections.append((f"{task} — {profile} profile", items))

    builds = store.stage_builds()
    verdicts, front = [], []      # the findings open the page (and its screenshot); then the all-task tables
    for profile in summary["profile"].drop_duplicates():
        present = set(summary[summary["profile"] == profile]["task"])
        tasks = sorted(present, key=lambda task: order_key(task, TASKS))
        if len(tasks) >= 2:
            tables = [overview(store, summary, profile, tasks), stage_times(builds, None, profile)]
            tables = [t for t in tables if t is not None]
            for table in tables:
                _add_table(report, table)
            front.append((f"all tasks — {profile} profile", tables))
        mine = versus_baselines(store, summary, profile, focus, n_samples) if focus else None
        if mine is not None:
            _add_table(report, mine)
            verdicts.append((f"{focus} against the baselines — {profile} profile", [mine]))
        claims = findings(store, summary, profile, n_samples)
        if claims is not None:
            decided = verdict_summary(claims, profile)
            for table in (decided, claims):
                _add_table(report, table)
            verdicts.append((f"The paper's findings, re-tested — {profile} profile", [decided, claims]))
        twins = calibration(store, summary, profile, n_samples)
        if twins is not None:
            _add_table(report, twins)
            front.append((f"The twins against the paper's regime — {profile} profile", [twins]))
        twin_vs_real = real_text(store, summary, profile, n_samples)
        if twin_vs_real is not None:
            _add_table(report, twin_vs_real)
            front.append((f"Twin vs real text — {profile} profile", [twin_vs_real]))
        sources = [t for t in (variance_table(store, summary, profile, n_samples),
                               contrast_table(store, summary, profile, n_samples)) if t is not None]
        for table in sources:
            _add_table(report, table)
        if sources:
            front.append((f"Where the variance comes from — {profile} profile", sources))
    sections = verdicts + front + sections

    _write(report, "summary.csv", _summary_frame(summary).to_csv(index=False))
    evaluations = len(store.evaluations[["task", "profile", "model", "stage_key"]].drop_duplicates())
    meta = (f"{store.run_count} runs, {evaluations} distinct evaluations, read from "
            f"{Path(results_dir)}/runs/*/*.parquet." + (f" Baseline for †: {baseline}." if baseline else "")
            + "".join(f" Note: {PROFILE_NOTES[p]}." for p in sorted(set(summary["profile"])) if p in PROFILE_NOTES)
            + (f" {report.note}." if report.note else ""))
    markdown = [f"# Distillation report\n\n{meta}\n"]
    for heading, items in sections:
        markdown.append(f"\n## {heading}\n")
        for item in items:
            if isinstance(item, Table):
                markdown.append(to_markdown(item))
            else:
                _, caption, name = item
                markdown.append(f"![{caption}](figures/{name}.png)\n")
    _write(report, "report.md", "\n".join(markdown))
    page = _write(report, "report.html", html_page.page("Distillation report", meta, sections))
    if screenshot:
        html_page.screenshot(page, report.out / "report.png")
        report.files.append(report.out / "report.png")   # as every file: under the folder as given (not resolved)
    return report


def _task_section(report, store, summary, curves, task, profile, baseline, n_samples, paper, figures=True) -> list:
    info = store.task_info(task, profile)
    look = lookup(summary, task, profile)
    labels = [label for label, _, _ in table_rows(summary, task, profile)]
    models = {label: model for label, model, _ in rows_of(summary, task, profile)}
    title = f"{task} ({profile} profile)"
    items: list = []

    def add_table(table):
        if table is not None:
            items.append(table)
            _add_table(report, table)

    def add_figure(draw, name, caption):
        fig = draw() if figures else None
        if fig is not None:
            caption += f"; {report.note}" if report.note else ""
            saved = plots.save(fig, report.out / "figures", name)
            report.figures[name] = saved
            report.files += [saved["png"], saved["svg"]]
            items.append((html_page.figure_src(name), caption, name))

    add_table(table2(store, summary, task, profile, baseline, n_samples))
    if info.metrics:
        add_figure(lambda: plots.dots(look, labels, list(info.metrics), info.lower_is_better, title, models),
                   f"dots_{task}_{profile}", f"{title}: test metrics, mean (dot) and 95% interval over seeds "
                   f"(line), n beside each row; {plots.EXPLORATORY_NOTE}")
    add_table(table3(store, summary, task, profile))
    add_table(table4(store, summary, task, profile))
    add_table(store_table(store, task, profile, n_samples))
    add_table(stage_times(store.stage_builds(), task, profile))
    for axis in size_axes(summary, task, profile):
        fig2 = figure2(store, summary, task, profile, axis)
        add_table(fig2)
        if fig2 is not None:
            add_figure(lambda: plots.size(fig2, axis, info.primary, info.lower_is_better,
                                          f"{title}: {info.primary} vs {axis}", look, paper),
                       fig2.name, f"{title}: {info.primary} vs {axis} (Figure 2): mean and 95% interval over seeds, "
                                  f"methods side by side at each size"
                                  + ("; dashed, hollow diamonds: the paper's published values" if paper is not None
                                     else "") + f"; {plots.EXPLORATORY_NOTE}")

    label_of = _label_of_replicate(summary, task, profile)
    part = of_task(curves, task, profile)
    if len(part):
        add_figure(lambda: plots.curves(part, label_of, labels, f"{title}: training curves", models),
                   f"curves_{task}_{profile}",
                   f"{title}: training loss per stage (mean over seeds) and validation score")
    points = _points(store, task, profile, label_of)
    costs = [c for c in points.columns if is_cost(c)]
    if costs and info.primary in points:
        add_figure(lambda: plots.compute(points, info.primary, costs, info.lower_is_better, labels,
                                         f"{title}: quality vs compute", models),
                   f"compute_{task}_{profile}", f"{title}: {info.primary} vs compute, per seed (dots) and mean")
        _write(report, f"tables/compute_{task}_{profile}.csv", points.to_csv(index=False))

    if paper is not None:
        pair = comparison(store, summary, task, profile, paper, n_samples)
        if pair is not None:
            add_table(pair[0])
            add_table(pair[1])
        if any(t.name.startswith(f"table4_{task}_") for t in items if isinstance(t, Table)):
            add_table(published_table(paper, "table4", task))
        if any(t.name.startswith(f"figure2_{task}_") for t in items if isinstance(t, Table)):
            add_table(published_table(paper, "figure2", task))
    return items


def _label_of_replicate(summary: pd.DataFrame, task: str, profile: str) -> dict[str, str]:
    part = of_task(summary, task, profile)
    return {rep.stage_key: line.label for line in part.itertuples() for rep in line.replicates}


def _points(store: Store, task: str, profile: str, label_of: dict[str, str]) -> pd.DataFrame:
    """One row per evaluation of a task: its row label and every metric (quality and cost) as columns."""
    ev = of_task(store.evaluations, task, profile)
    wide = ev.pivot_table(index=["model", "stage_key"], columns="metric", values="value", aggfunc="first")
    wide = wide.reset_index()
    wide.insert(0, "label", wide["stage_key"].map(label_of))
    return wide


def _summary_frame(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "task": summary["task"], "profile": summary["profile"], "row": summary["label"], "model": summary["model"],
        "setting": summary["setting"].map(setting_label), "data": summary["data"], "metric": summary["metric"],
        "n": summary["n"],
        "mean": summary["mean"], "ci95": summary["ci"],
        "values": summary["values"].map(lambda v: " ".join(repr(float(x)) for x in v)),
        "stage_keys": summary["replicates"].map(lambda r: " ".join(x.stage_key for x in r)),
    })


def _add_table(report: Report, table: Table) -> None:
    """Keep ``table`` in the report and write it as Markdown, LaTeX and CSV (its caption ends with the report's
    note, if it has one)."""
    if report.note:
        table.caption = f"{table.caption} {report.note}." if table.caption else f"{report.note}."
    report.tables[table.name] = table
    for suffix, text in (("md", to_markdown(table)), ("tex", to_latex(table)), ("csv", to_csv(table))):
        _write(report, f"tables/{table.name}.{suffix}", text)


def _write(report: Report, relative: str, text: str) -> Path:
    path = report.out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    report.files.append(path)
    return path
