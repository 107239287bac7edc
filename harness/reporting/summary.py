"""Rows of a report: the evaluations of one model (and setting) in one task, aggregated over seeds.

A *row* is (task, profile, model, setting), where the setting is the value of every axis that
varies within the task (``beta=0.5``, ``student.encoder_layers=2``); its label names the axes
that vary between the model's own rows. Its *replicates* are its distinct evaluations (one per
seed for a trained student, one in all for the shared teacher).
:func:`summarise` gives one line per row × metric with n, mean and the 95% CI over replicates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..paper import MODELS, order_key
from .load import Store, of_task
from .stats import mean_ci

MLE = "mle"   # the anchor of a task's main rows


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


def row_label(model: str, setting: dict) -> str:
    text = setting_label(setting)
    return f"{model} ({text})" if text else model


def varying_axes(evaluations: pd.DataFrame, axes: list[str]) -> list[str]:
    return [a for a in axes if evaluations[a].dropna().nunique() > 1]


def _sort_key(value) -> tuple:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (0, 0.0, "")
    return (1, value, "") if isinstance(value, (int, float)) else (2, 0.0, str(value))


def summarise(store: Store) -> pd.DataFrame:
    """One line per (task, profile, row, metric): model, setting, label, n, mean, ci, values, replicates."""
    lines = []
    for (task, profile), ev in store.evaluations.groupby(["task", "profile"], sort=True):
        axes = varying_axes(ev, store.axes)
        ev = ev.assign(_setting=[tuple(None if pd.isna(v) else v for v in vals)
                                 for vals in zip(*(ev[a] for a in axes))] if axes else [()] * len(ev))
        own_axes = {model: [a for a in axes if part[a].dropna().nunique() > 1] for model, part in ev.groupby("model")}
        for (model, setting, metric), group in ev.groupby(["model", "_setting", "metric"], sort=False):
            mean, ci, n = mean_ci(group["value"].tolist())
            named = dict(zip(axes, setting))
            shown = {a: v for a, v in named.items() if a in own_axes[model]}
            lines.append({
                "task": task, "profile": profile, "model": model, "setting": named, "shown": shown,
                "label": row_label(model, shown),
                "metric": metric, "n": n, "mean": mean, "ci": ci, "values": group["value"].tolist(),
                "signature": group["signature"].iloc[0],
                "replicates": [Replicate(r.stage_key, r.run_id, tuple(r.seeds)) for r in group.itertuples()],
                "_order": (order_key(model, MODELS), tuple(_sort_key(v) for v in setting)),
            })
    summary = pd.DataFrame(lines)
    if summary.empty:
        return summary
    summary = summary.sort_values(["task", "profile", "_order"], kind="stable")
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


def table_rows(summary: pd.DataFrame, task: str, profile: str) -> list[tuple[str, str, dict]]:
    """The rows of a task's main tables (Table 2, Table 3, the overview, the bar chart): every row except those
    at another value of an axis with its own table (:func:`has_own_table`) than MLE's row with the most seeds
    (every row when the task has no MLE row). Other sweeps (``method.beta``, a learning rate) stay, labelled."""
    rows = rows_of(summary, task, profile)
    part = of_task(summary, task, profile)
    mle = [r for r in rows if r[1] == MLE]
    if not mle:
        return rows
    seeds = part.groupby("label")["n"].max()
    anchor = {a: v for a, v in max(mle, key=lambda r: seeds[r[0]])[2].items() if has_own_table(a)}
    return [r for r in rows if agrees(r[2], anchor)]


def display_labels(rows: list[tuple[str, str, dict]]) -> dict[str, str]:
    """label → the text a table shows for it: the model's name where the table has one row of that model."""
    count: dict[str, int] = {}
    for _, model, _ in rows:
        count[model] = count.get(model, 0) + 1
    return {label: model if count[model] == 1 else label for label, model, _ in rows}


def common_rows(summary: pd.DataFrame, task: str, profile: str) -> dict[str, str]:
    """model → the label of its row among :func:`table_rows` with the most seeds (the first on ties): the one row
    per model that claims and comparisons read."""
    part = of_task(summary, task, profile)
    seeds = part.groupby("label")["n"].max()
    chosen: dict[str, str] = {}
    for label, model, _ in table_rows(summary, task, profile):
        if model not in chosen or seeds[label] > seeds[chosen[model]]:
            chosen[model] = label
    return chosen


def lookup(summary: pd.DataFrame, task: str, profile: str) -> dict[tuple[str, str], dict]:
    """(row label, metric) → the summary line, for one task and profile."""
    part = of_task(summary, task, profile)
    return {(line["label"], line["metric"]): line for line in part.to_dict("records")}
