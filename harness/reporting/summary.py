"""Rows of a report: the evaluations of one model (and setting, and data set) in one task, aggregated over seeds.

A *row* is (task, profile, model, setting, data), where the setting is the value of every axis that
varies within the task (``beta=0.5``, ``student.encoder_layers=2``) and data the identity of the data its runs
read (runs on other data are other experiments: never averaged, compared or ranked together). Its *replicates*
are its distinct evaluations (one per seed for a trained student, one in all for the shared teacher).

Each row has one label, shown by every table, CSV and figure (:func:`row_label`): its model, the axes on which
it differs from the task's main setting (:func:`shown_axes`) and, on a data set other than the task's primary
one, ``[data: name]``. :func:`summarise` gives one line per row × metric with n, mean and the 95% CI over
replicates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..paper import MODELS, order_key
from .load import DATA, Store, of_task
from .stats import mean_ci

MLE = "mle"   # the anchor of a task's main rows
#: The config field that seeds the teacher, pseudo-labels and pre-distilled student: rows at different values are
#: made from different teachers (:mod:`~harness.reporting.teachers`).
UPSTREAM = "upstream_seed"


@dataclass(frozen=True)
class Replicate:
    stage_key: str
    run_id: str
    seeds: tuple[int, ...]


def format_value(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def short_axis(axis: str) -> str:
    """``method.beta`` → ``beta``: a method parameter by its own name; other axes keep their dotted path."""
    for prefix in ("method.", "param."):
        if axis.startswith(prefix):
            return axis[len(prefix):]
    return axis


def setting_label(setting: dict) -> str:
    return ", ".join(f"{short_axis(a)}={format_value(v)}" for a, v in setting.items() if v is not None)


def row_label(model: str, shown: dict, data: str = "") -> str:
    """``model (axis=value, …) [data: name]``: the axes the row shows and, when it was made on another data set
    than its task's primary one, that data set's name."""
    text = setting_label(shown)
    label = f"{model} ({text})" if text else model
    return f"{label} [data: {data}]" if data else label


def varying_axes(evaluations: pd.DataFrame, axes: list[str]) -> list[str]:
    return [a for a in axes if evaluations[a].dropna().nunique() > 1]


def _sort_key(value) -> tuple:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (0, 0.0, "")
    return (1, value, "") if isinstance(value, (int, float)) else (2, 0.0, str(value))


def primary_data(evaluations: pd.DataFrame) -> str:
    """A task's primary data set: the data identity of the most evaluations (of MLE's most, on a tie; then the
    first read). Rows on any other are labelled with its name and never compared with the primary's."""
    counts = evaluations.drop_duplicates(["model", "stage_key"]).groupby(DATA, sort=False).agg(
        evaluations=("stage_key", "size"), mle=("model", lambda m: int((m == MLE).sum())))
    return max(counts.index, key=lambda d: (counts.loc[d, "evaluations"], counts.loc[d, "mle"]))


def data_names(identities: list[str], primary: str, folders: dict[str, str]) -> dict[str, str]:
    """identity → the name a row on it is labelled with ("" for the primary data): the folder it was read from
    where no other data set of the task has one of that name, else the folder and the identity's first eight
    characters (a file edited in place), or those characters alone."""
    named = {d: folders.get(d, "") for d in identities}
    names = {}
    for d in identities:
        folder, short = named[d], d[:8] or "unrecorded"
        unique = folder and list(named.values()).count(folder) == 1
        names[d] = "" if d == primary else folder if unique else f"{folder} {short}".strip()
    return names


def reference_teacher(seeds) -> object:
    """The reference teacher among the upstream seeds ``seeds``: the profile's default upstream seed (the one every
    single-teacher grid and ``harness grid --until-decided`` run at) where it is among them, else the smallest.
    Fixed by the design, never by the data: a verdict at the reference teacher is not one chosen for coming out
    decided."""
    from ..config import RunConfig

    seeds = [s for s in seeds if s is not None]
    default = RunConfig().upstream_seed
    return default if default in seeds else (min(seeds) if seeds else None)


