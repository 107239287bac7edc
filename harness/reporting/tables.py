"""The paper's tables, from the summary of the store (and, for significance, its per-example outputs).

* Table 2 — per task, one row per model (and setting), the task's metrics: mean ± 95% CI over
  seeds, the best student in bold, † where a row differs from the baseline, and ranks with intervals — marks,
  bold and ranks from :mod:`~harness.reporting.noise` (seeds and test inputs together) and only for rows with
  at least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds; fewer: exploratory, shown with a ``*``.
* Table 3 — likelihood risk, coverage risk and the teacher's TeacherDist.
* Table 4 — online vs offline teacher prefixes: quality and training speed-up.
* Figure 2 — quality vs student size, when a ``student.*`` axis varies.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..paper import LABELS, MODELS, order_key
from ..store.labels import PREDISTILL, PSEUDO_LABELS, TEACHER, TOKENIZER
from . import ranking
from .load import FIDELITY, RISKS, TEACHER_DIST, Store, is_cost, of_task
from .render import Cell, Table
from .noise import MIN_OWN_SEEDS, Difference, Replicates, difference
from .stability import RankStability, model_resamples, rank_stability, replicates
from .teachers import main_teacher_note
from .summary import UPSTREAM, common_rows, lookup, row_label, rows_of, setting_label, short_axis, table_rows

EXPLORATORY = "*"      # the mark of a row with fewer than MIN_OWN_SEEDS seeds: shown, never bold, † or ranked
OTHER_DATA = ("Rows marked [data: …] were made on another data set than the others (another folder, or its files "
              "changed): bold, ranks and † are of each data set's rows among themselves.")

OTHER_TEACHERS = ("Rows marked (upstream_seed=…) were trained against another teacher (its teacher, pseudo-labels and "
                  "pre-distilled student): bold, ranks and † are of each teacher's rows among themselves, † against "
                  "the baseline of the same teacher.")


def metric_label(metric: str, lower_is_better: frozenset[str] = frozenset()) -> str:
    """The paper's name of ``metric``, with ↓ when it is one of ``lower_is_better``."""
    label = LABELS.get(metric, metric)
    return label + "↓" if metric in lower_is_better else label


def confirmed(line: dict) -> bool:
    """A row with at least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds: one that may be bold, marked or
    ranked. Fewer: exploratory (its seed variance cannot be estimated from its own seeds)."""
    return line["n"] >= MIN_OWN_SEEDS


def ranked_together(line: dict) -> tuple:
    """The rows a row is ranked and made bold among: those of its data set and its teacher (upstream seed, as the
    row's setting names it where the task's rows vary it). A student of a better teacher is not a better method:
    rows made on different data or at different teachers are never ranked together."""
    return line.get("data", ""), (line.get("setting") or {}).get(UPSTREAM)


def _best_per_data(look: dict, labels: list[str], metric: str, lower: bool) -> set[str]:
    """The best of ``labels`` on ``metric`` (:func:`~harness.reporting.ranking.best`; ``look``: (label, metric) →
    summary line) among the rows with at least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds
    (:func:`confirmed`), among the rows of each data set and teacher apart (:func:`ranked_together`), and a
    one-seed row is never the best."""
    groups: dict[tuple, dict[str, float]] = {}
    for label in labels:
        if (label, metric) in look and confirmed(look[(label, metric)]):
            line = look[(label, metric)]
            groups.setdefault(ranked_together(line), {})[label] = line["mean"]
    return set().union(*(ranking.best(values, lower) for values in groups.values()))


def _tidy(line: dict, **extra) -> dict:
    return {"task": line["task"], "profile": line["profile"], "row": line["label"], "model": line["model"],
            "setting": setting_label(line["setting"]), "metric": line["metric"], "n": line["n"],
            "mean": line["mean"], "ci95": line["ci"], **extra}


# --------------------------------------------------------------------------- significance
def versus_baseline(rows: dict[str, Replicates], label: str, base: str) -> Difference | None:
    """``label`` − ``base`` under the noise model (:func:`~harness.reporting.noise.difference`: the seed part of
    both rows and the test-input part from their shared bootstrap draws), or None when no mark may be drawn from
    it: a side with fewer than :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds of its own (exploratory), or
    rows whose metric cannot be recomputed on drawn inputs (no input part: the interval would be too narrow)."""
    a, b = rows.get(label), rows.get(base)
    if a is None or b is None or a.exploratory or b.exploratory or a.resampled is None or b.resampled is None:
        return None
    return difference(a, b)


