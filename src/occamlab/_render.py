"""Text, HTML and JSON rendering shared by every result type.

Every occamlab result is a frozen dataclass that renders three ways (ARCHITECTURE.md, convention 5):
``__str__`` (a text table), ``_repr_html_`` (notebooks and reports) and ``to_dict()`` (plain JSON
types, with ``from_dict`` to round-trip). A result describes itself once, as a list of
:class:`Table` objects from ``_tables()``; :class:`Rendered` turns those into text and HTML.
"""

from __future__ import annotations

import abc
import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from occamlab._json import jsonable

__all__ = ["Table", "Rendered", "fmt", "text_table", "html_table", "jsonable"]


def fmt(x: Any, digits: int = 4) -> str:
    """Format a value for a table: numbers to ``digits`` significant digits, others as ``str``."""
    if x is None:
        return "-"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return str(int(x))
    if isinstance(x, float | np.floating):
        v = float(x)
        if math.isnan(v):
            return "-"  # not computed / undefined; a table's notes say which
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == 0:
            return "0"
        if 1e-4 <= abs(v) < 1e6:
            s = f"{v:.{digits}g}"
        else:
            s = f"{v:.{max(digits - 1, 1)}e}"
        return s
    if isinstance(x, tuple | list) and len(x) == 2 and all(
        isinstance(v, int | float | np.floating | np.integer) for v in x
    ):
        return f"[{fmt(x[0], digits)}, {fmt(x[1], digits)}]"
    return str(x)


@dataclass(frozen=True)
class Table:
    """A titled table: header names, rows of cells, and notes printed below it."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    notes: Sequence[str] = field(default_factory=tuple)


def text_table(table: Table) -> str:
    """Render a :class:`Table` as aligned plain text."""
    cells = [[fmt(c) for c in row] for row in table.rows]
    heads = [str(h) for h in table.headers]
    widths = [len(h) for h in heads]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = [table.title] if table.title else []
    if heads:
        lines.append("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
    # numbers align right, text left: a column is numeric when every filled cell holds a number
    numeric = [all(isinstance(row[i], (int, float, np.integer, np.floating))
                   and not isinstance(row[i], bool)
                   for row in table.rows if i < len(row) and row[i] is not None)
               for i in range(len(widths))]
    for row in cells:
        lines.append("  ".join(c.rjust(w) if numeric[i] else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=False))).rstrip())
    lines.extend(f"  {n}" for n in table.notes)
    return "\n".join(lines)


def html_table(table: Table) -> str:
    """Render a :class:`Table` as an HTML fragment (escaped)."""
    esc = html.escape
    out = ['<div class="occam-table">']
    if table.title:
        out.append(f"<h4>{esc(table.title)}</h4>")
    out.append("<table>")
    if table.headers:
        out.append("<thead><tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in table.headers))
        out.append("</tr></thead>")
    out.append("<tbody>")
    for row in table.rows:
        out.append("<tr>" + "".join(f"<td>{esc(fmt(c))}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    for n in table.notes:
        out.append(f"<p class='note'>{esc(n)}</p>")
    out.append("</div>")
    return "".join(out)


class Rendered(abc.ABC):
    """Base of every result type: ``__str__`` and ``_repr_html_`` from the subclass's
    ``_tables()``, and ``to_dict``/``from_dict`` by reflection over the dataclass fields.

    ``to_dict`` writes every field as plain JSON (:func:`jsonable`: tuples as lists, nested
    results through their own ``to_dict``, a non-finite float as ``null``); ``from_dict`` reads it
    back through the fields' type hints (``null`` in a ``float`` field is ``nan``), so the JSON
    schema of a result is its field list, whatever the values. A field declared with
    ``metadata={"json": False}`` is left out (and must have a default).
    """

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON types (see the class docstring)."""
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if f.metadata.get("json", True)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Any:
        """Rebuild the result from :meth:`to_dict`'s output.

        Raises
        ------
        DataError
            An unknown or missing key, or a value of the wrong type.
        """
        from occamlab._config import from_plain

        return from_plain(cls, d)

    @abc.abstractmethod
    def _tables(self) -> list[Table]:
        """The tables that describe this result, in display order."""

    def __str__(self) -> str:
        return "\n\n".join(text_table(t) for t in self._tables())

    def _repr_html_(self) -> str:
        return "".join(html_table(t) for t in self._tables())