def anchor_setting(rows: list[dict]) -> dict:
    """The task's main setting: that of MLE's row on the primary data with the most seeds (the first on ties),
    {} when it has none; where the rows were made at several teachers, among MLE's at the reference teacher
    (:func:`~harness.reporting.summary.reference_teacher` of every row's teachers, fixed by the design; at that
    teacher even where MLE has no row there), so that the rows a table shows are the teacher the findings judge at,
    whichever teacher's rows have the most seeds. ``rows``: dicts with model, setting, n and primary, in report
    order."""
    mle = [r for r in rows if r["model"] == MLE and r["primary"]]
    # the reference among every row's teachers, as the findings take it (teachers.rows_by_teacher); a row made once
    # for every teacher (no upstream seed) belongs to each
    reference = reference_teacher({r["setting"].get(UPSTREAM) for r in rows})
    at_reference = [r for r in mle if r["setting"].get(UPSTREAM) in (reference, None)]
    if not mle:
        return {}
    if at_reference:
        return max(at_reference, key=lambda r: r["n"])["setting"]
    return {**max(mle, key=lambda r: r["n"])["setting"], UPSTREAM: reference}


def shown_axes(setting: dict, anchor: dict, own_axes: list[str]) -> dict:
    """The axes a row's label names: where its value differs from the task's main setting (:func:`anchor_setting`),
    and, for an axis the main setting does not name (a method's own parameter), where the model's own rows differ
    (``own_axes``). A row at the main setting is its model's name, in every table, CSV and figure."""
    return {a: v for a, v in setting.items() if v is not None
            and (v != anchor[a] if anchor.get(a) is not None else a in own_axes)}


def _label_rows(lines: list[dict], axes: list[str], primary: str, folders: dict[str, str]) -> None:
    """Give the lines of one task and profile (in report order) their ``label``, ``shown``, ``data_name``,
    ``primary``: one label per (model, setting, data set)."""
    names = data_names(list(dict.fromkeys(line["data"] for line in lines)), primary, folders)
    rows: dict[tuple, dict] = {}
    for line in lines:
        line["primary"] = line["data"] == primary
        key = (line["model"], tuple(line["setting"].values()), line["data"])
        row = rows.setdefault(key, {**{k: line[k] for k in ("model", "setting", "data", "primary")}, "n": 0})
        row["n"] = max(row["n"], line["n"])
    anchor = anchor_setting(list(rows.values()))
    own = {model: [a for a in axes if len({r["setting"][a] for r in rows.values() if r["model"] == model} - {None}) > 1]
           for model in {r["model"] for r in rows.values()}}
    for row in rows.values():
        row["shown"] = shown_axes(row["setting"], anchor, own[row["model"]])
        row["label"] = row_label(row["model"], row["shown"], names[row["data"]])
    for same in _collisions(rows.values()):          # rows the rule cannot tell apart: name every axis they differ on
        differ = [a for a in axes if len({str(r["setting"][a]) for r in same}) > 1]
        for row in same:
            row["shown"] = {**row["shown"], **{a: "unset" if row["setting"][a] is None else row["setting"][a]
                                                for a in differ}}
            row["label"] = row_label(row["model"], row["shown"], names[row["data"]])
    for line in lines:
        row = rows[(line["model"], tuple(line["setting"].values()), line["data"])]
        line.update(label=row["label"], shown=row["shown"], data_name=names[line["data"]])


def _collisions(rows) -> list[list[dict]]:
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    return [same for same in by_label.values() if len(same) > 1]


