"""A report table and its renderings: Markdown, LaTeX (booktabs), HTML and CSV.

A :class:`Table` holds cells with numbers, not text, so that each format writes ±, bold and
marks its own way; :attr:`Table.data` is the tidy frame its CSV is written from.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import pandas as pd

MARK = "†"


@dataclass
class Cell:
    value: float | None = None      # a number (mean), or None for text / empty
    ci: float | None = None         # 95% half-width, shown as ± when finite
    text: str | None = None         # shown instead of a number
    bold: bool = False
    mark: bool = False              # differs significantly from the baseline
    suffix: str = ""                # e.g. "×" after a speed-up


@dataclass
class Table:
    name: str                       # file stem, e.g. table2_dart_ci
    title: str
    header: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    data: pd.DataFrame = field(default_factory=pd.DataFrame)


def _number(cell: Cell, digits: int, bold: tuple[str, str], pm: str) -> str:
    """The cell's text, or its value (and ± CI) at ``digits``, ``bold`` around the value of a bold cell."""
    if cell.text is not None:
        return cell.text
    if cell.value is None or (isinstance(cell.value, float) and math.isnan(cell.value)):
        return "—"
    core = f"{cell.value:.{digits}f}{cell.suffix}"
    if cell.bold:
        core = f"{bold[0]}{core}{bold[1]}"
    if cell.ci is not None and math.isfinite(cell.ci):
        core += f" {pm} {cell.ci:.{digits}f}"
    return core


def to_markdown(table: Table, digits: int = 2) -> str:
    def cell(c: Cell) -> str:
        text = _number(c, digits, ("**", "**"), "±") + (f" {MARK}" if c.mark else "")
        return text.replace("|", "\\|")

    lines = [f"### {table.title}", "", "| " + " | ".join(h.replace("|", "\\|") for h in table.header) + " |",
             "|" + "|".join("---" for _ in table.header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    if table.caption:
        caption = table.caption.replace("*", "\\*")   # an asterisk in the text (Table 2's n*) is no emphasis
        lines += ["", f"*{caption}*"]
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "↓": r"$\downarrow$",
        "↑": r"$\uparrow$", "±": r"$\pm$", "×": r"$\times$", "τ": r"$\tau$", "β": r"$\beta$", MARK: r"$^\dagger$",
        "—": "---", "–": "--", "≥": r"$\geq$", "·": r"$\cdot$", "Δ": r"$\Delta$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def to_latex(table: Table, digits: int = 2) -> str:
    def cell(c: Cell) -> str:
        if c.text is not None:
            return tex_escape(c.text)
        return _number(c, digits, (r"\textbf{", "}"), r"$\pm$") + (r"$^\dagger$" if c.mark else "")

    spec = "l" + "r" * (len(table.header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(tex_escape(h) for h in table.header) + r" \\", r"\midrule"]
    lines += [" & ".join(cell(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.caption:
        lines.append(rf"\caption{{{tex_escape(table.title)}. {tex_escape(table.caption)}}}")
    lines += [rf"\label{{tab:{table.name.replace('_', '-')}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(table: Table, digits: int = 2) -> str:
    def cell(c: Cell) -> str:
        text = html.escape(_number(c, digits, ("\x00", "\x01"), "±"))
        text = text.replace("\x00", "<b>").replace("\x01", "</b>")
        if c.mark:
            text += f'<sup class="mark" title="significantly different from the baseline">{MARK}</sup>'
        return text

    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "\n".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return (f'<section class="table" id="{html.escape(table.name)}"><h3>{html.escape(table.title)}</h3>\n'
            f"<table>{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></section>\n")


def to_csv(table: Table) -> str:
    return table.data.to_csv(index=False)
