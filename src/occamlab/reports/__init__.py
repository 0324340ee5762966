"""Static HTML built from results: the demo's page of experiment sections, with embedded figures.

Sections hold tables (each result's own rendering), figures (:func:`figure` embeds a matplotlib
figure as SVG or PNG) and verdict text; :func:`render_page` turns a :class:`Page` into one
self-contained HTML document.
"""

from occamlab.reports._page import STATUSES, Figure, Page, Section, figure, render_page

__all__ = ["STATUSES", "Figure", "Page", "Section", "figure", "render_page"]
