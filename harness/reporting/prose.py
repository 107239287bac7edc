"""Prose that says no number the tables do not have: blocks of a Markdown file rendered from a report's tables,
and a check of every other number a file states against the tables it names.

**Generated blocks.** Between ``<!-- generated: KIND_PROFILE … -->`` and ``<!-- end generated: KIND_PROFILE -->``
a file holds what :data:`GENERATED` [KIND] renders from a report's ``tables/*_PROFILE.csv``: ``overview`` (each
row's primary metric — the one Table 2 ranks by — per task, mean ± 95% t-interval over seeds and n; bold: the best student with at
least :data:`~harness.reporting.noise.MIN_OWN_SEEDS` seeds; ``n*``: exploratory) and ``verdicts`` (per claim of
the findings table, how many of its rows have each verdict and how many are decided, then all claims) and
``claims`` (per claim, its words and its rows by verdict, each decided row with its Δ and interval). ``harness report --readme FILE``
rewrites them from the report it has just written; :func:`render_blocks` does it from any tables folder.

**Tagged numbers.** A line ``<!-- numbers: TABLE TABLE … -->`` says that every decimal number from there to the
next such line is a value of one of the named tables (``tables/TABLE.csv``: any numeric cell, or a number
written in a text cell such as a finding's evidence), to the digits it is written with (34.4 matches 34.36;
the sign is not compared: "ENGINE 10.8 below MLE" reads the table's −10.77). ``<!-- numbers: outside the tables —
why -->`` marks numbers measured elsewhere (a diagnostic run outside the committed store, the paper's text), and
``<!-- numbers: end -->`` ends a tag's reach. :func:`check_numbers` lists every decimal number of a text that is
untagged or absent from its tables. Numbers in code (``3e-4``, `` `beta` 0.85 ``: settings, not results),
integers (seeds, n, k, layer counts) and generated blocks (checked by being re-rendered: :func:`render_blocks`)
are not checked.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..paper import TASKS, claims, order_key
from . import ranking
from .findings import DECIDED, ordered_verdicts, verdict_counts
from .noise import EQUIVALENT, MIN_OWN_SEEDS, NOT_EQUIVALENT
from .tables import metric_label

TASK_NAMES = {"dart": "DART", "xsum": "XSum", "wmt16_en_ro": "WMT", "commonsense_dialogue": "dialogue"}
TAG = re.compile(r"<!--\s*numbers:\s*(.*?)\s*-->")
OUTSIDE = "outside the tables"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)",
                   re.DOTALL)
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def _read(tables: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(Path(tables) / f"{name}.csv", keep_default_na=False, na_values=[""])


def task_label(task: str) -> str:
    base, real = (task[:-5], True) if task.endswith("-real") else (task, False)
    return ("real " if real else "") + TASK_NAMES.get(base, base)


def _task_order(task: str) -> tuple:
    return (task.endswith("-real"), order_key(task.removesuffix("-real"), TASKS))


def primary_metric(tables: Path, task: str, profile: str) -> str:
    """The metric Table 2 ranks a task's students by (the one with a rank column)."""
    table = _read(tables, f"table2_{task}_{profile}")
    ranked = table.loc[table["rank"].notna(), "metric"].unique() if "rank" in table else []
    if len(ranked) != 1:
        raise ValueError(f"table2_{task}_{profile}: no single ranked metric ({list(ranked)})")
    return str(ranked[0])


def _cell(line, bold: bool) -> str:
    mean = f"{line.mean:.2f}"
    text = f"{mean} ± {line.ci95:.2f}" if isinstance(line.ci95, float) and math.isfinite(line.ci95) else mean
    text = f"**{text}**" if bold else text
    n = f"{int(line.n)}*" if line.model != "teacher" and line.n < MIN_OWN_SEEDS else f"{int(line.n)}"
    return f"{text} ({n})"


def overview_block(tables: Path, profile: str) -> str:
    """Rows × tasks, each task's primary metric (see the module docstring), as a Markdown table."""
    frame = _read(tables, f"overview_{profile}")
    tasks = sorted(frame["task"].unique(), key=_task_order)
    metrics = {task: primary_metric(tables, task, profile) for task in tasks}
    models = list(dict.fromkeys(frame["model"]))
    header = ["model"] + [f"{task_label(t)} {metric_label(metrics[t])}" for t in tasks]
    cells: dict[tuple[str, str], str] = {}
    for task in tasks:
        part = frame[(frame["task"] == task) & (frame["metric"] == metrics[task])]
        decided = {line.model: line.mean for line in part.itertuples()
                   if line.model != "teacher" and line.n >= MIN_OWN_SEEDS}
        best = ranking.best(decided, False)          # every primary metric here is higher-is-better
        for line in part.itertuples():
            cells[(line.model, task)] = _cell(line, line.model in best)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        lines.append("| " + " | ".join([model] + [cells.get((model, t), "—") for t in tasks]) + " |")
    return "\n".join(lines) + "\n"