def baseline_line(look: dict, rows: list, baseline: str, setting: dict, metric: str, data: str = "") -> dict | None:
    """The baseline's row on the data set ``data`` that matches ``setting`` on every axis the baseline depends on."""
    best, best_matches = None, -1
    for label, model, base_setting in rows:
        if model != baseline or (label, metric) not in look or look[(label, metric)].get("data", "") != data:
            continue
        if any(v is not None and setting.get(a) != v for a, v in base_setting.items()):
            continue
        matches = sum(v is not None for v in base_setting.values())
        if matches > best_matches:
            best, best_matches = look[(label, metric)], matches
    return best


# --------------------------------------------------------------------------- Table 2
def table2(store: Store, summary: pd.DataFrame, task: str, profile: str, baseline: str | None,
           n_samples: int = 1000) -> Table | None:
    info = store.task_info(task, profile)
    if not info.metrics:
        return None
    rows, look = table_rows(summary, task, profile), lookup(summary, task, profile)
    students = [r for r in rows if r[1] != "teacher"]
    best = {m: _best_per_data(look, [lab for lab, _, _ in students], m, m in info.lower_is_better)
            for m in info.metrics}
    noise = {m: noise_rows(store, look, [lab for lab, _, _ in rows], m, n_samples) for m in info.metrics
             if baseline or m == info.primary}          # † needs every metric's; ranks the primary metric's
    stability = primary_stability(look, students, info, noise[info.primary], n_samples)
    out_rows, data, exploratory = [], [], False
    for label, model, setting in rows:
        n = max((look[(label, m)]["n"] for m in info.metrics if (label, m) in look), default=0)
        shown_as_exploratory = model != "teacher" and n < MIN_OWN_SEEDS
        exploratory |= shown_as_exploratory
        cells = [Cell(text=label), Cell(text=f"{n}{EXPLORATORY}" if shown_as_exploratory else str(n))]
        for metric in info.metrics:
            line = look.get((label, metric))
            if line is None:
                cells.append(Cell())
                continue
            base = (baseline_line(look, rows, baseline, setting, metric, line.get("data", ""))
                    if baseline and model != "teacher" else None)
            diff = None
            if base is not None and base["label"] != label and base["signature"] == line["signature"]:
                diff = versus_baseline(noise[metric], label, base["label"])
            significant = diff is not None and diff.decided
            cells.append(Cell(line["mean"], line["ci"], bold=label in best[metric], mark=significant))
            kept = stability.get(label) if metric == info.primary else None
            ranked = ({"rank": kept.rank, "rank_ci_low": kept.low, "rank_ci_high": kept.high, "rank_kept": kept.kept}
                      if kept else {})
            data.append(_tidy(line, best=label in best[metric], baseline=base["label"] if base else None,
                              difference=diff.estimate if diff else None, diff_ci_low=diff.low if diff else None,
                              diff_ci_high=diff.high if diff else None, significant=significant,
                              exploratory=shown_as_exploratory, **ranked))
        if stability:
            kept = stability.get(label)
            cells += [Cell(text=_rank_text(kept)), Cell(text=f"{kept.kept:.0%}" if kept else "—")]
        out_rows.append(cells)
    header = ["model", "n"] + [metric_label(m, info.lower_is_better) for m in info.metrics]
    header += [f"rank [95% CI] ({metric_label(info.primary)})", "rank kept"] if stability else []
    several = len({line.get("data", "") for line in look.values()}) > 1
    teachers = len({ranked_together(line)[1] for line in look.values()}) > 1
    caption = (f"Test split; mean ± 95% t-interval over n seeds (no ± with one). Bold: best student among those "
               f"with at least {MIN_OWN_SEEDS} seeds. "
               + (f"n{EXPLORATORY}: exploratory, fewer than {MIN_OWN_SEEDS} seeds — shown, never bold, marked † or "
                  f"ranked (its seed variance cannot be estimated from its own seeds). " if exploratory else "")
               + (f"{OTHER_DATA} " if several else "")
               + (f"{OTHER_TEACHERS} " if teachers else "")
               + (f"†: differs from {baseline} — the 95% interval of the difference of means excludes 0, under one "
                  f"model of seed and test-input noise (each row's variance over its seeds, plus a bootstrap over "
                  f"the test inputs shared by both rows and every seed, {n_samples} draws, less the seed-by-input "
                  f"part counted twice; Satterthwaite degrees of freedom); both rows need {MIN_OWN_SEEDS} seeds "
                  f"(the teacher, one shared model, counts as a fixed value) and a metric recomputable per input. "
                  if baseline else "")
               + (f"Rank: the student's rank by mean {metric_label(info.primary)} (1 = best) among the students with "
                  f"at least {MIN_OWN_SEEDS} seeds; [95% CI]: the ranks its true mean can hold — 1 + the students "
                  f"settled above it to the number of students − those settled below, each pair's order settled "
                  f"by a step-down max-t band over the {n_samples} draws of the same noise model (seed part and "
                  f"test-input part; Mogstad, Romano, Shaikh and Wilhelm's marginal rank set); kept: the share of "
                  f"those draws in which it keeps its rank (descriptive, not a test)." if stability else ""))
    return Table(f"table2_{task}_{profile}", f"Table 2 — {task} ({profile} profile)", header, out_rows, caption,
                 pd.DataFrame(data))


