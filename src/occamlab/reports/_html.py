"""One self-contained HTML page: sections of text, result tables (each result's ``_repr_html_``)
and figures (PNG files embedded as data URIs, so the page can be mailed or archived alone)."""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab import __version__

__all__ = ["Section", "build_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h4{margin:.8em 0 .3em}.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:.85em;margin:.15em 0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.claim{background:#f7f9fc;border-left:3px solid #4a7;
padding:.5em 1em;margin:.8em 0}
"""


@dataclass(frozen=True)
class Section:
    """A titled part of a report: paragraphs, results (anything with ``_repr_html_``), figures."""

    title: str
    paragraphs: Sequence[str] = ()
    results: Sequence[Any] = ()
    figures: Sequence[str | Path] = ()
    claims: Sequence[str] = field(default_factory=tuple)


def _img(path: str | Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(Path(path).name)}" src="data:image/png;base64,{data}">'


def build_report(title: str, sections: Sequence[Section], *, subtitle: str = "") -> str:
    """The report as an HTML string."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>occamlab {__version__} &middot; {now}"
             + (f" &middot; {html.escape(subtitle)}" if subtitle else "") + "</p>"]
    toc = "".join(f"<li><a href='#s{i}'>{html.escape(s.title)}</a></li>" for i, s in enumerate(sections))
    parts.append(f"<ol>{toc}</ol>")
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [f"<div class='claim'>{html.escape(c)}</div>" for c in s.claims]
        parts += [r._repr_html_() for r in s.results]
        parts += [_img(f) for f in s.figures]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, title: str, sections: Sequence[Section], *, subtitle: str = "") -> Path:
    """Write the report atomically to ``path`` and return it."""
    from occamlab._io import atomic_write_text

    return atomic_write_text(path, build_report(title, sections, subtitle=subtitle))