def verdicts_block(tables: Path, profile: str) -> str:
    """Per claim of the findings table: its rows, how many of them have each verdict, and how many are decided
    (:func:`~harness.reporting.findings.verdict_counts`), then all claims together."""
    counts = verdict_counts(_read(tables, f"findings_{profile}"), total=True)
    columns = [c for c in counts.columns if c != "claim"]
    lines = ["| claim | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for _, line in counts.iterrows():
        lines.append(f"| {line['claim']} | " + " | ".join(str(int(line[c])) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _numbers(values: list[float]) -> list[str]:
    """``values`` at one number of decimals: 2, or 3 where one is below 0.05 (as the findings table writes it), or
    4 where one would read 0.000."""
    small = min((abs(v) for v in values if v), default=1.0)
    digits = 2 if small >= 0.05 else 3 if small >= 0.0005 else 4
    return [f"{v:.{digits}f}" for v in values]


def _row_label(line) -> str:
    """A findings row as prose: its statement, and the task unless the statement names its tasks itself."""
    task = str(line["task"])
    if task == "all tasks" or ", " in task:
        return str(line["statement"])
    return f"{line['statement']}, {task_label(task)}"


def claims_block(tables: Path, profile: str) -> str:
    """Per claim of the findings table, a list item with the claim's words and, under it, its rows by verdict:
    each decided row with its Δ and the interval its verdict was read from (the findings table's: 95%, or a
    Bonferroni interval where the row says so), and its threshold where it is not 0; the undecided ones by name."""
    frame = _read(tables, f"findings_{profile}")
    lines = []
    for claim, part in frame.groupby(frame["claim"].astype(str), sort=False, dropna=False):
        lines.append(f"- **{claim}** {claims.text_of(claim)}".rstrip())
        for verdict in ordered_verdicts(part["verdict"]):
            named = []
            for _, line in part[part["verdict"].astype(str) == verdict].iterrows():
                shown = [line["estimate"], line["ci_low"], line["ci_high"]]
                text = _row_label(line)
                if verdict in DECIDED and all(math.isfinite(v) for v in shown):
                    estimate, low, high = _numbers(shown)
                    text += f" {'+' if shown[0] >= 0 else ''}{estimate} [{low}, {high}]"
                    threshold = line.get("threshold", 0.0)
                    if threshold and math.isfinite(threshold):
                        word = "margin" if verdict in (EQUIVALENT, NOT_EQUIVALENT) else "threshold"
                        text += f" ({word} {threshold:g})"
                named.append(text)
            lines.append(f"  - *{verdict}* ({len(named)}): " + "; ".join(named))
    return "\n".join(lines) + "\n"


GENERATED: dict[str, Callable[[Path, str], str]] = {"overview": overview_block, "verdicts": verdicts_block,
                                                   "claims": claims_block}


def render_blocks(text: str, tables: Path) -> str:
    """``text`` with every generated block re-rendered from ``tables``. A block's name is ``KIND_PROFILE``
    (``overview_cpu``: :data:`GENERATED` ["overview"] of the ``cpu`` profile's tables); an unknown kind is an
    error."""
    def one(match: re.Match) -> str:
        kind, _, profile = match.group("name").partition("_")
        if kind not in GENERATED or not profile:
            raise ValueError(f"unknown generated block {match.group('name')!r} (known: "
                             + ", ".join(f"{k}_<profile>" for k in GENERATED) + ")")
        return match.group(1) + GENERATED[kind](Path(tables), profile) + match.group(4)

    return BLOCK.sub(one, text)


# --------------------------------------------------------------------------- tagged numbers
def table_values(tables: Path, name: str) -> list[float]:
    """Every number of ``tables/NAME.csv``: its numeric cells and the numbers written in its text cells."""
    frame = _read(tables, name)
    values: list[float] = []
    for column in frame.columns:
        series = frame[column].dropna()
        if pd.api.types.is_numeric_dtype(series):
            values += [float(v) for v in series]
        else:
            for text in series.astype(str):
                values += [float(v) for v in re.findall(r"\d+(?:\.\d+)?", text)]
    return values


@dataclass(frozen=True)
class Problem:
    line: int
    number: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.number}: {self.why}"


def _matches(number: str, values: list[float]) -> bool:
    digits = len(number.split(".")[1])
    target, tolerance = float(number), 0.5 * 10 ** -digits + 1e-9
    return any(abs(abs(v) - target) <= tolerance for v in values if math.isfinite(v))


def check_numbers(text: str, tables: Path, first_line: int = 1) -> list[Problem]:
    """Every decimal number of ``text`` (Markdown; code left out) that no tag covers or that none of its tag's
    tables holds (module docstring). ``first_line``: the line number of ``text``'s first line, for messages."""
    problems: list[Problem] = []
    cache: dict[str, list[float]] = {}
    sources: list[str] | None = None        # None: untagged; []: outside the tables
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))      # noqa: E731  (keeps line numbers)
    text = BLOCK.sub(lambda m: m.group(1) + blank(re.match(r"(?s).*", m.group("body"))) + m.group(4), text)
    for offset, line in enumerate(CODE.sub(blank, text).split("\n")):
        where = first_line + offset
        tag = TAG.search(line)
        if tag:
            spec = tag.group(1)
            sources = None if spec == "end" else [] if spec.startswith(OUTSIDE) else spec.split()
            for name in sources or []:
                if not (Path(tables) / f"{name}.csv").is_file():
                    problems.append(Problem(where, name, "no such table"))
            line = TAG.sub("", line)
        for number in DECIMAL.findall(line):
            if sources is None:
                problems.append(Problem(where, number, "untagged: say which table it is from (<!-- numbers: … -->)"))
            elif sources:
                for name in sources:
                    if name not in cache:
                        cache[name] = table_values(tables, name) if (Path(tables) / f"{name}.csv").is_file() else []
                if not any(_matches(number, cache[name]) for name in sources):
                    problems.append(Problem(where, number, f"in none of {', '.join(sources)}"))
    return problems


def section(text: str, heading: str) -> tuple[str, int]:
    """The text of the Markdown section ``## heading`` (to the next ``## ``) and its first line's number."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip() == f"## {heading}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]), start + 1
