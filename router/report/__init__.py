"""The savings report: built from the ledger in SQL, rendered as a rich table, JSON, CSV or HTML."""

from router.report.build import build_report
from router.report.html import render_html
from router.report.render import render_csv, render_json, render_table

__all__ = ["build_report", "render_csv", "render_html", "render_json", "render_table"]