def summarise(store: Store) -> pd.DataFrame:
    """One line per (task, profile, row, metric): model, setting, data, label, n, mean, ci, values, replicates.

    A row is a model at one setting on one data set (its data identity): runs on other data are never averaged
    together. Its label (:func:`shown_axes`, :func:`row_label`) is the one every table, CSV and figure shows."""
    lines = []
    for (task, profile), ev in store.evaluations.groupby(["task", "profile"], sort=True):
        axes = varying_axes(ev, store.axes)
        ev = ev.assign(_setting=[tuple(None if pd.isna(v) else v for v in vals)
                                 for vals in zip(*(ev[a] for a in axes))] if axes else [()] * len(ev))
        primary = primary_data(ev)
        part = []
        for (model, setting, data, metric), group in ev.groupby(["model", "_setting", DATA, "metric"], sort=False):
            mean, ci, n = mean_ci(group["value"].tolist())
            part.append({
                "task": task, "profile": profile, "model": model, "setting": dict(zip(axes, setting)), "data": data,
                "metric": metric, "n": n, "mean": mean, "ci": ci, "values": group["value"].tolist(),
                "signature": group["signature"].iloc[0],
                "replicates": [Replicate(r.stage_key, r.run_id, tuple(r.seeds)) for r in group.itertuples()],
                "_order": (order_key(model, MODELS), tuple(_sort_key(v) for v in setting), data != primary, data),
            })
        part.sort(key=lambda line: line["_order"])
        _label_rows(part, axes, primary, store.data_names)
        lines += part
    summary = pd.DataFrame(lines)
    if summary.empty:
        return summary
    return summary.drop(columns="_order").reset_index(drop=True)


def rows_of(summary: pd.DataFrame, task: str, profile: str) -> list[tuple[str, str, dict]]:
    """The (label, model, setting) of each row of a task, in report order."""
    part = of_task(summary, task, profile)
    seen, rows = set(), []
    for line in part.itertuples():
        if line.label not in seen:
            seen.add(line.label)
            rows.append((line.label, line.model, line.setting))
    return rows


def agrees(setting: dict, other: dict) -> bool:
    return all(v is None or other.get(a) is None or other[a] == v for a, v in setting.items())


def has_own_table(axis: str) -> bool:
    """An axis whose values a table of their own compares: the student's size (Figure 2) and the teacher-output
    store's k (the store table)."""
    return axis.startswith("student.") or axis == "teacher_outputs_k"


def _row_seeds(part: pd.DataFrame) -> tuple[pd.Series, set[str]]:
    """(label → its most seeds over metrics, the labels of rows on the primary data set)."""
    primary = part["primary"] if "primary" in part else pd.Series(True, index=part.index)
    return part.groupby("label")["n"].max(), set(part.loc[primary.astype(bool), "label"])


def table_rows(summary: pd.DataFrame, task: str, profile: str) -> list[tuple[str, str, dict]]:
    """The rows of a task's main tables (Table 2, Table 3, the overview, the bar chart): every row except those
    at another value of an axis with its own table (:func:`has_own_table`) than the task's main setting
    (:func:`anchor_setting`; every row when the task has no MLE row). Other sweeps (``method.beta``, a learning
    rate) and rows on other data sets stay, labelled."""
    rows = rows_of(summary, task, profile)
    seeds, primary = _row_seeds(of_task(summary, task, profile))
    anchor = anchor_setting([{"model": model, "setting": setting, "n": seeds[label], "primary": label in primary}
                             for label, model, setting in rows])
    own_table = {a: v for a, v in anchor.items() if has_own_table(a)}
    return [r for r in rows if agrees(r[2], own_table)]


def common_rows(summary: pd.DataFrame, task: str, profile: str) -> dict[str, str]:
    """model → the label of its row among :func:`table_rows` on the primary data set with the most seeds (the
    first on ties): the one row per model that claims and comparisons read, so that they never compare rows
    made on different data — nor on different teachers: where the upstream seed varies, rows at the main
    setting's (:func:`anchor_setting`) only (the findings take every teacher, :mod:`~harness.reporting.teachers`)."""
    rows = rows_of(summary, task, profile)
    seeds, primary = _row_seeds(of_task(summary, task, profile))
    anchor = anchor_setting([{"model": model, "setting": setting, "n": seeds[label], "primary": label in primary}
                             for label, model, setting in rows])
    teacher = {a: v for a, v in anchor.items() if a == UPSTREAM}
    chosen: dict[str, str] = {}
    for label, model, setting in table_rows(summary, task, profile):
        if label in primary and agrees(setting, teacher) and (model not in chosen or seeds[label] > seeds[chosen[model]]):
            chosen[model] = label
    return chosen


def lookup(summary: pd.DataFrame, task: str, profile: str) -> dict[tuple[str, str], dict]:
    """(row label, metric) → the summary line, for one task and profile."""
    part = of_task(summary, task, profile)
    return {(line["label"], line["metric"]): line for line in part.to_dict("records")}