def noise_rows(store: Store, look: dict, labels: list[str], metric: str, n_samples: int) -> dict[str, Replicates]:
    """Every row of ``labels`` holding ``metric`` as :class:`~harness.reporting.noise.Replicates`, those of each
    data set on one shared bootstrap of its test inputs (:func:`~harness.reporting.stability.replicates`)."""
    by_data: dict[str, dict[str, dict]] = {}
    for label in labels:
        if (label, metric) in look:
            line = look[(label, metric)]
            by_data.setdefault(line.get("data", ""), {})[label] = line
    out: dict[str, Replicates] = {}
    for lines in by_data.values():
        out.update(replicates(store, lines, n_samples))
    return out


def primary_stability(look: dict, students: list, info, noise: dict[str, Replicates],
                      n_samples: int) -> dict[str, RankStability]:
    """Each student's rank stability on the task's primary metric among the students of its data set and teacher
    (:func:`ranked_together`) with at least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds (draws of the noise model,
    :func:`~harness.reporting.stability.model_resamples`); exploratory rows get none."""
    by_data: dict[tuple, dict[str, dict]] = {}
    for label, _, _ in students:
        if (label, info.primary) in look and confirmed(look[(label, info.primary)]):
            line = look[(label, info.primary)]
            by_data.setdefault(ranked_together(line), {})[label] = line
    out = {}
    for lines in by_data.values():
        draws = model_resamples({label: noise[label] for label in lines}, info.primary in info.lower_is_better,
                                n_samples)
        if draws is not None:
            out.update(rank_stability(np.array([lines[label]["mean"] for label in draws.labels]), draws))
    return out


def _rank_text(kept: RankStability | None) -> str:
    if kept is None:
        return "—"
    if kept.low is None:
        return f"{kept.rank} [—]"
    return f"{kept.rank} [{kept.low}–{kept.high}]" if kept.low != kept.high else f"{kept.rank} [{kept.low}]"


