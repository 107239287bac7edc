"""The self-contained HTML page (images as data URIs, inline CSS, no scripts) and headless-browser helpers."""

from __future__ import annotations

import base64
import html
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
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(png: bytes, caption: str, name: str) -> str:
    return (f'<figure id="{html.escape(name)}"><img src="{data_uri(png)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")


def page(title: str, meta: str, sections: list[tuple[str, list[Table | tuple[bytes, str, str]]]]) -> str:
    """``sections``: (heading, items); an item is a table or a figure given as (PNG bytes, caption, name)."""
    body = []
    for heading, items in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>\n")
        for item in items:
            body.append(to_html(item) if isinstance(item, Table) else figure(*item))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f"<style>{CSS}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f'<p class="meta">{html.escape(meta)}</p>\n{"".join(body)}</body></html>\n')


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


def screenshot(page_path: Path, png_path: Path, width: int = 1280, height: int = 2400) -> Path:
    """A PNG of the top of the page (the first tables and figures), e.g. for a README."""
    png_path = Path(png_path).resolve()
    proc = browse(page_path, [f"--screenshot={png_path}", f"--window-size={width},{height}",
                              "--virtual-time-budget=5000"])
    if not png_path.exists():
        from ..errors import HarnessError

        raise HarnessError(f"Chromium wrote no screenshot: {proc.stderr.strip()[-400:]}")
    return png_path
