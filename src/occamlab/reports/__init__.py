"""Static HTML reports built from results: their own HTML renderings, figures and notes."""

from occamlab.reports._html import Section, build_report, write_report

__all__ = ["Section", "build_report", "write_report"]