# --------------------------------------------------------------------------- Table 3
def table3(store: Store, summary: pd.DataFrame, task: str, profile: str) -> Table | None:
    info = store.task_info(task, profile)
    rows, look = table_rows(summary, task, profile), lookup(summary, task, profile)
    metrics = [m for m in (*RISKS, *FIDELITY, *TEACHER_DIST) if any((lab, m) in look for lab, _, _ in rows)]
    if not any(m in RISKS or m in FIDELITY for m in metrics):
        return None
    students = [lab for lab, model, _ in rows if model != "teacher"]
    best = {m: _best_per_data(look, students, m, m in info.lower_is_better) for m in (*RISKS, *FIDELITY)}
    out_rows, data = [], []
    for label, _, _ in rows:
        cells = [Cell(text=label)]
        for metric in metrics:
            line = look.get((label, metric))
            if line is None:
                cells.append(Cell(text=""))
                continue
            bold = label in best.get(metric, set())
            cells.append(Cell(line["mean"], line["ci"], bold=bold))
            data.append(_tidy(line, best=bold))
        out_rows.append(cells)
    header = ["model"] + [metric_label(m, info.lower_is_better) for m in metrics]
    caption = ("R_llh: the teacher's per-token NLL of the model's outputs; R_cvg: the model's per-token NLL of the "
               "teacher's outputs (test split, lower is better; bold: lowest student with at least "
               f"{MIN_OWN_SEEDS} seeds). TeacherDist: distinct word "
               "bigrams % over the teacher's samples per input. (paper): as the paper computes them — risks on one "
               "sampled output per input, the mean over sentences of per-token NLLs; TeacherDist over subword "
               "bigrams. TVD: the mean over a student's test output tokens of the total variation distance "
               "½Σ|p − q| between the teacher's and the student's next-token distributions at that prefix; "
               "acceptance α = 1 − TVD, the expected rate at which speculative decoding accepts a token the "
               "student drafts for the teacher (bold: best student). Mean ± 95% CI over seeds.")
    return Table(f"table3_{task}_{profile}", f"Table 3 — {task} ({profile} profile): risks and fidelity", header,
                 out_rows,
                 caption, pd.DataFrame(data))


# --------------------------------------------------------------------------- Table 4
def prefix_variant(model: str, setting: dict) -> tuple[str, dict, str] | None:
    """(base model, setting without the prefix axis, "online" | "offline") when a row names its teacher prefixes.

    From an axis whose value is ``online``/``offline`` (or a boolean axis named ``*online*``), else from a
    method named ``<base>_online`` / ``<base>_offline``.
    """
    for axis, value in setting.items():
        if value is None:
            continue
        if str(value).lower() in ("online", "offline"):
            return model, {a: v for a, v in setting.items() if a != axis}, str(value).lower()
        if "online" in axis.lower() and isinstance(value, bool):
            return model, {a: v for a, v in setting.items() if a != axis}, "online" if value else "offline"
    for variant in ("online", "offline"):
        if model.endswith(f"_{variant}"):
            return model[: -len(variant) - 1], setting, variant
    return None


def trains_offline(store: Store, line: dict) -> bool:
    """Whether the row's model was trained on the teacher's offline outputs (pseudo-labels): the method
    description its run recorded, with the parameters it ran with."""
    described = store.methods[line["replicates"][0].run_id]
    return bool(described.get("needs_pseudo_labels"))   # a method no registry knows, run before: unknown


def _any_line(look: dict, label: str) -> dict:
    """A summary line of the row ``label`` (every metric of a row has the same replicates)."""
    return next(line for (row, _), line in look.items() if row == label)


