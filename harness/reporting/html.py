"""The HTML page (inline CSS, no scripts, nothing fetched from a network; its images are the report's own
``figures/*.png``, linked by relative path, so the page and its ``figures`` folder go together) and headless-browser
helpers. (Embedded as data URIs the 20 figures made the page 3.3 MB, a second copy of the PNGs in git.)"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .render import Table, to_html

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 78rem;
       padding: 0 1rem; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.4rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
h3 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: #555; font-size: .78rem; padding-top: .4rem;
          max-width: 60rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e5e5e5; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #333; }
sup.mark { color: #b00; }
section.table { overflow-x: auto; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .8rem; }
.meta { color: #555; font-size: .85rem; }
nav { font-size: .85rem; margin: .6rem 0 1rem; } nav p.sections { margin: .2rem 0; line-height: 1.5; }
nav details ol { columns: 2; column-gap: 2rem; } nav details ul { margin: 0 0 .4rem; padding-left: 1.2rem; }
a.up { font-size: .8rem; text-decoration: none; color: #888; }
/* the findings (the top of the page and of its screenshot) fit the page's width: their text columns and their
   headers wrap, the numbers do not */
section[id^="findings_"] table, section[id^="verdicts_"] table { font-size: .8rem; }
section[id^="findings_"] th, section[id^="verdicts_"] th { white-space: normal; }
section[id^="findings_"] td:nth-child(2), section[id^="findings_"] td:nth-child(3),
section[id^="findings_"] td:nth-child(4), section[id^="findings_"] td:nth-child(8),
section[id^="findings_"] td:nth-child(9) { white-space: normal; min-width: 6rem; }
section[id^="findings_"] td:nth-child(4) { min-width: 14rem; }
section[id^="findings_"] td:nth-child(9) { min-width: 11rem; }
section[id^="findings_"] td, section[id^="findings_"] th { text-align: left; vertical-align: top; padding: .25rem .4rem; }
section[id^="findings_"] td:nth-child(7) { font-weight: 600; }
section[id^="verdicts_"] td:nth-child(2) { white-space: normal; min-width: 22rem; }
section[id^="verdicts_"] td:nth-child(2), section[id^="verdicts_"] th:nth-child(2) { text-align: left; }
section[id^="verdicts_"] tr:last-child td { font-weight: 600; border-top: 2px solid #333; }
"""


def figure_id(name: str) -> str:
    """A figure's anchor: ``figure-`` and its file name (Figure 2's table and figure share their file name)."""
    return f"figure-{name}"


def figure_src(name: str) -> str:
    """Where the page finds the figure ``name``: its PNG in the report's ``figures`` folder, relative to the page."""
    return f"figures/{name}.png"


def figure(src: str, caption: str, name: str) -> str:
    return (f'<figure id="{html.escape(figure_id(name))}"><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")


def anchor(heading: str, taken: set[str]) -> str:
    """A section's id: its heading in lower case, runs of anything but letters and digits as one ``-``; a
    suffix ``-2``, ``-3``, … where an id is already ``taken`` (ids of tables and figures included)."""
    base = re.sub(r"[^0-9a-z]+", "-", heading.lower()).strip("-") or "section"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}-{k}"
    taken.add(name)
    return name


def _item_anchor(item: Table | tuple[str, str, str]) -> tuple[str, str]:
    """(id, link text) of a table or a figure: the id its HTML element carries (the table's or figure's file name)."""
    if isinstance(item, Table):
        return item.name, item.title
    _, caption, name = item
    return figure_id(name), "Figure: " + caption.split(": ", 1)[-1].split(";")[0]


def contents(sections: list[tuple[str, str, list]]) -> str:
    """The table of contents: one line of section links (always shown) and, folded under it (``<details>``, no
    script), every section with a link to each of its tables and figures. ``sections``: (id, heading, items)."""
    line = " · ".join(f'<a href="#{html.escape(sid)}">{html.escape(heading)}</a>' for sid, heading, _ in sections)
    parts = []
    for sid, heading, items in sections:
        links = "".join(f'<li><a href="#{html.escape(iid)}">{html.escape(text)}</a></li>'
                        for iid, text in map(_item_anchor, items))
        parts.append(f'<li><a href="#{html.escape(sid)}">{html.escape(heading)}</a><ul>{links}</ul></li>')
    count = sum(len(items) for _, _, items in sections)
    return (f'<nav id="contents" aria-label="contents"><p class="sections"><b>Sections:</b> {line}</p>\n'
            f"<details><summary>Every table and figure ({count})</summary><ol>{''.join(parts)}</ol></details>"
            f"</nav>\n")


def page(title: str, meta: str, sections: list[tuple[str, list[Table | tuple[str, str, str]]]]) -> str:
    """``sections``: (heading, items); an item is a table or a figure given as (its src, caption, name). Every
    section, table and figure has an id (:func:`anchor`; a table's and a figure's is its file name), and the
    contents (:func:`contents`) link to each; every heading links back to the contents."""
    taken = {_item_anchor(item)[0] for _, items in sections for item in items} | {"contents"}
    named = [(anchor(heading, taken), heading, items) for heading, items in sections]
    body = []
    for sid, heading, items in named:
        body.append(f'<h2 id="{html.escape(sid)}">{html.escape(heading)} <a class="up" href="#contents" '
                    f'title="back to the contents">↑</a></h2>\n')
        for item in items:
            body.append(to_html(item) if isinstance(item, Table) else figure(*item))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f"<style>{CSS}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f'<p class="meta">{html.escape(meta)}</p>\n{contents(named)}{"".join(body)}</body></html>\n')


# --------------------------------------------------------------------------- headless browser
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def browse(page_path: Path, action: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local page with a fresh profile; ``action`` is e.g. ``["--dump-dom"]``."""
    browser = find_browser()
    if browser is None:
        from ..errors import HarnessError

        raise HarnessError(f"no Chromium found (looked for {', '.join(BROWSERS)})")
    with tempfile.TemporaryDirectory(prefix="harness-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", *action, Path(page_path).resolve().as_uri()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def screenshot(page_path: Path, png_path: Path, width: int = 1280, height: int = 3400) -> Path:
    """A PNG of the top of the page, e.g. for a README: the report's contents and its findings with their verdicts
    (about 80 rows of them, ~3,000 pixels at this width, the text columns wrapped to fit it)."""
    png_path = Path(png_path).resolve()
    proc = browse(page_path, [f"--screenshot={png_path}", f"--window-size={width},{height}",
                              "--virtual-time-budget=5000"])
    if not png_path.exists():
        from ..errors import HarnessError

        raise HarnessError(f"Chromium wrote no screenshot: {proc.stderr.strip()[-400:]}")
    return png_path
