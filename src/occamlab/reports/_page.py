"""The demo's page: one self-contained HTML file of experiment sections.

A :class:`Page` has a title, a short top section (one headline per experiment, each linking to its
section and flagged when the experiment failed or one of its results failed its own
diagnostics), the sections, and a footer with the provenance (version, git commit, seeds, machine,
wall time of each experiment). Figures are embedded (SVG where that keeps the file small, PNG
otherwise), so the page can be mailed or archived alone; it reads on a laptop screen and prints.

Every text on the page is escaped; numbers in a section's text come from the experiment's results
dictionary (the same one written to ``results.json``), never typed in.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from occamlab._render import Table, html_table

__all__ = ["Figure", "Section", "Page", "figure", "render_page", "STATUSES"]

STATUSES = ("ok", "flagged", "failed")
SVG_LIMIT = 100_000  # bytes: a figure above this is embedded as PNG instead

_CSS = """
:root{--ok:#2e7d32;--flag:#b26a00;--fail:#c62828;--muted:#555}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1040px;
margin:1.5em auto;padding:0 1em;color:#1b1b1b;line-height:1.5;font-size:15px}
h1{font-size:1.55em;margin:.2em 0}h2{font-size:1.3em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:2.2em}h3{font-size:1.05em;margin:1.4em 0 .4em}
h4{margin:.9em 0 .3em;font-size:.95em}.meta,.note,figcaption{color:var(--muted);font-size:.86em}
table{border-collapse:collapse;font-size:.84em;margin:.4em 0 .8em;max-width:100%}
th,td{border:1px solid #d5d5d5;padding:.22em .5em;text-align:right;vertical-align:top}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.occam-table{overflow-x:auto}table.summary th,table.summary td{text-align:left}
figure{margin:.8em 0 1.2em}figure img,figure svg{max-width:100%;height:auto;display:block}
.question{border-left:3px solid #4a6fa5;background:#f5f8fc;padding:.5em .9em;margin:.8em 0}
.verdict{border-left:3px solid var(--ok);background:#f4faf4;padding:.5em .9em;margin:.8em 0}
.flags{border-left:3px solid var(--flag);background:#fff8ec;padding:.4em .9em;margin:.8em 0}
.failed{border-left:3px solid var(--fail);background:#fdf0f0;padding:.5em .9em;margin:.8em 0}
.status-ok{color:var(--ok);font-weight:600}.status-flagged{color:var(--flag);font-weight:600}
.status-failed{color:var(--fail);font-weight:600}
details{margin:.5em 0}summary{cursor:pointer;color:#4a6fa5}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.8em}
footer{margin-top:3em;border-top:1px solid #ccc;padding-top:.6em}
@media print{body{max-width:none;font-size:11pt}details{display:block}
details>summary{display:none}h2{page-break-before:always}h2.first{page-break-before:avoid}
figure,table{page-break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


@dataclass(frozen=True)
class Figure:
    """An embedded figure: its bytes (``svg`` text or ``png``), alt text and caption."""

    title: str
    data: bytes
    kind: str
    alt: str
    caption: str = ""

    def html(self) -> str:
        esc = html.escape
        if self.kind == "svg":
            src = "data:image/svg+xml;base64," + base64.b64encode(self.data).decode("ascii")
        else:
            src = "data:image/png;base64," + base64.b64encode(self.data).decode("ascii")
        cap = f"<figcaption><b>{esc(self.title)}.</b> {esc(self.caption)}</figcaption>"
        return f'<figure><img alt="{esc(self.alt)}" src="{src}">{cap}</figure>'


def figure(fig: Any, *, title: str, alt: str, caption: str = "") -> Figure:
    """Embed a matplotlib figure: SVG when it stays under about 100 kB, else a 120 dpi PNG.

    The figure is closed afterwards. ``alt`` describes what the figure shows (not a file name).
    """
    import matplotlib
    import matplotlib.pyplot as plt

    try:
        buf = io.BytesIO()
        # text as text (a small file); fixed ids and no date: the same figure, the same bytes
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "occamlab"}):
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        data, kind = buf.getvalue(), "svg"
        if len(data) > SVG_LIMIT:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=120, bbox_inches="tight",
                        metadata={"Software": None})
            data, kind = buf.getvalue(), "png"
    finally:
        plt.close(fig)
    return Figure(title=title, data=data, kind=kind, alt=alt, caption=caption)


@dataclass(frozen=True)
class Section:
    """One experiment's part of the page.

    ``question`` is what the seed asks; ``setup`` paragraphs say what was run (models, data,
    budgets, seeds) and ``config`` is the configuration that produced it (shown folded);
    ``tables`` are :class:`~occamlab._render.Table` objects or results (anything with
    ``_repr_html_``); ``verdict`` says what the data show; ``flags`` list results that failed their
    own diagnostics (shown, not hidden); ``status`` is ``ok``, ``flagged`` or ``failed`` (with
    ``error``: the section then says why).
    """

    key: str
    title: str
    headline: str
    question: str = ""
    setup: Sequence[str] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    tables: Sequence[Any] = ()
    figures: Sequence[Figure] = ()
    verdict: Sequence[str] = ()
    flags: Sequence[str] = ()
    status: str = "ok"
    error: str | None = None
    wall_s: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def _table_html(t: Any) -> str:
    if isinstance(t, Table):
        return html_table(t)
    return str(t._repr_html_())


def _config_html(config: Mapping[str, Any]) -> str:
    import json

    text = json.dumps(config, indent=1, sort_keys=True, default=str)
    return (f"<details><summary>configuration</summary><pre>{html.escape(text)}</pre>"
            "</details>")


def _section_html(s: Section, first: bool) -> str:
    esc = html.escape
    out = [f"<h2 id='{esc(s.key)}'{' class=first' if first else ''}>{esc(s.title)}</h2>"]
    if s.question:
        out.append(f"<div class='question'><b>The question.</b> {esc(s.question)}</div>")
    if s.status == "failed":
        out.append(f"<div class='failed'><b>This experiment failed</b>: {esc(s.error or '?')}"
                   "</div>")
    if s.setup:
        out.append("<h3>Setup</h3>")
        out += [f"<p>{esc(p)}</p>" for p in s.setup]
    if s.config:
        out.append(_config_html(s.config))
    if s.flags:
        items = "".join(f"<li>{esc(f)}</li>" for f in s.flags)
        out.append(f"<div class='flags'><b>Failed diagnostics</b> (shown, not hidden):"
                   f"<ul>{items}</ul></div>")
    if s.tables:
        out.append("<h3>Results</h3>")
        out += [_table_html(t) for t in s.tables]
    out += [f.html() for f in s.figures]
    if s.verdict:
        out.append("<h3>Verdict</h3>")
        out += [f"<div class='verdict'>{esc(p)}</div>" for p in s.verdict]
    return "\n".join(out)


@dataclass(frozen=True)
class Page:
    """The whole page: title, subtitle, sections and the provenance for the footer."""

    title: str
    sections: Sequence[Section]
    subtitle: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)


def _summary_html(sections: Sequence[Section]) -> str:
    esc = html.escape
    rows = []
    for s in sections:
        status = f"<span class='status-{s.status}'>{esc(s.status)}</span>"
        rows.append(f"<tr><td><a href='#{esc(s.key)}'>{esc(s.title)}</a></td><td>{status}</td>"
                    f"<td style='text-align:left'>{esc(s.headline)}</td></tr>")
    return ("<table class='summary'><thead><tr><th>experiment</th><th>status</th>"
            "<th>headline</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _footer_html(prov: Mapping[str, Any], sections: Sequence[Section]) -> str:
    esc = html.escape
    items = [f"<li>{esc(str(k))}: {esc(str(v))}</li>" for k, v in prov.items()]
    times = ", ".join(f"{s.key} {s.wall_s:.0f} s" for s in sections if s.wall_s is not None)
    if times:
        items.append(f"<li>wall time of each experiment (runs and analysis): {esc(times)}</li>")
    return f"<footer><b>Provenance</b><ul class='meta'>{''.join(items)}</ul></footer>"


def render_page(page: Page) -> str:
    """The page as one self-contained HTML document."""
    esc = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{esc(page.title)}</title><style>{_CSS}</style></head><body>",
             f"<header id='top'><h1>{esc(page.title)}</h1>"]
    if page.subtitle:
        parts.append(f"<p class='meta'>{esc(page.subtitle)}</p>")
    parts.append(_summary_html(page.sections))
    parts.append("</header>")
    for i, s in enumerate(page.sections):
        parts.append(f"<section>{_section_html(s, i == 0)}</section>")
    parts.append(_footer_html(page.provenance, page.sections))
    parts.append("</body></html>")
    return "\n".join(parts)