def table4(store: Store, summary: pd.DataFrame, task: str, profile: str) -> Table | None:
    info = store.task_info(task, profile)
    rows, look = rows_of(summary, task, profile), lookup(summary, task, profile)
    groups: dict[tuple[str, str, str], dict[str, str]] = {}   # (method, other setting, data) → variant → row
    names: dict[tuple[str, str, str], str] = {}                # … → the pair's name: its online row's label
    named = {}
    for label, model, setting in rows:
        found = prefix_variant(model, setting)
        if found:
            base, rest, variant = found
            line = _any_line(look, label)
            key = (base, setting_label(rest), line.get("data", ""))
            groups.setdefault(key, {})[variant] = label
            names[key] = row_label(base, {a: v for a, v in line["shown"].items() if a in rest}, line.get("data_name", ""))
            named[label] = True
    for label, model, setting in rows:
        key = (model, setting_label(setting), _any_line(look, label).get("data", ""))
        if (label not in named and key in groups and "offline" not in groups[key]
                and trains_offline(store, _any_line(look, label))):
            groups[key]["offline"] = label
    groups = {k: v for k, v in groups.items() if {"online", "offline"} <= set(v)}
    if not groups:
        return None
    costs = sorted({m for (lab, m) in look if is_cost(m) and "seconds" in m})
    cost = next((c for c in costs if all((lab, c) in look for g in groups.values() for lab in g.values())), None)
    out_rows, data = [], []
    for (base, rest, on), variants in sorted(groups.items()):
        online_cost = look[(variants["online"], cost)]["mean"] if cost else None
        for variant in ("online", "offline"):
            label = variants[variant]
            cells = [Cell(text=names[(base, rest, on)]), Cell(text=variant)]
            for metric in info.metrics:
                line = look.get((label, metric))
                cells.append(Cell(line["mean"], line["ci"]) if line else Cell())
                if line:
                    data.append(_tidy(line, method=base, prefixes=variant))
            if cost:
                line = look[(label, cost)]
                speedup = online_cost / line["mean"] if line["mean"] else math.nan
                cells.append(Cell(speedup, suffix="×"))
                data.append(_tidy(line, method=base, prefixes=variant) | {"metric": "speedup", "mean": speedup,
                                                                           "ci95": math.nan})
            out_rows.append(cells)
    header = ["method", "teacher prefixes"] + [metric_label(m, info.lower_is_better) for m in info.metrics]
    header += ["speed-up"] if cost else []
    caption = ("Online teacher samples vs offline teacher outputs (pseudo-labels). "
               + (f"Speed-up: online {cost} / this row's {cost} (means over seeds)." if cost
                  else "No cost measure (…seconds) in the store: speed-up not shown."))
    return Table(f"table4_{task}_{profile}", f"Table 4 — {task} ({profile} profile): teacher prefixes", header,
                 out_rows, caption, pd.DataFrame(data))


# --------------------------------------------------------------------------- Figure 2
def size_axes(summary: pd.DataFrame, task: str, profile: str) -> list[str]:
    """The ``student.*`` axes that vary within a task (the x axis of Figure 2)."""
    part = of_task(summary, task, profile)
    names = sorted({a for s in part["setting"] for a in s if a.startswith("student.")})
    return [a for a in names if len({s.get(a) for s in part["setting"]} - {None}) > 1]


def figure2(store: Store, summary: pd.DataFrame, task: str, profile: str, axis: str) -> Table | None:
    info = store.task_info(task, profile)
    metric = info.primary
    rows, look = rows_of(summary, task, profile), lookup(summary, task, profile)
    series: dict[str, dict] = {}
    for label, model, setting in rows:
        if setting.get(axis) is None or (label, metric) not in look:
            continue
        line = look[(label, metric)]
        name = row_label(model, {a: v for a, v in line["shown"].items() if a != axis}, line.get("data_name", ""))
        series.setdefault(name, {})[setting[axis]] = line
    series = {name: by_value for name, by_value in series.items() if len(by_value) > 1}
    values = sorted({v for by_value in series.values() for v in by_value})
    if not series or len(values) < 2:
        return None
    at = {(n, v): line for n, s in series.items() for v, line in s.items()}
    best = {v: _best_per_data(at, list(series), v, metric in info.lower_is_better) for v in values}
    out_rows, data = [], []
    for name, by_value in series.items():
        cells = [Cell(text=name)]
        for v in values:
            line = by_value.get(v)
            cells.append(Cell(line["mean"], line["ci"], bold=name in best[v]) if line else Cell())
            if line:
                data.append(_tidy(line, series=name, **{axis: v}))
        out_rows.append(cells)
    header = ["model"] + [f"{short_axis(axis)}={v:g}" if isinstance(v, (int, float)) else f"{axis}={v}"
                          for v in values]
    label = metric_label(metric, info.lower_is_better)
    caption = (f"{label} vs {axis}; mean ± 95% CI over seeds; bold: best per size among the series with at least "
               f"{MIN_OWN_SEEDS} seeds there.")
    return Table(f"figure2_{task}_{profile}_{axis.replace('.', '-')}",
                 f"Figure 2 — {task} ({profile} profile): {label} vs {axis}", header, out_rows, caption,
                 pd.DataFrame(data))


STAGE_ORDER = (TOKENIZER, TEACHER, PSEUDO_LABELS, PREDISTILL)   # shared stages, in build order


def _stage_kind(row) -> str:
    if row.stage_name == "student" and row.stage != PREDISTILL:
        return f"train {row.method}"          # the run's own MLE / KD stage
    if row.stage_name == "evaluation":
        return "evaluation"
    return row.stage if row.stage in STAGE_ORDER else row.stage_name


def stage_times(builds: pd.DataFrame, task: str | None, profile: str) -> Table | None:
    """Wall seconds spent building each kind of stage (each stage counted once, however many runs used it).

    ``task`` None: every task of ``profile`` together (a grid's time budget)."""
    part = builds[(builds["profile"] == profile) & ((builds["task"] == task) if task else True)]
    part = part[part["seconds"].notna()]
    if not len(part):
        return None
    part = part.assign(kind=[_stage_kind(r) for r in part.itertuples()])
    grouped = part.groupby("kind")["seconds"].agg(["count", "sum", "mean"])
    order = ([s for s in STAGE_ORDER if s in grouped.index] + sorted(k for k in grouped.index if k.startswith("train "))
             + [k for k in grouped.index if k not in STAGE_ORDER and not k.startswith("train ")])
    total = float(grouped["sum"].sum())
    rows = [[Cell(text=name), Cell(text=str(int(grouped.loc[name, "count"]))),
             Cell(value=float(grouped.loc[name, "sum"]) / 60), Cell(value=float(grouped.loc[name, "mean"])),
             Cell(value=100 * float(grouped.loc[name, "sum"]) / total)] for name in order]
    rows.append([Cell(text="total"), Cell(text=str(int(grouped["count"].sum()))), Cell(value=total / 60),
                 Cell(text=""), Cell(value=100.0)])
    where = task or "all tasks"
    data = grouped.reset_index().rename(columns={"kind": "stage", "count": "builds", "sum": "seconds",
                                                 "mean": "mean_seconds"})
    return Table(name=f"stages_{task or 'all'}_{profile}", title=f"Stage build times: {where} ({profile} profile)",
                 header=["stage", "builds", "minutes", "mean s per build", "% of time"], rows=rows,
                 caption="Seconds each stage took when it was built, each shared stage counted once (summed "
                         "over processes: with several workers the wall time is lower).",
                 data=data.assign(task=where, profile=profile))


def overview(store: Store, summary: pd.DataFrame, profile: str, tasks: list[str]) -> Table | None:
    """The paper's Table 2 layout: one row per model (its :func:`~harness.reporting.summary.common_rows` row in
    each task), every task's metrics side by side (means; bold: best student)."""
    columns, look, order = [], {}, []
    for task in tasks:
        info = store.task_info(task, profile)
        task_look, chosen = lookup(summary, task, profile), common_rows(summary, task, profile)
        look.update({(task, model, metric): task_look[(label, metric)]
                     for model, label in chosen.items() for metric in info.metrics if (label, metric) in task_look})
        columns += [(task, m, info.lower_is_better) for m in info.metrics]
        order += [model for model in chosen if model not in order]
    if len(tasks) < 2 or not columns:
        return None
    order = sorted(order, key=lambda model: order_key(model, MODELS))
    best = {}
    for task, metric, lower in columns:
        values = {model: look[(task, model, metric)]["mean"] for model in order
                  if model != "teacher" and (task, model, metric) in look and confirmed(look[(task, model, metric)])}
        best[(task, metric)] = ranking.best(values, metric in lower)
    rows, data = [], []
    for model in order:
        cells = [Cell(text=model)]
        for task, metric, _ in columns:
            line = look.get((task, model, metric))
            if line is None:
                cells.append(Cell())
                continue
            bold = model in best[(task, metric)]
            cells.append(Cell(line["mean"], bold=bold))
            data.append(_tidy(line, best=bold))
        rows.append(cells)
    header = ["model"] + [f"{task} {metric_label(metric, lower)}" for task, metric, lower in columns]
    return Table(f"overview_{profile}", f"Table 2 — every task ({profile} profile)", header, rows,
                 "Test-split means over seeds of each model's main row (the per-task tables give n, 95% CIs and "
                 "other settings). Bold: best student among those with at least "
                 f"{MIN_OWN_SEEDS} seeds." + main_teacher_note(summary, tasks, profile), pd.DataFrame(data))
